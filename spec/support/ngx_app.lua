-- Spec helper run INSIDE nginx (LuaJIT): locations that use the client through the cosocket transport.
local sigmamind = require "sigmamind"
local cjson = require("cjson.safe").new()

local ngx = ngx
local tostring, pcall, ipairs = tostring, pcall, ipairs

local _M = {}
local conf, client

-- init_by_lua: the client is made once, in the master, before any request (no I/O happens here)
function _M.init(c)
  conf = c
  client = sigmamind.new{ api_key = c.api_key, base_url = c.base_url, timeout = 10, deadline = 30 }
  if c.https_url then _M.tls = sigmamind.new{ api_key = c.api_key, base_url = c.https_url, max_retries = 1 } end
  _M.init_error = _M.phase_error()          -- a request here must fail at once, saying what to do instead
end

local function reply(status, v)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(v))
end

local function err_table(err)
  return { kind = err.kind, status = err.status, message = err.message, sent = err.sent,
           attempts = err.attempts, text = tostring(err) }
end

local function place(to)
  return client.calls:create{ fromPhoneNumber = conf.number, toPhoneNumber = to or "+12137774445",
                              agentId = conf.agent, dynamicVariables = { customer_name = "Nginx" } }
end

function _M.call()
  local call, err = place(ngx.var.arg_to and ngx.unescape_uri(ngx.var.arg_to))
  if not call then return reply(502, err_table(err)) end
  ngx.header["Content-Type"] = "text/plain"
  ngx.say(call.callId)
end

function _M.fanout()
  local n = tonumber(ngx.var.arg_n) or 5
  local threads, ids = {}, {}
  for i = 1, n do threads[i] = ngx.thread.spawn(place, "+1213777" .. (4000 + i)) end
  for i, th in ipairs(threads) do
    local ok, call, err = ngx.thread.wait(th)
    ids[i] = ok and call and call.callId or tostring(err)
  end
  reply(200, { ids = ids, connects = client._c:info().connects })
end

function _M.each()
  local limit = tonumber(ngx.var.arg_limit) or 25
  local n, seen, pages = 0, {}, 0
  for call in client.calls:each{ size = 10, limit = limit } do
    n = n + 1
    seen[call.callId] = true
  end
  for _ in client.calls:pages{ size = 10 } do pages = pages + 1 end
  local distinct = 0
  for _ in pairs(seen) do distinct = distinct + 1 end
  reply(200, { count = n, distinct = distinct, pages = pages })
end

function _M.get()
  local call, err = client.calls:get(ngx.var.arg_id)
  if not call then return reply(200, { error = err_table(err) }) end
  reply(200, { call = call })
end

function _M.invalid()
  local call, err = client.calls:create{ fromPhoneNumber = "123", toPhoneNumber = "+12137774445",
                                         agentId = conf.agent }
  reply(200, { call = call, error = err and err_table(err) })
end

function _M.wait()
  local call, err = place()
  if not call then return reply(502, err_table(err)) end
  local final, werr = client.calls:wait(call.callId, { timeout = tonumber(ngx.var.arg_timeout) or 20,
                                                      interval = tonumber(ngx.var.arg_interval) or 0.05 })
  if not final then return reply(502, err_table(werr)) end
  reply(200, { callId = final.callId, status = final.status })
end

function _M.info()
  reply(200, { client = tostring(client), info = client._c:info(), init_error = _M.init_error })
end

-- a cosocket-less phase: the call must fail at once, saying where it is and what to do
function _M.phase_error()
  local ok, err = pcall(client.calls.get, client.calls, "call_x")
  return ok and "no error" or tostring(err)
end

-- over TLS: verified against lua_ssl_trusted_certificate (set on the location or not at all)
function _M.tls_call()
  local call, err = _M.tls.calls:create{ fromPhoneNumber = conf.number, toPhoneNumber = "+12137774445",
                                         agentId = conf.agent }
  if not call then return reply(200, { error = err_table(err) }) end
  reply(200, { callId = call.callId })
end

return _M
