-- wrk script for ci/bench.sh's memory run: distinct X-Api-Key values.
--
-- wrk -s keys.lua URL -- KEYS_PER_THREAD TWICE_PER_THREAD
--
-- Thread i sends the keys "b<i>-0", "b<i>-1", ... "b<i>-(KEYS_PER_THREAD-1)";
-- the first TWICE_PER_THREAD of them twice in a row (the two requests go
-- out on different connections at about the same time: one passes, the
-- other is rejected), the others once.  A thread stops sending once it has
-- had an answer to all of its requests; requests still asked for after the
-- last key repeat the last key.  Statuses are counted as in status.lua,
-- and the last line is machine-readable.

local threads = {}

function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end

function init(args)
    per = tonumber(args[1]) or 1000
    twice = math.min(tonumber(args[2]) or 0, per)
    total = per + twice
    sent, answered = 0, 0
    s200, s429, sother, rl = 0, 0, 0, 0
    prefix = "b" .. id .. "-"
end

function request()
    local k
    if sent < 2 * twice then
        k = math.floor(sent / 2)
    else
        k = math.min(sent - twice, per - 1)
    end
    sent = sent + 1
    return wrk.format(nil, nil, { ["X-Api-Key"] = prefix .. k })
end

function response(status, headers, body)
    if status == 200 then
        s200 = s200 + 1
    elseif status == 429 then
        s429 = s429 + 1
    else
        sother = sother + 1
    end
    if headers["RateLimit"] then
        rl = rl + 1
    end
    answered = answered + 1
    if answered == total then
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    local t = { s200 = 0, s429 = 0, sother = 0, rl = 0 }
    for _, thread in ipairs(threads) do
        for k in pairs(t) do
            t[k] = t[k] + (thread:get(k) or 0)
        end
    end
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d "
        .. "s200=%d s429=%d sother=%d rl=%d sockerr=%d\n",
        summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99),
        t.s200, t.s429, t.sother, t.rl,
        e.connect + e.read + e.write + e.timeout))
end
