-- multi.lua: decides every zone of one request in one call.  The build
-- puts it after the five algorithms' check/commit functions (the parts of
-- lua/ALG.lua before their "-- [standalone]" lines).
--
-- ARGV[1]   now_us: Unix time in µs, or "0" for Redis TIME (read once, for
--           every zone); only tests pass another value.
-- ARGV[2]   Z, the number of zones (>= 1).
-- ARGV[3 + 5 * (i - 1) ...], for zone i = 1 .. Z, five arguments:
--           algorithm  gcra | token_bucket | fixed_window | sliding_window
--                      | sliding_log
--           n          requests per period (>= 1)
--           period_us  the period in µs (>= 1)
--           burst      gcra: excess requests (>= 0); token_bucket: the
--                      capacity (>= 1); the others ignore it (pass 0)
--           nkeys      how many KEYS the zone has: gcra, token_bucket and
--                      sliding_log 1; fixed_window 3 (windows W-1, W, W+1
--                      by the caller's clock); sliding_window 4 (W-2 .. W+1)
-- KEYS      every zone's keys, concatenated in zone order (nkeys each), all
--           PREFIX:{ZONE:CLIENT}:TAG[:W].  #ARGV must be 2 + 5 * Z and
--           #KEYS the sum of the nkeys.
--
-- Phase 1 checks every zone (reads only); phase 2, only when every zone
-- allowed, commits every zone.  A request one zone rejects consumes nothing
-- in any zone: then the zones that would have admitted it answer allowed 1
-- with their state as it stays (remaining not lowered by this request).
--
-- Reply: 5 * Z integers, for each zone in order
--   allowed (0|1), limit, remaining, reset_after_ms, retry_after_ms
-- (see each algorithm's header).  Bad arguments, or a window the candidate
-- keys lack, give an error reply "ERR rate_limit: ...".

local multi_algs = {
    gcra           = {gcra_check, gcra_commit, 1},
    token_bucket   = {tb_check, tb_commit, 1},
    fixed_window   = {fw_check, fw_commit, 3},
    sliding_window = {sw_check, sw_commit, 4},
    sliding_log    = {sl_check, sl_commit, 1},
}

-- A decimal integer argument in [min, 2^53), or nil.
local function multi_int(s, min)
    if type(s) ~= 'string' or not string.find(s, '^%d+$') then
        return nil
    end
    local v = tonumber(s)
    if v == nil or v < min or v >= 2^53 then
        return nil
    end
    return v
end

local function multi_error(msg)
    return redis.error_reply('ERR rate_limit: ' .. msg)
end

local multi_now = multi_int(ARGV[1], 0)
local multi_z = multi_int(ARGV[2], 1)
if multi_now == nil then
    return multi_error('bad now_us ARGV[1]')
end
if multi_z == nil or #ARGV ~= 2 + 5 * multi_z then
    return multi_error('bad zone count ARGV[2] for ' .. #ARGV .. ' ARGV')
end
if multi_now == 0 then
    local t = redis.call('TIME')
    multi_now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local multi_zones, multi_k = {}, 0
for i = 1, multi_z do
    local a = 2 + 5 * (i - 1)
    local alg = multi_algs[ARGV[a + 1]]
    local n, p = multi_int(ARGV[a + 2], 1), multi_int(ARGV[a + 3], 1)
    local burst, nkeys = multi_int(ARGV[a + 4], 0), multi_int(ARGV[a + 5], 1)
    if alg == nil then
        return multi_error('zone ' .. i .. ': unknown algorithm')
    end
    if n == nil or p == nil or burst == nil or nkeys == nil then
        return multi_error('zone ' .. i .. ': bad number')
    end
    if nkeys ~= alg[3] or multi_k + nkeys > #KEYS then
        return multi_error('zone ' .. i .. ': bad key count')
    end
    local keys = {}
    for j = 1, nkeys do
        keys[j] = KEYS[multi_k + j]
    end
    multi_k = multi_k + nkeys
    multi_zones[i] = {alg, keys, n, p, burst}
end
if multi_k ~= #KEYS then
    return multi_error('KEYS has ' .. #KEYS .. ' keys, the zones '
                       .. multi_k)
end

local multi_reply, multi_states, multi_all = {}, {}, true
for i = 1, multi_z do
    local zn = multi_zones[i]
    local res, state = zn[1][1](zn[2], zn[3], zn[4], zn[5], multi_now)
    if res == nil then
        return redis.error_reply(state)
    end
    if res[1] ~= 1 then
        multi_all = false
    end
    multi_states[i] = state
    for j = 1, 5 do
        multi_reply[5 * (i - 1) + j] = res[j]
    end
end

if multi_all then
    for i = 1, multi_z do
        local zn = multi_zones[i]
        zn[1][2](zn[2], zn[3], zn[4], zn[5], multi_now, multi_states[i])
    end
else
    -- nothing is consumed: the zones that would have admitted the request
    -- report their state as it stays
    for i = 1, multi_z do
        if multi_reply[5 * (i - 1) + 1] == 1 then
            local zn = multi_zones[i]
            local res = zn[1][1](zn[2], zn[3], zn[4], zn[5], multi_now, true)
            for j = 1, 5 do
                multi_reply[5 * (i - 1) + j] = res[j]
            end
        end
    end
end

return multi_reply
