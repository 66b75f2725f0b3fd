-- core_spec.lua: sigmamind.core on its own: validation, encodings, crypto, JSON, errors, misuse.
local core = require "sigmamind.core"

local E164 = "+14155552671"
local REFUSED = "http://127.0.0.1:1"   -- nothing listens on port 1: connect fails at once, nothing is sent
-- extra seconds on timing bounds when the suite runs under valgrind or sanitizers (check-mem, asan)
local SLACK = os.getenv("SIGMAMIND_SLOW") and 0.5 or 0

local function invalid(name, params, args)
  local ok, err = core.validate(name, params, args)
  assert.is_nil(ok)
  assert.is_true(core.is_error(err))
  assert.equal("invalid", err.kind)
  assert.is_false(err.sent)
  assert.equal(0, err.attempts)
  return err
end

local function valid(name, params, args)
  local ok, err = core.validate(name, params, args)
  assert.is_true(ok, err and tostring(err))
end

local function expect_invalid(name, params, field, pattern, args)
  local err = invalid(name, params, args)
  assert.equal(field, err.field)
  if pattern then assert.matches(pattern, err.message, 1, false) end
  assert.equal(field, err.message:match("^([%w_]+)"))
  return err
end

describe("sigmamind.core", function()
  it("has a version, the JSON null and the endpoint table", function()
    assert.equal("0.2.0", core._VERSION)
    assert.equal("userdata", type(core.null))
    local names = {}
    for name, ep in pairs(core.endpoints) do
      names[#names + 1] = name
      assert.is_string(ep.method); assert.is_string(ep.path); assert.is_table(ep.args)
    end
    table.sort(names)
    assert.same({ "agents.get", "agents.list", "calls.create", "calls.delete", "calls.get", "calls.list",
      "campaigns.create", "campaigns.delete", "campaigns.get", "campaigns.list", "campaigns.update",
      "phone_numbers.delete", "phone_numbers.get", "phone_numbers.import", "phone_numbers.list",
      "phone_numbers.provision", "phone_numbers.update", "webhooks.create", "webhooks.delete", "webhooks.get",
      "webhooks.list", "webhooks.update" }, names)
    assert.same({ method = "POST", path = "/v1/calls", args = {}, body = true },
      { method = core.endpoints["calls.create"].method, path = core.endpoints["calls.create"].path,
        args = core.endpoints["calls.create"].args, body = core.endpoints["calls.create"].body })
    assert.same({ "phoneNumber" }, core.endpoints["phone_numbers.update"].args)
    assert.equal("PATCH", core.endpoints["phone_numbers.update"].method)
    assert.equal("/v1/phone-numbers/{phoneNumber}", core.endpoints["phone_numbers.get"].path)
  end)

  describe("validation", function()
    local call = { fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445" }
    local function with(t, extra)
      local c = {}
      for k, v in pairs(t) do c[k] = v end
      for k, v in pairs(extra) do c[k] = v end
      return c
    end

    it("accepts a well-formed call, and a field the table does not know only through extra_body", function()
      valid("calls.create", call)
      valid("calls.create", with(call, { agentId = "agent_abc123", dynamicVariables = {} }))
      expect_invalid("calls.create", with(call, { brandNewField = { 1 } }), "brandNewField", "not a field")
      assert.is_true(core.validate("calls.create", call, nil, { extra_body = { brandNewField = { 1 } } }))
    end)

    it("names the field, what was expected and what was given", function()
      local err = expect_invalid("calls.create", with(call, { toPhoneNumber = "12345" }), "toPhoneNumber")
      assert.equal('toPhoneNumber: expected an E.164 phone number like +14155552671, got "12345"', err.message)
      assert.equal("sigmamind: POST /v1/calls: invalid: " .. err.message, tostring(err))
    end)

    it("reports missing required fields as 'got nothing'", function()
      local err = expect_invalid("calls.create", { toPhoneNumber = E164 }, "fromPhoneNumber")
      assert.matches("got nothing %(a required field%)$", err.message)
      expect_invalid("calls.create", nil, "fromPhoneNumber")
    end)

    it("refuses phone numbers given as Lua numbers, with a hint", function()
      local err = expect_invalid("calls.create", with(call, { toPhoneNumber = 14155552671 }), "toPhoneNumber")
      assert.matches("as strings", err.message, 1, true)
    end)

    it("checks the E.164 shape exactly", function()
      for _, bad in ipairs({ "+0123456789", "+123456", "+1234567890123456", "14155552671", "+1415555267a", "" }) do
        expect_invalid("calls.create", with(call, { toPhoneNumber = bad }), "toPhoneNumber")
      end
      valid("calls.create", with(call, { toPhoneNumber = "+1234567" }))
      valid("calls.create", with(call, { toPhoneNumber = "+123456789012345" }))
    end)

    it("truncates long values it shows", function()
      local err = expect_invalid("calls.create", with(call, { agentId = string.rep("a", 65) }), "agentId")
      assert.matches('"' .. string.rep("a", 40) .. '..."', err.message, 1, true)
      assert.matches("1 to 64 characters", err.message, 1, true)
      valid("calls.create", with(call, { agentId = string.rep("a", 64) }))
      -- characters, not bytes: 64 two-byte letters fit, 65 do not
      valid("calls.create", with(call, { agentId = string.rep("\u{e9}", 64) }))
      expect_invalid("calls.create", with(call, { agentId = string.rep("\u{e9}", 65) }), "agentId")
      valid("campaigns.create", { campaignName = string.rep("\u{20ac}", 128), agentId = "agent_abc123",
        sipPhoneNumber = "+14155552671", file = core.base64_encode("phoneNumber\n+12137774445\n") })
    end)

    it("wants dynamicVariables as a table with string keys", function()
      expect_invalid("calls.create", with(call, { dynamicVariables = "x" }), "dynamicVariables")
      expect_invalid("calls.create", with(call, { dynamicVariables = { "positional" } }), "dynamicVariables")
      valid("calls.create", with(call, { dynamicVariables = { customer_name = "John" } }))
    end)

    it("checks list filters: enums and page/size integers", function()
      valid("calls.list", { status = "ended", page = 0, size = 50 })
      valid("calls.list", { page = 2.0, size = 1.0 })
      expect_invalid("calls.list", { status = "done" }, "status", "one of scheduled, in_progress")
      expect_invalid("calls.list", { page = -1 }, "page")
      expect_invalid("calls.list", { size = 0 }, "size")
      expect_invalid("calls.list", { size = 1.5 }, "size")
      expect_invalid("calls.list", { size = "10" }, "size")
      valid("campaigns.list", { status = "paused" })
      expect_invalid("campaigns.list", { status = "ended" }, "status", "one of live, scheduled, paused, completed")
      valid("webhooks.list", { active = false, agentId = "agent_abc123" })
      expect_invalid("webhooks.list", { active = "false" }, "active")
      valid("agents.list", { page = 0, size = 10 })
      valid("phone_numbers.list", {})
    end)

    describe("campaigns", function()
      local camp = { campaignName = "September", agentId = "agent_abc123", sipPhoneNumber = "+14157774444",
                     file = core.base64_encode("phoneNumber\n+12137774445\n") }
      it("accepts a full campaign", function()
        valid("campaigns.create", with(camp, { concurrentCalls = 5, isScheduled = true, scheduledDate = "2024-02-29",
          scheduledTime = "23:59", scheduledTimezone = "America/Argentina/Buenos_Aires" }))
        valid("campaigns.create", with(camp, { scheduledTimezone = "UTC", isScheduled = false }))
        -- single-part IANA names are zones too; whether one exists is the server's to say
        for _, z in ipairs({ "GMT", "Japan", "EST5EDT", "Etc/GMT+5", "US/Eastern", "America/Port-au-Prince" }) do
          valid("campaigns.create", with(camp, { isScheduled = true, scheduledDate = "2025-09-01",
            scheduledTime = "09:00", scheduledTimezone = z }))
        end
      end)
      it("checks each field", function()
        expect_invalid("campaigns.create", with(camp, { campaignName = "" }), "campaignName")
        expect_invalid("campaigns.create", with(camp, { campaignName = string.rep("n", 129) }), "campaignName")
        expect_invalid("campaigns.create", with(camp, { file = "not base64!" }), "file")
        expect_invalid("campaigns.create", with(camp, { file = "" }), "file")
        expect_invalid("campaigns.create", with(camp, { file = "YWJ" }), "file")
        expect_invalid("campaigns.create", with(camp, { concurrentCalls = 0 }), "concurrentCalls")
        expect_invalid("campaigns.create", with(camp, { isScheduled = "yes" }), "isScheduled")
        for _, d in ipairs({ "2025-02-29", "2025-13-01", "2025-1-01", "2025/01/01", "2025-04-31" }) do
          expect_invalid("campaigns.create", with(camp, { scheduledDate = d }), "scheduledDate")
        end
        for _, t in ipairs({ "24:00", "09:60", "9:00", "09:00:00" }) do
          expect_invalid("campaigns.create", with(camp, { scheduledTime = t }), "scheduledTime")
        end
        for _, z in ipairs({ "America/", "/New_York", "America//New_York", "America/New York", "", "+05:00", "-05",
                             "5America", string.rep("A", 65) }) do
          expect_invalid("campaigns.create", with(camp, { scheduledTimezone = z }), "scheduledTimezone")
        end
      end)
      it("requires the scheduling trio when isScheduled is true, naming the first missing", function()
        local err = expect_invalid("campaigns.create", with(camp, { isScheduled = true, scheduledDate = "2025-09-01" }),
          "scheduledTime")
        assert.matches("isScheduled", err.message, 1, true)
        expect_invalid("campaigns.create", with(camp, { isScheduled = true }), "scheduledDate")
      end)
      it("takes dynamic variables whose values are strings, numbers or booleans, on create and update", function()
        valid("campaigns.create", with(camp, { dynamicVariables = { a = "x", b = 1, c = 1.5, d = false, e = "" } }))
        for _, v in ipairs{ {}, { 1 }, { x = 1 }, 0 / 0, math.huge, -math.huge, core.null } do
          expect_invalid("campaigns.create", with(camp, { dynamicVariables = { k = v } }), "dynamicVariables",
                         "^dynamicVariables%.k: expected a string, number or boolean, got ")
          expect_invalid("campaigns.update", { dynamicVariables = { k = v } }, "dynamicVariables",
                         "^dynamicVariables%.k: expected a string, number or boolean", { "camp_1" })
        end
      end)

      it("updates partially, with campaignStatus, but never the file", function()
        valid("campaigns.update", { campaignStatus = "paused" }, { "camp_1" })
        valid("campaigns.update", {}, { "camp_1" })
        expect_invalid("campaigns.update", { campaignStatus = "stopped" }, "campaignStatus", nil, { "camp_1" })
        -- a status is set only to pause or resume (docs/api.md §6); the server refuses the others
        valid("campaigns.update", { campaignStatus = "live" }, { "camp_1" })
        expect_invalid("campaigns.update", { campaignStatus = "completed" }, "campaignStatus", nil, { "camp_1" })
        expect_invalid("campaigns.update", { campaignStatus = "scheduled" }, "campaignStatus", nil, { "camp_1" })
        expect_invalid("campaigns.update", { file = camp.file }, "file", nil, { "camp_1" })
      end)
    end)

    describe("phone numbers", function()
      it("provisions by number or by country (and area code)", function()
        valid("phone_numbers.provision", { phoneNumber = E164 })
        valid("phone_numbers.provision", { countryCode = "US", areaCode = 415, friendlyName = "Main" })
        expect_invalid("phone_numbers.provision", {}, "phoneNumber")
        expect_invalid("phone_numbers.provision", { phoneNumber = E164, areaCode = 415 }, "areaCode")
        expect_invalid("phone_numbers.provision", { countryCode = "us" }, "countryCode")
        expect_invalid("phone_numbers.provision", { countryCode = "USA" }, "countryCode")
        expect_invalid("phone_numbers.provision", { countryCode = "US", areaCode = 99 }, "areaCode")
        expect_invalid("phone_numbers.provision", { countryCode = "US", areaCode = 100000 }, "areaCode")
        valid("phone_numbers.provision", { countryCode = "US", areaCode = 99999.0 })
        expect_invalid("phone_numbers.provision", { phoneNumber = E164, friendlyName = string.rep("f", 129) },
          "friendlyName")
      end)
      it("imports with the SIP trunk fields required", function()
        local imp = { phoneNumber = E164, terminationSipURI = "sip.example.com", trunkUsername = "u",
                      trunkPassword = "p" }
        valid("phone_numbers.import", imp)
        for _, k in ipairs({ "phoneNumber", "terminationSipURI", "trunkUsername", "trunkPassword" }) do
          local t = with(imp, {}); t[k] = nil
          expect_invalid("phone_numbers.import", t, k)
        end
      end)
      it("unassigns agents with core.null on update, and wants E.164 in the path", function()
        valid("phone_numbers.update", { inboundAgentId = core.null, outboundAgentId = core.null }, { E164 })
        expect_invalid("phone_numbers.update", { friendlyName = core.null }, "friendlyName", nil, { E164 })
        expect_invalid("phone_numbers.update", { terminationSipUri = string.rep("s", 254) }, "terminationSipUri",
          nil, { E164 })
        expect_invalid("phone_numbers.get", nil, "phoneNumber", nil, { "14155552671" })
        expect_invalid("phone_numbers.delete", nil, "phoneNumber", nil, { "+1 415 555 2671" })
      end)
    end)

    describe("webhooks", function()
      local wh = { name = "ended", agentId = "agent_abc123", url = "https://example.com/hook",
                   events = { "conversation_ended" } }
      it("accepts both spellings of analysed and checks each event", function()
        valid("webhooks.create", with(wh, { events = { "conversation_started", "conversation_analysed",
                                                       "conversation_analyzed" } }))
        expect_invalid("webhooks.create", with(wh, { events = {} }), "events", "non%-empty")
        local err = expect_invalid("webhooks.create", with(wh, { events = { "conversation_ended", "call_ended" } }),
          "events")
        assert.matches('^events%[2%]: expected one of .*got "call_ended"$', err.message)
      end)
      it("wants an http(s) URL with a host", function()
        for _, u in ipairs({ "ftp://example.com", "https://", "example.com", "https:///x", "https://a b" }) do
          expect_invalid("webhooks.create", with(wh, { url = u }), "url")
        end
        valid("webhooks.create", with(wh, { url = "http://localhost:8080/x" }))
        valid("webhooks.create", with(wh, { url = "HTTPS://hooks.example.com/x" }))   -- any case of scheme
        valid("webhooks.create", with(wh, { url = "Http://localhost:8080/x" }))
      end)
      it("updates partially", function()
        valid("webhooks.update", { active = false }, { "wh_1" })
        expect_invalid("webhooks.update", { name = "" }, "name", nil, { "wh_1" })
      end)
    end)

    it("checks path arguments: non-empty, no control characters, not . or ..", function()
      valid("calls.get", nil, { "call_1" })
      valid("calls.get", nil, { "../x" })           -- fine: it is percent-encoded
      expect_invalid("calls.get", nil, "callId", nil, { "" })
      expect_invalid("calls.get", nil, "callId", nil, { ".." })
      expect_invalid("campaigns.get", nil, "campaignId", nil, { "." })
      expect_invalid("webhooks.get", nil, "webhookId", nil, { "a\r\nX-Evil: 1" })
      expect_invalid("agents.get", nil, "agentId", nil, { "a\0b" })
    end)

    it("validates the same way before a request, and sends nothing", function()
      local events = {}
      local c = core.new{ api_key = "sk_test_x", base_url = REFUSED, max_retries = 0,
                          on_event = function(ev) events[#events + 1] = ev end }
      local v, err = c:request("calls.create", nil, { fromPhoneNumber = E164, toPhoneNumber = "12345" })
      assert.is_nil(v)
      assert.equal("invalid", err.kind)
      assert.equal("toPhoneNumber", err.field)
      assert.equal(0, #events)     -- not even a request event: nothing was attempted
      c:close()
    end)
  end)

  describe("requests without a server", function()
    it("percent-encodes path arguments and reports a connect failure as unsent network error", function()
      local c = core.new{ api_key = "sk_test_x", base_url = REFUSED .. "/prefix/", max_retries = 0 }
      local v, err = c:request("calls.get", { "../x y" })
      assert.is_nil(v)
      assert.equal("network", err.kind)
      assert.equal("/v1/calls/..%2Fx%20y", err.path)
      assert.is_false(err.sent)
      assert.is_true(err.retryable)
      assert.equal(1, err.attempts)
      v, err = c:request("phone_numbers.get", { E164 })
      assert.is_nil(v)
      assert.equal("/v1/phone-numbers/%2B14155552671", err.path)
      c:close()
    end)

    it("retries unsent requests, even POST, and masks numbers in on_event", function()
      local events = {}
      local c = core.new{ api_key = "sk_test_secret_key", base_url = REFUSED, max_retries = 1,
                          on_event = function(ev) events[#events + 1] = ev end }
      local v, err = c:request("phone_numbers.get", { E164 })
      assert.is_nil(v)
      assert.equal(2, err.attempts)
      local types = {}
      for _, ev in ipairs(events) do
        types[#types + 1] = ev.type
        assert.equal("/v1/phone-numbers/+1415***2671", ev.path)
        for _, val in pairs(ev) do assert.is_nil(tostring(val):find("secret", 1, true)) end
      end
      assert.same({ "request", "response", "retry", "request", "response", "give_up" }, types)
      assert.is_true(events[3].delay > 0 and events[3].delay <= 0.5)
      assert.matches("after 2 attempts", tostring(err), 1, true)
      v, err = c:request("calls.create", nil, { fromPhoneNumber = E164, toPhoneNumber = E164 })
      assert.is_nil(v)
      assert.equal(2, err.attempts)  -- never connected, so a POST may be retried
      c:close()
    end)

    it("swallows on_event errors and refuses re-entry from it", function()
      local c
      local reentered
      c = core.new{ api_key = "sk_test_x", base_url = REFUSED, max_retries = 0,
                    on_event = function()
                      reentered = select(2, pcall(c.request, c, "calls.list"))
                      error("boom")
                    end }
      local v, err = c:request("calls.list")
      assert.is_nil(v)
      assert.equal("network", err.kind)
      assert.matches("busy", tostring(reentered))
      c:close()
    end)

    it("stops at the deadline instead of sleeping past it", function()
      local c = core.new{ api_key = "sk_test_x", base_url = REFUSED, max_retries = 10, deadline = 0.3 }
      local t0 = core.now()
      local v, err = c:request("calls.list")
      assert.is_nil(v)
      assert.is_true(core.now() - t0 < 0.3 + SLACK)
      assert.is_true(err.attempts < 11)
      c:close()
    end)
  end)

  describe("the client handle", function()
    it("never shows the key", function()
      local key = "sk_live_0123456789abcdef"
      local c = core.new{ api_key = key, base_url = "https://api.sigmamind.ai" }
      local s = tostring(c)
      assert.matches("^sigmamind.client%(https://api.sigmamind.ai, key=sk_", s)
      assert.is_nil(s:find("0123456789", 1, true))
      c:close()
      assert.equal("sigmamind.client(closed)", tostring(c))
    end)

    it("closes idempotently, and refuses use after close", function()
      local c = core.new{ api_key = "k", base_url = REFUSED }
      c:close(); c:close()
      assert.has_error(function() c:request("calls.list") end, "sigmamind: attempt to use a closed client")
      do local d <close> = core.new{ api_key = "k", base_url = REFUSED } end  -- luacheck: ignore 211/d (closed at end)
      collectgarbage(); collectgarbage()
    end)

    it("refuses CR, LF and NUL in the key, user agent and base URL", function()
      assert.has_error(function() core.new{ api_key = "k\r\nX: y", base_url = REFUSED } end)
      assert.has_error(function() core.new{ api_key = "k\0", base_url = REFUSED } end)
      assert.has_error(function() core.new{ api_key = "k", base_url = REFUSED, user_agent = "ua\n" } end)
      assert.has_error(function() core.new{ api_key = "k", base_url = REFUSED .. "\n" } end)
    end)

    it("allows plain http only to loopback unless insecure", function()
      for _, u in ipairs({ "http://127.0.0.1:8080", "http://127.1.2.3", "http://localhost:1/x", "http://[::1]:9" }) do
        core.new{ api_key = "k", base_url = u }:close()
      end
      assert.has_error(function() core.new{ api_key = "k", base_url = "http://example.com" } end)
      assert.has_error(function() core.new{ api_key = "k", base_url = "http://127.0.0.1.evil.com" } end)
      core.new{ api_key = "k", base_url = "http://example.com", insecure = true }:close()
      assert.has_error(function() core.new{ api_key = "k", base_url = "ftp://127.0.0.1" } end)
      assert.has_error(function() core.new{ api_key = "k", base_url = "https://u:p@example.com" } end)
    end)

    it("raises on misuse", function()
      local c = core.new{ api_key = "k", base_url = REFUSED }
      assert.has_error(function() c:request("calls.nope") end)
      assert.has_error(function() c:request("calls.get") end)               -- missing path argument
      assert.has_error(function() c:request("calls.get", { 42 }) end)       -- not a string
      assert.has_error(function() c:request("calls.list", { "x" }) end)     -- no path arguments
      assert.has_error(function() c:request("calls.list", nil, "status=x") end)
      assert.has_error(function() core.new("k") end)
      assert.has_error(function() core.new{ base_url = REFUSED } end)
      assert.has_error(function() core.validate("nope", {}) end)
      assert.has_error(function() core.error{ message = "no kind" } end)
      c:close()
    end)
  end)

  describe("base64 (RFC 4648 §10 vectors)", function()
    local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==", fooba = "Zm9vYmE=",
                      foobar = "Zm9vYmFy" }
    it("encodes and decodes", function()
      for plain, enc in pairs(vectors) do
        assert.equal(enc, core.base64_encode(plain))
        assert.equal(plain, core.base64_decode(enc))
      end
      local all = {}
      for i = 0, 255 do all[#all + 1] = string.char(i) end
      all = table.concat(all)
      assert.equal(all, core.base64_decode(core.base64_encode(all)))
    end)
    it("refuses malformed input with nil, message", function()
      for _, bad in ipairs({ "Zg=", "Zg", "Z===", "Zm9v!A==", "Zg==Zg==", "Zh==" }) do
        local v, msg = core.base64_decode(bad)
        assert.is_nil(v)
        assert.is_string(msg)
      end
    end)
  end)

  describe("HMAC-SHA256", function()
    -- RFC 4231 test cases 1, 2, 3, 4, 6, 7
    local cases = {
      { string.rep("\x0b", 20), "Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
      { "Jefe", "what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
      { string.rep("\xaa", 20), string.rep("\xdd", 50),
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
      { "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19",
        string.rep("\xcd", 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
      { string.rep("\xaa", 131), "Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
      { string.rep("\xaa", 131),
        "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be " ..
        "hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
    }
    it("matches RFC 4231", function()
      for _, c in ipairs(cases) do
        assert.equal(c[3], core.hmac_sha256(c[1], c[2]))
        assert.equal(c[3], core.hmac_sha256(c[1], c[2], "hex"))
        local raw = core.hmac_sha256(c[1], c[2], "raw")
        assert.equal(32, #raw)
        assert.equal(c[3], (raw:gsub(".", function(ch) return string.format("%02x", ch:byte()) end)))
      end
    end)
    it("matches openssl dgst", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "wb")); f:write("1700000000.{\"event\":\"conversation_ended\"}"); f:close()
      local p = assert(io.popen("openssl dgst -sha256 -hmac whsec_test -r " .. path))
      local out = p:read("a"); p:close(); os.remove(path)
      assert.equal(out:match("^(%x+)"), core.hmac_sha256("whsec_test", "1700000000.{\"event\":\"conversation_ended\"}"))
    end)
    it("rejects an unknown output form", function()
      assert.has_error(function() core.hmac_sha256("k", "m", "base32") end)
    end)
  end)

  it("compares in constant time", function()
    assert.is_true(core.consteq("abc", "abc"))
    assert.is_false(core.consteq("abc", "abd"))
    assert.is_false(core.consteq("abc", "abcd"))
    assert.is_true(core.consteq("", ""))
    assert.is_true(core.consteq("a\0b", "a\0b"))
    assert.is_false(core.consteq("a\0b", "a\0c"))
  end)

  describe("JSON", function()
    it("decodes integers as integers and keeps null", function()
      local v = core.json_decode('{"duration":120,"ratio":1.5,"big":1152921504606846976,"neg":-3,"end":null,' ..
                                 '"list":[1,2.0,{"n":7}]}')
      assert.equal("integer", math.type(v.duration)); assert.equal(120, v.duration)
      assert.equal("float", math.type(v.ratio))
      assert.equal("float", math.type(v.big))
      assert.equal("integer", math.type(v.neg))
      assert.equal(core.null, v["end"])
      assert.equal("integer", math.type(v.list[2]))
      assert.equal("integer", math.type(v.list[3].n))
      assert.equal("integer", math.type(core.json_decode("5")))
    end)
    it("returns nil, message for bad JSON", function()
      local v, msg = core.json_decode("{not json")
      assert.is_nil(v)
      assert.is_string(msg)
    end)
    it("reads integers of up to 18 digits exactly, longer or fractional ones as floats", function()
      local v = core.json_decode('[123456789012345678,-123456789012345678,1e2,-0,0.5e1,1.,-.5,1e400]')
      assert.equal(123456789012345678, v[1]); assert.equal("integer", math.type(v[1]))
      assert.equal(-123456789012345678, v[2])
      assert.equal(100, v[3]); assert.equal("integer", math.type(v[3]))
      assert.equal(0, v[4]); assert.equal(5, v[5]); assert.equal(1, v[6])
      assert.equal(-0.5, v[7])                      -- not JSON, but lua-cjson reads it: so do we
      assert.equal(math.huge, v[8])
    end)
    it("unescapes strings: short escapes, \\u code points and surrogate pairs into UTF-8", function()
      assert.equal('a"b\\c/d\b\f\n\r\te', core.json_decode('"a\\"b\\\\c\\/d\\b\\f\\n\\r\\te"'))
      assert.equal("caf\u{e9} \u{20ac} \u{1F600} \0x", core.json_decode('"caf\\u00e9 \\u20AC \\ud83d\\ude00 \\u0000x"'))
      local long = string.rep("line\\n", 1000)    -- 6,000 bytes escaped: unescaped outside the C stack
      assert.equal(string.rep("line\n", 1000), core.json_decode('"' .. long .. '"'))
      for _, bad in ipairs{ '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', '"\\u12"', '"\\x"', '"abc',
                            '"a\\"', '"a\0b"' } do
        local v, msg = core.json_decode(bad)
        assert.is_nil(v, bad)
        assert.matches("at character %d+$", msg)
      end
    end)
    it("builds tables of any size, later duplicate keys winning", function()
      local items, members = {}, {}
      for i = 1, 300 do items[i] = tostring(i); members[i] = ('"k%d":%d'):format(i, i) end
      local a = core.json_decode("[" .. table.concat(items, ",") .. "]")
      assert.equal(300, #a); assert.equal(1, a[1]); assert.equal(300, a[300])
      -- the first 64 values go on the stack, the rest are set as read: every size across that edge
      for len = 60, 132 do
        local got = core.json_decode("[" .. table.concat(items, ",", 1, len) .. "]")
        assert.equal(len, #got)
        for i = 1, len do if got[i] ~= i then error(("[%d] of %d: got %s"):format(i, len, tostring(got[i]))) end end
        assert.is_nil(got[len + 1])
      end
      local o = core.json_decode("{" .. table.concat(members, ",") .. ',"k1":"last"}')
      assert.equal("last", o.k1); assert.equal(300, o.k300)
      local n = 0
      for _ in pairs(o) do n = n + 1 end
      assert.equal(300, n)
      assert.same({ {}, {}, { x = {} } }, core.json_decode('[[], {}, {"x": [ ]}]'))
      -- a key twice among the first members (on the stack before the table exists), twice past them
      assert.same({ a = 3, b = 2 }, core.json_decode('{"a":1,"b":2,"a":3}'))
      local o2 = core.json_decode("{" .. table.concat(members, ",") .. ',"k2":"again","k300":"again"}')
      assert.equal("again", o2.k2); assert.equal("again", o2.k300); assert.equal(3, o2.k3)
    end)
    it("refuses what lua-cjson refuses: depth over 1000, trailing bytes, leading zeros, hex, NUL", function()
      assert.is_table(core.json_decode(string.rep("[", 1000) .. string.rep("]", 1000)))
      for _, bad in ipairs{ string.rep("[", 1001) .. string.rep("]", 1001), "{} x", "01", "0x10", "-", "+1",
                            ".5", "[1,]", '{"a":1,}', '{"a"}', "nul", "truex", "[1 2]", "{}\0", "", "  " } do
        local v, msg = core.json_decode(bad)
        assert.is_nil(v, bad)
        assert.is_string(msg)
      end
      local _, msg = core.json_decode('{"a": tru}')
      assert.equal("invalid token at character 7", msg)
    end)
    it("encodes null, objects and arrays", function()
      assert.equal('{"a":null}', core.json_encode({ a = core.null }))
      assert.equal("[1,2,3]", core.json_encode({ 1, 2, 3 }))
      assert.equal("{}", core.json_encode({}))
      assert.equal('"+14155552671"', core.json_encode(E164))
      local v, msg = core.json_encode({ f = print })
      assert.is_nil(v); assert.is_string(msg)
    end)
    it("encodes every number exactly: integers in full, other numbers in the fewest digits that read back", function()
      -- cjson 2.1.0 writes 14 significant digits: 123456789012345 went out as 1.2345678901234e+14
      local cases = {
        { 123456789012345, "123456789012345" }, { 2^53, "9007199254740992" },
        { 9007199254740993, "9007199254740993" }, { math.maxinteger, "9223372036854775807" },
        { math.mininteger, "-9223372036854775808" }, { 3.0, "3" }, { -0.0, "-0" }, { 0.1, "0.1" },
        { 1234567.891234567, "1234567.891234567" }, { 1 / 3, "0.3333333333333333" }, { 1e300, "1e+300" },
        { 2^60 + 0.0, "1.152921504606847e+18" }, { 5e-324, "4.94065645841247e-324" }, { -1.5e-7, "-1.5e-07" },
      }
      for _, c in ipairs(cases) do
        local got = core.json_encode{ v = c[1] }
        assert.equal('{"v":' .. c[2] .. "}", got)
        if c[1] > -1e18 and c[1] < 1e18 then   -- the decoder reads 19-digit integers as floats, as cjson does
          local back = core.json_decode(got).v
          local want = (c[1] == math.floor(c[1]) and math.abs(c[1]) <= 2^53) and "integer" or math.type(c[1])
          assert.is_true(back == c[1] and math.type(back) == want, tostring(c[1]) .. " read back as " .. tostring(back))
        end
      end
    end)

    it("puts a create's variables on the wire as given, however many digits they have", function()
      local method, _, body = core.prepare("calls.create", nil, { fromPhoneNumber = "+14157774444",
        toPhoneNumber = "+12137774445", dynamicVariables = { account_id = 123456789012345, amount = 1234567.891234567,
        order = 9007199254740993 } })
      assert.equal("POST", method)
      assert.matches('"account_id":123456789012345[,}]', body)
      assert.matches('"amount":1234567.891234567[,}]', body)
      assert.matches('"order":9007199254740993[,}]', body)
    end)

    it("encodes strings byte for byte, escaping what JSON requires", function()
      local all = {}
      for b = 0, 255 do all[#all + 1] = string.char(b) end
      all = table.concat(all)
      local enc = core.json_encode(all)
      assert.equal(all, core.json_decode(enc))
      assert.equal([["a\"b\\c/d\b\f\n\r\t\u0001\u001f]] .. "\127" .. [["]],
                   core.json_encode('a"b\\c/d\b\f\n\r\t\1\31\127'))
      assert.same({ ["1"] = 1, ["2"] = 2, x = 3 }, core.json_decode(core.json_encode({ 1, 2, x = 3 })))
      assert.equal("[1,null,3]", core.json_encode({ 1, nil, 3 }))
      assert.equal('{"1.5":"x"}', core.json_encode({ [1.5] = "x" }))
    end)

    it("refuses what cjson refuses, saying why, and never raises", function()
      local loop = {}; loop.self = loop
      local deep = {}
      local cur = deep
      for _ = 1, 1000 do cur[1] = {}; cur = cur[1] end          -- 1,001 tables
      for _, c in ipairs{
        { { n = 0 / 0 }, "must not be NaN or Inf" }, { { n = math.huge }, "must not be NaN or Inf" },
        { { [math.huge] = 1 }, "must not be NaN or Inf" }, { { f = print }, "Cannot serialise function" },
        { { [true] = 1 }, "table key must be a number or string" }, { { [1] = 1, [20] = 2 }, "excessively sparse" },
        { loop, "excessive nesting %(1001%)" }, { deep, "excessive nesting %(1001%)" },
        { { co = coroutine.create(print) }, "Cannot serialise thread" },
      } do
        local v, msg = core.json_encode(c[1])
        assert.is_nil(v)
        assert.matches(c[2], msg)
      end
      local cur2 = {}                                           -- 1,000 tables: as deep as cjson goes
      local d = cur2
      for _ = 1, 999 do d[1] = {}; d = d[1] end
      assert.equal(string.rep("[", 999) .. "{}" .. string.rep("]", 999), core.json_encode(cur2))
    end)

    it("does not change the settings of the shared cjson", function()
      local cjson = require "cjson"
      assert.not_equal(cjson.encode, nil)
      assert.equal(cjson.null, core.null)
    end)
  end)

  describe("errors", function()
    it("formats HTTP errors with the reason phrase and the server's message", function()
      local e = core.error{ kind = "rejected", status = 400, method = "POST", path = "/v1/calls",
                            message = "Invalid request parameters" }
      assert.equal("sigmamind: POST /v1/calls: 400 Bad Request: Invalid request parameters", tostring(e))
      assert.equal("sigmamind: GET /v1/calls/x: 404 Not Found",
                   tostring(core.error{ kind = "not_found", status = 404, method = "GET", path = "/v1/calls/x" }))
    end)
    it("formats transport errors with the attempt count", function()
      local e = core.error{ kind = "network", method = "GET", path = "/v1/calls/x", message = "Connection refused",
                            attempts = 3 }
      assert.equal("sigmamind: GET /v1/calls/x: network: Connection refused (after 3 attempts)", tostring(e))
      assert.equal("sigmamind: timeout: too slow", tostring(core.error{ kind = "timeout", message = "too slow" }))
    end)
    it("keeps extra fields, copies its input and is recognisable", function()
      local fields = { kind = "invalid", field = "file", problems = { "Row 1: x" } }
      local e = core.error(fields)
      assert.is_true(core.is_error(e))
      assert.is_false(core.is_error(fields))
      assert.is_false(core.is_error("x"))
      assert.same({ "Row 1: x" }, e.problems)
    end)
  end)

  it("sleeps and tells the time", function()
    local t0 = core.now()
    core.sleep(0.05)
    local dt = core.now() - t0
    assert.is_true(dt >= 0.05 and dt < 0.5 + SLACK)
    assert.is_true(math.abs(core.time() - os.time()) < 2)
    assert.has_error(function() core.sleep(-1) end)
  end)
end)
