-- Spec helper: starts bin/sigmamind-sandbox and talks to it over plain HTTP (LuaSocket), never through the client.
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require("cjson.safe").new()
local util = require "support.util"

local io_popen, os_execute, table_concat = io.popen, os.execute, table.concat
local setmetatable, type, tostring, tonumber, ipairs, pairs = setmetatable, type, tostring, tonumber, ipairs, pairs

local _M = {}
local mt = { __index = _M }

local root, shell_quote = util.root, util.shell_quote

-- opts: speed, api_key, port, args (extra launcher arguments)
function _M.start(opts)
  opts = opts or {}
  local cmd = { shell_quote(root() .. "/bin/sigmamind-sandbox"), "--daemon", "--port", tostring(opts.port or 0) }
  if opts.speed then cmd[#cmd + 1] = "--speed" cmd[#cmd + 1] = tostring(opts.speed) end
  if opts.api_key then cmd[#cmd + 1] = "--api-key" cmd[#cmd + 1] = shell_quote(opts.api_key) end
  for _, a in ipairs(opts.args or {}) do cmd[#cmd + 1] = shell_quote(a) end
  local p = assert(io_popen(table_concat(cmd, " ")))
  local out = p:read("a")
  local ok, _, code = p:close()
  if not ok then error("sigmamind-sandbox failed to start (exit " .. tostring(code) .. ")", 2) end
  local env = {}
  for k, v in out:gmatch("([%w_]+)=([^\n]*)") do env[k] = v end
  local self = setmetatable({
    url = env.SIGMAMIND_BASE_URL, key = env.SIGMAMIND_API_KEY, number = env.SIGMAMIND_SANDBOX_NUMBER,
    agent = env.SIGMAMIND_SANDBOX_AGENT, prefix = env.SIGMAMIND_SANDBOX_PREFIX, pid = env.SIGMAMIND_SANDBOX_PID,
    https_url = env.SIGMAMIND_SANDBOX_HTTPS_URL, env = env,
  }, mt)
  if not self.url then error("sigmamind-sandbox printed no SIGMAMIND_BASE_URL", 2) end
  self.port = tonumber(self.url:match(":(%d+)$"))
  return self
end

-- body: a table (sent as JSON), a string (sent as is) or nil; headers: extra request headers.
-- Returns status, decoded JSON (or nil), raw body, response headers; or nil, error when the connection failed.
function _M:request(method, path, body, headers)
  local h = { ["X-API-Key"] = self.key }
  if type(body) == "table" then body = cjson.encode(body) end
  if body then
    h["Content-Type"] = "application/json"
    h["Content-Length"] = tostring(#body)
  end
  for k, v in pairs(headers or {}) do h[k] = v end
  local chunks = {}
  local ok, status, rheaders = http.request{
    url = self.url .. path, method = method, headers = h,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
  }
  if not ok then return nil, status end
  local raw = table_concat(chunks)
  return status, cjson.decode(raw), raw, rheaders
end

-- every call the sandbox holds, counted by the value of one of its dynamic variables (calls without it left out)
function _M:calls_per(var)
  local per, page = {}, 0
  while true do
    local status, body = self:request("GET", "/v1/calls?size=100&page=" .. page)
    assert(status == 200, "GET /v1/calls answered " .. tostring(status))
    for _, call in ipairs(body.data) do
      local v = (call.dynamicVariables or {})[var]
      if v then per[v] = (per[v] or 0) + 1 end
    end
    if not body.hasNext or #body.data == 0 then break end
    page = page + 1
  end
  return per
end

function _M:state()
  local _, v = self:request("GET", "/_sandbox/state")
  return v
end

function _M:count(method, route)
  local st = self:state()
  return st and st.requests and st.requests[method .. " " .. route] or 0
end

-- the counters of API routes only (the helper's own admin requests are left out)
function _M:api_requests()
  local out = {}
  for k, n in pairs((self:state() or {}).requests or {}) do
    if not k:find(" /_sandbox", 1, true) then out[k] = n end
  end
  return out
end

function _M:reset()
  local status = self:request("POST", "/_sandbox/reset")
  assert(status == 200, "sandbox reset failed: " .. tostring(status))
end

function _M:arm(f)
  local status, v, raw = self:request("POST", "/_sandbox/faults", f)
  assert(status == 200, "arming a fault failed: " .. tostring(raw))
  return v
end

function _M:advance(seconds)
  local status, v, raw = self:request("POST", "/_sandbox/clock", { advance = seconds })
  assert(status == 200, "advancing the clock failed: " .. tostring(raw))
  return v
end

function _M:stop()
  if self.stopped or not self.prefix then return end
  self.stopped = true
  os_execute(shell_quote(root() .. "/bin/sigmamind-sandbox") .. " stop --prefix " .. shell_quote(self.prefix))
  if self.tls_dir then os_execute("rm -rf " .. shell_quote(self.tls_dir)) end
end

-- A sandbox with a TLS port too (sb.https_url), on a self-signed certificate for 127.0.0.1 and
-- localhost made in a fresh directory, sb.tls_dir (cert.pem, key.pem; removed by sb:stop(), which
-- also holds whatever else a spec puts there). opts as start's.
function _M.start_tls(opts)
  local dir = util.tmpname()
  util.sh("mkdir -p " .. shell_quote(dir))
  util.sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
           .. "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout %s/key.pem -out %s/cert.pem")
          :format(shell_quote(dir), shell_quote(dir)))
  opts = opts or {}
  local args = { "--https-port", "0", "--cert", dir .. "/cert.pem", "--key", dir .. "/key.pem" }
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  local ok, sb = pcall(_M.start, { speed = opts.speed, api_key = opts.api_key, port = opts.port, args = args })
  if not ok then os_execute("rm -rf " .. shell_quote(dir)); error(sb, 2) end
  sb.tls_dir = dir
  return sb
end

_M.json = cjson
_M.root = root
_M.shell_quote = shell_quote

return _M
