-- The dialer's journal against a full disk and a damaged file: a record is whole or absent, never
-- glued to a fragment, and a journal that cannot be read stops the dial, never half believed.
local sandbox = require "support.sandbox"
local util = require "support.util"
local core = require "sigmamind.core"

local tmpname, write, read, sh = util.tmpname, util.write_file, util.read_file, os.execute

local PAGE = 4096

-- whole records for numbers no spec dials, exactly `size` bytes: a journal ending `PAGE - size`
-- bytes short of its page, so that a longer append needs a page the full disk has not got
local function prefill(size)
  local lines, len, i = {}, 0, 0
  while size - len > 60 do
    i = i + 1
    lines[i] = string.format("I %d +1313555%04d $\n", i, i)
    len = len + #lines[i]
  end
  local head = string.format("C 0 +13135550000 call_")
  lines[i + 1] = head .. string.rep("x", size - len - #head - 3) .. " $\n"
  local text = table.concat(lines)
  assert(#text == size)
  return text
end

describe("the dialer's journal", function()
  local sb, disk

  local function client(opts) return util.client(sb, opts) end

  setup(function()
    sb = sandbox.start{ speed = 1000 }
    -- a real ENOSPC: an 8 KB tmpfs (two pages). Mounting needs root, as CI runs; elsewhere these
    -- specs fail here, saying so, rather than passing without a full disk.
    disk = assert(io.popen("mktemp -d")):read("l")
    local ok = sh("mount -t tmpfs -o size=8k sigmamind-spec " .. disk)
    if not ok then
      os.remove(disk)
      disk = nil
      error("these specs need root: they mount an 8 KB tmpfs (mount -t tmpfs -o size=8k) to fill a disk", 0)
    end
  end)
  teardown(function()
    if sb then sb:stop() end
    if disk then
      if not sh("umount " .. disk) then sh("umount -l " .. disk) end
      os.remove(disk)
    end
  end)
  before_each(function()
    sb:reset()
    if disk then sh("rm -f " .. disk .. "/*") end
  end)

  it("leaves the journal as it was when a full disk cuts an append short", function()
    local j, filler = disk .. "/j", disk .. "/filler"
    local before = prefill(PAGE - 10)
    write(j, before)
    write(filler, string.rep("f", PAGE))                  -- the second page: the disk is full
    local ok, msg, errno = core.journal_append(j, "I 1 +12135557001 $\n")
    assert.is_nil(ok)
    assert.matches(j .. ": No space left on device", msg, 1, true)
    assert.equal(28, errno)                                -- ENOSPC
    assert.equal(before, read(j))                          -- not "I 1 +12135", the ten bytes that fitted
    os.remove(filler)
    assert.is_true(core.journal_append(j, "I 2 +12135557002 $\n"))
    assert.equal(before .. "I 2 +12135557002 $\n", read(j))
  end)

  it("starts a record on a fresh line when the journal ends in a fragment it could not remove", function()
    local j = tmpname()
    write(j, "I 1 +12135557001 $\nI 2 +12135")
    assert.is_true(core.journal_append(j, "I 3 +12135557003 $\n"))
    assert.equal("I 1 +12135557001 $\nI 2 +12135\nI 3 +12135557003 $\n", read(j))
    os.remove(j)
  end)

  it("never dials a row twice when a full disk tore an intent and the dialer was then killed", function()
    local j, filler = disk .. "/j", disk .. "/filler"
    local before = prefill(PAGE - 10)
    write(j, before)
    write(filler, string.rep("f", PAGE))
    local script = tmpname() .. ".lua"
    write(script, string.format([[
      local sigmamind = require "sigmamind"
      local c = sigmamind.new{ api_key = %q, base_url = %q }
      local rows = { { phoneNumber = "+12135557001", row_id = "r1" }, { phoneNumber = "+12135557002", row_id = "r2" } }
      c:dial{ contacts = rows, from = %q, agent = %q, concurrency = 1, journal = %q, wait = false,
              on_progress = function(n) if n.failed > 0 then os.remove(%q) end end }
    ]], sb.key, sb.url, sb.number, sb.agent, j, filler))
    -- row 1's intent meets the full disk (row 1 is not dialed), space returns, row 2's POST takes
    -- 6 s: the dialer is killed in it, once the sandbox has it
    sb:arm{ method = "POST", path = "/v1/calls", fault = "slow=6000", count = 1 }
    local code = util.kill_when(script, function() return sb:count("POST", "/v1/calls") >= 1 end)
    os.remove(script)
    assert.equal(137, code)                                -- killed, not finished
    assert.is_nil(io.open(filler), "row 1's append did not fail")
    assert.equal(1, sb:count("POST", "/v1/calls"))

    local c = client()
    local report = assert(c:dial{ contacts = { { phoneNumber = "+12135557001", row_id = "r1" },
                                               { phoneNumber = "+12135557002", row_id = "r2" } },
                                  from = sb.number, agent = sb.agent, concurrency = 1, journal = j, wait = false })
    -- the killed run's POST still places its call once its 6 s are up: wait for every POST's call
    util.wait_for(function() return sb:state().calls >= sb:count("POST", "/v1/calls") end, 20)
    assert.same({ r1 = 1, r2 = 1 }, sb:calls_per("row_id"))
    assert.equal("placed", report.rows[1].status)         -- its intent never reached the journal: never dialed
    -- its POST was in flight at the kill, its call not made yet when the rerun looked for it
    assert.equal("uncertain", report.rows[2].status)
    -- every record whole and alone on its line
    for line in read(j):sub(#before + 1):gmatch("[^\n]*\n?") do
      if line ~= "" then assert.matches("^[ICFS] %d+ %+%d+[^+\n]* %$\n$", line) end
    end
    c:close()
  end)

  it("stops the dial, naming the line, at a record it cannot read that is not a torn last line", function()
    local c, j = client(), tmpname()
    -- an intent glued onto the fragment of an earlier one: no row may be filed under "+12135"
    write(j, "I 3 +12135557003 $\nI 1 +12135I 2 +12135557002 $\nC 3 +12135557003 call_a $\n")
    local rows = { { phoneNumber = "+12135557001" }, { phoneNumber = "+12135557002" } }
    local report, err = c:dial{ contacts = rows, from = sb.number, agent = sb.agent, journal = j, wait = false }
    assert.is_nil(report)
    assert.same({ "invalid", "journal", false }, { err.kind, err.field, err.sent })
    assert.matches("journal: " .. j .. ": line 2 is not a journal record: 'I 1 +12135I 2 +12135557002 $'",
                   err.message, 1, true)
    assert.equal(0, sb:count("POST", "/v1/calls"))
    assert(core.journal_lock(j)):release()                 -- and it let go of the journal
    -- a record with a field missing is refused as well, not filed as something it does not say
    write(j, "I 1 +12135557001 $\nC 1 +12135557001  $\n")
    report, err = c:dial{ contacts = rows, from = sb.number, agent = sb.agent, journal = j, wait = false }
    assert.is_nil(report)
    assert.matches("line 2 is not a journal record", err.message, 1, true)
    assert.equal(0, sb:count("POST", "/v1/calls"))
    os.remove(j)
    c:close()
  end)

  it("cuts a torn last record away before appending, and keeps one that lost only its newline", function()
    local c, j = client(), tmpname()
    local rows = { { phoneNumber = "+12135557001" }, { phoneNumber = "+12135557002" } }
    write(j, "I 1 +12135557001 $\nC 1 +12135557001 call_a $")              -- only the newline lost
    local report = assert(c:dial{ contacts = rows, from = sb.number, agent = sb.agent, journal = j, wait = false })
    assert.same({ "skipped", "call_a", "placed" },
                { report.rows[1].status, report.rows[1].callId, report.rows[2].status })
    assert.matches("^I 1 %+12135557001 %$\nC 1 %+12135557001 call_a %$\nI 2 ", read(j))
    -- a torn record: cut away before anything is appended
    write(j, "I 1 +12135557001 $\nC 1 +12135557001 call_a $\nI 2 +12135557002 $\nC 2 +1213555")
    report = assert(c:dial{ contacts = rows, from = sb.number, agent = sb.agent, journal = j, wait = false })
    assert.same({ "skipped", "uncertain" }, { report.rows[1].status, report.rows[2].status })
    assert.equal("I 1 +12135557001 $\nC 1 +12135557001 call_a $\nI 2 +12135557002 $\n", read(j))
    -- and the journal reads the same the next time
    report = assert(c:dial{ contacts = rows, from = sb.number, agent = sb.agent, journal = j, wait = false })
    assert.same({ "skipped", "uncertain" }, { report.rows[1].status, report.rows[2].status })
    assert.equal(1, sb:count("POST", "/v1/calls"))
    os.remove(j)
    c:close()
  end)
end)
