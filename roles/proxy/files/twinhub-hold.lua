-- twinhub's request hold, for the proxy's NGINX and the hub API relay's
-- (access_by_lua_file). NGINX has no "wait for an upstream" of its own (only
-- NGINX Plus queues), so a request that found no hub waits here, polling
-- the hubs' /hub/health, until one serves; then NGINX passes it on.
-- Data from the location: $twinhub_hold_hubs ("addr:port addr:port"),
-- $twinhub_hold_timeout (seconds). Sets $twinhub_held (seconds waited).
-- A request that may already have reached a hub is replayed only if it is
-- idempotent: others get NGINX's 502.
local method = ngx.req.get_method()
if method ~= "GET" and method ~= "HEAD" and method ~= "OPTIONS" then
    for sent in string.gmatch(ngx.var.upstream_bytes_sent or "", "%d+") do
        if tonumber(sent) > 0 then
            return ngx.exit(502)
        end
    end
end

local hubs = {}
for host, port in string.gmatch(ngx.var.twinhub_hold_hubs or "", "(%S+):(%d+)") do
    hubs[#hubs + 1] = {host, tonumber(port)}
end
local timeout = tonumber(ngx.var.twinhub_hold_timeout) or 60

local start = ngx.now()
while ngx.now() - start < timeout do
    for _, hub in ipairs(hubs) do
        -- Serving means /hub/health answers 200: a hub's proxy accepts
        -- connections a moment before it routes.
        local sock = ngx.socket.tcp()
        sock:settimeout(1000)
        local status
        if sock:connect(hub[1], hub[2]) then
            sock:send("GET /hub/health HTTP/1.0\r\nHost: twinhub-hold\r\n\r\n")
            status = sock:receive("*l")
        end
        sock:close()
        if status and string.match(status, "^HTTP/%d%.%d 200") then
            ngx.var.twinhub_held = string.format("%.3f", ngx.now() - start)
            return
        end
    end
    ngx.sleep(0.1)
    ngx.update_time()
end
return ngx.exit(502)
