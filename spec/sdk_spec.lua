-- The SDK surface, at the core (sigmamind.core): JSON nulls.
local sandbox = require "support.sandbox"
local rawhttp = require "support.rawhttp"
local core = require "sigmamind.core"

local CALL = { fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445" }

describe("the SDK surface of the core", function()
  local sb, c

  setup(function()
    sb = sandbox.start{}
    c = core.new{ api_key = sb.key, base_url = sb.url, max_retries = 2 }
  end)
  teardown(function()
    if c then c:close() end
    if sb then sb:stop() end
  end)
  before_each(function() sb:reset() end)

  describe("JSON nulls", function()
    local BODY = '{"a":null,"b":[1,null,3],"c":{"d":null,"e":1},"f":"x"}'

    it("are left out of records unless the client keeps them", function()
      for _, keep in ipairs{ false, true } do
        local raw = rawhttp.start{ rawhttp.answer(200, BODY) }
        local rc = core.new{ api_key = "sk_test_x", base_url = raw.url, keep_nulls = keep or nil }
        local v = assert(rc:request("agents.get", { "agent_1" }))
        rc:close()
        raw.stop()
        if keep then
          assert.equal(core.null, v.a)
          assert.equal(core.null, v.c.d)
        else
          assert.is_nil(v.a)
          assert.is_nil(v.c.d)
          local keys = {}
          for k in pairs(v) do keys[#keys + 1] = k end
          table.sort(keys)
          assert.same({ "b", "c", "f" }, keys)
        end
        assert.same({ 1, core.null, 3 }, v.b)      -- an array keeps its places: no holes
        assert.equal(1, v.c.e)
      end
      assert.has_error(function() core.new{ api_key = "k", base_url = "http://127.0.0.1:1", keep_nulls = "yes" } end)
    end)

    it("are left out of the sandbox's records", function()
      local call = assert(c:request("calls.create", nil, CALL))
      assert.is_nil(call.transcript)                -- the sandbox sends "transcript":null
      local _, raw = sb:request("GET", "/v1/calls/" .. call.callId)
      assert.equal(sandbox.json.null, raw.transcript)
    end)

    it("are kept by core.json_decode, as cjson keeps them, unless it is told", function()
      local v = core.json_decode(BODY)
      assert.equal(core.null, v.a)
      v = core.json_decode(BODY, { keep_nulls = false })
      assert.is_nil(v.a)
      assert.is_nil(v.c.d)
      assert.same({ 1, core.null, 3 }, v.b)
      assert.equal(core.null, core.json_decode("null", { keep_nulls = false }))
      assert.same({}, core.json_decode('{"a":null}', { keep_nulls = false }))
      assert.same({}, core.json_decode('{"a":1,"a":null}', { keep_nulls = false }))   -- the last one given wins
      assert.same({ a = 1 }, core.json_decode('{"a":null,"a":1}', { keep_nulls = false }))
      local members = {}                            -- past the members the decoder gathers before a table
      for i = 1, 200 do members[i] = ('"k%d":%s'):format(i, i % 2 == 0 and "null" or tostring(i)) end
      local big = core.json_decode("{" .. table.concat(members, ",") .. "}", { keep_nulls = false })
      local n = 0
      for k, x in pairs(big) do n = n + 1; assert.equal("k" .. x, k) end
      assert.equal(100, n)
      assert.has_error(function() core.json_decode(BODY, { keepnulls = false }) end)
      assert.has_error(function() core.json_decode(BODY, { keep_nulls = 0 }) end)
      local cv = core.classify{ method = "GET", path = "/v1/agents", status = 200, body = BODY, attempt = 1,
                                elapsed = 0 }
      assert.is_nil(cv.a)
      cv = core.classify{ method = "GET", path = "/v1/agents", status = 200, body = BODY, attempt = 1, elapsed = 0,
                          keep_nulls = true }
      assert.equal(core.null, cv.a)
    end)
  end)
end)
