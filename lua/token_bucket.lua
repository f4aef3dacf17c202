-- token_bucket.lua: a bucket of C tokens refilled continuously at n tokens
-- per period_us, cost tokens per request (default one).
--
-- KEYS[1]   PREFIX:{ZONE:CLIENT}:tb, a hash:
--             tokens  tokens scaled by period_us (integer)
--             ts      Unix µs at which tokens was exact
--             p       the period_us the scale is for
-- ARGV      (standalone) now_us, n, period_us, burst[, cost]; now_us "0"
--           takes the time from Redis TIME.  burst is the capacity C
--           (>= 1), cost the tokens the request takes (default 1).
--
-- Units: a token is period_us scaled units, so the refill is exactly n
-- scaled units per µs and nothing is lost to rounding, however often the
-- bucket is read.  A fresh (missing) bucket is full: C * period_us.  A
-- request of cost K is allowed iff the bucket holds at least max(K, 1)
-- tokens (a cost of 0 passes iff one token is there) and takes K; a
-- denied request writes nothing.  tokens may be negative (a debt that
-- rate_limit_charge leaves), down to C * period_us - 2^52.
--
-- Reply: {allowed, limit, remaining, reset_after_ms, retry_after_ms}
--   limit          C
--   remaining      whole tokens left now
--   reset_after_ms until the bucket is full again (ceil)
--   retry_after_ms until a whole token is there (ceil, >= 1), 0 iff
--                  remaining > 0
-- Expiry: when the bucket would be full again, when a missing key means
-- the same.
--
-- All values are integers below 2^53: the module bounds C * period_us by
-- 2^52 and n by 1e9.
--
-- check(keys, k, nk, n, period_us, burst, cost, now_us, peek) reads only; the
-- zone's keys are keys[k + 1 .. k + nk] (here one).  It returns the six reply
-- integers (delay_ms 0) and then the state commit(keys, k, nk, n, period_us,
-- burst, cost, now_us, state...) writes (here tokens, ts and when the bucket
-- is full), or nil and an error message.  With peek (multi.lua, when another
-- zone rejected the request) it reports the state as it stays without this
-- request (reset_after_ms is 0 for a fresh key); allowed still says whether
-- this zone would have admitted it.
--
-- floor(a / b) and ceil(a / b) are exact for integers |a| < 2^53, b >= 1:
-- the quotient's rounding error is below |a| / b * 2^-53 < 1 / b, less
-- than its distance to the next integer when it is not one.

local function tb_check(keys, k, nk, n, period_us, burst, cost, now_us,
                        peek)
    if burst < 1 then
        return nil, 'ERR rate_limit: token_bucket: capacity must be >= 1'
    end

    local full = burst * period_us
    local h = redis.call('HMGET', keys[k + 1], 'tokens', 'ts', 'p')
    local s, ts, p = tonumber(h[1] or ''), tonumber(h[2] or ''),
                     tonumber(h[3] or '')

    if s == nil or ts == nil or p == nil or p < 1
       or s < full - 2^52 then
        -- missing (or not ours): a full bucket
        s, ts = full, now_us
    else
        if p ~= period_us then
            -- the rate changed: keep the whole tokens (and a debt's whole
            -- tokens, rounded towards zero)
            if s < 0 then
                s = math.ceil(s / p)
            else
                s = math.floor(s / p)
            end
            if s > burst then
                s = burst
            end
            s = s * period_us
            if s < full - 2^52 then
                s = full - 2^52
            end
        end
        if s > full then
            s = full
        end
        if now_us > ts then
            -- refill; elapsed * n stays small because it is compared first
            local elapsed = now_us - ts
            if elapsed >= math.ceil((full - s) / n) then
                s = full
            else
                s = s + elapsed * n
            end
            ts = now_us
        end
        -- else the clock went back: s is exact as of ts, keep ts
    end

    local allowed, need = 0, cost
    if need < 1 then
        need = 1
    end
    if s >= need * period_us then
        allowed = 1
        if not peek then
            s = s - cost * period_us
        end
    end

    local remaining, retry = math.floor(s / period_us), 0
    if remaining <= 0 then
        remaining = 0
        retry = math.ceil((ts - now_us + math.ceil((period_us - s) / n))
                          / 1000)
    end
    local full_at = ts + math.ceil((full - s) / n)

    return allowed, burst, remaining, math.ceil((full_at - now_us) / 1000),
           retry, 0, s, ts, full_at
end

local function tb_commit(keys, k, nk, n, period_us, burst, cost, now_us,
                         s, ts, full_at)
    if cost == 0 then
        return
    end
    local key = keys[k + 1]
    redis.call('HSET', key, 'tokens', string.format('%d', s),
               'ts', string.format('%d', ts),
               'p', string.format('%d', period_us))
    redis.call('PEXPIRE', key, string.format('%d',
               math.ceil((full_at - now_us) / 1000)))
end

-- charge(keys, k, nk, n, period_us, burst, cost, now_us) takes cost tokens
-- (>= 1) unconditionally, for rate_limit_charge: the bucket may go below
-- zero (a debt), at most to C * period_us - 2^52 scaled units.
local function tb_charge(keys, k, nk, n, period_us, burst, cost, now_us)
    local _, _, _, _, _, _, s, ts = tb_check(keys, k, nk, n, period_us,
                                             burst, 0, now_us, true)
    local least = burst * period_us - 2^52
    if cost >= (s - least) / period_us then
        s = least
    else
        s = s - cost * period_us
    end
    tb_commit(keys, k, nk, n, period_us, burst, cost, now_us, s, ts,
              ts + math.ceil((burst * period_us - s) / n))
end

-- [standalone]
-- Run alone, lua/standalone.lua stands here (Test::RateLimit::Script).
return rl_standalone(tb_check, tb_commit, 'token_bucket', 1)
