#!/bin/sh
# `make bench`: the module side by side with plain NGINX and limit_req, in
# one run, on loopback.
#
# It starts a private redis-server (no persistence, a free loopback port)
# and a private nginx (one worker, access_log off, error_log at warn, under
# a mktemp prefix) whose one server has a location per configuration:
#
#   plain          empty_gif, no limiting: the ceiling
#   limit_req      limit_req with a local zone that passes everything
#                  (1000000r/s, burst=1000000 nodelay)
#   rl_pass        rate_limit, every request passed: one hot key under
#                  rate=1000000r/s burst=1000000, so every request is an
#                  EVALSHA on the shared pipelined connection
#   rl_deny_cache  rate_limit, every request rejected: a key over its
#                  limit (rate=1r/d, used up before the runs), deny cache
#                  on (the default cache=10000): no Redis trip
#   rl_deny_nocache  the same with cache=0: every rejection asks Redis
#
# Rejecting locations use rate_limit_log_level info (below the error_log's
# warn), as one would under attack: with the default "error" every
# rejection would be a write(2) to the error log.  Module locations use
# rate_limit_fail_open off, so a Redis failure shows as a 503.
#
# Every wrk run is checked: the statuses (all 200, or all 429), the
# module's RateLimit field on every response of a module location (a
# fail-open pass has none), the Redis calls (EVALSHA + EVAL from INFO
# commandstats) against the requests, no socket errors.  A row with a run
# that fails a check is marked INVALID.
#
# CPU placement, for 2 cores: the nginx worker has CPU 0 to itself
# (worker_cpu_affinity, and taskset for the master); wrk (one thread) and
# redis-server share CPU 1.  NGINX is what is measured, so it gets a whole
# core, as on a real host whose Redis is elsewhere; Redis stands for that
# remote server.  The client is the limit of this arrangement: wrk costs
# about as much CPU per request as nginx does, so the worker of the plain
# configuration may not reach 100%.  The table therefore also shows the
# worker's busy share, and its CPU time per request (from /proc/PID/stat
# utime+stime), which does not depend on how hard the client pushed.
# With one CPU everything shares it.  BENCH_NGINX_CPU and BENCH_CLIENT_CPU
# override the placement.
#
# Rounds: every round runs each configuration once, the order rotated from
# round to round; the table gives medians over the rounds.  Then the
# memory run: BENCH_KEYS distinct X-Api-Key values (rate=1r/d: each passes
# once), the first BENCH_KEYS_TWICE of them sent twice, so that as many are
# rejected by Redis and entered into the deny cache (10000 entries: the
# LRU fills up and evicts); the worker's VmRSS before and after.
#
# Knobs (environment): BENCH_ROUNDS (5), BENCH_DURATION (5 s per run),
# BENCH_CONNECTIONS (50), BENCH_THREADS (1), BENCH_KEYS (1000000),
# BENCH_KEYS_TWICE (50000),
# BENCH_KEYS_MAX_TIME (150 s), BENCH_NICE (unset: as is; e.g. -10 to
# favour the benchmark's processes on a busy machine), NGINX (the binary).
# The defaults take about three and a half minutes.  Everything started here is
# stopped by pid, also on error or Ctrl-C.

set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

build=${BUILD:-build}
so=$top/$build/ngx_http_rate_limit_module.so
lua=$top/ci/bench

rounds=${BENCH_ROUNDS:-5}
duration=${BENCH_DURATION:-5}
conns=${BENCH_CONNECTIONS:-50}
threads=${BENCH_THREADS:-1}
nkeys=${BENCH_KEYS:-1000000}
ntwice=${BENCH_KEYS_TWICE:-50000}
keys_max_time=${BENCH_KEYS_MAX_TIME:-150}
nice_level=${BENCH_NICE:-}
nginx_bin=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }

[ -f "$so" ] || die "$so is missing: run make module (or make bench)"
[ -x "$nginx_bin" ] || die "no nginx binary (NGINX=...)"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null \
    || die "redis-server and redis-cli are needed (apt-get install redis-server)"

if ! command -v wrk >/dev/null; then
    [ "$(id -u)" = 0 ] || die "wrk is missing: apt-get install wrk"
    say "bench: installing wrk"
    apt-get install -y wrk >/dev/null 2>&1 \
        || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null; } \
        || die "could not install wrk"
