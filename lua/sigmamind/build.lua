-- Builders for request bodies: campaign plans (contacts, CSV, schedule) and call plans.

--- Builders: campaign plans (contacts, CSV, schedule) and call plans, checked before anything is
-- sent. A plan is passed where the parameters go (@{sigmamind.campaigns:create},
-- @{sigmamind.calls:create}), which builds it first. Builder methods raise on misuse (a wrong
-- argument type); everything else is checked by `:build()`, with problems worded as the server
-- words them.
--
-- A contact list (CSV text, a file, or rows) needs one phone column: `phoneNumber`, `phone_number`,
-- `phone`, `toPhoneNumber` or `to` (case and surrounding spaces ignored); the other columns become
-- each contact's dynamic variables. The rules for bad rows are those of HACKING.md, the same in the
-- client and the sandbox. Also `sigmamind.campaign` and `sigmamind.call`.
-- @module sigmamind.build
-- @usage
-- local plan = sigmamind.campaign "September Follow-ups"
--   :agent "agent_abc123" :caller "+14157774444"
--   :csv_file "contacts.csv"
--   :concurrency(5) :variables{ plan_type = "Premium" }
--   :schedule{ date = "2025-09-01", time = "09:00", timezone = "America/New_York" }
-- local params, problems, fatal = plan:build()
-- local campaign, err = client.campaigns:create(plan)
local rules = require "sigmamind.rules"

local error, type, pairs, ipairs, next, tostring, setmetatable, getmetatable, pcall, require =
      error, type, pairs, ipairs, next, tostring, setmetatable, getmetatable, pcall, require
local string_sub, string_byte, string_match, string_format =
      string.sub, string.byte, string.match, string.format
local table_concat = table.concat
local math_floor = math.floor
local io_open = io.open

local _M = {}

local var_value, check_csv, contacts_csv = rules.var_value, rules.check_csv, rules.contacts_csv

local function copy(t)
  local c = {}
  if t then for k, v in pairs(t) do c[k] = v end end
  return c
end

----------------------------------------------------------------------------------------------------
-- Base64 (RFC 4648, with padding). The C core's OpenSSL encoder when it loads, otherwise pure Lua;
-- the core is looked up at first use so that this module loads without it.

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_PAIR   -- [0, 4095] -> the two characters of a 12-bit group
local function b64_pairs()
  local t = {}
  for i = 0, 4095 do
    local hi, lo = math_floor(i / 64), i % 64
    t[i] = string_sub(B64, hi + 1, hi + 1) .. string_sub(B64, lo + 1, lo + 1)
  end
  return t
end

-- Arithmetic only (no bit operators), so it runs on Lua 5.1/LuaJIT as on 5.4.
function _M._base64_lua(s)
  if type(s) ~= "string" then error("base64: expected a string, got " .. type(s), 2) end
  B64_PAIR = B64_PAIR or b64_pairs()
  local out, n = {}, 0
  local len = #s
  local full = len - len % 3
  local chunk, cn = {}, 0
  for i = 1, full, 3 do
    local a, b, c = string_byte(s, i, i + 2)
    local v = a * 65536 + b * 256 + c
    local hi = math_floor(v / 4096)
    cn = cn + 1; chunk[cn] = B64_PAIR[hi]
    cn = cn + 1; chunk[cn] = B64_PAIR[v - hi * 4096]
    if cn >= 4096 then
      n = n + 1; out[n] = table_concat(chunk, "", 1, cn)
      cn = 0
    end
  end
  if cn > 0 then n = n + 1; out[n] = table_concat(chunk, "", 1, cn) end
  local rest = len - full
  if rest == 1 then
    local v = string_byte(s, len) * 16                       -- 8 bits -> 12 bits
    n = n + 1; out[n] = B64_PAIR[v] .. "=="
  elseif rest == 2 then
    local a, b = string_byte(s, len - 1, len)
    local v = (a * 256 + b) * 4                               -- 16 bits -> 18 bits
    local hi = math_floor(v / 64)
    n = n + 1; out[n] = B64_PAIR[hi] .. string_sub(B64, v % 64 + 1, v % 64 + 1) .. "="
  end
  return table_concat(out, "", 1, n)
end

local core_encode   -- false: looked up, not available
--- Base64 (RFC 4648, with padding), as the campaign `file` field wants it: the C core's encoder
-- when it loads, otherwise pure Lua.
-- @string s bytes
-- @treturn string
function _M.base64_encode(s)
  if core_encode == nil then
    local ok, core = pcall(require, "sigmamind.core")
    core_encode = ok and type(core) == "table" and type(core.base64_encode) == "function" and core.base64_encode
                  or false
  end
  if core_encode then return core_encode(s) end
  return _M._base64_lua(s)
