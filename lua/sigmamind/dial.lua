-- The client-side bulk dialer: one call per valid row, never two, even across a crash (a journal
-- of intents).

--- The client-side bulk dialer behind @{sigmamind.Client:dial|client:dial}: one call per valid row,
-- never two, even across a crash.
--
-- Every row is checked with the campaign CSV rules (@{sigmamind.build}); invalid rows are reported,
-- never dialed. The valid rows are dialed `concurrency` at a time as tasks of the client, each
-- followed to its final status when `wait`. With a `journal`, a line recording the intent reaches
-- the disk (fsync) before each call, and the callId or the failure follows; run the same dial again
-- with the same journal after a crash, even `kill -9`, and rows already placed are skipped. A row
-- whose request may have reached the server without an answer (in this run, or in one that left its
-- intent without an outcome) has its call looked up as `calls:create` reconciles: when exactly one
-- call matches, the row is `placed`, marked `reconciled`, and its callId journaled; otherwise it is
-- `uncertain`, `err` saying why, and not redialed unless `redial_uncertain` (which redials only the
-- rows the lookup left uncertain).
-- @module sigmamind.dial
-- @usage
-- local report = assert(client:dial{ csv_file = "contacts.csv", from = "+14157774444",
--                                    agent = "agent_abc123", journal = "contacts.journal" })
-- print(report.placed, report.skipped, report.invalid, report.failed, report.uncertain)
local core  = require "sigmamind.core"
local build = require "sigmamind.build"
local csv   = require "sigmamind.csv"
local task  = require "sigmamind.task"
local reconcile = require "sigmamind.reconcile"

local error, type, pairs, ipairs, tostring, tonumber = error, type, pairs, ipairs, tostring, tonumber
local io_open, string_format, string_match, string_gsub = io.open, string.format, string.match, string.gsub
local math_floor, table_sort, table_concat = math.floor, table.sort, table.concat

local _M = {}

local OPTIONS = {
  contacts = "table", csv_file = "string", from = "string", agent = "string", variables = "table",
  concurrency = "number", journal = "string", wait = "boolean", wait_timeout = "number", on_progress = "function",
  redial_uncertain = "boolean",
}

----------------------------------------------------------------------------------------------------
-- The journal: append-only, one record a line, each fsync'd before the next step:
--   I <row> <phone> <time> $               intent: the POST for this row is about to be sent;
--                                          time: this host's wall clock (s) before the write,
--                                          where a later run's lookup of its call starts (an
--                                          intent without one still reads, but is not looked up)
--   C <row> <phone> <callId> $             the call was placed
--   F <row> <phone> <kind> <sent> <status> $   the POST failed (sent 0: it certainly never arrived)
--   S <row> <phone> <status> $             the call reached a final status
-- A row is known by its phone number (a valid list has each number once): a number placed through
-- a journal is never dialed again through it, so a fixed list whose rows moved rings nobody twice.
-- The row number is for people.
-- An append is whole or cut back (src/journal.c): only a crash leaves part of a record, and only as
-- the last line, which is cut away before the next append (its intent is on the line before).
-- Any other line that is not a record stops the dial: skipping it could forget an intent and ring
-- that person again.

local RECORD = {
  I = "^I (%d+) (%+%d+) (%d+%.?%d*) %$$",
  C = "^C (%d+) (%+%d+) (%S+) %$$",
  F = "^F (%d+) (%+%d+) (%S+) ([01]) (%d+) %$$",
  S = "^S (%d+) (%+%d+) (%S+) %$$",
}
local OLD_INTENT = "^I (%d+) (%+%d+) %$$"   -- no time: its call cannot be told from a look-alike by its time

