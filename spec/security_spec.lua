-- Security defaults: TLS verification, loopback-only plain HTTP, no redirects, header and path injection,
-- and the API key never leaving C memory.
local sandbox = require "support.sandbox"
local sigmamind = require "sigmamind"

local function sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  assert(ok, "command failed: " .. cmd)
end

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

describe("security", function()
  local sb, dir

  setup(function()
    dir = os.tmpname(); os.remove(dir); sh("mkdir -p " .. dir)
    sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 " ..
        "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout %s/key.pem -out %s/cert.pem"):format(dir, dir))
    sb = sandbox.start{ speed = 100, args = { "--https-port", "0", "--cert", dir .. "/cert.pem",
                                               "--key", dir .. "/key.pem" } }
  end)
  teardown(function()
    if sb then sb:stop() end
    if dir then os.execute("rm -rf " .. dir) end
  end)
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
      -- each of these is a host name for the resolver (or no address at all), which may answer anything
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
      local seen = {}
      local c = sigmamind.new{ api_key = key, base_url = sb.url, max_retries = 1,
                               on_event = function(ev) seen[#seen + 1] = ev end }
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

    it("masks phone numbers in on_event paths", function()
      local seen = {}
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.url,
                               on_event = function(ev) seen[#seen + 1] = ev end }
      assert(c.phone_numbers:get(sb.number))
      c:close()
      assert.is_true(#seen > 0)
      for _, ev in ipairs(seen) do
        assert.is_nil(tostring(ev.path):find("4157774444", 1, true), ev.path)
      end
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