fi

ncpu=$(nproc 2>/dev/null || echo 1)
if [ "$ncpu" -ge 2 ]; then
    nginx_cpu=${BENCH_NGINX_CPU:-0}
    client_cpu=${BENCH_CLIENT_CPU:-1}
else
    nginx_cpu=${BENCH_NGINX_CPU:-0}
    client_cpu=${BENCH_CLIENT_CPU:-0}
fi

# pin CPU CMD... &: runs CMD on that CPU (and at BENCH_NICE, when set) in
# place of the background subshell, so that $! is CMD's pid
pin() {
    cpu=$1
    shift
    if [ -n "$nice_level" ]; then
        set -- nice -n "$nice_level" "$@"
    fi
    if command -v taskset >/dev/null; then
        set -- taskset -c "$cpu" "$@"
    fi
    exec "$@"
}

run=$(mktemp -d "${TMPDIR:-/tmp}/rl-bench.XXXXXX")
redis_pid=
nginx_pid=
wrk_pid=

# alive PID: running, and not a zombie waiting for its parent
alive() {
    [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" ] \
        && [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]
}

# stop PID: TERM, then KILL after 10 s; waits until it is gone (and reaps
# it when it is a child of this shell)
stop() {
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || return 0
    i=0
    while alive "$1"; do
        i=$((i + 1))
        if [ $i -eq 100 ]; then
            kill -KILL "$1" 2>/dev/null
        fi
        sleep 0.1
    done
    wait "$1" 2>/dev/null
    return 0
}

cleanup() {
    trap - EXIT INT TERM HUP
    stop "$wrk_pid"
    # the master stops its worker before it exits
    stop "$nginx_pid"
    [ -n "${worker_pid:-}" ] && stop "$worker_pid"
    stop "$redis_pid"
    if [ -n "${BENCH_KEEP:-}" ]; then
        say "bench: kept $run"
    else
        rm -rf "$run"
    fi
}
trap cleanup EXIT
trap 'say "bench: interrupted"; exit 130' INT TERM HUP

free_port() {
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(Listen => 1,
             LocalAddr => "127.0.0.1:0")->sockport'
}

clk_tck=$(getconf CLK_TCK)

# cpu_ticks PID: utime + stime of a process, in clock ticks
cpu_ticks() {
    # the command name (field 2) may hold spaces: count from its ')'
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# calc EXPR: floating point arithmetic
calc() {
    awk "BEGIN { printf \"%.6f\", $* }"
}

rcli() {
    redis-cli -h 127.0.0.1 -p "$redis_port" "$@"
}

# redis_snapshot FILE: the INFO figures the bench uses, one "name value"
# a line
redis_snapshot() {
    rcli info all > "$1.info" 2>&1 || redis_gone
    tr -d '\r' < "$1.info" | awk -F: '
        /^used_cpu_sys:/  { sys = $2 }
        /^used_cpu_user:/ { user = $2 }
        /^total_reads_processed:/ { reads = $2 }
        /^total_commands_processed:/ { cmds = $2 }
        /^used_memory:/ { mem = $2 }
        /^cmdstat_evalsha:/ || /^cmdstat_eval:/ {
            split($2, f, /[=,]/); calls += f[2]; usec += f[4]
        }
        END {
            printf "cpu %.6f\nreads %d\ncmds %d\ncalls %d\nusec %d\nmem %d\n",
                   sys + user, reads, cmds, calls, usec, mem
        }' > "$1"
}

redis_gone() {
    say "bench: redis-server is gone:"
    tail -n 20 "$run/redis.log" >&2
    exit 1
}

# snap FILE NAME
snap() {
    awk -v k="$2" '$1 == k { print $2 }' "$1"
}

# field LINE NAME: a value from wrk's BENCH line
field() {
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# http PATH KEY: one request, prints the status
http() {
    curl -s -o /dev/null -w '%{http_code}' -H "X-Api-Key: $2" \
        "http://127.0.0.1:$nginx_port$1"
}


# Redis on the client's CPU.

redis_port=$(free_port)
pin "$client_cpu" redis-server --bind 127.0.0.1 --port "$redis_port" \
    --save '' --appendonly no --dir "$run" --daemonize no \
    --latency-monitor-threshold 20 \
    --logfile "$run/redis.log" &
redis_pid=$!

i=0
until rcli ping 2>/dev/null | grep -q PONG; do
    i=$((i + 1))
    [ $i -gt 100 ] && { cat "$run/redis.log" >&2; die "redis-server did not start"; }
    sleep 0.05
done


# NGINX: one worker on its own CPU.

nginx_port=$(free_port)
affinity=$(awk -v c="$nginx_cpu" 'BEGIN {
    s = "1"; for (i = 0; i < c; i++) s = s "0"; print s }')
mkdir -p "$run/logs"

# A private copy: a rebuild of build/ while the bench runs must not change
# the code under the running nginx.
cp "$so" "$run/ngx_http_rate_limit_module.so"

cat > "$run/nginx.conf" <<EOF
load_module $run/ngx_http_rate_limit_module.so;

worker_processes 1;
worker_cpu_affinity $affinity;
worker_rlimit_nofile 8192;
master_process on;
daemon off;
pid $run/nginx.pid;
error_log $run/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;

    # timeout=1s: a scheduling hiccup of a busy machine is not what is
    # measured (any timeout still shows, as a 503 that fails the checks)
    rate_limit_redis 127.0.0.1:$redis_port timeout=1s;

    # passes everything: 1 us emission interval, a second of burst
    rate_limit_zone bench_pass key=\$http_x_api_key rate=1000000r/s
                    burst=1000000;

    # one request a day: the bench's key is over its limit all run long
    rate_limit_zone bench_deny key=\$http_x_api_key rate=1r/d;
    rate_limit_zone bench_deny_nocache key=\$http_x_api_key rate=1r/d
                    cache=0;
    rate_limit_zone bench_keys key=\$http_x_api_key rate=1r/d;

    limit_req_zone \$http_x_api_key zone=bench_lr:10m rate=1000000r/s;

    server {
        listen 127.0.0.1:$nginx_port;

        location = /plain {
            empty_gif;
        }

        location = /limit_req {
            limit_req zone=bench_lr burst=1000000 nodelay;
            empty_gif;
        }

        location = /rl_pass {
            rate_limit bench_pass;
            rate_limit_fail_open off;
            empty_gif;
        }

        location = /rl_deny_cache {
            rate_limit bench_deny;
            rate_limit_fail_open off;
            rate_limit_log_level info;
            empty_gif;
        }

        location = /rl_deny_nocache {
            rate_limit bench_deny_nocache;
            rate_limit_fail_open off;
            rate_limit_log_level info;
            empty_gif;
        }

        location = /rl_keys {
            rate_limit bench_keys;
            rate_limit_fail_open off;
            rate_limit_log_level info;
            empty_gif;
        }
    }
}
EOF

"$nginx_bin" -t -q -p "$run" -c "$run/nginx.conf" -e "$run/error.log" \
    || { cat "$run/error.log" >&2; die "nginx -t failed"; }

pin "$nginx_cpu" "$nginx_bin" -p "$run" -c "$run/nginx.conf" \
    -e "$run/error.log" &
nginx_pid=$!

worker_pid=
i=0
while :; do
    worker_pid=$(pgrep -P "$nginx_pid" | head -n 1)
    if [ -n "$worker_pid" ] && [ "$(http /plain bench)" = 200 ]; then
        break
    fi
    i=$((i + 1))
    [ $i -gt 100 ] && { cat "$run/error.log" >&2; die "nginx did not start"; }
    sleep 0.05
done

# Use up the rejecting zones' key: 200 once, then 429 for a day.  The
# first 429 of the cached zone comes from Redis and enters the cache.
for loc in rl_deny_cache rl_deny_nocache; do
    http "/$loc" bench >/dev/null
    s=$(http "/$loc" bench)
    [ "$s" = 429 ] || die "/$loc answered $s after its key was used up"
done

# The module must have decided with Redis (not failed open) by now.
s=$(http /rl_pass bench)
[ "$s" = 200 ] || die "/rl_pass answered $s"


# the worker measured must be the one that served the run: a crashed
# worker is replaced by the master under a new pid
worker_alive() {
    if ! alive "$worker_pid"; then
        say "bench: the nginx worker $worker_pid is gone:"
        tail -n 20 "$run/error.log" >&2
        exit 1
    fi
}

configs="plain limit_req rl_pass rl_deny_cache rl_deny_nocache"
results=$run/results

expect_of() {
    case $1 in
    plain|limit_req|rl_pass) echo 200 ;;
    *) echo 429 ;;
    esac
}

