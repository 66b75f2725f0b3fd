-- The SDK surface, at the core (sigmamind.core): misspelt fields refused, the escape hatch (extra_body,
-- extra_query, headers), per-request options, a success's metadata, JSON nulls and Ctrl-C.
local sandbox = require "support.sandbox"
local rawhttp = require "support.rawhttp"
local core = require "sigmamind.core"

local CALL = { fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445" }

local function with(t, extra)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

-- the header lines of a request the raw server read, by lower-case name (a repeated one: each value, in order)
local function headers_of(req)
  local h = {}
  for _, line in ipairs(req.headers) do
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    name = name:lower()
    h[name] = h[name] or {}
    table.insert(h[name], value)
  end
  return h
end

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

  local function refused(name, args, params, field, pattern)
    local v, err = c:request(name, args, params)
    assert.is_nil(v)
    assert.equal("invalid", err.kind)
    assert.equal(field, err.field)
    assert.is_false(err.sent)
    if pattern then assert.matches(pattern, err.message) end
    assert.same({}, sb:api_requests())
    return err
  end

  describe("a misspelt field", function()
    it("is an error naming it, with the field it was likely meant to be, and nothing is sent", function()
      local number = sb.number
      refused("calls.create", nil, with(CALL, { dynamicVariable = { x = "1" } }), "dynamicVariable",
              "^dynamicVariable: not a field of calls%.create; did you mean dynamicVariables%?$")
      refused("calls.list", nil, { stauts = "ended" }, "stauts", "did you mean status%?")
      refused("campaigns.update", { "camp_1" }, { concurrentCall = 9 }, "concurrentCall",
              "did you mean concurrentCalls%?")
      refused("phone_numbers.update", { number }, { terminationSipUrl = "sip:a.example" }, "terminationSipUrl",
              "did you mean terminationSipUri%?")
      refused("webhooks.list", nil, { Active = false }, "Active", "did you mean active%?")   -- case
      refused("agents.list", nil, { pgae = 1 }, "pgae", "did you mean page%?")                -- two swapped
    end)

    it("lists the endpoint's fields and the way to send others when nothing is close", function()
      refused("calls.create", nil, with(CALL, { metadata = { a = 1 } }), "metadata",
              "^metadata: not a field of calls%.create %(it takes fromPhoneNumber, toPhoneNumber, agentId, " ..
              "dynamicVariables; extra_body sends others%)$")
      refused("calls.get", { "call_1" }, { expand = "agent" }, "expand", "it takes none; extra_query sends others")
      refused("calls.list", nil, { [1] = "ended" }, "params", "name must be a string")
      refused("calls.create", nil, with(CALL, { [1] = "x" }), "params", "field names are strings")
    end)

    it("is refused by core.validate and core.prepare alike", function()
      local ok, err = core.validate("calls.list", { stauts = "ended" })
      assert.is_nil(ok)
      assert.equal("stauts", err.field)
      local m, perr = core.prepare("calls.list", nil, { stauts = "ended" })
      assert.is_nil(m)
      assert.equal(err.message, perr.message)
      -- both take the request's options after the path argument
      local number = { "+14157774444" }
      assert.is_true(core.validate("phone_numbers.get", nil, number))
      assert.is_true(core.validate("phone_numbers.get", nil, number, { extra_query = { expand = "agent" } }))
      ok, err = core.validate("phone_numbers.get", nil, number, { extra_query = { ["a\0"] = "x" } })
      assert.is_nil(ok)
      assert.equal("extra_query", err.field)
      m, perr = core.prepare("phone_numbers.get", number, nil, { extra_query = { ["a\0"] = "x" } })
      assert.is_nil(m)
      assert.equal(err.message, perr.message)
    end)
  end)

  describe("terminationSipURI and terminationSipUri", function()
    local function import(params)
      return c:request("phone_numbers.import", nil, with({ phoneNumber = "+14155550190", trunkUsername = "u",
                                                           trunkPassword = "p" }, params))
    end

    it("are both taken, and each endpoint gets the spelling it documents", function()
      assert.equal("terminationSipURI", core.endpoints["phone_numbers.update"].fields.terminationSipUri.alias)
      assert.equal("terminationSipUri", core.endpoints["phone_numbers.import"].fields.terminationSipURI.alias)
      local n = assert(import{ terminationSipUri = "sip:one.example" })          -- import wants ...URI
      assert.equal("sip:one.example", n.terminationSipURI)
      local upd = assert(c:request("phone_numbers.update", { n.sipPhoneNumber },
                                   { terminationSipURI = "sip:two.example" }))  -- PATCH wants ...Uri
      assert.equal("sip:two.example", upd.terminationSipURI)
      local _, raw = sb:request("GET", "/v1/phone-numbers/%2B14155550190")
      assert.equal("sip:two.example", raw.terminationSipURI)
      local _, _, body = core.prepare("phone_numbers.update", { n.sipPhoneNumber }, { terminationSipURI = "sip:x" })
      assert.equal('{"terminationSipUri":"sip:x"}', body)
      _, _, body = core.prepare("phone_numbers.import", nil, { phoneNumber = "+14155550191", trunkUsername = "u",
                                                               trunkPassword = "p", terminationSipUri = "sip:y" })
      assert.equal("sip:y", core.json_decode(body).terminationSipURI)
      assert.is_nil(core.json_decode(body).terminationSipUri)
    end)

    it("are checked under the name given, and not both at once", function()
      local err = refused("phone_numbers.update", { sb.number }, { terminationSipURI = "" }, "terminationSipURI",
                          "^terminationSipURI: expected a string of 1 to 253 characters")
      assert.truthy(err)
      refused("phone_numbers.update", { sb.number }, { terminationSipURI = "a", terminationSipUri = "b" },
              "terminationSipURI", "give one of the two")
      local v, ierr = import{}
      assert.is_nil(v)
      assert.equal("terminationSipURI", ierr.field)
      assert.matches("required", ierr.message)
    end)
  end)

  it("declares every field docs/api.md documents, so that none of them is refused", function()
    local documented = {
      ["calls.create"] = { "fromPhoneNumber", "toPhoneNumber", "agentId", "dynamicVariables" },
      ["calls.list"] = { "status", "page", "size" },
      ["campaigns.create"] = { "campaignName", "agentId", "sipPhoneNumber", "file", "concurrentCalls",
                               "dynamicVariables", "isScheduled", "scheduledDate", "scheduledTime",
                               "scheduledTimezone" },
      ["campaigns.list"] = { "status", "page", "size" },
      ["campaigns.update"] = { "campaignName", "agentId", "sipPhoneNumber", "file", "concurrentCalls",
                               "dynamicVariables", "isScheduled", "scheduledDate", "scheduledTime",
                               "scheduledTimezone", "campaignStatus" },
      ["phone_numbers.list"] = { "page", "size" },
      ["phone_numbers.provision"] = { "phoneNumber", "countryCode", "areaCode", "friendlyName", "inboundAgentId",
                                      "outboundAgentId", "outboundPhoneNumber" },
      ["phone_numbers.import"] = { "phoneNumber", "terminationSipURI", "trunkUsername", "trunkPassword",
                                   "friendlyName", "inboundAgentId", "outboundAgentId", "outboundPhoneNumber" },
      ["phone_numbers.update"] = { "friendlyName", "inboundAgentId", "outboundAgentId", "terminationSipUri",
                                   "trunkUsername", "trunkPassword", "outboundPhoneNumber" },
      ["webhooks.create"] = { "name", "agentId", "url", "events" },
      ["webhooks.list"] = { "agentId", "active", "page", "size" },
      ["webhooks.update"] = { "name", "url", "events", "active" },
      ["agents.list"] = { "page", "size" },
    }
    for name, ep in pairs(core.endpoints) do
      local want, got = documented[name] or {}, {}
      for f in pairs(ep.fields) do got[#got + 1] = f end
      table.sort(want)
      table.sort(got)
      assert.same(want, got, name)
    end
  end)

  describe("per-request options", function()
    it("raise for a name they do not know or a value of the wrong type, blaming the caller", function()
      local function raises(opts, pattern, name, params)
        local ok, msg = pcall(function() return c:request(name or "calls.list", nil, params, opts) end)
        assert.is_false(ok)
        assert.matches("bad argument #4", msg, 1, true)
        assert.matches(pattern, msg)
      end
      raises({ tiemout = 5 }, "unknown option 'tiemout'")
      raises("fast", "options: expected a table, got string")
      raises({ timeout = "5" }, "timeout: expected a number")
      raises({ timeout = 0 }, "timeout: expected a finite number of seconds")
      raises({ deadline = 0 / 0 }, "deadline: expected a finite number")
      raises({ max_retries = -1 }, "max_retries: expected a whole number >= 0")
      raises({ max_retries = 1.5 }, "max_retries: expected a whole number >= 0")
      raises({ headers = "X-A: 1" }, "headers: expected a table")
      raises({ extra_body = { a = 1 } }, "extra_body: GET /v1/calls has no body")
      raises({ extra_query = 3 }, "extra_query: expected a table")
      for _, name in ipairs{ "X-API-Key", "x-api-key", "X-Api-KEY", "Host", "content-length", "Transfer-Encoding" } do
        raises({ headers = { [name] = "x" } }, "is set by the client and cannot be given")
      end
      raises({ headers = { ["X Bad"] = "x" } }, "a name must be a non%-empty HTTP token")
      raises({ headers = { ["X-A"] = "a\r\nX-B: b" } }, "must not contain CR, LF or NUL")
      raises({ headers = { ["X-A"] = 1 } }, "X%-A: expected a string")
      assert.has_error(function() c:_start("calls.list", nil, nil, { nope = true }) end)
      assert.has_error(function() core.prepare("calls.list", nil, nil, { nope = true }) end)
      assert.same({}, sb:api_requests())
    end)

    it("override the client's retries and timeouts for that call only", function()
      local fault = { headers = { ["X-Sandbox-Fault"] = "503" } }
      local v, err = c:request("calls.list", nil, nil, with(fault, { max_retries = 0 }))
      assert.is_nil(v)
      assert.equal(1, err.attempts)                 -- the client's max_retries is 2
      v, err = c:request("calls.list", nil, nil, fault)
      assert.is_nil(v)
      assert.equal(3, err.attempts)
      local t0 = core.now()
      v, err = c:request("calls.list", nil, nil, { timeout = 0.3, max_retries = 0,
                                                  headers = { ["X-Sandbox-Fault"] = "slow=3000" } })
      assert.is_nil(v)
      assert.equal("timeout", err.kind)
      assert.is_true(core.now() - t0 < 2.5)         -- the client's timeout is 30 s
      v, err = c:request("calls.list", nil, nil, { deadline = 0.3, headers = { ["X-Sandbox-Fault"] = "slow=3000" } })
      assert.is_nil(v)
      assert.matches("deadline exhausted", err.message)
      assert(c:request("calls.list", nil, nil, { connect_timeout = 2, timeout = 5 }))
      assert(c:request("calls.list"))               -- and the client's own settings are as they were
    end)
  end)

  describe("the escape hatch", function()
    it("merges extra_body into the body as given, names unchecked", function()
      local call = assert(c:request("calls.create", nil, CALL, { extra_body = { dynamicVariables = { via = "extra" } } }))
      local _, raw = sb:request("GET", "/v1/calls/" .. call.callId)
      assert.equal("extra", raw.dynamicVariables.via)
      local _, _, body = core.prepare("calls.create", nil, CALL, { extra_body = { futureField = { 1, 2 } } })
      assert.same({ 1, 2 }, core.json_decode(body).futureField)
      assert.equal("+14157774444", core.json_decode(body).fromPhoneNumber)
    end)

    it("appends extra_query to the query, names unchecked, sorted", function()
      assert(c:request("calls.create", nil, CALL))
      local all = assert(c:request("calls.list"))
      local ended = assert(c:request("calls.list", nil, nil, { extra_query = { status = "ended" } }))
      assert.equal(1, #all.data)
      assert.equal(0, #ended.data)                  -- a fresh call has not ended
      local _, url = core.prepare("calls.list", nil, { size = 5 }, { extra_query = { zz = true, cursor = "a b" } })
      assert.equal("/v1/calls?size=5&cursor=a%20b&zz=true", url)
      _, url = core.prepare("calls.create", nil, CALL, { extra_query = { dry = 1 } })
      assert.equal("/v1/calls?dry=1", url)
    end)

    it("sends extra headers", function()
      local v, err = c:request("calls.list", nil, nil, { max_retries = 0, headers = { ["X-Sandbox-Fault"] = "503" } })
      assert.is_nil(v)
      assert.equal(503, err.status)
      assert(c:request("calls.list"))               -- the next request has none of them
    end)

    it("checks the strings of extra_body and extra_query as it checks a field's, naming them", function()
      local cases = {
        { "calls.create", CALL, { extra_body = { extra = "\xff" } }, "extra", "^extra: invalid UTF%-8$" },
        { "calls.create", CALL, { extra_body = { extra = { list = { "ok", "a\0" } } } }, "extra",
          "^extra%.list%[2%]: contains a NUL byte$" },
        { "calls.create", CALL, { extra_body = { extra = { ["k\xff"] = 1 } } }, "extra",
          "^extra: a field name: invalid UTF%-8$" },
        { "calls.create", CALL, { extra_body = { extra = 0 / 0 } }, "extra", "^extra: cannot be encoded as JSON: .*NaN" },
        { "calls.create", CALL, { extra_body = { extra = { f = print } } }, "extra", "^extra: cannot be encoded as JSON" },
        { "calls.list", nil, { extra_query = { tags = { "vip" } } }, "tags", "string, number or boolean.*table" },
        { "agents.list", nil, { extra_query = { cursor = core.null } }, "cursor", "got null" },
        { "agents.list", nil, { extra_query = { ratio = 0 / 0 } }, "ratio", "number" },
        { "agents.list", nil, { extra_query = { ratio = math.huge } }, "ratio", "number" },
        -- refused after a value longer than Lua's own buffer (1 KB) could have been written
        { "agents.list", nil, { extra_query = { aa = string.rep("q", 4000), zz = {} } }, "zz", "got table" },
        { "agents.list", nil, { extra_query = { cursor = "c\xc3" } }, "cursor", "^cursor: invalid UTF%-8$" },
        { "agents.list", nil, { extra_query = { ["c\xff"] = "x" } }, "extra_query", "a field name: invalid UTF%-8" },
        { "agents.list", nil, { extra_query = { "positional" } }, "extra_query", "name must be a string" },
      }
      for _, case in ipairs(cases) do
        local v, err = c:request(case[1], nil, case[2], case[3])
        assert.is_nil(v)
        assert.equal("invalid", err.kind)
        assert.equal(case[4], err.field)
        assert.matches(case[5], err.message)
        assert.is_false(err.sent)
        local m, perr = core.prepare(case[1], nil, case[2], case[3])
        assert.is_nil(m)
        assert.equal(err.message, perr.message)
      end
      assert.same({}, sb:api_requests())
    end)
  end)

  describe("against a raw server", function()
    local function raw_client(answers, opts)
      local raw = rawhttp.start(answers)
      local rc = core.new(with({ api_key = "sk_test_0123456789", base_url = raw.url, max_retries = 1 }, opts))
      return raw, rc
    end

    it("sends the headers given over the client's own, and removes one given as false", function()
      local raw, rc = raw_client{ rawhttp.answer(200, '{"callId":"call_1"}') }
      assert(rc:request("calls.create", nil, CALL, { extra_query = { dry = "yes" },
        headers = { Accept = "application/vnd.sigmamind+json", ["User-Agent"] = false, ["X-Trace"] = "t-1",
                    ["Idempotency-Key"] = "" } }))
      rc:close()
      local req = raw.received()[1]
      raw.stop()
      assert.equal("POST /v1/calls?dry=yes HTTP/1.1", req.line)
      local h = headers_of(req)
      assert.same({ "application/vnd.sigmamind+json" }, h.accept)
      assert.same({ "t-1" }, h["x-trace"])
      assert.same({ "" }, h["idempotency-key"])
      assert.is_nil(h["user-agent"])
      assert.same({ "sk_test_0123456789" }, h["x-api-key"])
      assert.same({ "application/json" }, h["content-type"])
      assert.same(core.json_decode(core.json_encode(CALL)), core.json_decode(req.body))
    end)

    it("gives a success's status, headers, request id, attempts, elapsed time, method and path", function()
      local events = {}
      local raw, rc = raw_client({ rawhttp.answer(503, '{"message":"busy"}', { "X-Request-Id: req_first" }),
        rawhttp.answer(201, '{"callId":"call_1"}', { "X-Request-Id: req_abc", "X-RateLimit-Remaining: 7",
                                                     "X-Dup: a", "x-dup: b" }) },
        { on_event = function(ev) events[#events + 1] = ev end })
      local value, err, meta = rc:request("calls.get", { "call_1" })
      rc:close()
      raw.stop()
      assert.is_nil(err)
      assert.equal("call_1", value.callId)
      assert.equal(201, meta.status)
      assert.equal("req_abc", meta.request_id)
      assert.equal(2, meta.attempts)
      assert.equal("number", type(meta.elapsed))
      assert.equal("GET", meta.method)
      assert.equal("/v1/calls/call_1", meta.path)
      assert.equal("7", meta.headers["x-ratelimit-remaining"])
      assert.equal("req_abc", meta.headers["x-request-id"])
      assert.equal("a, b", meta.headers["x-dup"])
      assert.equal("application/json", meta.headers["content-type"])
      assert.matches("X-Request-Id: req_abc\r\n", meta.raw_headers, 1, true)      -- the lines as received
      assert.is_nil(meta.raw_headers:find("HTTP/1.1", 1, true))
      local keys = {}                               -- pairs shows headers too (made from raw_headers on first use)
      local fresh = setmetatable({ raw_headers = "X-A: 1\r\n" }, getmetatable(meta))
      for k in pairs(fresh) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.same({ "headers", "raw_headers" }, keys)
      assert.same({ ["x-a"] = "1" }, fresh.headers)
      local ids = {}
      for _, ev in ipairs(events) do ids[#ids + 1] = ev.type .. "=" .. tostring(ev.request_id) end
      assert.same({ "request=nil", "response=req_first", "retry=req_first", "request=nil", "response=req_abc" },
                  ids)
    end)

    it("gives the metadata in a transfer's record too, and takes the options there", function()
      local raw, rc = raw_client{ rawhttp.answer(200, '{"data":[],"x":null}', { "X-Request-Id: req_m" }),
                                  rawhttp.answer(503, '{"message":"busy"}') }
      local id = assert(rc:_start("calls.list", nil, nil, { extra_query = { cursor = "c1" },
                                                            headers = { ["X-Trace"] = "t-2" } }))
      local recs
      for _ = 1, 100 do recs = rc:_perform(0.1) if recs then break end end
      local id2 = assert(rc:_start("calls.list", nil, nil, { max_retries = 0 }))   -- the client's is 1
      local recs2
      for _ = 1, 100 do recs2 = rc:_perform(0.1) if recs2 then break end end
      rc:close()
      local req = raw.received()[1]
      raw.stop()
      assert.same({ id2, "fail" }, { recs2[1][1], recs2[1][2] })
      assert.equal(503, recs2[1][3].status)
      assert.equal(id, recs[1][1])
      assert.equal("ok", recs[1][2])
      assert.same({ data = {} }, recs[1][3])        -- no x: its null is left out
      assert.is_nil(recs[1][4])
      assert.equal("req_m", recs[1][5].request_id)
      assert.equal(200, recs[1][5].status)
      assert.equal("/v1/calls", recs[1][5].path)
      assert.equal("GET /v1/calls?cursor=c1 HTTP/1.1", req.line)
      assert.same({ "t-2" }, headers_of(req)["x-trace"])
    end)

    it("never shows the key in the metadata, even when the server echoes it", function()
      local raw, rc = raw_client{ rawhttp.answer(200, '{}', { "X-Echo: key=sk_test_0123456789",
                                                              "X-Request-Id: sk_test_0123456789" }) }
      local _, _, meta = rc:request("agents.list")
      rc:close()
      raw.stop()
      assert.equal("key=[REDACTED]", meta.headers["x-echo"])
      assert.equal("[REDACTED]", meta.request_id)
      assert.is_nil(meta.raw_headers:find("0123456789", 1, true))
    end)
  end)

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

  describe("Ctrl-C", function()
    -- runs lua5.4 on a script in the background, with the module on its paths (and env's variables); returns
    -- its pid and a function telling whether it has exited, then its stdout, its stderr and its exit code
    local function background(script, env)
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir " .. dir))
      local f = assert(io.open(dir .. "/s.lua", "w"))
      f:write(script)
      f:close()
      local vars = ("SIGMAMIND_BASE_URL=%s SIGMAMIND_API_KEY=%s"):format(sb.url, sb.key)
      for k, v in pairs(env or {}) do vars = vars .. (" %s=%s"):format(k, v) end
      local cmd = ("%s sh -c 'echo $$ > %s/pid; exec lua5.4 %s/s.lua' >%s/out 2>%s/err; echo $? > %s/rc")
                  :format(vars, dir, dir, dir, dir, dir)
      assert(os.execute("(" .. cmd .. ") &"))
      local pid
      for _ = 1, 200 do
        local p = io.open(dir .. "/pid")
        pid = p and tonumber(p:read("l"))
        if p then p:close() end
        if pid then break end
        core.sleep(0.05)
      end
      assert(pid, "the script did not start")
      local function done()
        local r = io.open(dir .. "/rc")
        local rc = r and tonumber(r:read("l"))
        if r then r:close() end
        if not rc then return nil end
        local function slurp(name)
          local h = io.open(dir .. "/" .. name)
          local text = h:read("a")
          h:close()
          return text
        end
        local out, err = slurp("out"), slurp("err")
        os.execute("rm -rf " .. dir)
        return true, out, err, rc
      end
      return pid, done
    end

    -- interrupts the script once ready() says it is waiting; returns the seconds it then took to exit, its
    -- stdout, stderr and exit code
    local function interrupt(script, ready, env)
      local pid, done = background(script, env)
      local t0 = core.now()
      repeat core.sleep(0.025) until ready() or core.now() - t0 > 10
      assert.is_true(ready(), "the script never got to its wait")
      core.sleep(0.2)                               -- well inside it: each wait is 10 s or more
      t0 = core.now()
      assert(os.execute("kill -INT " .. pid))
      local finished, out, err, rc
      repeat
        core.sleep(0.02)
        finished, out, err, rc = done()
      until finished or core.now() - t0 > 40
      return core.now() - t0, out, err, rc
    end

    -- a create that the sandbox holds for 10 s
    local function slow_create()
      sb:arm{ method = "POST", path = "/v1/calls", fault = "slow=10000", count = 1 }
      return function() return sb:count("POST", "/v1/calls") > 0 end
    end

    it("ends a script's create within moments, as lua5.4 ends a script on Ctrl-C", function()
      local took, _, err, rc = interrupt([[
        local sigmamind = require "sigmamind"
        local client = sigmamind.new{ timeout = 30 }
        client.calls:create{ fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445" }
        print("not interrupted")
      ]], slow_create())
      assert.matches("interrupted", err)
      assert.is_true(rc ~= 0)
      assert.is_true(took < 5, ("took %.1f s (the slow answer comes after 10 s)"):format(took))
    end)

    it("returns an interrupted create as possibly sent before the host's handler has its say", function()
      -- a coroutine: lua5.4's handler raises "interrupted!" in the main thread, after the coroutine has seen
      -- what client:request returned
      local took, out, err = interrupt([[
        local core = require "sigmamind.core"
        local c = core.new{ api_key = os.getenv("SIGMAMIND_API_KEY"), base_url = os.getenv("SIGMAMIND_BASE_URL") }
        coroutine.wrap(function()
          local v, e = c:request("calls.create", nil, { fromPhoneNumber = "+14157774444",
                                                       toPhoneNumber = "+12137774445" })
          io.write(("value=%s kind=%s sent=%s retryable=%s attempts=%s\n%s\n"):format(tostring(v), e.kind,
            tostring(e.sent), tostring(e.retryable), tostring(e.attempts), tostring(e)))
          io.flush()
        end)()
        print("not interrupted")
      ]], slow_create())
      assert.matches("value=nil kind=interrupted sent=true retryable=false attempts=1", out, 1, true)
      assert.matches("POST /v1/calls: interrupted: interrupted %(SIGINT%) after the request went out", out)
      assert.is_nil(out:find("not interrupted", 1, true))
      assert.matches("interrupted!", err, 1, true)
      assert.is_true(took < 5, ("took %.1f s"):format(took))
    end)

    it("cuts short the wait before a retry, the wait of a transfer loop and core.sleep", function()
      local raw = rawhttp.start{ rawhttp.answer(503, '{"message":"later"}', { "Retry-After: 30" }) }
      local took, out, err = interrupt([[
        local core = require "sigmamind.core"
        local c = core.new{ api_key = "sk_test_x", base_url = os.getenv("RAW_URL") }
        coroutine.wrap(function()
          local _, e = c:request("agents.list")
          io.write(("kind=%s sent=%s %s\n"):format(e.kind, tostring(e.sent), e.message))
          io.flush()
        end)()
      ]], function() return #raw.requests() > 0 end, { RAW_URL = raw.url })
      raw.stop()
      assert.matches("kind=interrupted sent=true interrupted (SIGINT) while waiting to try again after: later", out,
                     1, true)
      assert.matches("interrupted!", err, 1, true)
      assert.is_true(took < 5, ("took %.1f s (the retry was due after 30 s)"):format(took))

      took, out, err = interrupt([[
        local core = require "sigmamind.core"
        local c = core.new{ api_key = os.getenv("SIGMAMIND_API_KEY"), base_url = os.getenv("SIGMAMIND_BASE_URL") }
        assert(c:_start("calls.create", nil, { fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445" }))
        c:_perform(3600)
        print("not interrupted")
      ]], slow_create())
      assert.matches("interrupted!", err, 1, true)
      assert.is_nil(out:find("not interrupted", 1, true))
      assert.is_true(took < 5, ("took %.1f s (the slow answer comes after 10 s)"):format(took))

      local mark = os.tmpname()
      took, out, err = interrupt(([[
        local core = require "sigmamind.core"
        io.open(%q, "w"):write("sleeping"):close()
        core.sleep(30)
        print("not interrupted")
      ]]):format(mark), function()
        local f = io.open(mark)
        local ready = f and f:read("a") == "sleeping"
        if f then f:close() end
        return ready
      end)
      os.remove(mark)
      assert.matches("interrupted!", err, 1, true)
      assert.is_nil(out:find("not interrupted", 1, true))
      assert.is_true(took < 5, ("took %.1f s (the sleep was 30 s)"):format(took))
    end)
  end)
end)
