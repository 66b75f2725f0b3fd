-- Sandbox calls: the one writer of a Call's JSON (GET, lists, webhooks) and the /v1/calls routes.
local ngx = ngx
local util = require "sandbox.util"
local store = require "sandbox.store"
local validate = require "sandbox.validate"
local agents = require "sandbox.agents"
local phone_numbers = require "sandbox.phone_numbers"
local campaigns = require "sandbox.campaigns"

local encode, iso, encode_flat, number_text = util.encode, util.iso, util.encode_flat, util.number_text
local bad, check_e164, check_agent, check_vars, page_args =
  validate.bad, validate.check_e164, validate.check_agent, validate.check_vars, validate.page_args
local agent_json, number_json = agents.agent_json, phone_numbers.number_json
local campaign_obj, advance_all = campaigns.campaign_obj, campaigns.advance_all
local now, new_call, call_status, CFG = store.now, store.new_call, store.call_status, store.CFG
local sim_duration, RING = store.sim_duration, store.RING
local type, pairs, ipairs, tostring, next = type, pairs, ipairs, tostring, next
local string_format, string_sub = string.format, string.sub
local table_sort, table_concat, table_remove = table.sort, table.concat, table.remove
local math_floor, math_ceil, math_max = math.floor, math.ceil, math.max
local S = store.S

local _M = {}

local CALL_STATUSES = { scheduled = true, in_progress = true, ended = true, not_connected = true, error = true }

