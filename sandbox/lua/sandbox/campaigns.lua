-- Sandbox campaigns: the Campaign object, dialing derived from the clock, /v1/campaigns routes.
local ngx = ngx
local util = require "sandbox.util"
local csv = require "sandbox.csv"
local store = require "sandbox.store"
local validate = require "sandbox.validate"
local agents = require "sandbox.agents"
local phone_numbers = require "sandbox.phone_numbers"

local null, iso, describe, array, decode = util.null, util.iso, util.describe, util.array, util.decode
local bad, check_e164, check_string, check_agent = validate.bad, validate.check_e164, validate.check_string, validate.check_agent
local check_vars, check_int, check_bool, first_error, list_page =
  validate.check_vars, validate.check_int, validate.check_bool, validate.first_error, validate.list_page
local agent_obj, number_obj = agents.agent_obj, phone_numbers.number_obj
local now, next_id, new_call = store.now, store.next_id, store.new_call
local type, ipairs, tonumber = type, ipairs, tonumber
local string_find, string_match, string_gmatch = string.find, string.match, string.gmatch
local table_sort, table_remove, math_max = table.sort, table.remove, math.max
local io_open, io_popen = io.open, io.popen
local S = store.S

local _M = {}

local CAMPAIGN_STATUSES = { live = true, scheduled = true, paused = true, completed = true }

local function campaign_obj(c)
  return {
    campaignId = c.id, campaignName = c.name, campaignStatus = c.status,
    scheduledDate = c.scheduled and c.start_at and iso(c.start_at) or null,
    concurrentCalls = c.concurrent, agent = agent_obj(c.agent), phoneNumber = number_obj(c.num),
    errors = array(c.errors), scheduled = c.scheduled,
  }
end

-- dialing: derived from the clock; each free slot dials the next contact at the moment it frees
local function slot_min(slots)
  local bi, bt = 1, slots[1]
  for i = 2, #slots do
    if slots[i] < bt then bi, bt = i, slots[i] end
  end
  return bi, bt
end

