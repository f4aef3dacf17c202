-- sliding_window.lua: the current window's count plus the previous
-- window's, weighted by how much of it the sliding period still covers.
--
-- KEYS      candidates PREFIX:{ZONE:CLIENT}:sw:W, W the decimal window
--           number (window w covers [w * period_us, (w + 1) * period_us));
--           the module passes the two windows before its own clock's, its
--           own and the next (4 keys).  The script uses the keys whose ":W"
--           suffixes are its own window w and w - 1, whatever their
--           positions, and fails with an error naming a window that is
--           missing.  Each key holds the count admitted in its window.
-- ARGV      (standalone) now_us, n, period_us, burst; now_us "0" takes the
--           time from Redis TIME.  burst is unused.
--
-- With e = now_us - w * period_us, prev and curr the two counts, a request
-- is allowed iff prev * (period_us - e) + (curr + 1) * period_us
-- <= n * period_us.  A denied request writes nothing.
--
-- Reply: {allowed, limit, remaining, reset_after_ms, retry_after_ms}
--   limit          n
--   remaining      how many more the formula admits now
--   reset_after_ms until both counts weigh nothing: the end of window w + 1
--                  if curr > 0, else the end of window w (ceil)
--   retry_after_ms exactly until the formula admits one more, if no other
--                  request comes (ceil, >= 1), 0 iff remaining > 0
-- Expiry: a counter matters in its window and the next, so it expires at
-- the end of the next window, set once when the counter is created.
--
-- All values are integers below 2^53: the module bounds n * period_us by
-- 2^52.
--
-- check(keys, n, period_us, burst, now_us, peek) reads only and returns the
-- reply and the state commit(keys, n, period_us, burst, now_us, state)
-- writes, or nil and an error message.  With peek (multi.lua, when another
-- zone rejected the request) it reports the state as it stays without this
-- request (reset_after_ms is 0 for a fresh key); allowed still says
-- whether this zone would have admitted it.

-- floor(a / b) for integers 0 <= a < 2^53, b >= 1, exact despite doubles.
local function sw_div(a, b)
    local q = math.floor(a / b)
    if q * b > a then
        q = q - 1
    elseif (q + 1) * b <= a then
        q = q + 1
    end
    return q
end

-- The key among the candidates for window w, or nil and an error.
local function sw_key(keys, w)
    local suffix = ':' .. string.format('%d', w)
    for i = 1, #keys do
        local k = keys[i]
        if #k > #suffix and string.sub(k, -#suffix) == suffix then
            return k
        end
    end
    return nil, 'ERR rate_limit: sliding_window: window '
                .. string.format('%d', w) .. ' is not among the keys'
end

local function sw_check(keys, n, period_us, burst, now_us, peek)
    local p = period_us
    local w = sw_div(now_us, p)
    local e = now_us - w * p
    local ckey, err = sw_key(keys, w)
    if ckey == nil then
        return nil, err
    end
    local pkey
    pkey, err = sw_key(keys, w - 1)
    if pkey == nil then
        return nil, err
    end

    local v = redis.call('MGET', pkey, ckey)
    local prev = tonumber(v[1] or '') or 0
    local curr = tonumber(v[2] or '') or 0
    local weighted = prev * (p - e)

    local allowed = 0
    if weighted + (curr + 1) * p <= n * p then
        allowed = 1
        if not peek then
            curr = curr + 1
        end
    end

    -- k more pass now iff weighted + (curr + k) * p <= n * p
    local remaining = 0
    if weighted <= (n - curr) * p then
        remaining = sw_div((n - curr) * p - weighted, p)
    end

    local retry, reset = 0, 0
    if remaining == 0 then
        local at
        if curr < n and prev > 0 then
            -- later in window w: prev * (p - e') <= (n - curr - 1) * p
            at = w * p + p - sw_div((n - curr - 1) * p, prev)
        else
            -- in window w + 1 curr becomes prev and the new count is 0:
            -- curr * (p - e') <= (n - 1) * p
            at = (w + 1) * p + p - sw_div((n - 1) * p, curr)
        end
        retry = sw_div(at - now_us + 999, 1000)
    end
    if curr > 0 then
        reset = (w + 2) * p - now_us
    elseif prev > 0 then
        reset = (w + 1) * p - now_us
    end

    return {allowed, n, remaining, sw_div(reset + 999, 1000), retry},
           {ckey, curr, (w + 2) * p}
end

local function sw_commit(keys, n, period_us, burst, now_us, state)
    if state[2] == 1 then
        -- creates the counter: it expires at the end of the next window
        redis.call('SET', state[1], '1', 'PX',
                   sw_div(state[3] - now_us + 999, 1000))
    else
        redis.call('INCR', state[1])
    end
end

-- [standalone]
local sw_a = {}
for i = 1, 4 do
    local v, min = tonumber(ARGV[i]), (i == 2 or i == 3) and 1 or 0
    if v == nil or v ~= math.floor(v) or v < min or v >= 2^53 then
        return redis.error_reply('ERR rate_limit: sliding_window: bad ARGV['
                                 .. i .. ']')
    end
    sw_a[i] = v
end
if sw_a[1] == 0 then
    local t = redis.call('TIME')
    sw_a[1] = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local res, state = sw_check(KEYS, sw_a[2], sw_a[3], sw_a[4], sw_a[1])
if res == nil then
    return redis.error_reply(state)
end
if res[1] == 1 then
    sw_commit(KEYS, sw_a[2], sw_a[3], sw_a[4], sw_a[1], state)
end
return res