# measure CONFIG ROUND: one wrk run, checked; appends a line to $results
measure() {
    cfg=$1
    round=$2
    expect=$(expect_of "$cfg")

    worker_alive
    redis_snapshot "$run/before"
    t0=$(cpu_ticks "$worker_pid")

    pin "$client_cpu" wrk -t "$threads" -c "$conns" -d "${duration}s" \
        -H "X-Api-Key: bench" -s "$lua/status.lua" \
        "http://127.0.0.1:$nginx_port/$cfg" > "$run/wrk.out" 2>&1 &
    wrk_pid=$!
    wait "$wrk_pid"
    wrk_pid=

    worker_alive
    t1=$(cpu_ticks "$worker_pid")
    redis_snapshot "$run/after"

    line=$(grep '^BENCH ' "$run/wrk.out")
    if [ -z "$line" ]; then
        say "bench: wrk failed on /$cfg:"
        cat "$run/wrk.out" >&2
        line="BENCH requests=0 duration_us=1 p50_us=0 p99_us=0 s200=0 s429=0 sother=0 rl=0 sockerr=0"
    fi

    req=$(field "$line" requests)
    dur=$(field "$line" duration_us)
    s200=$(field "$line" s200)
    s429=$(field "$line" s429)
    sother=$(field "$line" sother)
    rl=$(field "$line" rl)
    sockerr=$(field "$line" sockerr)

    calls=$(( $(snap "$run/after" calls) - $(snap "$run/before" calls) ))
    reads=$(( $(snap "$run/after" reads) - $(snap "$run/before" reads) ))
    rcpu=$(calc "$(snap "$run/after" cpu) - $(snap "$run/before" cpu)")
    usec=$(( $(snap "$run/after" usec) - $(snap "$run/before" usec) ))

    # the checks
    why=
    [ "$req" -gt 0 ] || why="$why no-requests"
    [ "$sockerr" -eq 0 ] || why="$why socket-errors=$sockerr"
    if [ "$expect" = 200 ]; then
        [ "$s200" -eq "$req" ] || why="$why 200s=$s200/$req"
    else
        [ "$s429" -eq "$req" ] || why="$why 429s=$s429/$req"
    fi
    [ "$sother" -eq 0 ] || why="$why other-statuses=$sother"
    case $cfg in
    rl_*)
        [ "$rl" -eq "$req" ] || why="$why ratelimit-fields=$rl/$req" ;;
    esac
    # requests in flight when wrk starts and stops: at most a
    # connection's worth each
    slack=$((2 * conns + 10))
    case $cfg in
    rl_pass|rl_deny_nocache)
        d=$((calls - req)); [ $d -lt 0 ] && d=$((-d))
        [ $d -le $slack ] || why="$why redis-calls=$calls/$req" ;;
    *)
        [ "$calls" -le "$slack" ] || why="$why redis-calls=$calls" ;;
    esac
    valid=1
    [ -z "$why" ] || valid=0

    [ "$req" -gt 0 ] || req=1
    awk -v cfg="$cfg" -v round="$round" -v req="$req" -v dur="$dur" \
        -v p50="$(field "$line" p50_us)" -v p99="$(field "$line" p99_us)" \
        -v ticks="$((t1 - t0))" -v hz="$clk_tck" -v rcpu="$rcpu" \
        -v calls="$calls" -v reads="$reads" -v valid="$valid" \
        -v usec="$usec" 'BEGIN {
            rps = req / (dur / 1e6)
            ncpu = ticks / hz * 1e6 / req
            busy = ticks / hz / (dur / 1e6) * 100
            printf "%s %d %.0f %.3f %.3f %.2f %.1f %.2f %.4f %d %d %.2f %d\n",
                cfg, round, rps, p50 / 1000, p99 / 1000, ncpu, busy,
                rcpu * 1e6 / req, calls / req, calls, reads,
                calls ? usec / calls : 0, valid
        }' >> "$results"

    printf '  round %s  %-16s %8.0f req/s%s\n' "$round" "$cfg" \
        "$(calc "$req / ($dur / 1e6)")" \
        "$( [ -n "$why" ] && printf '   INVALID:%s' "$why")" >&2
}

