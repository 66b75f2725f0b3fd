-- The concurrent path under attack (multi.c's queue, socket loop and budgets; task.lua's ready
-- queue): a task polling its own client, a transfer cancelled, closed or collected in each state
-- (queued, in libcurl, finished and unreported, waiting for a retry), TLS with more transfers than
-- go into libcurl at once, and a socket callback out of memory.
local sandbox = require "support.sandbox"
local util = require "support.util"
local sigmamind = require "sigmamind"
local core = require "sigmamind.core"

describe("the concurrent path under attack", function()
  local sb, dir

  setup(function()
    sb = sandbox.start_tls{ speed = 100 }
    dir = sb.tls_dir
  end)
  teardown(function() if sb then sb:stop() end end)
  before_each(function() sb:reset() end)

  -- drives the core's transfers until none is left; returns { id = record } (raising on a record
  -- given twice) and how many came
  local function drain(c, got)
    got = got or {}
    local n, t0 = 0, core.now()
    while core.now() - t0 < 20 do
      local recs = c:_perform(0.5)
      for _, r in ipairs(recs or {}) do
        assert.is_nil(got[r[1]], "transfer " .. r[1] .. " reported twice")
        got[r[1]] = r
        n = n + 1
      end
      local active, done = c:_pending()
      if active + done == 0 then return got, n end
    end
    error("transfers left after 20 s: " .. table.concat({ c:_pending() }, ", "))
  end

  it("lets a task poll its own client (an inner pass) without losing its place in the ready queue", function()
    local c = sigmamind.new{ api_key = sb.key, base_url = sb.url }
    local tasks = {}
    for i = 1, 5 do tasks[i] = c:spawn(function() return c.agents:list{} end) end
    local inner = c:spawn(function() c:poll(0); return "polled" end)
    for i = 6, 10 do tasks[i] = c:spawn(function() return c.agents:list{} end) end
    c:run()
    assert.same({ "polled" }, { inner:join() })
    for i = 1, 10 do assert.truthy(tasks[i]:join()) end
    c:close()
  end)

  it("cancels transfers queued (first, middle, last), in libcurl and finished, each once", function()
    local c = core.new{ api_key = sb.key, base_url = sb.url }
    local ids = {}
    for i = 1, 100 do ids[i] = assert(c:_start("agents.list")) end
    assert.same({ 100, 0 }, { c:_pending() })                  -- all queued: none is in libcurl yet
    c:_cancel(ids[1]); c:_cancel(ids[50]); c:_cancel(ids[100])
    assert.same({ 97, 0 }, { c:_pending() })
    local got, n = drain(c)
    assert.equal(97, n)
    assert.is_nil(got[ids[1]] or got[ids[50]] or got[ids[100]])

    -- 64 go into libcurl at the first perform, 36 wait; every third is cancelled wherever it is
    ids = {}
    for i = 1, 100 do ids[i] = assert(c:_start("agents.list")) end
    got = {}
    for _, r in ipairs(c:_perform(0) or {}) do got[r[1]] = r end
    local cancelled = 0
    for i = 1, 100, 3 do
      if not got[ids[i]] then c:_cancel(ids[i]); cancelled = cancelled + 1 end
    end
    local before = 0
    for _ in pairs(got) do before = before + 1 end
    local _, n2 = drain(c, got)
    assert.equal(100, before + n2 + cancelled)

    c:close()
    -- finished but not yet reported: transfers that time out together finish in one call to libcurl,
    -- and an on_event slow to take each response makes a perform report one of them and keep the
    -- rest; then every transfer not yet reported is cancelled, the finished ones from last to first
    c = core.new{ api_key = sb.key, base_url = sb.url,
                  on_event = function(ev) if ev.type == "response" then core.sleep(0.003) end end }
    sb:arm{ method = "GET", path = "/v1/agents", fault = "slow=5000", count = 20 }
    ids = {}
    local seen = sb:count("GET", "/v1/agents")
    for i = 1, 20 do ids[i] = assert(c:_start("agents.list", nil, nil, { timeout = 1, max_retries = 0 })) end
    got = {}
    local most = 0
    local function take(recs)
      for _, r in ipairs(recs or {}) do
        assert.is_nil(got[r[1]], "reported twice")
        got[r[1]] = r
      end
      local _, done = c:_pending()
      most = math.max(most, done)
    end
    local t0 = core.now()
    repeat take(c:_perform(0.01)) until sb:count("GET", "/v1/agents") >= seen + 20 or core.now() - t0 > 10
    core.sleep(1.2)                                            -- each has timed out, none noticed yet
    take(c:_perform(0))
    assert.is_true(most > 1, "never more than one finished and unreported")
    for i = 20, 1, -1 do if not got[ids[i]] then c:_cancel(ids[i]) end end
    assert.same({ 0, 0 }, { c:_pending() })
    assert.is_nil(c:_perform(0))
    -- the queues still work
    for i = 1, 5 do ids[i] = assert(c:_start("agents.list")) end
    local _, n3 = drain(c)
    assert.equal(5, n3)
    c:close()
  end)

  it("closes and collects clients holding transfers in every state", function()
    local function loaded(c)
      sb:arm{ method = "GET", path = "/v1/agents", fault = "503", count = 2 }
      sb:arm{ method = "POST", path = "/v1/calls", fault = "slow=2000", count = 100 }
      local waiting = assert(c:_start("agents.list"))          -- answered 503: waits for its retry
      local recs
      local t0 = core.now()
      repeat recs = c:_perform(0.2) until recs or core.now() - t0 > 5
      assert.equal(waiting, recs[1][1])
      assert.equal("retry", recs[1][2])
      for _ = 1, 80 do                                         -- 64 into libcurl, the rest queued
        assert(c:_start("calls.create", nil, { fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445" }))
      end
      c:_perform(0)
      c:_perform(0.05)
      local active = c:_pending()
      assert.equal(80, active)
    end
    local c = core.new{ api_key = sb.key, base_url = sb.url }
    loaded(c)
    c:close()
    assert.has_error(function() c:_perform(0) end)
    do loaded(core.new{ api_key = sb.key, base_url = sb.url }) end
    collectgarbage(); collectgarbage()
    -- and through tasks: a client dropped with tasks queued, in flight and sleeping before a retry
    do
      local c2 = sigmamind.new{ api_key = sb.key, base_url = sb.url }
      sb:arm{ method = "GET", path = "/v1/agents", fault = "429", count = 1 }
      c2:spawn(function() return c2.agents:list{} end)
      for _ = 1, 100 do c2:spawn(function() return c2.agents:list{} end) end
      c2:poll(0); c2:poll(0.05)
    end
    collectgarbage(); collectgarbage()
  end)

  it("completes 150 tasks over TLS, large answers among them, on at most 64 connections", function()
    local c = sigmamind.new{ api_key = sb.key, base_url = sb.https_url, ca_file = dir .. "/cert.pem" }
    local tasks = {}
    for i = 1, 150 do
      tasks[i] = c:spawn(function()
        return c.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445", agentId = sb.agent,
                               dynamicVariables = { row = tostring(i) } }
      end)
    end
    c:run()
    for i = 1, 150 do
      local call, err = tasks[i]:join()
      assert.is_nil(err)
      assert.equal(tostring(i), call.dynamicVariables.row)
    end
    assert.is_true(sb:state().connections <= 64, "connections: " .. sb:state().connections)
    -- answers of 300 KB: TLS records libcurl may hold read but undelivered while the socket is quiet
    sb:arm{ method = "GET", path = "/v1/agents", fault = "big=300000", count = 100 }
    for i = 1, 100 do tasks[i] = c:spawn(function() return c.agents:list{} end) end
    c:run()
    for i = 1, 100 do
      local _, err = tasks[i]:join()
      -- the whole body came (it is not a page of agents), not a timeout after a stall
      assert.equal("decode", err.kind)
    end
    c:close()
  end)

  -- libcurl marks a multi handle dead when its socket callback fails (ours, when it cannot grow
  -- its array of sockets): every transfer in it then stalls for ever. A shim makes that one
  -- allocation fail, in a child (not under ASan, whose allocator the shim would stand in front of).
  local asan = os.getenv("ASAN_OPTIONS") ~= nil
  local pending_or_it = asan and pending or it
  pending_or_it("keeps a client working after its socket callback ran out of memory once", function()
    local shim = dir .. "/shim.so"
    util.write_file(dir .. "/shim.c", [[
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
static int failed;
void *realloc(void *p, size_t n) {
  static void *(*real)(void *, size_t);
  if (!real) real = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
  if (!failed && p == NULL && n == 16 * 8) {        /* the socket array's first 16 struct pollfd */
    Dl_info info;
    if (dladdr(__builtin_return_address(0), &info) && info.dli_fname && strstr(info.dli_fname, "sigmamind/core.so")) {
      failed = 1;
      return NULL;
    }
  }
  return real(p, n);
}
]])
    util.sh(("cc -shared -fPIC -O1 -o %s %s/shim.c -ldl"):format(shim, dir))
    local script = util.write_file(dir .. "/oom.lua", ([[
local sigmamind = require "sigmamind"
local c = sigmamind.new{ api_key = %q, base_url = %q, max_retries = 0, timeout = 5 }
for i = 1, 3 do
  local t = c:spawn(function() return c.agents:list{} end)
  local ok, err = pcall(c.run, c)
  local v, terr = t:join()
  io.write(i, " ", tostring(ok), " ", v and "ok" or tostring(terr and terr.message or err), "\n")
end
]]):format(sb.key, sb.url))
    local out = util.capture(("LD_PRELOAD=%s timeout 30 lua5.4 %s 2>&1"):format(util.shell_quote(shim),
                                                                               util.shell_quote(script)))
    assert.matches("^1 true out of memory\n2 true ok\n3 true ok\n$", out)
  end)
end)
