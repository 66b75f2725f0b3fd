-- OpenResty: the module inside a real nginx (Debian nginx + lua module, LuaJIT build of the core)
-- uses cosockets, never blocks a worker, and says so clearly where nginx has no cosockets.
local sandbox = require "support.sandbox"
local nginx = require "support.nginx"
local socket = require "socket"
local url_escape = require("socket.url").escape
local cjson = sandbox.json

local function shell(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local quote = sandbox.shell_quote

-- POST a body with curl, as a sender would: the response body and status
local function post(url, body, headers)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(body)
  f:close()
  local h = {}
  for k, v in pairs(headers or {}) do h[#h + 1] = "-H " .. quote(k .. ": " .. v) end
  local out = shell("curl -s -m 10 -X POST -H 'Content-Type: application/json' " .. table.concat(h, " ") ..
                    " --data-binary @" .. quote(path) .. " -w '\n%{http_code}' " .. quote(url))
  os.remove(path)
  local got, status = out:match("^(.*)\n(%d+)$")
  return got or out, tonumber(status)
end

describe("inside nginx", function()
  local sb, ngx_srv, tls

  setup(function()
    tls = shell("mktemp -d ${TMPDIR:-/tmp}/sigmamind-tls.XXXXXX"):gsub("%s+$", "")
    shell("openssl req -x509 -newkey rsa:2048 -nodes -keyout " .. tls .. "/key.pem -out " .. tls .. "/cert.pem " ..
          "-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:127.0.0.1 2>/dev/null")
    sb = sandbox.start{ speed = 100, args = { "--https-port", "0", "--cert", tls .. "/cert.pem",
                                             "--key", tls .. "/key.pem" } }
    ngx_srv = nginx.start{ conf = function(c)
      local init = string.format("require('support.ngx_app').init{ api_key = %q, base_url = %q, number = %q, " ..
                                 "agent = %q, https_url = %q }", sb.key, sb.url, sb.number, sb.agent, sb.https_url)
      return c.head .. [[
  init_by_lua_block { ]] .. init .. [[ }
  server {
    listen 127.0.0.1:]] .. c.port .. [[;
    location = /call    { content_by_lua_block { require("support.ngx_app").call() } }
    location = /fanout  { content_by_lua_block { require("support.ngx_app").fanout() } }
    location = /each    { content_by_lua_block { require("support.ngx_app").each() } }
    location = /get     { content_by_lua_block { require("support.ngx_app").get() } }
    location = /invalid { content_by_lua_block { require("support.ngx_app").invalid() } }
    location = /wait    { content_by_lua_block { require("support.ngx_app").wait() } }
    location = /info    { content_by_lua_block { require("support.ngx_app").info() } }
    location = /tls-trusted {
      lua_ssl_trusted_certificate ]] .. tls .. [[/cert.pem;
      content_by_lua_block { require("support.ngx_app").tls_call() }
    }
    location = /tls-untrusted { content_by_lua_block { require("support.ngx_app").tls_call() } }
    location = /new {
      content_by_lua_block {
        local ok, err = pcall(require("sigmamind").new, { api_key = "k", base_url = ngx.unescape_uri(ngx.var.arg_url) })
        ngx.say(ok and "ok" or tostring(err))
      }
    }
    location /echo/ {
      content_by_lua_block {
        local key = ngx.var.http_x_api_key or ""
        ngx.status = 401
        ngx.header["X-Request-Id"] = "req-" .. key
        ngx.header["Content-Type"] = "application/json"
        ngx.print('{"message":"Invalid API key: ' .. key .. '"}')
      }
    }
    location = /redact {
      content_by_lua_block {
        local seen = {}
        local c = require("sigmamind").new{ api_key = ngx.var.arg_key, max_retries = 0,
                                            base_url = "http://127.0.0.1:]] .. c.port .. [[/echo",
                                            on_event = function(ev) seen[#seen + 1] = ev end }
        local _, e1 = c.agents:list{}
        local _, e2 = c.calls:get(ngx.var.arg_key)
        c:close()
        local function fields(e)
          return { kind = e.kind, message = e.message, body = e.body, request_id = e.request_id, path = e.path,
                   text = tostring(e) }
        end
        ngx.say(require("cjson").encode{ e1 = fields(e1), e2 = fields(e2), events = seen })
      }
    }
    location = /set-phase {
      set_by_lua_block $phase_error { return require("support.ngx_app").phase_error() }
      return 200 $phase_error;
    }
    location = /header-phase {
      content_by_lua_block { ngx.say("body") }
      header_filter_by_lua_block {
        ngx.header["X-Phase-Error"] = require("support.ngx_app").phase_error()
      }
    }
  }
}
]]
    end }
  end)

  teardown(function()
    if ngx_srv then ngx_srv:stop() end
    if sb then sb:stop() end
    if tls then os.execute("rm -rf '" .. tls .. "'") end
  end)

  before_each(function() sb:reset() end)

  it("places a call through the module and returns its callId", function()
    local body, status = ngx_srv:get("/call")
    assert.are.equal(200, status, body)
    assert.matches("^call_", body)
    assert.are.equal(1, sb:count("POST", "/v1/calls"))
  end)

  it("answers 50 concurrent requests against a 500 ms API in under 3 s: no worker is blocked", function()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "slow=500", count = 1000 }
    local urls = {}
    for i = 1, 50 do urls[i] = "'" .. ngx_srv.url .. "/call?to=%2B1213777" .. (5000 + i) .. "'" end
    local t0 = socket.gettime()
    local out = shell("curl -s -m 20 --parallel --parallel-immediate --parallel-max 50 " .. table.concat(urls, " ") ..
                      " 2>/dev/null")
    local took = socket.gettime() - t0
    local ids = {}
    for id in out:gmatch("(call_[%w_]+)") do ids[#ids + 1] = id end
    print(string.format("\n  50 concurrent calls with slow=500 took %.2f s in one nginx worker", took))
    assert.are.equal(50, #ids, out)
    assert.is_true(took < 3, "took " .. took .. " s")
    assert.are.equal(50, sb:count("POST", "/v1/calls"))
  end)

  it("fans out with ngx.thread.spawn, reusing kept-alive connections", function()
    local body, status = ngx_srv:get("/fanout?n=8")
    assert.are.equal(200, status, body)
    local v = cjson.decode(body)
    assert.are.equal(8, #v.ids)
    for _, id in ipairs(v.ids) do assert.matches("^call_", id) end
    local before = v.connects
    body = ngx_srv:get("/fanout?n=8")
    v = cjson.decode(body)
    assert.is_true(v.connects <= before + 8, "connections: " .. before .. " then " .. v.connects)
    -- sequential requests reuse one pooled connection
    local info1 = cjson.decode((ngx_srv:get("/info"))).info.connects
    ngx_srv:get("/call"); ngx_srv:get("/call"); ngx_srv:get("/call")
    local info2 = cjson.decode((ngx_srv:get("/info"))).info.connects
    assert.is_true(info2 - info1 <= 1, "opened " .. (info2 - info1) .. " connections for 3 sequential calls")
  end)

  it("pages through calls with each and pages", function()
    local status = sb:request("POST", "/_sandbox/seed", { calls = 35, mix = "uniform" })
    assert.are.equal(200, status)
    local body, st = ngx_srv:get("/each?limit=25")
    assert.are.equal(200, st, body)
    local v = cjson.decode(body)
    assert.are.equal(25, v.count)
    assert.are.equal(25, v.distinct)
    assert.are.equal(4, v.pages)
  end)

  it("reconciles a lost create on the server's clock, read from its Date header, an hour ahead", function()
    sb:advance(3600)
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local body, status = ngx_srv:get("/call")
    assert.are.equal(200, status, body)
    assert.matches("^call_", body)
    assert.are.equal(1, sb:count("POST", "/v1/calls"))
    assert.are.equal(1, sb:state().calls)
    local off = cjson.decode((ngx_srv:get("/info"))).info.server_clock_offset
    assert.is_true(type(off) == "number" and off > 3597 and off < 3601, tostring(off))
  end)

  it("returns the same error objects as the C transport", function()
    local v = cjson.decode((ngx_srv:get("/get?id=call_missing")))
    assert.are.equal("not_found", v.error.kind)
    assert.are.equal(404, v.error.status)
    assert.matches("^sigmamind: GET /v1/calls/call_missing: 404", v.error.text)
    v = cjson.decode((ngx_srv:get("/invalid")))
    assert.are.equal("invalid", v.error.kind)
    assert.are.equal(0, sb:count("POST", "/v1/calls"))
    local info = cjson.decode((ngx_srv:get("/info")))
    assert.matches("redacted", info.client)
    assert.is_nil(info.client:find(sb.key, 1, true))
  end)

  it("counts only literal loopback addresses and localhost as loopback, as the C core does", function()
    for _, url in ipairs{ "http://127.1.1.1.1:8080", "http://127.0.0.256:1", "http://127.0.0.01:1", "http://127.1:1",
                          "http://[::2]:1", "http://[1::1]:1", "http://[::1::]:1", "http://localhost.example:1" } do
      local body = ngx_srv:get("/new?url=" .. url_escape(url))
      assert.matches("base_url: plain http:// is only allowed to a loopback host", body, 1, true)
    end
    for _, url in ipairs{ "http://127.0.0.1:1", "http://127.255.255.254:1", "http://LocalHost:1", "http://[::1]:1",
                          "http://[0:0:0:0:0:0:0:1]:1", "http://[::0:1]" } do
      assert.are.equal("ok\n", (ngx_srv:get("/new?url=" .. url_escape(url))), url)
    end
  end)

  it("redacts the API key where a server echoes it: message, body, request id, tostring, events", function()
    local key = "sk_live_" .. string.rep("s3cr3t", 4)
    local body, status = ngx_srv:get("/redact?key=" .. key)
    assert.are.equal(200, status, body)
    local v = cjson.decode(body)
    assert.are.equal("auth", v.e1.kind)
    assert.are.equal("Invalid API key: [REDACTED]", v.e1.message)
    assert.are.equal('{"message":"Invalid API key: [REDACTED]"}', v.e1.body)
    assert.are.equal("req-[REDACTED]", v.e1.request_id)
    assert.are.equal("sigmamind: GET /v1/agents: 401 Unauthorized: Invalid API key: [REDACTED]", v.e1.text)
    assert.are.equal("/v1/calls/[REDACTED]", v.e2.path)
    assert.is_true(#v.events >= 6)
    assert.is_nil(body:find("s3cr3t", 1, true), body)
  end)

  it("never resends a POST that may have reached the server, and retries a 503 GET", function()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "reset", count = 1 }
    local v = cjson.decode((ngx_srv:get("/call")))
    assert.are.equal("network", v.kind)
    assert.is_true(v.sent)
    assert.are.equal(1, sb:count("POST", "/v1/calls"))
    sb:arm{ method = "POST", path = "/v1/calls", fault = "429", count = 1 }
    local body, status = ngx_srv:get("/call")
    assert.are.equal(200, status, body)
    assert.are.equal(3, sb:count("POST", "/v1/calls"))
    sb:arm{ method = "GET", path = "/v1/calls/{callId}", fault = "503", count = 1 }
    v = cjson.decode((ngx_srv:get("/get?id=" .. body:match("call_[%w_]+"))))
    assert.is_table(v.call)
  end)

  it("verifies TLS against lua_ssl_trusted_certificate and refuses an unknown certificate without retrying", function()
    -- first: a kept-alive connection verified under the other location's CA would be reused
    local first = ngx_srv:get("/tls-untrusted")
    local v = cjson.decode(first)
    assert(v and v.error, tostring(first) .. ngx_srv:error_log():sub(-1500))
    assert.are.equal("network", v.error.kind)
    assert.are.equal(1, v.error.attempts)
    assert.is_false(v.error.sent)
    assert.matches("TLS handshake", v.error.message)
    local raw = ngx_srv:get("/tls-trusted")
    v = cjson.decode(raw)
    assert(v, raw .. ngx_srv:error_log():sub(-1500))
    assert.matches("^call_", v.callId or cjson.encode(v))
    assert.are.equal(1, sb:count("POST", "/v1/calls"))
  end)

  it("waits for a final status with ngx.sleep", function()
    local body, status = ngx_srv:get("/wait")
    assert.are.equal(200, status, body)
    assert.are.equal("ended", cjson.decode(body).status)
  end)

  it("gives up at its timeout after one poll past the last sleep, however short the timeout", function()
    -- ngx.sleep rounds a wait under a millisecond to none: a wait's end must not become a burst
    for _, timeout in ipairs{ 0.002, 0.01, 0.05 } do
      sb:reset()
      local body, status = ngx_srv:get("/wait?interval=0.5&timeout=" .. timeout)
      assert.are.equal(502, status, body)
      local e = cjson.decode(body)
      assert.are.equal("timeout", e.kind, body)
      local polls = sb:count("GET", "/v1/calls/{callId}")
      assert.is_true(polls <= 2, timeout .. " s: " .. polls .. " polls")
      assert.are.equal(polls, e.attempts)
    end
  end)

  it("fails at once in a phase without cosockets, naming it and pointing to ngx.timer.at", function()
    local body, status = ngx_srv:get("/set-phase")
    assert.are.equal(200, status)
    assert.matches("'set' phase %(set_by_lua%*%)", body)
    assert.matches("ngx.timer.at", body, 1, true)
    local out = shell("curl -s -i '" .. ngx_srv.url .. "/header-phase'")
    assert.matches("X%-Phase%-Error: [^\r\n]*'header_filter' phase", out)
    -- in init_by_lua, where no timer can be started either, it points to init_worker_by_lua
    local init_error = cjson.decode((ngx_srv:get("/info"))).init_error
    assert.matches("'init' phase %(init_by_lua%*%)", init_error)
    assert.matches("a timer started in init_worker_by_lua*", init_error, 1, true)
    assert.are.equal(0, sb:count("GET", "/v1/calls/{callId}"))
  end)
end)

describe("the README's nginx.conf", function()
  local sb, srv

  setup(function() sb = sandbox.start{ speed = 100 } end)
  teardown(function()
    if srv then srv:stop() end
    if sb then sb:stop() end
  end)

  it("runs as written and places a call, the key and URL from the environment", function()
    local root = sandbox.root()
    local conf = nginx.read(root .. "/README.md"):match("\n## OpenResty / nginx\n.-```nginx\n(.-)```")
    assert.is_truthy(conf, "README.md: no nginx block in the OpenResty section")
    srv = nginx.start{ env = { SIGMAMIND_API_KEY = sb.key, SIGMAMIND_BASE_URL = sb.url }, conf = function(c)
      -- only the placeholders change: the repository's path, the port, and the module lines, which
      -- are Debian's (the harness knows the binary: none for OpenResty)
      local text, paths = conf:gsub("/path/to/lua%-sigmamind", root)
      local ports
      text, ports = text:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. c.port .. ";")
      assert(paths == 3 and ports == 1, "README.md's nginx.conf: placeholders moved")
      return c.modules .. c.user .. text:gsub("load_module [^\n]*\n", "")
    end }
    local body, status = srv:get("/call")
    assert.are.equal(200, status, body .. srv:error_log())
    assert.matches("^call_", body)
    assert.are.equal(1, sb:count("POST", "/v1/calls"))
  end)
end)

describe("webhook.dedupe over a lua_shared_dict", function()
  local webhook = require "sigmamind.webhook"
  local SECRET = "whsec_ngx_dedupe"
  local srv

  setup(function()
    srv = nginx.start{ conf = function(c)
      return c.head .. [[
  lua_shared_dict webhooks 1m;
  server {
    listen 127.0.0.1:]] .. c.port .. [[;
    # verify with the dict-backed dedupe (a fresh Dedupe per request: the memory is the dict's); ?forget=1
    # verifies without it, then forgets the event, as a handler that failed would
    location = /hook {
      content_by_lua_block {
        local webhook = require "sigmamind.webhook"
        local seen = webhook.dedupe{ store = ngx.shared.webhooks, ttl = 60 }
        ngx.req.read_body()
        local forget = ngx.var.arg_forget ~= nil
        local event, err = webhook.verify(ngx.req.get_body_data(), ngx.req.get_headers(),
                                          { secret = "]] .. SECRET .. [[", dedupe = not forget and seen or nil })
        if not event then return ngx.say(err.reason) end
        if forget then seen:forget(event) return ngx.say("forgotten ", event.call.callId) end
        ngx.say("ok ", event.event, " ", event.call.callId)
      }
    }
    location = /keys {
      content_by_lua_block {
        local dict = ngx.shared.webhooks
        for _, k in ipairs(dict:get_keys(0)) do ngx.say(k, "=", dict:get(k), " ttl<=", math.ceil(dict:ttl(k))) end
      }
    }
  }
}
]]
    end }
  end)

  teardown(function() if srv then srv:stop() end end)

  it("accepts a signed body once, answers its repeat duplicate, and accepts it again once forgotten", function()
    local body = '{"event":"conversation_ended","call":{"callId":"call_ngx_dedupe","status":"ended"}}'
    local sig = { ["X-SigmaMind-Signature"] = webhook.sign(body, SECRET) }
    local hook = srv.url .. "/hook"
    local got, status = post(hook, body, sig)
    assert.are.equal(200, status, got .. srv:error_log():sub(-1500))
    assert.are.equal("ok conversation_ended call_ngx_dedupe\n", got)
    assert.are.equal("duplicate\n", (post(hook, body, sig)))
    -- a retry is signed anew: the repeat is the (callId, event), not the signature
    sig = { ["X-SigmaMind-Signature"] = webhook.sign(body, SECRET, { t = os.time() - 1 }) }
    assert.are.equal("duplicate\n", (post(hook, body, sig)))
    assert.are.equal("sigmamind:webhook:call_ngx_dedupe:conversation_ended=1 ttl<=60\n", (srv:get("/keys")))

    assert.are.equal("forgotten call_ngx_dedupe\n", (post(hook .. "?forget=1", body, sig)))
    assert.are.equal("", (srv:get("/keys")))
    assert.are.equal("ok conversation_ended call_ngx_dedupe\n", (post(hook, body, sig)))
    assert.are.equal("duplicate\n", (post(hook, body, sig)))
    assert.is_nil(srv:error_log():find("[error]", 1, true), srv:error_log())
  end)
end)

describe("examples/openresty", function()
  local webhook = require "sigmamind.webhook"
  local sb, recv

  -- The example's nginx.conf as shipped, only its port changed, started by the command its header
  -- documents (`nginx -p examples/openresty/ -c nginx.conf`, from the repository).
  -- It finds our Lua layer and the LuaJIT core at $prefix/../../, so it runs in a private copy of
  -- that layout (DIR/examples/openresty, DIR/lua and DIR/build linking to the repository's), which
  -- keeps its logs out of the working tree.
  -- It says `daemon off`, so the shell starts it in the background; its pid file is
  -- logs/nginx.pid, as support.nginx's stop expects.
  local Example = setmetatable({}, { __index = nginx })
  Example.__index = Example

  function Example.start(port, secret)
    local root, bin = sandbox.root(), assert(nginx.binary(), "nginx not found")
    local conf, ports = nginx.read(root .. "/examples/openresty/nginx.conf")
                             :gsub("listen 127%.0%.0%.1:8089;", "listen 127.0.0.1:" .. port .. ";")
    assert(ports == 1, "examples/openresty/nginx.conf: its listen line moved")
    -- its header: OpenResty has the modules built in, drop the load_module lines
    if nginx.load_modules(bin) == "" then conf = conf:gsub("load_module [^\n]*\n", "") end
    local dir = shell("mktemp -d ${TMPDIR:-/tmp}/sigmamind-example.XXXXXX"):gsub("%s+$", "")
    local prefix = dir .. "/examples/openresty"
    -- as root, nginx's workers run as nobody, which must reach the copy
    shell("chmod 755 " .. quote(dir) .. " && mkdir -p " .. quote(prefix .. "/logs") .. " && ln -s " ..
          quote(root .. "/lua") .. " " .. quote(dir .. "/lua") .. " && ln -s " .. quote(root .. "/build") .. " " ..
          quote(dir .. "/build") .. " && cp " .. quote(root .. "/examples/openresty/webhook.lua") .. " " ..
          quote(prefix .. "/webhook.lua"))
    local f = assert(io.open(prefix .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
    os.execute("cd " .. quote(dir) .. " && SIGMAMIND_WEBHOOK_SECRET=" .. quote(secret) .. " " .. quote(bin) ..
               " -p examples/openresty/ -c nginx.conf >" .. quote(dir .. "/nginx.out") .. " 2>&1 &")
    local self = setmetatable({ dir = dir, prefix = prefix, port = port, url = "http://127.0.0.1:" .. port,
                                bin = bin }, Example)
    for _ = 1, 100 do
      local c = socket.tcp()
      c:settimeout(0.1)
      local up = c:connect("127.0.0.1", port)
      c:close()
      if up then return self end
      socket.sleep(0.05)
    end
    local why = nginx.read(dir .. "/nginx.out") .. self:error_log()
    self:stop()
    error("examples/openresty/nginx.conf did not start: " .. why, 2)
  end

  function Example:stop()
    nginx.stop(self)
    os.execute("rm -rf " .. quote(self.dir))
  end

  setup(function()
    sb = sandbox.start{ speed = 100 }
  end)

  teardown(function()
    if recv then recv:stop() end
    if sb then sb:stop() end
  end)

  it("runs as shipped: verifies the sandbox's deliveries, 401 to a forged one, 200 duplicate to a repeat", function()
    local port = nginx.free_port()
    local url = "http://127.0.0.1:" .. port .. "/webhooks/sigmamind"
    local status, hook = sb:request("POST", "/v1/webhooks", { name = "nginx receiver", agentId = sb.agent,
                                    url = url, events = { "conversation_started", "conversation_ended" } })
    assert.are.equal(201, status)
    recv = Example.start(port, hook.secret)

    -- a forged delivery is refused
    local forged = '{"event":"conversation_ended","call":{"callId":"call_forged"}}'
    local got, code = post(url, forged, { ["X-SigmaMind-Signature"] = "t=" .. os.time() .. ",v1=" .. string.rep("0", 64) })
    assert.are.equal(401, code, got)
    assert.are.same({ error = "bad_signature" }, cjson.decode(got))

    -- a real call's deliveries are verified and handed on
    status = sb:request("POST", "/v1/calls", { fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445",
                                               agentId = sb.agent })
    assert.are.equal(201, status)
    local received
    for _ = 1, 100 do
      local body = recv:get("/webhooks/received")
      received = cjson.decode(body)
      if received and #received >= 2 then break end
      socket.sleep(0.1)
    end
    assert.are.equal(2, #received, "received: " .. cjson.encode(received) .. recv:error_log())
    local names = {}
    for _, e in ipairs(received) do
      names[e.event] = true
      assert.matches("^call_", e.call.callId)
      assert.are_not.equal("call_forged", e.call.callId)
    end
    assert.is_true(names.conversation_started and names.conversation_ended)
    local _, d = sb:request("GET", "/_sandbox/deliveries")
    assert.are.equal(2, #d.data)
    for _, entry in ipairs(d.data) do
      assert.are.same({ "delivered", 204, 1 }, { entry.result, entry.status, entry.attempts })
    end

    -- a repeated delivery (the same bytes and signature, or a retry signed anew) is answered 200, a
    -- duplicate, and not handed on again
    local entry = d.data[1]
    got, code = post(url, entry.body, { ["X-SigmaMind-Signature"] = entry.signature })
    assert.are.equal(200, code, got)
    assert.are.same({ duplicate = true }, cjson.decode(got))
    got, code = post(url, entry.body, { ["X-SigmaMind-Signature"] = webhook.sign(entry.body, hook.secret) })
    assert.are.equal(200, code, got)
    assert.are.same({ duplicate = true }, cjson.decode(got))
    assert.are.equal(2, #cjson.decode((recv:get("/webhooks/received"))))
    assert.is_nil(recv:error_log():find("[error]", 1, true), recv:error_log())
  end)
end)

describe("the Lua layer", function()
  local root = sandbox.root()

  it("compiles under LuaJIT (no 5.4-only syntax) and passes luacheck with the Lua 5.1/5.4 intersection", function()
    if not os.execute("command -v luajit >/dev/null 2>&1") then return pending("luajit not installed") end
    local files = shell("ls " .. root .. "/lua/sigmamind/*.lua")
    for f in files:gmatch("[^\n]+") do
      local out = shell("luajit -b '" .. f .. "' /dev/null 2>&1")
      assert.are.equal("", out)
    end
    if not os.execute("command -v luacheck >/dev/null 2>&1") then return pending("luacheck not installed") end
    local out = shell("cd '" .. root .. "' && luacheck --no-color -q lua examples/openresty 2>&1; echo rc=$?")
    assert.matches("rc=0", out, 1, true)
  end)
end)
