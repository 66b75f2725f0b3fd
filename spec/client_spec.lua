-- Every endpoint of docs/api.md §3 through the public API, against a real sandbox.
local sandbox = require "support.sandbox"
local util = require "support.util"
local sigmamind = require "sigmamind"

describe("sigmamind client against the sandbox", function()
  local sb, client

  setup(function()
    sb = sandbox.start{ speed = 200 }
    client = sigmamind.new{ api_key = sb.key, base_url = sb.url, timeout = 5 }
  end)
  teardown(function()
    if client then client:close() end
    if sb then sb:stop() end
  end)
  before_each(function() sb:reset() end)

  describe("calls", function()
    it("creates a call whose dynamic variables reach the agent", function()
      local call, err = client.calls:create{
        fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445", agentId = sb.agent,
        dynamicVariables = { customer_name = "Ada Lovelace" } }
      assert.is_nil(err)
      assert.matches("^call", call.callId)
      assert.equal("outbound", call.callType)
      assert.equal(sb.number, call.phoneNumber.sipPhoneNumber)
      assert.equal("Ada Lovelace", call.dynamicVariables.customer_name)
      assert.equal(1, sb:count("POST", "/v1/calls"))
      local _, raw = sb:request("GET", "/v1/calls/" .. call.callId)
      assert.equal("Ada Lovelace", raw.dynamicVariables.customer_name)
    end)

    it("gets back the variables it sent, numbers to the last digit, from create, get and each", function()
      local vars = { account_id = 123456789012345, order = 9007199254740991, amount = 1234567.891234567,
                     ratio = 1 / 3, vip = true, name = "Zo\u{eb}" }
      local call = assert(client.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445",
                                               dynamicVariables = vars })
      local got = assert(client.calls:get(call.callId))
      local listed
      for c in client.calls:each{ size = 5 } do if c.callId == call.callId then listed = c end end
      for _, c in ipairs{ call, got, listed } do
        assert.same(vars, c.dynamicVariables)
        assert.equal("integer", math.type(c.dynamicVariables.account_id))
      end
    end)

    it("uses the number's outbound agent when agentId is omitted", function()
      local call = assert(client.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445" })
      assert.equal(sb.agent, call.agent.agentId)
    end)

    it("gets, lists and deletes calls", function()
      local call = assert(client.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12137774446" })
      local got = assert(client.calls:get(call.callId))
      assert.equal(call.callId, got.callId)
      local page = assert(client.calls:list{ page = 0, size = 10 })
      assert.equal(1, page.totalCount)
      assert.equal(1, page.totalCounts)
      assert.equal(call.callId, page.data[1].callId)
      assert.is_true(client.calls:delete(call.callId))
      local gone, err = client.calls:get(call.callId)
      assert.is_nil(gone)
      assert.equal("not_found", err.kind)
      assert.equal(404, err.status)
    end)

    it("waits for a final status and returns integers where the API has them", function()
      local call = assert(client.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12137774447",
                                               dynamicVariables = { customer_name = "Grace" } })
      local done, err = client.calls:wait(call.callId, { timeout = 30, interval = 0.05 })
      assert.is_nil(err)
      assert.equal("ended", done.status)
      assert.equal("integer", math.type(done.duration))
      assert.matches("Grace", done.transcript)
      assert.truthy(done.endTime)
    end)

    it("reports each magic number's outcome through wait", function()
      local expect = {
        ["+12135550101"] = { "not_connected", "dial_busy" },
        ["+12135550102"] = { "not_connected", "dial_no_answer" },
        ["+12135550104"] = { "not_connected", "dial_user_declined" },
        ["+12135550105"] = { "error", "dial_invalid_destination" },
      }
      for to, want in pairs(expect) do
        local call = assert(client.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = to })
        local done = assert(client.calls:wait(call.callId, { timeout = 30, interval = 0.05 }))
        assert.equal(want[1], done.status, to)
        assert.equal(want[2], done.terminationReason, to)
      end
    end)

    it("gives up waiting with a timeout error that carries the last state", function()
      local slow = sandbox.start{ speed = 0.01 }
      local c = sigmamind.new{ api_key = slow.key, base_url = slow.url }
      local call = assert(c.calls:create{ fromPhoneNumber = slow.number, toPhoneNumber = "+12137774448" })
      local done, err = c.calls:wait(call.callId, { timeout = 0.3, interval = 0.05 })
      c:close(); slow:stop()
      assert.is_nil(done)
      assert.equal("timeout", err.kind)
      assert.equal(call.callId, err.call.callId)
      assert.matches("did not reach a final status", tostring(err))
    end)
  end)

  describe("campaigns", function()
    it("creates a campaign from a plan, with the server's row errors, and runs it to completion", function()
      local plan = sigmamind.campaign "Spec campaign"
        :agent(sb.agent):caller(sb.number)
        :contacts{ { phoneNumber = "+12137770001", customer_name = "A" },
                   { phoneNumber = "+1234", customer_name = "B" },
                   { phoneNumber = "+12137770003", customer_name = "C" },
                   { phoneNumber = "+12137770004", customer_name = "D" } }
        :concurrency(2)
      local _, problems = plan:build()
      local camp, err = client.campaigns:create(plan)
      assert.is_nil(err)
      assert.same({ "Row 2: invalid phone number '+1234'" }, problems)
      assert.same(problems, camp.errors)
      local id = camp.campaignId
      assert.equal(camp.campaignName, assert(client.campaigns:get(id)).campaignName)
      local deadline = os.time() + 20
      local status
      repeat
        status = assert(client.campaigns:get(id)).campaignStatus
        if status ~= "completed" then require("sigmamind.core").sleep(0.05) end
      until status == "completed" or os.time() > deadline
      assert.equal("completed", status)
      local n = 0
      for call in client.calls:each{} do
        if call.campaign and call.campaign.campaignId == id then n = n + 1 end
      end
      assert.equal(3, n)
    end)

    it("refuses, in plan:build(), the malformed CSV and sloppy base64 the server refuses, worded alike", function()
      local core = require "sigmamind.core"
      for _, text in ipairs{
        'phone,name\n+14155552671,"Ada\n',
        'phone,note\n+14155552671,"two\nlines"\n+14155552672,"open\nstill\n',
        'phone,name\n+14155552671,Ad"a\n',
        'phone,name\r\n+14155552671,"Ada"x\r\n',
        'phone,name\n+14155552671,"Ada"\r+14155552672,B\n',
      } do
        local _, problems, fatal = sigmamind.campaign "Malformed":agent(sb.agent):caller(sb.number):csv(text):build()
        assert.is_truthy(fatal, text)
        local status, v = sb:request("POST", "/v1/campaigns", { campaignName = "Raw", agentId = sb.agent,
          sipPhoneNumber = sb.number, file = core.base64_encode(text) })
        assert.equal(400, status)
        assert.same({ v.message }, problems)
      end
      local good = core.base64_encode("phone\n+14155552671\n")
      for _, file in ipairs{ good:sub(1, -3), good .. "QUFB", good:sub(1, -4) .. "h==", " " .. good } do
        local params = { campaignName = "B64", agentId = sb.agent, sipPhoneNumber = sb.number, file = file }
        local ok, err = core.validate("campaigns.create", params)
        assert.is_nil(ok, file)
        assert.equal("file", err.field)
        assert.equal(400, (sb:request("POST", "/v1/campaigns", params)))
      end
      assert.equal(0, sb:state().campaigns)
    end)

    it("predicts, in plan:build(), the row problems the server then reports for the same CSV", function()
      -- cells padded with tabs, CRs and spaces (a spreadsheet export's), quoted to stay in the cell
      local text = 'Name,"Phone\t",city\n' ..
        'A,"+12137770021\t",Rome\n' ..
        'B," \t",Oslo\n' ..
        'C,"\r+12137770023 ","\t"\n' ..
        'D,+1213777002x,Lima\n' ..
        'E,"+12137770021\r",Lima\n'
      local plan = sigmamind.campaign "Padded":agent(sb.agent):caller(sb.number):csv(text)
      local _, problems = plan:build()
      assert.same({
        "Row 2: missing phone number",
        "Row 3: missing required variable 'city'",
        "Row 4: invalid phone number '+1213777002x'",
        "Row 5: duplicate phone number '+12137770021'",
      }, problems)
      local camp = assert(client.campaigns:create(plan))
      assert.same(problems, camp.errors)
      -- a padded header names its variable trimmed; a blank campaign variable supplies nothing
      local n_case = 0
      for _, case in ipairs{
        { "phone, name \n+12137770031,\n", { name = "Ada" }, {} },
        { "phone, name \n+12137770032,\n", { name = "  " }, { "Row 1: missing required variable 'name'" } },
        { "phone,name\n+12137770033,\n", { name = "" }, { "Row 1: missing required variable 'name'" } },
      } do
        local n = n_case + 1
        n_case = n
        local p = sigmamind.campaign("Vars " .. n):agent(sb.agent):caller(sb.number)
          :csv(case[1]):variables(case[2])
        local _, probs = p:build()
        assert.same(case[3], probs or {})
        local created, cerr = client.campaigns:create(p)
        if #case[3] == 0 then
          assert(created, tostring(cerr))
          assert.same({}, created.errors or {})
        else
          assert.is_nil(created)                     -- no contact at all: the client refuses it
          assert.equal("invalid", cerr.kind)
          local status, v = sb:request("POST", "/v1/campaigns", { campaignName = "Raw " .. n,
            agentId = sb.agent, sipPhoneNumber = sb.number, dynamicVariables = case[2],
            file = require("sigmamind.core").base64_encode(case[1]) })
          assert.equal(201, status, require("sigmamind.core").json_encode(v))   -- made with no contact
          assert.same(case[3], v.errors)                                         -- for the same reason
        end
      end
    end)

    it("creates a raw campaign from sigmamind.base64 of a CSV, and decodes only canonical base64", function()
      local text = "phone,name\n+14155552671,Ada\n+14155552672,Grace\n"
      local camp, err = client.campaigns:create{ campaignName = "Raw " .. os.time(), agentId = sb.agent,
                                                 sipPhoneNumber = sb.number, file = sigmamind.base64(text) }
      assert.is_truthy(camp, tostring(err))
      assert.same({}, camp.errors)                                 -- both rows read by the server
      assert.equal(2, assert(client.campaigns:progress(camp.campaignId)).total)
      assert.equal(text, sigmamind.base64_decode(sigmamind.base64(text)))
      assert.equal("", sigmamind.base64(""))
      local bytes = "\0\255\1 binary"
      assert.equal(bytes, sigmamind.base64_decode(sigmamind.base64(bytes)))
      local v, msg = sigmamind.base64_decode("aGk")                -- unpadded: not what the API takes
      assert.is_nil(v)
      assert.matches("base64", msg)
      assert.has_error(function() sigmamind.base64(42) end, "sigmamind.base64: expected a string, got 42")
      assert.has_error(function() sigmamind.base64_decode(nil) end,
                       "sigmamind.base64_decode: expected a string, got nothing")
    end)

    it("lists, updates, pauses, resumes and deletes campaigns", function()
      local camp = assert(client.campaigns:create(sigmamind.campaign "Later"
        :agent(sb.agent):caller(sb.number)
        :contacts{ { phoneNumber = "+12137770011" } }
        :schedule{ date = "2099-01-01", time = "09:00", timezone = "America/New_York" }))
      assert.equal("scheduled", camp.campaignStatus)
      local page = assert(client.campaigns:list{ status = "scheduled" })
      assert.equal(1, page.totalCount)
      assert.equal(1, page.totalCounts)
      local upd = assert(client.campaigns:update(camp.campaignId, { concurrentCalls = 7 }))
      assert.equal(7, upd.concurrentCalls)
      assert.equal("paused", assert(client.campaigns:pause(camp.campaignId)).campaignStatus)
      assert.equal("live", assert(client.campaigns:resume(camp.campaignId)).campaignStatus)
      assert.is_true(client.campaigns:delete(camp.campaignId))
      local _, err = client.campaigns:get(camp.campaignId)
      assert.equal("not_found", err.kind)
    end)

    it("refuses a plan with field problems without sending it", function()
      local camp, err = client.campaigns:create(sigmamind.campaign "No caller":agent(sb.agent)
        :contacts{ { phoneNumber = "+12137770011" } })
      assert.is_nil(camp)
      assert.equal("invalid", err.kind)
      assert.equal("sipPhoneNumber", err.field)
      assert.equal(0, sb:count("POST", "/v1/campaigns"))
    end)
  end)

  describe("phone numbers", function()
    it("provisions, imports, gets, updates (null unassigns) and deletes numbers", function()
      local pn = assert(client.phone_numbers:provision{ countryCode = "US", areaCode = 415,
                                                        friendlyName = "Second line" })
      assert.matches("^%+1415", pn.sipPhoneNumber)
      local imp = assert(client.phone_numbers:import{ phoneNumber = "+442071234567",
        terminationSipURI = "sip.example.test", trunkUsername = "u", trunkPassword = "p",
        outboundAgentId = sb.agent })
      assert.equal("byo", imp.provider)
      local got = assert(client.phone_numbers:get("+442071234567"))
      assert.equal(sb.agent, got.outboundAgentId)
      local upd = assert(client.phone_numbers:update("+442071234567",
                                                     { outboundAgentId = sigmamind.null, friendlyName = "BYO" }))
      assert.equal("BYO", upd.friendlyName)
      assert.is_nil(upd.outboundAgentId ~= sigmamind.null and upd.outboundAgentId or nil)
      local all = assert(client.phone_numbers:list{})
      assert.equal(3, #all.data)
      assert.is_true(client.phone_numbers:delete(pn.sipPhoneNumber))
      local _, err = client.phone_numbers:get(pn.sipPhoneNumber)
      assert.equal("not_found", err.kind)
    end)
  end)

  describe("webhooks", function()
    it("creates with the documented event spelling, lists, toggles and deletes", function()
      local wh = assert(client.webhooks:create{ name = "hook", agentId = sb.agent,
        url = "http://127.0.0.1:9/hook", events = { "conversation_ended", "conversation_analyzed" } })
      assert.truthy(wh.secret)
      assert.same({ "conversation_ended", "conversation_analysed" }, wh.events)
      assert.equal(wh.webhookId, assert(client.webhooks:get(wh.webhookId)).webhookId)
      assert.is_false(assert(client.webhooks:disable(wh.webhookId)).active)
      assert.equal(0, #assert(client.webhooks:list{}).data)          -- active=true by default
      local all = assert(client.webhooks:list{ active = false })
      assert.equal(1, all.totalCount)
      assert.equal(1, all.totalCounts)
      assert.is_true(assert(client.webhooks:enable(wh.webhookId)).active)
      assert.equal("renamed", assert(client.webhooks:update(wh.webhookId, { name = "renamed" })).name)
      assert.is_true(client.webhooks:delete(wh.webhookId))
    end)
  end)

  describe("agents", function()
    it("lists and gets agents", function()
      local page = assert(client.agents:list{})
      assert.equal(sb.agent, page.data[1].agentId)
      assert.equal(sb.agent, assert(client.agents:get(sb.agent)).agentId)
      local _, err = client.agents:get("agent_nope")
      assert.equal("not_found", err.kind)
    end)
  end)

  describe("keep-alive", function()
    it("makes 1,000 sequential requests over one TCP connection", function()
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.url }
      for _ = 1, 1000 do assert(c.agents:get(sb.agent)) end
      c:close()
      -- the sandbox counts the distinct TCP connections that carried /v1/ requests since the reset
      assert.equal(1000, sb:count("GET", "/v1/agents/{agentId}"))
      assert.equal(1, sb:state().connections)
    end)
  end)

  describe("proxy variables", function()
    -- read once by sigmamind.new (libcurl would look them up on every request), by libcurl's rules:
    -- a child process, so the variables are its own; port 9 on loopback has no listener, so a proxy
    -- there refuses.
    -- insecure = true: else a plain http:// base_url never goes through a proxy (security_spec)
    local function child(env, opts)
      local code = ("local s = require 'sigmamind'; local c = s.new{ api_key = %q, base_url = %q, max_retries = 0, " ..
                    "insecure = true, %s }; " ..
                    "local a, err = c.agents:list(); io.write(a and 'ok' or err.kind)"):format(sb.key, sb.url, opts or "")
      return util.lua_without_proxies(env, code)
    end
    it("sends through http_proxy or all_proxy, and not to a host in no_proxy", function()
      assert.equal("ok", child(""))
      assert.equal("network", child("http_proxy=http://127.0.0.1:9"))
      assert.equal("network", child("ALL_PROXY=http://127.0.0.1:9"))
      assert.equal("ok", child("http_proxy=http://127.0.0.1:9 NO_PROXY=127.0.0.1"))
      assert.equal("ok", child("all_proxy=http://127.0.0.1:9 no_proxy=*"))
      -- HTTP_PROXY in capitals is not read for http:// (libcurl's rule: CGI sets it from a header)
      assert.equal("ok", child("HTTP_PROXY=http://127.0.0.1:9"))
      -- an explicit proxy option wins over the variables, and no_proxy still applies to it
      assert.equal("network", child("", "proxy = 'http://127.0.0.1:9'"))
      assert.equal("ok", child("no_proxy=127.0.0.1", "proxy = 'http://127.0.0.1:9'"))
    end)
  end)

  describe("misuse", function()
    it("raises on unknown options and on a dot instead of a colon", function()
      assert.has_error(function() sigmamind.new{ api_key = "k", base_url = sb.url, timeuot = 3 } end)
      assert.has_error(function() client.calls.get("call_x") end)
      assert.has_error(function() client.calls:get({}) end)
    end)

    it("refuses NaN and other unusable waits and ids, naming them, and one bad task holds no other back", function()
      local call = assert(client.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445" })
      for _, case in ipairs{ { { interval = 0 / 0 }, "interval: expected a finite number of seconds > 0, got" },
                             { { interval = math.huge }, "interval" }, { { interval = 0 }, "interval" },
                             { { timeout = 0 / 0 }, "timeout: expected a number of seconds >= 0" },
                             { { timeout = -1 }, "timeout" }, { { max_interval = "x" }, "max_interval" },
                             { { timeuot = 5 }, "unknown option 'timeuot'" } } do
        local ok, err = pcall(client.calls.wait, client.calls, call.callId, case[1])
        assert.is_false(ok)
        assert.matches("calls:wait: " .. case[2], err, 1, true)
        -- the same in a task, and a task beside it goes on
        local bad = client:spawn(function() return client.calls:wait(call.callId, case[1]) end)
        local good = client:spawn(function() return client.calls:get(call.callId) end)
        local t0 = os.time()
        assert.truthy(good:join())
        assert.is_nil((bad:join()))
        assert.is_true(os.time() - t0 < 5)
      end
      local done = assert(client.calls:wait(call.callId, { timeout = math.huge, interval = 0.05 }))
      assert.equal(call.callId, done.callId)                         -- math.huge: no timeout
      for _, id in ipairs{ 0 / 0, math.huge, 1.5, 2 ^ 60 } do
        local ok, err = pcall(client.calls.get, client.calls, id)
        assert.is_false(ok)
        assert.matches("calls:get: expected an id string, got " .. tostring(id), err, 1, true)
      end
      local _, err = client.calls:get(1e15)                          -- a whole number goes out whole
      assert.equal("/v1/calls/1000000000000000", err.path)
    end)

    it("raises after close", function()
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.url }
      c:close(); c:close()
      assert.has_error(function() c.calls:get("call_x") end)
    end)

    it("blames the caller's line, not its own, for a closed client", function()
      local c = sigmamind.new{ api_key = sb.key, base_url = sb.url }
      c:close()
      local before = sb:api_requests()
      local uses = {
        function() local v = c.calls:get("call_x"); return v end,
        function() local v = c.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445" }; return v end,
        function() local v = c.calls:list{}; return v end,
        function() for _ in c.calls:each{} do end end,
        function() local v = c.calls:wait("call_x"); return v end,
        function() local v = c.calls:delete("call_x"); return v end,
        function() local v = c.campaigns:pause("camp_x"); return v end,
        function() local v = c.webhooks:create{ url = "http://127.0.0.1:9/" }; return v end,
        function() local v = c:dial{ from = sb.number, agent = sb.agent, contacts = { { phone = "+12137774445" } } }
                   return v end,
      }
      for i, use in ipairs(uses) do
        local line = debug.getinfo(use, "S").linedefined
        local ok, err = pcall(use)
        assert.is_false(ok)
        assert.equal("spec/client_spec.lua:" .. line .. ": sigmamind: attempt to use a closed client", err, "use " .. i)
      end
      assert.same(before, sb:api_requests())
    end)

    it("shows a string given for a number as a string, in every option check", function()
      local call = assert(client.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445" })
      local webhook = sigmamind.webhook
      for _, case in ipairs{
        { function() return client.calls:wait(call.callId, { timeout = "2" }) end,
          'sigmamind: calls:wait: timeout: expected a number of seconds >= 0, got the string "2"' },
        { function() return client.calls:wait(call.callId, { interval = "0.5" }) end,
          'sigmamind: calls:wait: interval: expected a finite number of seconds > 0, got the string "0.5"' },
        { function() return client:poll("1") end,
          'sigmamind: poll: expected a timeout in seconds >= 0, got the string "1"' },
        { function() for _ in client.calls:each{ limit = "5" } do end end,
          'sigmamind: calls:each: limit: expected a number >= 0, got the string "5"' },
        { function() return client.calls:stats{ since = "yesterday" } end,
          'sigmamind: calls:stats: since: expected an ISO-8601 time (2024-04-20T10:00:00Z) or unix seconds, ' ..
          'got the string "yesterday"' },
        { function() return webhook.sign("{}", "whsec_x", { t = "5" }) end,
          'sigmamind.webhook.sign: opts.t: expected unix seconds (a finite number from 0 to 1e15), got the string "5"' },
        { function() return webhook.verify("{}", {}, { secret = "whsec_x", tolerance = "300" }) end,
          'sigmamind.webhook.verify: opts.tolerance: expected finite seconds >= 0, got the string "300"' },
        { function() return sigmamind.new{ api_key = "k", base_url = sb.url, log = "3" } end,
          'sigmamind.new: log: expected "debug", "info" or false, got the string "3"' },
      } do
        local ok, err = pcall(case[1])
        assert.is_false(ok)
        assert.equal(case[2], (tostring(err):gsub("^[^:]*:%d+: ", "")))
      end
      local _, problems = sigmamind.campaign "C":agent(sb.agent):caller(sb.number):csv("phone\n+14155552671\n")
                                   :set("concurrentCalls", "5"):build()
      assert.same({ 'concurrentCalls: expected a positive integer, got the string "5"' }, problems)
    end)

    it("writes no globals", function()
      local before = {}
      for k in pairs(_G) do before[k] = true end
      package.loaded["sigmamind"] = nil
      require "sigmamind"
      for k in pairs(_G) do assert.is_true(before[k], "new global " .. tostring(k)) end
    end)
  end)
end)