end



local function check_method(self, mt, what)
  if getmetatable(self) ~= mt then
    error(what .. ": call it as a method (plan:" .. string_match(what, "[%w_]+$") .. "(...))", 3)
  end
end

-- raise, blaming the caller of the method that called want (or `level` frames up)
local function want(v, kind, what, level)
  if type(v) ~= kind then
    error(string_format("%s: expected a %s, got %s", what, kind, type(v)), level or 3)
  end
end


local function check_vars(t, what)
  want(t, "table", what, 4)
  for k, v in pairs(t) do
    if type(k) ~= "string" then
      error(string_format("%s: variable names must be strings, got %s", what, type(k)), 3)
    end
    if not var_value(v) then
      error(string_format("%s: %s: expected a string, number or boolean, got %s", what, k, type(v)), 3)
    end
  end
end

----------------------------------------------------------------------------------------------------
-- Campaign plans. Each method records its value in the plan and returns the plan, so calls chain;
-- the plan is changed in place (build a new plan for a second campaign). Nothing is checked until
-- :build(), except misuse.
--
-- What :build() does with rows that break the CSV rules: the file is sent exactly as given (the
-- server applies the same rules, reports the same problems in `campaign.errors` and dials only the
-- good rows), so the problems come back as advice; :report() and :good_rows() tell what will be
-- dialed. A plan is *fatal* (the client must not send it) when a field is wrong or missing, or the
-- CSV cannot be used at all: unreadable, malformed, no phone column, no data rows, or not one good
-- row.

local Campaign = {}
local CampaignMT = { __index = Campaign }

--- Start a campaign plan (also `sigmamind.campaign`). Each method records its value and returns the
-- plan, so calls chain; the plan changes in place (build a new plan for a second campaign).
-- @string[opt] name the campaign name (`campaignName`), or set it later with @{Campaign:name}
-- @treturn Campaign
-- @raise when `name` is not a string
function _M.campaign(name)
  if name ~= nil and type(name) ~= "string" then
    error("campaign: expected a string (the campaign name), got " .. type(name), 2)
  end
  return setmetatable({ _fields = { campaignName = name }, _vars = nil, _source = nil }, CampaignMT)
end

--- A campaign plan, made by @{campaign}.
-- @type Campaign

--- The campaign name (`campaignName`, 1 to 128 characters).
-- @string s
-- @treturn Campaign the plan, for chaining
function Campaign:name(s)
  check_method(self, CampaignMT, "campaign:name")
  want(s, "string", "campaign:name")
  self._fields.campaignName = s
  return self
end

--- The agent that makes the calls (`agentId`).
-- @string id
-- @treturn Campaign the plan, for chaining
function Campaign:agent(id)
  check_method(self, CampaignMT, "campaign:agent")
  want(id, "string", "campaign:agent")
  self._fields.agentId = id
  return self
end

--- The number the calls come from (`sipPhoneNumber`, E.164).
-- @string number
-- @treturn Campaign the plan, for chaining
function Campaign:caller(number)
  check_method(self, CampaignMT, "campaign:caller")
  want(number, "string", "campaign:caller")
  self._fields.sipPhoneNumber = number
  return self
end

--- How many calls run at once (`concurrentCalls`, a positive integer).
-- @int n
-- @treturn Campaign the plan, for chaining
function Campaign:concurrency(n)
  check_method(self, CampaignMT, "campaign:concurrency")
  want(n, "number", "campaign:concurrency")
  self._fields.concurrentCalls = n
  return self
end

--- Dynamic variables for every contact (`dynamicVariables`), merged into those set before. A
-- variable given here also makes an empty cell of its column acceptable (HACKING.md).
-- @tparam table t names to values
-- @treturn Campaign the plan, for chaining
function Campaign:variables(t)
  check_method(self, CampaignMT, "campaign:variables")
  check_vars(t, "campaign:variables")
  local vars = self._vars or {}
  for k, v in pairs(t) do vars[k] = v end
  self._vars = vars
  return self
end

local SCHEDULE_KEYS = { date = "scheduledDate", time = "scheduledTime", timezone = "scheduledTimezone" }

