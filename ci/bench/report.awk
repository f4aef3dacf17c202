# The report of `make bench` (ci/bench.sh): reads the results file, one
# line per wrk run (set config round req/s p50 p99 nginx-us/r busy%
# redis-us/r calls/r calls reads usec/call valid), and prints a table of
# medians per set of rows, the pipelining, Redis, memory figures and the
# ratios the module is held to.  The figures of the memory and
# redis-benchmark runs and the environment come as -v variables.

function median(key, col,    n, i, j, t, v) {
    n = 0
    for (i = 1; i <= nrow; i++) {
        if (rkey[i] == key) v[++n] = val[i, col]
    }
    for (i = 2; i <= n; i++) {          # insertion sort, a few values
        t = v[i]
        for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
        v[j + 1] = t
    }
    if (n == 0) return 0
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function has(s, c) { return ((s " " c) in runs) }
function ok(s, c) { return has(s, c) && good[s " " c] == runs[s " " c] }
function title(s) {
    if (s == "w1") return "1 worker, no CPU pinning"
    if (s == "w2") return "2 workers, no CPU pinning"
    if (s == "pin") return sprintf("1 worker pinned to CPU %s; wrk and redis-server pinned to CPU %s", nginx_cpu, client_cpu)
    if (s == "base") return "1 worker, no CPU pinning, the baseline build (BENCH_BASELINE=" baseline ")"
    return s
}
# target LABEL VALUE FORMAT OK-SO-FAR GOOD
function target(label, v, fmt, valid, pass) {
    printf "  %-58s %-12s %s\n", label, sprintf(fmt, v),
        !valid ? "n/a" : pass < 0 ? "info" : pass ? "PASS" : "MISS"
}
{
    nrow++
    key = $1 " " $2
    rkey[nrow] = key
    for (c = 4; c <= NF; c++) val[nrow, c] = $c
    runs[key]++
    if ($NF == 1) good[key]++
    if (!($1 in seenset)) { seenset[$1] = 1; sets[++nsets] = $1 }
    if (!(key in seen)) { seen[key] = 1; ncfg[$1]++; cfgs[$1, ncfg[$1]] = $2 }
}
END {
    for (k = 1; k <= nsets; k++) {
        s = sets[k]
        for (m = 1; m <= ncfg[s]; m++) {
            key = s " " cfgs[s, m]
            rps[key] = median(key, 4); p50[key] = median(key, 5)
            p99[key] = median(key, 6); ngxus[key] = median(key, 7)
            busy[key] = median(key, 8); rcpu[key] = median(key, 9)
            cpr[key] = median(key, 10); upc[key] = median(key, 13)
        }
    }

    printf "\nngx_http_rate_limit_module benchmark: nginx %s, redis %s, %d CPUs\n",
        nginx_version, redis_version, ncpus
    printf "wrk -t%d -c%d, %d rounds x %d s per row, medians; load average %s at the start, %s after the rounds\n",
        threads, conns, rounds, duration, load, load_end
    if (!have_lua)
        printf "no openresty row: libnginx-mod-http-lua and lua-resty-core are not installed\n"

    for (k = 1; k <= nsets; k++) {
        s = sets[k]
        plain = rps[s " plain"]
        printf "\n%s: %s\n", s, title(s)
        printf "%-16s %9s %8s %8s %7s %10s %6s %10s %9s %s\n",
            "config", "req/s", "p50 ms", "p99 ms", "xplain",
            "nginx us/r", "cpu%", "redis us/r", "calls/r", "checks"
        for (m = 1; m <= ncfg[s]; m++) {
            key = s " " cfgs[s, m]
            printf "%-16s %9.0f %8.3f %8.3f %7s %10.2f %6.1f %10.2f %9.4f %s\n",
                cfgs[s, m], rps[key], p50[key], p99[key],
                (plain > 0 ? sprintf("%.2f", rps[key] / plain) : "-"),
                ngxus[key], busy[key], rcpu[key], cpr[key],
                (ok(s, cfgs[s, m]) ? sprintf("ok %d/%d", good[key], runs[key]) \
                    : sprintf("INVALID %d/%d ok", good[key], runs[key]))
        }
    }

    # pipelining: module commands per read, in w1's passing runs
    n = 0
    for (i = 1; i <= nrow; i++) {
        if (rkey[i] == "w1 rl_pass" && val[i, 12] > 0) {
            pipe[++n] = val[i, 11] / val[i, 12]
        }
    }
    for (i = 2; i <= n; i++) {
        t = pipe[i]
        for (j = i - 1; j >= 1 && pipe[j] > t; j--) pipe[j + 1] = pipe[j]
        pipe[j + 1] = t
    }
    cpr_pipe = n ? (n % 2 ? pipe[(n + 1) / 2] : (pipe[n / 2] + pipe[n / 2 + 1]) / 2) : 0

    rb_us = rb_calls ? rb_cpu * 1e6 / rb_calls : 0
    printf "\npipelining (w1 rl_pass): %.1f EVALSHA per Redis read (INFO total_reads_processed)\n", cpr_pipe
    for (k = 1; k <= nsets; k++) {
        key = sets[k] " rl_pass"
        if (!(key in runs) || !cpr[key]) continue
        printf "redis (%s rl_pass): %.2f us CPU per decision, of which %.2f us inside EVALSHA (INFO commandstats usec_per_call)\n",
            sets[k], rcpu[key] / cpr[key], upc[key]
    }
    printf "redis-benchmark -P16 -c%d, the EVALSHA of a passed request: %.2f us CPU per call, %.0f calls/s%s\n",
        conns, rb_us, rb_rps, rb_why != "" ? "   INVALID: " rb_why : ""
    key = "w1 openresty"
    if ((key in runs) && cpr[key])
        printf "redis (w1 openresty): %.2f us CPU per decision (its own GCRA script)\n",
            rcpu[key] / cpr[key]

    krps = kreq / (kdur / 1e6)
    printf "memory (w1 rl_keys): %d requests, %d distinct keys passed, %d rejected by Redis and cached, %.0f req/s, nginx %.2f us/r, redis %.2f us per call, used_memory %.1f MB\n",
        kreq, k200, k429, krps, kticks / hz * 1e6 / kreq,
        kcalls ? kcpu * 1e6 / kcalls : 0, kmem / 1048576
    printf "worker VmRSS %.1f MB before, %.1f MB after: %+.1f MB%s\n",
        rss0 / 1024, rss1 / 1024, (rss1 - rss0) / 1024,
        kwhy != "" ? "   INVALID:" kwhy : ""
    printf "redis stalls of 20 ms or more (LATENCY LATEST, max): %s\n",
        redis_stalls != "" ? redis_stalls : "none"
    if (nginx_errors > 0)
        printf "error.log: %d lines at error or above (see below)\n", nginx_errors

    # what the module is held to, per set
    printf "\nratios                                                       measured     target\n"
    for (k = 1; k <= nsets; k++) {
        s = sets[k]
        if (s == "base") continue
        P = s " rl_pass"; L = s " plain"; O = s " openresty"
        D = s " rl_deny_cache"; R = s " limit_req"
        printf "%s (%s)\n", s, title(s)
        v = rps[L] ? rps[P] / rps[L] : 0
        target("passed / plain, req/s >= 0.6", v, "%.2f x", ok(s, "rl_pass") && ok(s, "plain"), v >= 0.6)
        if (has(s, "openresty")) {
            v = rps[O] ? rps[P] / rps[O] : 0
            target("passed / OpenResty (Redis GCRA per request), req/s >= 3", v, "%.2f x", ok(s, "rl_pass") && ok(s, "openresty"), v >= 3)
        }
        v = ngxus[L] ? ngxus[P] / ngxus[L] : 0
        target("nginx CPU per passed request / plain's <= 1.4", v, "%.2f x", ok(s, "rl_pass") && ok(s, "plain"), v <= 1.4 && v > 0)
        v = rps[R] ? rps[D] / rps[R] : 0
        target("rejected from the deny cache / limit_req, req/s >= 0.95", v, "%.2f x", ok(s, "rl_deny_cache") && ok(s, "limit_req"), v >= 0.95)
        v = cpr[D]
        target("  ... Redis calls per rejected request, about 0", v, "%.4f", ok(s, "rl_deny_cache"), v < 0.001)
        v = (cpr[P] && rb_us) ? rcpu[P] / cpr[P] / rb_us : 0
        target("redis CPU per decision / redis-benchmark -P16's <= 1.5", v, "%.2f x", ok(s, "rl_pass") && rb_why == "", v <= 1.5 && v > 0)
    }
    if (has("base", "rl_pass")) {
        printf "base (this build against BENCH_BASELINE, 1 worker; for reading, no target)\n"
        for (m = 1; m <= ncfg["base"]; m++) {
            c = cfgs["base", m]
            B = "base " c; W = "w1 " c
            v = rps[B] ? rps[W] / rps[B] : 0
            target(sprintf("%s req/s, this build / baseline", c), v, "%.2f x", ok("base", c) && ok("w1", c), -1)
            v = ngxus[B] ? ngxus[W] / ngxus[B] : 0
            target(sprintf("%s nginx CPU per request, this build / baseline", c), v, "%.2f x", ok("base", c) && ok("w1", c), -1)
        }
    }
    t = (rss1 - rss0) / 1024
    printf "memory\n"
    target(sprintf("worker RSS after %d distinct keys <= start + 4 MB", nkeys), t, "%+.1f MB", kwhy == "", t <= 4)
}
