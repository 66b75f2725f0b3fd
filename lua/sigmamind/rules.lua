-- The checks a plan makes before sending: the campaign CSV rules and the fields' formats.
--
-- The CSV rules are HACKING.md's, worded exactly as the sandbox words them; a field's problem is
-- worded `field: what was expected`. build.lua's plans (and through them the dialer and
-- campaigns:progress) check with these.
local csv = require "sigmamind.csv"
local describe = require "sigmamind.describe"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local string_find, string_match, string_format, string_gmatch =
      string.find, string.match, string.format, string.gmatch
local table_concat, table_sort = table.concat, table.sort

local _M = {}

local trim = csv.trim
local E164 = "^%+[1-9]%d%d%d%d%d%d%d?%d?%d?%d?%d?%d?%d?%d?$"   -- ^\+[1-9][0-9]{6,14}$
local PHONE_COLUMNS = table_concat(csv.phone_columns, ", ")

local function is_e164(s)
  return type(s) == "string" and string_find(s, E164) ~= nil
end

----------------------------------------------------------------------------------------------------
-- The campaign CSV rules of HACKING.md, worded exactly as the sandbox words them.

local function var_supplied(vars, name)
  local v = vars[name]
  if v == nil then return false end
  if type(v) == "string" then return trim(v) ~= "" end
  return true
end

