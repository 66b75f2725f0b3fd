-- hardening_spec.lua: the core against hostile or odd input: tables with metatables are read raw,
-- bytes no request may carry are refused by name, secrets are never echoed, and any number is safe
-- to give. Run under `make asan` (UBSan: float-cast-overflow) and `make check-mem` (valgrind) too.
local core = require "sigmamind.core"

local E164, E164B = "+14155552671", "+12137774445"
local REFUSED = "http://127.0.0.1:1"   -- nothing listens on port 1: connect fails at once, nothing is sent

local function invalid(name, params, args)
  local ok, err = core.validate(name, params, args)
  assert.is_nil(ok)
  assert.is_true(core.is_error(err))
  assert.equal("invalid", err.kind)
  assert.is_false(err.sent)
  return err
end

-- a table whose __index answers every name (counting the lookups), with raw contents t
local function shadowed(t, answer)
  local lookups = 0
  return setmetatable(t, { __index = function(_, k)
    lookups = lookups + 1
    return answer(k, lookups)
  end }), function() return lookups end
end

describe("hardening", function()
  describe("tables are read raw, so what is validated is what is sent", function()
    it("never reads a query value that only __index gives, so none can be freed while it is encoded", function()
      -- the first lookup answers nil (validation), later ones a fresh 200 kB string, made right
      -- before a 4 MB allocation so that the collector's next step (the query buffer's first
      -- growth) frees it: the encoder must not read it after that (valgrind would see it)
      local pause = collectgarbage("setpause", 0)
      local q, lookups = shadowed({}, function(k, n)
        if k ~= "status" or n == 1 then return nil end
        local s = string.rep("x", 200000) .. n
        local junk = string.rep("y", 4000000)
        assert(#junk > 0)
        return s
      end)
      local ok, method, url = pcall(core.prepare, "calls.list", nil, q)
      collectgarbage("setpause", pause)
      assert.is_true(ok, method)
      assert.equal("GET", method)
      assert.equal("/v1/calls", url)
      assert.equal(0, lookups())
    end)

    it("sends a query value only when validation saw it: raw values, declared or extra", function()
      local q, lookups = shadowed({ page = 2 }, function() return "not-a-status" end)
      local x, xlookups = shadowed({ zz = "last" }, function() return "more" end)
      local method, url = core.prepare("calls.list", nil, q, { extra_query = x })
      assert.equal("GET", method)
      assert.equal("/v1/calls?page=2&zz=last", url)
      assert.is_true(core.validate("calls.list", q, nil, { extra_query = x }))
      assert.equal(0, lookups())
      assert.equal(0, xlookups())
    end)

    it("reports a body field that only __index gives as missing, as the encoder leaves it out", function()
      local p, lookups = shadowed({ fromPhoneNumber = E164 }, function(k)
        if k == "toPhoneNumber" then return E164B end
      end)
      local err = invalid("calls.create", p)
      assert.equal("toPhoneNumber", err.field)
      assert.matches("^toPhoneNumber: expected an E%.164 .* got nothing %(a required field%)$", err.message)
      local v, perr = core.prepare("calls.create", nil, p)
      assert.is_nil(v)
      assert.equal("toPhoneNumber", perr.field)
      -- an optional field only __index gives is neither checked nor sent
      local q = shadowed({ fromPhoneNumber = E164, toPhoneNumber = E164B }, function(k)
        if k == "agentId" then return string.rep("a", 100) end
      end)
      local _, _, body = assert(core.prepare("calls.create", nil, q))
      assert.same({ fromPhoneNumber = E164, toPhoneNumber = E164B }, core.json_decode(body))
      assert.equal(0, lookups())
    end)

    it("applies the cross-field rules to the raw fields too", function()
      local camp = shadowed({ campaignName = "x", agentId = "agent_abc123", sipPhoneNumber = E164, file = "YQ==" },
                            function(k) if k == "isScheduled" then return true end end)
      assert.is_true(core.validate("campaigns.create", camp))
      local num = shadowed({ countryCode = "US" }, function(k) if k == "phoneNumber" then return E164 end end)
      assert.is_true(core.validate("phone_numbers.provision", num))
      local bare = shadowed({}, function(k) if k == "countryCode" then return "US" end end)
      assert.equal("phoneNumber", invalid("phone_numbers.provision", bare).field)
    end)
  end)

  describe("bytes no request may carry", function()
    -- a valid request per endpoint that has fields; each string field is then spoiled in turn
    local base = {
      ["calls.create"] = { { fromPhoneNumber = E164, toPhoneNumber = E164B } },
      ["calls.list"] = { {} },
      ["campaigns.create"] = { { campaignName = "x", agentId = "agent_abc123", sipPhoneNumber = E164,
                                 file = "YQ==" } },
      ["campaigns.list"] = { {} },
      ["campaigns.update"] = { {}, { "camp_1" } },
      ["phone_numbers.list"] = { {} },
      ["phone_numbers.provision"] = { { countryCode = "US" } },
      ["phone_numbers.import"] = { { phoneNumber = E164, terminationSipURI = "sip.example.com",
                                     trunkUsername = "u", trunkPassword = "p" } },
      ["phone_numbers.update"] = { {}, { E164 } },
      ["webhooks.create"] = { { name = "h", agentId = "agent_abc123", url = "http://127.0.0.1/",
                                events = { "conversation_ended" } } },
      ["webhooks.list"] = { {} },
      ["webhooks.update"] = { {}, { "wh_1" } },
      ["agents.list"] = { {} },
    }
    local NOT_STRINGS = { integer = true, boolean = true, object = true, events = true, forbidden = true }
    local BAD_UTF8 = { "\xff", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x28\xa1" }

    local function copy(t)
      local c = {}
      for k, v in pairs(t) do c[k] = v end
      return c
    end

    it("refuses a NUL byte or broken UTF-8 in every string field of every endpoint, naming the field", function()
      local checked = 0
      for name, ep in pairs(core.endpoints) do
        local strings = {}
        for fname, f in pairs(ep.fields) do
          if not NOT_STRINGS[f.type] then strings[#strings + 1] = fname end
        end
        if #strings > 0 then
          assert.is_table(base[name], "no valid request for " .. name)
          local params, args = base[name][1], base[name][2]
          assert.is_true(core.validate(name, params, args), name)
          for _, fname in ipairs(strings) do
            for bad, fault in pairs({ ["a\0b"] = "contains a NUL byte", [BAD_UTF8[1]] = "invalid UTF-8" }) do
              local p = copy(params)
              p[fname] = bad
              local err = invalid(name, p, args)
              assert.equal(fname, err.field)
              assert.equal(fname .. ": " .. fault, err.message)
              checked = checked + 1
            end
          end
        end
      end
      assert.is_true(checked >= 60)
    end)

    it("takes UTF-8 exactly as RFC 3629 has it", function()
      local call = { fromPhoneNumber = E164, toPhoneNumber = E164B }
      for _, bad in ipairs(BAD_UTF8) do
        local p = copy(call)
        p.agentId = "agent" .. bad
        assert.equal("agentId: invalid UTF-8", invalid("calls.create", p).message)
      end
      for _, good in ipairs({ "caf\u{e9}", "\u{20ac}uro", "\u{1f600}", "\u{10ffff}", "\u{d7ff}\u{e000}" }) do
        local p = copy(call)
        p.agentId = good
        assert.is_true(core.validate("calls.create", p))
      end
    end)

    it("checks dynamicVariables names and values", function()
      local function vars(v)
        return { fromPhoneNumber = E164, toPhoneNumber = E164B, dynamicVariables = v }
      end
      local cases = {
        { { name = "\xff" }, "dynamicVariables.name: invalid UTF-8" },
        { { name = "a\0b" }, "dynamicVariables.name: contains a NUL byte" },
        { { ["a\0b"] = "x" }, "dynamicVariables: a variable name: contains a NUL byte" },
        { { ["\xfe"] = "x" }, "dynamicVariables: a variable name: invalid UTF-8" },
      }
      for _, c in ipairs(cases) do
        local err = invalid("calls.create", vars(c[1]))
        assert.equal("dynamicVariables", err.field)
        assert.equal(c[2], err.message)
        err = invalid("campaigns.update", { dynamicVariables = c[1] }, { "camp_1" })
        assert.equal(c[2], err.message)
      end
      assert.is_true(core.validate("calls.create", vars({ ["pr\u{e9}nom"] = "Zo\u{eb}", n = 1 })))
    end)

    it("checks what extra_body and extra_query send unchecked, at any depth of a body and in a query", function()
      local call = { fromPhoneNumber = E164, toPhoneNumber = E164B }
      local cases = {   -- params: a name at fault is refused before it is found unknown
        { "calls.create", { extra_body = { extra = "\xff" } }, "extra", "extra: invalid UTF-8" },
        { "calls.create", { extra_body = { extra = { list = { "ok", "a\0" } } } }, "extra",
          "extra.list[2]: contains a NUL byte" },
        { "calls.create", { extra_body = { extra = { ["k\xff"] = 1 } } }, "extra", "extra: a field name: invalid UTF-8" },
        { "calls.create", { extra_body = { ["x\0y"] = 1 } }, "extra_body", "extra_body: a field name: contains a NUL byte" },
        { "calls.create", { params = { ["x\0y"] = 1 } }, "params", "params: a field name: contains a NUL byte" },
        -- a name that starts as a declared one but carries a NUL is no declared field
        { "calls.create", { params = { ["agentId\0x"] = "y" } }, "params", "params: a field name: contains a NUL byte" },
        { "agents.list", { extra_query = { cursor = "\xff" } }, "cursor", "cursor: invalid UTF-8" },
        { "agents.list", { extra_query = { cursor = "a\0b" } }, "cursor", "cursor: contains a NUL byte" },
        { "agents.list", { params = { ["c\xff"] = "x" } }, "params", "params: a field name: invalid UTF-8" },
        { "agents.list", { extra_query = { ["c\xff"] = "x" } }, "extra_query", "extra_query: a field name: invalid UTF-8" },
      }
      for _, c in ipairs(cases) do
        local p = c[1] == "calls.create" and copy(call) or {}
        for k, v in pairs(c[2].params or {}) do p[k] = v end
        c[2].params = nil
        local ok, err = core.validate(c[1], p, nil, c[2])
        assert.is_nil(ok)
        assert.is_false(err.sent)
        assert.equal(c[3], err.field)
        assert.equal(c[4], err.message)
        local v = core.prepare(c[1], nil, p, c[2])
        assert.is_nil(v)
      end
      -- nested past what JSON encodes: the encoder's refusal, not a crash or a hang
      local loop = {}
      loop.a, loop.b = loop, loop
      local v, err = core.prepare("calls.create", nil, call, { extra_body = { extra = loop } })
      assert.is_nil(v)
      assert.equal("extra", err.field)
      assert.matches("excessive nesting", err.message)
    end)

    it("refuses broken UTF-8 in a path argument", function()
      local err = invalid("calls.get", nil, { "call_\xff" })
      assert.equal("callId", err.field)
      assert.equal('callId: expected an id in valid UTF-8, got "call_?"', err.message)
      assert.is_true(core.validate("calls.get", nil, { "call_\u{e9}" }))
    end)

    it("sends nothing when it refuses", function()
      local events = {}
      local c = core.new{ api_key = "sk_test_x", base_url = REFUSED, max_retries = 0,
                          on_event = function(ev) events[#events + 1] = ev end }
      for _, req in ipairs({
        { "calls.create", nil, { fromPhoneNumber = E164, toPhoneNumber = E164B, agentId = "a\0b" }, "agentId" },
        { "calls.create", nil, { fromPhoneNumber = E164, toPhoneNumber = E164B,
                                 dynamicVariables = { name = "\xff" } }, "dynamicVariables" },
        { "calls.list", nil, { status = "ended\0" }, "status" },
        { "agents.get", { "a\xff" }, nil, "agentId" },
      }) do
        local v, err = c:request(req[1], req[2], req[3])
        assert.is_nil(v)
        assert.equal("invalid", err.kind)
        assert.equal(req[4], err.field)
        assert.is_false(err.sent)
      end
      assert.equal(0, #events)
      c:close()
    end)
  end)

  describe("secrets", function()
    it("never shows a trunk credential's value in a validation error", function()
      local imp = { phoneNumber = E164, terminationSipURI = "sip.example.com", trunkUsername = "u",
                    trunkPassword = "p" }
      for _, field in ipairs({ "trunkPassword", "trunkUsername" }) do
        assert.is_true(core.endpoints["phone_numbers.import"].fields[field].secret)
        assert.is_true(core.endpoints["phone_numbers.update"].fields[field].secret)
        for _, v in ipairs({ 987654321, 9876.54321, true, { "987654321" } }) do
          local p = {}
          for k, x in pairs(imp) do p[k] = x end
          p[field] = v
          local err = invalid("phone_numbers.import", p)
          assert.equal(field, err.field)
          assert.equal(field .. ": expected a non-empty string, got a " .. type(v), err.message)
          assert.is_nil(tostring(err):find("98765", 1, true))
          err = invalid("phone_numbers.update", { [field] = v }, { E164 })
          assert.equal(field .. ": expected a non-empty string, got a " .. type(v), err.message)
        end
        local p = {}
        for k, x in pairs(imp) do p[k] = x end
        p[field] = ""
        assert.equal(field .. ": expected a non-empty string, got an empty string",
                     invalid("phone_numbers.import", p).message)
        p[field] = "s3cr3t\0"
        assert.equal(field .. ": contains a NUL byte", invalid("phone_numbers.import", p).message)
      end
      assert.is_nil(core.endpoints["phone_numbers.import"].fields.terminationSipURI.secret)
    end)
  end)

  describe("any number is safe to give (no undefined float-to-integer cast)", function()
    local HUGE = { 1e300, -1e300, math.huge, -math.huge, 0 / 0, 2 ^ 63, -2 ^ 63, 2 ^ 31, 1e15 + 0.5 }

    it("formats errors whatever their status and attempts", function()
      for _, n in ipairs(HUGE) do
        local e = core.error{ kind = "server", status = n, attempts = n, message = "m" }
        local s = tostring(e)
        assert.matches("^sigmamind: ", s)
        if n ~= n or n == math.huge or n == -math.huge or math.abs(n) > 2 ^ 53 then
          assert.equal("sigmamind: server: m", s)
        end
      end
      assert.equal("sigmamind: 503 Service Unavailable: m (after 3 attempts)",
                   tostring(core.error{ kind = "server", status = 503.0, attempts = 3.0, message = "m" }))
    end)

    it("classifies with any number: out-of-range status or attempt raise, max_retries is capped", function()
      local function classify(status, attempt, opts)
        local t = { method = "GET", path = "/v1/calls", status = status, headers = {}, body = "", attempt = attempt,
                    elapsed = 0.1, sent = false }
        for k, v in pairs(opts or {}) do t[k] = v end
        return core.classify(t)
      end
      for _, n in ipairs(HUGE) do
        assert.has_error(function() classify(n, 1) end)
        local nan = n ~= n
        if nan or n < 1 then
          assert.has_error(function() classify(503, n) end)
        else
          local _, err = classify(503, n)
          assert.equal(math.min(math.floor(n), 1000000000), err.attempts)
        end
        if nan or n < 0 then
          assert.has_error(function() classify(503, 1, { max_retries = n }) end)
          assert.has_error(function() classify(503, 1, { max_response_bytes = n }) end)
        else
          assert.equal("server", select(2, classify(503, 1, { max_retries = n })).kind)
          assert.equal("too_large", select(2, core.classify{ method = "GET", path = "/v1/calls", attempt = 1,
            elapsed = 0, fail = "too_large", sent = true, max_response_bytes = n }).kind)
        end
      end
      -- a huge max_retries is 1000, as core.new makes it: a retry is still due, not cast to none
      local v, err, delay = classify(503, 1, { max_retries = 1e300 })
      assert.is_nil(v)
      assert.equal("server", err.kind)
      assert.equal(1, err.attempts)
      assert.is_number(delay)
      v, err, delay = classify(503, 1e300, { max_retries = 1e300 })
      assert.is_nil(v)
      assert.is_nil(delay)
      assert.equal(1000000000, err.attempts)
      v, err = core.classify{ method = "GET", path = "/v1/calls", attempt = 1, elapsed = 0, fail = "too_large",
                              sent = true, max_response_bytes = 1e300 }
      assert.is_nil(v)
      assert.equal("too_large", err.kind)
    end)
  end)
end)
