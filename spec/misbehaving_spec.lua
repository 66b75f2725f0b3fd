-- Servers that misbehave, scripted byte for byte (spec/support/rawhttp.lua): DELETEs whose answer was
-- lost.
local rawhttp = require "support.rawhttp"
local sigmamind = require "sigmamind"

local answer = rawhttp.answer

-- a client of a raw server with these answers; returns the client and the server
local function against(answers, opts)
  local raw = rawhttp.start(answers)
  local o = { api_key = "sk_test_raw", base_url = raw.url, max_retries = 0 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return sigmamind.new(o), raw
end

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
