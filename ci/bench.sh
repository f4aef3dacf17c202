#!/bin/sh
# `make bench`: the module side by side with plain NGINX, limit_req and
# OpenResty, in one run, on loopback.
#
# It starts a private redis-server (no persistence, a free loopback port)
# and private nginx instances (access_log off, error_log at warn, each
# under a mktemp prefix), each a set of rows:
#
#   w1    1 worker: the rows below
#   w2    2 workers (the common deployment): plain, limit_req, rl_pass,
#         rl_deny_cache, openresty
#   pin   with BENCH_PIN=1: the w1 rows again, the worker pinned to one
#         CPU and wrk + redis-server to the other
#   base  with BENCH_BASELINE=FILE.so (another build of the module, e.g.
#         main's): rl_pass and rl_deny_nocache with that build, 1 worker,
#         beside w1's rows of this build
#
# Each instance's one server has a location per configuration:
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
#   openresty      Debian's lua module (libnginx-mod-http-lua with
#                  lua-resty-core) loaded next to this one: access_by_lua
#                  decides the same rate and burst as rl_pass with a GCRA
#                  script in Redis, one EVALSHA round trip per request over
#                  a pooled cosocket (ci/bench/resty_gcra.lua,
#                  gcra.redis.lua), as OpenResty users write it.  Without
#                  the lua module the row is left out, and the run says so.
#
# Rejecting locations use rate_limit_log_level info (below the error_log's
# warn), as one would under attack: with the default "error" every
# rejection would be a write(2) to the error log.  Module locations use
# rate_limit_fail_open off, so a Redis failure shows as a 503.
#
# Every wrk run is checked: the statuses (all 200, or all 429), the
# RateLimit field on every response of a module location or of openresty
# (a fail-open pass has none), the Redis calls (EVALSHA + EVAL from INFO
# commandstats) against the requests (one each for rl_pass,
# rl_deny_nocache and openresty, none for the others), no socket errors.
# A row with a run that fails a check is marked INVALID.
#
# CPU placement: none by default.  The kernel places nginx's workers, wrk
# (one thread) and redis-server on the machine's CPUs, as on a user's
# first benchmark; on 2 CPUs they compete.  BENCH_PIN=1 adds the pinned
# set (BENCH_NGINX_CPU, default 0, for the worker; BENCH_CLIENT_CPU,
# default 1, for wrk and Redis while its rows run); setting either CPU
# also turns it on.  Besides req/s, the table gives the workers' CPU time
# per request (utime+stime from /proc/PID/stat, summed over the set's
# workers), which depends much less on how hard the client pushed.
#
# Redis CPU per decision is set against redis-benchmark running the very
# EVALSHA a passed request sends (caught with MONITOR), with -P16.
#
# Rounds: every round runs each row of every set once, the order rotated
# from round to round; the tables give medians over the rounds.  Then the
# memory run on w1: BENCH_KEYS distinct X-Api-Key values (rate=1r/d: each
# passes once), the first BENCH_KEYS_TWICE of them sent twice, so that as
# many are rejected by Redis and entered into the deny cache (10000
# entries: the LRU fills up and evicts); the worker's VmRSS before and
# after.
#
# Knobs (environment): BENCH_ROUNDS (5), BENCH_DURATION (5 s per run),
# BENCH_CONNECTIONS (50), BENCH_THREADS (1), BENCH_KEYS (1000000),
# BENCH_KEYS_TWICE (50000), BENCH_KEYS_MAX_TIME (150 s),
# BENCH_REDIS_REQUESTS (200000, redis-benchmark's -n), BENCH_PIN,
# BENCH_NGINX_CPU, BENCH_CLIENT_CPU, BENCH_BASELINE, BENCH_NICE (unset: as
# is; e.g. -10 to favour the benchmark's processes on a busy machine),
# BENCH_KEEP (keep the run's directory), NGINX (the binary).  The defaults
# take about six minutes.  Everything started here is stopped by pid, also
# on error or Ctrl-C.
#
# The nginx configuration is ci/bench/nginx.conf.in, the report
# ci/bench/report.awk, wrk's scripts ci/bench/status.lua and keys.lua;
# ports, waiting and stopping by pid come from ci/lib.sh.

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
redis_requests=${BENCH_REDIS_REQUESTS:-200000}
baseline=${BENCH_BASELINE:-}
nice_level=${BENCH_NICE:-}
nginx_bin=${NGINX:-$(nginx_binary)}