local function transcript_details(vars)
  local names = {}
  for k in pairs(vars) do names[#names + 1] = k end
  table_sort(names)
  local parts = {}
  for i, k in ipairs(names) do
    local v = vars[k]
    parts[i] = k .. " = " .. (type(v) == "number" and number_text(v) or tostring(v))
  end
  return #parts > 0 and table_concat(parts, ", ") or "no dynamic variables"
end

function _M.create_call(_, b)
  local st, msg = check_e164(b, "fromPhoneNumber", true)
  if st then return st, msg end
  local num = S.numbers[b.fromPhoneNumber]
  if not num then
    return 400, "fromPhoneNumber: expected a phone number provisioned or imported on this account, got '" ..
      b.fromPhoneNumber .. "' (not a number on this account)"
  end
  st, msg = check_e164(b, "toPhoneNumber", true)
  if st then return st, msg end
  local agent_id = b.agentId
  if agent_id == nil then
    agent_id = num.outbound
    if not agent_id then
      return 400, "agentId: expected an agent id (number " .. num.number .. " has no outbound agent), got nothing"
    end
  else
    st, msg = check_agent(b, "agentId", true)
    if st then return st, msg end
  end
  st, msg = check_vars(b, "dynamicVariables")
  if st then return st, msg end
  local agent = S.agents[agent_id]
  -- nginx's clock is cached per event-loop turn, and a kept-alive client creates several calls in one turn:
  -- each API call gets a createdAt of its own, a millisecond after the last one at least, as a real server's
  -- would be, so that the list's newest-first order can be seen in the records
  ngx.update_time()
  local t, newest = now(), S.calls[#S.calls]
  if newest and t < newest.created + 0.001 then t = newest.created + 0.001 end
  local c = new_call(num, agent, b.toPhoneNumber, b.dynamicVariables or {}, t)
  -- the hot path: a fresh call is mostly constant, so it is sent as cached fragments (ngx.print takes an array,
  -- which also spares LuaJIT interning one large, nearly identical string per request)
  local ts = iso(c.created)
  local parts = { '{"callId":"', c.id, '","callType":"outbound","phoneNumber":', number_json(num),
    ',"status":"scheduled","transcript":null,"startTime":null,"endTime":null,"duration":null,' ..
    '"terminationReason":null,"createdAt":"', ts, '","updatedAt":"', ts, '","dynamicVariables":',
    encode_flat(c.vars), ',"recordingUrl":null,"agent":', agent_json(agent), '}' }
  return 201, parts
end

-- A call's JSON written as fragments into `parts` (ngx.print takes the array as it is): the one writer of a
-- Call, for GET, lists and webhook deliveries (spec/sandbox_spec.lua checks a list shows each call as GET does),
-- its variables' numbers exact. It builds no object first and makes no string per call where fragments shared
-- by many calls will do: the number and agent are their cached JSON, a time is a cached minute, a second and a
-- millisecond, a transcript its constant pieces around the call's own. So a page of 100 calls costs the sandbox
-- a fraction of what encoding it did, and the sandbox is not the bottleneck of a pagination benchmark. It
-- matters twice under LuaJIT, which interns every string through a hash of four of its 4-byte words: a
-- timestamp's hash depends only on its hour, a transcript's on almost nothing that varies, so 100,000 such
-- strings alive at once would share a few hash chains.
local SECONDS, MILLIS, minutes, n_minutes = {}, {}, {}, 0
for i = 0, 59 do SECONDS[i] = string_format("%02d", i) end
for i = 0, 999 do MILLIS[i] = string_format(".%03dZ\"", i) end
local DURATIONS = {}   -- whole seconds as written, for the durations calls mostly have
for i = 0, 3600 do DURATIONS[i] = string_format("%d", i) end

local function add_time(parts, n, t)
  local sec = math_floor(t)
  local ms = math_floor((t - sec) * 1000 + 0.5)
  if ms >= 1000 then sec, ms = sec + 1, ms - 1000 end
  local m = math_floor(sec / 60)
  local prefix = minutes[m]
  if not prefix then
    if n_minutes >= 4096 then minutes, n_minutes = {}, 0 end
    prefix = os.date('!"%Y-%m-%dT%H:%M:', m * 60)
    minutes[m], n_minutes = prefix, n_minutes + 1
  end
  parts[n + 1], parts[n + 2], parts[n + 3] = prefix, SECONDS[sec - m * 60], MILLIS[ms]
  return n + 3
end

local function json_inner(v) return (string_sub(encode(v), 2, -2)) end   -- a string's JSON, without its quotes
local NO_VARS = json_inner("no dynamic variables")
local TR_HELLO, TR_CALLING = json_inner("Agent: Hello, this is "), json_inner(" calling ")
local TR_DETAILS = json_inner(".\nUser: Hi.\nAgent: I have your details: ")
local TR_END = json_inner(".\nUser: That is right, thank you.\nAgent: Goodbye.\n")
local TR_VOICEMAIL, TR_VM_END = json_inner(". I will leave a message. (voicemail) Details: "), json_inner(".\n")

local function add_transcript(parts, n, c, oc)
  if oc.talk == 0 then parts[n + 1] = '""' return n + 1 end
  local a = c.agent
  local name = a.name_json
  if not name then name = json_inner(a.name) a.name_json = name end
  local details = next(c.vars) == nil and NO_VARS or json_inner(transcript_details(c.vars))
  if oc.voicemail then
    parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4], parts[n + 5], parts[n + 6] =
      '"' .. TR_HELLO, name, TR_VOICEMAIL, details, TR_VM_END, '"'
    return n + 6
  end
  parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4] = '"' .. TR_HELLO, name, TR_CALLING, c.to
  parts[n + 5], parts[n + 6], parts[n + 7], parts[n + 8] = TR_DETAILS, details, TR_END, '"'
  return n + 8
end

