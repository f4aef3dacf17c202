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
-- ARGV      (standalone) now_us, n, period_us, burst[, cost]; now_us "0"
--           takes the time from Redis TIME.  n units per window; burst is
--           unused; the request takes cost units (default 1).
--
-- A request of cost C is allowed iff count + max(C, 1) <= n (a cost of 0
-- passes iff one unit could) and adds C; a denied request writes nothing.
-- A charge (rate_limit_charge) may take the count beyond n.
--
-- Reply: {allowed, limit, remaining, reset_after_ms, retry_after_ms}
--   limit          n
--   remaining      n - count, what this window still admits
--   reset_after_ms until the window ends (ceil)
--   retry_after_ms until the window ends when remaining is 0 (ceil,
--                  >= 1), else 0
-- Expiry: the end of its window, set once by the command that creates the
-- counter (SET ... PX), never refreshed: INCRBY keeps it.
--
-- check(keys, k, nk, n, period_us, burst, cost, now_us, peek) reads only;
-- the zone's keys are keys[k + 1 .. k + nk] (the candidates).  It returns
-- the five reply integers and then the state commit(keys, k, nk, n,
-- period_us, burst, cost, now_us, state...) writes (here the key, its
-- count and the window's end), or nil and an error message.  With peek (multi.lua, when
-- another zone rejected the request) it reports the state as it stays
-- without this request (reset_after_ms is 0 for a fresh key); allowed
-- still says whether this zone would have admitted it.
--
-- floor(a / b) and ceil(a / b) are exact for integers |a| < 2^53, b >= 1:
-- the quotient's rounding error is below |a| / b * 2^-53 < 1 / b, less
-- than its distance to the next integer when it is not one.

-- The key among keys[k + 1 .. k + nk] for window w, or nil.
local function fw_key(keys, k, nk, w)
    local suffix = ':' .. string.format('%d', w)
    local ls = #suffix
    for i = k + 1, k + nk do
        local key = keys[i]
        local lk = #key
        if lk > ls and string.find(key, suffix, lk - ls + 1, true) then
            return key
        end
    end
    return nil
end

local function fw_check(keys, k, nk, n, period_us, burst, cost, now_us,
                        peek)
    local w = math.floor(now_us / period_us)
    local key = fw_key(keys, k, nk, w)
    if key == nil then
        return nil, 'ERR rate_limit: fixed_window: window '
                    .. string.format('%d', w) .. ' is not among the keys'
    end

    local count = tonumber(redis.call('GET', key) or '') or 0
    local allowed, need = 0, cost
    if need < 1 then
        need = 1
    end
    if count + need <= n then
        allowed = 1
        if not peek then
            count = count + cost
        end
    end

    local w_end = (w + 1) * period_us
    local left = math.ceil((w_end - now_us) / 1000)
    local remaining, retry = n - count, 0
    if remaining <= 0 then
        remaining, retry = 0, left
    end
    if count == 0 then
        left = 0
    end

    return allowed, n, remaining, left, retry, key, count, w_end
end

local function fw_commit(keys, k, nk, n, period_us, burst, cost, now_us,
                         key, count, w_end)
    if cost == 0 then
        return
    end
    if count == cost then
        -- creates the counter: its expiry is the window's end, set once
        redis.call('SET', key, string.format('%d', count), 'PX',
                   string.format('%d', math.ceil((w_end - now_us) / 1000)))
    else
        redis.call('INCRBY', key, string.format('%d', cost))
    end
end

-- [standalone]
-- Run alone, lua/standalone.lua stands here (Test::RateLimit::Script).
return rl_standalone(fw_check, fw_commit, 'fixed_window', 0)
