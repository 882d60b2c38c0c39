-- twinhub's request hold, for the proxy's NGINX and the hub API relay's
-- (access_by_lua_file). NGINX has no "wait for an upstream" of its own (only
-- NGINX Plus queues), so a request that found no hub waits here until one
-- serves; then NGINX passes it on.
-- Data from the location: $twinhub_hold_hubs ("addr:port addr:port"),
-- $twinhub_hold_timeout (seconds). Sets $twinhub_held (seconds waited).
-- Needs `lua_shared_dict twinhub_hold` in the http block.
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

-- One poller for every held request (all workers share the dict): the
-- request that takes the "poller" key probes the hubs, the others read what
-- it found. Hundreds of held requests then put one poller's load on the
-- hubs (a probe round every POLL_INTERVAL), not one each.
local POLL_INTERVAL = 0.1
-- How often a waiting request reads what the poller found: a shared-dict
-- read, cheap even for hundreds of them, and at most the delay it adds to a
-- request released after a takeover.
local WAIT_INTERVAL = 0.02
-- A hub seen serving is believed this long by the requests that wait: short,
-- so a request held just after that hub died polls again instead of being
-- sent to it.
local SERVING_TTL = 0.25
-- Longest probe round (each hub's connect and answer: 1 s), so a poller whose
-- request ended mid-round does not hold the key for ever.
local ROUND_MAX = 1.0 * #hubs + 1
local dict = ngx.shared.twinhub_hold
local serving_key = "serving " .. (ngx.var.twinhub_hold_hubs or "")
local poller_key = "poller " .. (ngx.var.twinhub_hold_hubs or "")

-- Serving means /hub/health answers 200: a hub's proxy accepts connections
-- a moment before it routes.
local function probe()
    for _, hub in ipairs(hubs) do
        local sock = ngx.socket.tcp()
        sock:settimeout(1000)
        local status
        if sock:connect(hub[1], hub[2]) then
            sock:send("GET /hub/health HTTP/1.0\r\nHost: twinhub-hold\r\n\r\n")
            status = sock:receive("*l")
        end
        sock:close()
        if status and string.match(status, "^HTTP/%d%.%d 200") then
            return true
        end
    end
    return false
end

local start = ngx.now()
while ngx.now() - start < timeout do
    local serving = dict:get(serving_key)
    if not serving and dict:add(poller_key, true, ROUND_MAX) then
        serving = probe()
        if serving then
            dict:set(serving_key, true, SERVING_TTL)
            dict:delete(poller_key)
        else
            -- The key now spaces the rounds: the next one, by whichever
            -- request takes it, starts after POLL_INTERVAL.
            dict:set(poller_key, true, POLL_INTERVAL)
        end
    end
    if serving then
        ngx.update_time()
        ngx.var.twinhub_held = string.format("%.3f", ngx.now() - start)
        return
    end
    ngx.sleep(WAIT_INTERVAL)
    ngx.update_time()
end
return ngx.exit(502)