--- Schedule the campaign (`isScheduled`, `scheduledDate`, `scheduledTime`, `scheduledTimezone`);
-- `:build()` checks the values.
-- @tparam table|false t `{ date = "YYYY-MM-DD", time = "HH:MM", timezone = "America/New_York" }`
-- (any IANA zone name: `UTC` and `Etc/GMT+5` too), or `false` to unschedule
-- @treturn Campaign the plan, for chaining
-- @raise on a key other than date, time, timezone, or a value that is not a string
function Campaign:schedule(t)
  check_method(self, CampaignMT, "campaign:schedule")
  local f = self._fields
  if t == false then
    f.isScheduled, f.scheduledDate, f.scheduledTime, f.scheduledTimezone = nil, nil, nil, nil
    return self
  end
  want(t, "table", "campaign:schedule")
  for k, v in pairs(t) do
    if not SCHEDULE_KEYS[k] then
      error("campaign:schedule: unknown key '" .. tostring(k) .. "' (expected date, time, timezone)", 2)
    end
    if type(v) ~= "string" then
      error("campaign:schedule: " .. k .. ": expected a string, got " .. type(v), 2)
    end
  end
  f.isScheduled = true
  f.scheduledDate, f.scheduledTime, f.scheduledTimezone = t.date, t.time, t.timezone
  return self
end

--- The contacts, as rows written to CSV with the phone column named `phoneNumber`. The rows are not
-- copied: changes made to them before `:build()` count.
-- @tparam table rows an array of tables keyed by column name, values strings, numbers or booleans;
-- the phone may be under any of the phone column names
-- @treturn Campaign the plan, for chaining
function Campaign:contacts(rows)
  check_method(self, CampaignMT, "campaign:contacts")
  want(rows, "table", "campaign:contacts")
  local list = {}
  for i, row in ipairs(rows) do
    if type(row) ~= "table" then
      error(string_format("campaign:contacts: row %d: expected a table, got %s", i, type(row)), 2)
    end
    for k, v in pairs(row) do
      local tv = type(v)
      if type(k) ~= "string" then
        error(string_format("campaign:contacts: row %d: column names must be strings, got %s", i, type(k)), 2)
      end
      if tv ~= "string" and tv ~= "number" and tv ~= "boolean" then
        error(string_format("campaign:contacts: row %d, column '%s': expected a string, number or boolean, got %s",
                            i, k, tv), 2)
      end
    end
    list[i] = row
  end
  -- the rows themselves are not copied (a 100,000-contact list would double in memory): they are
  -- read, never changed, when the plan is built, so changes made to them before :build() count
  self._source = { rows = list }
  return self
end

--- The contacts, as CSV text (RFC 4180, header first).
-- @string text
-- @treturn Campaign the plan, for chaining
function Campaign:csv(text)
  check_method(self, CampaignMT, "campaign:csv")
  want(text, "string", "campaign:csv")
  self._source = { text = text }
  return self
end

--- The contacts, as a CSV file. The file is read by `:build()`, so an unreadable file is one of its
-- problems rather than an error here.
-- @string path
-- @treturn Campaign the plan, for chaining
function Campaign:csv_file(path)
  check_method(self, CampaignMT, "campaign:csv_file")
  want(path, "string", "campaign:csv_file")
  self._source = { path = path }
  return self
end

--- Any raw API field; `dynamicVariables` replaces the variables, `file` is not settable (use :csv
-- and friends).
-- @string field
-- @param value
-- @treturn Campaign the plan, for chaining
-- @raise for `file`
function Campaign:set(field, value)
  check_method(self, CampaignMT, "campaign:set")
  want(field, "string", "campaign:set")
  if field == "file" then
    error("campaign:set: 'file' is made from :contacts(rows), :csv(text) or :csv_file(path)", 2)
  elseif field == "dynamicVariables" then
    if value ~= nil then check_vars(value, "campaign:set") end
    self._vars = value ~= nil and copy(value) or nil
  else
    self._fields[field] = value
  end
  return self
end

-- the CSV bytes of the plan, or nil and a problem (rows are encoded and checked by contacts_csv
-- instead)
local function source_text(src)
  if src == nil then return nil, "file: required" end
  if src.text then return src.text end
  local f, err = io_open(src.path, "rb")
  if not f then return nil, "file: cannot read " .. tostring(err) end
  local text, rerr = f:read("*a")
  f:close()
  if not text then return nil, "file: cannot read " .. src.path .. ": " .. tostring(rerr) end
  return text
end