local function advance_campaign(camp, t)
  if camp.status == "scheduled" then
    if t < camp.start_at then return end
    camp.status = "live"
    camp.slots = {}
    for i = 1, camp.concurrent do camp.slots[i] = camp.start_at end
  end
  if camp.status ~= "live" then return end
  local contacts = camp.contacts
  while camp.next <= #contacts do
    local i, free = slot_min(camp.slots)
    if free > t then break end
    local ct = contacts[camp.next]
    camp.next = camp.next + 1
    local c = new_call(camp.num, camp.agent, ct.to, ct.vars, free, camp)
    camp.slots[i] = c.t2
    camp.dialed[#camp.dialed + 1] = c
  end
  if camp.next > #contacts then
    local last = camp.start_at or camp.created
    for _, c in ipairs(camp.dialed) do last = math_max(last, c.t2) end
    if last <= t then camp.status = "completed" end
  end
end

local function advance_all(t)
  for _, camp in ipairs(S.campaign_list) do
    if camp.status == "live" or camp.status == "scheduled" then advance_campaign(camp, t) end
  end
end

-- -> epoch | nil, the field to blame[, "gap"]. date(1) knows the zone rules; the arguments were checked against
-- strict patterns above (and the zone by valid_tz), so they go into the shell line as they are. One shell run:
-- - a wall time the zone skips on that day (a DST gap) makes date(1) fail; "gap" then says it read the same text
--   in UTC, so the zone, not date(1), refused it;
-- - a wall time the zone has twice (clocks going back) is read as its first occurrence, the earlier instant, as
--   java.time does: date(1) (glibc's mktime) returns either, depending on the zone (New York: the first; London:
--   the second), so the run also prints the instants 2 h, 1 h and 30 min before the one it found, with their wall
--   times; the earliest that reads the same wall time is the first occurrence.
local function schedule_start(date, time, tz)
  local y, mo, d = string_match(date, "^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  local hh, mm = string_match(time, "^(%d%d):(%d%d)$")
  y, mo, d, hh, mm = tonumber(y), tonumber(mo), tonumber(d), tonumber(hh), tonumber(mm)
  local days_in = { 31, (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  if mo < 1 or mo > 12 or d < 1 or d > days_in[mo] then return nil, "scheduledDate" end
  if hh > 23 or mm > 59 then return nil, "scheduledTime" end
  local wall = date .. " " .. time
  local p = io_popen("export TZ=':" .. tz .. "'; e=$(date -d '" .. wall .. "' +%s 2>/dev/null) || " ..
    "{ TZ=UTC0 date -d '" .. wall .. "' >/dev/null 2>&1 && echo gap; exit; }; echo \"$e\"; " ..
    "for d in 7200 3600 1800; do date -d \"@$((e - d))\" '+%s %F %R'; done 2>/dev/null")
  local out = p and p:read("*a")
  if p then p:close() end
  if not out then return nil, "scheduledTimezone" end
  local first = string_match(out, "^[^\n]*")
  if first == "gap" then return nil, "scheduledTime", "gap" end
  local epoch = tonumber(string_match(first, "^%s*(%-?%d+)%s*$"))
  if not epoch then return nil, "scheduledTimezone" end
  for e, w in string_gmatch(out, "\n(%-?%d+) ([^\n]+)") do
    if w == wall then return tonumber(e) end
  end
  return epoch
end

local function valid_tz(tz)
  if type(tz) ~= "string" or not string_find(tz, "^[%w_+%-]+[%w_+%-/]*$") or string_find(tz, "%.%.") then return false end
  if tz == "UTC" or tz == "Etc/UTC" or tz == "GMT" then return true end
  local f = io_open("/usr/share/zoneinfo/" .. tz, "rb")
  if not f then return false end
  local magic = f:read(4)
  f:close()
  return magic == "TZif"
end

local function check_schedule(b, camp)
  local is = b.isScheduled
  if is == nil and camp then is = camp.scheduled end
  if not is then return end
  local date = b.scheduledDate
  if date == nil and camp then date = camp.sdate end
  local time = b.scheduledTime
  if time == nil and camp then time = camp.stime end
  local tz = b.scheduledTimezone
  if tz == nil and camp then tz = camp.stz end
  if type(date) ~= "string" or not string_find(date, "^%d%d%d%d%-%d%d%-%d%d$") then
    return bad("scheduledDate", "expected a date YYYY-MM-DD (required when isScheduled)", date)
  end
  if type(time) ~= "string" or not string_find(time, "^%d%d:%d%d$") then
    return bad("scheduledTime", "expected a time HH:MM (required when isScheduled)", time)
  end
  if not valid_tz(tz) then
    return bad("scheduledTimezone", "expected an IANA time zone name like America/New_York (required when isScheduled)", tz)
  end
  local at, which, gap = schedule_start(date, time, tz)
  if gap then
    return bad("scheduledTime", "expected a time that exists on " .. date .. " in " .. tz ..
      " (the clocks jump over it there: a daylight-saving gap)", time)
  end
  if not at then
    local got = which == "scheduledDate" and date or which == "scheduledTime" and time or tz
    return bad(which, "expected a valid " .. (which == "scheduledDate" and "calendar date" or
      which == "scheduledTime" and "time of day" or "time zone"), got)
  end
  return nil, nil, { date = date, time = time, tz = tz, at = at }
end

-- no slots = never started (made live, or scheduled and not reached, paused or not): it starts now, whatever its
-- schedule said, so that start_at (scheduledDate, and the floor of the completion test) is never in the future of
-- a live campaign; one that started keeps its start, and its slots wait at least until now
local function start_campaign_now(camp, t)
  camp.status = "live"
  if not camp.slots then
    camp.start_at = t
    camp.slots = {}
    for i = 1, camp.concurrent do camp.slots[i] = t end
  else
    for i = 1, #camp.slots do camp.slots[i] = math_max(camp.slots[i], t) end
  end
end

local function note_active()
  local n = false
  for _, c in ipairs(S.campaign_list) do
    if c.status == "live" or c.status == "scheduled" then n = true break end
  end
  S.active_campaigns = n
end

-- name (no other campaign's), agent and number: required on create (camp nil), checked if sent on PATCH
local function check_who(b, camp)
  local required = camp == nil
  local st, msg = first_error(check_string(b, "campaignName", required, 1, 128))
  if st then return st, msg end
  local other = b.campaignName ~= nil and S.campaign_names[b.campaignName]
  if other and other ~= camp then
    return 400, "campaignName: expected a name no other campaign uses, got " .. describe(b.campaignName)
  end
  st, msg = check_agent(b, "agentId", required)
  if st then return st, msg end
  st, msg = check_e164(b, "sipPhoneNumber", required)
  if st then return st, msg end
  if b.sipPhoneNumber ~= nil and not S.numbers[b.sipPhoneNumber] then
    return 400, "sipPhoneNumber: expected a phone number provisioned or imported on this account, got '" ..
      b.sipPhoneNumber .. "' (not a number on this account)"
  end
end

-- calls at once, variables (in b[vars], "dynamicVariables" unless said), schedule (what a PATCH leaves out
-- is camp's) -> nil, nil, schedule or nil
local function check_dialing(b, camp, vars)
  local st, msg = first_error(check_int(b, "concurrentCalls", 1, 1000))
  if st then return st, msg end
  st, msg = check_vars(b, vars or "dynamicVariables")
  if st then return st, msg end
  st, msg = check_bool(b, "isScheduled")
  if st then return st, msg end
  return check_schedule(b, camp)
end

-- A body read from multipart/form-data (the API reference's upload) holds this key, which no JSON can: its
-- `file` is the CSV itself and its variables are `variables`.
local FORM = {}

-- the parts named as create's fields, as the JSON body would carry them -> body | nil, 400, message naming
-- the part. Form fields are text: concurrentCalls "5" is 5, isScheduled "true"/"false" a boolean (other text
-- stays text, for the checks to refuse by name); `variables` is JSON text; other parts are ignored, as
-- unknown JSON fields are.
local FORM_PARTS = { campaignName = true, agentId = true, sipPhoneNumber = true, concurrentCalls = true,
                     isScheduled = true, scheduledDate = true, scheduledTime = true, scheduledTimezone = true,
                     variables = true, file = true }

function _M.form_body(parts)
  local b = { [FORM] = true }
  for _, p in ipairs(parts) do
    local name, v = p.name, p.data
    if FORM_PARTS[name] then
      if b[name] ~= nil then return nil, 400, name .. ": expected one part of that name, got more" end
      if name == "file" then
        if not p.filename then
          return nil, 400, "file: expected a file part (a filename in its Content-Disposition) holding the " ..
            "CSV, got a form field"
        end
      elseif name == "concurrentCalls" then
        if #v <= 15 and string_find(v, "^%d+$") then v = tonumber(v) end
      elseif name == "isScheduled" then
        if v == "true" then v = true elseif v == "false" then v = false end
      elseif name == "variables" then
        local vars = decode(v)
        if not util.is_object(vars) then
          return nil, 400, "variables: expected a JSON object, got " ..
            (string_find(v, "^%s*$") and "nothing" or vars == nil and "invalid JSON" or describe(vars))
        end
        v = vars
      end
      b[name] = v
    end
  end
  return b
end

function _M.create_campaign(_, b)
  local form = b[FORM]
  local st, msg = check_who(b)
  if st then return st, msg end
  local num = S.numbers[b.sipPhoneNumber]
  local text
  if form then
    text = b.file
    if not text or text == "" then
      return 400, "file: expected a file part holding the CSV, got " .. (text and "an empty file" or "nothing")
    end
  else
    if type(b.file) ~= "string" or b.file == "" then
      return bad("file", "expected the base64 of the CSV bytes", b.file)
    end
    -- RFC 4648 and canonical, as the client checks it: ngx.decode_base64 alone stops at the first '=' and
    -- takes what follows as nothing, and accepts padding left off and unused bits set
    text = ngx.decode_base64(b.file)
    if not text or ngx.encode_base64(text) ~= b.file then
      return 400, "file: expected the base64 of the CSV bytes, got invalid base64"
    end
  end
  local vars_field = form and "variables" or "dynamicVariables"
  local sched
  st, msg, sched = check_dialing(b, nil, vars_field)
  if st then return st, msg end
  local vars = b[vars_field]
  local contacts, errors = csv.check(text, vars)
  if not contacts then return 400, errors end
  local t = now()
  local camp = {
    id = next_id("camp_"), name = b.campaignName, agent = S.agents[b.agentId], num = num,
    concurrent = b.concurrentCalls or 1, vars = vars or {}, scheduled = b.isScheduled == true,
    sdate = sched and sched.date, stime = sched and sched.time, stz = sched and sched.tz,
    contacts = contacts, errors = errors, next = 1, dialed = {}, created = t,
  }
  if sched and sched.at > t then
    camp.status, camp.start_at = "scheduled", sched.at
  else
    start_campaign_now(camp, t)
  end
  S.campaigns[camp.id] = camp
  S.campaign_list[#S.campaign_list + 1] = camp
  S.campaign_names[camp.name] = camp
  advance_campaign(camp, t)
  note_active()
  return 201, campaign_obj(camp)
end

function _M.get_campaign(id)
  local camp = S.campaigns[id]
  if not camp then return 404, "Campaign not found: " .. id end
  advance_campaign(camp, now())
  return 200, campaign_obj(camp)
end

function _M.list_campaigns(_, _, args)
  local status = args.status
  if status ~= nil and (type(status) ~= "string" or not CAMPAIGN_STATUSES[status]) then
    return bad("status", "expected one of live, scheduled, paused, completed", status)
  end
  advance_all(now())
  return list_page(S.campaign_list, args, "totalCount", status and function(c) return c.status == status end,
                   campaign_obj)
end

function _M.update_campaign(id, b)
  local camp = S.campaigns[id]
  if not camp then return 404, "Campaign not found: " .. id end
  local t = now()
  advance_campaign(camp, t)
  if b.file ~= nil then return bad("file", "expected no file (contacts cannot be changed after creation)", "a file") end
  local st, msg = check_who(b, camp)
  if st then return st, msg end
  local sched
  st, msg, sched = check_dialing(b, camp)
  if st then return st, msg end
  local cs = b.campaignStatus
  if cs ~= nil then
    if cs ~= "paused" and cs ~= "live" then return bad("campaignStatus", "expected 'paused' or 'live'", cs) end
    if camp.status == "completed" then
      return bad("campaignStatus", "expected no status change for a completed campaign", cs)
    end
  end
  -- apply
  if b.campaignName ~= nil then
    S.campaign_names[camp.name] = nil
    camp.name = b.campaignName
    S.campaign_names[camp.name] = camp
  end
  if b.agentId ~= nil then camp.agent = S.agents[b.agentId] end
  if b.sipPhoneNumber ~= nil then camp.num = S.numbers[b.sipPhoneNumber] end
  if b.dynamicVariables ~= nil then camp.vars = b.dynamicVariables end
  if b.concurrentCalls ~= nil and b.concurrentCalls ~= camp.concurrent then
    camp.concurrent = b.concurrentCalls
    if camp.slots then
      table_sort(camp.slots)
      while #camp.slots > camp.concurrent do table_remove(camp.slots) end
      while #camp.slots < camp.concurrent do camp.slots[#camp.slots + 1] = t end
    end
  end
  if b.isScheduled ~= nil then camp.scheduled = b.isScheduled end
  if sched then
    camp.sdate, camp.stime, camp.stz = sched.date, sched.time, sched.tz
    -- a new schedule moves only a start still to come (scheduled, or paused before it); one already past starts
    -- it now, as on create (advance_campaign would dial it at that past moment, before this request was made)
    if not camp.slots then
      camp.start_at = sched.at
      if camp.status == "scheduled" and sched.at <= t then start_campaign_now(camp, t) end
    end
  elseif b.isScheduled == false and camp.status == "scheduled" then
    start_campaign_now(camp, t)
  end
  if cs == "paused" and camp.status ~= "completed" then
    camp.status = "paused"
  elseif cs == "live" and (camp.status == "paused" or camp.status == "scheduled") then
    start_campaign_now(camp, t)
  end
  advance_campaign(camp, t)
  note_active()
  return 200, campaign_obj(camp)
end

_M.delete_campaign = validate.delete_by_id("campaigns", "campaign_list", "Campaign", function(camp)
  S.campaign_names[camp.name] = nil
  camp.status = "completed"
  note_active()
end)

_M.campaign_obj, _M.advance_campaign, _M.advance_all = campaign_obj, advance_campaign, advance_all

return _M
