-- The OpenResty row of `make bench` (ci/bench.sh): a rate limit decided
-- in Redis once per request, as OpenResty users write it with
-- lua-resty-redis (which Debian does not package): a cosocket from the
-- keepalive pool, EVALSHA of gcra.redis.lua, the reply read, the socket
-- back to the pool.  One round trip per request, nothing batched across
-- requests.  Only the RESP this needs is spoken.
--
-- init_by_lua:    require("resty_gcra").init{ port = P, script = FILE,
--                                             rate = R, burst = B }
-- access_by_lua:  require("resty_gcra").access()
--
-- A pass answers as the module does, with a RateLimit field; a rejection
-- is a 429; a Redis failure is logged and answered 503 (the bench counts
-- it as a failed check).

local tcp = ngx.socket.tcp
local concat = table.concat
local byte, sub = string.byte, string.sub

local M = {}

local port, script, sha, interval, burst

local function hex(s)
    return (s:gsub('.', function(c)
        return string.format('%02x', byte(c))
    end))
end

-- a RESP array of bulk strings
local function command(args)
    local t = { '*', #args, '\r\n' }
    for _, a in ipairs(args) do
        a = tostring(a)
        t[#t + 1] = '$'
        t[#t + 1] = #a
        t[#t + 1] = '\r\n'
        t[#t + 1] = a
        t[#t + 1] = '\r\n'
    end
    return concat(t)
end

function M.init(opts)
    local f = assert(io.open(opts.script, 'rb'))
    script = f:read('*a')
    f:close()
    sha = hex(ngx.sha1_bin(script))
    port = opts.port
    interval = math.floor(1000000 / opts.rate)
    burst = opts.burst
end

-- the reply: an array of integers, or an error line
local function read_reply(sock)
    local line, err = sock:receive()
    if not line then
        return nil, err
    end

    local kind = byte(line)
    if kind == 45 then                  -- '-'
        return nil, sub(line, 2)
    end
    if kind ~= 42 then                  -- '*'
        return nil, 'unexpected reply: ' .. line
    end

    local n = tonumber(sub(line, 2))
    local values = {}
    for i = 1, n do
        line, err = sock:receive()
        if not line then
            return nil, err
        end
        values[i] = tonumber(sub(line, 2))
    end
    return values
end

local function fail(sock, err)
    ngx.log(ngx.ERR, 'resty_gcra: redis: ', err)
    if sock then
        sock:close()
    end
    return ngx.exit(503)
end

function M.access()
    local key = 'or:' .. (ngx.var.http_x_api_key or '')

    local sock = tcp()
    sock:settimeout(1000)

    local ok, err = sock:connect('127.0.0.1', port)
    if not ok then
        return fail(nil, err)
    end

    ok, err = sock:send(command({ 'EVALSHA', sha, 1, key, interval, burst }))
    if not ok then
        return fail(sock, err)
    end

    local r
    r, err = read_reply(sock)

    if not r and err and sub(err, 1, 8) == 'NOSCRIPT' then
        -- a fresh Redis: EVAL loads the script for the next EVALSHA
        ok, err = sock:send(command({ 'EVAL', script, 1, key, interval,
                                      burst }))
        if not ok then
            return fail(sock, err)
        end
        r, err = read_reply(sock)
    end

    if not r then
        return fail(sock, err)
    end

    sock:setkeepalive(0, 256)

    if r[1] ~= 1 then
        return ngx.exit(429)
    end

    ngx.header['RateLimit'] = 'r=' .. r[2]
end

return M
