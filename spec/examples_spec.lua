-- The examples run against a sandbox as a user would run them, so none of them can rot.
local sandbox = require "support.sandbox"

local function run(script, sb)
  local cmd = ("SIGMAMIND_BASE_URL=%s SIGMAMIND_API_KEY=%s SIGMAMIND_FROM=%s SIGMAMIND_AGENT=%s lua5.4 %s 2>&1")
    :format(sb.url, sb.key, sb.number, sb.agent, script)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

describe("examples", function()
  local sb
  setup(function() sb = sandbox.start{ speed = 50 } end)
  teardown(function() if sb then sb:stop() end end)

  it("quickstart places a call, waits for it and prints its transcript", function()
    local ok, out = run("examples/quickstart.lua", sb)
    assert.is_true(ok, out)
    assert.matches("placed call", out)
    assert.matches("finished: ended", out)
    assert.matches("John Doe", out)            -- the dynamic variable came back in the transcript
    assert.matches("recent calls:\n  call", out)
    assert.equal(1, sb:count("POST", "/v1/calls"))
  end)

  it("quickstart lists a call still under way with no duration, never a raw JSON null", function()
    -- a campaign dialing 500 contacts one at a time keeps one call live for minutes: the newest
    -- calls the quickstart lists include it
    local rows = { "phone" }
    for i = 1, 500 do rows[#rows + 1] = ("+1213800%04d"):format(i) end
    local status = sb:request("POST", "/v1/campaigns", { campaignName = "Live " .. os.time(),
      agentId = sb.agent, sipPhoneNumber = sb.number, concurrentCalls = 1,
      file = require("sigmamind").base64(table.concat(rows, "\n") .. "\n") })
    assert.equal(201, status)
    finally(function() sb:reset() end)
    local ok, out = run("examples/quickstart.lua", sb)
    assert.is_true(ok, out)
    local recent = assert(out:match("recent calls:\n(.*)$"), out)
    local live = recent:match("  call_%S+ +(%S+) +from %+14157774444, %-\n")      -- the campaign's live call
    assert.is_truthy(live == "in_progress" or live == "scheduled", recent)
    assert.matches("  call_%S+ +ended +from %+14157774444, %d+ s\n", recent)
    assert.not_matches("userdata", out)
    assert.not_matches("null", out)
  end)

  it("quickstart runs as its first lines and the README say: eval the sandbox's output, run it, stop", function()
    -- a shell of its own, with none of the variables set: only the eval can give them to lua5.4
    local script = 'cd "$ROOT" && unset SIGMAMIND_BASE_URL SIGMAMIND_API_KEY SIGMAMIND_SANDBOX_PREFIX && ' ..
      'eval "$(bin/sigmamind-sandbox --daemon --speed 50)" && mine=$SIGMAMIND_SANDBOX_PREFIX && ' ..
      'lua5.4 examples/quickstart.lua; rc=$?; bin/sigmamind-sandbox stop; echo "stop=$?"; ' ..
      'test -d "$mine" && echo "prefix left" || echo "prefix gone"; exit $rc'
    local p = assert(io.popen(("ROOT=%s sh -c %s 2>&1"):format(sandbox.shell_quote(sandbox.root()),
                                                              sandbox.shell_quote(script))))
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    assert.matches("placed call_", out)
    assert.matches("finished: ended", out)
    assert.matches("stop=0\nprefix gone\n$", out)
  end)

  it("campaign uploads a CSV, reports the bad row and watches the campaign complete", function()
    local ok, out = run("examples/campaign.lua", sb)
    assert.is_true(ok, out)
    assert.matches("will be skipped: Row 3: invalid phone number '%+1234'", out)
    assert.matches("server reported: Row 3: invalid phone number '%+1234'", out)
    assert.matches("status completed  100%% done  ended=2 not_connected=1", out)
    assert.equal(1, sb:count("POST", "/v1/campaigns"))
  end)
end)
