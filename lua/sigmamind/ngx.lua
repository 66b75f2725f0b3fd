-- OpenResty transport: the client's requests over nginx cosockets, so that no request blocks a
-- worker. What to send and how to judge each attempt are the C core's (core.prepare and
-- core.classify), as for the libcurl transport: this file only moves bytes. Lua 5.1/LuaJIT.

--- The OpenResty transport: inside nginx, @{sigmamind.new} uses it by itself, so no request blocks
-- a worker.
--
-- It has the same API, validation, errors and retry policy as the libcurl transport (waits use
-- `ngx.sleep`), pools kept-alive connections (64 per worker, idle 60 s) and always verifies TLS,
-- with the CA of nginx's `lua_ssl_trusted_certificate`; cosockets resolve names through nginx's
-- `resolver`. Build the LuaJIT core with `make luajit`.
--
-- Requests work in rewrite, access and content handlers and in timers. In `init_by_lua*`,
-- `init_worker_by_lua*`, `set_by_lua*`, `header_filter_by_lua*`, `body_filter_by_lua*`,
-- `log_by_lua*`, `balancer_by_lua*`, `exit_worker_by_lua*` and `ssl_session_store_by_lua*` they
-- raise an error that names the phase: send them from `ngx.timer.at(0, fn)` there. For concurrent
-- calls use `ngx.thread.spawn` (@{sigmamind.Client:spawn|client:spawn} tasks are the curl multi
-- loop of scripts and C hosts). A webhook receiver that verifies signatures is in
-- `examples/openresty/`.
-- @module sigmamind.ngx
-- @usage
-- -- nginx.conf:
-- init_by_lua_block {
--   client = require("sigmamind").new{ api_key = os.getenv("SIGMAMIND_API_KEY") }
-- }
-- content_by_lua_block {
--   local call, err = client.calls:create{
--     fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445", agentId = "agent_abc123" }
--   if not call then ngx.status = 502; return ngx.say(tostring(err)) end
--   ngx.say(call.callId)
-- }
local core = require "sigmamind.core"

local ngx = ngx
local error, type, tostring, tonumber, setmetatable, pcall, pairs =
      error, type, tostring, tonumber, setmetatable, pcall, pairs
local string_lower, string_match, string_format, string_sub, string_find, string_gmatch =
      string.lower, string.match, string.format, string.sub, string.find, string.gmatch
local table_concat, math_min, math_ceil = table.concat, math.min, math.ceil
local tcp, ngx_sleep, get_phase = ngx.socket.tcp, ngx.sleep, ngx.get_phase
local prepare, classify, now, mask_path = core.prepare, core.classify, core.now, core.mask_path
local wall_clock, parse_http_time = core.time, ngx.parse_http_time

-- one version for the whole project: the C core's, as sigmamind._VERSION gives it
local _M = { _VERSION = "lua-sigmamind " .. core._VERSION }

-- nginx phases whose handlers cannot use cosockets (nor ngx.sleep), with the directive errors name
local NO_COSOCKETS = {
  init = "init_by_lua*", init_worker = "init_worker_by_lua*", set = "set_by_lua*",
  header_filter = "header_filter_by_lua*", body_filter = "body_filter_by_lua*", log = "log_by_lua*",
  balancer = "balancer_by_lua*", exit_worker = "exit_worker_by_lua*", ssl_session_store = "ssl_session_store_by_lua*",
}

local POOL_SIZE, IDLE_MS = 64, 60000

-- the API key lives here, keyed by transport, never in a field a pairs() or an error could
-- show: its header line, and the key itself to redact (8 bytes or more: a shorter one could
-- match plain words)
local secrets = setmetatable({}, { __mode = "k" })
local redact_keys = setmetatable({}, { __mode = "k" })

local Transport = { __name = "sigmamind.client" }
Transport.__index = Transport

-- a dotted quad of four decimal octets 0-255 without leading zeros (inet_pton's form), or nil
local function ipv4(s)
  local a, b, c, d = string_match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  local o = { a, b, c, d }
  for i = 1, 4 do
    if #o[i] > 3 or (#o[i] > 1 and string_sub(o[i], 1, 1) == "0") or tonumber(o[i]) > 255 then return nil end
    o[i] = tonumber(o[i])
  end
  return o
end

-- ::1 in any spelling of its eight 16-bit groups ("::1", "0:0:0:0:0:0:0:1", "0::0:1")
local function ipv6_is_loopback(s)
  local head, tail = string_match(s, "^(.-)::(.*)$")
  local function groups(part, out)
    if part == "" then return out end
    for g in string_gmatch(part .. ":", "([^:]*):") do
      if not string_match(g, "^%x%x?%x?%x?$") then return nil end
      out[#out + 1] = tonumber(g, 16)
    end
    return out
  end
  local g
  if head then
    if string_find(tail, "::", 1, true) then return false end
    local h, t = groups(head, {}), groups(tail, {})
    if not h or not t or #h + #t > 7 then return false end
    g = h
    for _ = 1, 8 - #h - #t do g[#g + 1] = 0 end
    for i = 1, #t do g[#g + 1] = t[i] end
  else
    g = groups(s, {})
    if not g or #g ~= 8 then return false end
  end
  for i = 1, 7 do if g[i] ~= 0 then return false end end
  return g[8] == 1
end

-- A literal loopback address (127.0.0.0/8 as a strict dotted quad, ::1 in brackets) or
-- "localhost", as the C core checks: a name that only looks like one ("127.1.1.1.1") goes to
-- DNS, then anywhere.
local function is_loopback(host, bracketed)
  if bracketed then return ipv6_is_loopback(host) end
  if string_lower(host) == "localhost" then return true end
  local o = ipv4(host)
  return o ~= nil and o[1] == 127
end

-- the same rules as core.new's check of base_url (client.c), with the parts a socket needs
local function parse_base_url(url, insecure)
  if string_find(url, "[\r\n%z]") then error("sigmamind.new: base_url must not contain CR, LF or NUL", 0) end
  local scheme, rest = string_match(url, "^([hH][tT][tT][pP][sS]?)://(.+)$")
  if not scheme then error("sigmamind.new: base_url: expected an http:// or https:// URL", 0) end
  scheme = string_lower(scheme)
  if string_find(url, "[?# ]") then
    error("sigmamind.new: base_url must not contain a query, a fragment or spaces", 0)
  end
  local hostport, prefix = string_match(rest, "^([^/]*)(.*)$")
  if string_find(hostport, "@", 1, true) then error("sigmamind.new: base_url must not contain credentials", 0) end
  local host, port = string_match(hostport, "^%[(.+)%]:?(%d*)$")
  local bracketed = host ~= nil
  if not host then host, port = string_match(hostport, "^([^:]*):?(%d*)$") end
  if not host or host == "" then error("sigmamind.new: base_url: no host", 0) end
  if scheme == "http" and not insecure and not is_loopback(host, bracketed) then
    error("sigmamind.new: base_url: plain http:// is only allowed to a loopback host " ..
          "(a literal 127.0.0.0/8 or [::1] address, or localhost) unless insecure = true", 0)
  end
  prefix = string_match(prefix, "^(.-)/*$")
  return { scheme = scheme, host = host, port = tonumber(port) or (scheme == "https" and 443 or 80),
           hostport = hostport, prefix = prefix, base = scheme .. "://" .. hostport .. prefix }
end

--- The transport of a client made inside nginx (@{sigmamind.new} calls it; there is no need to).
-- @tparam table o the options as sigmamind.new checked them and filled their defaults
-- @return the transport
-- @raise for `proxy` or `ca_file` (not supported inside nginx), an empty key, or a bad `base_url`
function _M.new(o)
  if o.proxy then error("sigmamind.new: proxy: not supported inside nginx (cosockets connect directly)", 0) end
  if o.ca_file then
    error("sigmamind.new: ca_file: inside nginx, set the CA with the directive lua_ssl_trusted_certificate", 0)
  end
  if o.campaign_upload == "multipart" then
    error('sigmamind.new: campaign_upload: inside nginx campaigns go as JSON ("multipart" is libcurl\'s)', 0)
  elseif o.campaign_upload ~= nil and o.campaign_upload ~= "json" then
    error(string_format('sigmamind.new: campaign_upload: expected "json" or "multipart", got "%s"',
                        tostring(o.campaign_upload)), 0)
  end
  local key = o.api_key
  if type(key) ~= "string" or key == "" then error("sigmamind.new: api_key: expected a non-empty string", 0) end
  if string_find(key, "[\r\n%z]") then error("sigmamind.new: api_key must not contain CR, LF or NUL", 0) end
  local ua = o.user_agent or ("lua-sigmamind/" .. core._VERSION .. " ngx_lua/" ..
                              tostring(ngx.config and ngx.config.ngx_lua_version))
  if string_find(ua, "[\r\n%z]") then error("sigmamind.new: user_agent must not contain CR, LF or NUL", 0) end
  local u = parse_base_url(o.base_url, o.insecure)
  local self = setmetatable({
    url = u, timeout = o.timeout, connect_timeout = o.connect_timeout,
    policy = { max_retries = o.max_retries, deadline = o.deadline, max_response_bytes = o.max_response_bytes,
               keep_nulls = o.keep_nulls == true },
    max_bytes = o.max_response_bytes, on_event = o.on_event, open = true, connects = 0,
    pool = "sigmamind:" .. u.scheme .. "://" .. string_lower(u.hostport),
    key_hint = #key >= 8 and string_sub(key, 1, 3) or "",
    head = "Host: " .. u.hostport .. "\r\nAccept: application/json\r\nUser-Agent: " .. ua ..
           "\r\nConnection: keep-alive\r\n",
  }, Transport)
  secrets[self] = "X-API-Key: " .. key .. "\r\n"
  if #key >= 8 then redact_keys[self] = key end
  return self
end

----------------------------------------------------------------------------------------------------
-- One attempt: connect (or reuse), send, read one response. Returns status, headers, body, or nil
-- plus a failure for core.classify: fail ("connect", "timeout", "network", "fatal", "too_large"),
-- sent, message.

local Attempt = {}
Attempt.__index = Attempt

local function ms(s) return math_ceil(s * 1000) < 1 and 1 or math_ceil(s * 1000) end

-- the attempt's time left, given to the socket before each step (curl's timeout is per transfer)
function Attempt:arm()
  local left = self.until_ - now()
  if left <= 0 then return false end
  self.sock:settimeout(ms(left))
  return true
end

function Attempt:fail(kind, message)
  self.sock:close()
  return nil, nil, nil, kind, self.sent, message
end

function Attempt:io_fail(what, err)
  if err == "timeout" then return self:fail("timeout", what .. ": timed out") end
  return self:fail("network", what .. ": " .. tostring(err))
end

function Attempt:line()
  if not self:arm() then return nil, "timeout" end
  return self.sock:receive("*l")
end

function Attempt:bytes(n)
  if not self:arm() then return nil, "timeout" end
  return self.sock:receive(n)
end

local function too_large(a, status, headers)
  a.sock:close()
  return status, headers, nil, "too_large", true, nil
end

-- the body (Content-Length, chunked or up to the close): at most max bytes, else too_large and the
-- socket closed
function Attempt:body(status, headers)
  local max = self.t.max_bytes
  if status == 204 or status == 304 or (status >= 100 and status < 200) then return "", true end
  local te = headers["transfer-encoding"]
  if te and string_find(string_lower(te), "chunked", 1, true) then
    local parts, total = {}, 0
    while true do
      local line, err = self:line()
      if not line then return nil, false, err end
      local size = tonumber(string_match(line, "^%s*(%x+)"), 16)
      if not size then return nil, false, "bad chunk size" end
      if size == 0 then
        repeat line, err = self:line() until not line or line == ""      -- trailers
        if not line then return nil, false, err end
        return table_concat(parts), true
      end
      total = total + size
      if total > max then return nil, false, "too_large" end
      local data
      data, err = self:bytes(size)
      if not data then return nil, false, err end
      parts[#parts + 1] = data
      data, err = self:bytes(2)
      if not data then return nil, false, err end
    end
  end
  local len = headers["content-length"]
  if len then
    len = tonumber(len)
    if not len or len < 0 then return nil, false, "bad Content-Length" end
    if len > max then return nil, false, "too_large" end
    if len == 0 then return "", true end
    local data, err = self:bytes(len)
    if not data then return nil, false, err end
    return data, true
  end
  -- neither: the body ends when the server closes the connection
  local parts, total = {}, 0
  while true do
    if not self:arm() then return nil, false, "timeout" end
    local data, err = self.sock:receiveany(max - total + 1)
    if not data then
      if err == "closed" then return table_concat(parts), false end
      return nil, false, err
    end
    total = total + #data
    if total > max then return nil, false, "too_large" end
    parts[#parts + 1] = data
  end
end

-- lua-resty-core before its fix for issue 499 asserts when a TLS handshake finishes at once but the
-- certificate check failed (now and then on loopback): that assertion is this refusal, reported
-- with both possible reasons (untrusted, or for another host; nginx's error log says which).
-- Passing `false` for the session would dodge the assertion by ignoring the check: never do that.
local function handshake(sock, host)
  local ok, res, err = pcall(sock.sslhandshake, sock, nil, host, true)
  if ok then return res, err end
  if string_find(tostring(res), "assertion failed", 1, true) then
    return nil, "0: certificate verify failed (not trusted by lua_ssl_trusted_certificate, or not for host " ..
                tostring(host) .. "; nginx's error log has the reason)"
  end
  error(res, 0)
end

function Attempt:run(method, target, body)
  local t, sock = self.t, self.sock
  local u = t.url
  sock:settimeouts(ms(math_min(t.connect_timeout, self.until_ - now())), ms(self.until_ - now()),
                   ms(self.until_ - now()))
  local ok, err = sock:connect(u.host, u.port, { pool = t.pool })
  if not ok then
    if err == "timeout" then return self:fail("timeout", "connect to " .. u.hostport .. ": timed out") end
    return self:fail("connect", "connect to " .. u.hostport .. ": " .. tostring(err))
  end
  local reused = sock:getreusedtimes() > 0
  if not reused then t.connects = t.connects + 1 end
  if u.scheme == "https" and not reused then
    if not self:arm() then return self:fail("timeout", "TLS handshake: timed out") end
    ok, err = handshake(sock, u.host)
    if not ok then
      if err == "timeout" then return self:fail("timeout", "TLS handshake with " .. u.host .. ": timed out") end
      -- "<X509 code>: <reason>": the certificate was refused; retrying cannot change that
      local kind = string_match(tostring(err), "^%d+: ") and "fatal" or "network"
      return self:fail(kind, "TLS handshake with " .. u.host .. ": " .. tostring(err))
    end
  end
  local req = method .. " " .. u.prefix .. target .. " HTTP/1.1\r\n" .. t.head .. secrets[t] ..
              (body and ("Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body)
                    or "\r\n")
  self.sent = true                  -- from here on the request may reach the server
  if not self:arm() then return self:fail("timeout", "send: timed out") end
  ok, err = sock:send(req)
  if not ok then
    if reused then self.stale = true end
    return self:io_fail("send", err)
  end
  local line
  repeat                            -- skip interim 1xx responses
    line, err = self:line()
    if not line then
      if reused and err ~= "timeout" then self.stale = true end
      return self:io_fail("receive", err)
    end
    local status = tonumber(string_match(line, "^HTTP/%d%.%d (%d%d%d)"))
    if not status then return self:fail("network", "receive: not an HTTP response") end
    local headers = {}
    while true do
      local h
      h, err = self:line()
      if not h then return self:io_fail("receive", err) end
      if h == "" then break end
      local name, value = string_match(h, "^([^:]+):%s*(.-)%s*$")
      if name then
        name = string_lower(name)
        headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
      end
    end
    if status >= 200 then
      local data, complete, berr = self:body(status, headers)
      if berr == "too_large" then return too_large(self, status, headers) end
      if not data then return self:io_fail("receive", berr) end
      local conn = string_lower(headers["connection"] or "")
      if complete and conn ~= "close" and string_sub(line, 1, 8) == "HTTP/1.1" then
        sock:setkeepalive(IDLE_MS, POOL_SIZE)
      else
        sock:close()
      end
      return status, headers, data
    end
  until false
end

----------------------------------------------------------------------------------------------------
-- client:request: the blocking loop of client.c, with ngx.sleep between attempts.

local function check_phase(what)
  local phase = get_phase()
  local directive = NO_COSOCKETS[phase]
  if directive then
    -- init_by_lua runs in the master, before the workers: no timer can be started there either
    local timer = phase == "init" and "a timer started in init_worker_by_lua*" or "a timer"
    error(string_format("sigmamind: %s is not possible in nginx's '%s' phase (%s): cosockets are disabled " ..
                        "there; make the call from a rewrite, access or content handler, or from %s: " ..
                        "ngx.timer.at(0, function(premature) ... end)", what, phase, directive, timer), 4)
  end
end

-- The server's clock from a response, as the C core's client:info() reports it: its Date minus this
-- host's clock, or nil for no Date, two (nginx joins them with ", "), one not in GMT, or an Age
-- header (a cache answered, with the origin's Date from then).
local function server_clock(headers)
  local date = headers["date"]
  if type(date) ~= "string" or headers["age"] ~= nil or string_sub(date, -4) ~= " GMT" then return nil end
  local _, commas = string.gsub(date, ",", ",")
  if commas ~= 1 then return nil end
  local t = parse_http_time(date)
  return t and t - wall_clock() or nil
end

-- s with each occurrence of key replaced by [REDACTED] (a server may echo the key in a message)
local function redact(s, key)
  if not key or not string_find(s, key, 1, true) then return s end
  local out, i = {}, 1
  while true do
    local a, b = string_find(s, key, i, true)
    if not a then break end
    out[#out + 1] = string_sub(s, i, a - 1)
    out[#out + 1] = "[REDACTED]"
    i = b + 1
  end
  out[#out + 1] = string_sub(s, i)
  return table_concat(out)
end

-- the error's string fields without the key, as the C core's sm_redact
function Transport:_redact(err)
  local key = redact_keys[self]
  if key and type(err) == "table" then
    for k, v in pairs(err) do
      if type(v) == "string" then err[k] = redact(v, key) end
    end
  end
  return err
end

function Transport:_emit(typ, method, path, attempt, status, elapsed, delay, kind)
  local f = self.on_event
  if not f then return end
  pcall(f, { type = typ, method = method, path = redact(mask_path(path), redact_keys[self]), attempt = attempt,
             status = status, elapsed = elapsed, delay = delay, kind = kind })
end

-- opts: the per-request options; extra_body and extra_query are core.prepare's, the time limits are
-- applied here, and headers are refused (this transport writes its own request head)
function Transport:request(name, args, params, opts)
  if not self.open then error("sigmamind: attempt to use a closed client", 3) end
  check_phase("a SigmaMind request")
  if opts and opts.headers ~= nil then
    error("sigmamind: headers: per-request headers are not supported inside nginx", 3)
  end
  local method, target, body, path = prepare(name, args, params, opts)
  if not method then return nil, self:_redact(target) end   -- invalid: nothing sent
  local p = self.policy
  if opts and (opts.deadline or opts.max_retries) then
    p = { max_retries = opts.max_retries or p.max_retries, deadline = opts.deadline or p.deadline,
          max_response_bytes = p.max_response_bytes, keep_nulls = p.keep_nulls }
  end
  local start, timeout = now(), opts and opts.timeout or self.timeout
  local attempt = 0
  while true do
    attempt = attempt + 1
    self:_emit("request", method, path, attempt, nil, now() - start)
    local budget = p.deadline - (now() - start)
    local capped = budget < timeout
    local a = setmetatable({ t = self, sock = tcp(), sent = false,
                             until_ = now() + (capped and budget or timeout) }, Attempt)
    local status, headers, rbody, fail, sent, message = a:run(method, target, body)
    if a.stale and method ~= "POST" and fail == "network" then
      -- a kept-alive connection the server had closed: libcurl resends on a fresh one, never a POST
      a = setmetatable({ t = self, sock = tcp(), sent = false, until_ = a.until_ }, Attempt)
      status, headers, rbody, fail, sent, message = a:run(method, target, body)
    elseif a.stale and fail == "network" then
      message = "the connection closed after the request was sent, before any response (a POST is not resent)"
    end
    if headers then self.clock_offset = server_clock(headers) end
    local value, err, delay = classify{ method = method, path = path, status = status, headers = headers,
      body = rbody, attempt = attempt, elapsed = now() - start, fail = fail, sent = sent, message = message,
      capped = capped, max_retries = p.max_retries, deadline = p.deadline, max_response_bytes = p.max_response_bytes,
      keep_nulls = p.keep_nulls }
    if err then self:_redact(err) end
    self:_emit("response", method, path, attempt, status, now() - start, nil, err and err.kind)
    if value ~= nil then
      return value, nil, { status = status, headers = headers, attempts = attempt, elapsed = now() - start,
                           method = method, path = path,
                           request_id = type(headers) == "table" and headers["x-request-id"] or nil }
    end
    if not delay then
      self:_emit("give_up", method, path, attempt, status, now() - start, nil, err.kind)
      return nil, err
    end
    self:_emit("retry", method, path, attempt, status, now() - start, delay, err.kind)
    ngx_sleep(delay)
  end
end

function Transport.sleep(_, seconds)
  check_phase("sleeping (calls:wait)")
  if seconds > 0 then ngx_sleep(seconds) end
end

function Transport:close()
  self.open = false
  secrets[self] = nil
end

-- what a keep-alive check and reconciliation need, nothing secret (as client:info() of the C core)
function Transport:info()
  return { connects = self.connects, base_url = self.url.base, transport = "ngx",
           server_clock_offset = self.clock_offset }
end

Transport.__tostring = function(self)
  if not self.open then return "sigmamind.client(closed)" end
  return "sigmamind.client(" .. self.url.base .. ", key=" .. self.key_hint .. "...redacted)"
end

--- Is this code running inside nginx's Lua module (OpenResty or nginx + lua-nginx-module)?
-- @treturn boolean
function _M.available()
  return type(ngx) == "table" and type(ngx.socket) == "table" and type(ngx.get_phase) == "function"
end

return _M
