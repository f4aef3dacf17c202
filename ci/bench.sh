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
#
# The nginx configuration is ci/bench/nginx.conf.in, the report
# ci/bench/report.awk, wrk's scripts ci/bench/*.lua; ports, waiting and
# stopping by pid come from ci/lib.sh.

set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. ci/lib.sh

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
nginx_bin=${NGINX:-$(nginx_binary)}

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

wait_for 100 redis_up redis-cli "$redis_port" \
    || { cat "$run/redis.log" >&2; die "redis-server did not start"; }


# NGINX: one worker on its own CPU.

nginx_port=$(free_port)
affinity=$(awk -v c="$nginx_cpu" 'BEGIN {
    s = "1"; for (i = 0; i < c; i++) s = s "0"; print s }')
mkdir -p "$run/logs"

# A private copy: a rebuild of build/ while the bench runs must not change
# the code under the running nginx.
cp "$so" "$run/ngx_http_rate_limit_module.so"

sed -e "s|@RUN@|$run|g" -e "s|@AFFINITY@|$affinity|" \
    -e "s|@REDIS_PORT@|$redis_port|" -e "s|@PORT@|$nginx_port|" \
    "$top/ci/bench/nginx.conf.in" > "$run/nginx.conf"

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
    -v redis_stalls="$redis_stalls" -v nginx_errors="$nginx_errors" \
    -v load="$load" -v ncpus="$ncpu" \
    -f "$top/ci/bench/report.awk" "$results"

if [ "$nginx_errors" -gt 0 ]; then
    echo
    grep -E '\[(error|crit|alert|emerg)\]|exited on signal' "$run/error.log" \
        | head -n 20
fi
