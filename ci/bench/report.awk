# The report of `make bench` (ci/bench.sh): reads the results file, one
# line per wrk run (config round req/s p50 p99 nginx-us/r busy% redis-us/r
# calls/r calls reads usec/call valid), and prints the table of medians,
# the pipelining, memory and Redis figures, and the targets.  The figures
# of the memory run and the environment come as -v variables.

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

    # what the module is held to
    printf "\ntargets                                                  measured      status\n"
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
}