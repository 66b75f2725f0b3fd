-- Security defaults: TLS verification, loopback-only plain HTTP, no redirects, header and path
-- injection, and the API key never leaving C memory.
local sandbox = require "support.sandbox"
local sigmamind = require "sigmamind"
local rawhttp = require "support.rawhttp"
local util = require "support.util"

-- walks any value and returns every string inside it, keys included
local function strings_in(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "string" then out[#out + 1] = v
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do strings_in(k, out, seen); strings_in(x, out, seen) end
  elseif v ~= nil then out[#out + 1] = tostring(v) end
  return out
end

-- a raw answer with Connection: close: the raw server serves one connection at a time, and a
-- blocking call and a task do not share one
local function answer(status, body, header)
  return rawhttp.answer(status, body, { "Connection: close", header })
end

describe("security", function()
  local sb, dir

  setup(function()
    sb = sandbox.start_tls{ speed = 100 }
    dir = sb.tls_dir
  end)
  teardown(function() if sb then sb:stop() end end)
  before_each(function() sb:reset() end)

  describe("TLS", function()
    it("refuses a self-signed certificate without ca_file", function()
      assert.matches("^https://127%.0%.0%.1:%d+$", sb.https_url)
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.https_url, max_retries = 0 }
      local page, err = c.agents:list{}
      c:close()
      assert.is_nil(page)
      assert.equal("network", err.kind)
      assert.matches("[Cc]ertificate", err.message)
      assert.equal(0, sb:count("GET", "/v1/agents"))
    end)

    it("accepts it with ca_file", function()
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.https_url, ca_file = dir .. "/cert.pem" }
      local page, err = c.agents:list{}
      c:close()
      assert.is_nil(err)
      assert.equal(sb.agent, page.data[1].agentId)
      assert.equal(1, sb:count("GET", "/v1/agents"))
    end)
  end)

  describe("plain http", function()
    it("is refused to a host that is not loopback unless insecure = true", function()
      assert.has_error(function() sigmamind.new{ api_key = "k", base_url = "http://api.example.test" } end)
      local c = sigmamind.new{ api_key = "k", base_url = "http://api.example.test", insecure = true }
      c:close()
      for _, url in ipairs{ "http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1" } do
        sigmamind.new{ api_key = "k", base_url = url }:close()
      end
    end)

    it("counts only literal loopback addresses and localhost as loopback, not names that look like them", function()
      -- each is a host name for the resolver (or no address at all), which may answer anything
      for _, url in ipairs{ "http://127.1.1.1.1:8080", "http://127.0.0.256:1", "http://127.0.0.01:1",
                            "http://127.1:1", "http://127..0.1:1", "http://127.0.0.1.:1", "http://[::2]:1",
                            "http://[::1.example]:1", "http://localhost.example:1" } do
        local ok, err = pcall(sigmamind.new, { api_key = "k", base_url = url })
        assert.is_false(ok, url)
        assert.matches("base_url: plain http:// is only allowed to a loopback host", err, 1, true)
        sigmamind.new{ api_key = "k", base_url = url, insecure = true }:close()
      end
      for _, url in ipairs{ "http://127.0.0.1:1", "http://127.255.255.254:1", "http://LocalHost:1",
                            "http://[::1]:1", "http://[0:0:0:0:0:0:0:1]:1", "http://[::0:1]" } do
        sigmamind.new{ api_key = "k", base_url = url }:close()
      end
    end)

    it("refuses schemes other than http and https", function()
      assert.has_error(function() sigmamind.new{ api_key = "k", base_url = "ftp://127.0.0.1/" } end)
      assert.has_error(function() sigmamind.new{ api_key = "k", base_url = "file:///etc/passwd" } end)
    end)
  end)

  describe("injection", function()
    it("refuses CR, LF or NUL in an id without sending anything", function()
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.url }
      for _, id in ipairs{ "call_1\r\nX-Evil: 1", "call_1\n", "call\0x" } do
        local call, err = c.calls:get(id)
        assert.is_nil(call)
        assert.equal("invalid", err.kind)
        assert.equal("callId", err.field)
      end
      c:close()
      assert.same({}, sb:api_requests())
    end)

    it("raises on CR or LF in the API key or user agent", function()
      assert.has_error(function() sigmamind.new{ api_key = "k\r\nX-Evil: 1", base_url = sb.url } end)
      assert.has_error(function() sigmamind.new{ api_key = "k", user_agent = "ua\nX: y", base_url = sb.url } end)
    end)

    it("percent-encodes ids so that ../x cannot leave /v1/calls/", function()
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.url }
      local call, err = c.calls:get("../agents")
      c:close()
      assert.is_nil(call)
      assert.equal("not_found", err.kind)
      assert.equal(1, sb:count("GET", "/v1/calls/{callId}"))
      assert.equal(0, sb:count("GET", "/v1/agents"))
    end)
  end)

  describe("the API key", function()
    it("never appears in errors, events, tostring(client) or the client's Lua-visible state", function()
      local key = "sk_live_" .. string.rep("s3cr3t", 4)
      local seen, on_event = util.events()
      local c = sigmamind.new{ api_key = key, base_url = sb.url, max_retries = 1, on_event = on_event }
      local _, e1 = c.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445" } -- 401
      local _, e2 = c.calls:get("bad\nid")                                                      -- invalid
      sb:arm{ method = "GET", path = "/v1/agents", fault = "503", count = 5 }
      local _, e3 = c.agents:list{}
      local all = strings_in({ e1, e2, e3, seen, c, tostring(c), tostring(e1), tostring(e2), tostring(e3),
                               debug.getregistry() })
      c:close()
      assert.equal("auth", e1.kind)
      assert.is_true(#seen > 0)
      for _, s in ipairs(all) do
        assert.is_nil(s:find(key, 1, true), "the key leaked into: " .. s:sub(1, 80))
        assert.is_nil(s:find("s3cr3t", 1, true), "part of the key leaked into: " .. s:sub(1, 80))
      end
    end)

    it("is redacted where a server echoes it: message, body, request id, tostring, and in tasks too", function()
      local key = "sk_live_" .. string.rep("s3cr3t", 4)
      local echo = '{"message":"Invalid API key: ' .. key .. '"}'
      local raw = rawhttp.start{
        answer(401, echo, "X-Request-Id: req-" .. key),               -- blocking
        answer(401, echo),                                            -- a task (the multi handle)
        answer(200, "not JSON: " .. key),                             -- decode error: the body is kept
        answer(404, '{"message":"no call ' .. key .. '"}') }          -- the key as an id, in the path
      local seen, on_event = util.events()
      local c = sigmamind.new{ api_key = key, base_url = raw.url, max_retries = 0, on_event = on_event }
      local _, e1 = c.agents:list{}
      local e2 = sigmamind.map(c, { 1 }, function() return c.agents:list{} end)[1][2]
      local _, e3 = c.agents:list{}
      local _, e4 = c.calls:get(key)
      c:close()
      raw.stop()
      assert.equal("auth", e1.kind)
      assert.equal("Invalid API key: [REDACTED]", e1.message)
      assert.equal('{"message":"Invalid API key: [REDACTED]"}', e1.body)
      assert.equal("req-[REDACTED]", e1.request_id)
      assert.equal("sigmamind: GET /v1/agents: 401 Unauthorized: Invalid API key: [REDACTED]", tostring(e1))
      assert.equal("Invalid API key: [REDACTED]", e2.message)
      assert.equal("decode", e3.kind)
      assert.equal("not JSON: [REDACTED]", e3.body)
      assert.equal("/v1/calls/[REDACTED]", e4.path)
      assert.equal("no call [REDACTED]", e4.message)
      assert.is_true(#seen >= 8)
      for _, s in ipairs(strings_in({ e1, e2, e3, e4, tostring(e1), tostring(e2), tostring(e3), tostring(e4),
                                      seen })) do
        assert.is_nil(s:find("s3cr3t", 1, true), "the key leaked into: " .. s:sub(1, 80))
      end
    end)

    it("masks phone numbers in on_event paths", function()
      local seen, on_event = util.events()
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.url, on_event = on_event }
      assert(c.phone_numbers:get(sb.number))
      c:close()
      assert.is_true(#seen > 0)
      for _, ev in ipairs(seen) do
        assert.is_nil(tostring(ev.path):find("4157774444", 1, true), ev.path)
      end
    end)
  end)

  describe("proxies", function()
    -- plain http is allowed to loopback because the bytes stay on this host; a proxy would read
    -- the key. A child process, so that the proxy variables are its own.
    local function child(env, opts)
      local code = ("local s = require 'sigmamind'; local ok, c = pcall(s.new, { api_key = %q, base_url = %q, " ..
                    "max_retries = 0, %s }); if not ok then return io.write('raised: ', c) end; " ..
                    "local a, err = c.agents:list(); io.write(a and 'ok' or tostring(err))")
                   :format(sb.key, sb.url, opts or "")
      return util.lua_without_proxies(env, code)
    end

    it("never carry a plain http:// request, key included, when set in the environment", function()
      local ok_body = '{"data":[],"hasNext":false}'
      local raw = rawhttp.start{ answer(200, ok_body), answer(200, ok_body), answer(200, ok_body) }
      local proxy = raw.url
      local outs = { child("http_proxy=" .. proxy), child("ALL_PROXY=" .. proxy), child("all_proxy=" .. proxy) }
      local got = raw.requests()
      raw.stop()
      assert.same({ "ok", "ok", "ok" }, outs)
      assert.same({}, got)
      assert.equal(3, sb:count("GET", "/v1/agents"))
    end)

    it("are refused as an option for a plain http:// base_url unless insecure = true, and then used", function()
      local raw = rawhttp.start{ answer(200, '{"data":[],"hasNext":false}') }
      for _, proxy in ipairs{ "http://proxy.example.test:3128", raw.url,
                              "127.0.0.1:" .. raw.port, "socks5://127.0.0.1:" .. raw.port } do
        local ok, err = pcall(sigmamind.new, { api_key = sb.key, base_url = sb.url, proxy = proxy })
        assert.is_false(ok, proxy)
        assert.matches("proxy: a plain http:// base_url is sent directly, never through a proxy", err, 1, true)
      end
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.url, insecure = true, max_retries = 0,
                               proxy = raw.url }
      local page, err = c.agents:list{}
      c:close()
      local got = raw.requests()
      raw.stop()
      assert.is_nil(err)
      assert.same({}, page.data)
      assert.same({ "GET " .. sb.url .. "/v1/agents HTTP/1.1" }, got)
      assert.equal(0, sb:count("GET", "/v1/agents"))
    end)

    it("carry an https:// base_url only as a CONNECT tunnel", function()
      local raw = rawhttp.start{ "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n" }
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.https_url, ca_file = dir .. "/cert.pem",
                               proxy = raw.url, max_retries = 0 }
      local page = c.agents:list{}
      c:close()
      local got = raw.requests()
      raw.stop()
      assert.is_nil(page)
      assert.same({ "CONNECT " .. sb.https_url:match("^https://(.*)$") .. " HTTP/1.1" }, got)
    end)
  end)

  describe("redirects", function()
    it("are not followed", function()
      sb:arm{ method = "GET", path = "/v1/agents", fault = "redirect", count = 1 }
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.url, max_retries = 0 }
      local page, err = c.agents:list{}
      c:close()
      assert.is_nil(page)
      assert.equal(302, err.status)
      assert.equal(1, sb:count("GET", "/v1/agents"))
      assert.equal(0, sb:count("GET", "/v1/calls"))
    end)
  end)
end)
