-- Webhook deliveries: a minimal HTTP/1.1 POST over ngx.socket.tcp, signed as API.md §5, retried with backoff.
local ngx = ngx
local util = require "sandbox.util"
local string_match, string_lower, string_sub = string.match, string.lower, string.sub
local tonumber, tostring, math_max = tonumber, tostring, math.max

local _M = {}

local MAX_ATTEMPTS = 4 -- the first try and up to 3 retries

-- -> { scheme, host (an IPv6 literal without its brackets), ipv6 (it had them), port, path, hostport } | nil
local function parse_url(url)
  local scheme, rest = string_match(url, "^(https?)://(.*)$")
  if not scheme then return nil end
  local hostport, path = string_match(rest, "^([^/?#]*)(.*)$")
  if path == "" then path = "/" end
  if path:sub(1, 1) ~= "/" then path = "/" .. path end
  path = path:gsub("#.*$", "")
  local host, port = string_match(hostport, "^%[([^%]]+)%]:?(%d*)$")
  local ipv6 = host ~= nil
  if not host then host, port = string_match(hostport, "^([^:%[%]]+):?(%d*)$") end
  if not host or host == "" then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  return { scheme = scheme, host = host, ipv6 = ipv6, port = port, path = path, hostport = hostport }
end

-- a decimal from 0 to 255 as an address writes it: no sign, no leading zero (inet_pton refuses those, and
-- inet_aton would read them as octal)
local function octet(s)
  return #s <= 3 and (s == "0" or string_sub(s, 1, 1) ~= "0") and tonumber(s) <= 255
end

-- Loopback as written, never as resolved: a dotted quad in 127.0.0.0/8, [::1] or localhost. Anything else
-- (127.1, 127.0.0.256, 127.1.1.1.1, 127.0.0.1.example, [127.0.0.1]) is a name, which a resolver could point
-- anywhere.
local function is_loopback(u)
  local h = string_lower(u.host)
  if u.ipv6 then return h == "::1" end
  if h == "localhost" then return true end
  local a, b, c, d = string_match(h, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a == "127" and octet(b) and octet(c) and octet(d) or false
end

function _M.is_loopback(url)
  local u = parse_url(url)
  return u ~= nil and is_loopback(u)
end

-- what ngx.socket.tcp connects to: it parses "::1" as a host and a port, so an IPv6 literal keeps its brackets;
-- localhost is 127.0.0.1, the sandbox having no resolver unless --allow-remote-webhooks (and DNS servers do not
-- answer for localhost anyway)
local function connect_host(u)
  if u.ipv6 then return "[" .. u.host .. "]" end
  if string_lower(u.host) == "localhost" then return "127.0.0.1" end
  return u.host
end

local function attempt(u, body, headers)
  local sock = ngx.socket.tcp()
  sock:settimeouts(2000, 5000, 5000)
  local ok, err = sock:connect(connect_host(u), u.port)
  if not ok then return nil, "connect: " .. tostring(err) end
  if u.scheme == "https" then
    ok, err = sock:sslhandshake(nil, u.host, false)
    if not ok then sock:close() return nil, "tls: " .. tostring(err) end
  end
  local req = "POST " .. u.path .. " HTTP/1.1\r\nHost: " .. u.hostport ..
    "\r\nUser-Agent: SigmaMind-Sandbox-Webhooks/1\r\nContent-Type: application/json\r\nContent-Length: " ..
    #body .. "\r\n" .. headers .. "Connection: close\r\n\r\n" .. body
  ok, err = sock:send(req)
  if not ok then sock:close() return nil, "send: " .. tostring(err) end
  local line
  line, err = sock:receive("*l")
  sock:close()
  if not line then return nil, "receive: " .. tostring(err) end
  local code = tonumber(string_match(line, "^HTTP/%d%.%d (%d%d%d)"))
  if not code then return nil, "bad status line" end
  return code
end

local function run(premature, entry, secret, speed)
  if premature then return end
  local u = parse_url(entry.url)
  while entry.attempts < MAX_ATTEMPTS do
    entry.attempts = entry.attempts + 1
    local t = ngx.time()
    local sig = "t=" .. t .. ",v1=" .. util.hmac_sha256_hex(secret, t .. "." .. entry.body)
    entry.signature = sig
    local code, err = attempt(u, entry.body, "X-SigmaMind-Signature: " .. sig .. "\r\n")
    entry.status = code or util.null
    entry.error = err or util.null
    if code and code >= 200 and code < 300 then
      entry.result = "delivered"
      return
    end
    if entry.attempts < MAX_ATTEMPTS then
      -- backoff 1 s, 2 s, 4 s at --speed 1, shortened by the speed (never below 50 ms)
      ngx.sleep(math_max(0.05, 2 ^ (entry.attempts - 1) / speed))
    end
  end
  entry.result = "failed"
end

-- entry: the delivery-log record (url, body, ...); it is updated in place as attempts go on
function _M.start(entry, secret, speed, allow_remote)
  if not parse_url(entry.url) then
    entry.result, entry.error = "failed", "bad url"
    return
  end
  if not allow_remote and not is_loopback(parse_url(entry.url)) then
    entry.result, entry.error = "refused", "not a loopback address (start with --allow-remote-webhooks)"
    return
  end
  entry.result = "pending"
  local ok, err = ngx.timer.at(0, run, entry, secret, speed)
  if not ok then entry.result, entry.error = "failed", "timer: " .. tostring(err) end
end

return _M
