-- The SDK surface, at the core (sigmamind.core): JSON nulls and Ctrl-C.
local sandbox = require "support.sandbox"
local rawhttp = require "support.rawhttp"
local core = require "sigmamind.core"

local CALL = { fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445" }

describe("the SDK surface of the core", function()
  local sb, c

  setup(function()
    sb = sandbox.start{}
    c = core.new{ api_key = sb.key, base_url = sb.url, max_retries = 2 }
  end)
  teardown(function()
    if c then c:close() end
    if sb then sb:stop() end
  end)
  before_each(function() sb:reset() end)

  describe("JSON nulls", function()
    local BODY = '{"a":null,"b":[1,null,3],"c":{"d":null,"e":1},"f":"x"}'

    it("are left out of records unless the client keeps them", function()
      for _, keep in ipairs{ false, true } do
        local raw = rawhttp.start{ rawhttp.answer(200, BODY) }
        local rc = core.new{ api_key = "sk_test_x", base_url = raw.url, keep_nulls = keep or nil }
        local v = assert(rc:request("agents.get", { "agent_1" }))
        rc:close()
        raw.stop()
        if keep then
          assert.equal(core.null, v.a)
          assert.equal(core.null, v.c.d)
        else
          assert.is_nil(v.a)
          assert.is_nil(v.c.d)
          local keys = {}
          for k in pairs(v) do keys[#keys + 1] = k end
          table.sort(keys)
          assert.same({ "b", "c", "f" }, keys)
        end
        assert.same({ 1, core.null, 3 }, v.b)      -- an array keeps its places: no holes
        assert.equal(1, v.c.e)
      end
      assert.has_error(function() core.new{ api_key = "k", base_url = "http://127.0.0.1:1", keep_nulls = "yes" } end)
    end)

    it("are left out of the sandbox's records", function()
      local call = assert(c:request("calls.create", nil, CALL))
      assert.is_nil(call.transcript)                -- the sandbox sends "transcript":null
      local _, raw = sb:request("GET", "/v1/calls/" .. call.callId)
      assert.equal(sandbox.json.null, raw.transcript)
    end)

    it("are kept by core.json_decode, as cjson keeps them, unless it is told", function()
      local v = core.json_decode(BODY)
      assert.equal(core.null, v.a)
      v = core.json_decode(BODY, { keep_nulls = false })
      assert.is_nil(v.a)
      assert.is_nil(v.c.d)
      assert.same({ 1, core.null, 3 }, v.b)
      assert.equal(core.null, core.json_decode("null", { keep_nulls = false }))
      assert.same({}, core.json_decode('{"a":null}', { keep_nulls = false }))
      assert.same({}, core.json_decode('{"a":1,"a":null}', { keep_nulls = false }))   -- the last one given wins
      assert.same({ a = 1 }, core.json_decode('{"a":null,"a":1}', { keep_nulls = false }))
      local members = {}                            -- past the members the decoder gathers before a table
      for i = 1, 200 do members[i] = ('"k%d":%s'):format(i, i % 2 == 0 and "null" or tostring(i)) end
      local big = core.json_decode("{" .. table.concat(members, ",") .. "}", { keep_nulls = false })
      local n = 0
      for k, x in pairs(big) do n = n + 1; assert.equal("k" .. x, k) end
      assert.equal(100, n)
      assert.has_error(function() core.json_decode(BODY, { keepnulls = false }) end)
      assert.has_error(function() core.json_decode(BODY, { keep_nulls = 0 }) end)
      local cv = core.classify{ method = "GET", path = "/v1/agents", status = 200, body = BODY, attempt = 1,
                                elapsed = 0 }
      assert.is_nil(cv.a)
      cv = core.classify{ method = "GET", path = "/v1/agents", status = 200, body = BODY, attempt = 1, elapsed = 0,
                          keep_nulls = true }
      assert.equal(core.null, cv.a)
    end)
  end)
  describe("Ctrl-C", function()
    -- runs lua5.4 on a script in the background, with the module on its paths (and env's variables); returns
    -- its pid and a function telling whether it has exited, then its stdout, its stderr and its exit code
    local function background(script, env)
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir " .. dir))
      local f = assert(io.open(dir .. "/s.lua", "w"))
      f:write(script)
      f:close()
      local vars = ("SIGMAMIND_BASE_URL=%s SIGMAMIND_API_KEY=%s"):format(sb.url, sb.key)
      for k, v in pairs(env or {}) do vars = vars .. (" %s=%s"):format(k, v) end
      local cmd = ("%s sh -c 'echo $$ > %s/pid; exec lua5.4 %s/s.lua' >%s/out 2>%s/err; echo $? > %s/rc")
                  :format(vars, dir, dir, dir, dir, dir)
      assert(os.execute("(" .. cmd .. ") &"))
      local pid
      for _ = 1, 200 do
        local p = io.open(dir .. "/pid")
        pid = p and tonumber(p:read("l"))
        if p then p:close() end
        if pid then break end
        core.sleep(0.05)
      end
      assert(pid, "the script did not start")
      local function done()
        local r = io.open(dir .. "/rc")
        local rc = r and tonumber(r:read("l"))
        if r then r:close() end
        if not rc then return nil end
        local function slurp(name)
          local h = io.open(dir .. "/" .. name)
          local text = h:read("a")
          h:close()
          return text
        end
        local out, err = slurp("out"), slurp("err")
        os.execute("rm -rf " .. dir)
        return true, out, err, rc
      end
      return pid, done
    end

    -- interrupts the script once ready() says it is waiting; returns the seconds it then took to exit, its
    -- stdout, stderr and exit code
    local function interrupt(script, ready, env)
      local pid, done = background(script, env)
      local t0 = core.now()
      repeat core.sleep(0.025) until ready() or core.now() - t0 > 10
      assert.is_true(ready(), "the script never got to its wait")
      core.sleep(0.2)                               -- well inside it: each wait is 10 s or more
      t0 = core.now()
      assert(os.execute("kill -INT " .. pid))
      local finished, out, err, rc
      repeat
        core.sleep(0.02)
        finished, out, err, rc = done()
      until finished or core.now() - t0 > 40
      return core.now() - t0, out, err, rc
    end

    -- a create that the sandbox holds for 10 s
    local function slow_create()
      sb:arm{ method = "POST", path = "/v1/calls", fault = "slow=10000", count = 1 }
      return function() return sb:count("POST", "/v1/calls") > 0 end
    end

    it("ends a script's create within moments, as lua5.4 ends a script on Ctrl-C", function()
      local took, _, err, rc = interrupt([[
        local sigmamind = require "sigmamind"
        local client = sigmamind.new{ timeout = 30 }
        client.calls:create{ fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445" }
        print("not interrupted")
      ]], slow_create())
      assert.matches("interrupted", err)
      assert.is_true(rc ~= 0)
      assert.is_true(took < 5, ("took %.1f s (the slow answer comes after 10 s)"):format(took))
    end)

    it("returns an interrupted create as possibly sent before the host's handler has its say", function()
      -- a coroutine: lua5.4's handler raises "interrupted!" in the main thread, after the coroutine has seen
      -- what client:request returned
      local took, out, err = interrupt([[
        local core = require "sigmamind.core"
        local c = core.new{ api_key = os.getenv("SIGMAMIND_API_KEY"), base_url = os.getenv("SIGMAMIND_BASE_URL") }
        coroutine.wrap(function()
          local v, e = c:request("calls.create", nil, { fromPhoneNumber = "+14157774444",
                                                       toPhoneNumber = "+12137774445" })
          io.write(("value=%s kind=%s sent=%s retryable=%s attempts=%s\n%s\n"):format(tostring(v), e.kind,
            tostring(e.sent), tostring(e.retryable), tostring(e.attempts), tostring(e)))
          io.flush()
        end)()
        print("not interrupted")
      ]], slow_create())
      assert.matches("value=nil kind=interrupted sent=true retryable=false attempts=1", out, 1, true)
      assert.matches("POST /v1/calls: interrupted: interrupted %(SIGINT%) after the request went out", out)
      assert.is_nil(out:find("not interrupted", 1, true))
      assert.matches("interrupted!", err, 1, true)
      assert.is_true(took < 5, ("took %.1f s"):format(took))
    end)

    it("cuts short the wait before a retry, the wait of a transfer loop and core.sleep", function()
      local raw = rawhttp.start{ rawhttp.answer(503, '{"message":"later"}', { "Retry-After: 30" }) }
      local took, out, err = interrupt([[
        local core = require "sigmamind.core"
        local c = core.new{ api_key = "sk_test_x", base_url = os.getenv("RAW_URL") }
        coroutine.wrap(function()
          local _, e = c:request("agents.list")
          io.write(("kind=%s sent=%s %s\n"):format(e.kind, tostring(e.sent), e.message))
          io.flush()
        end)()
      ]], function() return #raw.requests() > 0 end, { RAW_URL = raw.url })
      raw.stop()
      assert.matches("kind=interrupted sent=true interrupted (SIGINT) while waiting to try again after: later", out,
                     1, true)
      assert.matches("interrupted!", err, 1, true)
      assert.is_true(took < 5, ("took %.1f s (the retry was due after 30 s)"):format(took))

      took, out, err = interrupt([[
        local core = require "sigmamind.core"
        local c = core.new{ api_key = os.getenv("SIGMAMIND_API_KEY"), base_url = os.getenv("SIGMAMIND_BASE_URL") }
        assert(c:_start("calls.create", nil, { fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445" }))
        c:_perform(3600)
        print("not interrupted")
      ]], slow_create())
      assert.matches("interrupted!", err, 1, true)
      assert.is_nil(out:find("not interrupted", 1, true))
      assert.is_true(took < 5, ("took %.1f s (the slow answer comes after 10 s)"):format(took))

      local mark = os.tmpname()
      took, out, err = interrupt(([[
        local core = require "sigmamind.core"
        io.open(%q, "w"):write("sleeping"):close()
        core.sleep(30)
        print("not interrupted")
      ]]):format(mark), function()
        local f = io.open(mark)
        local ready = f and f:read("a") == "sleeping"
        if f then f:close() end
        return ready
      end)
      os.remove(mark)
      assert.matches("interrupted!", err, 1, true)
      assert.is_nil(out:find("not interrupted", 1, true))
      assert.is_true(took < 5, ("took %.1f s (the sleep was 30 s)"):format(took))
    end)
  end)
end)