pinned=${BENCH_PIN:-0}
[ -n "${BENCH_NGINX_CPU:-}${BENCH_CLIENT_CPU:-}" ] && pinned=1
[ "$pinned" = 0 ] || pinned=1

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }

[ -f "$so" ] || die "$so is missing: run make module (or make bench)"
[ -z "$baseline" ] || [ -f "$baseline" ] || die "BENCH_BASELINE: no $baseline"
[ -x "$nginx_bin" ] || die "no nginx binary (NGINX=...)"
for c in redis-server redis-cli redis-benchmark; do
    command -v $c >/dev/null \
        || die "$c is needed (apt-get install redis-server redis-tools)"
done

if ! command -v wrk >/dev/null; then
    [ "$(id -u)" = 0 ] || die "wrk is missing: apt-get install wrk"
    say "bench: installing wrk"
    apt-get install -y wrk >/dev/null 2>&1 \
        || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null; } \
        || die "could not install wrk"
fi

# the OpenResty row: Debian's lua module and the lua-resty-core it needs
lua_mod=/usr/lib/nginx/modules/ngx_http_lua_module.so
if [ -f "$lua_mod" ] && [ -f /usr/lib/nginx/modules/ndk_http_module.so ] \
   && [ -f /usr/share/lua/5.1/resty/core.lua ]
then
    have_lua=1
else
    have_lua=0
    say "bench: no openresty row: libnginx-mod-http-lua and lua-resty-core are not installed"
fi

ncpu=$(nproc 2>/dev/null || echo 1)
nginx_cpu=${BENCH_NGINX_CPU:-0}
if [ "$ncpu" -ge 2 ]; then
    client_cpu=${BENCH_CLIENT_CPU:-1}
else
    client_cpu=${BENCH_CLIENT_CPU:-0}
fi
all_cpus=0-$((ncpu - 1))

# on CPU CMD...: runs CMD on that CPU (any when CPU is empty), at
# BENCH_NICE when set, in place of the background subshell, so that $! is
# CMD's pid
on() {
    _cpu=$1
    shift
    if [ -n "$nice_level" ]; then
        set -- nice -n "$nice_level" "$@"
    fi
    if [ -n "$_cpu" ] && command -v taskset >/dev/null; then
        set -- taskset -c "$_cpu" "$@"
    fi
    exec "$@"
}

run=$(mktemp -d "${TMPDIR:-/tmp}/rl-bench.XXXXXX")
redis_pid=
wrk_pid=
mon_pid=
masters=
all_workers=

