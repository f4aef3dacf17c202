-- concurrency.lua: at most n requests of one key in progress at once,
-- across every node: a sorted set of leases, each scored by its expiry.
--
-- KEYS[1]   PREFIX:{ZONE:CLIENT}:cc, a sorted set: member = a lease (a
--           string unique to the request), score = its expiry (Unix µs).
-- ARGV      (standalone) now_us, n, lease_us, burst (ignored, 0), cost
--           (ignored), member; now_us "0" takes the time from Redis TIME.
--           In the module's script the lease length comes as the zone's
--           period_us and the member as ARGV[3] (see lua/multi.lua).
--
-- Leases whose expiry is at or before now are dropped first (a worker
-- that died or lost its request left them); the request is allowed iff
-- fewer than n remain.  An admitted request adds its lease, scored now +
-- lease_us.  A denied request adds nothing.  The worker renews its leases
-- (mode renew) and removes them (mode release): lua/multi.lua.
--
-- Reply: {allowed, limit, remaining, reset_after_ms, retry_after_ms}
--   limit          n
--   remaining      free slots after this decision
--   reset_after_ms until the latest lease expires (0 with none), ceil
--   retry_after_ms 0 iff remaining > 0, else until the earliest lease
--                  expires (ceil, >= 1): the latest a slot frees without
--                  a release
-- Expiry: the key expires with its latest lease (PEXPIRE to the expiry
-- of the lease just added, which is the latest: every lease of a zone has
-- the same length).
--
-- check(keys, k, nk, n, lease_us, burst, cost, now_us, peek, member) drops the
-- expired leases and counts; it returns the reply's six integers (delay_ms 0)
-- and the member, which commit(keys, k, nk, n, lease_us, burst, cost, now_us,
-- member) adds.  With peek (another zone rejected the request) it reports the
-- slots as they stay.

local function cc_check(keys, k, nk, n, lease_us, burst, cost, now_us, peek,
                        member)
    local key = keys[k + 1]
    if not peek and (member == nil or member == '') then
        return nil, 'ERR rate_limit: concurrency: no lease member'
    end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now_us))
    local held = redis.call('ZCARD', key)
    local allowed = 0
    if held < n then
        allowed = 1
        if not peek then
            held = held + 1
        end
    end

    -- the latest expiry: this lease's when it is added, else the set's
    local last = now_us + lease_us
    if allowed == 0 or peek then
        last = now_us
        local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
        if top[2] then
            last = tonumber(top[2])
        end
    end
    local reset = math.ceil((last - now_us) / 1000)

    if held < n then
        return allowed, n, n - held, reset, 0, 0, member
    end
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local retry = 1
    if first[2] then
        retry = math.ceil((tonumber(first[2]) - now_us) / 1000)
        if retry < 1 then
            retry = 1
        end
    else
        -- this request takes the last slot of an empty set
        retry = math.ceil(lease_us / 1000)
    end
    return allowed, n, 0, reset, retry, 0, member
end

local function cc_commit(keys, k, nk, n, lease_us, burst, cost, now_us,
                         member)
    local key = keys[k + 1]
    redis.call('ZADD', key, string.format('%d', now_us + lease_us), member)
    redis.call('PEXPIRE', key, string.format('%d', math.ceil(lease_us / 1000)))
end

-- [standalone]
-- Run alone, lua/standalone.lua stands here (Test::RateLimit::Script).
return rl_standalone(cc_check, cc_commit, 'concurrency', 0)
