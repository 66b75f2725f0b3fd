-- Logging without code: SIGMAMIND_LOG (and the log option) write a line per request, response,
-- retry and give-up, redacted as on_event is; an on_event handler's error is reported once.
local sandbox = require "support.sandbox"
local sigmamind = require "sigmamind"

local buffer = require("support.util").buffer

local function lines_of(text)
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines
end

describe("logging", function()
  local sb

  setup(function() sb = sandbox.start{ speed = 200 } end)
  teardown(function() if sb then sb:stop() end end)
  before_each(function() sb:reset() end)

  -- runs `code` in a lua5.4 of its own with SIGMAMIND_LOG=`level` (nil: unset); its stdout and stderr
  local function child(level, code)
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write('local sigmamind = require "sigmamind"\n', code)
    f:close()
    local errfile = os.tmpname()
    local cmd = ("%sSIGMAMIND_BASE_URL=%s SIGMAMIND_API_KEY=%s SIGMAMIND_NUMBER=%s lua5.4 %s 2>%s"):format(
      level and ("SIGMAMIND_LOG=" .. sandbox.shell_quote(level) .. " ") or "", sb.url, sb.key, sb.number,
      script, errfile)
    if not level then cmd = "unset SIGMAMIND_LOG; " .. cmd end
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    local ok = p:close()
    local e = assert(io.open(errfile))
    local err = e:read("a")
    e:close()
    os.remove(script); os.remove(errfile)
    return ok, out, err
  end

  -- a retried GET, a number in a path, a give-up: every kind of line
  local WORK = [[
    local c = sigmamind.new{ max_retries = 1 }
    print(assert(c.phone_numbers:get(os.getenv("SIGMAMIND_NUMBER"))).sipPhoneNumber)
    local _, err = c.calls:get("call_missing")
    print(err.kind)
  ]]

  it("SIGMAMIND_LOG=debug: one line per request, response, retry and give-up, with no key and numbers masked",
     function()
    sb:arm{ method = "GET", path = "/v1/phone-numbers/{phoneNumber}", fault = "503", count = 1 }
    local ok, out, err = child("debug", WORK)
    assert.is_true(ok, err)
    assert.equal(sb.number .. "\nnot_found\n", out)                   -- the work itself unharmed
    local lines = lines_of(err)
    local masked = "/v1/phone%-numbers/%+1415%*%*%*4444"
    local want = {
      "^sigmamind: debug: GET " .. masked .. " %(attempt 1%)$",
      "^sigmamind: info: GET " .. masked .. " %-> 503 server in %d+ ms %(attempt 1%)$",
      "^sigmamind: info: GET " .. masked .. ": retry in %d+ ms %(attempt 1: server%)$",
      "^sigmamind: debug: GET " .. masked .. " %(attempt 2%)$",
      "^sigmamind: info: GET " .. masked .. " %-> 200 in %d+ ms %(attempt 2%)$",
      "^sigmamind: debug: GET /v1/calls/call_missing %(attempt 1%)$",
      "^sigmamind: info: GET /v1/calls/call_missing %-> 404 not_found in %d+ ms %(attempt 1%)$",
      "^sigmamind: info: GET /v1/calls/call_missing: gave up after 1 attempt in %d+ ms %(not_found%)$",
    }
    assert.equal(#want, #lines, err)
    for i, pattern in ipairs(want) do assert.matches(pattern, lines[i]) end
    assert.is_nil(err:find(sb.key, 1, true))
    assert.is_nil(err:find("4157774444", 1, true))
  end)

  it("SIGMAMIND_LOG=info: the responses, retries and give-ups, not the requests", function()
    sb:arm{ method = "GET", path = "/v1/phone-numbers/{phoneNumber}", fault = "503", count = 1 }
    local ok, _, err = child("info", WORK)
    assert.is_true(ok, err)
    local lines = lines_of(err)
    assert.equal(5, #lines, err)
    for _, line in ipairs(lines) do assert.matches("^sigmamind: info: GET ", line) end
    assert.is_nil(err:find("debug", 1, true))
  end)

  it("writes nothing without SIGMAMIND_LOG, or with it off", function()
    for _, level in ipairs{ false, "off", "" } do
      local ok, out, err = child(level or nil, WORK)
      assert.is_true(ok, err)
      assert.equal(sb.number .. "\nnot_found\n", out)
      assert.equal("", err)
    end
  end)

  it("ignores an unknown SIGMAMIND_LOG with one warning line, however many clients", function()
    local ok, out, err = child("verbose", WORK .. WORK)
    assert.is_true(ok, err)
    assert.equal((sb.number .. "\nnot_found\n"):rep(2), out)
    assert.equal('sigmamind: SIGMAMIND_LOG: unknown level "verbose" (expected debug, info or off): not logging\n',
                 err)
  end)

  it("logs from code with the log and log_file options; log = false silences SIGMAMIND_LOG", function()
    local sink = buffer()
    local c = sigmamind.new{ api_key = sb.key, base_url = sb.url, log = "info", log_file = sink }
    assert(c.calls:list{ size = 1 })
    c:close()
    assert.matches("^sigmamind: info: GET /v1/calls %-> 200 in %d+ ms %(attempt 1%)\n$", sink:text())
    local ok, _, err = child("debug", "sigmamind.new{ log = false }.calls:list{}")
    assert.is_true(ok, err)
    assert.equal("", err)
    for _, bad in ipairs{ "trace", true, 1 } do
      assert.has_error(function() sigmamind.new{ api_key = "k", base_url = sb.url, log = bad } end)
    end
    assert.has_error(function() sigmamind.new{ api_key = "k", base_url = sb.url, log_file = "err.txt" } end,
                     "sigmamind.new: log_file: expected a file (anything with a write method), got string")
  end)

  it("logs beside the user's on_event, which still gets every event", function()
    local sink, seen = buffer(), {}
    local c = sigmamind.new{ api_key = sb.key, base_url = sb.url, log = "debug", log_file = sink,
                             on_event = function(ev) seen[#seen + 1] = ev.type end }
    assert(c.calls:list{ size = 1 })
    c:close()
    assert.same({ "request", "response" }, seen)
    assert.equal(2, #lines_of(sink:text()))
  end)

  it("reports the first error of an on_event handler once per client, and the requests go on", function()
    local sink = buffer()
    local calls = 0
    local function boom() calls = calls + 1; error("handler bug " .. calls) end
    for _ = 1, 2 do
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.url, on_event = boom, log_file = sink }
      assert(c.calls:list{ size = 1 })
      assert(c.calls:list{ size = 1 })
      c:close()
    end
    assert.equal(8, calls)                                   -- request and response, twice, per client
    local lines = lines_of(sink:text())
    assert.equal(2, #lines, sink:text())
    assert.matches("^sigmamind: on_event handler failed: .*handler bug 1 %(further errors not shown%)$", lines[1])
    assert.matches("^sigmamind: on_event handler failed: .*handler bug 5 %(further errors not shown%)$", lines[2])
  end)

  it("reports an on_event error on stderr by default", function()
    local ok, out, err = child(nil, [[
      local c = sigmamind.new{ on_event = function() error("oops") end }
      print(#assert(c.calls:list{}).data)
    ]])
    assert.is_true(ok, err)
    assert.equal("0\n", out)
    assert.matches("^sigmamind: on_event handler failed: [^\n]*oops %(further errors not shown%)\n$", err)
  end)
end)