cleanup() {
    trap - EXIT INT TERM HUP
    stop "$wrk_pid" "$mon_pid"
    # a master stops its workers before it exits
    # shellcheck disable=SC2086
    stop $masters
    # shellcheck disable=SC2086
    stop $all_workers
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

# cpu_ticks PID...: utime + stime of processes, in clock ticks
cpu_ticks() {
    for _p in "$@"; do
        # the command name (field 2) may hold spaces: count from its ')'
        sed 's/^.*) //' "/proc/$_p/stat"
    done | awk '{ t += $12 + $13 } END { print t + 0 }'
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

# delta NAME: after's figure minus before's
delta() {
    echo $(( $(snap "$run/after" "$1") - $(snap "$run/before" "$1") ))
}

# field LINE NAME: a value from wrk's BENCH line
field() {
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# http PORT PATH KEY: one request, prints the status
http() {
    curl -s -o /dev/null -w '%{http_code}' -H "X-Api-Key: $3" \
        "http://127.0.0.1:$1$2"
}


# Redis: anywhere (the pinned set moves it while its rows run).

redis_port=$(free_port)
on "" redis-server --bind 127.0.0.1 --port "$redis_port" \
    --save '' --appendonly no --dir "$run" --daemonize no \
    --latency-monitor-threshold 20 \
    --logfile "$run/redis.log" &
redis_pid=$!

wait_for 100 redis_up redis-cli "$redis_port" \
    || { cat "$run/redis.log" >&2; die "redis-server did not start"; }


# start_set SET WORKERS MODULE CPU: an nginx instance for a set of rows,
# its workers pinned to CPU unless CPU is empty; sets port_SET,
# master_SET and workers_SET
start_set() {
    _set=$1 _n=$2 _so=$3 _cpu=$4
    _dir=$run/$_set
    mkdir -p "$_dir/logs"

    # A private copy: a rebuild of build/ while the bench runs must not
    # change the code under the running nginx.
    cp "$_so" "$_dir/module.so"

    _port=$(free_port)
    _pin='/^@PIN@/d'
    _aff=
    if [ -n "$_cpu" ]; then
        _pin='s/^@PIN@//'
        _aff=$(awk -v c="$_cpu" 'BEGIN {
            s = "1"; for (i = 0; i < c; i++) s = s "0"; print s }')
    fi
    _lua='/^@LUA@/d'
    [ "$have_lua" = 1 ] && _lua='s/^@LUA@//'

    sed -e "$_pin" -e "$_lua" -e "s|@RUN@|$_dir|g" \
        -e "s|@MODULE@|$_dir/module.so|" -e "s|@WORKERS@|$_n|" \
        -e "s|@AFFINITY@|$_aff|" -e "s|@REDIS_PORT@|$redis_port|g" \
        -e "s|@PORT@|$_port|" -e "s|@BENCH@|$lua|g" \
        "$top/ci/bench/nginx.conf.in" > "$_dir/nginx.conf"

    "$nginx_bin" -t -q -p "$_dir" -c "$_dir/nginx.conf" -e "$_dir/error.log" \
        || { cat "$_dir/error.log" >&2; die "$_set: nginx -t failed"; }

    on "$_cpu" "$nginx_bin" -p "$_dir" -c "$_dir/nginx.conf" \
        -e "$_dir/error.log" &
    _master=$!
    masters="$masters $_master"

    _i=0
    while :; do
        _w=$(pgrep -P "$_master" | tr '\n' ' ' | sed 's/ *$//')
        if [ "$(echo $_w | wc -w)" -eq "$_n" ] \
           && [ "$(http "$_port" /plain bench)" = 200 ]
        then
            break
        fi
        _i=$((_i + 1))
        [ $_i -gt 100 ] && { cat "$_dir/error.log" >&2; die "$_set: nginx did not start"; }
        sleep 0.05
    done
    all_workers="$all_workers $_w"

    eval "port_$_set=\$_port master_$_set=\$_master workers_$_set=\"\$_w\""

    # Use up the rejecting zones' key: 200 once (on the first set), then
    # 429 for a day.  The first 429 of the cached zone comes from Redis and
    # enters the cache.
    for _loc in rl_deny_cache rl_deny_nocache; do
        http "$_port" "/$_loc" bench >/dev/null
        _s=$(http "$_port" "/$_loc" bench)
        [ "$_s" = 429 ] || die "$_set: /$_loc answered $_s after its key was used up"
    done

    # The module must decide with Redis (not fail open) by now.
    _s=$(http "$_port" /rl_pass bench)
    [ "$_s" = 200 ] || die "$_set: /rl_pass answered $_s"
}

rows_w1="plain limit_req rl_pass rl_deny_cache rl_deny_nocache"
rows_w2="plain limit_req rl_pass rl_deny_cache"
if [ "$have_lua" = 1 ]; then
    rows_w1="$rows_w1 openresty"
    rows_w2="$rows_w2 openresty"
fi
rows_pin=$rows_w1
rows_base="rl_pass rl_deny_nocache"

sets="w1 w2"
[ "$pinned" = 1 ] && sets="$sets pin"
[ -n "$baseline" ] && sets="$sets base"

for set in $sets; do
    case $set in
    w1)   start_set w1 1 "$so" "" ;;
    w2)   start_set w2 2 "$so" "" ;;
    pin)  start_set pin 1 "$so" "$nginx_cpu" ;;
    base) start_set base 1 "$baseline" "" ;;
    esac
done

runs=
for set in $sets; do
    eval "rows=\$rows_$set"
    for cfg in $rows; do
        runs="$runs $set:$cfg"
    done
done


