-- sigmamind doctor: a read-only check of a server and an account, against the sandbox and against a
-- raw server answering in shapes the client does not expect.
local sandbox = require "support.sandbox"
local rawhttp = require "support.rawhttp"
local cli = require "sigmamind.cli"
local doctor = require "sigmamind.doctor"
local json = sandbox.json

local buffer = require("support.util").buffer

-- runs the CLI in this process: stdout, stderr, exit code
local function run(argv, env)
  local out, err = buffer(), buffer()
  local code = cli.run(argv, { stdout = out, stderr = err, env = env })
  return out:text(), err:text(), code
end

-- the checks of a --json report by name
local function by_name(report)
  local checks = {}
  for _, c in ipairs(report.checks) do checks[c.name] = c end
  return checks
end

local LISTS = { "calls", "campaigns", "phone_numbers", "webhooks", "agents" }

describe("sigmamind doctor", function()
  local sb

  setup(function() sb = sandbox.start{ speed = 200 } end)
  teardown(function() if sb then sb:stop() end end)
  before_each(function() sb:reset() end)

  local function env(key) return { SIGMAMIND_API_KEY = key or sb.key, SIGMAMIND_BASE_URL = sb.url } end

  it("finds nothing failing on the sandbox, exits 0, and only reads", function()
    local out, err, code = run({ "doctor", "--json" }, env())
    assert.equal(0, code, err)
    local report = json.decode(out)
    assert.is_true(report.ok)
    assert.equal(sb.url, report.base_url)
    local checks = by_name(report)
    for _, name in ipairs{ "tls", "key", "clock", "request id", "rate limit", "ready to call",
                           table.unpack(LISTS) } do
      assert.is_table(checks[name], name)
    end
    for _, c in ipairs(report.checks) do
      assert.is_true(c.status == "ok" or c.status == "warn", c.name .. ": " .. c.status .. " " .. c.detail)
    end
    assert.equal("ok", checks.key.status)
    assert.equal("ok", checks.clock.status)
    for _, name in ipairs(LISTS) do assert.equal("ok", checks[name].status, checks[name].detail) end
    assert.equal("ok", checks["ready to call"].status)
    assert.matches(sb.number, checks["ready to call"].detail, 1, true)
    assert.matches(sb.agent, checks["ready to call"].detail, 1, true)
    assert.is_nil(report.test_call_id)
    assert.equal(0, sb:count("POST", "/v1/calls"))
    for route in pairs(sb:api_requests()) do assert.matches("^GET ", route) end
  end)

  it("prints one line a check, status first", function()
    local out, err, code = run({ "doctor" }, env())
    assert.equal(0, code, err)
    local n = 0
    for line in out:gmatch("[^\n]+") do
      n = n + 1
      assert.matches("^%a+ +[%a_ ]+  .+$", line)
      assert.truthy(line:match("^ok ") or line:match("^warn "), line)
    end
    assert.equal(11, n)
    assert.matches("\nok    key +accepted", out)
  end)

  it("fails on a wrong key, saying the key is refused, and exits 1", function()
    local out, err, code = run({ "doctor", "--json" }, env("sk_wrong"))
    assert.equal(1, code, err)
    local report = json.decode(out)
    assert.is_false(report.ok)
    local key = by_name(report).key
    assert.equal("fail", key.status)
    assert.matches("the key is refused", key.detail, 1, true)
    assert.matches("401", key.detail, 1, true)
    local text, _, again = run({ "doctor" }, env("sk_wrong"))
    assert.equal(1, again)
    assert.matches("\nfail  key  the key is refused", text)
  end)

  it("places exactly one call with --place-test-call, and reports its callId", function()
    local out, err, code = run({ "doctor", "--json", "--place-test-call", "+12137775501" }, env())
    assert.equal(0, code, err)
    local report = json.decode(out)
    assert.is_string(report.test_call_id)
    assert.equal(1, sb:count("POST", "/v1/calls"))
    local status, call = sb:request("GET", "/v1/calls/" .. report.test_call_id)
    assert.equal(200, status)
    assert.equal(sb.number, call.phoneNumber.sipPhoneNumber)
    assert.equal(sb.agent, call.agent.agentId)
    local check = by_name(report)["test call"]
    assert.equal("ok", check.status)
    assert.matches(report.test_call_id, check.detail, 1, true)
    assert.matches("to +12137775501", check.detail, 1, true)
  end)

  it("refuses a --place-test-call that is not E.164 before sending anything", function()
    local out, err, code = run({ "doctor", "--place-test-call", "12345" }, env())
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches("--place-test-call expects an E.164 number", err, 1, true)
    assert.same({}, sb:api_requests())
  end)

  it("refuses a base URL that is not one as a usage error, with a JSON error object", function()
    local out, err, code = run({ "--json", "doctor" }, { SIGMAMIND_API_KEY = "k", SIGMAMIND_BASE_URL = "foo" })
    assert.equal(2, code)
    assert.equal("", out)
    local doc = json.decode(err:match("([^\n]+)\n$"))
    assert.equal("usage", doc.error.kind)
    assert.matches("^base_url: expected an http:// or https:// URL", doc.error.message)
  end)

  it("warns when the server's clock is more than 5 s from ours", function()
    local report = doctor.run{ api_key = sb.key, base_url = sb.url, now = function() return os.time() - 60 end }
    local clock = by_name(report).clock
    assert.equal("warn", clock.status)
    assert.matches("+60 s", clock.detail, 1, true)
    assert.matches("reconciliation", clock.detail, 1, true)
    assert.is_true(report.ok)
  end)

  it("raises on an unknown option, blaming the caller", function()
    assert.error_matches(function() doctor.run{ api_key = "k", base_urll = "x" } end,
                         "unknown option 'base_urll'", 1, true)
  end)

  it("fails when nothing answers at the URL, exit 1", function()
    local out, err, code = run({ "doctor", "--json" }, { SIGMAMIND_API_KEY = "k",
                                                         SIGMAMIND_BASE_URL = "http://127.0.0.1:1" })
    assert.equal(1, code, err)
    local checks = by_name(json.decode(out))
    assert.equal("fail", checks.server.status)
    assert.matches("cannot reach", checks.server.detail, 1, true)
  end)

  it("reports fails and warns, without crashing, for answers in unexpected shapes", function()
    local answer = rawhttp.answer
    local raw = rawhttp.start{
      answer(200, "5"),                                                      -- agents: a number
      answer(200, '{"data":5}'),                                             -- calls
      answer(200, '{"data":[{"campaignId":"c1"}],"hasNext":false}'),         -- campaigns: no totals
      -- numbers: the number as a number, hasNext a string
      answer(200, '{"data":[{"sipPhoneNumber":14155550100,"outboundAgentId":"a"}],"totalCount":1,' ..
                  '"hasNext":"no"}'),
      answer(200, '{"data":[{"webhookId":7}],"totalCount":1,"hasNext":false}'),  -- webhooks: a numeric id
    }
    local ok, out, err, code = pcall(run, { "doctor", "--json" }, { SIGMAMIND_API_KEY = "k",
                                                                   SIGMAMIND_BASE_URL = raw.url })
    raw.stop()
    assert.is_true(ok, tostring(out))
    assert.equal(1, code, err)
    assert.is_nil(err:find("traceback", 1, true))
    local report = json.decode(out)
    assert.is_false(report.ok)
    local checks = by_name(report)
    assert.equal("ok", checks.key.status)
    assert.equal("warn", checks.clock.status)
    assert.matches("no Date header", checks.clock.detail, 1, true)
    assert.equal("fail", checks.agents.status)
    assert.matches("got a number 5", checks.agents.detail, 1, true)
    assert.equal("fail", checks.calls.status)
    assert.matches("data: expected an array", checks.calls.detail, 1, true)
    assert.equal("warn", checks.campaigns.status)
    assert.matches("no totalCount", checks.campaigns.detail, 1, true)
    assert.equal("fail", checks.phone_numbers.status)
    assert.matches("sipPhoneNumber: expected an E.164 number", checks.phone_numbers.detail, 1, true)
    assert.matches("hasNext: expected a boolean", checks.phone_numbers.detail, 1, true)
    assert.equal("fail", checks.webhooks.status)
    assert.matches("webhookId: expected a string, got a number 7", checks.webhooks.detail, 1, true)
    assert.equal("warn", checks["ready to call"].status)
  end)

  it("says so when a body is not JSON at all", function()
    local raw = rawhttp.start{ rawhttp.answer(200, "<html>oops</html>") }
    local ok, out, err, code = pcall(run, { "doctor" }, { SIGMAMIND_API_KEY = "k", SIGMAMIND_BASE_URL = raw.url })
    raw.stop()
    assert.is_true(ok, tostring(out))
    assert.equal(1, code, err)
    assert.matches("\nfail ", out)
    assert.is_nil((out .. err):find("traceback", 1, true))
  end)
end)

describe("sigmamind doctor over TLS", function()
  local sb, dir

  setup(function()
    sb = sandbox.start_tls()
    dir = sb.tls_dir
  end)
  teardown(function() if sb then sb:stop() end end)

  it("reports a certificate that does not verify as a TLS failure", function()
    local out, err, code = run({ "doctor", "--json" }, { SIGMAMIND_API_KEY = sb.key, SIGMAMIND_BASE_URL = sb.https_url })
    assert.equal(1, code, err)
    local tls = by_name(json.decode(out)).tls
    assert.equal("fail", tls.status)
    assert.matches("^TLS failed: ", tls.detail)
    assert.same({}, sb:api_requests())
  end)

  it("says the certificate verifies when it does", function()
    local report = doctor.run{ api_key = sb.key, base_url = sb.https_url, ca_file = dir .. "/cert.pem" }
    local tls = by_name(report).tls
    assert.equal("ok", tls.status)
    assert.matches("verifies", tls.detail, 1, true)
    assert.equal("ok", by_name(report).key.status)
  end)
end)
