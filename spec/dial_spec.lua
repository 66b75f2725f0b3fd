-- The dialer (README, "Concurrency: tasks, host loops and the dialer"): one call per valid row,
-- never twice, even when killed and restarted.
local sandbox = require "support.sandbox"
local util = require "support.util"
local core = require "sigmamind.core"

local tmpname, write, read = util.tmpname, util.write_file, util.read_file

local function phone(i) return string.format("+1212777%04d", i) end

local function contacts(n)
  local rows = {}
  for i = 1, n do rows[i] = { phoneNumber = phone(i), row_id = "r" .. i } end
  return rows
end

describe("dial", function()
  local sb

  local function client(opts) return util.client(sb, opts) end

  local function calls_per_row() return sb:calls_per("row_id") end

  setup(function() sb = sandbox.start{ speed = 1000 } end)
  teardown(function() if sb then sb:stop() end end)
  before_each(function() sb:reset() end)

  it("checks every row first and dials only the valid ones, waiting for their final states", function()
    local c = client()
    local rows = contacts(5)
    rows[2].phoneNumber = "+1234"                        -- invalid
    rows[4].phoneNumber = rows[1].phoneNumber            -- duplicate
    rows[5].phoneNumber = "+12125550102"                 -- the sandbox's "no answer" number
    local seen = {}
    local report = assert(c:dial{ contacts = rows, from = sb.number, agent = sb.agent, concurrency = 2,
                                  on_progress = function(counts) seen[#seen + 1] = counts end })
    assert.equal(5, report.total)
    assert.equal(3, report.placed)
    assert.equal(2, report.invalid)
    assert.equal("invalid", report.rows[2].status)
    assert.matches("Row 2: invalid phone number '%+1234'", report.rows[2].problems[1])
    assert.matches("Row 4: duplicate phone number", report.rows[4].problems[1])
    assert.equal("placed", report.rows[1].status)
    assert.equal("ended", report.rows[1].final)
    assert.equal("not_connected", report.rows[5].final)
    assert.same({ ended = 2, not_connected = 1 }, report.statuses)
    assert.equal(3, sb:count("POST", "/v1/calls"))
    assert.same({ r1 = 1, r3 = 1, r5 = 1 }, calls_per_row())
    local last = seen[#seen]
    assert.equal(3, last.placed); assert.equal(3, last.final); assert.equal(0, last.pending)
    c:close()
  end)

  it("reads a journal back: placed rows are skipped, uncertain ones left alone, unsent ones dialed", function()
    local c = client()
    local j = tmpname()
    local p = phone
    write(j, table.concat{
      "I 1 ", p(1), " $\n", "C 1 ", p(1), " call_earlier $\n",     -- placed in an earlier run
      "I 2 ", p(2), " $\n",                                        -- intent, no outcome: uncertain
      "I 3 ", p(3), " $\n", "F 3 ", p(3), " network 0 0 $\n",      -- certainly never sent: dial again
      "I 4 ", p(4), " $\n", "F 4 ", p(4), " timeout 1 0 $\n",      -- may have been sent: uncertain
      "I 5 ", p(5), " $\n", "C 5 ", p(5), " call_tor",             -- a crash in mid-write: torn, unreadable
    })
    local report = assert(c:dial{ contacts = contacts(6), from = sb.number, agent = sb.agent, journal = j,
                                  wait = false })
    assert.equal("skipped", report.rows[1].status); assert.equal("call_earlier", report.rows[1].callId)
    assert.equal("uncertain", report.rows[2].status)
    assert.equal("placed", report.rows[3].status)
    assert.equal("uncertain", report.rows[4].status)
    assert.equal("uncertain", report.rows[5].status)
    assert.equal("placed", report.rows[6].status)
    assert.same({ placed = 2, skipped = 1, uncertain = 3 },
                { placed = report.placed, skipped = report.skipped, uncertain = report.uncertain })
    assert.same({ r3 = 1, r6 = 1 }, calls_per_row())
    -- again with the same journal: nothing left to dial
    report = assert(c:dial{ contacts = contacts(6), from = sb.number, agent = sb.agent, journal = j, wait = false })
    assert.equal(3, report.skipped)
    assert.equal(2, sb:count("POST", "/v1/calls"))
    -- asked to, it redials the uncertain rows
    report = assert(c:dial{ contacts = contacts(6), from = sb.number, agent = sb.agent, journal = j, wait = false,
                            redial_uncertain = true })
    assert.equal(3, report.placed)
    assert.same({ r2 = 1, r3 = 1, r4 = 1, r5 = 1, r6 = 1 }, calls_per_row())
    os.remove(j)
    c:close()
  end)

  it("knows a journaled row by its number: a list fixed by removing a bad row rings nobody twice", function()
    local c, j = client(), tmpname()
    local ann, bob = { phone = "+12137770002", row_id = "ann" }, { phone = "+12137770004", row_id = "bob" }
    local first = assert(c:dial{ contacts = { { phone = "+1234", row_id = "bad" }, ann, bob }, from = sb.number,
                                 agent = sb.agent, wait = false, journal = j })
    assert.same({ 2, 1 }, { first.placed, first.invalid })
    -- the bad row removed: Ann and Bob move from rows 2 and 3 to rows 1 and 2; a new row 3 is new
    local second = assert(c:dial{ contacts = { ann, bob, { phone = "+12137770006", row_id = "cy" } }, from = sb.number,
                                  agent = sb.agent, wait = false, journal = j })
    assert.same({ 1, 2 }, { second.placed, second.skipped })
    assert.same({ "skipped", "skipped", "placed" }, { second.rows[1].status, second.rows[2].status,
                                                      second.rows[3].status })
    assert.equal(first.rows[2].callId, second.rows[1].callId)
    assert.same({ ann = 1, bob = 1, cy = 1 }, calls_per_row())
    os.remove(j)
    c:close()
  end)

  it("refuses a journal another dial holds, and a journal path with a NUL byte, before dialing anyone", function()
    local c, j = client(), tmpname()
    local held = assert(core.journal_lock(j))               -- as another dial process would hold it
    local report, err = c:dial{ contacts = contacts(2), from = sb.number, agent = sb.agent, wait = false, journal = j }
    assert.is_nil(report)
    assert.same({ "invalid", "journal" }, { err.kind, err.field })
    assert.matches("journal: " .. j .. ": in use by another dial", err.message, 1, true)
    assert.equal(0, sb:count("POST", "/v1/calls"))
    held:release()
    report = assert(c:dial{ contacts = contacts(2), from = sb.number, agent = sb.agent, wait = false, journal = j })
    assert.equal(2, report.placed)
    -- the dial let go of it when it finished
    assert(core.journal_lock(j)):release()
    report, err = c:dial{ contacts = contacts(1), from = sb.number, agent = sb.agent, wait = false,
                          journal = j .. "\0.other" }
    assert.is_nil(report)
    assert.matches("NUL", err.message, 1, true)
    assert.is_nil(io.open(j .. ".other"))
    assert.equal(2, sb:count("POST", "/v1/calls"))
    os.remove(j)
    c:close()
  end)

  it("reports a POST that timed out as uncertain and never dials that row again", function()
    -- without reconciliation (which would find the call: see the next spec) the journal decides
    local c = client{ timeout = 0.3, reconcile = false }
    local j = tmpname()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "slow=1000", count = 1 }
    local report = assert(c:dial{ contacts = contacts(1), from = sb.number, agent = sb.agent, journal = j,
                                  wait = false })
    assert.equal("uncertain", report.rows[1].status)
    assert.equal("timeout", report.rows[1].err.kind)
    report = assert(c:dial{ contacts = contacts(1), from = sb.number, agent = sb.agent, journal = j, wait = false })
    assert.equal("uncertain", report.rows[1].status)
    assert.equal(1, sb:count("POST", "/v1/calls"))
    -- and rightly so: the request reached the sandbox, which places the call once its second is up
    util.wait_for(function() return sb:state().calls > 0 end, 3)
    assert.same({ r1 = 1 }, calls_per_row())
    os.remove(j)
    c:close()
  end)

  it("records as placed a row whose timed-out POST reconciliation found", function()
    local c = client{ timeout = 0.3 }
    local j = tmpname()
    sb:arm{ method = "POST", path = "/v1/calls", fault = "slow=1000", count = 1 }
    local report = assert(c:dial{ contacts = contacts(1), from = sb.number, agent = sb.agent, journal = j,
                                  wait = false })
    assert.equal("placed", report.rows[1].status)
    assert.truthy(report.rows[1].callId)
    report = assert(c:dial{ contacts = contacts(1), from = sb.number, agent = sb.agent, journal = j, wait = false })
    assert.equal(1, report.skipped)
    assert.equal(1, sb:count("POST", "/v1/calls"))
    assert.same({ r1 = 1 }, calls_per_row())
    os.remove(j)
    c:close()
  end)

  it("checks every option before dialing anyone", function()
    local c, j = client(), tmpname()
    local function dial(extra)
      local opts = { contacts = contacts(2), from = sb.number, agent = sb.agent, journal = j }
      for k, v in pairs(extra) do opts[k] = v end
      local report, err = c:dial(opts)                    -- not a tail call: the error blames this line
      return report, err
    end
    -- misuse raises here, blaming the caller: calls:wait would raise only after calls were placed
    for _, bad in ipairs{ -5, 0 / 0, -math.huge } do
      local ok, msg = pcall(dial, { wait_timeout = bad })
      assert.is_false(ok)
      assert.matches("^spec/dial_spec.lua:%d+: sigmamind: dial: wait_timeout: expected a number of seconds >= 0, "
                     .. "got " .. tostring(bad):gsub("%p", "%%%0") .. "$", msg)
    end
    -- a bad value every call would send: one invalid error naming the option, not a row of failures
    for _, case in ipairs{
      { { from = "123" }, "from", "from: expected an E.164 phone number" },
      { { agent = "" }, "agent", "agent: expected a string of 1 to 64 characters" },
      { { variables = { x = function() end } }, "variables", "variables.x: expected a string, number or boolean" },
      { { variables = { "a" } }, "variables", "variables: expected an object" },
    } do
      local report, err = dial(case[1])
      assert.is_nil(report)
      assert.same({ "invalid", case[2], false }, { err.kind, err.field, err.sent })
      assert.matches(case[3], err.message, 1, true)
    end
    assert.equal(0, sb:count("POST", "/v1/calls"))
    assert.is_nil(io.open(j), "the journal was written")
    -- no timeout at all is a wait that never gives up
    local report = assert(dial{ wait_timeout = math.huge, contacts = contacts(1) })
    assert.equal("ended", report.rows[1].final)
    os.remove(j)
    c:close()
  end)

  it("lets go of the journal when on_progress raises, not at the lock's collection", function()
    local c, j = client(), tmpname()
    collectgarbage("stop")                                 -- a collection would hide a lock left held
    local ok, msg = pcall(c.dial, c, { contacts = contacts(2), from = sb.number, agent = sb.agent, journal = j,
                                       on_progress = function() error("progress bar broke", 0) end })
    local lock, lmsg = core.journal_lock(j)
    if lock then lock:release() end
    local again, aerr = c:dial{ contacts = contacts(2), from = sb.number, agent = sb.agent, journal = j,
                                wait = false }
    collectgarbage("restart")
    assert.is_false(ok)
    assert.equal("progress bar broke", msg)
    assert.truthy(lock, lmsg)
    assert.is_nil(aerr)
    assert.equal(2, again.placed)
    assert.equal(2, sb:count("POST", "/v1/calls"))
    os.remove(j)
    c:close()
  end)

  it("refuses a csv_file that names a directory with an invalid error (and the CLI says so, exit 2)", function()
    local c, dir = client(), tmpname()
    assert(os.execute("mkdir " .. dir))
    local report, err = c:dial{ csv_file = dir, from = sb.number, agent = sb.agent, journal = dir .. ".journal" }
    assert.is_nil(report)
    assert.same({ "invalid", "csv_file" }, { err.kind, err.field })
    assert.equal("csv_file: " .. dir .. ": Is a directory", err.message)
    local errfile = tmpname()
    local p = assert(io.popen(string.format("env SIGMAMIND_API_KEY=%s SIGMAMIND_BASE_URL=%s bin/sigmamind dial %s "
                                            .. "--from %s --agent %s 2>%s", sb.key, sb.url, dir, sb.number,
                                            sb.agent, errfile)))
    local out = p:read("a")
    local _, _, code = p:close()
    local stderr = read(errfile)
    os.remove(errfile)
    assert.equal(2, code)
    assert.equal("", out)
    assert.equal("sigmamind: POST /v1/calls: invalid: csv_file: " .. dir .. ": Is a directory\n", stderr)
    assert.is_nil(io.open(dir .. ".journal"))
    assert.equal(0, sb:count("POST", "/v1/calls"))
    os.remove(dir)
    c:close()
  end)

  it("never dials a row twice when the dialer is killed with SIGKILL again and again", function()
    local n, rounds = 60, 5
    local j, script, out = tmpname(), tmpname() .. ".lua", tmpname()
    write(script, string.format([[
      local sigmamind = require "sigmamind"
      local core = require "sigmamind.core"
      local c = sigmamind.new{ api_key = %q, base_url = %q }
      local rows = {}
      for i = 1, %d do rows[i] = { phoneNumber = string.format("+1212777%%04d", i), row_id = "r" .. i } end
      local report = assert(c:dial{ contacts = rows, from = %q, agent = %q, concurrency = 4, journal = %q,
                                    wait = false })
      local st = {}
      for i, r in ipairs(report.rows) do st[i] = r.status end
      io.write("REPORT ", core.json_encode{ statuses = st, placed = report.placed, skipped = report.skipped,
                                            uncertain = report.uncertain, failed = report.failed }, "\n")
    ]], sb.key, sb.url, n, sb.number, sb.agent, j))
    -- each POST waits 150 ms in the sandbox, so a kill lands with up to 4 POSTs in flight
    sb:arm{ method = "POST", path = "/v1/calls", fault = "slow=150", count = 100000 }
    local cmd = "lua5.4 " .. script .. " > " .. out .. " 2>&1"
    math.randomseed(os.time())
    local killed = 0
    for _ = 1, rounds do
      local delay = 0.2 + math.random() * 0.4
      local ok, _, code = os.execute(string.format("timeout -s KILL %.2f %s", delay, cmd))
      if ok then break end                                 -- it finished before the kill
      assert.equal(137, code)
      killed = killed + 1
    end
    assert(os.execute(cmd), "the last run failed")
    local report = assert(core.json_decode(assert(read(out):match("REPORT (%b{})"))))
    local per = calls_per_row()
    local uncertain = 0
    for i = 1, n do
      local status, got = report.statuses[i], per["r" .. i] or 0
      if status == "uncertain" then
        uncertain = uncertain + 1
        assert.is_true(got <= 1, "uncertain row " .. i .. " was called " .. got .. " times")
      else
        assert.is_true(status == "placed" or status == "skipped", "row " .. i .. ": " .. tostring(status))
        assert.equal(1, got, "row " .. i .. " was called " .. got .. " times")
      end
    end
    print(string.format("\n  dialer killed %d of %d runs; %d rows placed once, %d uncertain; %d POSTs",
                        killed, rounds, n - uncertain, uncertain, sb:count("POST", "/v1/calls")))
    assert.is_true(killed >= 3, "the kills landed too late to test anything")
    os.remove(j); os.remove(script); os.remove(out)
  end)
end)
