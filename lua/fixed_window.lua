-- fixed_window.lua: a counter per window of period_us, windows aligned to
-- the Unix epoch (window w covers [w * period_us, (w + 1) * period_us), so
-- an r/d window resets at 00:00 UTC).  Two periods are calendar ones
-- (rl_core.h: no other rate has them): a week (604800 s) begins on Monday
-- 00:00 UTC (window 0 on 1970-01-05), and 2592000 s stands for calendar
-- months in UTC, window (year - 1970) * 12 + month - 1.
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
-- check(keys, k, nk, n, period_us, burst, cost, now_us, peek) reads only; the
-- zone's keys are keys[k + 1 .. k + nk] (the candidates).  It returns the six
-- reply integers (delay_ms 0) and then the state commit(keys, k, nk, n,
-- period_us, burst, cost, now_us, state...) writes (here the key, its count
-- and the window's end), or nil and an error message.  With peek (multi.lua,
-- when another zone rejected the request) it reports the state as it stays
-- without this request (reset_after_ms is 0 for a fresh key); allowed still
-- says whether this zone would have admitted it.
--
-- floor(a / b) and ceil(a / b) are exact for integers |a| < 2^53, b >= 1:
-- the quotient's rounding error is below |a| / b * 2^-53 < 1 / b, less
-- than its distance to the next integer when it is not one.

local fw_week_us, fw_month_us = 604800000000, 2592000000000
local fw_day_us = 86400000000

-- Days since 1970-01-01 of a date of the proleptic Gregorian calendar
-- (eras of 400 years; exact integer steps).
local function fw_days(y, m, d)
    if m <= 2 then
        y = y - 1
    end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local mp = m + 9
    if m > 2 then
        mp = m - 3
    end
    local doy = math.floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100)
                + doy
    return era * 146097 + doe - 719468
end

-- The window of now_us and when it ends (µs).
local function fw_window(now_us, period_us)
    if period_us == fw_month_us then
        -- the civil date of the day, then the first of the next month
        local z = math.floor(now_us / fw_day_us) + 719468
        local era = math.floor(z / 146097)
        local doe = z - era * 146097
        local yoe = math.floor((doe - math.floor(doe / 1460)
                                + math.floor(doe / 36524)
                                - math.floor(doe / 146096)) / 365)
        local doy = doe - (365 * yoe + math.floor(yoe / 4)
                           - math.floor(yoe / 100))
        local mp = math.floor((5 * doy + 2) / 153)
        local m = mp + 3
        if mp >= 10 then
            m = mp - 9
        end
        local y = yoe + era * 400
        if m <= 2 then
            y = y + 1
        end
        local ny, nm = y, m + 1
        if nm == 13 then
            ny, nm = y + 1, 1
        end
        return (y - 1970) * 12 + m - 1, fw_days(ny, nm, 1) * fw_day_us
    end
    local offset = 0
    if period_us == fw_week_us then
        offset = 4 * fw_day_us
    end
    local w = math.floor((now_us - offset) / period_us)
    return w, (w + 1) * period_us + offset
end

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
    local w, w_end = fw_window(now_us, period_us)
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

    local left = math.ceil((w_end - now_us) / 1000)
    local remaining, retry = n - count, 0
    if remaining <= 0 then
        remaining, retry = 0, left
    end
    if count == 0 then
        left = 0
    end

    return allowed, n, remaining, left, retry, 0, key, count, w_end
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

-- charge(keys, k, nk, n, period_us, burst, cost, now_us) adds cost units
-- (>= 1) to the window unconditionally, for rate_limit_charge: the count
-- may pass n (a debt until the window ends), at most to 2^52.
local function fw_charge(keys, k, nk, n, period_us, burst, cost, now_us)
    local _, _, _, _, _, _, key, count, w_end = fw_check(keys, k, nk, n,
        period_us, burst, 0, now_us, true)
    if key == nil then
        return
    end
    local add = cost
    if count + add > 2^52 then
        add = 2^52 - count
    end
    if add > 0 then
        fw_commit(keys, k, nk, n, period_us, burst, add, now_us, key,
                  count + add, w_end)
    end
end

-- [standalone]
-- Run alone, lua/standalone.lua stands here (Test::RateLimit::Script).
return rl_standalone(fw_check, fw_commit, 'fixed_window', 0)
