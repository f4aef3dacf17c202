-- gcra.lua: generic cell rate algorithm (leaky bucket as a meter), the
-- distributed form of "limit_req ... nodelay".
--
-- KEYS[1]   PREFIX:{ZONE:CLIENT}:g, a string holding the theoretical
--           arrival time TAT (integer Unix µs) after the last admission.
-- ARGV      (standalone) now_us, n, period_us, burst[, cost]; now_us "0"
--           takes the time from Redis TIME.  n units per period_us µs;
--           burst units may come at once beyond the first; the request
--           takes cost units (default 1).
--
-- Emission interval T = ceil(period_us / n) µs, tolerance tau = burst * T.
-- A request of cost C at now is allowed iff max(TAT, now) - now
-- + (max(C, 1) - 1) * T <= tau (a cost of 0 passes iff one unit could);
-- it moves TAT to max(TAT, now) + C * T.  A denied request writes nothing.
--
-- Reply: {allowed, limit, remaining, reset_after_ms, retry_after_ms,
--        delay_ms} (lua/multi.lua; run alone, the first five)
--   limit          burst + 1
--   remaining      requests that could still pass at once, now
--   reset_after_ms until TAT, when the key is fresh again (ceil)
--   retry_after_ms until one more could pass (ceil, >= 1), 0 iff
--                  remaining > 0
--   delay_ms       delay= (the zone's delay D, 0 .. burst): how long an
--                  admitted request waits for its turn, as "limit_req
--                  ... burst=B delay=D" holds it: with TAT' the arrival
--                  time after it, ceil((TAT' - now - (D + 1) * T) / 1000)
--                  when that is above 0, else 0.  A fresh key's first
--                  request has TAT' = now + T: D + 1 requests at once pass
--                  at once, the next waits T, the one after 2 T.  A cost
--                  C takes C intervals, so it waits as the last of C
--                  requests of cost 1 would: for its last unit's turn.  0
--                  for a rejection, a cost of 0 (it takes no turn), a peek,
--                  and D = burst (the default: nothing waits)
-- Expiry: the key expires when TAT is reached (PX = ceil((TAT-now)/1000)),
-- when a missing key means the same as the stored one.
--
-- All values are integers below 2^53: the module bounds (burst + 1) * T by
-- 1e15 µs and a cost by the limit.
--
-- check(keys, k, nk, n, period_us, burst, cost, now_us, peek, member,
-- delay) reads only (member is for concurrency; delay nil: burst); the
-- zone's keys are keys[k + 1 .. k + nk] (here one).  It returns the six
-- reply integers and then the state commit(keys, k, nk, n, period_us,
-- burst, cost, now_us, state...) writes (here TAT), or nil and an error
-- message.  With peek (multi.lua, when another zone rejected the request)
-- it reports the state as it stays without this request (reset_after_ms
-- is 0 for a fresh key); allowed still says whether this zone would have
-- admitted it.
--
-- floor(a / b) and ceil(a / b) are exact for integers |a| < 2^53, b >= 1:
-- the quotient's rounding error is below |a| / b * 2^-53 < 1 / b, less
-- than its distance to the next integer when it is not one.

local function gcra_check(keys, k, nk, n, period_us, burst, cost, now_us,
                          peek, member, delay)
    local t = math.ceil(period_us / n)
    local tau = burst * t
    local tat = tonumber(redis.call('GET', keys[k + 1]) or '')
    if tat == nil or tat < now_us then
        tat = now_us
    end

    local allowed, wait, need, held = 1, tat - now_us, cost - 1, 0
    if need < 0 then
        need = 0
    end
    if wait + need * t > tau then
        allowed = 0
    elseif not peek and cost > 0 then
        tat = tat + cost * t
        wait = tat - now_us
        -- (delay + 1) * T <= (burst + 1) * T, below 2^53
        if delay and delay < burst and wait > (delay + 1) * t then
            held = math.ceil((wait - (delay + 1) * t) / 1000)
        end
    end

    -- wait: how far TAT is ahead of now after this decision; one more
    -- request passes once it is at most tau.
    if wait <= tau then
        return allowed, burst + 1, math.floor((tau - wait) / t) + 1,
               math.ceil(wait / 1000), 0, held, tat
    end
    return allowed, burst + 1, 0, math.ceil(wait / 1000),
           math.ceil((wait - tau) / 1000), held, tat
end

local function gcra_commit(keys, k, nk, n, period_us, burst, cost, now_us,
                           tat)
    if cost == 0 then
        return
    end
    redis.call('SET', keys[k + 1], string.format('%d', tat),
               'PX', string.format('%d', math.ceil((tat - now_us) / 1000)))
end

-- charge(keys, k, nk, n, period_us, burst, cost, now_us) takes cost units
-- (>= 1) unconditionally, for rate_limit_charge: TAT moves cost * T on
-- (a debt when it passes now + tau), at most to now + 2^52 µs.
local function gcra_charge(keys, k, nk, n, period_us, burst, cost, now_us)
    local t = math.ceil(period_us / n)
    local tat = tonumber(redis.call('GET', keys[k + 1]) or '')
    if tat == nil or tat < now_us then
        tat = now_us
    end
    local most = now_us + 2^52
    if cost >= (most - tat) / t then
        tat = most
    else
        tat = tat + cost * t
    end
    gcra_commit(keys, k, nk, n, period_us, burst, cost, now_us, tat)
end

-- [standalone]
-- Run alone, lua/standalone.lua stands here (Test::RateLimit::Script).
return rl_standalone(gcra_check, gcra_commit, 'gcra', 0)