load=$(cut -d' ' -f1 /proc/loadavg)
say "bench: nginx worker $worker_pid on CPU $nginx_cpu; wrk and redis-server on CPU $client_cpu; load average $load before the start"
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    say "bench: the machine is busy (load $load): expect noisy figures"
fi

# Warm up every location (caches, connections, Redis's script), unchecked.
say "bench: warming up"
: > "$results"
saved_duration=$duration
duration=2
for cfg in $configs; do
    measure "$cfg" 0 2>/dev/null
done
duration=$saved_duration
: > "$results"

say "bench: $rounds rounds of $duration s per configuration, wrk -t$threads -c$conns"
r=1
while [ "$r" -le "$rounds" ]; do
    # rotate the order: each configuration takes each position in turn
    skip=$(( (r - 1) % 5 ))
    first=
    rest=
    i=0
    for cfg in $configs; do
        if [ $i -lt $skip ]; then rest="$rest $cfg"; else first="$first $cfg"; fi
        i=$((i + 1))
    done
    order="$first $rest"
    for cfg in $order; do
        measure "$cfg" "$r"
    done
    r=$((r + 1))
done


# Memory: distinct keys through the worker.

say "bench: $nkeys distinct keys, $ntwice of them twice (passed, then rejected and cached)"
rss0=$(rss_kb "$worker_pid")
redis_snapshot "$run/before"
t0=$(cpu_ticks "$worker_pid")
per=$(( (nkeys + threads - 1) / threads ))
twice=$(( (ntwice + threads - 1) / threads ))
pin "$client_cpu" wrk -t "$threads" -c "$conns" -d "${keys_max_time}s" \
    -s "$lua/keys.lua" "http://127.0.0.1:$nginx_port/rl_keys" \
    -- "$per" "$twice" > "$run/wrk.out" 2>&1 &
