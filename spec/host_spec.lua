-- The C host (examples/host): a fixed-rate 60 ticks/s loop embedding Lua never stalls while 200
-- calls are placed and followed to their final states through client:poll(0); it reports its worst
-- tick against the frame budget and exits non-zero when calls fail.
local sandbox = require "support.sandbox"

describe("a C host loop", function()
  local sb, root
  setup(function()
    sb = sandbox.start{ speed = 200 }
    root = sandbox.root()
    assert(os.execute("make -s -C " .. root .. "/examples/host >/dev/null"), "building examples/host failed")
  end)
  teardown(function() if sb then sb:stop() end end)
  before_each(function() sb:reset() end)

  -- runs the host with `calls` calls from `number`: its output (stdout and stderr) and exit status
  local function run_host(calls, number)
    local cmd = string.format("SIGMAMIND_BASE_URL=%q SIGMAMIND_API_KEY=%q SIGMAMIND_SANDBOX_NUMBER=%q "
                              .. "SIGMAMIND_SANDBOX_AGENT=%q HOST_CALLS=%d %s/examples/host/host 2>&1",
                              sb.url, sb.key, number, sb.agent, calls, root)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    local _, _, code = p:close()
    print("\n  " .. out:gsub("\n$", ""):gsub("\n", "\n  "))
    return out, code
  end

  it("places and waits for 200 calls with no tick longer than 50 ms, and reports the frame budget", function()
    local out, code = run_host(200, sb.number)
    assert.equal(0, code, out)
    assert.equal("200/200", out:match("final=(%d+/%d+)"))
    assert.equal("0", out:match("failed=(%d+)"))
    local worst = tonumber(out:match("worst_tick_ms=([%d.]+)"))
    assert.is_true(worst <= 50, "worst tick " .. tostring(worst) .. " ms")
    assert.equal("16.667", out:match("frame_budget_ms=([%d.]+)"))
    assert.truthy(out:match("over_budget_ticks=%d+"))
    local share = tonumber(out:match("worst_tick_of_budget=(%d+)%%"))
    assert.is_true(math.abs(share - worst / (1000 / 60) * 100) <= 1, "share of the budget " .. tostring(share))
    assert.is_true(tonumber(out:match("ticks=(%d+)")) > 1)
    assert.equal(200, sb:count("POST", "/v1/calls"))
  end)

  it("exits non-zero when its calls fail, and says which and why", function()
    -- a caller the account does not have: every create is refused
    local out, code = run_host(3, "+19995550123")
    assert.equal(1, code, out)
    assert.equal("0/3", out:match("final=(%d+/%d+)"))
    assert.equal("3", out:match("failed=(%d+)"))
    for i = 1, 3 do assert.truthy(out:find("host: call " .. i .. ": create: ", 1, true), out) end
  end)
end)
