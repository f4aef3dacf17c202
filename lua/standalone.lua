-- standalone.lua: the driver that runs one lua/ALG.lua alone, for the
-- script tests (t/10N-script-*.t).  t/lib/Test/RateLimit/Script.pm puts
-- it at the file's "-- [standalone]" line, below which the file says
--
--   return rl_standalone(PFX_check, PFX_commit, 'ALG', burst_min)
--
-- ARGV      now_us, n, period_us, burst[, cost[, member]]: integers below
--           2^53 but the member; now_us "0" takes the time from Redis TIME;
--           n and period_us at least 1, burst at least burst_min, cost
--           (default 1) at least 0; member (a string, for concurrency) is
--           passed to check after its peek argument.
-- Reply     the algorithm's {allowed, limit, remaining, reset_after_ms,
--           retry_after_ms}, or an error reply that names ALG and the bad
--           argument.  Writes only when the algorithm admits.
--
-- The module's script (lua/multi.lua and the parts of lua/ALG.lua above
-- the line) never contains it.

local function rl_standalone(check, commit, alg, burst_min)
    local a = {}
    for i = 1, 5 do
        local v = tonumber(ARGV[i] or (i == 5 and '1') or '')
        local min = (i == 1 or i == 5) and 0 or (i == 4) and burst_min or 1
        if v == nil or v ~= math.floor(v) or v < min or v >= 2^53 then
            return redis.error_reply('ERR rate_limit: ' .. alg
                                     .. ': bad ARGV[' .. i .. ']')
        end
        a[i] = v
    end
    if a[1] == 0 then
        local t = redis.call('TIME')
        a[1] = tonumber(t[1]) * 1000000 + tonumber(t[2])
    end
    -- check returns the reply's six values, then what commit needs; the
    -- delay is the burst (nothing is held), and the driver leaves delay_ms
    -- out: tests of delay= run lua/multi.lua
    local r = {check(KEYS, 0, #KEYS, a[2], a[3], a[4], a[5], a[1], false,
                     ARGV[6], a[4])}
    if r[1] == nil then
        return redis.error_reply(r[2])
    end
    if r[1] == 1 then
        commit(KEYS, 0, #KEYS, a[2], a[3], a[4], a[5], a[1], r[7], r[8],
               r[9])
    end
    return {r[1], r[2], r[3], r[4], r[5]}
end
