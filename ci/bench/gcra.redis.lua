-- The Redis script of the OpenResty row of `make bench` (ci/bench.sh):
-- GCRA as an OpenResty user writes it, run by resty_gcra.lua with EVALSHA
-- once per request.  Not the module's script (lua/ holds that).
--
-- KEYS[1]  the key
-- ARGV[1]  emission interval, microseconds (1 s / rate)
-- ARGV[2]  burst: requests allowed at once beyond the rate
-- Returns {allowed (1 or 0), remaining, retry after (ms)}.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])

local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
    tat = now
end

if tat - now > tolerance then
    return {0, 0, math.ceil((tat - now - tolerance) / 1000)}
end

tat = tat + interval
redis.call('SET', KEYS[1], tat, 'PX', math.ceil((tat - now) / 1000) + 1)

return {1, math.floor((tolerance - (tat - now)) / interval) + 1, 0}
