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
-- ARGV      (standalone) now_us, n, period_us, burst[, cost]; now_us "0"
--           takes the time from Redis TIME.  burst is unused; the request
--           takes cost units (default 1).
--
-- With e = now_us - w * period_us, prev and curr the two counts, a request
-- of cost C is allowed iff prev * (period_us - e) + (curr + max(C, 1)) *
-- period_us <= n * period_us (a cost of 0 passes iff one unit could) and
-- adds C to curr.  A denied request writes nothing.  A charge
-- (rate_limit_charge) may take a count beyond n, up to 2^52 / period_us.
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
-- check(keys, k, nk, n, period_us, burst, cost, now_us, peek) reads only; the
-- zone's keys are keys[k + 1 .. k + nk] (the candidates).  It returns the six
-- reply integers (delay_ms 0) and then the state commit(keys, k, nk, n,
-- period_us, burst, cost, now_us, state...) writes (here the current window's
-- key, its count and the end of the next window), or nil and an error
-- message.  With peek (multi.lua, when another zone rejected the request) it
-- reports the state as it stays without this request (reset_after_ms is 0 for
-- a fresh key); allowed still says whether this zone would have admitted it.
--
-- floor(a / b) and ceil(a / b) are exact for integers |a| < 2^53, b >= 1:
-- the quotient's rounding error is below |a| / b * 2^-53 < 1 / b, less
-- than its distance to the next integer when it is not one.

-- The key among keys[k + 1 .. k + nk] for window w, or nil and an error.
local function sw_key(keys, k, nk, w)
    local suffix = ':' .. string.format('%d', w)
    local ls = #suffix
    for i = k + 1, k + nk do
        local key = keys[i]
        local lk = #key
        if lk > ls and string.find(key, suffix, lk - ls + 1, true) then
            return key
        end
    end
    return nil, 'ERR rate_limit: sliding_window: window '
                .. string.format('%d', w) .. ' is not among the keys'
end

local function sw_check(keys, k, nk, n, period_us, burst, cost, now_us,
                        peek)
    local p = period_us
    local w = math.floor(now_us / p)
    local e = now_us - w * p
    local ckey, err = sw_key(keys, k, nk, w)
    if ckey == nil then
        return nil, err
    end
    local pkey
    pkey, err = sw_key(keys, k, nk, w - 1)
    if pkey == nil then
        return nil, err
    end

    local v = redis.call('MGET', pkey, ckey)
    local prev = tonumber(v[1] or '') or 0
    local curr = tonumber(v[2] or '') or 0
    local weighted = prev * (p - e)

    local allowed, need = 0, cost
    if need < 1 then
        need = 1
    end
    if weighted + (curr + need) * p <= n * p then
        allowed = 1
        if not peek then
            curr = curr + cost
        end
    end

    -- k more pass now iff weighted + (curr + k) * p <= n * p
    local remaining = 0
    if weighted <= (n - curr) * p then
        remaining = math.floor(((n - curr) * p - weighted) / p)
    end

    local retry, reset = 0, 0
    if remaining == 0 then
        local at
        if curr < n and prev > 0 then
            -- later in window w: prev * (p - e') <= (n - curr - 1) * p
            at = w * p + p - math.floor((n - curr - 1) * p / prev)
        else
            -- in window w + 1 curr becomes prev and the new count is 0:
            -- curr * (p - e') <= (n - 1) * p
            at = (w + 1) * p + p - math.floor((n - 1) * p / curr)
        end
        retry = math.ceil((at - now_us) / 1000)
    end
    if curr > 0 then
        reset = (w + 2) * p - now_us
    elseif prev > 0 then
        reset = (w + 1) * p - now_us
    end

    return allowed, n, remaining, math.ceil(reset / 1000), retry, 0,
           ckey, curr, (w + 2) * p
end

local function sw_commit(keys, k, nk, n, period_us, burst, cost, now_us,
                         key, count, expire_at)
    if cost == 0 then
        return
    end
    if count == cost then
        -- creates the counter: it expires at the end of the next window
        redis.call('SET', key, string.format('%d', count), 'PX',
                   string.format('%d', math.ceil((expire_at - now_us)
                                                 / 1000)))
    else
        redis.call('INCRBY', key, string.format('%d', cost))
    end
end

-- charge(keys, k, nk, n, period_us, burst, cost, now_us) adds cost units
-- (>= 1) to the current window unconditionally, for rate_limit_charge:
-- the count may pass n (a debt that the next windows repay), at most to
-- floor(2^52 / period_us), so the formula's products stay below 2^53.
local function sw_charge(keys, k, nk, n, period_us, burst, cost, now_us)
    local _, _, _, _, _, _, key, count, expire_at = sw_check(keys, k, nk, n,
        period_us, burst, 0, now_us, true)
    if key == nil then
        return
    end
    local add, most = cost, math.floor(2^52 / period_us)
    if count + add > most then
        add = most - count
    end
    if add > 0 then
        sw_commit(keys, k, nk, n, period_us, burst, add, now_us, key,
                  count + add, expire_at)
    end
end

-- [standalone]
-- Run alone, lua/standalone.lua stands here (Test::RateLimit::Script).
return rl_standalone(sw_check, sw_commit, 'sliding_window', 0)
