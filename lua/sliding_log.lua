-- sliding_log.lua: an exact log of the requests admitted in the last
-- period_us.
--
-- KEYS[1]   PREFIX:{ZONE:CLIENT}:sl, a sorted set: one member per admitted
--           request, score its time (Unix µs), member "TIME-SEQ" where SEQ
--           counts the members already at that µs, so two admissions in one
--           µs are two members.
-- ARGV      (standalone) now_us, n, period_us, burst[, cost]; now_us "0"
--           takes the time from Redis TIME.  burst is unused; the request
--           takes cost units (default 1), one member each.
--
-- A request of cost C at now is allowed iff the members with a score above
-- now - period_us (an admission at t counts until t + period_us) and
-- max(C, 1) make at most n (a cost of 0 passes iff one unit could).
-- check() only counts (ZCOUNT) and never writes; commit trims the members that
-- no longer count, then adds C, so the set never holds more than n. A denied
-- request writes nothing.
--
-- Reply: {allowed, limit, remaining, reset_after_ms, retry_after_ms}
--   limit          n
--   remaining      n minus the admissions within the last period_us
--   reset_after_ms until the newest admission leaves the period (ceil)
--   retry_after_ms until enough of the oldest leave for one more (ceil,
--                  >= 1), 0 iff remaining > 0
-- Expiry: period_us after the newest admission.
--
-- The module bounds n by 1e6.
--
-- check(keys, k, nk, n, period_us, burst, cost, now_us, peek) reads only;
-- the zone's keys are keys[k + 1 .. k + nk] (here one).  It returns the
-- six reply integers (delay_ms 0) and then the state commit(keys, k, nk, n,
-- period_us, burst, cost, now_us, state...) writes (here the first new
-- member's sequence number, the
-- newest admission and now as a decimal string), or nil and an error
-- message.  With peek (multi.lua, when another zone rejected the request)
-- it reports the state as it stays without this request (reset_after_ms
-- is 0 for a fresh key); allowed still says whether this zone would have
-- admitted it.
--
-- ceil(us / 1000) is exact for integers |us| < 2^53: the quotient's
-- rounding error is below |us| / 1000 * 2^-53 < 1 / 1000, less than its
-- distance to the next integer when it is not one.

local function sl_check(keys, k, nk, n, period_us, burst, cost, now_us,
                        peek)
    local key = keys[k + 1]
    local since = '(' .. string.format('%d', now_us - period_us)
    -- members above now count too, should the clock have gone back
    local count = redis.call('ZCOUNT', key, since, '+inf')

    local allowed, need = 0, cost
    local counted = count
    if need < 1 then
        need = 1
    end
    if count + need <= n then
        allowed = 1
        if not peek then
            counted = count + cost
        end
    end

    -- the newest admission after this decision (denied: count >= 1)
    local newest = now_us - period_us
    if counted > count then
        newest = now_us
    end
    local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    if last[2] ~= nil and tonumber(last[2]) > newest then
        newest = tonumber(last[2])
    end

    local remaining, retry = n - counted, 0
    if remaining <= 0 then
        -- one more passes when counted - n + 1 members have left: the
        -- (counted - n)-th (from 0) oldest still counted must leave
        remaining = 0
        local idx, at = counted - n, now_us
        if idx < count then
            local m = redis.call('ZRANGEBYSCORE', key, since, '+inf',
                                 'WITHSCORES', 'LIMIT', idx, 1)
            at = tonumber(m[2])
        end
        retry = math.ceil((at + period_us - now_us) / 1000)
    end

    local seq, now = 0, nil
    if counted > count then
        now = string.format('%d', now_us)
        seq = redis.call('ZCOUNT', key, now, now)
    end

    return allowed, n, remaining,
           math.ceil((newest + period_us - now_us) / 1000), retry, 0,
           seq, newest, now
end

local function sl_commit(keys, k, nk, n, period_us, burst, cost, now_us,
                         seq, newest, now)
    if cost == 0 then
        return
    end
    local key = keys[k + 1]
    redis.call('ZREMRANGEBYSCORE', key, '-inf',
               string.format('%d', now_us - period_us))
    -- cost members, at most 500 a ZADD: unpack() has a stack limit
    local args, last = {}, seq + cost - 1
    while seq <= last do
        local j = 0
        while j < 1000 and seq <= last do
            args[j + 1], args[j + 2] = now,
                now .. '-' .. string.format('%d', seq)
            j, seq = j + 2, seq + 1
        end
        redis.call('ZADD', key, unpack(args, 1, j))
    end
    redis.call('PEXPIRE', key, string.format('%d',
               math.ceil((newest + period_us - now_us) / 1000)))
end

-- [standalone]
-- Run alone, lua/standalone.lua stands here (Test::RateLimit::Script).
return rl_standalone(sl_check, sl_commit, 'sliding_log', 0)
