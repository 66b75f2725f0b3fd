-- Errors and retries as the README's "Errors" and "Retries" sections say, each against a fault.
local sandbox = require "support.sandbox"
local sigmamind = require "sigmamind"
local core = require "sigmamind.core"
local rawhttp = require "support.rawhttp"
local util = require "support.util"

local function peak_rss_kb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end

describe("errors and retries", function()
  local sb, events, on_event

  local function client(opts)
    opts = opts or {}
    opts.on_event = on_event
    return util.client(sb, opts)
  end
  local function new_call(c)
    return c.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445", agentId = sb.agent }
  end

  setup(function() sb = sandbox.start{ speed = 100 } end)
  teardown(function() if sb then sb:stop() end end)
  before_each(function() sb:reset(); events, on_event = util.events() end)

  it("retries a POST /v1/calls refused with 429 twice, honouring Retry-After, and creates one call", function()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "429", count = 2 }
    local c = client{ max_retries = 2 }
    local t0 = core.now()
    local call, err = new_call(c)
    local elapsed = core.now() - t0
    assert.is_nil(err)
    assert.truthy(call.callId)
    assert.equal(3, sb:count("POST", "/v1/calls"))
    assert.equal(2, events:count("retry"))
    assert.is_true(elapsed >= 1.9, "Retry-After: 1 was not honoured twice: " .. elapsed)
    assert.equal(1, sb:state().calls)
    c:close()
  end)

  it("gives up on 429 after max_retries with a rate_limited error", function()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "429", count = 5 }
    local c = client{ max_retries = 1 }
    local call, err = new_call(c)
    assert.is_nil(call)
    assert.equal("rate_limited", err.kind)
    assert.equal(429, err.status)
    assert.equal(2, err.attempts)
    assert.equal(1, err.retry_after)
    assert.equal(0, sb:state().calls)
    c:close()
  end)

  it("retries a GET answered 503", function()
    local c = client{}
    local call = assert(new_call(c))
    sb:arm{ method = "GET", path = "/v1/calls/{callId}", fault = "503", count = 1 }
    local got, err = c.calls:get(call.callId)
    assert.is_nil(err)
    assert.equal(call.callId, got.callId)
    assert.equal(2, sb:count("GET", "/v1/calls/{callId}"))
    c:close()
  end)

  it("takes a max_retries too large for the C side as its cap, not as none", function()
    -- 1e300 did not fit a long: undefined behaviour, which here read as "no retry"
    for _, n in ipairs{ 1e300, 2 ^ 63, math.maxinteger } do
      local c = client{ max_retries = n }
      local call = assert(new_call(c))
      sb:arm{ method = "GET", path = "/v1/calls/{callId}", fault = "503", count = 1 }
      local before = sb:count("GET", "/v1/calls/{callId}")
      assert(c.calls:get(call.callId))
      assert.equal(2, sb:count("GET", "/v1/calls/{callId}") - before)
      c:close()
    end
    assert.has_error(function() client{ timeout = math.huge } end,
                     "sigmamind.new: timeout: expected a finite number >= 0.001, got number")
  end)

  it("never retries a POST /v1/calls answered 500", function()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "500", count = 3 }
    local c = client{ max_retries = 3 }
    local call, err = new_call(c)
    assert.is_nil(call)
    assert.equal("server", err.kind)
    assert.equal(500, err.status)
    assert.is_true(err.sent)
    assert.equal(1, err.attempts)
    assert.equal(1, sb:count("POST", "/v1/calls"))
    assert.matches("^sigmamind: POST /v1/calls: 500", tostring(err))
    c:close()
  end)

  it("never retries a POST /v1/calls whose connection was reset", function()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "reset", count = 3 }
    local c = client{ max_retries = 3 }
    local call, err = new_call(c)
    assert.is_nil(call)
    assert.equal("network", err.kind)
    assert.is_true(err.sent)
    assert.equal(1, sb:count("POST", "/v1/calls"))
    c:close()
  end)

  it("never sends a create twice when the server restarts after reading it on a kept-alive connection", function()
    -- libcurl resends a request by itself when a reused connection dies before any answer; the
    -- resend's connect is refused (the server is down), which must not read as "certainly never
    -- sent": the server read the first one
    for _, in_task in ipairs{ false, true } do
      local raw = rawhttp.start{ rawhttp.answer(200, '{"data":[],"hasNext":false}'), "!restart 400" }
      -- reconcile = false: the lookups that would follow are another spec's (reconcile_spec)
      local c = sigmamind.new{ api_key = "sk_test_raw", base_url = raw.url, reconcile = false }
      assert(c.agents:list())
      local function create()
        return c.calls:create{ fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445" }
      end
      local call, err
      if in_task then
        local t = c:spawn(create)
        c:run()
        call, err = t:join()
      else
        call, err = create()
      end
      c:close()
      local posts = 0
      for _, line in ipairs(raw.requests()) do if line:match("^POST /v1/calls ") then posts = posts + 1 end end
      raw.stop()
      assert.equal(1, posts, "POSTs sent (in a task: " .. tostring(in_task) .. ")")
      assert.is_nil(call)
      assert.is_true(err.sent, tostring(err))
    end
  end)

  it("takes a success answer without a call for a create that may have been placed, never for a call", function()
    for _, case in ipairs{ { "", "no body" }, { "null", "null" }, { "{}", "no callId" }, { '{"callId":7}', "no callId" },
                           { "[1]", "no callId" }, { '"call_1"', "a JSON string" } } do
      local raw = rawhttp.start{ rawhttp.answer(201, case[1]) }
      local c = sigmamind.new{ api_key = "sk_test_raw", base_url = raw.url, reconcile = false }
      local call, err = c.calls:create{ fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445" }
      c:close()
      local n = #raw.requests()
      raw.stop()
      assert.is_nil(call, case[1])
      assert.same({ "decode", true, false, 1 }, { err.kind, err.sent, err.retryable, n })
      assert.matches("success without a call (" .. case[2] .. ")", err.message, 1, true)
    end
    -- with reconciliation on (the default) it is looked for like a lost answer
    local empty = rawhttp.answer(200, '{"data":[],"hasNext":false,"totalCounts":0}')
    local raw = rawhttp.start{ rawhttp.answer(201, ""), empty, empty, empty, empty, empty }
    local c = sigmamind.new{ api_key = "sk_test_raw", base_url = raw.url }
    local call, err = c.calls:create{ fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445" }
    c:close()
    local log = raw.requests()
    raw.stop()
    assert.is_nil(call)
    assert.equal("decode", err.kind)
    assert.is_string(err.reconcile)
    assert.equal("POST /v1/calls HTTP/1.1", log[1])
    assert.matches("^GET /v1/calls", log[2])
    for i = 2, #log do assert.not_matches("^POST", log[i]) end
  end)

  it("retries when no server listens, then reports network with sent == false", function()
    local c = client{ base_url = "http://127.0.0.1:" .. util.free_port(), max_retries = 2, deadline = 30 }
    local call, err = new_call(c)
    assert.is_nil(call)
    assert.equal("network", err.kind)
    assert.is_false(err.sent)
    assert.equal(3, err.attempts)
    assert.equal(2, events:count("retry"))
    c:close()
  end)

  it("turns a response slower than timeout into a timeout error", function()
    sb:arm{ method = "GET", path = "/v1/agents", fault = "slow=1500", count = 1 }
    local c = client{ timeout = 0.3, max_retries = 0 }
    local page, err = c.agents:list{}
    assert.is_nil(page)
    assert.equal("timeout", err.kind)
    c:close()
  end)

  it("stops retrying when the deadline is spent", function()
    sb:arm{ method = "GET", path = "/v1/agents", fault = "slow=800", count = 20 }
    local c = client{ timeout = 0.3, max_retries = 10, deadline = 1.5 }
    local t0 = core.now()
    local page, err = c.agents:list{}
    local elapsed = core.now() - t0
    assert.is_nil(page)
    assert.equal("timeout", err.kind)
    assert.is_true(err.attempts < 11)
    -- under valgrind (SIGMAMIND_SLOW) the bound gets a second of slack
    assert.is_true(elapsed < (os.getenv("SIGMAMIND_SLOW") and 3.5 or 2.5), "deadline of 1.5 s overrun: " .. elapsed)
    c:close()
  end)

  it("reports a non-JSON 200 as decode, keeping the raw body", function()
    sb:arm{ method = "GET", path = "/v1/agents", fault = "garbage", count = 1 }
    local c = client{}
    local page, err = c.agents:list{}
    assert.is_nil(page)
    assert.equal("decode", err.kind)
    assert.equal(200, err.status)
    assert.is_string(err.body)
    assert.is_true(#err.body > 0)
    c:close()
  end)

  it("reports a truncated body as an error, never a crash", function()
    sb:arm{ method = "GET", path = "/v1/agents", fault = "truncate", count = 5 }
    local c = client{ max_retries = 1 }
    local page, err = c.agents:list{}
    assert.is_nil(page)
    assert.equal("network", err.kind)
    c:close()
  end)

  for _, fault in ipairs{ "big", "bigchunked" } do
    it("refuses a " .. fault .. " body over max_response_bytes without holding it in memory", function()
      sb:arm{ method = "GET", path = "/v1/agents", fault = fault .. "=60000000", count = 1 }
      local c = client{ max_response_bytes = 1024 * 1024, max_retries = 0 }
      local before = peak_rss_kb()
      local page, err = c.agents:list{}
      local grew = peak_rss_kb() - before
      assert.is_nil(page)
      assert.equal("too_large", err.kind)
      assert.is_true(grew < 20 * 1024, "peak RSS grew by " .. grew .. " kB")
      c:close()
    end)
  end

  it("reports 401 as auth and 404 as not_found, with the server's message", function()
    local bad = sigmamind.new{ api_key = "sk_wrong", base_url = sb.url }
    local _, err = bad.agents:list{}
    assert.equal("auth", err.kind)
    assert.equal(401, err.status)
    assert.is_false(err.retryable)
    bad:close()
    local c = client{}
    local _, nf = c.calls:get("call_missing")
    assert.equal("not_found", nf.kind)
    assert.matches("call_missing", nf.message)
    assert.equal("GET", nf.method)
    assert.equal("/v1/calls/call_missing", nf.path)
    assert.matches("^sigmamind: GET /v1/calls/call_missing: 404 Not Found: ", tostring(nf))
    c:close()
  end)

  it("reports a server-side 400 as rejected with the server's wording", function()
    local c = client{}
    local call, err = c.calls:create{ fromPhoneNumber = "+19995550000", toPhoneNumber = "+12137774445" }
    assert.is_nil(call)
    assert.equal("rejected", err.kind)
    assert.equal(400, err.status)
    assert.matches("fromPhoneNumber", err.message)
    c:close()
  end)
end)