-- file one record line into state; false when the line is not a record
local function read_record(state, line)
  local kind = line:sub(1, 1)
  local pattern = RECORD[kind]
  if not pattern then return false end
  local n, phone, a, b, c = string_match(line, pattern)
  if not n and kind == "I" then n, phone = string_match(line, OLD_INTENT) end
  if not n then return false end
  local st = state[phone] or {}
  state[phone] = st
  st.row = tonumber(n)
  if kind == "I" then
    st.phase, st.t0 = "intent", tonumber(a)             -- the latest intent's window is the one to look in
  elseif kind == "C" then
    st.phase, st.callId = "placed", a
  elseif kind == "F" then
    st.phase, st.fail = "failed", { kind = a, sent = b == "1", status = tonumber(c) }
  else
    st.final = a
  end
  return true
end

-- state (by phone number), repair | nil, message. repair is what the file's end needs before an
-- append: nil (it ends a line), "\n" (the last record lost only its newline) or the size to cut to.
local function read_journal(path)
  local state = {}
  local f = io_open(path, "rb")
  if not f then return state end
  local text, rmsg = f:read("a")
  f:close()
  if not text then return nil, path .. ": " .. tostring(rmsg) end
  local pos, n = 1, 0
  while pos <= #text do
    n = n + 1
    local nl = text:find("\n", pos, true)
    local line = text:sub(pos, (nl or #text + 1) - 1)
    if not nl then                                    -- the last line, torn by a crash in its write
      return state, read_record(state, line) and "\n" or pos - 1
    end
    if line ~= "" and not read_record(state, line) then
      if #line > 80 then line = line:sub(1, 77) .. "..." end
      return nil, string_format("%s: line %d is not a journal record: '%s' (the journal is damaged: see to that "
                                .. "line by hand; nobody was dialed)", path, n, (string_gsub(line, "%c", "?")))
    end
    pos = nl + 1
  end
  return state
end

-- what a failure means for this row: "redial" (nothing was created), "failed" (the server refused
-- it) or "uncertain" (the call may exist)
local function failure_class(sent, status)
  if not sent or status == 429 then return "redial" end
  if status and status >= 400 and status < 500 then return "failed" end
  return "uncertain"
end

local run   -- the dial under the journal's lock (below dial)

----------------------------------------------------------------------------------------------------

local function check_opts(opts)
  if type(opts) ~= "table" then error("sigmamind: dial: expected a table of options, got " .. type(opts), 3) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then error("sigmamind: dial: unknown option '" .. tostring(k) .. "'", 3) end
    if type(v) ~= want then
      error(string_format("sigmamind: dial: %s: expected a %s, got %s", k, want, type(v)), 3)
    end
  end
  if (opts.contacts == nil) == (opts.csv_file == nil) then
    error("sigmamind: dial: pass exactly one of contacts (rows) or csv_file (a path)", 3)
  end
  if opts.from == nil then error("sigmamind: dial: from: required (the caller's phone number)", 3) end
  if opts.agent == nil then error("sigmamind: dial: agent: required (an agent id)", 3) end
  local conc = opts.concurrency or 8
  if conc < 1 or conc % 1 ~= 0 then error("sigmamind: dial: concurrency: expected an integer >= 1", 3) end
  -- here, not in calls:wait, which would raise it only after this dial had placed its calls
  local wt = opts.wait_timeout
  if wt ~= nil and (wt ~= wt or wt < 0) then           -- NaN passes "< 0"
    error("sigmamind: dial: wait_timeout: expected a number of seconds >= 0, got " .. tostring(wt), 3)
  end
end

local function invalid(message, problems, field)
  return nil, core.error{ kind = "invalid", field = field or "contacts", message = message, problems = problems,
                          method = "POST", path = "/v1/calls", attempts = 0, sent = false, retryable = false }
end

local function journal_error(message)
  return nil, core.error{ kind = "invalid", field = "journal", message = "journal: " .. tostring(message),
                          sent = false, retryable = false, attempts = 0 }
end

-- the body fields every call shares, with the options they come from
local SHARED = { fromPhoneNumber = "from", agentId = "agent", dynamicVariables = "variables" }

-- from, agent and variables checked once, as the calls will send them, before anyone is dialed (a
-- bad one would fail every row alike); true | nil, err naming the option
local function check_shared(opts, vars)
  local ok, err = core.validate("calls.create", { fromPhoneNumber = opts.from, toPhoneNumber = "+12025550100",
                                                  agentId = opts.agent, dynamicVariables = vars })
  if ok then return true end
  local name = string_match(tostring(err.field), "^%a+")
  local option = SHARED[name]
  if not option then return nil, err end
  return invalid((string_gsub(err.message, "^" .. name, option, 1)), nil, option)
end

--- The options of @{dial}. Exactly one of `contacts` and `csv_file` is required, and `from` and
-- `agent`; an unknown key or a value of the wrong type raises.
-- @table options
-- @field contacts rows: an array of tables keyed by column name (as
-- @{sigmamind.build.Campaign:contacts})
-- @field csv_file the path of a CSV file of contacts
-- @field from the caller's number (`fromPhoneNumber`)
-- @field agent the agent id (`agentId`)
-- @field variables dynamic variables for every row; a row's own non-empty cells win
-- @field concurrency calls in flight at once (default 8)
-- @field journal the path of the journal file; without one, nothing is remembered across runs
-- @field wait follow each call to its final status (default `true`)
-- @field wait_timeout seconds to wait for each call (default 600)
-- @field on_progress `function(counts)` called as rows advance: `total`, `placed`, `skipped`,
-- `invalid`, `failed`, `uncertain`, `pending`, `final`
-- @field redial_uncertain dial again the rows that may have been placed in an earlier run and whose
-- call the lookup did not find (default `false`)

--- What @{dial} returns.
-- @table report
-- @field rows `rows[n]` for data row n: `row`, `phone`, `status` (`placed`, `skipped`, `invalid`,
-- `failed`, `uncertain`), `callId`, `err`, `final` (the final call status), `problems` (for invalid
-- rows), `variables`, `wait_err` (when following the call failed), `reconciled` (`true` when a
-- lookup found the call after its create went unanswered; for an `uncertain` row, `err.reconcile`
-- says why none was)
-- @field total the number of data rows
-- @field placed calls placed by this run, or found by its lookups
-- @field skipped rows placed by an earlier run (from the journal)
-- @field invalid rows that break the CSV rules
-- @field failed rows whose call was refused, or could not be journaled
-- @field uncertain rows whose call may exist (the request may have reached the server without an
-- answer) and whose lookup found no call that must be theirs
-- @field problems every problem found in the list, as strings
-- (`"Row 3: invalid phone number '+1234'"`)
-- @field statuses how many calls reached each final status
-- @field journal the journal's path, if any

--- Dial every valid row once.
-- @tparam sigmamind.Client client
-- @tparam options opts see @{options}
-- @treturn[1] report see @{report}
-- @return[2] nil, @{sigmamind.err|err} of kind `invalid`, before anyone is dialed, when the list
-- cannot be used at all (unreadable, malformed, no phone column, no data rows), `from`, `agent` or
-- `variables` would fail every call (`err.field` names the option), or the journal is in use,
-- cannot be written or has a line that is not a record (a damaged journal is not half believed: a
-- lost intent could ring someone twice)
-- @raise on misuse (a bad option), or when `on_progress` raises
function _M.dial(client, opts)
  check_opts(opts)
  local vars = opts.variables or {}
  do
    local ok, err = check_shared(opts, vars)
    if not ok then return nil, err end
  end
  local text
  if opts.csv_file then
    local f, msg = io_open(opts.csv_file, "rb")
    if not f then return invalid("csv_file: " .. tostring(msg), nil, "csv_file") end
    text, msg = f:read("a")
    f:close()
    -- a directory opens (on Linux) and fails only here
    if not text then return invalid("csv_file: " .. opts.csv_file .. ": " .. tostring(msg), nil, "csv_file") end
  else
    text = csv.encode(opts.contacts)
  end
  local check = build.check_csv(text, vars)
  if check.fatal then return invalid(check.fatal, check.problems) end

  local journal, lock = opts.journal, nil
  if journal then
    -- one dial per journal at a time: both would read it before either wrote, and dial every row
    local lmsg
    lock, lmsg = core.journal_lock(journal)
    if not lock then return journal_error(lmsg) end
  end
  -- the lock is let go however this ends (an on_progress that raises included), not when collected
  local done, report, rerr = pcall(run, client, opts, vars, text, check, journal)
  if lock then lock:release() end
  if not done then error(report, 0) end
  return report, rerr
end

-- the dial itself, under the journal's lock: read the journal, then dial what it leaves to dial
function run(client, opts, vars, text, check, journal)
  local records, header = csv.decode(text)
  local phone_col
  for _, name in ipairs(header) do if csv.phone_rank(name) then phone_col = name; break end end

  local report = { rows = {}, total = check.rows, placed = 0, skipped = 0, invalid = 0, failed = 0,
                   uncertain = 0, problems = check.problems, statuses = {}, journal = journal }
  local rows = report.rows
  for _, p in ipairs(check.problems) do
    local n = tonumber(string_match(p, "^Row (%d+):"))
    if n then
      local r = rows[n] or { row = n, status = "invalid", problems = {} }
      rows[n] = r
      r.problems[#r.problems + 1] = p
    end
  end
  for n = 1, check.rows do
    local r = rows[n]
    if r then
      r.phone = records[n] and records[n][phone_col]
      report.invalid = report.invalid + 1
    end
  end

  local state = {}
  if journal then
    local repair
    state, repair = read_journal(journal)
    if not state then return journal_error(repair) end
    local ok, msg = true, nil
    if repair == "\n" then
      ok, msg = core.journal_append(journal, "\n")
    elseif repair then
      ok, msg = core.journal_truncate(journal, repair)
    end
    if not ok then return journal_error(msg) end
  end
  local function append(line)
    if not journal then return true end
    return core.journal_append(journal, line)
  end

  local plan = {}                 -- { r =, action = "dial" | "wait" | "lookup" }, in row order
  for k = 1, check.contacts do
    local n, row = check.numbers[k], check.good[k]
    local phone = csv.trim(row[phone_col])
    local dv = {}
    for name, v in pairs(vars) do dv[name] = v end
    for name, v in pairs(row) do
      if name ~= phone_col and csv.trim(v) ~= "" then dv[name] = csv.trim(v) end
    end
    local r = { row = n, phone = phone, variables = dv }
    rows[n] = r
    local st = state[phone]
    local action = "dial"
    if st and st.phase == "placed" then
      r.status, r.callId, r.final = "skipped", st.callId, st.final
      report.skipped = report.skipped + 1
      action = (opts.wait ~= false and not st.final) and "wait" or nil
    elseif st and st.phase == "intent" then
      r.status, r.t0, action = "uncertain", st.t0, "lookup"   -- its outcome never reached the journal
      report.uncertain = report.uncertain + 1
    elseif st and st.phase == "failed" then
      local class = failure_class(st.fail.sent, st.fail.status)
      if class ~= "redial" then
        r.status = class
        r.err = core.error{ kind = st.fail.kind, status = st.fail.status ~= 0 and st.fail.status or nil,
                            sent = st.fail.sent, method = "POST", path = "/v1/calls",
                            message = "failed in an earlier run (from the journal)" }
        report[class] = report[class] + 1
        r.t0, action = st.t0, class == "uncertain" and "lookup" or nil
      end
    end
    if action then plan[#plan + 1] = { r = r, action = action } end
  end

  local on_progress = opts.on_progress
  local function progress()
    if not on_progress then return end
    local counts = { total = report.total, placed = report.placed, skipped = report.skipped,
                     invalid = report.invalid, failed = report.failed, uncertain = report.uncertain,
                     pending = 0, final = 0 }
    for _, r in pairs(rows) do
      if r.status == nil then counts.pending = counts.pending + 1 end
      if r.final then counts.final = counts.final + 1 end
    end
    on_progress(counts)
  end

  local wait = opts.wait ~= false
  local wait_opts = { timeout = opts.wait_timeout or 600 }
  local conc = opts.concurrency or 8
  local key_of = function(r) return r.row .. " " .. r.phone end
  -- a record's field is one word, never empty: a line the reader cannot split stops the next dial
  local function word(v)
    local w = string_gsub(tostring(v), "%s", "_")
    return w ~= "" and w or "-"
  end

  local function follow(r)
    local call, err = client.calls:wait(r.callId, wait_opts)
    if call then
      r.final = call.status
      append(string_format("S %s %s $\n", key_of(r), word(call.status)))
    else
      r.wait_err = err
    end
    progress()
  end

  -- task.map; a result that is not a typed error is a bug or on_progress raising: not ours to hide
  local function each(list, fn)
    local results = task.map(client, list, fn, { concurrency = conc })
    for i = 1, #results do
      local v, err = results[i][1], results[i][2]
      if v == nil and not core.is_error(err) then error(err, 0) end
    end
  end

  -- Looks for the calls the uncertain rows in `list` may have made, as calls:create does
  -- (reconcile.find: same caller, agent and variables, created since the row's intent, on the
  -- server's clock), taking none this dial recorded for another row. Found, a row is placed, its
  -- callId journaled (and followed, with `follow_now`); the rest stay uncertain, `err` saying why.
  local function settle(list, follow_now)
    if #list == 0 then return end
    local exclude = {}
    for _, st in pairs(state) do if st.callId then exclude[st.callId] = true end end
    for _, r in pairs(rows) do if r.callId then exclude[r.callId] = true end end
    -- A Call carries no destination: of two uncertain rows with the same variables (caller and
    -- agent are the dial's), the one call found may be either's. Grouped by variables as JSON.
    local alike = {}
    local function signature(r)
      local keys, parts = {}, {}
      for name in pairs(r.variables) do keys[#keys + 1] = name end
      table_sort(keys)
      for i, name in ipairs(keys) do
        local v = reconcile.var_text(r.variables[name])
        parts[i] = #name .. ":" .. name .. #v .. ":" .. v
      end
      return table_concat(parts)
    end
    for _, r in pairs(rows) do
      if r.status == "uncertain" then
        local sig = signature(r)
        r.sig = sig
        alike[sig] = alike[sig] or {}
        alike[sig][#alike[sig] + 1] = r
      end
    end
    local function twin(r)
      for _, o in ipairs(alike[r.sig]) do if o ~= r then return o end end
    end
    local off = client._reconcile == false
    local function sleep(sec) client:_sleep(sec) end
    each(list, function(r)
      local found, why
      if off then
        why = "not looked up: reconciliation is off (reconcile = false)"
      elseif not r.t0 then
        why = "not looked up: the journal gives no time for its intent (an older version wrote it), and without " ..
              "one its call cannot be told from a look-alike made earlier"
      else
        local body = { fromPhoneNumber = opts.from, agentId = opts.agent, dynamicVariables = r.variables }
        found, why = reconcile.find(client.calls, body, r.t0, core.time, sleep, nil,
                                    { exclude = exclude, waits = { 0 } })
        local other = found and twin(r)
        if other then
          why = string_format("call %s matches, but row %d is uncertain too and looks alike (the same caller, " ..
                              "agent and variables): it may be that row's; give each row a distinguishing " ..
                              "variable", tostring(found.callId), other.row)
          found = nil
        elseif found and (type(found.callId) ~= "string" or exclude[found.callId]) then
          why, found = "call " .. tostring(found.callId) .. " matches, but has no id or another row took it", nil
        end
      end
      if found then
        exclude[found.callId] = true
        r.status, r.callId, r.reconciled, r.err = "placed", found.callId, true, nil
        report.uncertain, report.placed = report.uncertain - 1, report.placed + 1
        append(string_format("C %s %s $\n", key_of(r), word(found.callId)))
        progress()
        if follow_now and wait then follow(r) end
      else
        local e, cause = {}, r.err
        if cause then
          for k, v in pairs(cause) do e[k] = v end
        else
          e = { kind = "interrupted", sent = true, retryable = false, method = "POST", path = "/v1/calls",
                message = "an earlier run stopped after recording its intent, before its outcome: the call " ..
                          "may have been placed" }
        end
        e.message, e.reconcile = tostring(e.message) .. "; reconciling: " .. tostring(why), why
        r.err = core.error(e)
        progress()
      end
      return r
    end)
    for _, r in pairs(rows) do r.sig = nil end
  end

  local fresh = {}                -- rows this run left uncertain
  local function one(item)
    local r = item.r
    if item.action == "dial" then
      -- floored: the window must start no later than the intent
      local t0 = math_floor(core.time() * 1000) / 1000
      local ok, msg = append(string_format("I %s %.3f $\n", key_of(r), t0))
      if not ok then                                   -- no record of intent, no call
        r.status, r.err = "failed", core.error{ kind = "journal", message = msg, sent = false, retryable = true,
                                                method = "POST", path = "/v1/calls", attempts = 0 }
        report.failed = report.failed + 1
        progress()
        return r
      end
      local call, err = client.calls:create{ fromPhoneNumber = opts.from, toPhoneNumber = r.phone,
                                             agentId = opts.agent, dynamicVariables = r.variables }
      if call and type(call.callId) == "string" and call.callId ~= "" then
        r.status, r.callId, r.reconciled = "placed", call.callId, call.reconciled == true or nil
        report.placed = report.placed + 1
        append(string_format("C %s %s $\n", key_of(r), word(call.callId)))
      else
        err = err or core.error{ kind = "decode", message = "the answer carries no callId", sent = true,
                                 method = "POST", path = "/v1/calls" }
        local class = failure_class(err.sent, err.status)
        append(string_format("F %s %s %d %d $\n", key_of(r), word(err.kind),
                             err.sent and 1 or 0, err.status or 0))
        r.err = err
        r.status = class == "uncertain" and "uncertain" or "failed"
        report[r.status] = report[r.status] + 1
        if r.status == "uncertain" then r.t0 = t0; fresh[#fresh + 1] = r end
      end
      progress()
    end
    if wait and r.callId then follow(r) end
    return r
  end

  progress()
  -- rows an earlier run left uncertain are looked up first: only those still so are redialed
  local lookup = {}
  for _, item in ipairs(plan) do if item.action == "lookup" then lookup[#lookup + 1] = item.r end end
  settle(lookup, false)
  local to_dial = {}
  for _, item in ipairs(plan) do
    local r = item.r
    if item.action == "lookup" then
      if r.status == "placed" then
        item.action = wait and "wait" or nil
      elseif opts.redial_uncertain then
        r.status, r.err, item.action = nil, nil, "dial"
        report.uncertain = report.uncertain - 1
      else
        item.action = nil
      end
    end
    if item.action then to_dial[#to_dial + 1] = item end
  end
  if #lookup > 0 and opts.redial_uncertain then progress() end
  each(to_dial, one)
  -- a create's own lookup is refused while a look-alike's is unanswered: all are answered now
  settle(fresh, true)
  for _, r in pairs(rows) do
    if r.final then report.statuses[r.final] = (report.statuses[r.final] or 0) + 1 end
  end
  return report
end

_M._read_journal = read_journal

return _M
