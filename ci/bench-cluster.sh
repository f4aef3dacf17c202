#!/bin/sh
# `make bench-cluster`: decisions per second per Redis core with
# mode=cluster, on loopback.
#
# Three redis-servers with --cluster-enabled (masters only, no
# persistence, free loopback ports) joined by `redis-cli --cluster
# create`, one nginx (one worker) whose location limits by a zone keyed
# by $arg_k with a rate no request reaches, and wrk sending every request
# with a fresh random key: every request is one script call, spread over
# the three masters by slot.  The CPU time each redis-server used during
# the run comes from /proc/PID/stat (utime + stime); decisions per Redis
# core is the decisions a master made divided by the CPU seconds it used
# for them, i.e. what one core fully busy would decide.
#
# Checks: every response 200 (none failed open: the zone's RateLimit
# field on each is not checked here, the Redis calls are), and the
# script calls the masters counted (INFO commandstats, EVALSHA) equal to
# the requests wrk made, within the requests in flight at its end.
#
# Knobs: BENCH_DURATION (10 s), BENCH_CONNECTIONS (32).  Whatever it
# starts it stops by pid.

set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. ci/lib.sh

build=${BUILD:-build}
duration=${BENCH_DURATION:-10}
conns=${BENCH_CONNECTIONS:-32}
redis_server=${REDIS_SERVER:-redis-server}
redis_cli=${REDIS_CLI:-redis-cli}
run=$(mktemp -d "${TMPDIR:-/tmp}/rl-bench-cluster.XXXXXX")
pids=
nginx_pid=

cleanup() {
    [ -n "$nginx_pid" ] && stop "$nginx_pid"
    # shellcheck disable=SC2086
    stop $pids
    rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

die() {
    echo "bench-cluster: $*" >&2
    exit 1
}

# cpu PID: utime + stime in clock ticks
cpu() {
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

ports=
addrs=
for i in 1 2 3; do
    port=$(free_port)
    bus=$(free_port)
    mkdir "$run/n$i"
    "$redis_server" --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
        --cluster-port "$bus" --cluster-config-file nodes.conf \
        --save '' --appendonly no --dir "$run/n$i" --daemonize no \
        --logfile "$run/n$i/redis.log" &
    pids="$pids $!"
    wait_for 100 redis_up "$redis_cli" "$port" || die "redis $i did not start"
    ports="$ports $port"
    addrs="$addrs 127.0.0.1:$port"
done

# shellcheck disable=SC2086
"$redis_cli" --cluster create $addrs --cluster-replicas 0 --cluster-yes \
    >"$run/create.log" 2>&1 || die "cluster create: $(cat "$run/create.log")"

cluster_ok() {
    for p in $ports; do
        "$redis_cli" -p "$p" cluster info | grep -q cluster_state:ok || return 1
    done
}
wait_for 200 cluster_ok || die "the cluster is not ok"

http_port=$(free_port)
mkdir -p "$run/nginx/logs" "$run/nginx/conf"
cat >"$run/nginx/conf/nginx.conf" <<EOF
load_module $top/$build/ngx_http_rate_limit_module.so;
worker_processes 1;
error_log $run/nginx/logs/error.log warn;
pid $run/nginx/logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    rate_limit_redis $(echo "$addrs" | sed 's/^ //') mode=cluster;
    rate_limit_zone z key=\$arg_k rate=1000000r/s burst=1000000;
    server {
        listen 127.0.0.1:$http_port;
        location = /t { rate_limit z; rate_limit_fail_open off; empty_gif; }
    }
}
EOF

"$(nginx_binary)" -p "$run/nginx" -c conf/nginx.conf -g 'daemon off;' &
nginx_pid=$!
wait_for 100 curl -fs "http://127.0.0.1:$http_port/t?k=warm" \
    || die "nginx did not start: $(cat "$run/nginx/logs/error.log")"

cat >"$run/keys.lua" <<'EOF'
math.randomseed(os.time())
request = function()
    return wrk.format("GET", "/t?k=" .. math.random(1, 1000000000))
end
EOF

calls() {
    _n=0
    for p in $ports; do
        c=$("$redis_cli" -p "$p" info commandstats \
            | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p')
        _n=$((_n + ${c:-0}))
    done
    echo "$_n"
}

set -- $pids
before_calls=$(calls)
b1=$(cpu "$1") b2=$(cpu "$2") b3=$(cpu "$3")
wrk -t1 -c"$conns" -d"${duration}s" -s "$run/keys.lua" \
    "http://127.0.0.1:$http_port/t" >"$run/wrk.out" 2>&1
a1=$(cpu "$1") a2=$(cpu "$2") a3=$(cpu "$3")
after_calls=$(calls)

requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$run/wrk.out")
non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)/\1/p' \
         "$run/wrk.out")
[ -n "$requests" ] || die "wrk: $(cat "$run/wrk.out")"

tck=$(getconf CLK_TCK)
cat "$run/wrk.out"
awk -v req="$requests" -v non="${non2xx:-0}" -v d="$duration" \
    -v calls=$((after_calls - before_calls)) -v tck="$tck" \
    -v c1=$((a1 - b1)) -v c2=$((a2 - b2)) -v c3=$((a3 - b3)) '
BEGIN {
    cpu = (c1 + c2 + c3) / tck
    printf "requests %d (non-2xx %d), script calls on the masters %d\n",
        req, non, calls
    printf "decisions per second: %.0f\n", req / d
    printf "redis CPU seconds: %.2f, %.2f, %.2f (of %d s each)\n",
        c1 / tck, c2 / tck, c3 / tck, d
    if (cpu > 0)
        printf "decisions per Redis CPU second (one core busy): %.0f\n",
            calls / cpu
    ok = non == 0 && calls >= req && calls <= req + 1000
    print ok ? "checks: ok" : "checks: FAILED"
    exit !ok
}'