-- writes from parts[n + 1] on and returns the new n; the one writer of a Call's JSON (GET, lists, webhooks)
local function call_parts(parts, n, c, t)
  -- no closure made per call: LuaJIT cannot compile a loop that makes one (FNEW), and this runs 100 times a page
  local st, oc = call_status(c, t), c.oc
  parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4] = '{"callId":"', c.id, '","callType":"outbound","phoneNumber":',
                                                          number_json(c.num)
  parts[n + 5], parts[n + 6], parts[n + 7] = ',"status":"', st, '","createdAt":'
  n = add_time(parts, n + 7, c.created)
  parts[n + 1], parts[n + 2] = ',"dynamicVariables":', next(c.vars) == nil and "{}" or encode_flat(c.vars)
  parts[n + 3], parts[n + 4] = ',"agent":', agent_json(c.agent)
  n = n + 4
  if c.camp then parts[n + 1], parts[n + 2] = ',"campaign":', encode(campaign_obj(c.camp)); n = n + 2 end
  if st == "scheduled" then
    parts[n + 1] = ',"updatedAt":'
    n = add_time(parts, n + 1, c.created)
    parts[n + 1] = ',"transcript":null,"startTime":null,"endTime":null,"duration":null,"terminationReason":null,' ..
                   '"recordingUrl":null}'
    return n + 1
  end
  -- startTime, endTime and duration in simulated seconds (store.sim_start): the same at any --speed
  local s1 = c.created + RING
  parts[n + 1] = ',"startTime":'
  if oc.talk > 0 then n = add_time(parts, n + 1, s1) else parts[n + 2] = "null"; n = n + 2 end
  if st == "in_progress" then
    parts[n + 1] = ',"updatedAt":'
    n = add_time(parts, n + 1, s1)
    parts[n + 1] = ',"transcript":null,"endTime":null,"duration":null,"terminationReason":null,"recordingUrl":null}'
    return n + 1
  end
  local dur = sim_duration(c)
  parts[n + 1] = ',"updatedAt":'
  n = add_time(parts, n + 1, s1 + dur)
  parts[n + 1] = ',"endTime":'
  n = add_time(parts, n + 1, s1 + dur)
  parts[n + 1], parts[n + 2] = ',"duration":', DURATIONS[dur] or string_format("%d", dur)
  parts[n + 3], parts[n + 4], parts[n + 5] = ',"terminationReason":"', oc.reason, '","transcript":'
  n = add_transcript(parts, n + 5, c, oc)
  if oc.talk > 0 then
    parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4], parts[n + 5] =
      ',"recordingUrl":"', CFG.base_url, "/_sandbox/recordings/", c.id, '.mp3"}'
    return n + 5
  end
  parts[n + 1] = ',"recordingUrl":null}'
  return n + 1
end

function _M.get_call(id)
  local c = S.calls_by_id[id]
  if not c then return 404, "Call not found: " .. id end
  local parts = {}
  call_parts(parts, 0, c, now())
  return 200, parts
end

-- The fragments of a page go into this one table, reused by every page: a fresh one grew by doubling to about
-- 4,000 slots each time, and that copying and garbage (some 100 KB a page) made the worker's collector run
-- through its string table far more often. Safe to share because nothing between the first fragment written
-- and the table.concat can yield to another request; slots past a page's end hold the previous page's strings
-- until overwritten, which keeps at most that page alive.
local page_parts = {}

-- a page's n-th call (n from 0) after the np fragments written so far, a comma before all but the first
local function add_call(parts, np, n, c, t)
  if n > 0 then np = np + 1; parts[np] = "," end
  return call_parts(parts, np, c, t)
end

function _M.list_calls(_, _, args)
  local page, size, err = page_args(args)
  if err then return 400, err end
  local status = args.status
  if status ~= nil and (type(status) ~= "string" or not CALL_STATUSES[status]) then
    return bad("status", "expected one of scheduled, in_progress, ended, not_connected, error", status)
  end
  local t = now()
  if S.active_campaigns then advance_all(t) end
  local calls, first = S.calls, page * size
  local parts, np, n, total = page_parts, 1, 0, 0     -- np fragments written, n calls
  parts[1] = '{"data":['
  if not status then
    total = #calls
    for i = #calls - first, math_max(1, #calls - first - size + 1), -1 do
      np, n = add_call(parts, np, n, calls[i], t), n + 1
    end
  else
    for i = #calls, 1, -1 do
      local c = calls[i]
      if call_status(c, t) == status then
        if total >= first and n < size then np, n = add_call(parts, np, n, c, t), n + 1 end
        total = total + 1
      end
    end
  end
  local pages = math_ceil(total / size)
  np = np + 1
  parts[np] = string_format('],"page":%d,"size":%d,"totalCounts":%d,"totalPages":%d,"hasNext":%s,' ..
    '"hasPrevious":%s}', page, size, total, pages, tostring(page + 1 < pages), tostring(page > 0))
  -- one string: a page is thousands of fragments, and ngx.print walks a table through the Lua C API twice
  -- (length, then copy), which cost the worker more than building the page did; table.concat is one memcpy each
  return 200, table_concat(parts, "", 1, np)
end

function _M.delete_call(id)
  local c = S.calls_by_id[id]
  if not c then return 404, "Call not found: " .. id end
  S.calls_by_id[id] = nil
  c.deleted = true
  local calls = S.calls
  for i = #calls, 1, -1 do
    if calls[i] == c then table_remove(calls, i) break end
  end
  return 204
end

_M.call_parts = call_parts

return _M
