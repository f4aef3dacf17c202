-- fixed_window.lua: a counter per window of period_us, windows aligned to
-- the Unix epoch (window w covers [w * period_us, (w + 1) * period_us), so
-- an r/d window resets at 00:00 UTC).
--
-- KEYS      candidates PREFIX:{ZONE:CLIENT}:fw:W, W the decimal window
--           number; the module passes the windows before, at and after its
--           own clock's (3 keys).  The script uses the key whose ":W" suffix
--           is the window of its own now, whatever its position, and fails
--           with an error naming the window if none is.  The key holds the
--           count of requests admitted in that window.
-- ARGV      (standalone) now_us, n, period_us, burst; now_us "0" takes the
--           time from Redis TIME.  n requests per window; burst is unused.
--
-- A request is allowed iff the window's count is below n; a denied request
-- writes nothing.
--
-- Reply: {allowed, limit, remaining, reset_after_ms, retry_after_ms}
--   limit          n
--   remaining      n - count, what this window still admits
--   reset_after_ms until the window ends (ceil)
--   retry_after_ms until the window ends when remaining is 0 (ceil,
--                  >= 1), else 0
-- Expiry: the end of its window, set once by the command that creates the
-- counter (SET ... PX), never refreshed: INCR keeps it.
--
-- check(keys, n, period_us, burst, now_us, peek) reads only and returns the
-- reply and the state commit(keys, n, period_us, burst, now_us, state)
-- writes, or nil and an error message.  With peek (multi.lua, when another
-- zone rejected the request) it reports the state as it stays without this
-- request (reset_after_ms is 0 for a fresh key); allowed still says
-- whether this zone would have admitted it.

-- floor(a / b) for integers 0 <= a < 2^53, b >= 1, exact despite doubles.
local function fw_div(a, b)
    local q = math.floor(a / b)
    if q * b > a then
        q = q - 1
    elseif (q + 1) * b <= a then
        q = q + 1
    end
    return q
end

-- The key among the candidates for window w, or nil.
local function fw_key(keys, w)
    local suffix = ':' .. string.format('%d', w)
    for i = 1, #keys do
        local k = keys[i]
        if #k > #suffix and string.sub(k, -#suffix) == suffix then
            return k
        end
    end
    return nil
end

local function fw_check(keys, n, period_us, burst, now_us, peek)
    local w = fw_div(now_us, period_us)
    local key = fw_key(keys, w)
    if key == nil then
        return nil, 'ERR rate_limit: fixed_window: window '
                    .. string.format('%d', w) .. ' is not among the keys'
    end

    local count = tonumber(redis.call('GET', key) or '') or 0
    local allowed = 0
    if count < n then
        allowed = 1
        if not peek then
            count = count + 1
        end
    end

    local remaining = math.max(n - count, 0)
    local left = fw_div((w + 1) * period_us - now_us + 999, 1000)
    local retry = 0
    if remaining == 0 then
        retry = left
    end
    if count == 0 then
        left = 0
    end

    return {allowed, n, remaining, left, retry},
           {key, count, (w + 1) * period_us}
end

local function fw_commit(keys, n, period_us, burst, now_us, state)
    if state[2] == 1 then
        -- creates the counter: its expiry is the window's end, set once
        redis.call('SET', state[1], '1', 'PX',
                   fw_div(state[3] - now_us + 999, 1000))
    else
        redis.call('INCR', state[1])
    end
end

-- [standalone]
local fw_a = {}
for i = 1, 4 do
    local v, min = tonumber(ARGV[i]), (i == 2 or i == 3) and 1 or 0
    if v == nil or v ~= math.floor(v) or v < min or v >= 2^53 then
        return redis.error_reply('ERR rate_limit: fixed_window: bad ARGV['
                                 .. i .. ']')
    end
    fw_a[i] = v
end
if fw_a[1] == 0 then
    local t = redis.call('TIME')
    fw_a[1] = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local res, state = fw_check(KEYS, fw_a[2], fw_a[3], fw_a[4], fw_a[1])
if res == nil then
    return redis.error_reply(state)
end
if res[1] == 1 then
    fw_commit(KEYS, fw_a[2], fw_a[3], fw_a[4], fw_a[1], state)
end
return res
