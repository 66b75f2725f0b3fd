-- The dialer resolves its uncertain rows: a row whose create may have reached the server without
-- an answer, in this run or a killed one, has its call looked up before anyone calls it again.
local sandbox = require "support.sandbox"
local util = require "support.util"
local core = require "sigmamind.core"

local tmpname, write, read = util.tmpname, util.write_file, util.read_file

local function phone(i) return string.format("+1212666%04d", i) end

-- an intent as the dialer journals it, made `ago` seconds ago
local function intent(row, number, ago)
  return string.format("I %d %s %.3f $\n", row, number, core.time() - (ago or 0))
end

describe("dial's uncertain rows", function()
  local sb

  local function client(opts) return util.client(sb, opts) end

  -- a call as the killed dialer's POST would have made it
  local function make_call(to, vars)
    local status, call = sb:request("POST", "/v1/calls", { fromPhoneNumber = sb.number, toPhoneNumber = to,
                                                          agentId = sb.agent, dynamicVariables = vars })
    assert.equal(201, status)
    return call
  end

  setup(function() sb = sandbox.start{ speed = 1000 } end)
  teardown(function() if sb then sb:stop() end end)
  before_each(function() sb:reset() end)

  it("marks reconciled, and journals, a row whose create answer was lost", function()
    local c, j = client(), tmpname()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    local report = assert(c:dial{ contacts = { { phoneNumber = phone(1), row_id = "r1" } }, from = sb.number,
                                  agent = sb.agent, journal = j, wait = false })
    local r = report.rows[1]
    assert.same({ "placed", true }, { r.status, r.reconciled })
    assert.same({ 1, 0 }, { report.placed, report.uncertain })
    assert.matches("\nC 1 %+12126660001 " .. r.callId .. " %$\n$", read(j))
    assert.equal(1, sb:count("POST", "/v1/calls"))
    os.remove(j)
    c:close()
  end)

  it("resolves at the end of the run a lost row whose lookup a look-alike row's create held up", function()
    -- a list with no variables: every row looks alike. The first POST's answer is lost; the other
    -- POST outlasts that create's lookups, which cannot tell the call they find from the other
    -- row's (unanswered) until it is answered: the dial looks again once every create has been.
    local c, j = client(), tmpname()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "lost", count = 1 }
    sb:arm{ method = "POST", path = "/v1/calls", fault = "slow=4500", count = 1 }
    local seen = {}
    local report = assert(c:dial{ contacts = { { phoneNumber = phone(1) }, { phoneNumber = phone(2) } },
                                  from = sb.number, agent = sb.agent, journal = j, wait = false, concurrency = 2,
                                  on_progress = function(n) seen[#seen + 1] = n end })
    local a, b = report.rows[1], report.rows[2]
    assert.same({ "placed", "placed" }, { a.status, b.status }, tostring(a.err or b.err))
    assert.same({ 2, 0 }, { report.placed, report.uncertain })
    assert.is_true((a.reconciled or b.reconciled) == true)
    assert.is_nil(a.reconciled and b.reconciled)           -- only the lost one was looked for
    assert.are_not.equal(a.callId, b.callId)
    assert.same({ 2, 2 }, { sb:count("POST", "/v1/calls"), sb:state().calls })
    local ids = {}
    for _, call in ipairs(select(2, sb:request("GET", "/v1/calls?size=100")).data) do ids[call.callId] = true end
    assert.is_true(ids[a.callId] and ids[b.callId])
    assert.same({ placed = 2, uncertain = 0, pending = 0 },
                { placed = seen[#seen].placed, uncertain = seen[#seen].uncertain, pending = seen[#seen].pending })
    local text = read(j)
    assert.truthy(text:find("C 1 " .. phone(1) .. " " .. a.callId .. " $\n", 1, true))
    assert.truthy(text:find("C 2 " .. phone(2) .. " " .. b.callId .. " $\n", 1, true))
    -- a rerun skips both, silently
    report = assert(c:dial{ contacts = { { phoneNumber = phone(1) }, { phoneNumber = phone(2) } },
                            from = sb.number, agent = sb.agent, journal = j, wait = false })
    assert.same({ "skipped", "skipped", 2 }, { report.rows[1].status, report.rows[2].status, report.skipped })
    assert.is_nil(report.rows[1].err)
    assert.equal(2, sb:count("POST", "/v1/calls"))
    os.remove(j)
    c:close()
  end)

  it("resolves, with no second POST, the row a dialer killed with SIGKILL left with an intent only", function()
    local j, script = tmpname(), tmpname() .. ".lua"
    write(script, string.format([[
      local sigmamind = require "sigmamind"
      local c = sigmamind.new{ api_key = %q, base_url = %q }
      c:dial{ contacts = { { phoneNumber = %q, row_id = "r1" } }, from = %q, agent = %q, journal = %q,
              wait = false }
    ]], sb.key, sb.url, phone(1), sb.number, sb.agent, j))
    -- the POST takes 1.5 s in the sandbox: the dialer is killed once the sandbox has it
    sb:arm{ method = "POST", path = "/v1/calls", fault = "slow=1500", count = 1 }
    local code = util.kill_when(script, function() return sb:count("POST", "/v1/calls") >= 1 end)
    os.remove(script)
    assert.equal(137, code)
    assert.matches("^I 1 %+12126660001 %d+%.%d+ %$\n$", read(j))   -- its intent, with its time, and no more
    -- the sandbox still makes the call once its 1.5 s are up
    util.wait_for(function() return sb:state().calls >= 1 end, 20)
    local made = assert(select(2, sb:request("GET", "/v1/calls")).data[1])

    local c = client()
    local rows = { { phoneNumber = phone(1), row_id = "r1" }, { phoneNumber = phone(2), row_id = "r2" } }
    local report = assert(c:dial{ contacts = rows, from = sb.number, agent = sb.agent, journal = j, wait = false })
    local r = report.rows[1]
    assert.same({ "placed", made.callId, true }, { r.status, r.callId, r.reconciled }, tostring(r.err))
    assert.is_nil(r.err)
    assert.same({ 2, 0 }, { report.placed, report.uncertain })    -- row 1 found, row 2 dialed
    assert.equal(2, sb:count("POST", "/v1/calls"))
    assert.same({ r1 = 1, r2 = 1 }, sb:calls_per("row_id"))
    assert.truthy(read(j):find("C 1 " .. phone(1) .. " " .. made.callId .. " $\n", 1, true))
    -- the next rerun skips it silently
    report = assert(c:dial{ contacts = rows, from = sb.number, agent = sb.agent, journal = j, wait = false })
    assert.same({ "skipped", made.callId }, { report.rows[1].status, report.rows[1].callId })
    assert.is_nil(report.rows[1].err)
    assert.same({ 2, 0, 2 }, { report.skipped, report.uncertain, sb:count("POST", "/v1/calls") })
    os.remove(j)
    c:close()
  end)

  it("leaves a row uncertain, saying why, when two calls match it or a look-alike row is uncertain too", function()
    local c, j = client(), tmpname()
    write(j, intent(1, phone(1), 1) .. intent(2, phone(2), 1) .. intent(3, phone(3), 1))
    make_call(phone(1), { group = "a" })                     -- two look-alikes for row 1
    make_call(phone(9), { group = "a" })
    make_call(phone(2), { group = "b" })                     -- one call, rows 2 and 3 both look like it
    local rows = { { phoneNumber = phone(1), group = "a" }, { phoneNumber = phone(2), group = "b" },
                   { phoneNumber = phone(3), group = "b" } }
    local seen
    local report = assert(c:dial{ contacts = rows, from = sb.number, agent = sb.agent, journal = j, wait = false,
                                  on_progress = function(n) seen = n end })
    assert.same({ 0, 3 }, { report.placed, report.uncertain })
    assert.equal(3, seen.uncertain)
    local e1, e2, e3 = report.rows[1].err, report.rows[2].err, report.rows[3].err
    for i, e in ipairs{ e1, e2, e3 } do
      assert.equal("uncertain", report.rows[i].status)
      assert.is_true(core.is_error(e))
      assert.same({ "interrupted", true }, { e.kind, e.sent })
      assert.matches("an earlier run stopped after recording its intent", tostring(e), 1, true)
    end
    assert.matches("^2 calls match the request", e1.reconcile)
    assert.matches("; reconciling: 2 calls match the request", tostring(e1), 1, true)
    assert.matches("row 3 is uncertain too and looks alike", e2.reconcile, 1, true)
    assert.matches("row 2 is uncertain too and looks alike", e3.reconcile, 1, true)
    assert.equal(3, sb:count("POST", "/v1/calls"))           -- the three made above: nobody redialed
    assert.is_nil(read(j):find("\nC ", 1, true))
    os.remove(j)
    c:close()
  end)

  it("leaves a row uncertain, saying why, when no call matches, the lookup fails or the journal is old", function()
    local c, j = client{ max_retries = 0 }, tmpname()
    -- row 1: its look-alike was made a minute before its intent, on the server's clock
    make_call(phone(1), { row_id = "r1" })
    sb:advance(60)
    -- row 2: an intent without its time, as older versions wrote; row 3: an earlier run's timeout
    write(j, intent(1, phone(1)) .. "I 2 " .. phone(2) .. " $\n" .. intent(3, phone(3), 1) ..
             "F 3 " .. phone(3) .. " timeout 1 0 $\n")
    make_call(phone(2), { row_id = "r2" })
    local rows = { { phoneNumber = phone(1), row_id = "r1" }, { phoneNumber = phone(2), row_id = "r2" },
                   { phoneNumber = phone(3), row_id = "r3" } }
    local report = assert(c:dial{ contacts = rows, from = sb.number, agent = sb.agent, journal = j, wait = false })
    local e1, e2, e3 = report.rows[1].err, report.rows[2].err, report.rows[3].err
    assert.same({ "uncertain", "uncertain", "uncertain" },
                { report.rows[1].status, report.rows[2].status, report.rows[3].status })
    assert.matches("no call matching the request was found", e1.reconcile, 1, true)
    assert.matches("not looked up: the journal gives no time for its intent", tostring(e2), 1, true)
    assert.equal("timeout", e3.kind)
    assert.matches("failed in an earlier run (from the journal); reconciling: no call matching", tostring(e3), 1,
                   true)
    -- the lookup itself fails
    sb:arm{ method = "GET", path = "/v1/calls", fault = "500", count = 1 }
    report = assert(c:dial{ contacts = { rows[1] }, from = sb.number, agent = sb.agent, journal = j, wait = false })
    assert.equal("uncertain", report.rows[1].status)
    assert.matches("^the lookup failed: sigmamind: GET /v1/calls: 500", report.rows[1].err.reconcile)
    assert.equal(2, sb:count("POST", "/v1/calls"))           -- the two made above
    os.remove(j)
    c:close()
  end)

  it("with redial_uncertain, looks up first and redials only the rows still uncertain", function()
    local c, j = client(), tmpname()
    write(j, intent(1, phone(1), 1) .. intent(2, phone(2), 1))
    local made = make_call(phone(1), { row_id = "r1" })
    local rows = { { phoneNumber = phone(1), row_id = "r1" }, { phoneNumber = phone(2), row_id = "r2" } }
    local report = assert(c:dial{ contacts = rows, from = sb.number, agent = sb.agent, journal = j, wait = false,
                                  redial_uncertain = true })
    assert.same({ "placed", made.callId, true }, { report.rows[1].status, report.rows[1].callId,
                                                   report.rows[1].reconciled })
    assert.same({ "placed", nil }, { report.rows[2].status, report.rows[2].reconciled })
    assert.same({ 2, 0 }, { report.placed, report.uncertain })
    assert.equal(2, sb:count("POST", "/v1/calls"))           -- row 1's (above) and row 2's redial
    assert.same({ r1 = 1, r2 = 1 }, sb:calls_per("row_id"))
    os.remove(j)
    c:close()
  end)

  it("is shown by the CLI's dial: a found row as placed with its call, an unfound one with why", function()
    local csvfile, j, errfile = tmpname() .. ".csv", tmpname(), tmpname()
    write(csvfile, "phoneNumber,row_id\n" .. phone(1) .. ",r1\n" .. phone(2) .. ",r2\n")
    write(j, intent(1, phone(1), 1) .. intent(2, phone(2), 1))
    local made = make_call(phone(1), { row_id = "r1" })
    local function cli(flags)
      local p = assert(io.popen(string.format("env SIGMAMIND_API_KEY=%s SIGMAMIND_BASE_URL=%s bin/sigmamind %s "
                                              .. "dial %s --from %s --agent %s --journal %s 2>%s", sb.key, sb.url,
                                              flags, csvfile, sb.number, sb.agent, j, errfile)))
      local out = p:read("a")
      local _, _, code = p:close()
      return out, read(errfile), code
    end
    local out, err, code = cli("")
    assert.equal(1, code)                                    -- row 2 is still uncertain
    assert.matches("\n1%s+%+12126660001%s+placed%s+" .. made.callId .. "%s+%-\n", out)
    assert.matches("\n2%s+%+12126660002%s+uncertain%s+", out)
    assert.matches("placed 1, skipped 0, invalid 0, failed 0, uncertain 1 (of 2 rows)", out, 1, true)
    assert.matches("row 2: uncertain: sigmamind: POST /v1/calls: interrupted: an earlier run stopped", err, 1,
                   true)
    assert.matches("reconciling: no call matching the request was found\n", err, 1, true)
    out = cli("--json")
    local rep = assert(core.json_decode(out))
    assert.same({ "skipped", made.callId }, { rep.rows[1].status, rep.rows[1].callId })
    assert.equal(1, sb:count("POST", "/v1/calls"))
    os.remove(csvfile); os.remove(j); os.remove(errfile)
  end)
end)