# the workers measured must be those that served the run: a crashed
# worker is replaced by the master under a new pid
workers_alive() {
    for _p in "$@"; do
        if ! alive "$_p"; then
            say "bench: the nginx worker $_p is gone:"
            tail -n 20 "$run"/*/error.log >&2
            exit 1
        fi
    done
}

results=$run/results

expect_of() {
    case $1 in
    plain|limit_req|rl_pass|openresty) echo 200 ;;
    *) echo 429 ;;
    esac
}

# measure SET CONFIG ROUND: one wrk run, checked; appends a line to
# $results
measure() {
    set=$1
    cfg=$2
    round=$3
    expect=$(expect_of "$cfg")
    eval "port=\$port_$set workers=\$workers_$set"

    cpu=
    if [ "$set" = pin ]; then
        cpu=$client_cpu
        taskset -a -p -c "$client_cpu" "$redis_pid" >/dev/null
    fi

    # shellcheck disable=SC2086
    workers_alive $workers
    redis_snapshot "$run/before"
    # shellcheck disable=SC2086
    t0=$(cpu_ticks $workers)

    on "$cpu" wrk -t "$threads" -c "$conns" -d "${duration}s" \
        -H "X-Api-Key: bench" -s "$lua/status.lua" \
        "http://127.0.0.1:$port/$cfg" > "$run/wrk.out" 2>&1 &
    wrk_pid=$!
    wait "$wrk_pid"
    wrk_pid=

    # shellcheck disable=SC2086
    workers_alive $workers
    # shellcheck disable=SC2086
    t1=$(cpu_ticks $workers)
    redis_snapshot "$run/after"

    if [ "$set" = pin ]; then
        taskset -a -p -c "$all_cpus" "$redis_pid" >/dev/null
    fi

    line=$(grep '^BENCH ' "$run/wrk.out")
    if [ -z "$line" ]; then
        say "bench: wrk failed on $set /$cfg:"
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

    calls=$(delta calls)
    reads=$(delta reads)
    usec=$(delta usec)
    rcpu=$(calc "$(snap "$run/after" cpu) - $(snap "$run/before" cpu)")

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
    rl_*|openresty)
        [ "$rl" -eq "$req" ] || why="$why ratelimit-fields=$rl/$req" ;;
    esac
    # requests in flight when wrk starts and stops: at most a
    # connection's worth each
    slack=$((2 * conns + 10))
    case $cfg in
    rl_pass|rl_deny_nocache|openresty)
        d=$((calls - req)); [ $d -lt 0 ] && d=$((-d))
        [ $d -le $slack ] || why="$why redis-calls=$calls/$req" ;;
    *)
        [ "$calls" -le "$slack" ] || why="$why redis-calls=$calls" ;;
    esac
    valid=1
    [ -z "$why" ] || valid=0

    [ "$req" -gt 0 ] || req=1
    awk -v set="$set" -v cfg="$cfg" -v round="$round" -v req="$req" \
        -v dur="$dur" -v p50="$(field "$line" p50_us)" \
        -v p99="$(field "$line" p99_us)" \
        -v ticks="$((t1 - t0))" -v hz="$clk_tck" -v rcpu="$rcpu" \
        -v calls="$calls" -v reads="$reads" -v valid="$valid" \
        -v usec="$usec" 'BEGIN {
            rps = req / (dur / 1e6)
            ncpu = ticks / hz * 1e6 / req
            busy = ticks / hz / (dur / 1e6) * 100
            printf "%s %s %d %.0f %.3f %.3f %.2f %.1f %.2f %.4f %d %d %.2f %d\n",
                set, cfg, round, rps, p50 / 1000, p99 / 1000, ncpu, busy,
                rcpu * 1e6 / req, calls / req, calls, reads,
                calls ? usec / calls : 0, valid
        }' >> "$results"

    printf '  round %s  %-4s %-16s %8.0f req/s%s\n' "$round" "$set" "$cfg" \
        "$(calc "$req / ($dur / 1e6)")" \
        "$( [ -n "$why" ] && printf '   INVALID:%s' "$why")" >&2
}

load=$(cut -d' ' -f1 /proc/loadavg)
say "bench: sets $sets; $ncpu CPUs; load average $load before the start"
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    say "bench: the machine is busy (load $load): expect noisy figures"
fi

# Warm up every row (caches, connections, Redis's scripts), unchecked.
say "bench: warming up"
: > "$results"
saved_duration=$duration
duration=2
for r in $runs; do
    measure "${r%%:*}" "${r#*:}" 0 2>/dev/null
done
duration=$saved_duration
: > "$results"

nruns=$(echo $runs | wc -w)
say "bench: $rounds rounds of $duration s per row, wrk -t$threads -c$conns"
round=1
while [ "$round" -le "$rounds" ]; do
    # rotate the order: each row takes each position in turn
    skip=$(( (round - 1) % nruns ))
    first=
    rest=
    i=0
    for r in $runs; do
        if [ $i -lt $skip ]; then rest="$rest $r"; else first="$first $r"; fi
        i=$((i + 1))
    done
    for r in $first $rest; do
        measure "${r%%:*}" "${r#*:}" "$round"
    done
    round=$((round + 1))
done
load_end=$(cut -d' ' -f1 /proc/loadavg)


# Redis alone: redis-benchmark sends the EVALSHA a passed request sends,
# 16 to a write (-P16), as its reference for Redis's CPU per decision.

on "" redis-cli -h 127.0.0.1 -p "$redis_port" monitor > "$run/monitor.out" 2>&1 &
mon_pid=$!
sleep 0.3
http "$port_w1" /rl_pass bench >/dev/null
sleep 0.3
stop "$mon_pid"
mon_pid=
evalsha=$(grep -i -m 1 '"evalsha"' "$run/monitor.out")
[ -n "$evalsha" ] || die "MONITOR did not show the module's EVALSHA"

redis_snapshot "$run/before"
# MONITOR's line: time [db addr] "arg" "arg" ... with C-style escapes
perl -e '
    my $line = shift;
    $line =~ s/^[^\]]*\] //;
    my %esc = (n => "\n", r => "\r", t => "\t", a => "\a", b => "\b");
    my @args;
    while ($line =~ /"((?:[^"\\]|\\.)*)"/g) {
        my $s = $1;
        $s =~ s/\\(x[0-9a-fA-F]{2}|.)/
            length $1 == 3 ? chr hex substr($1, 1)
                           : exists $esc{$1} ? $esc{$1} : $1/ge;
        push @args, $s;
    }
    exec @ARGV, @args or die "redis-benchmark: $!\n";
' "$evalsha" redis-benchmark -h 127.0.0.1 -p "$redis_port" \
    -n "$redis_requests" -P 16 -c "$conns" -q > "$run/rb.out" 2>&1 \
    || { cat "$run/rb.out" >&2; die "redis-benchmark failed"; }
redis_snapshot "$run/after"
rb_calls=$(delta calls)
rb_cpu=$(calc "$(snap "$run/after" cpu) - $(snap "$run/before" cpu)")
rb_rps=$(tr '\r' '\n' < "$run/rb.out" | awk '/requests per second/ {
    for (i = 1; i <= NF; i++) if ($(i + 1) == "requests") v = $i } END { print v + 0 }')
rb_why=
[ "$rb_calls" -ge "$redis_requests" ] || rb_why="only $rb_calls calls"


# Memory: distinct keys through w1's worker.

worker_pid=$workers_w1
say "bench: $nkeys distinct keys, $ntwice of them twice (passed, then rejected and cached)"
rss0=$(rss_kb "$worker_pid")
redis_snapshot "$run/before"
t0=$(cpu_ticks "$worker_pid")
per=$(( (nkeys + threads - 1) / threads ))
twice=$(( (ntwice + threads - 1) / threads ))
on "" wrk -t "$threads" -c "$conns" -d "${keys_max_time}s" \
    -s "$lua/keys.lua" "http://127.0.0.1:$port_w1/rl_keys" \
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
workers_alive "$worker_pid"
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
kcalls=$(delta calls)
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

# shellcheck disable=SC2086
stop $masters
masters=
# shellcheck disable=SC2086
stop $all_workers
all_workers=
stop "$redis_pid"
redis_pid=


# The report.

nginx_errors=$(cat "$run"/*/error.log 2>/dev/null \
    | grep -c -E '\[(error|crit|alert|emerg)\]|exited on signal')

