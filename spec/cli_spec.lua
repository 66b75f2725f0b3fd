-- bin/sigmamind: the CLI run as a user would, against the sandbox: stdout, stderr and exit codes.
local sandbox = require "support.sandbox"
local util = require "support.util"
local webhook = require "sigmamind.webhook"
local socket = require "socket"
local json = sandbox.json

local ROOT = util.root()
local CLI = ROOT .. "/bin/sigmamind"

-- write_file(text): a new temporary file holding text, its path
local shell_quote, write_file, read_file = util.shell_quote, util.temp_file, util.read_file

local CONTACTS = "phoneNumber,customer_name\n+12137770001,Ann\n+12135550101,Bob\n+1234,Bad\n+12137770003,Cid\n"

describe("bin/sigmamind", function()
  local sb

  setup(function() sb = sandbox.start{ speed = 200 } end)
  teardown(function() if sb then sb:stop() end end)

  -- starts the CLI with the sandbox's environment; the function returned waits for it: stdout,
  -- stderr, exit code. pidfile: a file to write the CLI's process id into
  local function launch(args, env, stdin_file, pidfile)
    env = env or { SIGMAMIND_API_KEY = sb.key, SIGMAMIND_BASE_URL = sb.url }
    local parts = { "env" }
    if pidfile then parts = { "sh", "-c", shell_quote('echo $$ >' .. pidfile .. '; exec "$@"'), "sh", "env" } end
    for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
    parts[#parts + 1] = shell_quote(CLI)
    for _, a in ipairs(args) do parts[#parts + 1] = shell_quote(a) end
    local errfile = os.tmpname()
    local cmd = table.concat(parts, " ") .. " 2>" .. errfile .. (stdin_file and (" <" .. stdin_file) or " </dev/null")
    local p = assert(io.popen(cmd))
    return function()
      local out = p:read("a")
      local _, _, code = p:close()
      local err = read_file(errfile)
      os.remove(errfile)
      return out, err, code
    end
  end

  local function run(args, env, stdin_file) return launch(args, env, stdin_file)() end

  -- runs the CLI on a terminal (a 120x30 tmux pane) with the sandbox's environment and returns the
  -- screen once it has exited, with a last line EXIT=<code>; nil when tmux is not installed
  local function on_terminal(args)
    if not os.execute("command -v tmux >/dev/null 2>&1") then return nil end
    local quoted = {}
    for i, a in ipairs(args) do quoted[i] = shell_quote(a) end
    local tmux = "tmux -L sigmamind-spec-" .. os.time() .. "-" .. math.random(1e6) .. " "
    local cmd = string.format("env SIGMAMIND_API_KEY=%s SIGMAMIND_BASE_URL=%s %s %s; echo EXIT=$?; sleep 60",
                              shell_quote(sb.key), shell_quote(sb.url), shell_quote(CLI), table.concat(quoted, " "))
    assert.is_true(os.execute(tmux .. "new-session -d -x 120 -y 30 " .. shell_quote(cmd)))
    local screen = ""
    for _ = 1, 300 do
      local p = io.popen(tmux .. "capture-pane -p")
      screen = p:read("a")
      p:close()
      if screen:find("EXIT=", 1, true) then break end
      os.execute("sleep 0.1")
    end
    os.execute(tmux .. "kill-server")
    return screen
  end

  local function run_json(args)
    local out, err, code = run(args)
    assert.equal(0, code, err)
    return json.decode(out)
  end

  describe("calls", function()
    it("creates, gets, waits for, lists (table, --json, csv) and deletes a call", function()
      local out, err, code = run{ "--json", "calls", "create", "--from", sb.number, "--to", "+12137774445",
                                  "--agent", sb.agent, "--var", "customer_name=Ann" }
      assert.equal(0, code, err)
      local call = json.decode(out)
      assert.matches("^call_", call.callId)
      assert.same({ customer_name = "Ann" }, call.dynamicVariables)

      out, err, code = run{ "calls", "get", call.callId }
      assert.equal(0, code, err)
      assert.matches("callId%s+" .. call.callId, out)

      local done = run_json{ "--json", "calls", "wait", call.callId, "--wait-timeout", "30" }
      assert.equal("ended", done.status)

      out = run{ "calls", "list" }
      local header, first = out:match("^([^\n]*)\n([^\n]*)\n")
      assert.matches("^CALL%s+STATUS%s+FROM", header)
      assert.matches(call.callId .. "%s+ended%s+%" .. sb.number, first)
      -- the columns line up: STATUS starts where the status does
      assert.equal(header:find("STATUS"), first:find("ended"))

      local list = run_json{ "calls", "list", "--json" }
      assert.equal(call.callId, list[1].callId)

      out, err, code = run{ "calls", "list", "--format", "csv" }
      assert.equal(0, code, err)
      assert.matches("^callId,status,callType,fromPhoneNumber,", out)
      assert.matches("\r\n" .. call.callId .. ",ended,outbound,%" .. sb.number .. ",", out)

      out, err, code = run{ "calls", "delete", call.callId }
      assert.equal(0, code, err)
      assert.equal("deleted call " .. call.callId .. "\n", out)
      local _, gone, gcode = run{ "calls", "get", call.callId }
      assert.equal(1, gcode)
      assert.matches("404", gone)
    end)

    it("streams every page as CSV, one header, flat memory", function()
      assert.equal(200, (sb:request("POST", "/_sandbox/seed", { calls = 250, mix = "uniform" })))
      local out, err, code = run{ "calls", "list", "--format", "csv", "--size", "100" }
      assert.equal(0, code, err)
      local lines, headers = 0, 0
      for line in out:gmatch("([^\r\n]+)\r\n") do
        lines = lines + 1
        if line:match("^callId,") then headers = headers + 1 end
      end
      assert.equal(1, headers)
      local _, page = sb:request("GET", "/v1/calls?size=1")
      assert.is_true(page.totalCounts >= 250)
      assert.equal(page.totalCounts + 1, lines)
      assert.is_true(sb:count("GET", "/v1/calls") >= 3)
      -- stderr is not a terminal here: plain progress lines, never a carriage return
      assert.is_nil(err:find("\r", 1, true))
      assert.matches("calls: %d+/%d+  page %d", err)
    end)
  end)

  describe("a table cut to --limit", function()
    local function lines(s) local _, n = s:gsub("\n", "") return n end

    it("says how many there are and how to get them", function()
      assert.equal(200, (sb:request("POST", "/_sandbox/seed", { calls = 30, mix = "uniform" })))
      local _, page = sb:request("GET", "/v1/calls?size=1")
      local total = math.tointeger(page.totalCounts)
      local out, err, code = run{ "calls", "list", "--limit", "10" }
      assert.equal(0, code, err)
      assert.equal(11, lines(out))                                  -- the header and 10 calls
      assert.equal("showing 10 of " .. total .. " calls; --all for every one, --limit N for N\n", err)
      out, err, code = run{ "calls", "list", "--status", "ended", "--limit", "3" }
      assert.equal(0, code, err)
      _, page = sb:request("GET", "/v1/calls?size=1&status=ended")
      assert.equal(4, lines(out))
      assert.equal(("showing 3 of %d calls; --all for every one, --limit N for N\n"):format(page.totalCounts), err)

      for _, args in ipairs{ { "calls", "list", "--all" }, { "calls", "list", "--limit", "0" },
                             { "calls", "list", "--limit", tostring(total) }, { "--json", "calls", "list", "--limit", "2" } } do
        out, err, code = run(args)
        assert.equal(0, code, err)
        assert.is_true(#out > 0)
        assert.equal("", err, table.concat(args, " "))             -- nothing was left out, or JSON for a program
      end
      assert.equal(total + 1, lines(run{ "calls", "list", "--all" }))
    end)

    it("says so for every listing, each with --all", function()
      local made = {}
      for i = 1, 2 do
        made[i] = run_json{ "--json", "webhooks", "create", "--name", "cut" .. i, "--agent", sb.agent,
                            "--url", sb.url .. "/_sandbox/echo/cut" }.webhookId
      end
      local _, page = sb:request("GET", "/v1/webhooks?size=1")
      local total = math.tointeger(page.totalCount)
      local out, err, code = run{ "webhooks", "list", "--limit", "1" }
      assert.equal(0, code, err)
      assert.equal(2, lines(out))
      assert.equal("showing 1 of " .. total .. " webhooks; --all for every one, --limit N for N\n", err)
      out, err, code = run{ "webhooks", "list", "--all" }
      assert.equal(0, code, err)
      assert.equal("", err)
      assert.equal(total + 1, lines(out))
      for _, id in ipairs(made) do run{ "webhooks", "delete", id } end
      _, err, code = run{ "agents", "list", "--limit", "1" }
      assert.equal(0, code, err)
      _, page = sb:request("GET", "/v1/agents?size=1")
      assert.equal(page.totalCount > 1 and ("showing 1 of %d agents; --all for every one, --limit N for N\n"):format(
                   page.totalCount) or "", err)
    end)
  end)

  describe("campaigns", function()
    it("creates a campaign from a CSV, reports bad rows on stderr and watches it to completion", function()
      local path = write_file(CONTACTS)
      local out, err, code = run{ "--json", "campaigns", "create", "--name", "CLI spec " .. os.time(),
                                  "--agent", sb.agent, "--from", sb.number, "--csv", path, "--concurrency", "2" }
      os.remove(path)
      assert.equal(0, code, err)
      assert.matches("skipped: Row 3: invalid phone number '+1234'", err, 1, true)
      local camp = json.decode(out)
      assert.same({ "Row 3: invalid phone number '+1234'" }, camp.errors)

      -- a file refused whole is the error, said once, and not a warning
      local bad = write_file('phone,name\n+12137770021,O"Brien\n')
      local bout, berr, bcode = run{ "campaigns", "create", "--name", "Bad CSV", "--agent", sb.agent, "--from",
                                     sb.number, "--csv", bad }
      os.remove(bad)
      assert.equal(2, bcode)
      assert.equal("", bout)
      assert.matches("file: csv: line 2: stray quote in an unquoted field", berr, 1, true)
      assert.is_nil(berr:find("skipped:", 1, true))
      assert.is_nil(berr:find("warning:", 1, true))
      local _, count = berr:gsub("stray quote", "")
      assert.equal(1, count)

      out, err, code = run{ "campaigns", "watch", camp.campaignId, "--contacts", "3", "--interval", "0.2" }
      assert.equal(0, code, err)
      assert.matches("completed: 3 calls", out)
      assert.matches("campaign " .. camp.campaignId .. ": 3/3  completed", err, 1, true)

      out = run{ "campaigns", "list" }
      assert.matches(camp.campaignId .. "%s+CLI spec %d+%s+completed", out)
      assert.equal("completed", run_json{ "--json", "campaigns", "get", camp.campaignId }.campaignStatus)
      local _, _, dcode = run{ "campaigns", "delete", camp.campaignId }
      assert.equal(0, dcode)
    end)

    it("watches a campaign created elsewhere with the total of its calls so far", function()
      local file = require("sigmamind.core").base64_encode("phone\n+12137774001\n+12137774002\n+12137774003\n")
      local status, camp = sb:request("POST", "/v1/campaigns", { campaignName = "Elsewhere " .. os.time(),
        agentId = sb.agent, sipPhoneNumber = sb.number, file = file, concurrentCalls = 1 })
      assert.equal(201, status)
      -- paused at once: its first call is dialed, and no other until it is resumed
      assert.equal(200, (sb:request("PATCH", "/v1/campaigns/" .. camp.campaignId, { campaignStatus = "paused" })))
      local out, err, code = run{ "campaigns", "watch", camp.campaignId, "--interval", "0.1", "--wait-timeout", "0.3" }
      assert.equal(1, code, err)                                    -- paused: never completes
      assert.equal("", out)
      local done, total = err:match("campaign " .. camp.campaignId .. ": (%d+)/(%d+)  dialed so far  paused  ")
      assert.is_truthy(done, err)
      assert.is_true(tonumber(total) >= 1 and tonumber(done) <= tonumber(total), err)
      assert.matches("not completed after 0.3 s (status paused)", err, 1, true)
      -- told how many contacts it has, the total is that
      out, err = run{ "campaigns", "watch", camp.campaignId, "--contacts", "3", "--interval", "0.1", "--wait-timeout", "0" }
      assert.equal("", out)
      assert.matches("campaign " .. camp.campaignId .. ": %d/3  paused  ", err)
      run{ "campaigns", "delete", camp.campaignId }
    end)

    it("pauses and resumes a live campaign", function()
      local path = write_file("phone\n+12137771001\n+12137771002\n")
      local camp = run_json{ "--json", "campaigns", "create", "--name", "Pause spec " .. os.time(), "--agent", sb.agent,
                             "--from", sb.number, "--csv", path, "--date", "2099-01-01", "--time", "09:00",
                             "--timezone", "UTC" }
      os.remove(path)
      assert.equal("paused", run_json{ "--json", "campaigns", "pause", camp.campaignId }.campaignStatus)
      assert.is_not.equal("paused", run_json{ "--json", "campaigns", "resume", camp.campaignId }.campaignStatus)
    end)

    it("updates a campaign's name, concurrency, variables, schedule and status", function()
      local path = write_file("phone\n+12137771011\n")
      local camp = run_json{ "--json", "campaigns", "create", "--name", "Update spec " .. os.time(), "--agent",
                             sb.agent, "--from", sb.number, "--csv", path, "--date", "2099-01-01", "--time", "09:00",
                             "--timezone", "UTC" }
      os.remove(path)
      local name = "Renamed " .. os.time()
      local u = run_json{ "--json", "campaigns", "update", camp.campaignId, "--name", name, "--concurrency", "3",
                          "--var", "plan=gold", "--date", "2099-02-03", "--time", "10:30", "--timezone", "UTC" }
      assert.equal(name, u.campaignName)
      assert.equal(3, u.concurrentCalls)
      assert.matches("^2099%-02%-03", u.scheduledDate)
      u = run_json{ "--json", "campaigns", "update", camp.campaignId, "--status", "paused" }
      assert.equal("paused", u.campaignStatus)
      local out, err, code = run{ "campaigns", "update", camp.campaignId }
      assert.equal(2, code, err)
      assert.equal("", out)
      assert.matches("campaigns update needs at least one of --name", err, 1, true)
      out, err, code = run{ "campaigns", "update", camp.campaignId, "--concurrency", "0" }   -- the core's check
      assert.equal(2, code, err)
      assert.equal("", out)
      assert.matches("concurrentCalls", err, 1, true)
    end)
  end)

  describe("numbers", function()
    it("lists, provisions, updates and deletes a number", function()
      local out = run{ "numbers", "list" }
      assert.matches("NUMBER%s+PROVIDER", out)
      assert.matches("%" .. sb.number, out)
      local n = run_json{ "--json", "numbers", "provision", "--country", "US", "--area-code", "415", "--name", "Spec" }
      assert.matches("^%+1415", n.sipPhoneNumber)
      local u = run_json{ "--json", "numbers", "update", n.sipPhoneNumber, "--name", "Renamed",
                          "--outbound-agent", sb.agent }
      assert.equal("Renamed", u.friendlyName)
      assert.equal(sb.agent, u.outboundAgentId)
      u = run_json{ "--json", "numbers", "update", n.sipPhoneNumber, "--outbound-agent", "none" }
      assert.is_true(u.outboundAgentId == nil or u.outboundAgentId == json.null)
      local imported = run_json{ "--json", "numbers", "import", "--number", "+12137779999", "--sip-uri",
                                 "sip.example.com", "--username", "u", "--password", "p" }
      assert.equal("+12137779999", imported.sipPhoneNumber)
      local _, _, code = run{ "numbers", "delete", n.sipPhoneNumber }
      assert.equal(0, code)
    end)
  end)

  describe("webhooks", function()
    it("creates, disables, lists, enables and deletes a webhook", function()
      local w = run_json{ "--json", "webhooks", "create", "--name", "cli", "--agent", sb.agent,
                          "--url", sb.url .. "/_sandbox/echo/cli", "--event", "conversation_ended" }
      assert.matches("^wh_", w.webhookId)
      assert.is_string(w.secret)
      assert.same({ "conversation_ended" }, w.events)
      assert.is_false(run_json{ "--json", "webhooks", "disable", w.webhookId }.active)
      assert.is_nil(run{ "webhooks", "list" }:find(w.webhookId, 1, true))          -- hidden when disabled
      assert.matches(w.webhookId, run{ "webhooks", "list", "--inactive" }, 1, true)
      assert.is_true(run_json{ "--json", "webhooks", "enable", w.webhookId }.active)
      assert.equal("cli", run_json{ "--json", "webhooks", "get", w.webhookId }.name)
      local out, _, code = run{ "webhooks", "delete", w.webhookId }
      assert.equal(0, code)
      assert.equal("deleted webhook " .. w.webhookId .. "\n", out)
    end)

    it("updates a webhook's name, url, events and active flag", function()
      local w = run_json{ "--json", "webhooks", "create", "--name", "before", "--agent", sb.agent,
                          "--url", sb.url .. "/_sandbox/echo/a", "--event", "conversation_ended" }
      local u = run_json{ "--json", "webhooks", "update", w.webhookId, "--name", "after", "--url",
                          sb.url .. "/_sandbox/echo/b", "--event", "conversation_started", "--event",
                          "conversation_analyzed", "--active", "false" }
      assert.equal("after", u.name)
      assert.equal(sb.url .. "/_sandbox/echo/b", u.url)
      assert.same({ "conversation_started", "conversation_analysed" }, u.events)
      assert.is_false(u.active)
      local got = run_json{ "--json", "webhooks", "get", w.webhookId }
      assert.equal("after", got.name)
      local out, err, code = run{ "webhooks", "update", w.webhookId }
      assert.equal(2, code, err)
      assert.equal("", out)
      assert.matches("webhooks update needs at least one of --name, --url, --event, --active", err, 1, true)
      run{ "webhooks", "delete", w.webhookId }
    end)

    it("verifies a delivery: exit 0 when valid, 1 with the reason when forged", function()
      local body = '{"event":"conversation_ended","call":{"callId":"call_9","status":"ended"}}'
      local path = write_file(body)
      local sig = webhook.sign(body, "whsec_x")
      local out, err, code = run({ "webhooks", "verify", "--body", path, "--signature", sig, "--secret", "whsec_x" }, {})
      assert.equal(0, code, err)
      assert.equal("valid: conversation_ended call_9 ended\n", out)
      -- from stdin, too
      out, err, code = run({ "webhooks", "verify", "--signature", sig, "--secret", "whsec_x" }, {}, path)
      assert.equal(0, code, err)
      assert.equal("valid: conversation_ended call_9 ended\n", out)

      out, err, code = run({ "webhooks", "verify", "--body", path, "--signature", sig, "--secret", "whsec_y" }, {})
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^invalid: bad_signature: ", err)

      local old = webhook.sign(body, "whsec_x", { t = os.time() - 600 })
      out, err, code = run({ "webhooks", "verify", "--body", path, "--signature", old, "--secret", "whsec_x" }, {})
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^invalid: too_old: ", err)
      os.remove(path)
    end)
  end)

  describe("agents", function()
    it("lists the agents and shows one", function()
      local out, err, code = run{ "agents", "list" }
      assert.equal(0, code, err)
      assert.matches("^AGENT%s+NAME%s+STATUS\n", out)
      assert.matches("\n" .. sb.agent .. "%s", out)
      local list = run_json{ "--json", "agents", "list" }
      local ids = {}
      for _, a in ipairs(list) do ids[a.agentId] = true end
      assert.is_true(ids[sb.agent])
      assert.equal(sb.agent, run_json{ "--json", "agents", "get", sb.agent }.agentId)
      out, err, code = run{ "agents", "get", sb.agent }
      assert.equal(0, code, err)
      assert.matches("^agentId%s+" .. sb.agent .. "\n", out)
      out, err, code = run{ "agents", "get", "agent_nope" }
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("404", err, 1, true)
    end)
  end)

  describe("dial", function()
    local function calls_per_row() return sb:calls_per("row_id") end

    it("places one call per valid row, journals it next to the CSV, and a second run places none", function()
      sb:reset()
      local path = write_file(CONTACTS)
      local out, err, code = run{ "dial", path, "--from", sb.number, "--agent", sb.agent, "--concurrency", "4" }
      assert.equal(0, code, err)
      assert.matches("placed 3, skipped 0, invalid 1, failed 0, uncertain 0 (of 4 rows)", out, 1, true)
      assert.matches("skipped: Row 3: invalid phone number '+1234'", err, 1, true)
      assert.matches("journal: " .. path .. ".journal", err, 1, true)
      assert.equal(3, sb:count("POST", "/v1/calls"))
      local journal = read_file(path .. ".journal")
      local _, intents = journal:gsub("\nI ", "")
      assert.equal(3, intents + (journal:match("^I ") and 1 or 0))
      out, err, code = run{ "--json", "dial", path, "--from", sb.number, "--agent", sb.agent }
      assert.equal(0, code, err)
      local report = json.decode(out)
      assert.same({ 0, 3, 1, 4 }, { report.placed, report.skipped, report.invalid, report.total })
      assert.equal("skipped", report.rows[1].status)
      assert.matches("^call_", report.rows[1].callId)
      assert.equal(3, sb:count("POST", "/v1/calls"))              -- nobody was called twice
      -- --no-journal is a fresh start, as it says
      out, err, code = run{ "dial", path, "--from", sb.number, "--agent", sb.agent, "--no-journal" }
      assert.equal(0, code, err)
      assert.matches("placed 3, skipped 0", out, 1, true)
      assert.equal(6, sb:count("POST", "/v1/calls"))
      os.remove(path .. ".journal")
      os.remove(path)
    end)

    it("after kill -9, dials only the rows never sent, and leaves the uncertain ones alone", function()
      sb:reset()
      local n = 24
      local rows = { "phone,row_id" }
      for i = 1, n do rows[#rows + 1] = string.format("+1212777%04d,r%d", i, i) end
      local path = write_file(table.concat(rows, "\n") .. "\n")
      local journal = path .. ".j"
      -- each POST waits 200 ms in the sandbox, so the kill lands with calls in flight
      sb:arm{ method = "POST", path = "/v1/calls", fault = "slow=200", count = 100000 }
      local cmd = string.format("env SIGMAMIND_API_KEY=%s SIGMAMIND_BASE_URL=%s %s dial %s --from %s --agent %s " ..
                                "--concurrency 4 --journal %s >/dev/null 2>&1", shell_quote(sb.key), shell_quote(sb.url),
                                shell_quote(CLI), shell_quote(path), shell_quote(sb.number), shell_quote(sb.agent),
                                shell_quote(journal))
      local ok, _, code = os.execute("timeout -s KILL 0.5 " .. cmd)
      assert.is_falsy(ok, "the dial finished before the kill")
      assert.equal(137, code)
      local out, err
      out, err, code = run{ "--json", "dial", path, "--from", sb.number, "--agent", sb.agent, "--journal", journal }
      local report = json.decode(out)
      assert.is_true(report.skipped + report.uncertain >= 1, err)
      assert.equal(n, report.placed + report.skipped + report.uncertain)
      assert.equal(report.uncertain > 0 and 1 or 0, code)        -- uncertain rows are a failure to report
      local per = calls_per_row()
      for _, r in ipairs(report.rows) do
        local got = per[string.format("r%d", r.row)] or 0
        if r.status == "uncertain" then
          assert.is_true(got <= 1, "uncertain row " .. r.row .. " was called " .. got .. " times")
        else
          assert.equal(1, got, "row " .. r.row .. " (" .. r.status .. ") was called " .. got .. " times")
        end
      end
      sb:request("DELETE", "/_sandbox/faults")
      os.remove(journal)
      os.remove(path)
    end)

    it("dials the first phone column of the header, whatever the other columns are called", function()
      sb:reset()
      local path = write_file("phone,to\n+12137770002,+12137770004\n")
      for _ = 1, 3 do                                    -- it used to pick one at random (pairs order)
        local out, err, code = run{ "--json", "dial", path, "--from", sb.number, "--agent", sb.agent, "--no-journal" }
        assert.equal(0, code, err)
        assert.equal("+12137770002", json.decode(out).rows[1].to)
      end
      os.remove(path)
    end)

    it("refuses bad dial options before dialing anyone", function()
      sb:reset()
      local path = write_file(CONTACTS)
      for _, args in ipairs{ { "--concurrency", "0" }, { "--concurrency", "2.5" }, { "--journal", "x", "--no-journal" },
                             { "--wait-timeout", "-1" } } do
        local all = { "dial", path, "--from", sb.number, "--agent", sb.agent }
        for _, v in ipairs(args) do all[#all + 1] = v end
        local out, err, code = run(all)
        assert.equal(2, code, err)
        assert.equal("", out)
      end
      local _, err, code = run{ "dial", path, "--from", sb.number, "--agent", sb.agent, "--journal", "/nonexistent/dir/j" }
      assert.equal(2, code)
      assert.matches("journal: /nonexistent/dir/j: No such file or directory", err, 1, true)
      assert.equal(0, sb:count("POST", "/v1/calls"))
      os.remove(path)
    end)

    it("draws a progress bar on a terminal (seen through tmux)", function()
      local rows = { "phone,customer_name" }
      for i = 1, 20 do rows[#rows + 1] = string.format("+121377720%02d,Person %d", i, i) end
      local path = write_file(table.concat(rows, "\n") .. "\n")
      local screen = on_terminal{ "dial", path, "--from", sb.number, "--agent", sb.agent }
      if not screen then
        os.remove(path)
        pending("tmux is not installed")
        return
      end
      os.remove(path)
      os.remove(path .. ".journal")
      assert.matches("EXIT=0", screen, 1, true)
      assert.matches("dial %[==============================%] 100%% 20/20", screen)
      assert.matches("placed 20, skipped 0, invalid 0, failed 0, uncertain 0 (of 20 rows)", screen, 1, true)
    end)
  end)

  describe("secrets kept out of argv (which ps and /proc/PID/cmdline show to every user)", function()
    local IMPORT = { "--json", "numbers", "import", "--number", "+12137779998", "--sip-uri", "sip.example.com",
                     "--username", "trunkuser" }
    local function with(list, ...)
      local out = {}
      for _, v in ipairs(list) do out[#out + 1] = v end
      for _, v in ipairs{ ... } do out[#out + 1] = v end
      return out
    end

    -- runs the CLI against a one-request HTTP server in this process and returns what reached it:
    -- the headers (names lower-cased) and the decoded body, then the CLI's stdout, stderr and code
    local function capture(args, env, stdin_file)
      local server = assert(socket.bind("127.0.0.1", 0))
      local _, port = server:getsockname()
      env.SIGMAMIND_BASE_URL = "http://127.0.0.1:" .. port
      local wait = launch(args, env, stdin_file)
      server:settimeout(30)
      local conn = server:accept()
      local headers, body = {}, nil
      if conn then
        conn:settimeout(30)
        conn:receive("*l")                                   -- the request line
        repeat
          local line = conn:receive("*l")
          local k, v = (line or ""):match("^([^:]+):%s*(.-)%s*$")
          if k then headers[k:lower()] = v end
        until not line or line == ""
        body = json.decode(conn:receive(tonumber(headers["content-length"] or 0)) or "")
        local reply = '{"sipPhoneNumber":"+12137779998","provider":"custom"}'
        conn:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #reply ..
                  "\r\nConnection: close\r\n\r\n" .. reply)
        conn:close()
      end
      server:close()
      local out, err, code = wait()
      return headers, body, out, err, code
    end

    it("reads the API key from the first line of stdin with --api-key-stdin", function()
      local _
      local path = write_file(sb.key .. "\r\nthe rest of stdin is not read\n")
      local out, err, code = run({ "--api-key-stdin", "--json", "numbers", "list" }, { SIGMAMIND_BASE_URL = sb.url },
                                 path)
      assert.equal(0, code, err)
      assert.matches(sb.number, out, 1, true)
      local wrong = write_file("sk_wrong\n")
      _, err, code = run({ "--api-key-stdin", "numbers", "list" }, { SIGMAMIND_BASE_URL = sb.url }, wrong)
      assert.equal(1, code, err)                               -- the key sent is stdin's, refused by the sandbox
      assert.matches("^sigmamind: GET /v1/phone%-numbers: 401", err)
      os.remove(path); os.remove(wrong)
    end)

    it("takes the trunk password of numbers import from --password-stdin or $SIGMAMIND_TRUNK_PASSWORD", function()
      local _
      local path = write_file("p@ss word:1\r\n")
      local headers, body, out, err, code = capture(with(IMPORT, "--password-stdin"),
                                                    { SIGMAMIND_API_KEY = "sk_env", SIGMAMIND_TRUNK_PASSWORD = "env" },
                                                    path)
      assert.equal(0, code, err)
      assert.equal("+12137779998", json.decode(out).sipPhoneNumber)
      assert.equal("sk_env", headers["x-api-key"])
      assert.equal("p@ss word:1", body.trunkPassword)          -- the flag wins over the variable
      assert.equal("trunkuser", body.trunkUsername)

      _, body, _, err, code = capture(IMPORT, { SIGMAMIND_API_KEY = "sk_env", SIGMAMIND_TRUNK_PASSWORD = "from env" })
      assert.equal(0, code, err)
      assert.equal("from env", body.trunkPassword)

      local key = write_file("sk_stdin\n")
      headers, body, _, err, code = capture(with({ "--api-key-stdin" }, table.unpack(with(IMPORT, "--password",
                                                                                        "visible"))), {}, key)
      assert.equal(0, code, err)
      assert.equal("sk_stdin", headers["x-api-key"])
      assert.equal("visible", body.trunkPassword)              -- --password still works
      os.remove(path); os.remove(key)
    end)

    it("refuses two secrets on one stdin, an empty stdin, two sources for one secret, or none, sending nothing", function()
      local key = write_file(sb.key .. "\n")
      local before = sb:api_requests()
      for _, case in ipairs{
        { with(IMPORT, "--password-stdin"), key, "--api-key-stdin and --password-stdin cannot both read stdin",
          { "--api-key-stdin" } },
        { { "calls", "list" }, nil, "--api-key-stdin expects the secret on the first line of stdin, got nothing",
          { "--api-key-stdin" } },
        { with(IMPORT, "--password-stdin"), nil,
          "--password-stdin expects the secret on the first line of stdin, got nothing" },
        { with(IMPORT), nil, "numbers import needs the trunk password: $SIGMAMIND_TRUNK_PASSWORD, " ..
                             "--password-stdin or --password" },
        { with(IMPORT, "--password", "p", "--password-stdin"), key, "can not be used together" },
        { { "calls", "list" }, key, "can not be used together", { "--api-key", "k", "--api-key-stdin" } },
        { { "webhooks", "verify", "--signature", "t=1,v1=00", "--secret", "s" }, key,
          "--api-key-stdin: webhooks verify needs no API key, and reads the body from stdin", { "--api-key-stdin" } },
      } do
        local args = with(case[4] or {}, table.unpack(case[1]))
        local env = case[4] and { SIGMAMIND_BASE_URL = sb.url } or nil
        local out, err, code = run(args, env, case[2])
        assert.equal(2, code, table.concat(args, " ") .. ": " .. err)
        assert.equal("", out)
        assert.matches(case[3], err, 1, true)
      end
      local empty = write_file("\n")
      local _, err, code = run({ "--api-key-stdin", "calls", "list" }, { SIGMAMIND_BASE_URL = sb.url }, empty)
      assert.equal(2, code, err)
      assert.matches("--api-key-stdin expects the secret on the first line of stdin, got an empty line", err, 1, true)
      assert.same(before, sb:api_requests())
      os.remove(key); os.remove(empty)
    end)

    it("says in --help that argv is visible to other users, and which forms are not", function()
      local out, _, code = run{ "--help" }
      assert.equal(0, code)
      out = out:gsub("%s+", " ")
      assert.matches("a command line is visible to every user of this machine (ps, /proc/PID/cmdline)", out, 1, true)
      for _, form in ipairs{ "$SIGMAMIND_API_KEY", "--api-key-stdin", "$SIGMAMIND_TRUNK_PASSWORD",
                             "--password-stdin", "$SIGMAMIND_WEBHOOK_SECRET" } do
        assert.matches(form, out, 1, true)
      end
      assert.matches("Read the API key from the first line of stdin", out, 1, true)
      assert.matches("--api-key <api_key> API key (default: $SIGMAMIND_API_KEY). Visible to other users", out, 1, true)
      out, _, code = run{ "numbers", "import", "--help" }
      assert.equal(0, code)
      out = out:gsub("%s+", " ")
      assert.matches("--password-stdin Read the trunk password from the first line of stdin", out, 1, true)
      assert.matches("Trunk password (default: $SIGMAMIND_TRUNK_PASSWORD). Visible to other users in ps and " ..
                     "/proc/PID/cmdline", out, 1, true)
    end)
  end)

  describe("exit codes", function()
    it("exits 2 on a usage error, with the usage on stderr", function()
      local out, err, code = run{ "calls", "get" }
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("Usage: sigmamind", err, 1, true)
      assert.matches("missing argument 'id'", err, 1, true)
      local _
      _, _, code = run{ "calls", "frobnicate" }
      assert.equal(2, code)
      _, err, code = run({ "calls", "list" }, { SIGMAMIND_BASE_URL = sb.url })
      assert.equal(2, code)
      assert.matches("no API key", err, 1, true)
      _, err, code = run{ "calls", "create", "--from", sb.number, "--to", "12345" }   -- refused before sending
      assert.equal(2, code)
      assert.matches("toPhoneNumber", err, 1, true)
    end)

    it("shows the usage of the subcommand at fault, and names the flag", function()
      for _, case in ipairs{
        { { "calls", "list", "--size", "abc" }, "Usage: sigmamind calls list ",
          "Error: --size: malformed argument 'abc' (expected a number)\n" },
        { { "--timeout", "soon", "calls", "get", "call_x" }, "Usage: sigmamind ([--api-key",         -- a global flag
          "Error: --timeout: malformed argument 'soon' (expected a number)\n" },
        { { "dial", "x.csv", "--from", "+14157774444", "--agent", "a", "--concurrency", "many" }, "Usage: sigmamind dial ",
          "Error: --concurrency: malformed argument 'many' (expected a number)\n" },
        { { "calls", "list", "--format", "xml" }, "Usage: sigmamind calls list ",
          "Error: argument for option '--format' must be one of 'table', 'json', 'csv'\n" },
        { { "numbers", "update", "+14157774444" }, "Usage: sigmamind numbers update ",
          "Error: numbers update needs at least one of --name, --inbound-agent, --outbound-agent\n" },
        { { "calls" }, "Usage: sigmamind calls ", "Error: a command is required\n" },
      } do
        local out, err, code = run(case[1])
        assert.equal(2, code, err)
        assert.equal("", out)
        assert.equal(case[2], err:sub(1, #case[2]), err)
        assert.equal(case[3], err:sub(-#case[3]), err)
      end
    end)

    local function show_args(args)
      local out = {}
      for i, v in ipairs(args) do out[i] = v == "" and "''" or v end
      return table.concat(out, " ")
    end

    -- every command maps an `invalid` error (refused before sending) to 2, however it reads the API
    for _, case in ipairs{
      { { "calls", "list", "--status", "bogus" }, "/v1/calls", "status" },
      { { "--json", "calls", "list", "--status", "bogus" }, "/v1/calls", "status" },
      { { "calls", "list", "--status", "bogus", "--format", "csv" }, "/v1/calls", "status" },   -- calls:pages
      { { "calls", "list", "--size", "0" }, "/v1/calls", "size" },
      { { "campaigns", "list", "--status", "bogus" }, "/v1/campaigns", "status" },
      { { "webhooks", "list", "--agent", "" }, "/v1/webhooks", "agentId" },
      { { "campaigns", "watch", "" }, "/v1/campaigns/{campaignId}", "campaignId" },            -- campaigns:progress
    } do
      local args, route, field = case[1], case[2], case[3]
      it("exits 2 on `" .. show_args(args) .. "`, naming " .. field .. ", and sends nothing", function()
        local before, routed = sb:api_requests(), sb:count("GET", route)
        local out, err, code = run(args)
        assert.equal(2, code, err)
        assert.equal("", out)
        assert.matches("^sigmamind: GET " .. route:gsub("[{}]", "%%%0") .. ": invalid: " .. field .. ": ", err)
        assert.equal(routed, sb:count("GET", route))
        assert.same(before, sb:api_requests())               -- no request at all reached the sandbox
      end)
    end

    it("refuses a page bigger than the API serves before sending, as it refuses --size 0", function()
      for _, args in ipairs{ { "calls", "list", "--size", "1000" }, { "calls", "list", "--size", "101", "--format", "csv" },
                             { "--json", "calls", "list", "--size", "1000" } } do
        local before = sb:api_requests()
        local out, err, code = run(args)
        assert.equal(2, code, err)
        assert.equal("", out)
        assert.matches("^sigmamind: GET /v1/calls: invalid: size: expected an integer from 1 to 100, got 10[01]0?\n", err)
        assert.same(before, sb:api_requests())
      end
    end)

    -- seconds below 0 are refused before anything is sent (calls:wait, core.sleep raise midway)
    for _, case in ipairs{
      { "calls", "create", "--from", "NUMBER", "--to", "+12137774446", "--wait", "--wait-timeout=-1" },
      { "calls", "wait", "call_x", "--wait-timeout=-1" },
      { "campaigns", "watch", "camp_x", "--interval=-1" },
      { "campaigns", "watch", "camp_x", "--wait-timeout=-1" },
    } do
      it("exits 2 on `" .. show_args(case) .. "` and sends nothing", function()
        local args = {}
        for i, v in ipairs(case) do args[i] = v == "NUMBER" and sb.number or v end
        local before = sb:api_requests()
        local out, err, code = run(args)
        assert.equal(2, code, err)
        assert.equal("", out)
        assert.matches("Error: %-%-[%w-]+ expects seconds >= 0, got %-1", err)
        assert.same(before, sb:api_requests())               -- for create: the call was not placed
      end)
    end

    it("exits 2 from webhooks verify on a tolerance below 0 or only empty secrets, 1 on a bad signature", function()
      local body = '{"event":"conversation_ended","call":{"callId":"call_9","status":"ended"}}'
      local path = write_file(body)
      local sig = webhook.sign(body, "whsec_x")
      local _, err, code = run({ "webhooks", "verify", "--body", path, "--signature", sig, "--secret", "whsec_x",
                                 "--tolerance=-5" }, {})
      assert.equal(2, code, err)
      assert.matches("--tolerance expects seconds >= 0", err, 1, true)
      _, err, code = run({ "webhooks", "verify", "--body", path, "--signature", sig, "--secret", "" }, {})
      assert.equal(2, code, err)
      assert.matches("^invalid: no_secret: ", err)
      _, err, code = run({ "webhooks", "verify", "--body", path, "--signature", sig, "--secret", "", "--secret", "whsec_y" },
                         {})
      assert.equal(1, code, err)                               -- one usable secret: the signature is judged
      assert.matches("^invalid: bad_signature: ", err)
      os.remove(path)
    end)

    it("exits 1 on an API failure of a listing, whichever way it reads the API", function()
      local env = { SIGMAMIND_API_KEY = "sk_wrong", SIGMAMIND_BASE_URL = sb.url }
      for _, case in ipairs{
        { { "campaigns", "list" }, "/v1/campaigns" },
        { { "campaigns", "list", "--status", "live" }, "/v1/campaigns" },
        { { "calls", "list", "--format", "csv" }, "/v1/calls" },
        { { "numbers", "list" }, "/v1/phone%-numbers" },
        { { "webhooks", "list" }, "/v1/webhooks" },
        { { "campaigns", "watch", "camp_x" }, "/v1/campaigns/camp_x" },
      } do
        local what = show_args(case[1])
        local _, err, code = run(case[1], env)
        assert.equal(1, code, what .. ": " .. err)
        assert.matches("^sigmamind: GET " .. case[2] .. ": 401", err, 1, false, what)
      end
      local _, err, code = run({ "--base-url", "http://127.0.0.1:9", "--timeout", "2", "campaigns", "list" },
                               { SIGMAMIND_API_KEY = sb.key })
      assert.equal(1, code, err)
      assert.matches("^sigmamind: GET /v1/campaigns: network: ", err)
    end)

    it("prints no CSV header when the first page of calls fails", function()
      local out, err, code = run({ "calls", "list", "--format", "csv" },
                                 { SIGMAMIND_API_KEY = "sk_wrong", SIGMAMIND_BASE_URL = sb.url })
      assert.equal(1, code, err)
      assert.equal("", out)
    end)

    it("exits 1 on an API failure and prints the error", function()
      local _, err, code = run({ "calls", "list" }, { SIGMAMIND_API_KEY = "sk_wrong", SIGMAMIND_BASE_URL = sb.url })
      assert.equal(1, code)
      assert.matches("^sigmamind: GET /v1/calls: 401", err)
      assert.is_nil(err:find("sk_wrong", 1, true))
    end)

    it("exits 1 when the API cannot be reached", function()
      local _, err, code = run{ "--base-url", "http://127.0.0.1:9", "--timeout", "2", "calls", "get", "call_x" }
      assert.equal(1, code)
      assert.matches("^sigmamind: ", err)
    end)

    it("exits 0 with --help", function()
      local out, _, code = run{ "--help" }
      assert.equal(0, code)
      assert.matches("Exit codes: 0 ok, 1 API or network failure", out, 1, true)
    end)
  end)

  describe("the command itself", function()
    it("says in one line how to get argparse when it is missing, and exits 1", function()
      local nowhere = "/nonexistent/?.lua"        -- no system directory: argparse cannot be found
      local out, err, code = run({ "calls", "list" }, { SIGMAMIND_API_KEY = sb.key, SIGMAMIND_BASE_URL = sb.url,
                                                        LUA_PATH = nowhere, LUA_PATH_5_4 = nowhere })
      assert.equal(1, code, err)
      assert.equal("", out)
      assert.equal("sigmamind: the command line needs the Lua module argparse: apt-get install lua-argparse, " ..
                   "or luarocks install argparse\n", err)
    end)

    it("prints the module's _VERSION with --version", function()
      local out, err, code = run({ "--version" }, {})
      assert.equal(0, code, err)
      assert.matches("^lua%-sigmamind %d+%.%d+%.%d+\n$", out)
      assert.equal(require("sigmamind")._VERSION .. "\n", out)
    end)
  end)

  describe("--json", function()
    -- the keys of every object of a JSON text, in the order the text has them
    local function key_orders(text)
      local orders, stack, i = {}, {}, 1
      while i <= #text do
        local c = text:sub(i, i)
        if c == '"' then
          local j = i + 1
          while text:sub(j, j) ~= '"' do j = j + (text:sub(j, j) == "\\" and 2 or 1) end
          local top = stack[#stack]
          if top and top.object and text:find("^%s*:", j + 1) then top.keys[#top.keys + 1] = text:sub(i + 1, j - 1) end
          i = j + 1
        else
          if c == "{" or c == "[" then stack[#stack + 1] = { object = c == "{", keys = {} }
          elseif c == "}" or c == "]" then
            local t = table.remove(stack)
            if t.object then orders[#orders + 1] = t.keys end
          end
          i = i + 1
        end
      end
      return orders
    end

    local function assert_sorted(text)
      local orders = key_orders(text)
      assert.is_true(#orders > 0, text)
      for _, keys in ipairs(orders) do
        local sorted = { table.unpack(keys) }
        table.sort(sorted)
        assert.same(sorted, keys, text)
      end
    end

    it("writes every object's keys sorted, the same text run after run", function()
      local status, call = sb:request("POST", "/v1/calls", { fromPhoneNumber = sb.number, toPhoneNumber = "+12137775601",
                                                             agentId = sb.agent, dynamicVariables = { b = "2", a = "1" } })
      assert.equal(201, status)
      assert.equal("ended", run_json{ "--json", "calls", "wait", call.callId, "--wait-timeout", "30" }.status)
      for _, args in ipairs{ { "--json", "calls", "get", call.callId }, { "--json", "numbers", "list" },
                             { "--json", "agents", "get", sb.agent } } do
        local first
        for _ = 1, 3 do
          local out, err, code = run(args)
          assert.equal(0, code, err)
          assert_sorted(out)
          first = first or out
          assert.equal(first, out)
        end
      end
    end)

    it("writes an error as JSON too, the last line of stderr, after the line for people", function()
      local _, out, err, code
      out, err, code = run{ "--json", "calls", "get", "call_nope" }
      assert.equal(1, code)
      assert.equal("", out)
      local line, doc = err:match("^(sigmamind: [^\n]*)\n({[^\n]*})\n$")
      assert.is_truthy(line, err)
      assert.matches("^sigmamind: GET /v1/calls/call_nope: 404", line)
      local e = json.decode(doc).error
      assert.same({ "not_found", 404, "GET", "/v1/calls/call_nope" }, { e.kind, e.status, e.method, e.path })
      assert.is_string(e.message)
      assert_sorted(doc)

      _, err, code = run{ "calls", "list", "--status", "bogus", "--json" }          -- refused before sending
      assert.equal(2, code)
      e = json.decode(err:match("\n({[^\n]*})\n$")).error
      assert.same({ "invalid", "status", false }, { e.kind, e.field, e.sent })

      for _, args in ipairs{ { "--json", "calls", "get" }, { "calls", "list", "--json", "--size", "x" } } do
        _, err, code = run(args)                                              -- argparse's refusals
        assert.equal(2, code)
        e = json.decode(err:match("\n({[^\n]*})\n$")).error
        assert.equal("usage", e.kind)
        assert.matches("argument", e.message)
      end
      _, err, code = run({ "--json", "calls", "list" }, { SIGMAMIND_BASE_URL = sb.url })      -- no API key
      assert.equal(2, code)
      assert.same({ kind = "usage", message = "no API key: pass api_key or set SIGMAMIND_API_KEY (or --api-key-stdin)" },
                  json.decode(err:match("\n({[^\n]*})\n$")).error)
      -- without --json, the line for people alone
      _, err = run{ "calls", "get", "call_nope" }
      assert.matches("^sigmamind: GET /v1/calls/call_nope: 404[^\n]*\n$", err)
    end)
  end)

  describe("calls stats", function()
    it("draws its bars with block characters on a terminal, and in ASCII on anything else", function()
      local status, call = sb:request("POST", "/v1/calls", { fromPhoneNumber = sb.number, toPhoneNumber = "+12137775701",
                                                             agentId = sb.agent })
      assert.equal(201, status)
      run_json{ "--json", "calls", "wait", call.callId, "--wait-timeout", "30" }
      local out, err, code = run{ "calls", "stats" }                       -- stdout is a pipe here
      assert.equal(0, code, err)
      assert.matches("\nSTATUS\n  ended +[%d,]+ +[%d.]+ %%  #+", out)
      assert.is_nil(out:find("[\128-\255]"), out)                         -- nothing but ASCII
      local screen = on_terminal{ "calls", "stats" }
      if not screen then pending("tmux is not installed") return end
      assert.matches("EXIT=0", screen, 1, true)
      assert.matches("\nSTATUS\n  ended +[%d,]+ +[%d.]+ %%  \226\150\136", screen)     -- U+2588, the full block
    end)
  end)

  describe("Ctrl-C", function()
    it("answers SIGINT with one line and exit status 130, never a traceback", function()
      sb:arm{ method = "GET", path = "/v1/calls/call_slow", fault = "slow=5000", count = 1 }
      local before = sb:count("GET", "/v1/calls/{callId}")
      local pidfile = os.tmpname()
      local wait = launch({ "calls", "get", "call_slow" }, nil, nil, pidfile)
      -- once the request reached the sandbox, the CLI is waiting for the answer
      for _ = 1, 600 do
        if sb:count("GET", "/v1/calls/{callId}") > before then break end
        socket.sleep(0.05)
      end
      local pid = read_file(pidfile):match("%d+")
      os.remove(pidfile)
      assert.is_true(os.execute("kill -INT " .. pid))
      local out, err, code = wait()
      assert.equal(130, code, err)
      assert.equal("", out)
      assert.equal("sigmamind: interrupted\n", err)
      sb:request("DELETE", "/_sandbox/faults")
    end)
  end)

  describe("completion", function()
    it("prints a bash script that completes commands and flags", function()
      local out, err, code = run({ "completion", "bash" }, {})
      assert.equal(0, code, err)
      local path = write_file(out)
      -- what bash's completion would offer after `sigmamind ag<Tab>` and `... list --f<Tab>`
      local p = io.popen("bash -c " .. shell_quote("source " .. shell_quote(path) .. " && " ..
        "COMP_WORDS=(sigmamind ag); COMP_CWORD=1; _sigmamind; echo \"${COMPREPLY[*]}\"; " ..
        "COMP_WORDS=(sigmamind calls list --f); COMP_CWORD=3; _sigmamind; echo \"${COMPREPLY[*]}\"; " ..
        "complete -p sigmamind"))
      local offered = p:read("a")
      p:close()
      os.remove(path)
      local words, complete = offered:match("^(agents\n%-%-format\n)(complete [^\n]*)\n$")
      assert.is_truthy(words, offered)
      assert.matches("-F _sigmamind ", complete, 1, true)
    end)

    it("prints zsh and fish scripts, and refuses another shell", function()
      local out, err, code = run({ "completion", "zsh" }, {})
      assert.equal(0, code, err)
      assert.matches("^#compdef sigmamind\n", out)
      assert.matches('"agents:List your AI voice agents (read only)"', out, 1, true)
      out, err, code = run({ "completion", "fish" }, {})
      assert.equal(0, code, err)
      assert.matches("complete -c sigmamind -n '__fish_sigmamind_using_command' -xa 'agents'", out, 1, true)
      out, err, code = run({ "completion", "tcsh" }, {})
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("argument 'shell' must be one of 'bash', 'zsh', 'fish'", err, 1, true)
    end)
  end)

  describe("sandbox", function()
    it("passes its arguments to bin/sigmamind-sandbox", function()
      local out, err, code = run({ "sandbox", "--daemon", "--port", "0", "--speed", "50" }, {})
      assert.equal(0, code, err)
      local prefix = out:match("SIGMAMIND_SANDBOX_PREFIX=([^\n]+)")
      assert.matches("SIGMAMIND_BASE_URL=http://127.0.0.1:%d+", out)
      local _, _, scode = run({ "sandbox", "stop", "--prefix", prefix }, {})
      assert.equal(0, scode)
    end)

    it("answers --help with the launcher's usage and 0, and takes global flags before it", function()
      for _, args in ipairs{ { "sandbox", "--help" }, { "sandbox", "-h" }, { "--json", "sandbox", "--help" } } do
        local out, err, code = run(args, {})
        assert.equal(0, code, err)
        assert.matches("^Usage: sigmamind sandbox ", out)
        assert.matches("sigmamind-sandbox [--port N]", out, 1, true)
        assert.matches("sigmamind-sandbox stop [--prefix DIR]", out, 1, true)
      end
      local out, err, code = run({ "--json", "sandbox", "--daemon", "--port", "0", "--speed", "50" }, {})
      assert.equal(0, code, err)
      local prefix = out:match("SIGMAMIND_SANDBOX_PREFIX=([^\n]+)")
      assert.is_truthy(prefix, out)
      local _, _, scode = run({ "--json", "sandbox", "stop", "--prefix", prefix }, {})
      assert.equal(0, scode)
    end)
  end)
end)