-- Builds the body and the report once per call; nothing is cached, so later changes to the plan
-- count.
local function run(self, want_good)
  local f = self._fields
  local params = {}
  for k, v in pairs(f) do params[k] = v end
  if self._vars and next(self._vars) ~= nil then params.dynamicVariables = copy(self._vars) end
  local problems = rules.campaign_problems(f, self._vars)
  local fatal = problems[1]
  local src = self._source
  local text, terr, report
  if src and src.rows then
    text, report = contacts_csv(src.rows, self._vars or {}, want_good)
  else
    text, terr = source_text(src)
  end
  if text then
    params.file = _M.base64_encode(text)
    report = report or check_csv(text, self._vars or {}, want_good)
    if not report.fatal and report.contacts == 0 then
      report.fatal = string_format("file: none of the %d rows is a contact (every row has a problem)",
                                   report.rows)
    end
  else
    report = { contacts = 0, rows = 0, problems = { terr }, good = {}, numbers = {}, fatal = terr }
  end
  for _, msg in ipairs(report.problems) do problems[#problems + 1] = msg end
  fatal = fatal or report.fatal
  return params, problems, fatal, report
end

--- Build the request body and check it. Rows that break the CSV rules are sent as given (the server
-- applies the same rules and dials only the good rows), so their problems are advice; a plan is
-- fatal when a field is wrong or missing, or the contacts cannot be used at all (unreadable,
-- malformed, no phone column, no data rows, not one good row). Nothing is cached: later changes to
-- the plan count.
-- @treturn table params: the `POST /v1/campaigns` body (always returned, for inspection)
-- @treturn {string,...}|nil problems: field problems first, then the file's, then the rows' as the
-- server words them (`"Row 7: invalid phone number '+1234'"`), or nil when there are none
-- @treturn string|nil fatal: why the plan must not be sent, or nil (row problems alone are not
-- fatal)
function Campaign:build()
  check_method(self, CampaignMT, "campaign:build")
  local params, problems, fatal = run(self)
  if problems[1] == nil then problems = nil end
  return params, problems, fatal
end

--- What `:build()` found, counted.
-- @treturn table `{ contacts = good rows, rows = data rows, problems = {...}, fatal = msg|nil }`,
-- with all of build's problems
function Campaign:report()
  check_method(self, CampaignMT, "campaign:report")
  local _, problems, fatal, report = run(self)
  return { contacts = report.contacts, rows = report.rows, problems = problems, fatal = fatal }
end

--- The contacts that will be dialed, in file order.
-- @treturn table rows: tables keyed by the CSV header (the phone column under its header name,
-- `phoneNumber` for `:contacts` rows)
-- @treturn table their row numbers
function Campaign:good_rows()
  check_method(self, CampaignMT, "campaign:good_rows")
  local _, _, _, report = run(self, true)
  return report.good, report.numbers
end

CampaignMT.__tostring = function(self)
  return "sigmamind.campaign(" .. string_format("%q", tostring(self._fields.campaignName)) .. ")"
end

----------------------------------------------------------------------------------------------------
-- Call plans: build.call{ from =, to =, agent =, variables = } (or the API's own names) -> plan

local Call = {}
local CallMT = { __index = Call }

local CALL_ALIASES = { from = "fromPhoneNumber", to = "toPhoneNumber", agent = "agentId",
                       variables = "dynamicVariables" }
local CALL_FIELDS = { fromPhoneNumber = true, toPhoneNumber = true, agentId = true, dynamicVariables = true }
local CALL_ALIAS_OF = {}
for alias, field in pairs(CALL_ALIASES) do CALL_ALIAS_OF[field] = alias end

local function call_set(self, field, value, what, level)
  if field == "dynamicVariables" and value ~= nil then
    if type(value) ~= "table" then
      error(string_format("%s: expected a table, got %s", what, type(value)), level + 1)
    end
    for k, v in pairs(value) do
      if not var_value(v) then
        error(string_format("%s: %s: expected a string, number or boolean, got %s", what, tostring(k), type(v)),
              level + 1)
      end
    end
    value = copy(value)
  end
  self._fields[field] = value
end

--- Back to the module's own functions (LDoc would take the next ones for Campaign methods).
-- @section end

--- Make a call plan (also `sigmamind.call`), for @{sigmamind.calls:create}.
-- @tparam[opt] table t `from`, `to`, `agent`, `variables`, or the API's own names
-- (`fromPhoneNumber`, `toPhoneNumber`, `agentId`, `dynamicVariables`)
-- @treturn Call
-- @raise on an unknown field, or an alias and its API name both given with different values
-- @usage client.calls:create(sigmamind.call{ from = "+14157774444", to = "+12137774445",
--                                            agent = "agent_abc123" })
function _M.call(t)
  if t ~= nil and type(t) ~= "table" then
    error("call: expected a table, got " .. type(t), 2)
  end
  local self = setmetatable({ _fields = {} }, CallMT)
  local given = {}
  for k, v in pairs(t or {}) do
    local field = CALL_ALIASES[k] or (CALL_FIELDS[k] and k)
    if not field then
      error("call: unknown field '" .. tostring(k) ..
            "' (expected from, to, agent, variables or the API's own names; use :set for others)", 2)
    end
    if given[field] ~= nil and given[field] ~= v then
      error("call: '" .. CALL_ALIAS_OF[field] .. "' and '" .. field .. "' both given, with different values", 2)
    end
    given[field] = v
    call_set(self, field, v, "call: " .. k, 2)
  end
  return self
end

--- A call plan, made by @{call}. Its methods return the plan, for chaining.
-- @type Call

--- The caller's number (`fromPhoneNumber`, E.164).
-- @string number
-- @treturn Call
function Call:from(number)
  check_method(self, CallMT, "call:from")
  want(number, "string", "call:from")
  self._fields.fromPhoneNumber = number
  return self
end

--- The number to call (`toPhoneNumber`, E.164).
-- @string number
-- @treturn Call
function Call:to(number)
  check_method(self, CallMT, "call:to")
  want(number, "string", "call:to")
  self._fields.toPhoneNumber = number
  return self
end

--- The agent (`agentId`).
-- @string id
-- @treturn Call
function Call:agent(id)
  check_method(self, CallMT, "call:agent")
  want(id, "string", "call:agent")
  self._fields.agentId = id
  return self
end

--- Dynamic variables (`dynamicVariables`), merged into those set before.
-- @tparam table t
-- @treturn Call
function Call:variables(t)
  check_method(self, CallMT, "call:variables")
  check_vars(t, "call:variables")
  local vars = self._fields.dynamicVariables or {}
  for k, v in pairs(t) do vars[k] = v end
  self._fields.dynamicVariables = vars
  return self
end

--- Any raw API field.
-- @string field
-- @param value
-- @treturn Call
function Call:set(field, value)
  check_method(self, CallMT, "call:set")
  want(field, "string", "call:set")
  call_set(self, field, value, "call:set", 2)
  return self
end

--- Build the `POST /v1/calls` body and check it. Any problem is fatal: a call has no rows to skip.
-- @treturn table params
-- @treturn {string,...}|nil problems
-- @treturn string|nil fatal: the first problem
function Call:build()
  check_method(self, CallMT, "call:build")
  local f = self._fields
  local params = {}
  for k, v in pairs(f) do params[k] = v end
  if params.dynamicVariables then params.dynamicVariables = copy(params.dynamicVariables) end
  local p = rules.call_problems(f)
  if p[1] == nil then return params, nil, nil end
  return params, p, p[1]
end

CallMT.__tostring = function(self)
  return "sigmamind.call(" .. tostring(self._fields.toPhoneNumber) .. ")"
end

----------------------------------------------------------------------------------------------------

--- Back to the module's own functions (LDoc would take the next ones for Call methods).
-- @section end

--- Is `v` a plan (anything with a build method), which campaigns:create and calls:create build
-- before sending?
-- @param v
-- @treturn boolean
function _M.is_plan(v)
  if type(v) ~= "table" then return false end
  local mt = getmetatable(v)
  if mt == CampaignMT or mt == CallMT then return true end
  return type(v.build) == "function"
end

--- Check a contact list by the campaign CSV rules without building a plan (the dialer uses it).
-- @string text CSV text
-- @tparam[opt] table vars dynamic variables that fill empty cells
-- @treturn table `contacts` (good rows), `rows` (data rows), `problems`, `fatal`, `good` (the good
-- rows keyed by header) and `numbers` (their row numbers)
-- @raise when `text` is not a string or `vars` not a table
_M.check_csv = function(text, vars)
  if type(text) ~= "string" then error("check_csv: expected a string, got " .. type(text), 2) end
  if vars ~= nil and type(vars) ~= "table" then error("check_csv: vars: expected a table, got " .. type(vars), 2) end
  local r = check_csv(text, vars or {}, true)
  return { contacts = r.contacts, rows = r.rows, problems = r.problems, fatal = r.fatal, good = r.good,
           numbers = r.numbers }
end

return _M