awk -v rounds="$rounds" -v duration="$duration" -v conns="$conns" \
    -v threads="$threads" -v nginx_cpu="$nginx_cpu" \
    -v client_cpu="$client_cpu" -v nginx_version="$("$nginx_bin" -v 2>&1 | sed 's/.*\///')" \
    -v redis_version="$(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/')" \
    -v nkeys="$nkeys" -v kreq="$kreq" -v k200="$k200" -v k429="$k429" \
    -v kcalls="$kcalls" -v kcpu="$kcpu" -v kdur="$kdur" \
    -v kticks="$((t1 - t0))" -v hz="$clk_tck" -v kmem="$kmem" \
    -v rss0="$rss0" -v rss1="$rss1" -v kwhy="$kwhy" \
    -v rb_calls="$rb_calls" -v rb_cpu="$rb_cpu" -v rb_rps="$rb_rps" \
    -v rb_why="$rb_why" -v have_lua="$have_lua" -v baseline="$baseline" \
    -v redis_stalls="$redis_stalls" -v nginx_errors="$nginx_errors" \
    -v load="$load" -v load_end="$load_end" -v ncpus="$ncpu" \
    -f "$top/ci/bench/report.awk" "$results"

if [ "$nginx_errors" -gt 0 ]; then
    echo
    cat "$run"/*/error.log \
        | grep -E '\[(error|crit|alert|emerg)\]|exited on signal' | head -n 20
fi
