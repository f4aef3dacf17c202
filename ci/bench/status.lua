-- wrk script for ci/bench.sh: counts the response statuses, and the
-- responses that carry the module's RateLimit field (proof that the module
-- decided the request with an answer: a fail-open error sends no field),
-- then prints one machine-readable line.
--
-- wrk -s status.lua URL [-- EXPECT]  (EXPECT is only echoed back)

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    s200, s429, sother, rl = 0, 0, 0, 0
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