wrk_pid=$!
# wrk runs for a time, not a count: its threads stop sending once they
# have their answers, and SIGINT ends the run when Redis has had them all
calls0=$(snap "$run/before" calls)
while alive "$wrk_pid"; do
    sleep 0.2
    rcli info commandstats > "$run/poll" 2>&1 || redis_gone
    n=$(tr -d '\r' < "$run/poll" | awk -F'[:=,]' '
        /^cmdstat_evalsha:/ || /^cmdstat_eval:/ { n += $3 } END { print n + 0 }')
    if [ $((n - calls0)) -ge $(( (per + twice) * threads )) ]; then
        sleep 0.2
        kill -INT "$wrk_pid" 2>/dev/null
        break
    fi
done
wait "$wrk_pid"
wrk_pid=
worker_alive
t1=$(cpu_ticks "$worker_pid")
redis_snapshot "$run/after"
rss1=$(rss_kb "$worker_pid")

kline=$(grep '^BENCH ' "$run/wrk.out")
[ -n "$kline" ] || { cat "$run/wrk.out" >&2; die "wrk failed on /rl_keys"; }
kreq=$(field "$kline" requests)
k200=$(field "$kline" s200)
k429=$(field "$kline" s429)
kother=$(field "$kline" sother)
ksock=$(field "$kline" sockerr)
kcalls=$(( $(snap "$run/after" calls) - $(snap "$run/before" calls) ))
kcpu=$(calc "$(snap "$run/after" cpu) - $(snap "$run/before" cpu)")
kmem=$(snap "$run/after" mem)
kdur=$(field "$kline" duration_us)
kwhy=
# every key passes once: k200 distinct keys went through
[ "$k200" -ge "$nkeys" ] || kwhy="$kwhy only-$k200-keys-passed"
[ "$k429" -ge "$ntwice" ] || kwhy="$kwhy only-$k429-rejected"
[ "$kother" -eq 0 ] || kwhy="$kwhy other-statuses=$kother"
[ "$ksock" -eq 0 ] || kwhy="$kwhy socket-errors=$ksock"


# Redis's own stalls of 20 ms or more (latency-monitor-threshold), if any
redis_stalls=$(rcli latency latest 2>/dev/null | awk '
    NR % 4 == 1 { ev = $0 } NR % 4 == 0 { printf "%s%s %s ms", sep, ev, $0; sep = ", " }')

# Stop nginx first, so that its shutdown is checked too, then Redis.

stop "$nginx_pid"
nginx_pid=
stop "$worker_pid"
worker_pid=
stop "$redis_pid"
redis_pid=


# The report.

nginx_errors=$(grep -c -E '\[(error|crit|alert|emerg)\]|exited on signal' \
    "$run/error.log" 2>/dev/null)

awk -v rounds="$rounds" -v duration="$duration" -v conns="$conns" \
    -v threads="$threads" -v nginx_cpu="$nginx_cpu" \
    -v client_cpu="$client_cpu" -v nginx_version="$("$nginx_bin" -v 2>&1 | sed 's/.*\///')" \
    -v redis_version="$(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/')" \
    -v nkeys="$nkeys" -v kreq="$kreq" -v k200="$k200" -v k429="$k429" \
    -v kcalls="$kcalls" -v kcpu="$kcpu" -v kdur="$kdur" \
    -v kticks="$((t1 - t0))" -v hz="$clk_tck" -v kmem="$kmem" \
    -v rss0="$rss0" -v rss1="$rss1" -v kwhy="$kwhy" \
    -v redis_stalls="$redis_stalls" -v nginx_errors="$nginx_errors" -v load="$load" -v ncpus="$ncpu" '
function median(cfg, col,    n, i, j, t, v) {
    n = 0
    for (i = 1; i <= nrow; i++) {
        if (rcfg[i] == cfg) v[++n] = val[i, col]
    }
    for (i = 2; i <= n; i++) {          # insertion sort, a few values
        t = v[i]
        for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
        v[j + 1] = t
    }
    if (n == 0) return 0
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function mark(ok) { return ok ? "PASS" : "MISS" }
{
    nrow++
    rcfg[nrow] = $1
    for (c = 3; c <= NF; c++) val[nrow, c] = $c
    runs[$1]++
    if ($NF == 1) good[$1]++
    if (!($1 in seen)) { seen[$1] = 1; order[++ncfg] = $1 }
}
END {
    for (k = 1; k <= ncfg; k++) {
        cfg = order[k]
        rps[cfg] = median(cfg, 3); p50[cfg] = median(cfg, 4)
        p99[cfg] = median(cfg, 5); ngxus[cfg] = median(cfg, 6)
        busy[cfg] = median(cfg, 7); rcpu[cfg] = median(cfg, 8)
        cpr[cfg] = median(cfg, 9)
        okrow[cfg] = (good[cfg] == runs[cfg])
    }
    plain = rps["plain"]

    printf "\nngx_http_rate_limit_module benchmark: nginx %s, redis %s, %d CPUs\n",
        nginx_version, redis_version, ncpus
    printf "wrk -t%d -c%d, %d rounds x %d s per configuration, medians; nginx worker on CPU %s, wrk + redis-server on CPU %s; load average %s at start\n\n",
        threads, conns, rounds, duration, nginx_cpu, client_cpu, load

    printf "%-16s %9s %8s %8s %7s %10s %6s %10s %9s %s\n",
        "config", "req/s", "p50 ms", "p99 ms", "xplain",
        "nginx us/r", "busy%", "redis us/r", "calls/r", "checks"
    for (k = 1; k <= ncfg; k++) {
        cfg = order[k]
        printf "%-16s %9.0f %8.3f %8.3f %7.2f %10.2f %6.1f %10.2f %9.4f %s\n",
            cfg, rps[cfg], p50[cfg], p99[cfg],
            (plain > 0 ? rps[cfg] / plain : 0),
            ngxus[cfg], busy[cfg], rcpu[cfg], cpr[cfg],
            (okrow[cfg] ? sprintf("ok %d/%d", good[cfg], runs[cfg]) \
                        : sprintf("INVALID %d/%d ok", good[cfg], runs[cfg]))
    }

    # pipelining: module commands per read, in the passing runs
    n = 0
    for (i = 1; i <= nrow; i++) {
        if (rcfg[i] == "rl_pass" && val[i, 11] > 0) {
            pipe[++n] = val[i, 10] / val[i, 11]
        }
    }
    for (i = 2; i <= n; i++) {
        t = pipe[i]
        for (j = i - 1; j >= 1 && pipe[j] > t; j--) pipe[j + 1] = pipe[j]
        pipe[j + 1] = t
    }
    cpr_pipe = n ? (n % 2 ? pipe[(n + 1) / 2] : (pipe[n / 2] + pipe[n / 2 + 1]) / 2) : 0
    printf "\npipelining (rl_pass): %.1f EVALSHA per Redis read (INFO total_reads_processed)\n", cpr_pipe
    printf "redis (rl_pass): %.2f us CPU per decision, of which %.2f us inside EVALSHA (INFO commandstats usec_per_call)\n",
        cpr["rl_pass"] ? rcpu["rl_pass"] / cpr["rl_pass"] : 0, median("rl_pass", 12)

    krps = kreq / (kdur / 1e6)
    printf "memory (rl_keys): %d requests, %d distinct keys passed, %d rejected by Redis and cached, %.0f req/s, nginx %.2f us/r, redis %.2f us per call, used_memory %.1f MB\n",
        kreq, k200, k429, krps, kticks / hz * 1e6 / kreq,
        kcalls ? kcpu * 1e6 / kcalls : 0, kmem / 1048576
    printf "worker VmRSS %.1f MB before, %.1f MB after: %+.1f MB%s\n",
        rss0 / 1024, rss1 / 1024, (rss1 - rss0) / 1024,
        kwhy != "" ? "   INVALID:" kwhy : ""
    printf "redis stalls of 20 ms or more (LATENCY LATEST, max): %s\n",
        redis_stalls != "" ? redis_stalls : "none"
    if (nginx_errors > 0)
        printf "error.log: %d lines at error or above (see below)\n", nginx_errors

    # the targets of issue 5
    printf "\ntargets (issue 5)                                        measured      status\n"
    t = plain ? rps["rl_pass"] / plain : 0
    printf "%-56s %-13s %s\n", "passed req/s >= 0.55 x plain",
        sprintf("%.2f x", t), mark(t >= 0.55 && okrow["rl_pass"] && okrow["plain"])
    if (busy["rl_pass"] < 90 && ngxus["rl_pass"] > 0)
        printf "%-56s %-13s %s\n", "  (nginx not saturated: CPU 1 bounds it; 1/CPU per req)",
            sprintf("%.2f x", ngxus["plain"] / ngxus["rl_pass"]), "info"
    t = ngxus["plain"] ? ngxus["rl_pass"] / ngxus["plain"] : 0
    printf "%-56s %-13s %s\n", "nginx CPU per passed request <= 1.5 x plain",
        sprintf("%.2f x", t), mark(t <= 1.5 && t > 0 && okrow["rl_pass"] && okrow["plain"])
    t = cpr["rl_pass"] ? rcpu["rl_pass"] / cpr["rl_pass"] : 0
    printf "%-56s %-13s %s\n", "redis CPU per decision <= 10 us (rl_pass)",
        sprintf("%.2f us", t), mark(t <= 10 && t > 0 && okrow["rl_pass"])
    t = rps["limit_req"] ? rps["rl_deny_cache"] / rps["limit_req"] : 0
    printf "%-56s %-13s %s\n", "rejected (deny cache) req/s >= 0.9 x limit_req",
        sprintf("%.2f x", t), mark(t >= 0.9 && okrow["rl_deny_cache"] && okrow["limit_req"])
    t = cpr["rl_deny_cache"]
    printf "%-56s %-13s %s\n", "  ... with about 0 Redis calls per request",
        sprintf("%.4f", t), mark(t < 0.001 && okrow["rl_deny_cache"])
    t = (rss1 - rss0) / 1024
    printf "%-56s %-13s %s\n", sprintf("worker RSS after %d distinct keys <= start + 4 MB", nkeys),
        sprintf("%+.1f MB", t), mark(t <= 4 && kwhy == "")
}' "$results"

if [ "$nginx_errors" -gt 0 ]; then
    echo
    grep -E '\[(error|crit|alert|emerg)\]|exited on signal' "$run/error.log" \
        | head -n 20
fi
