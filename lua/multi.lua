-- multi.lua: decides every zone of one request in one call.  The build
-- puts it after multi_load(alg), which defines the algorithm's functions
-- (the part of lua/ALG.lua before its "-- [standalone]" line) and returns
-- its check and commit, or nil for an unknown algorithm: only the
-- algorithms a call uses create their closures (see
-- src/core/embed_scripts.sh).
--
-- ARGV[1]   now_us: Unix time in µs, or "0" for Redis TIME (read once, for
--           every zone); only tests pass another value.
-- ARGV[2]   mode: check, charge, refund, renew or release (below); any
--           other is an error reply "ERR rate_limit: unknown mode".
--           Each mode is a block of its own after the common part.
-- ARGV[3]   lease member: a string unique to the request, for the modes
--           that keep leases; "" when the call has none.
-- ARGV[4]   Z, the number of zones (>= 1).
-- ARGV[5 + 7 * (i - 1) ...], for zone i = 1 .. Z, seven arguments:
--           algorithm  gcra | token_bucket | fixed_window | sliding_window
--                      | sliding_log | concurrency
--           n          units per period (>= 1)
--           period_us  the period in µs (>= 1); concurrency: the lease
--           burst      gcra: excess units (>= 0); token_bucket: the
--                      capacity (>= 1); the others ignore it (pass 0)
--           cost       units this request takes, 0 .. 2^53 (0: checks
--                      without consuming; passes iff one unit could)
--           nkeys      how many KEYS the zone has: gcra, token_bucket and
--                      sliding_log 1; fixed_window 3 (windows W-1, W, W+1
--                      by the caller's clock); sliding_window 4 (W-2 .. W+1)
--                      (exactly the string "1", "3" or "4")
--           delay      gcra: excess units that pass at once (delay= of
--                      the zone, 0 .. burst; burst when delay= is absent:
--                      never held); the rest up to burst are admitted and
--                      held (delay_ms); every other algorithm 0
-- KEYS      every zone's keys, concatenated in zone order (nkeys each), all
--           PREFIX:{ZONE:CLIENT}:TAG[:W].  #ARGV must be 4 + 7 * Z and
--           #KEYS the sum of the nkeys.
--
-- delay is the seventh argument, after nkeys, so that the six before it
-- keep their places in every mode (and the lease modes' layout only grows
-- a 0): the script, not the module, knows the key's state exactly (TAT in
-- µs), so it is the script that says how long an admission waits.
--
-- Mode check.  Phase 1 checks every zone (reads only); phase 2, only when
-- every zone allowed, commits every zone.  A request one zone rejects
-- consumes nothing in any zone: then the zones that would have admitted it
-- answer allowed 1 with their state as it stays (remaining not lowered by
-- this request).  A zone rejects a request whose cost exceeds what remains
-- (remaining may then be above 0, and retry_after_ms is 0).
-- Reply: 6 * Z integers, for each zone in order
--   allowed (0|1), limit, remaining, reset_after_ms, retry_after_ms,
--   delay_ms
-- (see each algorithm's header; delay_ms is 0 but for a gcra zone's
-- admission beyond its delay, and 0 in every zone when one rejects).
--
-- Mode charge (rate_limit_charge, after the response).  Every zone takes
-- its cost unconditionally, which may leave its key in debt (see each
-- algorithm's charge); a cost of 0 takes nothing.  sliding_log takes no
-- charges (an error reply).  Nothing is written unless every zone's
-- arguments and keys are good.
-- Reply: Z integers, each zone's remaining after the charge (0 in debt).
--
-- Modes renew and release (concurrency leases, many requests' at once: one
-- command per worker per renewal round).  ARGV[3] is "", ARGV[4] L, the
-- number of leases, then seven arguments per lease, in the zone layout's
-- shape so that the checks above apply:
--           concurrency  member  lease_us  0  0  1  0
-- (the member where n is), and KEYS[i] is lease i's key,
-- PREFIX:{ZONE:CLIENT}:cc.  renew moves each lease that still exists to
-- Redis now + lease_us (ZADD XX) and the key's expiry to the same time;
-- release removes each (ZREM).  Reply: {found}, the number of leases that
-- existed (renewed or removed); the module only counts it.
--
-- Bad arguments, or a window the candidate keys lack, give an error reply
-- "ERR rate_limit: ...".

-- Redis runs this whole body on every call, so it creates two closures
-- (multi_zone, which every zone mode reads its zones with, and
-- multi_leases, the lease modes' loop) and no table but the
-- reply (and, for two zones or more, one to hold them);
-- numbers are validated with tonumber, a range and an integer test (which
-- also refuse NaN, infinities and the empty string).  The algorithms call
-- library functions by their global names: their closures are made anew
-- on every call, and capturing locals as upvalues costs more than the
-- lookups.  They pass values and expiries to Redis as decimal strings
-- (string.format('%d')): a Lua number argument costs Redis a floating
-- point conversion, and early Redis 7.2 releases write a round one as
-- "1e+08", which PX and PEXPIRE refuse.

local multi_argv, multi_keys = ARGV, KEYS
local multi_nargv, multi_nkeys = #multi_argv, #multi_keys

local multi_now = multi_argv[1]
if multi_now == '0' then
    -- what the module always sends
    multi_now = 0
else
    multi_now = tonumber(multi_now)
    if not (multi_now and multi_now >= 0 and multi_now < 2^53
            and multi_now % 1 == 0) then
        return redis.error_reply('ERR rate_limit: bad now_us ARGV[1]')
    end
end
local multi_mode = multi_argv[2]
local multi_z = multi_argv[4]
if multi_z == '1' then
    multi_z = 1
else
    multi_z = tonumber(multi_z)
end
if not (multi_z and multi_z >= 1 and multi_z % 1 == 0
        and multi_nargv == 4 + 7 * multi_z) then
    return redis.error_reply('ERR rate_limit: bad zone count ARGV[4] for '
                             .. multi_nargv .. ' ARGV')
end
if multi_now == 0 then
    local t = redis.call('TIME')
    multi_now = t[1] * 1000000 + t[2]
end

-- Zone i's arguments, checked, with its keys after KEYS[k]: check,
-- commit, nkeys, n, period_us, burst, cost, charge (nil where the
-- algorithm takes none), delay; or nil and an error message.  Zones in a
-- row with one algorithm share its closures.
local multi_alg, multi_check, multi_commit, multi_charge
local function multi_zone(i, k)
    local a = 7 * i - 2
    local alg = multi_argv[a]
    if alg ~= multi_alg then
        multi_alg = alg
        multi_check, multi_commit, multi_charge = multi_load(alg)
        if multi_check == nil then
            multi_alg = nil
            return nil, 'ERR rate_limit: zone ' .. i .. ': unknown algorithm'
        end
    end
    local n, p = tonumber(multi_argv[a + 1]), tonumber(multi_argv[a + 2])
    local burst, cost = tonumber(multi_argv[a + 3]),
                        tonumber(multi_argv[a + 4])
    local delay = tonumber(multi_argv[a + 6])
    if not (n and p and burst and cost and delay
            and n >= 1 and n < 2^53 and n % 1 == 0
            and p >= 1 and p < 2^53 and p % 1 == 0
            and burst >= 0 and burst < 2^53 and burst % 1 == 0
            and cost >= 0 and cost <= 2^53 and cost % 1 == 0
            and delay >= 0 and delay <= burst and delay % 1 == 0) then
        return nil, 'ERR rate_limit: zone ' .. i .. ': bad number'
    end
    -- nkeys is compared as the string the module sends
    local want, nk = '1', 1
    if alg == 'fixed_window' then
        nk, want = 3, '3'
    elseif alg == 'sliding_window' then
        nk, want = 4, '4'
    end
    if multi_argv[a + 5] ~= want or k + nk > multi_nkeys then
        return nil, 'ERR rate_limit: zone ' .. i .. ': bad key count'
    end
    return multi_check, multi_commit, nk, n, p, burst, cost, multi_charge,
           delay
end

-- Mode check.
if multi_mode == 'check' then
    -- Phase 1.  With two zones or more, multi_reply gathers the replies
    -- and multi_zones holds, for zone i from 11 * (i - 1) + 1: check,
    -- commit, k (its keys follow KEYS[k]), nkeys, n, period_us, burst,
    -- cost and the three state values check returned.  One zone needs
    -- neither: its values stay in the locals.
    local multi_zones, multi_reply, multi_all, multi_k = nil, nil, true, 0
    local check, commit, nk, n, p, burst, cost, _, delay
    local allowed, limit, remaining, reset, retry, wait, s1, s2, s3
    if multi_z > 1 then
        -- sized for two zones at once: growing a table step by step costs
        -- more than the rest of the bookkeeping
        multi_zones = {false, false, false, false, false, false, false,
                       false, false, false, false, false, false, false,
                       false, false, false, false, false, false, false,
                       false}
        multi_reply = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
    end
    for i = 1, multi_z do
        check, commit, nk, n, p, burst, cost, _, delay =
            multi_zone(i, multi_k)
        if check == nil then
            return redis.error_reply(commit)
        end

        allowed, limit, remaining, reset, retry, wait, s1, s2, s3 =
            check(multi_keys, multi_k, nk, n, p, burst, cost, multi_now,
                  false, multi_argv[3], delay)
        if allowed == nil then
            return redis.error_reply(limit)
        end
        if multi_zones then
            if allowed ~= 1 then
                multi_all = false
            end
            local r, z = 6 * (i - 1), 11 * (i - 1)
            multi_reply[r + 1], multi_reply[r + 2], multi_reply[r + 3],
                multi_reply[r + 4], multi_reply[r + 5], multi_reply[r + 6] =
                allowed, limit, remaining, reset, retry, wait
            multi_zones[z + 1], multi_zones[z + 2], multi_zones[z + 3],
                multi_zones[z + 4], multi_zones[z + 5], multi_zones[z + 6],
                multi_zones[z + 7], multi_zones[z + 8], multi_zones[z + 9],
                multi_zones[z + 10], multi_zones[z + 11] =
                check, commit, multi_k, nk, n, p, burst, cost, s1, s2, s3
        end
        multi_k = multi_k + nk
    end
    if multi_k ~= multi_nkeys then
        return redis.error_reply('ERR rate_limit: KEYS has ' .. multi_nkeys
                                 .. ' keys, the zones ' .. multi_k)
    end

    -- Phase 2.
    if not multi_zones then
        if allowed == 1 then
            commit(multi_keys, 0, nk, n, p, burst, cost, multi_now, s1, s2,
                   s3)
        end
        return {allowed, limit, remaining, reset, retry, wait}
    end

    if multi_all then
        for i = 1, multi_z do
            local z = 11 * (i - 1)
            multi_zones[z + 2](multi_keys, multi_zones[z + 3],
                               multi_zones[z + 4], multi_zones[z + 5],
                               multi_zones[z + 6], multi_zones[z + 7],
                               multi_zones[z + 8], multi_now,
                               multi_zones[z + 9], multi_zones[z + 10],
                               multi_zones[z + 11])
        end
    else
        -- nothing is consumed: the zones that would have admitted the
        -- request report their state as it stays (and no wait: a peek's
        -- delay_ms is 0)
        for i = 1, multi_z do
            local r, z = 6 * (i - 1), 11 * (i - 1)
            if multi_reply[r + 1] == 1 then
                multi_reply[r + 1], multi_reply[r + 2], multi_reply[r + 3],
                    multi_reply[r + 4], multi_reply[r + 5],
                    multi_reply[r + 6] =
                    multi_zones[z + 1](multi_keys, multi_zones[z + 3],
                                       multi_zones[z + 4],
                                       multi_zones[z + 5],
                                       multi_zones[z + 6],
                                       multi_zones[z + 7],
                                       multi_zones[z + 8], multi_now, true)
            end
        end
    end

    return multi_reply
end

-- Mode charge.
if multi_mode == 'charge' then
    -- first every zone is checked (read only), so that a bad one leaves
    -- nothing written
    local multi_k = 0
    for i = 1, multi_z do
        local check, commit, nk, n, p, burst, cost, charge =
            multi_zone(i, multi_k)
        if check == nil then
            return redis.error_reply(commit)
        end
        if charge == nil then
            return redis.error_reply('ERR rate_limit: zone ' .. i
                                     .. ': ' .. multi_alg
                                     .. ' takes no charges')
        end
        local allowed, err = check(multi_keys, multi_k, nk, n, p, burst, 0,
                                   multi_now, true)
        if allowed == nil then
            return redis.error_reply(err)
        end
        multi_k = multi_k + nk
    end
    if multi_k ~= multi_nkeys then
        return redis.error_reply('ERR rate_limit: KEYS has ' .. multi_nkeys
                                 .. ' keys, the zones ' .. multi_k)
    end

    local multi_reply = {}
    multi_k = 0
    for i = 1, multi_z do
        local check, commit, nk, n, p, burst, cost, charge =
            multi_zone(i, multi_k)
        if cost > 0 then
            charge(multi_keys, multi_k, nk, n, p, burst, cost, multi_now)
        end
        local _, _, remaining = check(multi_keys, multi_k, nk, n, p, burst,
                                      0, multi_now, true)
        multi_reply[i] = remaining
        multi_k = multi_k + nk
    end
    return multi_reply
end

-- Mode refund (mode=cluster: a request whose zones live in several slots
-- is checked per slot; when one slot rejects it, the slots that consumed
-- get this call with the same zones and costs).  Each zone gets back its
-- cost, as of now, never beyond a fresh key (a key that would be fresh is
-- deleted): gcra moves TAT back by cost emission intervals; token_bucket
-- puts cost tokens back; fixed_window and sliding_window take cost off
-- the current window's counter; sliding_log removes its cost newest
-- members; a concurrency zone drops the request's lease (ARGV[3]).  A
-- refund that reaches a window after the check's gives back to that
-- window.
-- Reply: Z integers, the units each zone got back.
if multi_mode == 'refund' then
    local multi_reply, multi_k = {}, 0
    for i = 1, multi_z do
        local check, commit, nk, n, p, burst, cost = multi_zone(i, multi_k)
        if check == nil then
            return redis.error_reply(commit)
        end
        local alg, key = multi_argv[7 * i - 2], multi_keys[multi_k + 1]
        local given = 0
        if alg == 'sliding_log' then
            given = #redis.call('ZPOPMAX', key, string.format('%d', cost))
                    / 2
        elseif alg == 'concurrency' then
            -- the lease the check added
            given = redis.call('ZREM', key, multi_argv[3])
        elseif cost > 0 then
            -- the state as of now, this call consuming nothing
            local allowed, _, _, _, _, _, s1, s2, s3 =
                check(multi_keys, multi_k, nk, n, p, burst, 0, multi_now,
                      true)
            if allowed == nil then
                return redis.error_reply(_)
            end
            if alg == 'gcra' then
                local t = math.ceil(p / n)
                given = math.min(cost, math.ceil((s1 - multi_now) / t))
                local tat = s1 - given * t
                if tat <= multi_now then
                    redis.call('DEL', key)
                else
                    redis.call('SET', key, string.format('%d', tat), 'PX',
                               string.format('%d', math.ceil(
                                   (tat - multi_now) / 1000)))
                end
            elseif alg == 'token_bucket' then
                local full = burst * p
                given = math.min(cost, math.max(0, math.ceil((full - s1) / p)))
                local tokens = s1 + given * p
                if tokens >= full then
                    redis.call('DEL', key)
                elseif given > 0 then
                    commit(multi_keys, multi_k, nk, n, p, burst, given,
                           multi_now, tokens, s2,
                           s2 + math.ceil((full - tokens) / n))
                end
            else
                -- fixed_window, sliding_window: s1 the current window's
                -- key, s2 its count
                given = math.min(cost, s2)
                if given == s2 then
                    redis.call('DEL', s1)
                else
                    redis.call('DECRBY', s1, string.format('%d', given))
                end
            end
        end
        multi_reply[i] = given
        multi_k = multi_k + nk
    end
    if multi_k ~= multi_nkeys then
        return redis.error_reply('ERR rate_limit: KEYS has ' .. multi_nkeys
                                 .. ' keys, the zones ' .. multi_k)
    end
    return multi_reply
end

-- Modes renew and release: apply(key, member, lease_us) for each lease,
-- its arguments checked; the reply {found}, the sum of what apply returns
-- (0 or 1 each).
local function multi_leases(apply)
    if multi_nkeys ~= multi_z then
        return redis.error_reply('ERR rate_limit: ' .. multi_mode
                                 .. ': one key per lease')
    end
    local found = 0
    for i = 1, multi_z do
        local a = 7 * i - 2
        local member, lease = multi_argv[a + 1], tonumber(multi_argv[a + 2])
        if not (multi_argv[a] == 'concurrency' and member ~= '' and lease
                and lease >= 1 and lease < 2^53 and lease % 1 == 0) then
            return redis.error_reply('ERR rate_limit: lease ' .. i
                                     .. ': bad arguments')
        end
        found = found + apply(multi_keys[i], member, lease)
    end
    return {found}
end

-- Mode renew.
if multi_mode == 'renew' then
    return multi_leases(function(key, member, lease)
        local expiry = string.format('%d', multi_now + lease)
        if redis.call('ZADD', key, 'XX', 'CH', expiry, member) == 1 then
            redis.call('PEXPIRE', key,
                       string.format('%d', math.ceil(lease / 1000)))
            return 1
        end
        -- unchanged: renewed twice in one µs, or gone
        if redis.call('ZSCORE', key, member) then
            return 1
        end
        return 0
    end)
end

-- Mode release.
if multi_mode == 'release' then
    return multi_leases(function(key, member)
        return redis.call('ZREM', key, member)
    end)
end

return redis.error_reply('ERR rate_limit: unknown mode')
