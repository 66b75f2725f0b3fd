-- The sandbox (issue 2): a local SigmaMind driven over plain HTTP, never through the client module.
local sandbox = require "support.sandbox"
local util = require "support.util"
local socket = require "socket"
local json = sandbox.json

local ROOT = sandbox.root()
local LAUNCHER = ROOT .. "/bin/sigmamind-sandbox"

local function b64(s)
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((s:gsub(".", function(x)
    local r, byte = "", x:byte()
    for i = 8, 1, -1 do r = r .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

local sh, wait_for = util.capture, util.wait_for   -- sh: stdout and exit code

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- unix seconds of the sandbox's ISO-8601 UTC times ("2024-04-20T10:00:00.250Z"), whatever the local zone
local function epoch(iso)
  local y, mo, d, h, mi, sec, ms = iso:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)%.(%d+)Z$")
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * ((mo + 9) % 12) + 2) // 5 + d - 1
  local days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) + tonumber(ms) / 1000
end

local CALL_FIELDS = { "agent", "callId", "callType", "createdAt", "duration", "dynamicVariables", "endTime",
  "phoneNumber", "recordingUrl", "startTime", "status", "terminationReason", "transcript", "updatedAt" }
local NUMBER_FIELDS = { "active", "friendlyName", "inboundAgentId", "outboundAgentId", "outboundPhoneNumber",
  "provider", "sipPhoneNumber", "terminationSipURI" }
local CAMPAIGN_FIELDS = { "agent", "campaignId", "campaignName", "campaignStatus", "concurrentCalls", "errors",
  "phoneNumber", "scheduled", "scheduledDate" }
local WEBHOOK_FIELDS = { "active", "agentId", "events", "name", "secret", "url", "webhookId", "workspaceId" }

