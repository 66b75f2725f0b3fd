-- Servers that misbehave, scripted byte for byte (spec/support/rawhttp.lua): success answers of the
-- wrong JSON shape, lists that ignore paging, and DELETEs whose answer was lost.
local rawhttp = require "support.rawhttp"
local sigmamind = require "sigmamind"

local answer = rawhttp.answer

-- n copies of a
local function times(n, a)
  local out = {}
  for i = 1, n do out[i] = a end
  return out
end

-- a client of a raw server with these answers; returns the client and the server
local function against(answers, opts)
  local raw = rawhttp.start(answers)
  local o = { api_key = "sk_test_raw", base_url = raw.url, max_retries = 0 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return sigmamind.new(o), raw
end

-- the error is a decode error of the core's kind, for a request that reached the server
local function assert_decode(err, path, fragment)
  assert.is_true(sigmamind.is_error(err), tostring(err))
  assert.same({ "decode", true, false }, { err.kind, err.sent, err.retryable })
  assert.equal(path, err.path)
  assert.matches(fragment, err.message, 1, true)
end

local function call_json(id, extra)
  return ('{"callId":"%s","callType":"outbound","status":"ended","createdAt":"2024-04-20T10:00:00Z"%s}')
         :format(id, extra or "")
end

describe("a server that answers every page alike (it ignores page)", function()
  local page = answer(200, '{"data":[' .. call_json("call_1") .. "," .. call_json("call_2") ..
                           '],"page":0,"size":2,"hasNext":true,"totalCounts":6}')

  it("ends each (with or without a limit) and pages after three requests with a decode error", function()
    for _, case in ipairs{ { "each", { limit = 5 } }, { "each", {} }, { "pages", {} },
                           { "each", { limit = 5, prefetch = true } } } do
      local c, raw = against(times(12, page))
      local got = 0
      local ok, err = pcall(function()
        for _ in c.calls[case[1]](c.calls, case[2]) do got = got + 1 end
      end)
      c:close()
      local requests = #raw.requests()
      raw.stop()
      assert.is_false(ok, case[1])
      assert_decode(err, "/v1/calls", "the server repeated page 0 as pages 1 and 2")
      assert.matches("ignores paging", err.message, 1, true)
      assert.equal(3, requests, case[1])
      assert.equal(2, got, case[1])       -- each: the two records once; pages: page 0 and its first repeat
    end
  end)

  it("still reads a list that shifted by a whole page once", function()
    local last = answer(200, '{"data":[' .. call_json("call_3") .. '],"page":2,"size":2,"hasNext":false}')
    local c, raw = against{ page, page, last }
    local ids = {}
    for call in c.calls:each{ size = 2 } do ids[#ids + 1] = call.callId end
    c:close()
    raw.stop()
    assert.same({ "call_1", "call_2", "call_3" }, ids)
  end)

  it("makes calls:stats and campaigns:progress return nil and the error", function()
    local c, raw = against(times(12, page))
    local stats, err = c.calls:stats()
    local requests = #raw.requests()
    c:close()
    raw.stop()
    assert.is_nil(stats)
    assert_decode(err, "/v1/calls", "repeated page 0")
    assert.equal(3, requests)

    local camp = answer(200, '{"campaignId":"camp_1","campaignStatus":"live"}')
    local answers = times(12, page)
    table.insert(answers, 1, camp)
    c, raw = against(answers)
    local progress, perr = c.campaigns:progress("camp_1")
    requests = #raw.requests()
    c:close()
    raw.stop()
    assert.is_nil(progress)
    assert_decode(perr, "/v1/calls", "repeated page 0")
    assert.equal(4, requests)
  end)
end)

describe("a success answer of the wrong JSON shape", function()
  -- bodies that are not a page, and the words the error has for each
  local NOT_PAGES = {
    { "null", "got null" }, { "5", "got a number" }, { '"s"', "got a string" }, { "false", "got false" },
    { "", "got no body" }, { '{"data":5}', "data: expected an array, got a number" },
    { '{"data":{"a":1}}', "data: expected an array, got an object" },
    { '{"data":[5]}', "data[1]: expected an object, got a number" },
    { '{"data":[{"callId":"a"},null]}', "data[2]: expected an object, got null" },
    { '{"data":[[1]]}', "data[1]: expected an object, got an array" },
    { '{"data":[{}]}', "data[1]: expected an object, got an empty object or array" },
    { '{"data":[],"hasNext":"yes"}', "hasNext: expected a boolean, got a string" },
    { '{"data":[{"callId":"a"}],"page":"x","totalPages":3}', "page: expected a number, got a string" },
  }
  -- bodies that are not a record
  local NOT_RECORDS = {
    { "null", "got null" }, { "5", "got a number" }, { '"s"', "got a string" }, { "[]", "got an empty object" },
    { "[1,2]", "got an array" }, { "false", "got false" }, { "", "got no body" },
  }

  local function answers_of(cases, status)
    local out = {}
    for i, case in ipairs(cases) do out[i] = answer(status or 200, case[1]) end
    return out
  end

  it("is a decode error from list, each, pages and calls:stats, never a raw Lua error", function()
    for _, op in ipairs{ "list", "each", "pages", "stats" } do
      local c, raw = against(answers_of(NOT_PAGES))
      for _, case in ipairs(NOT_PAGES) do
        local ok, v, err
        if op == "list" or op == "stats" then
          ok, v, err = pcall(c.calls[op], c.calls)
          assert.is_true(ok, op .. " " .. case[1] .. ": " .. tostring(v))
          assert.is_nil(v, op .. " " .. case[1])
        else
          ok, err = pcall(function() for _ in c.calls[op](c.calls, {}) do end end)
          assert.is_false(ok, op .. " " .. case[1])                 -- the loop raises the error itself
        end
        assert_decode(err, "/v1/calls", case[2])
        assert.matches("^the response is not a page of calls: ", err.message)
      end
      c:close()
      raw.stop()
    end
  end)

  it("is a decode error from a page that was prefetched", function()
    local good = answer(200, '{"data":[' .. call_json("call_1") .. '],"page":0,"size":1,"hasNext":true}')
    local c, raw = against{ good, answer(200, '{"data":7}') }
    local n = 0
    local ok, err = pcall(function() for _ in c.calls:each{ size = 1, prefetch = true } do n = n + 1 end end)
    c:close()
    raw.stop()
    assert.is_false(ok)
    assert.equal(1, n)
    assert_decode(err, "/v1/calls", "data: expected an array, got a number")
  end)

  it("is a decode error from get, wait, create, update and pause, with sent = true", function()
    local ops = {
      { function(c) return c.calls:get("call_1") end, "/v1/calls/call_1", "not a call" },
      { function(c) return c.calls:wait("call_1", { timeout = 5 }) end, "/v1/calls/call_1", "not a call" },
      { function(c) return c.agents:get("agent_1") end, "/v1/agents/agent_1", "not an agent" },
      { function(c) return c.phone_numbers:get("+14157774444") end, "/v1/phone-numbers/%2B14157774444",
        "not a phone number" },
      { function(c) return c.webhooks:create{ name = "h", agentId = "agent_1", url = "https://example.test/h",
                                               events = { "conversation_ended" } } end, "/v1/webhooks",
        "not a webhook" },
      { function(c) return c.campaigns:update("camp_1", { campaignName = "x" }) end, "/v1/campaigns/camp_1",
        "not a campaign" },
      { function(c) return c.campaigns:pause("camp_1") end, "/v1/campaigns/camp_1", "not a campaign" },
      { function(c) return c.campaigns:progress("camp_1") end, "/v1/campaigns/camp_1", "not a campaign" },
    }
    for _, op in ipairs(ops) do
      local c, raw = against(answers_of(NOT_RECORDS, 201))
      for _, case in ipairs(NOT_RECORDS) do
        local ok, v, err = pcall(op[1], c)
        assert.is_true(ok, op[2] .. " " .. case[1] .. ": " .. tostring(v))
        assert.is_nil(v, op[2] .. " " .. case[1])
        assert_decode(err, op[2], op[3] .. ": expected a JSON object, " .. case[2])
      end
      c:close()
      raw.stop()
    end
  end)

  describe("in the lookup for a create whose answer was lost", function()
    local BAD = { "5", "null", '{"data":5}', '{"data":[null]}' }   -- one per lookup (four, 3.5 s apart in all)
    local create = { fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445" }

    it("leaves calls:create with the error that says the call may exist", function()
      local c, raw = against{ "!close", answer(200, BAD[1]), answer(200, BAD[2]), answer(200, BAD[3]),
                              answer(200, BAD[4]) }
      local ok, call, err = pcall(c.calls.create, c.calls, create)
      local requests = raw.requests()
      c:close()
      raw.stop()
      assert.is_true(ok, tostring(call))
      assert.is_nil(call)
      assert.same({ "network", true }, { err.kind, err.sent })
      assert.matches("the lookup failed: .*not a page of calls", err.reconcile)
      assert.equal(5, #requests)
      assert.matches("^POST /v1/calls ", requests[1])
    end)

    it("leaves client:dial its report, the row uncertain", function()
      local c, raw = against{ "!close", answer(200, BAD[1]), answer(200, BAD[2]), answer(200, BAD[3]),
                              answer(200, BAD[4]) }
      local ok, report, err = pcall(c.dial, c, { contacts = { { phoneNumber = "+12137774445" } },
                                                 from = "+14157774444", agent = "agent_1", wait = false })
      c:close()
      raw.stop()
      assert.is_true(ok, tostring(report))
      assert(report, tostring(err))
      assert.same({ 0, 1, 1 }, { report.placed, report.uncertain, report.total })
      assert.is_true(report.rows[1].err.sent)
      assert.matches("the lookup failed", report.rows[1].err.reconcile)
    end)
  end)
end)

describe("a DELETE whose answer was lost", function()
  local not_found = answer(404, '{"status":404,"message":"Call not found"}')

  local function delete(answers, in_task, first)
    local events = {}
    local c, raw = against(answers, { max_retries = 2, on_event = function(ev)
      if ev.type == "gone" then events[#events + 1] = ev end
    end })
    local function run()
      if first then assert(c.agents:list()) end          -- a kept-alive connection for the DELETE to reuse
      return c.calls:delete("call_1")
    end
    local ok, err
    if in_task then
      local t = c:spawn(run)
      c:run()
      ok, err = t:join()
    else
      ok, err = run()
    end
    local requests = raw.requests()
    c:close()
    raw.stop()
    return ok, err, events, requests
  end

  it("is done when the retry is answered 404", function()
    for _, in_task in ipairs{ false, true } do
      -- a fresh connection closed without an answer: libcurl gives up, and the client tries again
      local ok, err, events, requests = delete({ "!close", not_found }, in_task)
      assert.is_true(ok, tostring(err))
      assert.same({ "DELETE /v1/calls/call_1 HTTP/1.1", "DELETE /v1/calls/call_1 HTTP/1.1" }, requests)
      assert.equal(1, #events)
      assert.same({ "gone", "DELETE", "/v1/calls/call_1", 2, 404 },
                  { events[1].type, events[1].method, events[1].path, events[1].attempt, events[1].status })
    end
  end)

  it("is done when libcurl's resend on a new connection is answered 404", function()
    for _, in_task in ipairs{ false, true } do
      -- a kept-alive connection closed unanswered: libcurl resends on a new one, in one attempt
      local ok, err, events, requests = delete({ answer(200, "[]"), "!close", not_found }, in_task, true)
      assert.is_true(ok, tostring(err))
      assert.equal(3, #requests)
      assert.equal(1, #events)
      assert.same({ "gone", 1 }, { events[1].type, events[1].attempt })
    end
  end)

  it("is still not_found when the first answer is 404", function()
    local ok, err, events = delete({ not_found }, false)
    assert.is_nil(ok)
    assert.same({ "not_found", 404, 1 }, { err.kind, err.status, err.attempts })
    assert.is_nil(err.resent)
    assert.equal(0, #events)
  end)
end)
