-- The SDK surface as a user calls it through sigmamind.new: misspelt fields refused by name, the escape
-- hatch, per-request options on every method, sigmamind.response, and JSON nulls left out of records.
local sigmamind = require "sigmamind"
local sandbox = require "support.sandbox"
local rawhttp = require "support.rawhttp"

describe("the client's surface", function()
  local sb, client

  setup(function()
    sb = sandbox.start{ speed = 1 }
    client = sigmamind.new{ api_key = sb.key, base_url = sb.url }
  end)
  teardown(function() client:close(); sb:stop() end)
  before_each(function() sb:reset() end)

  local function call_params(extra)
    local p = { fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445", agentId = sb.agent }
    for k, v in pairs(extra or {}) do p[k] = v end
    return p
  end

  it("refuses a misspelt field by name, with a suggestion, and sends nothing", function()
    local call, err = client.calls:create(call_params{ dynamicVariable = { customer_name = "Jo" } })
    assert.is_nil(call)
    assert.equal("invalid", err.kind)
    assert.equal("dynamicVariable", err.field)
    assert.matches("did you mean dynamicVariables%?", err.message)
    assert.is_false(err.sent)
    local page, lerr = client.calls:list{ stauts = "ended" }
    assert.is_nil(page)
    assert.equal("stauts", lerr.field)
    local _, uerr = client.campaigns:update("camp_1", { concurrentCall = 9 })
    assert.equal("concurrentCall", uerr.field)
    assert.equal(0, sb:count("POST", "/v1/calls"))
    assert.equal(0, sb:count("GET", "/v1/calls"))
  end)

  it("sends what the client does not know through extra_body and extra_query, and refuses X-API-Key", function()
    local raw = rawhttp.start{ rawhttp.answer(201, '{"callId":"call_1","status":"scheduled"}'),
                               rawhttp.answer(200, '{"data":[],"totalCounts":0,"hasNext":false}') }
    finally(function() raw.stop() end)
    local rc = sigmamind.new{ api_key = "sk_test_surface", base_url = raw.url, max_retries = 0 }
    assert(rc.calls:create(call_params(), { extra_body = { priority = "high" },
                                             headers = { ["X-Trace"] = "t1" } }))
    assert(rc.calls:list({ status = "ended" }, { extra_query = { region = "eu" } }))
    local sent = raw.request(1)
    assert.equal("high", require("sigmamind.core").json_decode(sent.body).priority)
    assert.equal("t1", sent.headers["x-trace"])
    assert.matches("region=eu", raw.request(2).line)
    assert.has_error(function() rc.calls:get("call_1", { headers = { ["x-api-key"] = "other" } }) end)
    rc:close()
  end)

  it("takes per-request options as the last argument of every method, and raises for an unknown one", function()
    local call = assert(client.calls:create(call_params(), { timeout = 5, max_retries = 0 }))
    assert(client.calls:get(call.callId, { deadline = 10 }))
    assert(client.calls:list({ size = 5 }, { connect_timeout = 2 }))
    for c in client.calls:each({ size = 5 }, { max_retries = 1 }) do assert.truthy(c.callId) end
    local ok, msg = pcall(function() local v = client.calls:get(call.callId, { timeot = 5 }); return v end)
    assert.is_false(ok)
    assert.matches("surface_spec%.lua:%d+: sigmamind: calls:get: unknown request option 'timeot'", msg)
    ok, msg = pcall(client.calls.delete, client.calls, call.callId, "soon")
    assert.is_false(ok)
    assert.matches("expected a table of request options", msg)
  end)

  it("gives a returned table's response metadata through sigmamind.response, records staying plain", function()
    local call = assert(client.calls:create(call_params()))
    local meta = assert(sigmamind.response(call))
    assert.equal(201, meta.status)
    assert.equal("POST", meta.method)
    assert.equal("/v1/calls", meta.path)
    assert.equal(1, meta.attempts)
    assert.is_number(meta.elapsed)
    assert.equal("application/json", (meta.headers["content-type"] or ""):match("^[^;]+"))
    assert.is_nil(call.status_code); assert.is_nil(rawget(call, "headers"))
    local page = assert(client.calls:list{ size = 1 })
    assert.equal(200, sigmamind.response(page).status)
    assert.is_nil(sigmamind.response({}))
    assert.is_nil(sigmamind.response("call"))
    -- inside a task too
    local got = client:spawn(function() return sigmamind.response(assert(client.calls:get(call.callId))) end)
    assert.equal("GET", got:join().method)
  end)

  it("leaves JSON nulls out of records, unless keep_nulls = true", function()
    local call = assert(client.calls:create(call_params()))
    local live = assert(client.calls:get(call.callId))
    assert.is_nil(live.duration)
    assert.is_nil(live.endTime)
    assert.equal(0, live.duration or 0)
    local keeper = sigmamind.new{ api_key = sb.key, base_url = sb.url, keep_nulls = true }
    finally(function() keeper:close() end)
    assert.equal(sigmamind.null, assert(keeper.calls:get(call.callId)).endTime)
  end)
end)