describe("the sandbox", function()
  local sb

  setup(function()
    sb = sandbox.start{ speed = 10 }
  end)

  teardown(function()
    if sb then sb:stop() end
  end)

  before_each(function()
    sb:reset()
  end)

  local function create_call(to, extra)
    local body = { fromPhoneNumber = sb.number, toPhoneNumber = to or "+14155552671" }
    for k, v in pairs(extra or {}) do body[k] = v end
    local status, call, raw = sb:request("POST", "/v1/calls", body)
    assert.are.equal(201, status, raw)
    return call
  end

  local function expect_400(method, path, body, field)
    local status, err, raw = sb:request(method, path, body)
    assert.are.equal(400, status, raw)
    assert.are.equal("Bad Request", err.error)
    assert.are.equal(400, err.status)
    assert.are.equal(path:match("^[^?]*"), err.path)
    assert.is_truthy(err.timestamp:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d"))
    assert.are.equal(field .. ":", err.message:match("^[%w%.]+:"), err.message)
    return err
  end

  -- the delivery log of the query ("callId=..."), once n of its entries are done (result
  -- "delivered", or as done(entry) says); nil after 10 s
  local function deliveries(query, n, done)
    done = done or function(e) return e.result == "delivered" end
    return wait_for(function()
      local _, d = sb:request("GET", "/_sandbox/deliveries?" .. query)
      local k = 0
      for _, e in ipairs(d.data) do if done(e) then k = k + 1 end end
      return k == n and d
    end, 10)
  end

  describe("as a tool", function()
    it("prints the base URL, key, ready number and agent, on a free port", function()
      assert.is_truthy(sb.url:match("^http://127%.0%.0%.1:%d+$"))
      assert.is_true(sb.port > 0)
      assert.are.equal("sk_test_sandbox", sb.key)
      assert.are.equal("+14157774444", sb.number)
      assert.are.equal("agent_abc123", sb.agent)
      assert.is_truthy(sb.prefix:match("sigmamind%-sandbox"))
    end)

    it("exports what it prints to the shell that evals it, and `stop` then stops that shell's one", function()
      -- mine is started first and another after it, so "the last one started" would be the wrong one
      local script = [[
        unset SIGMAMIND_BASE_URL SIGMAMIND_API_KEY SIGMAMIND_SANDBOX_PREFIX
        eval "$("$L" --daemon --port 0)" || exit 1
        mine=$SIGMAMIND_SANDBOX_PREFIX
        env | grep -c '^SIGMAMIND_\(BASE_URL\|API_KEY\|SANDBOX_NUMBER\|SANDBOX_AGENT\|SANDBOX_PID\|SANDBOX_PREFIX\)='
        o=$("$L" --daemon --port 0)
        other=$(printf '%s\n' "$o" | sed -n 's/^SIGMAMIND_SANDBOX_PREFIX=//p')
        ou=$(printf '%s\n' "$o" | sed -n 's/^SIGMAMIND_BASE_URL=//p')
        "$L" stop; echo "stop=$?"
        test -d "$mine" && echo "mine left" || echo "mine gone"
        curl -s -o /dev/null -w '%{http_code}\n' -H 'X-API-Key: sk_test_sandbox' "$ou/v1/agents"
        "$L" stop --prefix "$other"
        test -d "$other" && echo "other left" || echo "other gone"
      ]]
      local out = sh(("cd /tmp && L=%s sh -c %s 2>&1"):format(sandbox.shell_quote(LAUNCHER), sandbox.shell_quote(script)))
      assert.are.equal("6\nstop=0\nmine gone\n200\nother gone\n", out)
    end)

    it("refuses a TMPDIR it could not write unquoted into its configuration", function()
      local out, code = sh("TMPDIR='/tmp/a dir' " .. LAUNCHER .. " --port 0 2>&1")
      assert.are.equal(2, code)
      assert.is_truthy(out:find("TMPDIR: expected a path of letters, digits or _./+@%=-, got '/tmp/a dir'", 1, true), out)
    end)

    it("says which package to install and exits 1 when nginx is missing", function()
      local out, code = sh("SIGMAMIND_SANDBOX_NGINX=/nonexistent/nginx " .. LAUNCHER .. " --port 0 2>&1")
      assert.are.equal(1, code)
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal(1, #lines, out)
      assert.is_truthy(out:match("libnginx%-mod%-http%-lua"), out)
    end)

    it("stops on SIGTERM in the foreground and removes its prefix", function()
      local out = sh("cd /tmp && { " .. LAUNCHER .. " --port 0 > /tmp/sbfg.$$ 2>/tmp/sbfg.err & pid=$!; " ..
        "for i in $(seq 1 200); do grep -q PREFIX /tmp/sbfg.$$ && break; sleep 0.05; done; " ..
        "p=$(sed -n 's/SIGMAMIND_SANDBOX_PREFIX=//p' /tmp/sbfg.$$); u=$(sed -n 's/SIGMAMIND_BASE_URL=//p' /tmp/sbfg.$$); " ..
        "curl -s -o /dev/null -w '%{http_code}' -H 'X-API-Key: sk_test_sandbox' $u/v1/agents; echo; " ..
        "kill -TERM $pid; wait $pid; test -d \"$p\" && echo left || echo gone; " ..
        "curl -s -o /dev/null --max-time 1 $u/v1/agents && echo up || echo down; rm -f /tmp/sbfg.$$; }")
      assert.are.equal("200\ngone\ndown\n", out)
    end)

    it("serves HTTPS as well with --https-port", function()
      local dir = sh("mktemp -d"):gsub("%s+$", "")
      sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout " .. dir .. "/k.pem -out " .. dir ..
        "/c.pem -days 1 -subj /CN=127.0.0.1 2>/dev/null")
      local tls = sandbox.start{ args = { "--https-port", "0", "--cert", dir .. "/c.pem", "--key", dir .. "/k.pem" } }
      local ok, err = pcall(function()
        assert.is_truthy(tls.https_url:match("^https://127%.0%.0%.1:%d+$"))
        local code = sh("curl -s -o /dev/null -w '%{http_code}' --cacert " .. dir .. "/c.pem -H 'X-API-Key: " ..
          tls.key .. "' " .. tls.https_url .. "/v1/agents")
        assert.are.equal("200", code)
      end)
      tls:stop()
      sh("rm -rf " .. dir)
      assert(ok, err)
    end)
  end)

  describe("auth and routing", function()
    it("answers 401 without the key or with a wrong one", function()
      for _, key in ipairs{ "", "sk_wrong" } do
        local status, err = sb:request("GET", "/v1/calls", nil, { ["X-API-Key"] = key })
        assert.are.equal(401, status)
        assert.are.same({ "Unauthorized", "Missing or invalid X-API-Key", "/v1/calls", 401 },
          { err.error, err.message, err.path, err.status })
      end
      assert.are.equal(401, (sb:request("GET", "/_sandbox/state", nil, { ["X-API-Key"] = "nope" })))
    end)

    it("answers 404 for an unknown route and 405 for a wrong method", function()
      local status, err = sb:request("GET", "/v1/nothing")
      assert.are.equal(404, status)
      assert.are.equal("Not Found", err.error)
      local status2, _, _, headers = sb:request("PUT", "/v1/calls")
      assert.are.equal(405, status2)
      assert.are.equal("GET, POST", headers["allow"])
    end)

    it("answers 400 for a bad JSON body", function()
      local err = expect_400("POST", "/v1/calls", "{not json", "body")
      assert.are.equal("body: expected a JSON object, got invalid JSON", err.message)
      expect_400("POST", "/v1/calls", "[1,2]", "body")
    end)
  end)

  describe("calls", function()
    it("creates a call with exactly the fields of a Call, the number's agent filled in", function()
      local call = create_call("+14155552671", { dynamicVariables = { customer_name = "Ana" } })
      assert.are.same(CALL_FIELDS, keys(call))
      assert.are.same(NUMBER_FIELDS, keys(call.phoneNumber))
      assert.are.equal("scheduled", call.status)
      assert.are.equal("outbound", call.callType)
      assert.are.same({ name = "Sandbox Agent", agentId = "agent_abc123", status = "Live" }, call.agent)
      assert.are.equal(sb.number, call.phoneNumber.sipPhoneNumber)
      assert.are.same({ customer_name = "Ana" }, call.dynamicVariables)
      assert.are.equal(json.null, call.endTime)
      local status, got = sb:request("GET", "/v1/calls/" .. call.callId)
      assert.are.equal(200, status)
      assert.are.equal(call.callId, got.callId)
    end)

    it("lists each call exactly as GET shows it, in every state and outcome", function()
      -- the list writes calls as fragments, GET encodes the call object: two ways that must agree. A slow
      -- sandbox moved on by its clock holds each state still while both are read.
      local slow = sandbox.start{ speed = 0.01 }      -- scheduled for 100 s, then 2,000 s in progress
      local ok, err = pcall(function()
        local ids = {}
        for _, to in ipairs{ "+14155552671", "+12135550101", "+12135550102", "+12135550103", "+12135550104",
                             "+12135550105", "+12135550106" } do
          local status, call, raw = slow:request("POST", "/v1/calls", { fromPhoneNumber = slow.number,
            toPhoneNumber = to, dynamicVariables = { quote = 'say "hi"\n', ["caf\u{e9}"] = 1.5 } })
          assert.are.equal(201, status, raw)
          ids[#ids + 1] = call.callId
        end
        local function compare(want_statuses, extra)
          local status, page = slow:request("GET", "/v1/calls?size=100")
          assert.are.equal(200, status)
          assert.are.equal(#ids + (extra or 0), #page.data)
          local seen = {}
          for _, rec in ipairs(page.data) do
            local gstatus, got = slow:request("GET", "/v1/calls/" .. rec.callId)
            assert.are.equal(200, gstatus)
            assert.are.same(got, rec)
            seen[rec.status] = true
          end
          assert.are.same(want_statuses, seen)
        end
        compare{ scheduled = true }
        slow:advance(150)
        compare{ in_progress = true, not_connected = true, error = true }   -- the unanswered end as they ring
        slow:advance(100000)
        compare{ ended = true, not_connected = true, error = true }
        assert.are.equal(200, (slow:request("POST", "/_sandbox/seed", { calls = 3, mix = "uniform" })))   -- no variables
        compare({ ended = true, not_connected = true, error = true }, 3)
      end)
      slow:stop()
      assert(ok, err)
    end)

    it("validates the documented constraints", function()
      expect_400("POST", "/v1/calls", { toPhoneNumber = "+14155552671" }, "fromPhoneNumber")
      local err = expect_400("POST", "/v1/calls", { fromPhoneNumber = "+19995550000", toPhoneNumber = "+14155552671" },
        "fromPhoneNumber")
      assert.is_truthy(err.message:find("not a number on this account", 1, true))
      err = expect_400("POST", "/v1/calls", { fromPhoneNumber = sb.number, toPhoneNumber = "12345" }, "toPhoneNumber")
      assert.is_truthy(err.message:find("got '12345'", 1, true))
      expect_400("POST", "/v1/calls", { fromPhoneNumber = sb.number, toPhoneNumber = "+14155552671",
        agentId = string.rep("a", 65) }, "agentId")
      expect_400("POST", "/v1/calls", { fromPhoneNumber = sb.number, toPhoneNumber = "+14155552671",
        agentId = "agent_nobody" }, "agentId")
      expect_400("POST", "/v1/calls", { fromPhoneNumber = sb.number, toPhoneNumber = "+14155552671",
        dynamicVariables = "x" }, "dynamicVariables")
      assert.are.equal(0, sb:state().calls)
      -- lengths are characters: 128 two-byte letters make a name, 129 do not
      local hook = { agentId = sb.agent, url = "http://127.0.0.1:9/hook", events = { "conversation_ended" } }
      hook.name = string.rep("\u{e9}", 128)
      assert.are.equal(201, (sb:request("POST", "/v1/webhooks", hook)))
      hook.name = string.rep("\u{e9}", 129)
      expect_400("POST", "/v1/webhooks", hook, "name")
    end)

    it("answers 404 for an unknown call, and deletes with 204 and an empty body", function()
      local status, err = sb:request("GET", "/v1/calls/call_nope")
      assert.are.equal(404, status)
      assert.are.equal("Call not found: call_nope", err.message)
      local call = create_call()
      local dstatus, _, raw = sb:request("DELETE", "/v1/calls/" .. call.callId)
      assert.are.equal(204, dstatus)
      assert.are.equal("", raw)
      assert.are.equal(404, (sb:request("GET", "/v1/calls/" .. call.callId)))
      assert.are.equal(404, (sb:request("DELETE", "/v1/calls/" .. call.callId)))
    end)

    it("lists newest first with totalCounts, a status filter and a size limit", function()
      local a = create_call("+14155550101")
      sb:advance(60)
      local b = create_call("+14155552672")
      local status, page = sb:request("GET", "/v1/calls?size=1")
      assert.are.equal(200, status)
      assert.are.same({ 1, 0, 2, 2, true, false }, { #page.data, page.page, page.totalCounts, page.totalPages,
        page.hasNext, page.hasPrevious })
      assert.are.equal(b.callId, page.data[1].callId)
      local _, p2 = sb:request("GET", "/v1/calls?size=1&page=1")
      assert.are.equal(a.callId, p2.data[1].callId)
      local _, filtered = sb:request("GET", "/v1/calls?status=not_connected")
      assert.are.equal(1, filtered.totalCounts)
      assert.are.equal(a.callId, filtered.data[1].callId)
      local _, none = sb:request("GET", "/v1/calls?status=error")
      assert.are.equal("[]", json.encode(none.data) == "{}" and "[]" or "?") -- cjson decodes [] as {}
      assert.is_truthy(select(3, sb:request("GET", "/v1/calls?status=error")):find('"data":[]', 1, true))
      expect_400("GET", "/v1/calls?size=101", nil, "size")
      expect_400("GET", "/v1/calls?page=-1", nil, "page")
      expect_400("GET", "/v1/calls?status=bogus", nil, "status")
    end)

    it("lives scheduled -> in_progress -> ended with transcript, duration and recording", function()
      local call = create_call("+14155552672", { dynamicVariables = { customer_name = "Ana", order_id = "A-42" } })
      assert.are.equal("scheduled", call.status)
      local seen = {}
      local raw
      local final = wait_for(function()
        local _, c, r = sb:request("GET", "/v1/calls/" .. call.callId)
        seen[c.status] = true
        raw = r
        return c.status == "ended" and c
      end, 8)
      assert.is_truthy(final, "the call never ended")
      assert.is_true(seen.in_progress)
      assert.are.equal("user_ended_call", final.terminationReason)
      assert.is_truthy(raw:match('"duration":%d+[,}]'), raw) -- whole seconds, written without a fraction
      assert.is_truthy(final.transcript:find("customer_name = Ana", 1, true))
      assert.is_truthy(final.transcript:find("order_id = A-42", 1, true))
      assert.is_truthy(final.recordingUrl:match("^http"))
      assert.is_true(final.endTime > final.startTime)
    end)

    it("follows the clock: advancing it moves a call on", function()
      local call = create_call("+14155552673")
      sb:advance(1)
      local _, mid = sb:request("GET", "/v1/calls/" .. call.callId)
      assert.are.equal("in_progress", mid.status)
      sb:advance(30)
      local _, done = sb:request("GET", "/v1/calls/" .. call.callId)
      assert.are.equal("ended", done.status)
      assert.are.equal("agent_ended_call", done.terminationReason)
    end)

    it("times a sped-up call in simulated seconds: duration, startTime, endTime and its events agree", function()
      -- at --speed 10 a call rings 0.1 s and talks 2 s, but it lasted what it would have at speed 1
      assert.are.equal(1713607200.25, epoch("2024-04-20T10:00:00.250Z"))
      local status, w, raw = sb:request("POST", "/v1/webhooks", { name = "times", agentId = sb.agent,
        url = sb.url .. "/_sandbox/echo/times", events = { "conversation_started", "conversation_ended" } })
      assert.are.equal(201, status, raw)
      local want = { ["+14155552672"] = { 20, "ended" }, ["+14155550103"] = { 5, "ended" },
                     ["+14155550101"] = { 0, "not_connected" } }
      local ids = {}
      for to in pairs(want) do ids[to] = create_call(to).callId end
      sb:advance(60)
      for to, w2 in pairs(want) do
        local _, c = sb:request("GET", "/v1/calls/" .. ids[to])
        assert.are.same(w2, { c.duration, c.status }, to)
        -- whole milliseconds apart, so that float sums of different terms compare alike
        local function ms(a, b) return math.floor((epoch(b) - epoch(a)) * 1000 + 0.5) end
        if w2[1] > 0 then
          assert.are.equal(1000, ms(c.createdAt, c.startTime))            -- it rang 1 s
          assert.are.equal(w2[1] * 1000, ms(c.startTime, c.endTime))
        else
          assert.are.equal(json.null, c.startTime)
          assert.are.equal(1000, ms(c.createdAt, c.endTime))
        end
        assert.are.equal(c.endTime, c.updatedAt)
      end
      -- each event is stamped with the moment it tells of in the call's own times
      local log = deliveries("webhookId=" .. w.webhookId, 5)
      assert.is_truthy(log, "the deliveries did not arrive")
      for _, e in ipairs(log.data) do
        local payload = json.decode(e.body)
        local field = e.event == "conversation_started" and "startTime" or "endTime"
        assert.are.equal(payload.call[field], payload.timestamp, e.event)
      end
    end)

    it("forces the outcomes of the magic numbers +1NPA5550101..0106", function()
      local expect = {
        ["+12125550101"] = { "not_connected", "dial_busy" },
        ["+13105550102"] = { "not_connected", "dial_no_answer" },
        ["+14155550103"] = { "ended", "voicemail_detected" },
        ["+16465550104"] = { "not_connected", "dial_user_declined" },
        ["+17185550105"] = { "error", "dial_invalid_destination" },
        ["+18005550106"] = { "error", "error_telephony" },
      }
      local ids = {}
      for to in pairs(expect) do ids[to] = create_call(to).callId end
      sb:advance(60)
      for to, want in pairs(expect) do
        local _, c = sb:request("GET", "/v1/calls/" .. ids[to])
        assert.are.same(want, { c.status, c.terminationReason }, to)
      end
    end)

    it("makes the agent required when the number has no outbound agent", function()
      local status = sb:request("PATCH", "/v1/phone-numbers/%2B14157774444", { outboundAgentId = json.null })
      assert.are.equal(200, status)
      expect_400("POST", "/v1/calls", { fromPhoneNumber = sb.number, toPhoneNumber = "+14155552671" }, "agentId")
      create_call("+14155552671", { agentId = "agent_abc123" })
    end)
  end)

  describe("campaigns", function()
    local CSV = "phoneNumber,customer_name\r\n+14155552001,Ana\r\n+1234,Bob\r\n\"+14155552002\",\"Lee, Jr.\"\r\n" ..
      "+14155552003,Kim\r\n"

    local function create_campaign(extra)
      local body = { campaignName = "Spring", agentId = sb.agent, sipPhoneNumber = sb.number, file = b64(CSV),
        concurrentCalls = 2 }
      for k, v in pairs(extra or {}) do body[k] = v end
      local status, camp, raw = sb:request("POST", "/v1/campaigns", body)
      assert.are.equal(201, status, raw)
      return camp
    end

    local function campaign_calls(id)
      local _, page = sb:request("GET", "/v1/calls?size=100")
      local out = {}
      for _, c in ipairs(page.data) do
        if type(c.campaign) == "table" and c.campaign.campaignId == id then out[#out + 1] = c end
      end
      return out
    end

    it("reports the bad row, dials the three good ones and ends completed", function()
      local camp = create_campaign()
      assert.are.same(CAMPAIGN_FIELDS, keys(camp))
      assert.are.same({ "Row 2: invalid phone number '+1234'" }, camp.errors)
      assert.are.equal("live", camp.campaignStatus)
      assert.are.equal(2, #campaign_calls(camp.campaignId)) -- concurrentCalls = 2
      sb:advance(120)
      local calls = campaign_calls(camp.campaignId)
      assert.are.equal(3, #calls)
      local vars = {}
      for _, c in ipairs(calls) do vars[c.dynamicVariables.customer_name] = c.status end
      assert.are.same({ Ana = "ended", ["Lee, Jr."] = "ended", Kim = "ended" }, vars)
      local _, got = sb:request("GET", "/v1/campaigns/" .. camp.campaignId)
      assert.are.equal("completed", got.campaignStatus)
      local _, list = sb:request("GET", "/v1/campaigns?status=completed")
      assert.are.equal(1, list.totalCount)
    end)

    it("words CSV problems as HACKING.md says", function()
      local csv = "\239\187\191Name, Phone ,city\nA,+14155552001,Rome\n\nB,,Oslo\nC,+14155552001,\nD,+14155552009\n" ..
        "E,+14155552010,Lima\n"
      local camp = create_campaign{ file = b64(csv) }
      assert.are.same({
        "Row 2: missing phone number",
        "Row 3: duplicate phone number '+14155552001'",
        "Row 3: missing required variable 'city'",
        "Row 4: expected 3 columns, got 2",
      }, camp.errors)
      local err = expect_400("POST", "/v1/campaigns", { campaignName = "x", agentId = sb.agent,
        sipPhoneNumber = sb.number, file = b64("name,city\nA,B\n") }, "file")
      assert.are.equal("file: CSV has no phone number column (expected one of: phoneNumber, phone_number, " ..
        "phone, toPhoneNumber, to)", err.message)
      err = expect_400("POST", "/v1/campaigns", { campaignName = "y", agentId = sb.agent, sipPhoneNumber = sb.number,
        file = b64("to\n\n") }, "file")
      assert.are.equal("file: CSV has no contacts", err.message)
    end)

    it("refuses a file that is not RFC 4180, or not canonical base64, before making anything", function()
      local function refused(file, message)
        local err = expect_400("POST", "/v1/campaigns", { campaignName = "bad", agentId = sb.agent,
          sipPhoneNumber = sb.number, file = file }, "file")
        assert.are.equal(message, err.message)
      end
      for _, case in ipairs{
        { 'phone,name\n+14155552671,"Ada\n', "file: csv: line 2: unterminated quoted field" },
        { 'phone,note\n+14155552671,"two\nlines"\n+14155552672,"open\nstill\n', "file: csv: line 4: unterminated quoted field" },
        { 'phone,name\n+14155552671,Ad"a\n', "file: csv: line 2: stray quote in an unquoted field" },
        { 'phone,name\r\n+14155552671,"Ada"x\r\n', "file: csv: line 2: unexpected character after a closing quote" },
        { 'phone,name\n+14155552671,"Ada"\r+14155552672,B\n', "file: csv: line 2: unexpected character after a closing quote" },
      } do refused(b64(case[1]), case[2]) end
      local good = b64("phone\n+14155552671\n")
      assert.are.equal("==", good:sub(-2))
      for _, file in ipairs{ good:sub(1, -3), good .. "QUFB", good:sub(1, -4) .. "h==", good:sub(1, 8) .. "\n" .. good:sub(9),
                             " " .. good, good:gsub("=", "") .. "=" } do
        refused(file, "file: expected the base64 of the CSV bytes, got invalid base64")
      end
      assert.are.equal(0, sb:state().campaigns)
      -- what RFC 4180 allows stays allowed: a lone CR inside a cell, a CR ending the file, CRLF, quotes doubled
      local camp = create_campaign{ file = b64('phone,note\r\n"+14155552671","say ""hi""\r\nthere"\r\n+14155552672,a\rb\r') }
      assert.are.same({}, camp.errors)
    end)

    it("validates the create fields and answers 404 for an unknown campaign", function()
      local ok = { campaignName = "v", agentId = sb.agent, sipPhoneNumber = sb.number, file = b64(CSV) }
      local function without(k, v)
        local t = {}
        for kk, vv in pairs(ok) do t[kk] = vv end
        t[k] = v
        return t
      end
      expect_400("POST", "/v1/campaigns", without("campaignName", nil), "campaignName")
      expect_400("POST", "/v1/campaigns", without("campaignName", string.rep("n", 129)), "campaignName")
      expect_400("POST", "/v1/campaigns", without("agentId", nil), "agentId")
      expect_400("POST", "/v1/campaigns", without("sipPhoneNumber", "+19995550000"), "sipPhoneNumber")
      expect_400("POST", "/v1/campaigns", without("file", nil), "file")
      expect_400("POST", "/v1/campaigns", without("file", "@@not base64@@"), "file")
      expect_400("POST", "/v1/campaigns", without("concurrentCalls", 0), "concurrentCalls")
      expect_400("POST", "/v1/campaigns", without("isScheduled", true), "scheduledDate")
      create_campaign{ campaignName = "v" }
      expect_400("POST", "/v1/campaigns", ok, "campaignName") -- unique
      local status, err = sb:request("GET", "/v1/campaigns/camp_nope")
      assert.are.equal(404, status)
      assert.are.equal("Campaign not found: camp_nope", err.message)
      assert.are.equal(404, (sb:request("PATCH", "/v1/campaigns/camp_nope", { campaignStatus = "paused" })))
    end)

    it("starts a scheduled campaign at its date, time and time zone", function()
      local day = os.date("!%Y-%m-%d", os.time() + 2 * 86400)
      local camp = create_campaign{ isScheduled = true, scheduledDate = day, scheduledTime = "09:30",
        scheduledTimezone = "America/New_York" }
      assert.are.equal("scheduled", camp.campaignStatus)
      assert.is_true(camp.scheduled)
      assert.is_truthy(camp.scheduledDate:match("^" .. day:gsub("%-", "%%-") .. "T1[34]:30:00%.000Z$"), camp.scheduledDate)
      assert.are.equal(0, #campaign_calls(camp.campaignId))
      sb:advance(4 * 86400)
      assert.are.equal(3, #campaign_calls(camp.campaignId))
      local _, got = sb:request("GET", "/v1/campaigns/" .. camp.campaignId)
      assert.are.equal("completed", got.campaignStatus)
      expect_400("POST", "/v1/campaigns", { campaignName = "tz", agentId = sb.agent, sipPhoneNumber = sb.number,
        file = b64(CSV), isScheduled = true, scheduledDate = day, scheduledTime = "09:30",
        scheduledTimezone = "Mars/Olympus" }, "scheduledTimezone")
    end)

    it("pauses and resumes through PATCH campaignStatus", function()
      local camp = create_campaign{ concurrentCalls = 1 }
      local status, paused = sb:request("PATCH", "/v1/campaigns/" .. camp.campaignId, { campaignStatus = "paused" })
      assert.are.equal(200, status)
      assert.are.equal("paused", paused.campaignStatus)
      sb:advance(300)
      assert.are.equal(1, #campaign_calls(camp.campaignId))
      local _, still = sb:request("GET", "/v1/campaigns/" .. camp.campaignId)
      assert.are.equal("paused", still.campaignStatus)
      local _, live = sb:request("PATCH", "/v1/campaigns/" .. camp.campaignId, { campaignStatus = "live" })
      assert.are.equal("live", live.campaignStatus)
      sb:advance(300)
      assert.are.equal(3, #campaign_calls(camp.campaignId))
      local _, done = sb:request("GET", "/v1/campaigns/" .. camp.campaignId)
      assert.are.equal("completed", done.campaignStatus)
      expect_400("PATCH", "/v1/campaigns/" .. camp.campaignId, { campaignStatus = "live" }, "campaignStatus")
      expect_400("PATCH", "/v1/campaigns/" .. camp.campaignId, { file = b64(CSV) }, "file")
    end)

    -- schedules far enough ahead that the sandbox clock never reaches them in these specs
    local FAR = { isScheduled = true, scheduledDate = "2035-06-01", scheduledTime = "09:00",
      scheduledTimezone = "America/New_York" }
    local FAR_AT = "2035-06-01T13:00:00.000Z"

    local function with(base, extra)
      local t = {}
      for k, v in pairs(base) do t[k] = v end
      for k, v in pairs(extra or {}) do t[k] = v end
      return t
    end

    local function patch(camp, body)
      local status, got, raw = sb:request("PATCH", "/v1/campaigns/" .. camp.campaignId, body)
      assert.are.equal(200, status, raw)
      return got
    end

    local function get_campaign(camp)
      local _, got = sb:request("GET", "/v1/campaigns/" .. camp.campaignId)
      return got
    end

    it("starts a scheduled campaign resumed early now, dials every contact and ends completed", function()
      local camp = create_campaign(with(FAR, { file = b64("phoneNumber\n+14155552001\n+14155552002\n") }))
      assert.are.same({ "scheduled", FAR_AT }, { camp.campaignStatus, camp.scheduledDate })
      local before = sb:state().clock
      local live = patch(camp, { campaignStatus = "live" })
      assert.are.equal("live", live.campaignStatus)
      local after = sb:state().clock
      assert.are.equal(2, #campaign_calls(camp.campaignId)) -- concurrentCalls = 2
      sb:advance(120)
      for _, c in ipairs(campaign_calls(camp.campaignId)) do assert.are.equal("ended", c.status) end
      assert.are.equal("completed", get_campaign(camp).campaignStatus)
      -- its start is now: scheduledDate says when it really started, not the date it was scheduled for
      assert.is_true(live.scheduledDate >= before and live.scheduledDate <= after, live.scheduledDate)
      assert.are.equal(live.scheduledDate, get_campaign(camp).scheduledDate)
      local _, list = sb:request("GET", "/v1/campaigns?status=completed")
      assert.are.equal(1, list.totalCount)
    end)

    it("starts a scheduled campaign paused before its start and resumed now, and ends completed", function()
      local camp = create_campaign(with(FAR, { file = b64("phoneNumber\n+14155552001\n") }))
      assert.are.equal("paused", patch(camp, { campaignStatus = "paused" }).campaignStatus)
      sb:advance(300)
      assert.are.same({ "paused", FAR_AT }, { get_campaign(camp).campaignStatus, get_campaign(camp).scheduledDate })
      assert.are.equal(0, #campaign_calls(camp.campaignId))
      local live = patch(camp, { campaignStatus = "live" })
      assert.are.equal("live", live.campaignStatus)
      sb:advance(120)
      local calls = campaign_calls(camp.campaignId)
      assert.are.same({ 1, "ended" }, { #calls, calls[1].status })
      assert.are.equal("completed", get_campaign(camp).campaignStatus)
      assert.is_true(live.scheduledDate < "2035", live.scheduledDate)
      -- pausing one that has started and resuming it keeps its start
      local other = create_campaign(with(FAR, { campaignName = "Other", concurrentCalls = 1 }))
      local started = patch(other, { campaignStatus = "live" }).scheduledDate
      patch(other, { campaignStatus = "paused" })
      sb:advance(300)
      assert.are.equal(started, patch(other, { campaignStatus = "live" }).scheduledDate)
      sb:advance(300)
      assert.are.same({ "completed", 3 }, { get_campaign(other).campaignStatus, #campaign_calls(other.campaignId) })
    end)

    it("refuses a scheduled time that a daylight-saving gap skips, on scheduledTime", function()
      local gap = with(FAR, { campaignName = "gap", agentId = sb.agent, sipPhoneNumber = sb.number, file = b64(CSV),
        scheduledDate = "2030-03-10", scheduledTime = "02:30" })
      local err = expect_400("POST", "/v1/campaigns", gap, "scheduledTime")
      assert.are.equal("scheduledTime: expected a time that exists on 2030-03-10 in America/New_York (the clocks " ..
        "jump over it there: a daylight-saving gap), got '02:30'", err.message)
      -- the minutes either side of the gap exist
      assert.are.equal("2030-03-10T06:59:00.000Z", create_campaign(with(gap, { scheduledTime = "01:59" })).scheduledDate)
      assert.are.equal("2030-03-10T07:00:00.000Z",
        create_campaign(with(gap, { campaignName = "after", scheduledTime = "03:00" })).scheduledDate)
      -- a PATCH that makes the stored schedule fall in a gap is refused alike, and changes nothing
      local camp = create_campaign(with(FAR, { campaignName = "moved" }))
      err = expect_400("PATCH", "/v1/campaigns/" .. camp.campaignId, { scheduledDate = "2031-03-09",
        scheduledTime = "02:15" }, "scheduledTime")
      assert.is_truthy(err.message:find("exists on 2031-03-09 in America/New_York", 1, true), err.message)
      assert.are.equal(FAR_AT, get_campaign(camp).scheduledDate)
      -- a zone that does not exist is still blamed on the zone
      expect_400("POST", "/v1/campaigns", with(gap, { campaignName = "nowhere", scheduledTimezone = "America/Nowhere" }),
        "scheduledTimezone")
    end)

    it("reads a scheduled time that occurs twice (clocks going back) as its first occurrence", function()
      -- 2030-11-03 01:30 in New York is 05:30Z (EDT) and, an hour later, 06:30Z (EST); 2030-10-27 01:30 in London
      -- is 00:30Z (BST) and 01:30Z (GMT); the Lord Howe Island clocks go back half an hour
      for i, case in ipairs{
        { "2030-11-03", "01:30", "America/New_York", "2030-11-03T05:30:00.000Z" },
        { "2030-10-27", "01:30", "Europe/London", "2030-10-27T00:30:00.000Z" },
        { "2030-04-07", "01:45", "Australia/Lord_Howe", "2030-04-06T14:45:00.000Z" },
        { "2030-11-03", "02:00", "America/New_York", "2030-11-03T07:00:00.000Z" }, -- once only: after the change
      } do
        local camp = create_campaign{ campaignName = "twice " .. i, isScheduled = true, scheduledDate = case[1],
          scheduledTime = case[2], scheduledTimezone = case[3] }
        assert.are.equal(case[4], camp.scheduledDate, case[3])
      end
    end)

    it("ignores the schedule fields without isScheduled true, and starts at once", function()
      for i, flag in ipairs{ { isScheduled = false }, {} } do
        -- not checked either: a zone that does not exist goes unnoticed
        local camp = create_campaign(with(flag, { campaignName = "now " .. i, scheduledDate = "2035-06-01",
          scheduledTime = "09:00", scheduledTimezone = "Mars/Olympus" }))
        assert.are.same({ "live", false, json.null }, { camp.campaignStatus, camp.scheduled, camp.scheduledDate })
        assert.are.equal(2, #campaign_calls(camp.campaignId))
      end
      -- a PATCH's schedule fields alike, on a campaign that is not scheduled
      local camp = create_campaign{ campaignName = "patched" }
      local got = patch(camp, { scheduledDate = "2035-06-01", scheduledTime = "25:99", scheduledTimezone = "Mars/Olympus" })
      assert.are.same({ "live", false, json.null }, { got.campaignStatus, got.scheduled, got.scheduledDate })
    end)

    it("moves a start still to come on a schedule PATCH, and only stores one for a campaign that started", function()
      -- scheduled: a later moment moves it; isScheduled false, or a moment already past, starts it now
      local camp = create_campaign(FAR)
      assert.are.equal("2035-06-02T13:00:00.000Z", patch(camp, { scheduledDate = "2035-06-02" }).scheduledDate)
      local before = sb:state().clock
      local got = patch(camp, { scheduledDate = "2020-01-01" })
      assert.are.equal("live", got.campaignStatus)
      assert.is_true(got.scheduledDate >= before, got.scheduledDate)
      local calls = campaign_calls(camp.campaignId)
      assert.are.equal(2, #calls)
      -- dialed now, not back in 2020
      for _, c in ipairs(calls) do assert.is_true(c.createdAt >= before, c.createdAt) end
      local now_camp = create_campaign(with(FAR, { campaignName = "unscheduled" }))
      got = patch(now_camp, { isScheduled = false })
      assert.are.same({ "live", false, json.null }, { got.campaignStatus, got.scheduled, got.scheduledDate })
      assert.are.equal(2, #campaign_calls(now_camp.campaignId))
      -- paused before its start: the schedule moves (scheduledDate follows), it stays paused
      local paused = create_campaign(with(FAR, { campaignName = "paused" }))
      patch(paused, { campaignStatus = "paused" })
      got = patch(paused, { scheduledTime = "10:15" })
      assert.are.same({ "paused", "2035-06-01T14:15:00.000Z" }, { got.campaignStatus, got.scheduledDate })
      -- started (live): checked and stored, but it keeps dialing from its start and never goes back to scheduled
      local live = create_campaign{ campaignName = "live" }
      expect_400("PATCH", "/v1/campaigns/" .. live.campaignId, { isScheduled = true, scheduledDate = "2035-06-01" },
        "scheduledTime")
      got = patch(live, FAR)
      assert.are.same({ "live", true }, { got.campaignStatus, got.scheduled })
      assert.is_true(got.scheduledDate < "2035", got.scheduledDate)
      sb:advance(120)
      assert.are.same({ "completed", got.scheduledDate }, { get_campaign(live).campaignStatus,
                                                           get_campaign(live).scheduledDate })
      assert.are.equal(3, #campaign_calls(live.campaignId))
    end)

    it("updates, lists with totalCount and deletes with 204", function()
      local camp = create_campaign()
      local status, upd = sb:request("PATCH", "/v1/campaigns/" .. camp.campaignId,
        { campaignName = "Renamed", concurrentCalls = 3 })
      assert.are.equal(200, status)
      assert.are.same({ "Renamed", 3 }, { upd.campaignName, upd.concurrentCalls })
      local _, list = sb:request("GET", "/v1/campaigns")
      assert.are.same({ 1, 1 }, { list.totalCount, #list.data })
      expect_400("GET", "/v1/campaigns?status=nope", nil, "status")
      local dstatus, _, raw = sb:request("DELETE", "/v1/campaigns/" .. camp.campaignId)
      assert.are.same({ 204, "" }, { dstatus, raw })
      assert.are.equal(404, (sb:request("GET", "/v1/campaigns/" .. camp.campaignId)))
    end)

    describe("uploads, as JSON (the guide) or multipart/form-data (the API reference)", function()
      local BOUNDARY = "----sbFormBoundary7MA4YWxkTrZu0gW"

      -- a multipart/form-data body built by hand: parts are { name, value [, filename [, content type]] }
      local function form_data(parts, boundary)
        boundary = boundary or BOUNDARY
        local out = {}
        for _, p in ipairs(parts) do
          local cd = 'Content-Disposition: form-data; name="' .. p[1] .. '"'
          if p[3] then cd = cd .. '; filename="' .. p[3] .. '"' end
          out[#out + 1] = "--" .. boundary .. "\r\n" .. cd .. "\r\n" ..
            (p[4] and "Content-Type: " .. p[4] .. "\r\n" or "") .. "\r\n" .. p[2] .. "\r\n"
        end
        out[#out + 1] = "--" .. boundary .. "--\r\n"
        return table.concat(out)
      end

      local function post_form(body, target, ctype)
        return (target or sb):request("POST", "/v1/campaigns", body,
          { ["Content-Type"] = ctype or "multipart/form-data; boundary=" .. BOUNDARY })
      end

      -- the same campaign both ways: f = { name, csv, vars (table), concurrent (number) }
      local function as_json(f, target)
        return (target or sb):request("POST", "/v1/campaigns", { campaignName = f.name, agentId = sb.agent,
          sipPhoneNumber = sb.number, file = b64(f.csv), dynamicVariables = f.vars, concurrentCalls = f.concurrent })
      end
      local function as_form(f, target)
        local parts = { { "campaignName", f.name }, { "agentId", sb.agent }, { "sipPhoneNumber", sb.number },
                        { "file", f.csv, "contacts.csv", "text/csv" } }
        if f.vars then parts[#parts + 1] = { "variables", json.encode(f.vars), nil, "application/json" } end
        if f.concurrent then parts[#parts + 1] = { "concurrentCalls", tostring(f.concurrent) } end
        return post_form(form_data(parts), target)
      end

      it("makes the same campaign from either: fields, row problems, variables and dials", function()
        local csv = "phone,customer_name,city\r\n+14155552001,Ana,\r\n+1234,Bob,Oslo\r\n+14155552002,\"Lee, Jr.\",Lima\r\n"
        local s1, a, raw1 = as_json{ name = "json", csv = csv, vars = { city = "Rome", plan = "Gold" }, concurrent = 2 }
        local s2, b, raw2 = as_form{ name = "form", csv = csv, vars = { city = "Rome", plan = "Gold" }, concurrent = 2 }
        assert.are.equal(201, s1, raw1)
        assert.are.equal(201, s2, raw2)
        assert.are.same(CAMPAIGN_FIELDS, keys(b))
        assert.are.same({ "Row 2: invalid phone number '+1234'" }, b.errors)
        for _, k in ipairs{ "errors", "campaignStatus", "concurrentCalls", "scheduled", "scheduledDate", "agent",
                            "phoneNumber" } do
          assert.are.same(a[k], b[k], k)
        end
        assert.are.equal(2, b.concurrentCalls)       -- the form field "2"
        sb:advance(120)
        local _, page = sb:request("GET", "/v1/calls?size=100")
        local vars = { [a.campaignId] = {}, [b.campaignId] = {} }
        for _, c in ipairs(page.data) do
          local v = c.dynamicVariables
          table.insert(vars[c.campaign.campaignId], v.customer_name .. "/" .. v.city .. "/" .. v.plan)
        end
        table.sort(vars[a.campaignId])
        table.sort(vars[b.campaignId])
        assert.are.same({ "Ana/Rome/Gold", "Lee, Jr./Lima/Gold" }, vars[b.campaignId])
        assert.are.same(vars[a.campaignId], vars[b.campaignId])
      end)

      it("finds the same row problems and refuses the same files, worded alike, from both", function()
        local cases = {
          "\239\187\191Name, Phone ,city\nA,+14155552001,Rome\n\nB,,Oslo\nC,+14155552001,\nD,+14155552009\n" ..
            "E,+14155552010,Lima\n",
          "phone,name\n+14155552671,\n+14155552672,Bo\n",          -- the variables supply `name`
          "name,city\nA,B\n",
          "to\n\n",
          'phone,name\n+14155552671,"Ada\n',
          'phone,name\n+14155552671,Ad"a\n',
          'phone,name\r\n+14155552671,"Ada"x\r\n',
          'phone,note\r\n"+14155552671","say ""hi""\r\nthere"\r\n+14155552672,a\rb\r',
        }
        for i, csv in ipairs(cases) do
          local f = { csv = csv, vars = i == 2 and { name = "friend" } or nil }
          f.name = "json " .. i
          local s1, a, raw1 = as_json(f)
          f.name = "form " .. i
          local s2, b, raw2 = as_form(f)
          assert.are.equal(s1, s2, raw1 .. " / " .. raw2)
          if s1 == 201 then
            assert.are.same(a.errors, b.errors, csv)
          else
            assert.are.equal(400, s1, raw1)
            assert.are.equal(a.message, b.message, csv)
            assert.is_truthy(b.message:match("^file: "), b.message)
          end
        end
        local _, first = as_form{ name = "again", csv = cases[1] }
        assert.are.same({ "Row 2: missing phone number", "Row 3: duplicate phone number '+14155552001'",
          "Row 3: missing required variable 'city'", "Row 4: expected 3 columns, got 2" }, first.errors)
      end)

      it("reads form fields as text and names the part that is wrong", function()
        local csv = "phone\n+14155552671\n"
        local function form(extra, skip)
          local parts = {}
          for _, p in ipairs{ { "campaignName", "c" .. #extra }, { "agentId", sb.agent },
                              { "sipPhoneNumber", sb.number }, { "file", csv, "c.csv", "text/csv" } } do
            if p[1] ~= skip then parts[#parts + 1] = p end
          end
          for _, p in ipairs(extra) do parts[#parts + 1] = p end
          return form_data(parts)
        end
        local function refused(extra, field, message, skip)
          local status, err, raw = post_form(form(extra, skip))
          assert.are.equal(400, status, raw)
          assert.are.same({ "Bad Request", 400, "/v1/campaigns" }, { err.error, err.status, err.path })
          assert.are.equal(field .. ":", err.message:match("^[%w%.]+:"), err.message)
          if message then assert.are.equal(message, err.message) end
        end
        local status, camp, raw = post_form(form{ { "concurrentCalls", "5" }, { "isScheduled", "false" } })
        assert.are.equal(201, status, raw)
        assert.are.same({ 5, false, "live" }, { camp.concurrentCalls, camp.scheduled, camp.campaignStatus })
        local day = os.date("!%Y-%m-%d", os.time() + 2 * 86400)
        status, camp, raw = post_form(form{ { "isScheduled", "true" }, { "scheduledDate", day },
          { "scheduledTime", "09:30" }, { "scheduledTimezone", "America/New_York" } })
        assert.are.equal(201, status, raw)
        assert.are.same({ true, "scheduled" }, { camp.scheduled, camp.campaignStatus })
        refused({ { "concurrentCalls", "five" } }, "concurrentCalls",
          "concurrentCalls: expected an integer from 1 to 1000, got 'five'")
        refused({ { "concurrentCalls", "0" } }, "concurrentCalls",
          "concurrentCalls: expected an integer from 1 to 1000, got 0")
        refused({ { "isScheduled", "yes" } }, "isScheduled", "isScheduled: expected true or false, got 'yes'")
        refused({ { "isScheduled", "true" } }, "scheduledDate")
        refused({ { "variables", "{not json" } }, "variables", "variables: expected a JSON object, got invalid JSON")
        refused({ { "variables", "[1,2]" } }, "variables", "variables: expected a JSON object, got an array")
        refused({ { "variables", '{"a":{"b":1}}' } }, "variables.a",
          "variables.a: expected a string, number or boolean, got an object")
        refused({}, "campaignName", nil, "campaignName")
        refused({ { "campaignName", "twice" } }, "campaignName",
          "campaignName: expected one part of that name, got more")
        refused({}, "file", "file: expected a file part holding the CSV, got nothing", "file")
        refused({ { "file", b64(csv) } }, "file", "file: expected a file part (a filename in its " ..
          "Content-Disposition) holding the CSV, got a form field", "file")
        refused({ { "file", "", "empty.csv" } }, "file", "file: expected a file part holding the CSV, got an " ..
          "empty file", "file")
        assert.are.equal(2, sb:state().campaigns)
      end)

      it("refuses a malformed multipart body with 400 saying what is wrong, a huge one with 413", function()
        local good = form_data{ { "campaignName", "m" }, { "agentId", sb.agent }, { "sipPhoneNumber", sb.number },
                                { "file", "phone\n+14155552671\n", "c.csv" } }
        local function refused(body, ctype, message)
          local status, err, raw = post_form(body, nil, ctype)
          assert.are.equal(400, status, raw)
          assert.are.same({ "Bad Request", 400 }, { err.error, err.status })
          assert.are.equal(message, err.message)
        end
        local D = "--" .. BOUNDARY
        refused(good, "multipart/form-data", "Content-Type: expected multipart/form-data with a boundary parameter " ..
          "(1 to 70 of the characters RFC 2046 allows), got 'multipart/form-data'")
        refused(good, "multipart/form-data; boundary=" .. string.rep("b", 71), "Content-Type: expected " ..
          "multipart/form-data with a boundary parameter (1 to 70 of the characters RFC 2046 allows), got " ..
          "'multipart/form-data; boundary=" .. string.rep("b", 71) .. "'")
        refused(good, "multipart/form-data; boundary=other", "body: multipart: expected the boundary '--other' " ..
          "(from Content-Type), found none")
        refused(good:sub(1, -5), nil, "body: multipart: expected the closing boundary '" .. D .. "--', got the end " ..
          "of the body")
        refused(good:sub(1, good:find("phone\n", 1, true) + 8), nil, "body: multipart: part 4 ('file'): expected CRLF and the boundary '" .. D ..
          "' after its content, got the end of the body")
        refused((good:gsub("\r\n", "\n")), nil, "body: multipart: part 1: expected CRLF after the boundary")
        refused(D .. "\r\nContent-Type: text/plain\r\n\r\nx\r\n" .. D .. "--\r\n", nil,
          "body: multipart: part 1: expected a Content-Disposition: form-data header with a name")
        refused(D .. '\r\nContent-Disposition: attachment; name="x"\r\n\r\nx\r\n' .. D .. "--\r\n", nil,
          "body: multipart: part 1: expected a Content-Disposition: form-data header with a name")
        refused(D .. "\r\nnot a header\r\n\r\nx\r\n" .. D .. "--\r\n", nil,
          "body: multipart: part 1: expected a header 'Name: value', got 'not a header'")
        refused(D .. '\r\nContent-Disposition: form-data; name="x"\r\n', nil,
          "body: multipart: part 1: expected its headers to end with a blank line (CRLF CRLF)")
        -- what RFC 2046 allows stays allowed: a preamble, a quoted boundary, transport padding, an epilogue
        local status, camp, raw = post_form("preamble\r\n" .. good:gsub("(" .. D:gsub("%p", "%%%0") .. ")\r\n",
          "%1  \r\n", 1) .. "epilogue", nil, 'multipart/form-data; charset=utf-8; boundary="' .. BOUNDARY .. '"')
        assert.are.equal(201, status, raw)
        assert.are.same({}, camp.errors)
        -- over the cap: refused from its Content-Length, before the body is read
        local c = assert(socket.connect("127.0.0.1", sb.port))
        c:settimeout(5)
        c:send("POST /v1/campaigns HTTP/1.1\r\nHost: x\r\nX-API-Key: " .. sb.key .. "\r\nContent-Type: " ..
          "multipart/form-data; boundary=" .. BOUNDARY .. "\r\nContent-Length: 20000000\r\nConnection: close\r\n\r\n")
        local head = {}
        local line = c:receive("*l")
        repeat
          head[#head + 1] = line
          line = c:receive("*l")
        until not line or line == ""
        local len = tonumber(table.concat(head, "\n"):match("\n[Cc]ontent%-[Ll]ength: (%d+)"))
        local body = json.decode((c:receive(len)))
        c:close()
        assert.matches("^HTTP/1.1 413 ", head[1])
        assert.are.same({ "Payload Too Large", 413, "body: expected at most 16777216 bytes of multipart/form-data, " ..
          "got 20000000" }, { body.error, body.status, body.message })
        assert.are.equal(1, sb:state().campaigns)
      end)

      it("takes one encoding only when started with --campaign-upload, answering 415 to the other", function()
        local csv = "phone\n+14155552671\n"
        local only_form = sandbox.start{ speed = 10, args = { "--campaign-upload", "multipart" } }
        local only_json = sandbox.start{ speed = 10, args = { "--campaign-upload", "json" } }
        local ok, err = pcall(function()
          assert.are.equal("multipart", only_form:state().campaignUpload)
          assert.are.equal("both", sb:state().campaignUpload)
          local status, e, raw = as_json({ name = "j", csv = csv }, only_form)
          assert.are.equal(415, status, raw)
          assert.are.same({ "Unsupported Media Type", 415, "/v1/campaigns" }, { e.error, e.status, e.path })
          assert.are.equal("Content-Type: expected multipart/form-data (this sandbox takes multipart uploads " ..
            "only: --campaign-upload multipart), got 'application/json'", e.message)
          assert.are.equal(0, only_form:state().campaigns)
          local camp
          status, camp, raw = as_form({ name = "f", csv = csv }, only_form)
          assert.are.equal(201, status, raw)
          -- the rest of the API stays JSON: a PATCH, for one
          assert.are.equal(200, (only_form:request("PATCH", "/v1/campaigns/" .. camp.campaignId,
                                                   { campaignStatus = "paused" })))
          status, e, raw = as_form({ name = "f", csv = csv }, only_json)
          assert.are.equal(415, status, raw)
          assert.are.same({ "Unsupported Media Type", 415 }, { e.error, e.status })
          assert.are.equal("Content-Type: expected application/json (this sandbox takes JSON uploads only: " ..
            "--campaign-upload json), got 'multipart/form-data; boundary=" .. BOUNDARY .. "'", e.message)
          assert.are.equal(201, (as_json({ name = "j", csv = csv }, only_json)))
          assert.are.same({ 1, 1 }, { only_form:state().campaigns, only_json:state().campaigns })
        end)
        only_form:stop()
        only_json:stop()
        assert(ok, err)
        local out, code = sh(LAUNCHER .. " --campaign-upload xml 2>&1")
        assert.are.equal(2, code)
        assert.matches("--campaign-upload: expected json, multipart or both, got 'xml'", out, 1, true)
      end)
    end)
  end)

  describe("phone numbers", function()
    it("lists the ready number with totalCount and gets it by its percent-encoded id", function()
      local status, page = sb:request("GET", "/v1/phone-numbers")
      assert.are.equal(200, status)
      assert.are.equal(1, page.totalCount)
      assert.are.same(NUMBER_FIELDS, keys(page.data[1]))
      local _, n = sb:request("GET", "/v1/phone-numbers/%2B14157774444")
      assert.are.same({ "+14157774444", "twilio", "agent_abc123", "Sandbox Line", true },
        { n.sipPhoneNumber, n.provider, n.outboundAgentId, n.friendlyName, n.active })
      assert.are.equal(404, (sb:request("GET", "/v1/phone-numbers/%2B19995550000")))
    end)

    it("provisions by number or by country, and validates", function()
      local status, n = sb:request("POST", "/v1/phone-numbers", { phoneNumber = "+14155559000", friendlyName = "Two" })
      assert.are.equal(201, status)
      assert.are.same({ "+14155559000", "Two" }, { n.sipPhoneNumber, n.friendlyName })
      local _, m = sb:request("POST", "/v1/phone-numbers", { countryCode = "US", areaCode = 212 })
      assert.is_truthy(m.sipPhoneNumber:match("^%+1212%d%d%d%d%d%d%d$"), m.sipPhoneNumber)
      expect_400("POST", "/v1/phone-numbers", {}, "phoneNumber")
      expect_400("POST", "/v1/phone-numbers", { phoneNumber = "+14155559000" }, "phoneNumber") -- already there
      expect_400("POST", "/v1/phone-numbers", { countryCode = "usa" }, "countryCode")
      expect_400("POST", "/v1/phone-numbers", { countryCode = "US", areaCode = 99 }, "areaCode")
      expect_400("POST", "/v1/phone-numbers", { phoneNumber = "+14155559001", friendlyName = string.rep("f", 129) },
        "friendlyName")
      -- a new number can place calls
      create_call("+14155552671", { fromPhoneNumber = "+14155559000", agentId = sb.agent })
    end)

    it("imports a SIP number and validates its trunk fields", function()
      local body = { phoneNumber = "+442071234567", terminationSipURI = "sip.example.test", trunkUsername = "u",
        trunkPassword = "p" }
      local status, n = sb:request("POST", "/v1/phone-numbers/import", body)
      assert.are.equal(201, status)
      assert.are.same({ "byo", "sip.example.test" }, { n.provider, n.terminationSipURI })
      assert.is_nil(n.trunkPassword)
      body.phoneNumber = "+442071234568"
      body.trunkPassword = nil
      expect_400("POST", "/v1/phone-numbers/import", body, "trunkPassword")
      expect_400("POST", "/v1/phone-numbers/import", { phoneNumber = "+442071234569" }, "terminationSipURI")
    end)

    it("updates partially, null unassigns an agent, deletes with 204", function()
      local status, n = sb:request("PATCH", "/v1/phone-numbers/%2B14157774444",
        { friendlyName = "Renamed", inboundAgentId = json.null, terminationSipUri = "sip.x.test" })
      assert.are.equal(200, status)
      assert.are.same({ "Renamed", json.null, "agent_abc123", "sip.x.test" },
        { n.friendlyName, n.inboundAgentId, n.outboundAgentId, n.terminationSipURI })
      expect_400("PATCH", "/v1/phone-numbers/%2B14157774444", { outboundAgentId = "agent_nobody" }, "outboundAgentId")
      expect_400("PATCH", "/v1/phone-numbers/%2B14157774444", { terminationSipUri = string.rep("s", 254) },
        "terminationSipUri")
      assert.are.equal(404, (sb:request("PATCH", "/v1/phone-numbers/%2B19995550000", { friendlyName = "x" })))
      local dstatus, _, raw = sb:request("DELETE", "/v1/phone-numbers/%2B14157774444")
      assert.are.same({ 204, "" }, { dstatus, raw })
      assert.are.equal(404, (sb:request("GET", "/v1/phone-numbers/%2B14157774444")))
      assert.are.equal(404, (sb:request("DELETE", "/v1/phone-numbers/%2B14157774444")))
    end)
  end)

  describe("webhooks and agents", function()
    local function create_webhook(extra)
      local body = { name = "hook", agentId = sb.agent, url = sb.url .. "/_sandbox/echo/hook",
        events = { "conversation_ended" } }
      for k, v in pairs(extra or {}) do body[k] = v end
      local status, w, raw = sb:request("POST", "/v1/webhooks", body)
      assert.are.equal(201, status, raw)
      return w
    end

    it("creates a webhook with its secret, storing the analyzed alias as analysed", function()
      local w = create_webhook{ events = { "conversation_started", "conversation_analyzed" } }
      assert.are.same(WEBHOOK_FIELDS, keys(w))
      assert.is_truthy(w.secret:match("^whsec_%x+$"))
      assert.are.same({ "conversation_started", "conversation_analysed" }, w.events)
      assert.is_true(w.active)
      local status, got = sb:request("GET", "/v1/webhooks/" .. w.webhookId)
      assert.are.equal(200, status)
      assert.are.equal(w.url, got.url)
      expect_400("POST", "/v1/webhooks", { agentId = sb.agent, url = "http://127.0.0.1/x", events = { "conversation_ended" } }, "name")
      expect_400("POST", "/v1/webhooks", { name = "n", agentId = "agent_nobody", url = "http://127.0.0.1/x",
        events = { "conversation_ended" } }, "agentId")
      expect_400("POST", "/v1/webhooks", { name = "n", agentId = sb.agent, url = "ftp://x", events = { "conversation_ended" } }, "url")
      expect_400("POST", "/v1/webhooks", { name = "n", agentId = sb.agent, url = "http://127.0.0.1/x", events = {} }, "events")
      expect_400("POST", "/v1/webhooks", { name = "n", agentId = sb.agent, url = "http://127.0.0.1/x", events = { "call_exploded" } }, "events")
    end)

    it("lists active webhooks by default, disabled ones when asked; patches and deletes", function()
      local a = create_webhook{ name = "a" }
      local b = create_webhook{ name = "b" }
      local status, off = sb:request("PATCH", "/v1/webhooks/" .. b.webhookId, { active = false, name = "b2" })
      assert.are.equal(200, status)
      assert.are.same({ false, "b2" }, { off.active, off.name })
      local _, list = sb:request("GET", "/v1/webhooks")
      assert.are.same({ 1, a.webhookId }, { list.totalCount, list.data[1].webhookId })
      local _, disabled = sb:request("GET", "/v1/webhooks?active=false")
      assert.are.same({ 1, b.webhookId }, { disabled.totalCount, disabled.data[1].webhookId })
      local _, by_agent = sb:request("GET", "/v1/webhooks?agentId=agent_other")
      assert.are.equal(0, by_agent.totalCount)
      expect_400("PATCH", "/v1/webhooks/" .. a.webhookId, { url = "nope" }, "url")
      expect_400("GET", "/v1/webhooks?active=maybe", nil, "active")
      assert.are.equal(404, (sb:request("GET", "/v1/webhooks/wh_nope")))
      assert.are.equal(404, (sb:request("PATCH", "/v1/webhooks/wh_nope", { name = "x" })))
      local dstatus, _, raw = sb:request("DELETE", "/v1/webhooks/" .. a.webhookId)
      assert.are.same({ 204, "" }, { dstatus, raw })
      assert.are.equal(404, (sb:request("DELETE", "/v1/webhooks/" .. a.webhookId)))
    end)

    it("lists and gets agents", function()
      local status, page = sb:request("GET", "/v1/agents")
      assert.are.equal(200, status)
      assert.are.same({ 1, "agent_abc123", "Sandbox Agent", "Live" },
        { page.totalCount, page.data[1].agentId, page.data[1].name, page.data[1].status })
      local _, a = sb:request("GET", "/v1/agents/agent_abc123")
      assert.are.equal("agent_abc123", a.agentId)
      local s404, err = sb:request("GET", "/v1/agents/agent_nope")
      assert.are.equal(404, s404)
      assert.are.equal("Agent not found: agent_nope", err.message)
      expect_400("GET", "/v1/agents?size=0", nil, "size")
    end)

    it("delivers signed events that verify with openssl over the raw body", function()
      local server = assert(socket.bind("127.0.0.1", 0))
      local _, port = server:getsockname()
      server:settimeout(5)
      local w = create_webhook{ url = "http://127.0.0.1:" .. port .. "/hook", events = { "conversation_started" } }
      local call = create_call("+14155552671", { dynamicVariables = { who = "Ana" } })
      local conn = server:accept()
      assert.is_truthy(conn, "no delivery arrived")
      conn:settimeout(5)
      local request_line = conn:receive("*l")
      local headers = {}
      while true do
        local line = assert(conn:receive("*l"))
        if line == "" then break end
        local k, v = line:match("^([^:]+):%s*(.*)$")
        headers[k:lower()] = v
      end
      local body = assert(conn:receive(tonumber(headers["content-length"])))
      conn:send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
      conn:close()
      server:close()
      assert.are.equal("POST /hook HTTP/1.1", request_line)
      assert.are.equal("application/json", headers["content-type"])
      local t, v1 = headers["x-sigmamind-signature"]:match("^t=(%d+),v1=(%x+)$")
      assert.is_truthy(t, headers["x-sigmamind-signature"])
      assert.is_true(math.abs(tonumber(t) - os.time()) < 60)
      local dir = sh("mktemp -d"):gsub("%s+$", "")
      local f = assert(io.open(dir .. "/payload", "wb"))
      f:write(t .. "." .. body)
      f:close()
      local mac = sh("openssl dgst -sha256 -hmac '" .. w.secret .. "' < " .. dir .. "/payload"):match("(%x+)%s*$")
      sh("rm -rf " .. dir)
      assert.are.equal(mac, v1)
      local payload = json.decode(body)
      assert.are.equal("conversation_started", payload.event)
      assert.are.equal(call.callId, payload.call.callId)
      assert.are.equal("in_progress", payload.call.status)
      assert.is_truthy(payload.timestamp:match("^%d%d%d%d%-"))
      local log = wait_for(function()
        local _, d = sb:request("GET", "/_sandbox/deliveries?callId=" .. call.callId)
        return d.data[1] and d.data[1].result == "delivered" and d
      end)
      assert.are.same({ 1, 200, 1, headers["x-sigmamind-signature"] },
        { log.totalCount, log.data[1].status, log.data[1].attempts, log.data[1].signature })
    end)

    it("writes dynamic variables' numbers exactly wherever it writes a Call, and refuses NaN", function()
      -- cjson 2.1.0 writes 14 digits: 123456789012345 came back as 1.2345678901234e+14
      create_webhook{ events = { "conversation_started", "conversation_ended" } }
      local vars = { big = "123456789012345", max = "9007199254740991", neg = "-42", tenth = "0.1",
                     third = "0.3333333333333333", tiny = "5e-324", huge = "1e+300", yes = "true", who = '"Ana"' }
      local fields = {}
      for k, v in pairs(vars) do fields[#fields + 1] = '"' .. k .. '":' .. v end
      local body = '{"fromPhoneNumber":"' .. sb.number .. '","toPhoneNumber":"+14155552671","dynamicVariables":{' ..
                   table.concat(fields, ",") .. '}}'
      local function exact(raw, where)
        for k, v in pairs(vars) do
          local want = '"' .. k .. '":' .. v
          assert.is_truthy(raw:find(want:gsub('"', '\\"'), 1, true) or raw:find(want, 1, true),
                           where .. " lacks " .. want .. ": " .. raw)
        end
      end
      local status, call, raw = sb:request("POST", "/v1/calls", body)
      assert.are.equal(201, status, raw)
      exact(raw, "the create's answer")
      sb:advance(3600)
      local _, _, got = sb:request("GET", "/v1/calls/" .. call.callId)
      exact(got, "GET")
      local _, _, page = sb:request("GET", "/v1/calls?size=100")
      exact(page, "the list")
      local _, ended = sb:request("GET", "/v1/calls/" .. call.callId)
      assert.are.equal("ended", ended.status)
      assert.matches("big = 123456789012345, huge = 1e+300, max = 9007199254740991", ended.transcript, 1, true)
      local log = deliveries("callId=" .. call.callId, 2)
      assert.is_truthy(log, "the deliveries did not arrive")
      for _, e in ipairs(log.data) do
        exact(e.body, e.event)
        if e.event == "conversation_ended" then assert.are.same(json.decode(got), json.decode(e.body).call) end
      end
      expect_400("POST", "/v1/calls", (body:gsub('"neg":%-42', '"neg":NaN')), "body")
      expect_400("POST", "/v1/calls", (body:gsub('"neg":%-42', '"neg":Infinity')), "body")
    end)

    it("delivers only to addresses loopback as written, never to names that look like them", function()
      local port = sb.port
      local v6 = assert(socket.tcp6())                  -- a receiver on [::1], which the sandbox does not serve
      assert(v6:bind("::1", 0))
      assert(v6:listen(8))
      local _, v6port = v6:getsockname()
      local loopback = { "http://127.0.0.1:" .. port .. "/_sandbox/echo/a", "http://localhost:" .. port ..
        "/_sandbox/echo/b", "http://LocalHost:" .. port .. "/_sandbox/echo/c", "http://[::1]:" .. v6port .. "/d",
        "http://127.255.0.254:9/e" }
      local names = { "http://127.1.1.1.1:" .. port .. "/", "http://127.0.0.1.example:" .. port .. "/",
        "http://127.0.0.256:" .. port .. "/", "http://127.00.0.1:" .. port .. "/", "http://127.1:" .. port .. "/",
        "http://[127.0.0.1]:" .. port .. "/", "http://[localhost]:" .. port .. "/", "http://localhost.:" .. port ..
        "/", "http://[::ffff:127.0.0.1]:" .. port .. "/", "http://0x7f000001:" .. port .. "/" }
      local by_url = {}
      for _, url in ipairs(loopback) do by_url[create_webhook{ url = url }.webhookId] = url end
      for _, url in ipairs(names) do by_url[create_webhook{ url = url }.webhookId] = url end
      local call = create_call("+14155552001")
      sb:advance(60)
      local function results()
        local _, d = sb:request("GET", "/_sandbox/deliveries?callId=" .. call.callId)
        local out = {}
        for _, e in ipairs(d.data) do out[by_url[e.webhookId]] = e.result end
        return out, d
      end
      local result = results()                          -- refused at once, when the event fires
      for _, url in ipairs(names) do assert.are.equal("refused", result[url], url) end
      v6:settimeout(5)
      local conn = v6:accept()                          -- the delivery to [::1] arrives
      assert.is_truthy(conn, "nothing was delivered to [::1]")
      conn:settimeout(5)
      assert.are.equal("POST /d HTTP/1.1", conn:receive("*l"))
      conn:close()
      v6:close()
      result = wait_for(function()
        local out, d = results()
        for _, e in ipairs(d.data) do if e.result == "pending" then return false end end
        return #d.data == #loopback + #names and out
      end, 10)
      assert.is_truthy(result, "deliveries did not finish")
      for i = 1, 3 do assert.are.equal("delivered", result[loopback[i]], loopback[i]) end
      assert.are_not.equal("refused", result[loopback[4]])
      assert.are.equal("failed", result[loopback[5]])   -- tried: nothing listens there
    end)

    it("retries a failed delivery up to 3 times with backoff and keeps a log", function()
      local flaky = create_webhook{ url = sb.url .. "/_sandbox/echo/flaky?fail=2" }
      local dead = create_webhook{ url = "http://127.0.0.1:9/closed" }
      local call = create_call("+14155552001")
      sb:advance(60)
      local log = deliveries("callId=" .. call.callId, 2, function(e) return e.result ~= "pending" end)
      assert.is_truthy(log, "deliveries did not finish")
      local by = {}
      for _, e in ipairs(log.data) do by[e.webhookId] = e end
      assert.are.same({ "delivered", 3, 200, "conversation_ended" },
        { by[flaky.webhookId].result, by[flaky.webhookId].attempts, by[flaky.webhookId].status, by[flaky.webhookId].event })
      assert.are.same({ "failed", 4 }, { by[dead.webhookId].result, by[dead.webhookId].attempts })
      local _, echo = sb:request("GET", "/_sandbox/echo")
      assert.are.equal(3, echo.totalCount)
      assert.are.same({ 500, 500, 200 }, { echo.data[1].answered, echo.data[2].answered, echo.data[3].answered })
    end)
  end)

  describe("faults", function()
    local function raw_get(path, fault)
      local c = assert(socket.connect("127.0.0.1", sb.port))
      c:settimeout(5)
      c:send("GET " .. path .. " HTTP/1.1\r\nHost: x\r\nX-API-Key: " .. sb.key .. "\r\nX-Sandbox-Fault: " .. fault ..
        "\r\nConnection: close\r\n\r\n")
      local data, err, partial = c:receive("*a")
      c:close()
      return data or partial, err
    end

    it("answers 429 with Retry-After, 500 and 503 on demand", function()
      local status, err, _, headers = sb:request("GET", "/v1/agents", nil, { ["X-Sandbox-Fault"] = "429" })
      assert.are.same({ 429, "1", "Too Many Requests" }, { status, headers["retry-after"], err.error })
      assert.are.equal(500, (sb:request("GET", "/v1/agents", nil, { ["X-Sandbox-Fault"] = "500" })))
      assert.are.equal(503, (sb:request("GET", "/v1/agents", nil, { ["X-Sandbox-Fault"] = "503" })))
    end)

    it("drops the connection without answering on reset", function()
      local data = raw_get("/v1/agents", "reset")
      assert.are.equal("", data)
    end)

    it("sleeps on slow=MS, then answers normally", function()
      local t0 = socket.gettime()
      local status = sb:request("GET", "/v1/agents", nil, { ["X-Sandbox-Fault"] = "slow=300" })
      assert.are.equal(200, status)
      assert.is_true(socket.gettime() - t0 >= 0.29)
    end)

    it("promises more body than it sends on truncate", function()
      local data = raw_get("/v1/agents", "truncate")
      local head, body = data:match("^(.-)\r\n\r\n(.*)$")
      local promised = tonumber(head:match("[Cc]ontent%-[Ll]ength: (%d+)"))
      assert.is_true(promised > #body)
      assert.is_nil(json.decode(body))
    end)

    it("answers 200 with a non-JSON body on garbage", function()
      local status, v, raw = sb:request("GET", "/v1/agents", nil, { ["X-Sandbox-Fault"] = "garbage" })
      assert.are.equal(200, status)
      assert.is_nil(v)
      assert.is_true(#raw > 0)
    end)

    it("sends big JSON bodies with and without Content-Length", function()
      local status, v, raw, headers = sb:request("GET", "/v1/agents", nil, { ["X-Sandbox-Fault"] = "big=100000" })
      assert.are.same({ 200, "100000" }, { status, headers["content-length"] })
      assert.are.equal(100000, #raw)
      assert.is_truthy(v and v.data)
      local cstatus, cv, craw, cheaders = sb:request("GET", "/v1/agents", nil, { ["X-Sandbox-Fault"] = "bigchunked=300000" })
      assert.are.same({ 200, "chunked" }, { cstatus, cheaders["transfer-encoding"] })
      assert.is_nil(cheaders["content-length"])
      assert.are.equal(300000, #craw)
      assert.is_truthy(cv and cv.data)
    end)

    it("arms a fault for the next N matching requests, by path or route, and counts them all", function()
      sb:arm{ method = "POST", path = "/v1/calls", fault = "503", count = 2 }
      local body = { fromPhoneNumber = sb.number, toPhoneNumber = "+14155552671" }
      assert.are.equal(503, (sb:request("POST", "/v1/calls", body)))
      assert.are.equal(503, (sb:request("POST", "/v1/calls", body)))
      assert.are.equal(201, (sb:request("POST", "/v1/calls", body)))
      assert.are.equal(3, sb:count("POST", "/v1/calls"))
      assert.are.equal(1, sb:state().calls)
      sb:arm{ method = "GET", path = "/v1/calls/{callId}", fault = "429" }
      assert.are.equal(429, (sb:request("GET", "/v1/calls/call_a")))
      assert.are.equal(404, (sb:request("GET", "/v1/calls/call_b")))
      assert.are.equal(2, sb:count("GET", "/v1/calls/{callId}"))
      local status = sb:request("POST", "/_sandbox/faults", { path = "/v1/calls", fault = "explode" })
      assert.are.equal(400, status)
    end)

    it("injects seeded random faults in chaos mode, counts them per route, and stops on rate 0 or reset", function()
      local function run(seed)
        sb:reset()
        assert.are.equal(200, (sb:request("POST", "/_sandbox/chaos", { rate = 0.5, faults = { "500", "429" }, seed = seed })))
        local seen = {}
        for i = 1, 40 do seen[i] = (sb:request("GET", "/v1/agents")) end
        return seen, sb:state()
      end
      local a, st = run(7)
      local b = run(7)
      assert.are.same(a, b)                                       -- the same seed, the same faults
      local n = { [200] = 0, [429] = 0, [500] = 0 }
      for _, s in ipairs(a) do n[s] = n[s] + 1 end
      assert.is_true(n[429] > 0 and n[500] > 0 and n[200] > 0)
      assert.are.same({ ["429"] = n[429], ["500"] = n[500] }, st.chaos["GET /v1/agents"])
      assert.are.equal(40, st.requests["GET /v1/agents"])
      assert.are.equal(0.5, st.chaosMode.rate)
      sb:request("POST", "/_sandbox/chaos", { rate = 1, faults = { "lost" }, seed = 1 })
      local body = { fromPhoneNumber = sb.number, toPhoneNumber = "+14155552671" }
      assert.is_nil((sb:request("POST", "/v1/calls", body)))      -- carried out, never answered
      assert.are.equal(1, sb:state().calls)
      assert.are.equal(200, (sb:request("POST", "/_sandbox/chaos", { rate = 0 })))
      assert.are.equal(201, (sb:request("POST", "/v1/calls", body)))
      sb:request("POST", "/_sandbox/chaos", { rate = 1, faults = { "503" } })
      sb:reset()
      st = sb:state()
      assert.are.equal(200, (sb:request("GET", "/v1/agents")))
      assert.are.same({}, st.chaos)
      expect_400("POST", "/_sandbox/chaos", { rate = 2 }, "rate")
      expect_400("POST", "/_sandbox/chaos", { rate = 0.1, faults = { "explode" } }, "faults")
    end)
  end)

  describe("admin", function()
    it("counts requests per method and route, and reset clears them", function()
      sb:request("GET", "/v1/agents")
      sb:request("GET", "/v1/agents/agent_abc123")
      sb:request("GET", "/v1/agents/agent_abc123")
      local st = sb:state()
      assert.are.equal(1, st.requests["GET /v1/agents"])
      assert.are.equal(2, st.requests["GET /v1/agents/{agentId}"])
      sb:reset()
      assert.is_nil(sb:state().requests["GET /v1/agents"])
    end)

    it("seeds 100,000 ended calls fast, for pagination", function()
      local t0 = socket.gettime()
      local status, v = sb:request("POST", "/_sandbox/seed", { calls = 100000, mix = "uniform" })
      assert.are.equal(200, status)
      assert.are.equal(100000, v.seeded)
      assert.is_true(socket.gettime() - t0 < 3)
      local _, page = sb:request("GET", "/v1/calls?size=100&page=999&status=ended")
      assert.are.same({ 100000, 1000, 100, false }, { page.totalCounts, page.totalPages, #page.data, page.hasNext })
      expect_400("POST", "/_sandbox/seed", { calls = -1 }, "calls")
    end)

    it("seeds a realistic mix on request: outcomes, durations, agents and variables vary, repeatably", function()
      local function seeded(n, seed)
        sb:reset()
        local status, v, raw = sb:request("POST", "/_sandbox/seed", { calls = n, mix = "realistic", seed = seed })
        assert.are.equal(200, status, raw)
        assert.are.equal(n, v.seeded)
        local out = {}
        for page = 0, math.ceil(n / 100) - 1 do
          local _, p = sb:request("GET", "/v1/calls?size=100&page=" .. page)
          for _, c in ipairs(p.data) do out[#out + 1] = c end
        end
        assert.are.equal(n, #out)
        return out
      end
      local calls = seeded(2000, 7)
      local now = epoch(sb:state().clock)
      local status, reason, agent, names, talks = {}, {}, {}, {}, {}
      local no_vars = 0
      for _, c in ipairs(calls) do
        status[c.status] = (status[c.status] or 0) + 1
        reason[c.terminationReason] = true
        agent[c.agent.agentId] = true
        if c.dynamicVariables.customer_name then names[c.dynamicVariables.customer_name] = true
        else no_vars = no_vars + 1 end
        assert.is_true(epoch(c.endTime) < now, c.endTime)                  -- history: every one has ended
        if c.startTime ~= json.null then
          assert.are.equal(c.duration, math.floor(epoch(c.endTime) - epoch(c.startTime) + 0.5), c.callId)
          assert.is_true(c.duration >= 20, c.callId)
          if c.terminationReason ~= "voicemail_detected" then talks[#talks + 1] = c.duration end
        else
          assert.are.equal(0, c.duration)
        end
      end
      -- most calls end normally, some ring out or fail
      assert.is_true(status.ended > 1200 and status.ended < 1800, json.encode(status))
      assert.is_true(status.not_connected > 100 and status.error > 10, json.encode(status))
      assert.are.same({ "agent_ended_call", "dial_busy", "dial_invalid_destination", "dial_no_answer",
        "dial_user_declined", "error_telephony", "user_ended_call", "voicemail_detected" }, keys(reason))
      -- most conversations last 30 s to 4 min, a few much longer
      table.sort(talks)
      local within, long = 0, 0
      for _, d in ipairs(talks) do
        if d >= 30 and d <= 240 then within = within + 1 end
        if d > 300 then long = long + 1 end
      end
      assert.is_true(within / #talks > 0.75, within .. " of " .. #talks)
      assert.is_true(long > 0 and long / #talks < 0.2, long .. " of " .. #talks)
      local median = talks[#talks // 2]
      assert.is_true(median >= 45 and median <= 180, "median " .. median)
      -- several agents, all of them on the account; many customers, a few calls without variables
      assert.are.same({ "agent_abc123", "agent_sales01", "agent_support01" }, keys(agent))
      assert.are.equal(3, select(2, sb:request("GET", "/v1/agents")).totalCount)
      assert.is_true(#keys(names) > 20)
      assert.is_true(no_vars > 0 and no_vars < 400, no_vars)
      -- the same seed gives the same calls, another seed others
      local function outline(list)
        local out = {}
        for i, c in ipairs(list) do
          out[i] = table.concat({ c.status, c.terminationReason, c.duration, c.agent.agentId,
                                  c.transcript, json.encode(c.dynamicVariables) }, " ")
        end
        return out
      end
      assert.are.same(outline(calls), outline(seeded(2000, 7)))
      assert.are_not.same(outline(calls), outline(seeded(2000, 8)))
      expect_400("POST", "/_sandbox/seed", { calls = 10, mix = "lifelike" }, "mix")
      expect_400("POST", "/_sandbox/seed", { calls = 10, mix = "realistic", seed = 0 }, "seed")
      expect_400("POST", "/_sandbox/seed", { calls = 10, mix = "uniform", seed = 3 }, "seed")
    end)

    it("moves the clock on and reports it", function()
      local before = sb:state().clock
      local _, v = sb:request("POST", "/_sandbox/clock", { advance = 7200 })
      assert.is_true(v.offset >= 7200)
      assert.is_true(sb:state().clock > before)
      expect_400("POST", "/_sandbox/clock", { advance = "soon" }, "advance")
      -- the Date header is the moved clock's too, on answers of every kind, and there is one of it
      for _, path in ipairs{ "/v1/agents", "/v1/calls/call_missing" } do
        local head = sh("curl -s -D - -o /dev/null -H 'X-API-Key: " .. sb.key .. "' " .. sb.url .. path)
        local dates = {}
        for d in head:gmatch("\n[Dd]ate: ([^\r\n]+)") do dates[#dates + 1] = d end
        assert.are.equal(1, #dates, head)
        local shown = sh("date -u -d " .. ("%q"):format(dates[1]) .. " +%s")
        local ahead = tonumber(shown) - os.time()
        assert.is_true(ahead >= 7198 and ahead <= 7202, path .. ": Date is " .. tostring(ahead) .. " s ahead")
      end
    end)
  end)
end)
