-- hardening_spec.lua: the core against hostile or odd input (issue 17): tables with metatables are read raw,
-- bytes no request may carry are refused by name, secrets are never echoed, and any number is safe to give.
-- Run under `make asan` (UBSan: float-cast-overflow) and `make check-mem` (valgrind) as well as `make test`.
local core = require "sigmamind.core"

local E164, E164B = "+14155552671", "+12137774445"

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
      -- the first lookup answers nil (validation), later ones a fresh 200 kB string, made right before a
      -- 4 MB allocation so that the collector's next step (the query buffer's first growth) frees it: the
      -- old encoder read it after that (valgrind: invalid read in sm_add_escaped)
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

    it("sends a query value only when validation saw it: raw values, declared or not", function()
      local q, lookups = shadowed({ page = 2, zz = "last" }, function() return "not-a-status" end)
      local method, url = core.prepare("calls.list", nil, q)
      assert.equal("GET", method)
      assert.equal("/v1/calls?page=2&zz=last", url)
      assert.is_true(core.validate("calls.list", q))
      assert.equal(0, lookups())
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
        return core.classify("GET", "/v1/calls", status, {}, "", attempt, 0.1, nil, false, opts or {})
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
          assert.equal("too_large", select(2, core.classify("GET", "/v1/calls", nil, nil, nil, 1, 0, "too_large",
                                                            true, { max_response_bytes = n })).kind)
        end
      end
      -- a huge max_retries is 1000, as core.new makes it: a retry is still due (the old cast made it none)
      local v, err, delay = classify(503, 1, { max_retries = 1e300 })
      assert.is_nil(v)
      assert.equal("server", err.kind)
      assert.equal(1, err.attempts)
      assert.is_number(delay)
      v, err, delay = classify(503, 1e300, { max_retries = 1e300 })
      assert.is_nil(v)
      assert.is_nil(delay)
      assert.equal(1000000000, err.attempts)
      v, err = core.classify("GET", "/v1/calls", nil, nil, nil, 1, 0, "too_large", true,
                             { max_response_bytes = 1e300 })
      assert.is_nil(v)
      assert.equal("too_large", err.kind)
    end)
  end)
end)
