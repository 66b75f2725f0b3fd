-- No double dial after an ambiguous failure: calls:create reconciles before anyone redials.
local sandbox = require "support.sandbox"
local sigmamind = require "sigmamind"

describe("calls:create after an ambiguous failure", function()
  local sb, c

  local function intent(vars)
    return { fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445", agentId = sb.agent,
             dynamicVariables = vars }
  end

  setup(function()
    sb = sandbox.start{ speed = 50 }
    c = sigmamind.new{ api_key = sb.key, base_url = sb.url, max_retries = 2, timeout = 5 }
  end)
  teardown(function() if c then c:close() end; if sb then sb:stop() end end)
  before_each(function() sb:reset() end)

  it("finds the call whose answer was lost and returns it marked reconciled, with one POST and one call", function()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local call, err = c.calls:create(intent{ customer_name = "Ada", order = "A-1" })
    assert.is_nil(err)
    assert.is_true(call.reconciled)
    assert.equal("Ada", call.dynamicVariables.customer_name)
    assert.equal(1, sb:count("POST", "/v1/calls"))
    assert.equal(1, sb:state().calls)
    local page = assert(c.calls:list{})
    assert.equal(call.callId, page.data[1].callId)
  end)

  it("finds it when the server was still handling the request as the client timed out", function()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "slow=1200", count = 1 }
    local quick = sigmamind.new{ api_key = sb.key, base_url = sb.url, timeout = 0.4 }
    local call, err = quick.calls:create(intent{ customer_name = "Grace" })
    quick:close()
    assert.is_nil(err)
    assert.is_true(call.reconciled)
    assert.equal(1, sb:count("POST", "/v1/calls"))
    assert.equal(1, sb:state().calls)
  end)

  it("returns the error, saying so, when the server never made the call", function()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "500", count = 1 }
    local call, err = c.calls:create(intent{ customer_name = "Ada" })
    assert.is_nil(call)
    assert.equal("server", err.kind)
    assert.is_true(err.sent)
    assert.matches("no call matching", err.reconcile)
    assert.equal(1, sb:count("POST", "/v1/calls"))
    assert.equal(0, sb:state().calls)
  end)

  it("takes no call this client has already returned", function()
    local first = assert(c.calls:create(intent{ customer_name = "Same" }))
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local second = assert(c.calls:create(intent{ customer_name = "Same" }))
    assert.is_true(second.reconciled)
    assert.are_not.equal(first.callId, second.callId)
    assert.equal(2, sb:state().calls)
  end)

  it("refuses to guess between several calls that match", function()
    local other = sigmamind.new{ api_key = sb.key, base_url = sb.url }
    assert(other.calls:create(intent{ customer_name = "Twin" }))   -- made elsewhere: not known to c
    other:close()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local call, err = c.calls:create(intent{ customer_name = "Twin" })
    assert.is_nil(call)
    assert.equal("network", err.kind)
    assert.matches("2 calls match", err.reconcile)
    assert.equal(2, sb:state().calls)
  end)

  it("hands no call to the wrong one of two look-alike creates of one client, in tasks or one after another", function()
    -- two tasks, the same caller, agent and variables, different people: the first POST is refused
    -- with 500 (nothing made), the second's answer is lost (its call made). The call must not go
    -- to the first person's row.
    sb:arm{ method = "POST", path = "/v1/calls", fault = "500", count = 1 }
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local people = { "+12137770002", "+12137770004" }
    local results = sigmamind.map(c, people, function(to)
      local call, err = c.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = to, agentId = sb.agent }
      return { to = to, call = call, err = err }
    end, { concurrency = 2 })
    assert.equal(2, sb:count("POST", "/v1/calls"))
    assert.equal(1, sb:state().calls)
    sb:advance(3600)
    local taken = 0
    for _, r in ipairs(results) do
      local res = r[1]
      if res.call then
        taken = taken + 1
        local ended = assert(c.calls:get(res.call.callId))
        assert.matches("calling " .. res.to, ended.transcript, 1, true)    -- the sandbox says whom it rang
      else
        assert.is_true(res.err.sent)
        assert.is_string(res.err.reconcile)
      end
    end
    assert.is_true(taken <= 1)
    -- one after another, the first seen to have made nothing (its lookups found no look-alike) does
    -- not stand in the way of the second (a fresh client: c's two creates above stay unresolved,
    -- possible owners of look-alikes for minutes)
    sb:reset()
    local fresh = sigmamind.new{ api_key = sb.key, base_url = sb.url }
    sb:arm{ method = "POST", path = "/v1/calls", fault = "500", count = 1 }
    local first, ferr = fresh.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = people[1], agentId = sb.agent }
    assert.is_nil(first)
    assert.matches("no call matching", ferr.reconcile)
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local second, serr = fresh.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = people[2],
                                             agentId = sb.agent }
    fresh:close()
    assert(second, tostring(serr) .. " / " .. tostring(serr and serr.reconcile))
    assert.is_true(second.reconciled)
  end)

  it("takes no call while an earlier look-alike create of this client is unresolved", function()
    -- with reconciliation off, an ambiguous failure stays unresolved: its call may exist, looking
    -- like the next one
    local off = sigmamind.new{ api_key = sb.key, base_url = sb.url, reconcile = false }
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local _, err1 = off.calls:create(intent{ who = "twin" })
    assert.equal("network", err1.kind)
    off._reconcile = nil                                          -- on again, for the next create
    sb:arm{ method = "POST", path = "/v1/calls", fault = "500", count = 1 }
    local call, err2 = off.calls:create(intent{ who = "twin" })
    off:close()
    assert.is_nil(call, "the first create's call was taken for the second")
    assert.matches("another create of this client", err2.reconcile, 1, true)
    assert.equal(1, sb:state().calls)
  end)

  it("never matches a call with other variables", function()
    local other = sigmamind.new{ api_key = sb.key, base_url = sb.url }
    assert(other.calls:create(intent{ customer_name = "Someone else" }))
    other:close()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "500", count = 1 }
    local call, err = c.calls:create(intent{ customer_name = "Ada" })
    assert.is_nil(call)
    assert.matches("no call matching", err.reconcile)
  end)

  it("takes no look-alike call made before the attempt, by the server's clock", function()
    -- another process's call, same caller, agent and variables, a minute before (the server's clock
    -- moved on): within the skew it must allow, this host's clock could not tell it from this one's
    local other = sigmamind.new{ api_key = sb.key, base_url = sb.url }
    local early = assert(other.calls:create(intent{ order = "same" }))
    other:close()
    sb:advance(60)
    sb:arm{ method = "POST", path = "/v1/calls", fault = "500", count = 1 }
    local call, err = c.calls:create(intent{ order = "same" })
    assert.is_nil(call, call and ("took " .. tostring(call.callId) .. ", made before: " .. early.callId))
    assert.equal("server", err.kind)
    assert.matches("no call matching", err.reconcile)
    assert.equal(1, sb:state().calls)
  end)

  it("finds the lost call when the server's clock is an hour ahead of this host's", function()
    sb:advance(3600)
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local call, err = c.calls:create(intent{ customer_name = "Ahead" })
    assert.is_nil(err, err and err.reconcile)
    assert.is_true(call.reconciled)
    assert.equal(1, sb:state().calls)
    local off = c._c:info().server_clock_offset
    assert.is_true(off > 3597 and off < 3601, tostring(off))
  end)

  it("starts its window when the create began, however long the give_up handler took", function()
    -- the window starts with the create, not at "now minus the attempts' time" after on_event
    local slow = sigmamind.new{ api_key = sb.key, base_url = sb.url, max_retries = 0, on_event = function(ev)
      if ev.type == "give_up" then require("sigmamind.core").sleep(2) end
    end }
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local call, err = slow.calls:create(intent{ customer_name = "Patient" })
    slow:close()
    assert.is_nil(err, err and err.reconcile)
    assert.is_true(call.reconciled)
    assert.equal(1, sb:state().calls)
  end)

  it("takes no call when the server's Date header is behind the clock it dates calls by", function()
    -- a look-alike a minute old, then a Date header a minute slow (a misset front end): on that
    -- clock the look-alike seems this request's call, and the real one (answer lost) in the future
    local other = sigmamind.new{ api_key = sb.key, base_url = sb.url }
    local early = assert(other.calls:create(intent{ order = "skewed" }))
    other:close()
    sb:advance(60)
    local status = sb:request("POST", "/_sandbox/clock", { dateSkew = -60 })
    assert.equal(200, status)
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local call, err = c.calls:create(intent{ order = "skewed" })
    assert.is_nil(call, call and ("took " .. tostring(call.callId) .. "; the look-alike was " .. early.callId))
    assert.equal("network", err.kind)
    assert.matches("clocks .* disagree", err.reconcile)
    assert.equal(2, sb:state().calls)
  end)

  it("reads the server's clock from the last response only, from one Date in GMT and no Age", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local function http_date(t) return os.date("!%a, %d %b %Y %H:%M:%S GMT", t) end
    local body = '{"data":[],"page":0,"size":100,"totalCounts":0,"totalPages":0,"hasNext":false}'
    local function response(headers)
      return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #body .. "\r\n" ..
             table.concat(headers, "") .. "\r\n" .. body
    end
    local now = os.time()
    local script = {   -- the Date headers of each answer, and the offset the client must report after it
      { { "Date: " .. http_date(now + 3600) .. "\r\n" }, 3600 },
      { {}, nil },                                                          -- none: unknown again
      { { "Date: " .. http_date(now + 7200) .. "\r\n" }, 7200 },
      { { "Date: " .. http_date(now + 3600) .. "\r\n", "Date: " .. http_date(now) .. "\r\n" }, nil },  -- two
      { { "Date: " .. http_date(now + 3600) .. "\r\n", "Age: 30\r\n" }, nil },  -- from a cache
      { { "Date: " .. os.date("!%a, %d %b %Y %H:%M:%S +0000", now + 3600) .. "\r\n" }, nil },  -- not GMT
      { { "Date: " .. http_date(now - 600) .. "\r\n" }, -600 },                 -- through a task (multi)
    }
    local files = {}
    for i, step in ipairs(script) do
      files[i] = dir .. "/r" .. i
      local f = assert(io.open(files[i], "wb"))
      f:write(response(step[1]))
      f:close()
    end
    local root = sandbox.root()
    assert(os.execute(("lua5.4 %s/spec/support/rawhttp.lua %s/port %s >%s/log 2>&1 &"):format(root, dir,
      table.concat(files, " "), dir)))
    local port
    for _ = 1, 100 do
      local f = io.open(dir .. "/port")
      if f then port = tonumber(f:read("l")); f:close(); break end
      require("sigmamind.core").sleep(0.05)
    end
    assert(port, "the raw server did not start")
    local raw = sigmamind.new{ api_key = "sk_test_raw", base_url = "http://127.0.0.1:" .. port, max_retries = 0 }
    for i, step in ipairs(script) do
      local page, err
      if i < #script then
        page, err = raw.agents:list()
      else
        local t = raw:spawn(function() return raw.agents:list() end)
        raw:run()
        page, err = t:join()
      end
      assert(page, tostring(err))
      local off = raw._c:info().server_clock_offset
      if step[2] == nil then
        assert.is_nil(off, "answer " .. i .. ": " .. tostring(off))
      else
        assert.is_true(type(off) == "number" and off > step[2] - 2 and off < step[2] + 1,
                       "answer " .. i .. ": " .. tostring(off) .. ", expected about " .. step[2])
      end
    end
    raw:close()
    os.execute("rm -rf " .. dir)
  end)

  it("finds the call when a variable is a whole-valued float, which the server answers as an integer", function()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local call, err = c.calls:create(intent{ customer_name = "Float", amount = 50.0, zero = -0.0 })
    assert.is_nil(err, tostring(err) .. " / " .. tostring(err and err.reconcile))
    assert.is_true(call.reconciled)
    assert.equal(1, sb:state().calls)
  end)

  it("compares variables as JSON numbers: by value, an integer and a float alike when equal", function()
    local reconcile = require "sigmamind.reconcile"
    local core = require "sigmamind.core"
    local sent = { a = 50.0, b = -0.0, c = 2 ^ 53, d = 0.1, e = 1e300, f = "50", g = true }
    local echoed = core.json_decode(core.json_encode(sent))   -- a server that keeps numbers exactly
    assert.equal("integer", math.type(echoed.a))
    assert.is_true(reconcile.same_vars(sent, echoed))
    assert.is_true(reconcile.same_vars({ a = 50.0, d = 0.1 }, { a = "50", d = "0.1" }))  -- as strings
    assert.is_false(reconcile.same_vars({ a = 50.5 }, { a = 50 }))
    assert.is_false(reconcile.same_vars({ d = 0.1 }, { d = 0.1 + 2 ^ -56 }))   -- the next double
    assert.is_false(reconcile.same_vars({ a = 1 }, { a = true }))
    assert.is_false(reconcile.same_vars({ a = 50 }, {}))
  end)

  describe("its window", function()
    local reconcile = require "sigmamind.reconcile"
    local t0 = 1800000000
    local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. ".000Z" end
    -- a calls namespace over a fixed list, with the transport's info() as given
    local function namespace(created, info)
      local data = {}
      for i, t in ipairs(created) do
        data[i] = { callId = "call_" .. i, callType = "outbound", createdAt = iso(t),
                    phoneNumber = { sipPhoneNumber = "+14157774444" }, agent = { agentId = "agent_abc123" },
                    dynamicVariables = { order = "same" } }
      end
      return { _client = {}, _c = { info = function() return info end },
               list = function() return { data = data, hasNext = false } end }
    end
    local body = { fromPhoneNumber = "+14157774444", agentId = "agent_abc123", dynamicVariables = { order = "same" } }
    local function find(ns) return reconcile.find(ns, body, t0, function() return t0 + 2 end, function() end) end

    it("is read on the server's clock when a Date header gave it", function()
      local call = find(namespace({ t0 + 3600 + 1 }, { server_clock_offset = 3600 }))
      assert.equal("call_1", call and call.callId)
      local none, why = find(namespace({ t0 + 3600 - 3, t0 - 3 }, { server_clock_offset = 3600 }))
      assert.is_nil(none)
      assert.matches("no call matching", why)
    end)

    it("takes a call once from a server that answers every page alike, and stops paging there", function()
      local ns = namespace({ t0 + 1 }, {})
      local lists = 0
      ns.list = function()
        lists = lists + 1
        local page = namespace({ t0 + 1 }, {}).list()
        page.hasNext = true
        return page
      end
      local call, why = find(ns)
      assert.equal("call_1", call and call.callId, why)
      assert.equal(2, lists)
    end)

    it("allows two minutes either way on this host's clock without one", function()
      assert.equal("call_1", (find(namespace({ t0 - 100 }, {})) or {}).callId)
      assert.is_nil(find(namespace({ t0 - 200 }, {})))
      assert.is_nil(find(namespace({ t0 + 2 + 200 }, nil)))
    end)
  end)

  it("reconciles inside a task too", function()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local t = c:spawn(function() return c.calls:create(intent{ customer_name = "Task" }) end)
    c:run()
    local call, err = t:join()
    assert.is_nil(err)
    assert.is_true(call.reconciled)
    assert.equal(1, sb:state().calls)
  end)

  it("can be turned off", function()
    local plain = sigmamind.new{ api_key = sb.key, base_url = sb.url, reconcile = false }
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local call, err = plain.calls:create(intent{ customer_name = "Off" })
    plain:close()
    assert.is_nil(call)
    assert.is_nil(err.reconcile)
    assert.equal(0, sb:count("GET", "/v1/calls"))
    assert.equal(1, sb:state().calls)
  end)

  it("remembers the last 1,024 to 2,048 call ids it returned, at a constant cost per call", function()
    local reconcile = require "sigmamind.reconcile"
    local client = {}
    for i = 1, 5000 do reconcile.remember(client, "call_" .. i) end
    local r = client._returned
    local function known(id) return (r.new[id] or r.old[id]) == true end
    for i = 5000 - 1023, 5000 do assert.is_true(known("call_" .. i), "call_" .. i) end
    assert.is_false(known("call_1"))
    local n = 0
    for _ in pairs(r.new) do n = n + 1 end
    for _ in pairs(r.old) do n = n + 1 end
    assert.is_true(n >= 1024 and n <= 2048, "kept " .. n)
    reconcile.remember(client, "call_5000")         -- already known: nothing changes
    assert.is_true(known("call_5000"))
  end)

  it("keeps the creates in flight in an array: left in any order, the old ones dropped past 256", function()
    local reconcile = require "sigmamind.reconcile"
    local client = {}
    local body = { fromPhoneNumber = "+14155550100", agentId = "agent_1", dynamicVariables = { k = "v" } }
    local function check(want)              -- the registered intents are exactly `want`, each in its slot
      assert.equal(#want, client._intents_n)
      assert.equal(#want, #client._intents)
      local set = {}
      for i = 1, client._intents_n do
        assert.equal(i, client._intents[i].slot)
        set[client._intents[i]] = true
      end
      for _, w in ipairs(want) do assert.is_true(set[w]) end
    end
    local t = {}
    for i = 1, 5 do t[i] = reconcile.enter(client, body, 1000 + i) end
    assert.same({ from = "+14155550100", agent = "agent_1", vars = body.dynamicVariables, t0 = 1003, slot = 3 }, t[3])
    reconcile.leave(client, t[2]); check{ t[1], t[3], t[4], t[5] }
    reconcile.leave(client, t[5]); check{ t[1], t[3], t[4] }
    reconcile.leave(client, t[1]); check{ t[3], t[4] }
    reconcile.leave(client, t[1]); check{ t[3], t[4] }          -- left already: nothing changes
    reconcile.leave(client, t[4]); reconcile.leave(client, t[3]); check{}
    -- they pile up only while creates fail: past 256, those too old to own a new call are dropped
    for _ = 1, 200 do reconcile.enter(client, body, 0) end
    local recent = {}
    for i = 1, 56 do recent[i] = reconcile.enter(client, body, 10000) end
    local last = reconcile.enter(client, body, 10000)
    recent[#recent + 1] = last
    check(recent)
  end)
end)