-- The rules for one data row `rec` (an array of cell strings) numbered r; st: the file's state.
local function check_row(st, r, rec)
  local problems, width, header, phone_col = st.problems, st.width, st.header, st.phone_col
  local np = #problems
  local before = np
  if #rec ~= width then
    problems[np + 1] = string_format("Row %d: expected %d columns, got %d", r, width, #rec)
    return
  end
  local cell = rec[phone_col]
  local phone = trim(cell)
  if phone == "" then
    np = np + 1; problems[np] = string_format("Row %d: missing phone number", r)
  elseif not string_find(phone, E164) then
    np = np + 1; problems[np] = string_format("Row %d: invalid phone number '%s'", r, cell)
  elseif st.used[phone] then
    np = np + 1; problems[np] = string_format("Row %d: duplicate phone number '%s'", r, phone)
  end
  for j = 1, width do
    if j ~= phone_col and trim(rec[j]) == "" and not var_supplied(st.vars, header[j]) then
      np = np + 1
      problems[np] = string_format("Row %d: missing required variable '%s'", r, header[j])
    end
  end
  if np == before then
    st.used[phone] = true
    local k = st.report.contacts + 1
    st.report.contacts = k
    if st.want_good then
      local row = {}
      for j = 1, width do row[header[j]] = rec[j] end
      st.report.good[k], st.report.numbers[k] = row, r
    end
  end
end

-- the file-level rules on the header; returns the state for check_row, or nil after setting
-- `report.fatal`
local function check_header(report, header, nrows, vars, want_good)
  local problems = report.problems
  local phone_col
  for j, name in ipairs(header) do
    if csv.phone_rank(name) then phone_col = j; break end
  end
  if not phone_col then
    problems[1] = "file: CSV has no phone number column (expected one of: " .. PHONE_COLUMNS .. ")"
    report.fatal = problems[1]
    return nil
  end
  report.rows = nrows
  if nrows < 1 then
    problems[1] = "file: CSV has no contacts"
    report.fatal = problems[1]
    return nil
  end
  -- a column's variable is its name trimmed, as the server names it (and as it words the problems)
  local names = {}
  for j, name in ipairs(header) do names[j] = trim(name) end
  return { report = report, problems = problems, header = names, width = #header, phone_col = phone_col,
           vars = vars, used = {}, want_good = want_good }
end

-- check_csv(text, vars [, want_good]) -> report: { contacts = n, rows = n, problems = {...},
-- fatal = msg|nil, good = {...}, numbers = {...} }; good (when asked for): the contacts as rows
-- keyed by header name, each with its row number in `numbers`.
local function check_csv(text, vars, want_good)
  local report = { contacts = 0, rows = 0, problems = {}, good = {}, numbers = {} }
  local records, err = csv.records(text)
  if not records then
    report.problems[1] = "file: " .. err
    report.fatal = report.problems[1]
    return report
  end
  local st = check_header(report, records[1] or {}, #records - 1, vars, want_good)
  if st then
    for r = 1, #records - 1 do check_row(st, r, records[r + 1]) end
  end
  return report
end

-- The contacts given as rows: written as CSV with the phone column named phoneNumber and checked by
-- the same rules in the same pass (the encoding round-trips exactly, so this equals checking the
-- text it produces).
local function contacts_csv(rows, vars, want_good)
  local keys, seen, best_of = {}, {}, {}
  local any_phone = #rows == 0
  local ranks = {}      -- key -> phone rank or false: the same few keys recur on every row
  for i, row in ipairs(rows) do
    local best, best_rank
    for k in pairs(row) do
      local r = ranks[k]
      if r == nil then r = csv.phone_rank(k) or false; ranks[k] = r end
      if r and (not best_rank or r < best_rank or (r == best_rank and k < best)) then best, best_rank = k, r end
    end
    for k in pairs(row) do
      if k ~= best and not seen[k] then seen[k] = true; keys[#keys + 1] = k end
    end
    if best then any_phone = true end
    best_of[i] = best or false
  end
  table_sort(keys)
  local columns = {}
  if any_phone then columns[1] = "phoneNumber" end
  for _, k in ipairs(keys) do
    if not (any_phone and k == "phoneNumber") then columns[#columns + 1] = k end
  end
  local ncols = #columns
  local report = { contacts = 0, rows = 0, problems = {}, good = {}, numbers = {} }
  if ncols == 0 then return "", check_csv("", vars, want_good) end
  local quote = csv.quote
  local lines, rec, qrec = {}, {}, {}
  for j = 1, ncols do qrec[j] = quote(columns[j]) end
  lines[1] = table_concat(qrec, ",", 1, ncols)
  local st = check_header(report, columns, #rows, vars, want_good)
  for i, row in ipairs(rows) do
    local best = best_of[i]
    for j = 1, ncols do
      local c = columns[j]
      local v
      if j == 1 and any_phone then
        if best then v = row[best] end
      elseif c ~= best then
        v = row[c]
      end
      local t = type(v)
      if t ~= "string" then v = (t == "number" or t == "boolean") and tostring(v) or "" end
      rec[j] = v
      qrec[j] = quote(v)
    end
    if ncols == 1 and rec[1] == "" then qrec[1] = '""' end
    lines[i + 1] = table_concat(qrec, ",", 1, ncols)
    if st then check_row(st, i, rec) end
  end
  lines[#lines + 1] = ""
  return table_concat(lines, "\r\n"), report
end

----------------------------------------------------------------------------------------------------
-- Field checks shared by both plans

local function check_phone(problems, field, v, required)
  if v == nil then
    if required then problems[#problems + 1] = field .. ": required" end
  elseif not is_e164(v) then
    problems[#problems + 1] = string_format('%s: expected an E.164 phone number like +14155552671, got "%s"',
                                            field, tostring(v))
  end
end

local function check_string(problems, field, v, required, max)
  if v == nil or v == "" then
    if required then problems[#problems + 1] = field .. ": required" end
  elseif type(v) ~= "string" then
    problems[#problems + 1] = field .. ": expected a string, got " .. type(v)
  elseif max and #v > max then
    problems[#problems + 1] = string_format("%s: expected at most %d characters, got %d", field, max, #v)
  end
end

-- a dynamic variable's value: injected into the agent's prompt, so a string, a finite number or
-- a boolean
local function var_value(v)
  local t = type(v)
  return t == "string" or t == "boolean" or t == "number" and v == v and v ~= 1 / 0 and v ~= -1 / 0
end

----------------------------------------------------------------------------------------------------
-- A campaign's fields: the schedule (date, time, zone) and the variables.

local function valid_date(s)
  local y, m, d = string_match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then return false end
  y, m, d = y + 0, m + 0, d + 0
  if m < 1 or m > 12 or d < 1 then return false end
  local leap = y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
  return d <= (m == 2 and (leap and 29 or 28) or (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31)
end

-- an IANA zone name, as the core checks it: parts split by '/', each a letter then letters,
-- digits or _+-
local function valid_tz(s)
  if #s == 0 or #s > 64 then return false end
  for part in string_gmatch(s .. "/", "([^/]*)/") do
    if not string_find(part, "^%a[%w_%+%-]*$") then return false end
  end
  return true
end

local function valid_time(s)
  local h, m = string_match(s, "^(%d%d):(%d%d)$")
  return h ~= nil and h + 0 < 24 and m + 0 < 60
end

-- dynamicVariables as the core checks it: a table whose values are strings, numbers or booleans
local function var_problems(p, vars)
  if vars == nil then return end
  if type(vars) ~= "table" then
    p[#p + 1] = "dynamicVariables: expected a table, got " .. type(vars)
    return
  end
  local bad = {}
  for k, v in pairs(vars) do if not var_value(v) then bad[#bad + 1] = tostring(k) end end
  table_sort(bad)
  for _, k in ipairs(bad) do
    p[#p + 1] = "dynamicVariables." .. k .. ": expected a string, number or boolean, got " .. type(vars[k])
  end
end

local function field_problems(f, vars)
  local p = {}
  check_string(p, "campaignName", f.campaignName, true, 128)
  check_string(p, "agentId", f.agentId, true, 64)
  check_phone(p, "sipPhoneNumber", f.sipPhoneNumber, true)
  local n = f.concurrentCalls
  if n ~= nil and (type(n) ~= "number" or n < 1 or n % 1 ~= 0) then
    p[#p + 1] = "concurrentCalls: expected a positive integer, got " .. describe.value(n)
  end
  var_problems(p, vars)
  if f.isScheduled ~= nil and type(f.isScheduled) ~= "boolean" then
    p[#p + 1] = "isScheduled: expected a boolean, got " .. type(f.isScheduled)
  end
  if f.isScheduled == true then
    local d, t, z = f.scheduledDate, f.scheduledTime, f.scheduledTimezone
    if d == nil then p[#p + 1] = "scheduledDate: required when isScheduled"
    elseif type(d) ~= "string" or not valid_date(d) then
      p[#p + 1] = string_format('scheduledDate: expected a date like 2025-09-01 (YYYY-MM-DD), got "%s"', tostring(d))
    end
    if t == nil then p[#p + 1] = "scheduledTime: required when isScheduled"
    elseif type(t) ~= "string" or not valid_time(t) then
      p[#p + 1] = string_format('scheduledTime: expected a time like 09:00 (HH:MM), got "%s"', tostring(t))
    end
    if z == nil then p[#p + 1] = "scheduledTimezone: required when isScheduled"
    elseif type(z) ~= "string" or not valid_tz(z) then
      p[#p + 1] = string_format('scheduledTimezone: expected an IANA time zone like America/New_York, got "%s"',
                                tostring(z))
    end
  end
  return p
end

-- the problems of a call plan's fields (the POST /v1/calls body), in order
local function call_problems(f)
  local p = {}
  check_phone(p, "fromPhoneNumber", f.fromPhoneNumber, true)
  check_phone(p, "toPhoneNumber", f.toPhoneNumber, true)
  check_string(p, "agentId", f.agentId, false, 64)
  var_problems(p, f.dynamicVariables)
  return p
end

_M.var_value, _M.check_csv, _M.contacts_csv = var_value, check_csv, contacts_csv
_M.campaign_problems, _M.call_problems = field_problems, call_problems

return _M
