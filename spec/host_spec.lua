-- The C host (examples/host): a fixed-rate 60 ticks/s loop embedding Lua never stalls while 200
-- calls are placed and followed to their final states through client:poll(0).
local sandbox = require "support.sandbox"

describe("a C host loop", function()
  local sb
  setup(function() sb = sandbox.start{ speed = 200 } end)
  teardown(function() if sb then sb:stop() end end)

  it("places and waits for 200 calls with no tick longer than 50 ms", function()
    local root = sandbox.root()
    assert(os.execute("make -s -C " .. root .. "/examples/host >/dev/null"), "building examples/host failed")
    local cmd = string.format("SIGMAMIND_BASE_URL=%q SIGMAMIND_API_KEY=%q SIGMAMIND_SANDBOX_NUMBER=%q "
                              .. "SIGMAMIND_SANDBOX_AGENT=%q HOST_CALLS=200 %s/examples/host/host 2>&1",
                              sb.url, sb.key, sb.number, sb.agent, root)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    local ok = p:close()
    print("\n  " .. out:gsub("\n$", ""):gsub("\n", "\n  "))
    assert.is_true(ok, out)
    assert.equal("200/200", out:match("final=(%d+/%d+)"))
    local worst = tonumber(out:match("worst_tick_ms=([%d.]+)"))
    assert.is_true(worst <= 50, "worst tick " .. tostring(worst) .. " ms")
    assert.is_true(tonumber(out:match("ticks=(%d+)")) > 1)
    assert.equal(200, sb:count("POST", "/v1/calls"))
  end)
end)
