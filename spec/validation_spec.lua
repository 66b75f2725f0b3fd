-- Validation before sending: each documented constraint caught in C, named, and nothing sent.
local sandbox = require "support.sandbox"
local sigmamind = require "sigmamind"

describe("validation before sending", function()
  local sb, c

  setup(function()
    sb = sandbox.start{}
    c = sigmamind.new{ api_key = sb.key, base_url = sb.url }
  end)
  teardown(function() if c then c:close() end; if sb then sb:stop() end end)
  before_each(function() sb:reset() end)

  local N, A = "+14157774444", "agent_abc123"
  local core_path = {}
  for name, ep in pairs(require("sigmamind.core").endpoints) do
    local ns = name:match("^(.-)%.list$")
    if ns then core_path[ns] = ep.path end
  end
  local long = string.rep("x", 65)
  local cases = {
    { "calls", "create", { toPhoneNumber = "+12137774445" }, "fromPhoneNumber", "required" },
    { "calls", "create", { fromPhoneNumber = N, toPhoneNumber = "12345" }, "toPhoneNumber", "E.164.*\"12345\"" },
    { "calls", "create", { fromPhoneNumber = N, toPhoneNumber = "+0123456789" }, "toPhoneNumber", "E.164" },
    { "calls", "create", { fromPhoneNumber = N, toPhoneNumber = 12137774445 }, "toPhoneNumber", "string" },
    { "calls", "create", { fromPhoneNumber = N, toPhoneNumber = "+12137774445", agentId = long }, "agentId", "64" },
    { "calls", "create", { fromPhoneNumber = N, toPhoneNumber = "+12137774445", dynamicVariables = "x" },
      "dynamicVariables", "object" },
    -- values are injected into the agent's prompt: flat, as the sandbox requires
    { "calls", "create", { fromPhoneNumber = N, toPhoneNumber = "+12137774445",
      dynamicVariables = { customer = { name = "Ada" } } },
      "dynamicVariables", "^dynamicVariables%.customer: expected a string, number or boolean, got a table" },
    { "calls", "create", { fromPhoneNumber = N, toPhoneNumber = "+12137774445", dynamicVariables = { x = 0 / 0 } },
      "dynamicVariables", "^dynamicVariables%.x: expected a string, number or boolean" },
    { "calls", "create", { fromPhoneNumber = N, toPhoneNumber = "+12137774445",
      dynamicVariables = { gone = sigmamind.null } }, "dynamicVariables", "^dynamicVariables%.gone: .*got null" },
    -- a field the endpoint does not have is refused, named, with the one it was likely meant to be (what
    -- extra_body and extra_query send unchecked: spec/sdk_spec.lua)
    { "calls", "create", { fromPhoneNumber = N, toPhoneNumber = "+12137774445", extra = 0 / 0 },
      "extra", "^extra: not a field of calls%.create %(it takes fromPhoneNumber, toPhoneNumber, agentId, " ..
               "dynamicVariables; extra_body sends others%)$" },
    { "calls", "create", { fromPhoneNumber = N, toPhoneNumber = "+12137774445", dynamicVariable = { a = "1" } },
      "dynamicVariable", "^dynamicVariable: not a field of calls%.create; did you mean dynamicVariables%?$" },
    { "campaigns", "create", { campaignName = "x", agentId = A, sipPhoneNumber = N, file = "YQ==",
      dynamicVariables = { tags = { "a" } } }, "dynamicVariables", "^dynamicVariables%.tags: .*got an? %a+" },
    { "calls", "list", { status = "done" }, "status", "ended" },
    { "calls", "list", { size = 0 }, "size", "1" },
    { "calls", "list", { page = -1 }, "page", "0" },
    { "campaigns", "create", { campaignName = "", agentId = A, sipPhoneNumber = N, file = "YQ==" },
      "campaignName", "1" },
    { "campaigns", "create", { campaignName = string.rep("n", 129), agentId = A, sipPhoneNumber = N,
      file = "YQ==" }, "campaignName", "128" },
    { "campaigns", "create", { campaignName = "x", agentId = A, sipPhoneNumber = N }, "file", "required" },
    { "campaigns", "create", { campaignName = "x", agentId = A, sipPhoneNumber = N, file = "YQ==",
      isScheduled = true, scheduledDate = "2025-09-01", scheduledTime = "09:00" }, "scheduledTimezone", "required" },
    { "campaigns", "create", { campaignName = "x", agentId = A, sipPhoneNumber = N, file = "YQ==",
      isScheduled = true, scheduledDate = "2025-02-30", scheduledTime = "09:00", scheduledTimezone = "UTC" },
      "scheduledDate", "YYYY%-MM%-DD" },
    { "campaigns", "create", { campaignName = "x", agentId = A, sipPhoneNumber = N, file = "YQ==",
      isScheduled = true, scheduledDate = "2025-09-01", scheduledTime = "9am", scheduledTimezone = "UTC" },
      "scheduledTime", "HH:MM" },
    { "campaigns", "create", { campaignName = "x", agentId = A, sipPhoneNumber = N, file = "YQ==",
      concurrentCalls = 0 }, "concurrentCalls", "1" },
    { "campaigns", "list", { status = "active" }, "status", "live" },
    { "phone_numbers", "provision", { friendlyName = "x" }, "phoneNumber", "countryCode" },
    { "phone_numbers", "provision", { countryCode = "usa" }, "countryCode", "two" },
    { "phone_numbers", "provision", { countryCode = "US", areaCode = 99 }, "areaCode", "100" },
    { "phone_numbers", "provision", { countryCode = "US", areaCode = 100000 }, "areaCode", "99999" },
    { "phone_numbers", "provision", { countryCode = "US", friendlyName = string.rep("f", 129) },
      "friendlyName", "128" },
    { "phone_numbers", "import", { phoneNumber = N, trunkUsername = "u", trunkPassword = "p" },
      "terminationSipURI", "required" },
    { "webhooks", "create", { name = "h", agentId = A, url = "ftp://127.0.0.1/", events = { "conversation_ended" } },
      "url", "http" },
    { "webhooks", "create", { name = "h", agentId = A, url = "http://127.0.0.1/", events = {} }, "events", "" },
    { "webhooks", "create", { name = "h", agentId = A, url = "http://127.0.0.1/", events = { "call_ended" } },
      "events", "conversation_ended" },
    { "webhooks", "create", { agentId = A, url = "http://127.0.0.1/", events = { "conversation_ended" } },
      "name", "required" },
    { "calls", "list", { stauts = "ended" }, "stauts", "^stauts: not a field of calls%.list; did you mean status%?$" },
    { "agents", "list", { cursor = "c1" }, "cursor", "^cursor: not a field of agents%.list %(it takes page, size; " ..
                                                    "extra_query sends others%)$" },
    -- bytes no request may carry: a NUL (cut short by C and servers) or broken UTF-8 (not JSON), by name
    { "calls", "create", { fromPhoneNumber = N, toPhoneNumber = "+12137774445", agentId = "a\0b" },
      "agentId", "^agentId: contains a NUL byte$" },
    { "calls", "create", { fromPhoneNumber = N, toPhoneNumber = "+12137774445",
      dynamicVariables = { name = "\xff" } }, "dynamicVariables", "^dynamicVariables%.name: invalid UTF%-8$" },
    { "calls", "list", { status = "ended\0" }, "status", "^status: contains a NUL byte$" },
    -- a secret is never echoed, whatever its type
    { "phone_numbers", "import", { phoneNumber = N, terminationSipURI = "sip.example.test", trunkUsername = "u",
      trunkPassword = 987654321 }, "trunkPassword", "^trunkPassword: expected a non%-empty string, got a number$" },
  }

  for _, case in ipairs(cases) do
    local ns, method, params, field, pattern = case[1], case[2], case[3], case[4], case[5]
    it(("%s:%s refuses a bad %s before sending (%s)"):format(ns, method, field, pattern), function()
      local value, err = c[ns][method](c[ns], params)
      assert.is_nil(value)
      assert.equal("invalid", err.kind)
      assert.equal(field, err.field)
      assert.matches(field, err.message, 1, true)
      assert.matches(pattern, err.message)
      assert.is_false(err.sent)
      assert.matches("invalid", tostring(err))
      assert.same({}, sb:api_requests())
    end)
  end

  -- 100 is the largest page the sandbox serves (docs/api.md §6, "Page size cap": assumed of the API)
  for _, ns in ipairs{ "calls", "campaigns", "phone_numbers", "webhooks", "agents" } do
    it(ns .. " refuses a page size over 100 before sending, in list, each and pages, as the sandbox does", function()
      local value, err = c[ns]:list{ size = 101 }
      assert.is_nil(value)
      assert.equal("invalid", err.kind)
      assert.equal("size", err.field)
      assert.equal("size: expected an integer from 1 to 100, got 101", err.message)
      for _, method in ipairs{ "each", "pages" } do
        local ok, raised = pcall(function() for _ in c[ns][method](c[ns], { size = 1000 }) do end end)
        assert.is_false(ok)
        assert.equal("size: expected an integer from 1 to 100, got 1000", raised.message)
        ok, raised = pcall(function() for _ in c[ns][method](c[ns], { size = 1000, prefetch = true }) do end end)
        assert.is_false(ok)
        assert.equal("size", raised.field)
      end
      assert.same({}, sb:api_requests())
      assert.truthy(c[ns]:list{ size = 100 })
      local status, body = sb:request("GET", core_path[ns] .. "?size=101")
      assert.equal(400, status)
      assert.matches("size: expected an integer from 1 to 100", body.message, 1, true)
    end)
  end

  it("validates path arguments: a phone number in a path must be E.164", function()
    local pn, err = c.phone_numbers:get("4157774444")
    assert.is_nil(pn)
    assert.equal("phoneNumber", err.field)
    assert.same({}, sb:api_requests())
  end)

  it("refuses a field the endpoint does not have, instead of sending what the server would ignore", function()
    -- once sent as given: the call was placed without the variables, the list came back unfiltered, and
    -- the PATCH changed nothing
    local call, err = c.calls:create{ fromPhoneNumber = N, toPhoneNumber = "+12137774445",
                                      dynamicVariable = { customer_name = "Ada" } }
    assert.is_nil(call)
    assert.equal("dynamicVariable", err.field)
    local page, lerr = c.calls:list{ stauts = "ended" }
    assert.is_nil(page)
    assert.equal("stauts", lerr.field)
    assert.same({}, sb:api_requests())
  end)

  it("takes terminationSipURI on a number's PATCH too, and sends the spelling the PATCH documents", function()
    local upd = assert(c.phone_numbers:update(N, { terminationSipURI = "sip:trunk.example" }))
    assert.equal("sip:trunk.example", upd.terminationSipURI)
  end)

  it("does not change the caller's table", function()
    local params = { fromPhoneNumber = N, toPhoneNumber = "+12137774445", agentId = A }
    local before = {}
    for k, v in pairs(params) do before[k] = v end
    assert(c.calls:create(params))
    assert.same(before, params)
  end)

  it("accepts an explicit null where the API allows one", function()
    local upd, err = c.phone_numbers:update(N, { inboundAgentId = sigmamind.null })
    assert.is_nil(err)
    assert.equal(N, upd.sipPhoneNumber)
  end)

  it("reports the first fault in the endpoint's field order, whatever else is wrong and however the table is laid out", function()
    local core = require "sigmamind.core"
    local T = "+12137774445"
    local function fault(name, params)
      local ok, err = core.validate(name, params)
      assert.is_nil(ok)
      assert.equal("invalid", err.kind)
      return err.field, err.message
    end
    -- a bad value before an unknown name, the endpoint's first field before its second
    assert.equal("fromPhoneNumber", (fault("calls.create", { bogus = 1, toPhoneNumber = T, fromPhoneNumber = "x" })))
    assert.equal("fromPhoneNumber", (fault("calls.create", { toPhoneNumber = 5, fromPhoneNumber = "x" })))
    -- a missing required field before an unknown name; then the unknown name, with a suggestion
    local field, msg = fault("calls.create", { fromPhoneNumber = N, agentid = A })
    assert.equal("toPhoneNumber", field)
    assert.matches("(a required field)", msg, 1, true)
    field, msg = fault("calls.create", { fromPhoneNumber = N, toPhoneNumber = T, agentid = A })
    assert.equal("agentid", field)
    assert.equal("agentid: not a field of calls.create; did you mean agentId?", msg)
    assert.equal("params", (fault("calls.create", { N, fromPhoneNumber = N, toPhoneNumber = T })))
    field, msg = fault("calls.create", { fromPhoneNumber = N, toPhoneNumber = T, dynamicVariables = { x = {} } })
    assert.equal("dynamicVariables", field)
    assert.matches("^dynamicVariables%.x: expected a string, number or boolean", msg)
    -- either spelling of a field, not both
    local import = { phoneNumber = N, terminationSipUri = "sip:trunk.example", trunkUsername = "u", trunkPassword = "p" }
    assert.is_true(core.validate("phone_numbers.import", import))
    import.terminationSipURI = "sip:trunk.example"
    field, msg = fault("phone_numbers.import", import)
    assert.equal("terminationSipUri", field)
    assert.matches("the same field as terminationSipURI", msg, 1, true)
    assert.is_true(core.validate("calls.create", { fromPhoneNumber = N, toPhoneNumber = T, agentId = A,
                                                   dynamicVariables = { n = 1, b = true, s = "x" } }))
  end)
end)
