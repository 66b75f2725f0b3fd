-- sigmamind.cli.run: the command-line tool driven in this process, as a function giving exit codes.
local sandbox = require "support.sandbox"
local cli = require "sigmamind.cli"
local json = sandbox.json

local buffer = require("support.util").buffer

describe("sigmamind.cli.run", function()
  local sb

  setup(function() sb = sandbox.start{ speed = 200 } end)
  teardown(function() if sb then sb:stop() end end)

  -- runs the CLI in this process: stdout, stderr, exit code
  local function run(argv, env)
    local out, err = buffer(), buffer()
    local code = cli.run(argv, { stdout = out, stderr = err,
                                 env = env or { SIGMAMIND_API_KEY = sb.key, SIGMAMIND_BASE_URL = sb.url } })
    return out:text(), err:text(), code
  end

  it("lists calls as JSON into the given stream and returns 0", function()
    local status, call = sb:request("POST", "/v1/calls", { fromPhoneNumber = sb.number, toPhoneNumber = "+12137775501",
                                                           agentId = sb.agent })
    assert.equal(201, status)
    local out, err, code = run{ "calls", "list", "--json" }
    assert.equal(0, code, err)
    assert.equal("", err)
    local ids = {}
    for _, c in ipairs(json.decode(out)) do ids[c.callId] = true end
    assert.is_true(ids[call.callId])
  end)

  it("logs each request and response on the run's stderr with --verbose, or as its SIGMAMIND_LOG says", function()
    local out, err, code = run{ "--verbose", "calls", "get", "call_missing" }
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^sigmamind: debug: GET /v1/calls/call_missing %(attempt 1%)\n" ..
                   "sigmamind: info: GET /v1/calls/call_missing %-> 404 not_found in %d+ ms %(attempt 1%)\n" ..
                   "sigmamind: info: GET /v1/calls/call_missing: gave up after 1 attempt in %d+ ms %(not_found%)\n" ..
                   "sigmamind: GET /v1/calls/call_missing: 404 ", err)
    assert.is_nil(err:find(sb.key, 1, true))
    out, err, code = run({ "calls", "list", "--json" },
                         { SIGMAMIND_API_KEY = sb.key, SIGMAMIND_BASE_URL = sb.url, SIGMAMIND_LOG = "info" })
    assert.equal(0, code, err)
    assert.matches("^%[.*%]\n$", out)
    assert.matches("^sigmamind: info: GET /v1/calls %-> 200 in %d+ ms %(attempt 1%)\n$", err)
    out, err, code = run{ "calls", "list", "--json" }
    assert.equal(0, code, err)
    assert.matches("^%[.*%]\n$", out)
    assert.equal("", err)
  end)

  it("returns the exit code of a failure instead of ending the process", function()
    local out, err, code = run({ "calls", "list" }, { SIGMAMIND_API_KEY = "sk_wrong", SIGMAMIND_BASE_URL = sb.url })
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^sigmamind: GET /v1/calls: 401", err)
    out, err, code = run{ "calls", "get" }
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches("missing argument 'id'", err, 1, true)
  end)

  it("answers --help on stdout with 0, and the process goes on", function()
    local out, err, code = run{ "calls", "list", "--help" }
    assert.equal(0, code, err)
    assert.matches("^Usage: sigmamind calls list ", out)
    assert.matches("--limit <limit>", out, 1, true)
  end)

  it("reads the environment it is given, not the process's", function()
    local before = sb:api_requests()
    local _, err, code = run({ "calls", "list" }, { SIGMAMIND_BASE_URL = sb.url })
    assert.equal(2, code)
    assert.matches("no API key", err, 1, true)
    assert.same(before, sb:api_requests())
  end)

  it("leaves no global behind", function()
    local before = {}
    for k in pairs(_G) do before[k] = true end
    run{ "numbers", "list", "--json" }
    for k in pairs(_G) do assert.is_true(before[k], "new global " .. tostring(k)) end
  end)
end)
