-- hardening_spec.lua: the core against hostile or odd input (issue 17): tables with metatables are read raw,
-- bytes no request may carry are refused by name, secrets are never echoed, and any number is safe to give.
-- Run under `make asan` (UBSan: float-cast-overflow) and `make check-mem` (valgrind) as well as `make test`.
local core = require "sigmamind.core"

describe("hardening", function()
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
