-- The sandbox application: a fake SigmaMind API (API.md) with simulated call life, campaigns, webhooks and faults.
-- State lives in worker-level Lua tables: the sandbox always runs exactly one nginx worker.
local ngx = ngx
local util = require "sandbox.util"
local csv = require "sandbox.csv"
local deliver = require "sandbox.deliver"

local null, encode, decode, iso, describe, array = util.null, util.encode, util.decode, util.iso, util.describe, util.array
local encode_flat, number_text = util.encode_flat, util.number_text
local type, pairs, ipairs, tonumber, tostring, next, pcall = type, pairs, ipairs, tonumber, tostring, next, pcall
local string_find, string_format, string_match, string_sub, string_rep = string.find, string.format, string.match, string.sub, string.rep
local string_gmatch = string.gmatch
local table_sort, table_concat, table_remove, table_insert = table.sort, table.concat, table.remove, table.insert
local math_floor, math_ceil, math_max, math_min, math_random = math.floor, math.ceil, math.max, math.min, math.random
local io_open, io_popen = io.open, io.popen
local ngx_now, ngx_var, ngx_req, ngx_header = ngx.now, ngx.var, ngx.req, ngx.header

local _M = {}

local CFG = { api_key = "sk_test_sandbox", speed = 1, base_url = "http://127.0.0.1", allow_remote_webhooks = false }

local SEED_NUMBER, SEED_AGENT = "+14157774444", "agent_abc123"
local RING = 1 -- seconds a call stays "scheduled", at --speed 1
local MAX_SIZE = 100
local EVENTS = { conversation_started = "conversation_started", conversation_ended = "conversation_ended",
                 conversation_analysed = "conversation_analysed", conversation_analyzed = "conversation_analysed" }
local EVENT_NAMES = "conversation_started, conversation_ended or conversation_analysed"
local CALL_STATUSES = { scheduled = true, in_progress = true, ended = true, not_connected = true, error = true }
local CAMPAIGN_STATUSES = { live = true, scheduled = true, paused = true, completed = true }

-- outcomes: talk = seconds in_progress (0: never connects); magic destinations +1NPA55501xx (DESIGN.md §3)
local OUTCOMES = {
  ["0101"] = { final = "not_connected", reason = "dial_busy", talk = 0 },
  ["0102"] = { final = "not_connected", reason = "dial_no_answer", talk = 0 },
  ["0103"] = { final = "ended", reason = "voicemail_detected", talk = 5, voicemail = true },
  ["0104"] = { final = "not_connected", reason = "dial_user_declined", talk = 0 },
  ["0105"] = { final = "error", reason = "dial_invalid_destination", talk = 0 },
  ["0106"] = { final = "error", reason = "error_telephony", talk = 0 },
}
local NORMAL_USER = { final = "ended", reason = "user_ended_call", talk = 20 }
local NORMAL_AGENT = { final = "ended", reason = "agent_ended_call", talk = 20 }

local function outcome_for(to)
  local magic = string_match(to, "^%+1%d%d%d555(01%d%d)$")
  local oc = magic and OUTCOMES[magic]
  if oc then return oc end
  local last = tonumber(string_sub(to, -1)) or 0
  return last % 2 == 0 and NORMAL_USER or NORMAL_AGENT
end

----------------------------------------------------------------------------------------------------------------------
-- state
local S            -- everything reset by /_sandbox/reset
local counters      -- "METHOD /route/{template}" -> n
local conns         -- nginx connection serial -> true, for API requests since the last reset
local nconns = 0
local offset = 0    -- sandbox clock minus wall clock, seconds
local date_skew = 0 -- the Date header's clock minus the sandbox clock (a misset front end, for specs)
local seq = 0       -- id counter; never reset so that ids stay unique for the life of the process
local chaos         -- nil when chaos mode is off (the hot path checks only this); see A.chaos
local chaos_counts  -- "METHOD /route/{template}" -> fault -> n, for faults chaos injected since the last reset

local function now() return ngx_now() + offset end

local function next_id(prefix)
  seq = seq + 1
  -- random digits in the middle: LuaJIT hashes strings by sampling a few bytes, so counters alone collide
  return string_format("%s%06x%08x", prefix, math_random(0, 0xffffff), seq)
end

local function fresh_state()
  local agent = { id = SEED_AGENT, name = "Sandbox Agent", status = "Live" }
  local number = { number = SEED_NUMBER, provider = "twilio", inbound = SEED_AGENT, outbound = SEED_AGENT,
                   active = true, name = "Sandbox Line" }
  S = {
    agents = { [SEED_AGENT] = agent }, agent_list = { agent },
    numbers = { [SEED_NUMBER] = number }, number_list = { number },
    calls = {}, calls_by_id = {},
    campaigns = {}, campaign_list = {}, campaign_names = {},
    webhooks = {}, webhook_list = {}, hooked = {},
    heap = {},
    deliveries = {},
    faults = {},
    echo = {}, echo_fails = {},
  }
  counters = {}
  conns, nconns = {}, 0
  chaos, chaos_counts = nil, {}
  offset, date_skew = 0, 0
end

----------------------------------------------------------------------------------------------------------------------
-- a min-heap of pending webhook events, ordered by due time (sandbox clock)
local function heap_push(h, ev)
  local i = #h + 1
  h[i] = ev
  while i > 1 do
    local p = math_floor(i / 2)
    if h[p].due <= h[i].due then break end
    h[p], h[i] = h[i], h[p]
    i = p
  end
end

local function heap_pop(h)
  local top, n = h[1], #h
  h[1] = h[n]
  h[n] = nil
  n = n - 1
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and h[l].due < h[m].due then m = l end
    if r <= n and h[r].due < h[m].due then m = r end
    if m == i then break end
    h[m], h[i] = h[i], h[m]
    i = m
  end
  return top
end

----------------------------------------------------------------------------------------------------------------------
-- objects as API.md §3 spells them
local function number_obj(n)
  return {
    sipPhoneNumber = n.number, provider = n.provider, inboundAgentId = n.inbound or null,
    outboundAgentId = n.outbound or null, outboundPhoneNumber = n.outphone or null, active = n.active,
    terminationSipURI = n.sipuri or null, friendlyName = n.name or null,
  }
end

local function agent_obj(a)
  return { name = a.name, agentId = a.id, status = a.status }
end

local function number_json(n)
  local j = n.json
  if not j then j = encode(number_obj(n)) n.json = j end
  return j
end

local function agent_json(a)
  local j = a.json
  if not j then j = encode(agent_obj(a)) a.json = j end
  return j
end

local function campaign_obj(c)
  return {
    campaignId = c.id, campaignName = c.name, campaignStatus = c.status,
    scheduledDate = c.scheduled and c.start_at and iso(c.start_at) or null,
    concurrentCalls = c.concurrent, agent = agent_obj(c.agent), phoneNumber = number_obj(c.num),
    errors = array(c.errors), scheduled = c.scheduled,
  }
end

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

local function call_status(c, t)
  if t < c.t1 then return "scheduled" end
  if t < c.t2 then return "in_progress" end
  return c.oc.final
end

local call_parts   -- a Call's JSON, as fragments: defined with the lists below

local function webhook_obj(w)
  return { webhookId = w.id, workspaceId = "ws_sandbox", name = w.name, agentId = w.agent, url = w.url,
           events = array(w.events), active = w.active, secret = w.secret }
end

----------------------------------------------------------------------------------------------------------------------
-- calls and their webhook events
local function rebuild_hooked()
  local h = {}
  for _, w in ipairs(S.webhook_list) do
    if w.active then h[w.agent] = true end
  end
  S.hooked = h
end

local function new_call(num, agent, to, vars, created, camp)
  local oc = outcome_for(to)
  local t1 = created + RING / CFG.speed
  local c = { id = next_id("call_"), created = created, t1 = t1, t2 = t1 + oc.talk / CFG.speed,
              to = to, num = num, agent = agent, vars = vars, oc = oc, camp = camp }
  local calls = S.calls
  local i = #calls
  -- calls stay ordered by creation time; only campaign dials made "in the past" need the walk
  while i > 0 and calls[i].created > created do i = i - 1 end
  if i == #calls then calls[i + 1] = c else table_insert(calls, i + 1, c) end
  S.calls_by_id[c.id] = c
  if S.hooked[agent.id] then
    local h = S.heap
    if oc.talk > 0 then heap_push(h, { due = c.t1, call = c, event = "conversation_started" }) end
    heap_push(h, { due = c.t2, call = c, event = "conversation_ended" })
    if oc.talk > 0 then heap_push(h, { due = c.t2 + 1 / CFG.speed, call = c, event = "conversation_analysed" }) end
  end
  return c
end

local function fire(ev)
  local c = ev.call
  if c.deleted then return end
  local body
  for _, w in ipairs(S.webhook_list) do
    if w.active and w.agent == c.agent.id and w.subscribed[ev.event] then
      if not body then
        local parts = { '{"event":', encode(ev.event), ',"timestamp":"', iso(ev.due), '","call":' }
        parts[call_parts(parts, #parts, c, ev.due) + 1] = "}"
        body = table_concat(parts)
      end
      local entry = { id = next_id("dlv_"), webhookId = w.id, url = w.url, event = ev.event, callId = c.id,
                      status = null, attempts = 0, signature = null, body = body, result = "pending",
                      error = null, createdAt = iso(now()) }
      S.deliveries[#S.deliveries + 1] = entry
      deliver.start(entry, w.secret, CFG.speed, CFG.allow_remote_webhooks)
    end
  end
end

----------------------------------------------------------------------------------------------------------------------
-- campaigns: dialing is derived from the clock; each free slot dials the next contact at the moment it frees
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

local function tick()
  local t = now()
  local h = S.heap
  while h[1] and h[1].due <= t do fire(heap_pop(h)) end
  advance_all(t)
  -- dials made just now may have events that are already due (after a clock jump)
  while h[1] and h[1].due <= t do fire(heap_pop(h)) end
end

----------------------------------------------------------------------------------------------------------------------
-- responses
local ERROR_NAMES = { [302] = "Found", [400] = "Bad Request", [401] = "Unauthorized", [404] = "Not Found", [405] = "Method Not Allowed",
                      [429] = "Too Many Requests", [500] = "Internal Server Error", [503] = "Service Unavailable" }

local function send_raw(status, body)
  local len
  if type(body) == "table" then
    len = 0
    for i = 1, #body do len = len + #body[i] end
  else
    len = #body
  end
  ngx.status = status
  ngx_header["Content-Type"] = "application/json"
  ngx_header["Content-Length"] = len
  ngx.print(body)
end

local function send_error(status, message)
  local path = ngx_var.request_uri
  local q = string_find(path, "?", 1, true)
  if q then path = string_sub(path, 1, q - 1) end
  send_raw(status, encode{ error = ERROR_NAMES[status] or "Error", message = message, path = path,
                           status = status, timestamp = iso(now()) })
end

local function bad(field, expected, got)
  return 400, field .. ": " .. expected .. ", got " .. describe(got)
end

----------------------------------------------------------------------------------------------------------------------
-- validation helpers: each returns nil when fine, or 400, message
local function is_e164(v)
  return type(v) == "string" and #v <= 16 and string_find(v, "^%+[1-9]%d%d%d%d%d%d+$") ~= nil
end

local function check_e164(body, field, required)
  local v = body[field]
  if v == nil and not required then return end
  if not is_e164(v) then return bad(field, "expected an E.164 phone number like +14155552671", v) end
end

-- characters as API.md counts them: UTF-8 code points (every byte but the continuation bytes)
local function chars(s)
  local _, cont = string.gsub(s, "[\128-\191]", "")
  return #s - cont
end

local function check_string(body, field, required, min, max)
  local v = body[field]
  if v == nil and not required then return end
  if type(v) ~= "string" or chars(v) < (min or 1) or chars(v) > max then
    return bad(field, string_format("expected a string of %d to %d characters", min or 1, max), v)
  end
end

local function check_agent(body, field, required, nullable)
  local v = body[field]
  if v == nil and not required then return end
  if v == null and nullable then return end
  if type(v) ~= "string" or #v < 1 or chars(v) > 64 then
    return bad(field, "expected an agent id of at most 64 characters", v)
  end
  if not S.agents[v] then return bad(field, "expected the id of an existing agent", v) end
end

local function check_vars(body, field)
  local v = body[field]
  if v == nil then return end
  if not util.is_object(v) then return bad(field, "expected an object", v) end
  for k, x in pairs(v) do
    local t = type(x)
    if t ~= "string" and t ~= "number" and t ~= "boolean" then
      return bad(field .. "." .. tostring(k), "expected a string, number or boolean", x)
    end
  end
end

local function check_int(body, field, min, max)
  local v = body[field]
  if v == nil then return end
  if type(v) ~= "number" or v % 1 ~= 0 or v < min or v > max then
    return bad(field, string_format("expected an integer from %d to %d", min, max), v)
  end
end

local function check_bool(body, field)
  local v = body[field]
  if v ~= nil and type(v) ~= "boolean" then return bad(field, "expected true or false", v) end
end

local function first_error(...)
  local n = select("#", ...)
  local args = { ... }
  for i = 1, n, 2 do
    if args[i] then return args[i], args[i + 1] end
  end
end

local function page_args(args)
  local page, size = 0, 10
  if args.page ~= nil then
    page = tonumber(args.page)
    if type(args.page) ~= "string" or not page or page < 0 or page % 1 ~= 0 then
      return nil, nil, "page: expected an integer >= 0, got " .. describe(args.page)
    end
  end
  if args.size ~= nil then
    size = tonumber(args.size)
    if type(args.size) ~= "string" or not size or size < 1 or size > MAX_SIZE or size % 1 ~= 0 then
      return nil, nil, "size: expected an integer from 1 to " .. MAX_SIZE .. ", got " .. describe(args.size)
    end
  end
  return page, size
end

local function page_of(items, page, size, total, total_key)
  local pages = math_ceil(total / size)
  return { data = array(items), page = page, size = size, [total_key] = total, totalPages = pages,
           hasNext = page + 1 < pages, hasPrevious = page > 0 }
end

-- a plain list (oldest first), filtered by keep(x), paged, rendered by obj(x)
local function list_page(list, args, total_key, keep, obj)
  local page, size, err = page_args(args)
  if err then return 400, err end
  local items, total, first = {}, 0, page * size
  for _, x in ipairs(list) do
    if not keep or keep(x) then
      if total >= first and #items < size then items[#items + 1] = obj(x) end
      total = total + 1
    end
  end
  return 200, page_of(items, page, size, total, total_key)
end

----------------------------------------------------------------------------------------------------------------------
-- handlers: (id, body, args) -> status, table | JSON string | error message (status >= 400)
local H = {}

function H.create_call(_, b)
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
function call_parts(parts, n, c, t)
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
  parts[n + 1] = ',"startTime":'
  if oc.talk > 0 then n = add_time(parts, n + 1, c.t1) else parts[n + 2] = "null"; n = n + 2 end
  if st == "in_progress" then
    parts[n + 1] = ',"updatedAt":'
    n = add_time(parts, n + 1, c.t1)
    parts[n + 1] = ',"transcript":null,"endTime":null,"duration":null,"terminationReason":null,"recordingUrl":null}'
    return n + 1
  end
  parts[n + 1] = ',"updatedAt":'
  n = add_time(parts, n + 1, c.t2)
  parts[n + 1] = ',"endTime":'
  n = add_time(parts, n + 1, c.t2)
  parts[n + 1], parts[n + 2] = ',"duration":', tostring(math_floor(c.t2 - c.t1 + 0.5))
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

function H.get_call(id)
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

function H.list_calls(_, _, args)
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

function H.delete_call(id)
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

-- campaigns
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

function H.create_campaign(_, b)
  local st, msg = first_error(check_string(b, "campaignName", true, 1, 128))
  if st then return st, msg end
  if S.campaign_names[b.campaignName] then
    return 400, "campaignName: expected a name no other campaign uses, got " .. describe(b.campaignName)
  end
  st, msg = check_agent(b, "agentId", true)
  if st then return st, msg end
  st, msg = check_e164(b, "sipPhoneNumber", true)
  if st then return st, msg end
  local num = S.numbers[b.sipPhoneNumber]
  if not num then
    return 400, "sipPhoneNumber: expected a phone number provisioned or imported on this account, got '" ..
      b.sipPhoneNumber .. "' (not a number on this account)"
  end
  if type(b.file) ~= "string" or b.file == "" then return bad("file", "expected the base64 of the CSV bytes", b.file) end
  -- RFC 4648 and canonical, as the client checks it: ngx.decode_base64 alone stops at the first '=' and takes
  -- what follows as nothing, and accepts padding left off and unused bits set
  local text = ngx.decode_base64(b.file)
  if not text or ngx.encode_base64(text) ~= b.file then
    return 400, "file: expected the base64 of the CSV bytes, got invalid base64"
  end
  st, msg = first_error(check_int(b, "concurrentCalls", 1, 1000))
  if st then return st, msg end
  st, msg = check_vars(b, "dynamicVariables")
  if st then return st, msg end
  st, msg = check_bool(b, "isScheduled")
  if st then return st, msg end
  local sched
  st, msg, sched = check_schedule(b)
  if st then return st, msg end
  local contacts, errors = csv.check(text, b.dynamicVariables)
  if not contacts then return 400, errors end
  local t = now()
  local camp = {
    id = next_id("camp_"), name = b.campaignName, agent = S.agents[b.agentId], num = num,
    concurrent = b.concurrentCalls or 1, vars = b.dynamicVariables or {}, scheduled = b.isScheduled == true,
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

function H.get_campaign(id)
  local camp = S.campaigns[id]
  if not camp then return 404, "Campaign not found: " .. id end
  advance_campaign(camp, now())
  return 200, campaign_obj(camp)
end

function H.list_campaigns(_, _, args)
  local status = args.status
  if status ~= nil and (type(status) ~= "string" or not CAMPAIGN_STATUSES[status]) then
    return bad("status", "expected one of live, scheduled, paused, completed", status)
  end
  advance_all(now())
  return list_page(S.campaign_list, args, "totalCount", status and function(c) return c.status == status end,
                   campaign_obj)
end

function H.update_campaign(id, b)
  local camp = S.campaigns[id]
  if not camp then return 404, "Campaign not found: " .. id end
  local t = now()
  advance_campaign(camp, t)
  if b.file ~= nil then return bad("file", "expected no file (contacts cannot be changed after creation)", "a file") end
  local st, msg = first_error(check_string(b, "campaignName", false, 1, 128))
  if st then return st, msg end
  if b.campaignName ~= nil and S.campaign_names[b.campaignName] and S.campaign_names[b.campaignName] ~= camp then
    return 400, "campaignName: expected a name no other campaign uses, got " .. describe(b.campaignName)
  end
  st, msg = check_agent(b, "agentId", false)
  if st then return st, msg end
  st, msg = check_e164(b, "sipPhoneNumber", false)
  if st then return st, msg end
  if b.sipPhoneNumber ~= nil and not S.numbers[b.sipPhoneNumber] then
    return 400, "sipPhoneNumber: expected a phone number provisioned or imported on this account, got '" ..
      b.sipPhoneNumber .. "' (not a number on this account)"
  end
  st, msg = first_error(check_int(b, "concurrentCalls", 1, 1000))
  if st then return st, msg end
  st, msg = check_vars(b, "dynamicVariables")
  if st then return st, msg end
  st, msg = check_bool(b, "isScheduled")
  if st then return st, msg end
  local sched
  st, msg, sched = check_schedule(b, camp)
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

function H.delete_campaign(id)
  local camp = S.campaigns[id]
  if not camp then return 404, "Campaign not found: " .. id end
  S.campaigns[id] = nil
  S.campaign_names[camp.name] = nil
  for i, c in ipairs(S.campaign_list) do
    if c == camp then table_remove(S.campaign_list, i) break end
  end
  camp.status = "completed"
  note_active()
  return 204
end

-- phone numbers
local COUNTRY_CODES = { US = "1", CA = "1", GB = "44", DE = "49", FR = "33", ES = "34", IT = "39", NL = "31",
                        IN = "91", AU = "61", BR = "55", MX = "52", JP = "81", IE = "353", SE = "46" }

local function number_fields_error(b)
  local st, msg = check_string(b, "friendlyName", false, 0, 128)
  if st then return st, msg end
  st, msg = check_agent(b, "inboundAgentId", false, true)
  if st then return st, msg end
  st, msg = check_agent(b, "outboundAgentId", false, true)
  if st then return st, msg end
  return check_e164(b, "outboundPhoneNumber", false)
end

local function add_number(n)
  S.numbers[n.number] = n
  S.number_list[#S.number_list + 1] = n
end

local function opt(v)
  if v == null then return nil end
  return v
end

function H.provision_number(_, b)
  local number = b.phoneNumber
  if number ~= nil then
    local st, msg = check_e164(b, "phoneNumber", true)
    if st then return st, msg end
    if S.numbers[number] then return bad("phoneNumber", "expected a number not already on this account", number) end
  else
    local cc = b.countryCode
    if cc == nil then
      return bad("phoneNumber", "expected an E.164 phone number (or a countryCode to pick one)", nil)
    end
    if type(cc) ~= "string" or not string_find(cc, "^[A-Z][A-Z]$") then
      return bad("countryCode", "expected a two-letter country code like US", cc)
    end
    local st, msg = first_error(check_int(b, "areaCode", 100, 99999))
    if st then return st, msg end
    local prefix = COUNTRY_CODES[cc]
    if not prefix then return bad("countryCode", "expected a country with numbers available", cc) end
    local area = tostring(b.areaCode or (prefix == "1" and 415 or 20))
    for _ = 1, 1000 do
      local cand = "+" .. prefix .. area .. string_format("%07d", math_random(0, 9999999))
      if not S.numbers[cand] and is_e164(cand) then number = cand break end
    end
    if not number then return bad("areaCode", "expected an area code with numbers available", b.areaCode) end
  end
  local st, msg = number_fields_error(b)
  if st then return st, msg end
  local n = { number = number, provider = "twilio", active = true, name = b.friendlyName,
              inbound = opt(b.inboundAgentId), outbound = opt(b.outboundAgentId), outphone = b.outboundPhoneNumber }
  add_number(n)
  return 201, number_obj(n)
end

function H.import_number(_, b)
  local st, msg = check_e164(b, "phoneNumber", true)
  if st then return st, msg end
  if S.numbers[b.phoneNumber] then return bad("phoneNumber", "expected a number not already on this account", b.phoneNumber) end
  local uri = b.terminationSipURI
  if type(uri) ~= "string" or #uri < 1 or #uri > 253 then
    return bad("terminationSipURI", "expected a SIP URI of at most 253 characters", uri)
  end
  st, msg = check_string(b, "trunkUsername", true, 1, 256)
  if st then return st, msg end
  st, msg = check_string(b, "trunkPassword", true, 1, 256)
  if st then return st, msg end
  st, msg = number_fields_error(b)
  if st then return st, msg end
  local n = { number = b.phoneNumber, provider = "byo", active = true, name = b.friendlyName, sipuri = uri,
              user = b.trunkUsername, password = b.trunkPassword,
              inbound = opt(b.inboundAgentId), outbound = opt(b.outboundAgentId), outphone = b.outboundPhoneNumber }
  add_number(n)
  return 201, number_obj(n)
end

function H.list_numbers(_, _, args)
  return list_page(S.number_list, args, "totalCount", nil, number_obj)
end

function H.get_number(id)
  local n = S.numbers[id]
  if not n then return 404, "Phone number not found: " .. id end
  return 200, number_obj(n)
end

function H.update_number(id, b)
  local n = S.numbers[id]
  if not n then return 404, "Phone number not found: " .. id end
  local st, msg = number_fields_error(b)
  if st then return st, msg end
  local uri = b.terminationSipUri
  if uri ~= nil and (type(uri) ~= "string" or #uri < 1 or #uri > 253) then
    return bad("terminationSipUri", "expected a SIP URI of at most 253 characters", uri)
  end
  st, msg = check_string(b, "trunkUsername", false, 1, 256)
  if st then return st, msg end
  st, msg = check_string(b, "trunkPassword", false, 1, 256)
  if st then return st, msg end
  n.json = nil
  if b.friendlyName ~= nil then n.name = b.friendlyName end
  if b.inboundAgentId ~= nil then n.inbound = opt(b.inboundAgentId) end
  if b.outboundAgentId ~= nil then n.outbound = opt(b.outboundAgentId) end
  if b.outboundPhoneNumber ~= nil then n.outphone = b.outboundPhoneNumber end
  if uri ~= nil then n.sipuri = uri end
  if b.trunkUsername ~= nil then n.user = b.trunkUsername end
  if b.trunkPassword ~= nil then n.password = b.trunkPassword end
  return 200, number_obj(n)
end

function H.delete_number(id)
  local n = S.numbers[id]
  if not n then return 404, "Phone number not found: " .. id end
  S.numbers[id] = nil
  for i, x in ipairs(S.number_list) do
    if x == n then table_remove(S.number_list, i) break end
  end
  return 204
end

-- webhooks
local function check_webhook_fields(b, required)
  local st, msg = check_string(b, "name", required, 1, 128)
  if st then return st, msg end
  local url = b.url
  if url ~= nil or required then
    if type(url) ~= "string" or #url > 2048 or not string_find(url, "^[hH][tT][tT][pP][sS]?://[^/%s?#]+[^%s]*$") then
      return bad("url", "expected an http:// or https:// URL", url)
    end
  end
  local ev = b.events
  if ev ~= nil or required then
    if type(ev) == "string" then ev = { ev } end
    if not util.is_array(ev) or #ev == 0 then
      return bad("events", "expected a non-empty array of " .. EVENT_NAMES, b.events)
    end
    for _, e in ipairs(ev) do
      if type(e) ~= "string" or not EVENTS[e] then
        return bad("events", "expected only " .. EVENT_NAMES, e)
      end
    end
  end
  return check_bool(b, "active")
end

local function set_events(w, ev)
  if type(ev) == "string" then ev = { ev } end
  w.events, w.subscribed = {}, {}
  for _, e in ipairs(ev) do
    local name = EVENTS[e]
    if not w.subscribed[name] then
      w.subscribed[name] = true
      w.events[#w.events + 1] = name
    end
  end
end

function H.create_webhook(_, b)
  local st, msg = check_string(b, "name", true, 1, 128)
  if st then return st, msg end
  st, msg = check_agent(b, "agentId", true)
  if st then return st, msg end
  st, msg = check_webhook_fields(b, true)
  if st then return st, msg end
  local w = { id = next_id("wh_"), name = b.name, agent = b.agentId, url = b.url, active = b.active ~= false,
              secret = "whsec_" .. util.random_hex(24) }
  set_events(w, b.events)
  S.webhooks[w.id] = w
  S.webhook_list[#S.webhook_list + 1] = w
  rebuild_hooked()
  return 201, webhook_obj(w)
end

function H.list_webhooks(_, _, args)
  local active = true
  if args.active ~= nil then
    if args.active == "true" then active = true
    elseif args.active == "false" then active = false
    else return bad("active", "expected true or false", args.active) end
  end
  local agent = args.agentId
  if agent ~= nil and type(agent) ~= "string" then return bad("agentId", "expected an agent id", agent) end
  return list_page(S.webhook_list, args, "totalCount",
                   function(w) return w.active == active and (agent == nil or w.agent == agent) end, webhook_obj)
end

function H.get_webhook(id)
  local w = S.webhooks[id]
  if not w then return 404, "Webhook not found: " .. id end
  return 200, webhook_obj(w)
end

function H.update_webhook(id, b)
  local w = S.webhooks[id]
  if not w then return 404, "Webhook not found: " .. id end
  local st, msg = check_webhook_fields(b, false)
  if st then return st, msg end
  if b.name ~= nil then w.name = b.name end
  if b.url ~= nil then w.url = b.url end
  if b.events ~= nil then set_events(w, b.events) end
  if b.active ~= nil then w.active = b.active end
  rebuild_hooked()
  return 200, webhook_obj(w)
end

function H.delete_webhook(id)
  local w = S.webhooks[id]
  if not w then return 404, "Webhook not found: " .. id end
  S.webhooks[id] = nil
  for i, x in ipairs(S.webhook_list) do
    if x == w then table_remove(S.webhook_list, i) break end
  end
  rebuild_hooked()
  return 204
end

-- agents
function H.list_agents(_, _, args)
  return list_page(S.agent_list, args, "totalCount", nil, agent_obj)
end

function H.get_agent(id)
  local a = S.agents[id]
  if not a then return 404, "Agent not found: " .. id end
  return 200, agent_obj(a)
end

----------------------------------------------------------------------------------------------------------------------
-- admin
local A = {}

function A.ping() return 200, '{"ok":true}' end

-- The state dropped is collected now, in full: otherwise the incremental collector sweeps it during whatever
-- requests come next, and a benchmark that resets between scenarios charges one scenario for another's garbage.
function A.reset()
  fresh_state()
  collectgarbage("collect")
  return 200, { ok = true }
end

function A.state()
  local armed = {}
  for i, f in ipairs(S.faults) do armed[i] = { method = f.method, path = f.path, fault = f.fault, count = f.count } end
  return 200, {
    requests = next(counters) and counters or {}, connections = nconns, calls = #S.calls, campaigns = #S.campaign_list,
    webhooks = #S.webhook_list, phoneNumbers = #S.number_list, agents = #S.agent_list,
    deliveries = #S.deliveries, pendingEvents = #S.heap, faults = array(armed),
    clock = iso(now()), clockOffset = offset, speed = CFG.speed,
    chaos = next(chaos_counts) and chaos_counts or {},
    chaosMode = chaos and { rate = chaos.rate, faults = array(chaos.faults), seed = chaos.seed } or null,
  }
end

function A.seed(_, b)
  local n = b.calls
  if type(n) ~= "number" or n % 1 ~= 0 or n < 1 or n > 1000000 then
    return bad("calls", "expected an integer from 1 to 1000000", n)
  end
  local num = S.numbers[SEED_NUMBER] or S.number_list[1]
  if not num then return 400, "calls: expected a phone number on the account to seed calls from, got none" end
  local agent = S.agents[SEED_AGENT]
  local old = S.calls
  local t = now()
  local base = (old[1] and math_min(old[1].created, t) or t) - n - 3600
  local calls, by_id, speed = {}, S.calls_by_id, CFG.speed
  local vars = {}
  for i = 1, n do
    local created = base + i
    local to = string_format("+1415%07d", i % 10000000)
    local oc = (i % 2 == 0) and NORMAL_USER or NORMAL_AGENT
    local t1 = created + RING / speed
    local c = { id = next_id("call_"), created = created, t1 = t1, t2 = t1 + oc.talk / speed, to = to,
                num = num, agent = agent, vars = vars, oc = oc }
    calls[i] = c
    by_id[c.id] = c
  end
  for i = 1, #old do calls[n + i] = old[i] end
  S.calls = calls
  collectgarbage("collect")     -- as in reset: the cycles the seeding started end here, not in later requests
  return 200, { seeded = n, calls = #calls }
end

function A.clock(_, b)
  local s, skew = b.advance, b.dateSkew
  if skew ~= nil and (type(skew) ~= "number" or skew ~= skew or skew < -1e6 or skew > 1e6) then
    return bad("dateSkew", "expected a number of seconds from -1000000 to 1000000", skew)
  end
  if (s ~= nil or skew == nil) and (type(s) ~= "number" or s < 0 or s ~= s or s > 1e9) then
    return bad("advance", "expected a number of seconds >= 0", s)
  end
  if skew ~= nil then date_skew = skew end
  if s ~= nil then
    offset = offset + s
    tick()
  end
  return 200, { now = iso(now()), offset = offset, dateSkew = date_skew }
end

function A.deliveries(_, _, args)
  local out = {}
  for _, d in ipairs(S.deliveries) do
    if (args.callId == nil or d.callId == args.callId) and (args.webhookId == nil or d.webhookId == args.webhookId) then
      out[#out + 1] = d
    end
  end
  return 200, { data = array(out), totalCount = #out }
end

local FAULT_KINDS = { ["429"] = true, ["500"] = true, ["503"] = true, reset = true, truncate = true, garbage = true,
                      lost = true,
                      redirect = true }

local function valid_fault(f)
  if type(f) ~= "string" then return false end
  if FAULT_KINDS[f] then return true end
  local kind, n = string_match(f, "^(%a+)=(%d+)$")
  return (kind == "slow" or kind == "big" or kind == "bigchunked") and tonumber(n) ~= nil
end

function A.arm_fault(_, b)
  if b.method ~= nil and (type(b.method) ~= "string" or not string_find(b.method, "^%u+$")) then
    return bad("method", "expected an HTTP method like POST", b.method)
  end
  if type(b.path) ~= "string" or string_sub(b.path, 1, 1) ~= "/" then
    return bad("path", "expected a path like /v1/calls or a route like /v1/calls/{callId}", b.path)
  end
  if not valid_fault(b.fault) then
    return bad("fault", "expected 429, 500, 503, reset, slow=MS, truncate, garbage, redirect, lost, big=BYTES or bigchunked=BYTES", b.fault)
  end
  local st, msg = first_error(check_int(b, "count", 1, 1000000))
  if st then return st, msg end
  local f = { method = b.method, path = b.path, fault = b.fault, count = b.count or 1 }
  S.faults[#S.faults + 1] = f
  return 200, { method = f.method or null, path = f.path, fault = f.fault, count = f.count }
end

function A.clear_faults()
  S.faults = {}
  return 204
end

-- Chaos mode: each non-admin request without a header or armed fault gets, with probability `rate`, one fault
-- drawn from `faults`. The draws come from a private Park-Miller generator seeded by `seed`, so the same seed and
-- the same request sequence give the same faults (math.random also serves ids and numbers, so it is not used).
local CHAOS_FAULTS = { "429", "500", "503", "reset", "slow=50", "truncate", "garbage", "lost" }
local PM_M, PM_A = 2147483647, 48271

local function chaos_next(c)
  c.state = c.state * PM_A % PM_M    -- < 2^47: exact in a double, so LuaJIT and Lua 5.4 agree
  return c.state
end

-- the fault for this request, or nil; counted per route and fault
local function chaos_pick(key)
  local c = chaos
  if chaos_next(c) >= c.threshold then return nil end
  local f = c.faults[chaos_next(c) % #c.faults + 1]
  local per = chaos_counts[key]
  if not per then per = {} chaos_counts[key] = per end
  per[f] = (per[f] or 0) + 1
  return f
end

function A.chaos(_, b)
  local rate = b.rate
  if type(rate) ~= "number" or rate ~= rate or rate < 0 or rate > 1 then
    return bad("rate", "expected a probability from 0 to 1", rate)
  end
  if rate == 0 then
    chaos = nil
    return 200, { rate = 0, faults = array({}), seed = null }
  end
  local faults = b.faults
  if faults == nil then faults = CHAOS_FAULTS end
  if not util.is_array(faults) or #faults == 0 then
    return bad("faults", "expected a non-empty array of faults like \"500\" or \"slow=50\"", b.faults)
  end
  for _, f in ipairs(faults) do
    if not valid_fault(f) then
      return bad("faults", "expected only 429, 500, 503, reset, slow=MS, truncate, garbage, redirect, lost, " ..
                 "big=BYTES or bigchunked=BYTES", f)
    end
  end
  local seed = b.seed
  if seed == nil then seed = math_floor(ngx_now() * 1000) % PM_M end
  if type(seed) ~= "number" or seed % 1 ~= 0 or seed < 0 or seed > 1e15 then
    return bad("seed", "expected an integer from 0 to 1000000000000000", seed)
  end
  local list = {}
  for i, f in ipairs(faults) do list[i] = f end
  chaos = { rate = rate, faults = list, seed = seed, state = seed % (PM_M - 1) + 1,
            threshold = rate * (PM_M - 1) + 1 }    -- draws are 1 .. PM_M-1, uniform
  return 200, { rate = rate, faults = array(list), seed = seed }
end

function A.echo_post(id)
  -- a webhook receiver for tests: records the raw request; ?status=NNN answers that, ?fail=N fails the first N
  local args = ngx_req.get_uri_args()
  local key = ngx_var.request_uri
  local status = tonumber(args.status) or 200
  local fails = tonumber(args.fail)
  if fails then
    local seen = (S.echo_fails[key] or 0) + 1
    S.echo_fails[key] = seen
    if seen <= fails then status = 500 end
  end
  ngx_req.read_body()
  local headers = ngx_req.get_headers()
  S.echo[#S.echo + 1] = { method = ngx_req.get_method(), uri = key, path = ngx_var.uri,
                          headers = headers, body = ngx_req.get_body_data() or "", answered = status,
                          receivedAt = iso(now()) }
  return status, { received = true }
end

function A.echo_get()
  return 200, { data = array(S.echo), totalCount = #S.echo }
end

----------------------------------------------------------------------------------------------------------------------
-- routes
local function route(tmpl, methods, flags)
  local r = { tmpl = tmpl, methods = methods, keys = {} }
  for m in pairs(methods) do r.keys[m] = m .. " " .. tmpl end
  if flags then for k, v in pairs(flags) do r[k] = v end end
  local allow = {}
  for m in pairs(methods) do allow[#allow + 1] = m end
  table_sort(allow)
  r.allow = table_concat(allow, ", ")
  return r
end

local EXACT = {
  ["/v1/calls"] = route("/v1/calls", { POST = H.create_call, GET = H.list_calls }),
  ["/v1/campaigns"] = route("/v1/campaigns", { POST = H.create_campaign, GET = H.list_campaigns }),
  ["/v1/phone-numbers"] = route("/v1/phone-numbers", { POST = H.provision_number, GET = H.list_numbers }),
  ["/v1/phone-numbers/import"] = route("/v1/phone-numbers/import", { POST = H.import_number }),
  ["/v1/webhooks"] = route("/v1/webhooks", { POST = H.create_webhook, GET = H.list_webhooks }),
  ["/v1/agents"] = route("/v1/agents", { GET = H.list_agents }),
  ["/_sandbox/ping"] = route("/_sandbox/ping", { GET = A.ping }, { admin = true, public = true }),
  ["/_sandbox/reset"] = route("/_sandbox/reset", { POST = A.reset }, { admin = true }),
  ["/_sandbox/state"] = route("/_sandbox/state", { GET = A.state }, { admin = true }),
  ["/_sandbox/seed"] = route("/_sandbox/seed", { POST = A.seed }, { admin = true }),
  ["/_sandbox/clock"] = route("/_sandbox/clock", { POST = A.clock }, { admin = true }),
  ["/_sandbox/deliveries"] = route("/_sandbox/deliveries", { GET = A.deliveries }, { admin = true }),
  ["/_sandbox/faults"] = route("/_sandbox/faults", { POST = A.arm_fault, DELETE = A.clear_faults }, { admin = true }),
  ["/_sandbox/chaos"] = route("/_sandbox/chaos", { POST = A.chaos }, { admin = true }),
  ["/_sandbox/echo"] = route("/_sandbox/echo", { POST = A.echo_post, GET = A.echo_get },
                             { admin = true, public_methods = { POST = true }, raw = true }),
}

local PREFIXED = {
  { "/v1/calls/", route("/v1/calls/{callId}", { GET = H.get_call, DELETE = H.delete_call }) },
  { "/v1/campaigns/", route("/v1/campaigns/{campaignId}",
      { GET = H.get_campaign, PATCH = H.update_campaign, DELETE = H.delete_campaign }) },
  { "/v1/phone-numbers/", route("/v1/phone-numbers/{phoneNumber}",
      { GET = H.get_number, PATCH = H.update_number, DELETE = H.delete_number }) },
  { "/v1/webhooks/", route("/v1/webhooks/{webhookId}",
      { GET = H.get_webhook, PATCH = H.update_webhook, DELETE = H.delete_webhook }) },
  { "/v1/agents/", route("/v1/agents/{agentId}", { GET = H.get_agent }) },
  { "/_sandbox/echo/", route("/_sandbox/echo/{name}", { POST = A.echo_post },
      { admin = true, public_methods = { POST = true }, raw = true }) },
}

local function match(uri)
  local r = EXACT[uri]
  if r then return r end
  for i = 1, #PREFIXED do
    local p = PREFIXED[i]
    local pre = p[1]
    if string_sub(uri, 1, #pre) == pre then
      local id = string_sub(uri, #pre + 1)
      if id ~= "" and not string_find(id, "/", 1, true) then return p[2], id end
    end
  end
end

----------------------------------------------------------------------------------------------------------------------
-- faults
local function take_armed(method, uri, tmpl)
  local faults = S.faults
  for i = 1, #faults do
    local f = faults[i]
    if (f.method == nil or f.method == method) and (f.path == uri or f.path == tmpl or f.path == ngx_var.uri) then
      f.count = f.count - 1
      if f.count <= 0 then table_remove(faults, i) end
      return f.fault
    end
  end
end

-- returns true when the fault answered the request
local function apply_fault(f)
  if f == "429" then
    ngx_header["Retry-After"] = "1"
    send_error(429, "Rate limit exceeded (sandbox fault)")
    return true
  elseif f == "500" or f == "503" then
    send_error(tonumber(f), "Sandbox fault " .. f)
    return true
  elseif f == "reset" then
    ngx.exit(444)
    return true
  elseif f == "redirect" then
    -- a client that follows redirects would land on another route and be counted there
    ngx_header["Location"] = "/v1/calls"
    send_error(302, "Found (sandbox fault)")
    return true
  elseif f == "garbage" then
    send_raw(200, "<html><body>502 Bad Gateway? {not json\n")
    return true
  elseif f == "truncate" then
    local part = '{"callId":"call_truncated","status":"sch'
    ngx.status = 200
    ngx_header["Content-Type"] = "application/json"
    ngx_header["Content-Length"] = #part + 1000
    ngx.print(part)
    ngx.flush(true)
    ngx.exit(ngx.ERROR)
    return true
  end
  local kind, n = string_match(f, "^(%a+)=(%d+)$")
  n = tonumber(n)
  if kind == "slow" and n then
    ngx.sleep(n / 1000)
    return false
  elseif (kind == "big" or kind == "bigchunked") and n then
    if n > 256 * 1024 * 1024 then
      send_error(400, "X-Sandbox-Fault: expected big=BYTES of at most 268435456, got " .. n)
      return true
    end
    local fill = math_max(0, n - 12)
    ngx.status = 200
    ngx_header["Content-Type"] = "application/json"
    if kind == "big" then
      ngx_header["Content-Length"] = fill + 12
      ngx.print('{"data":"', string_rep("x", fill), '"}\n')
    else
      ngx.print('{"data":"')
      ngx.flush(true)
      local chunk = string_rep("x", 65536)
      local left = fill
      while left > 0 do
        local k = math_min(left, 65536)
        ngx.print(k == 65536 and chunk or string_sub(chunk, 1, k))
        local ok = ngx.flush(true)
        if not ok then return true end
        left = left - k
      end
      ngx.print('"}\n')
    end
    return true
  end
  send_error(400, "X-Sandbox-Fault: expected 429, 500, 503, reset, slow=MS, truncate, garbage, redirect, lost, big=BYTES or " ..
    "bigchunked=BYTES, got " .. describe(f))
  return true
end

----------------------------------------------------------------------------------------------------------------------
-- the request entry point
local function read_json_body()
  ngx_req.read_body()
  local data = ngx_req.get_body_data()
  if not data then
    local path = ngx_req.get_body_file()
    if path then
      local f = io_open(path, "rb")
      if f then data = f:read("*a") f:close() end
    end
  end
  if not data or data == "" then return nil, "body: expected a JSON object, got nothing" end
  local v = decode(data)
  if v == nil then return nil, "body: expected a JSON object, got invalid JSON" end
  if not util.is_object(v) then return nil, "body: expected a JSON object, got " .. describe(v) end
  return v
end

function _M.handle()
  -- route on the path as sent: nginx's $uri is decoded and normalised, so /v1/calls/..%2Fagents would
  -- turn into /v1/agents and hide a client that failed to keep an id inside its own path segment
  local uri = ngx_var.request_uri
  local q = string_find(uri, "?", 1, true)
  if q then uri = string_sub(uri, 1, q - 1) end
  local method = ngx_req.get_method()
  -- a moved clock is the server's clock: its Date header says so too (a client may read the server's time
  -- from it, as calls:create's reconciliation does); nginx's own is the wall clock
  if offset ~= 0 or date_skew ~= 0 then ngx_header["Date"] = ngx.http_time(math_floor(now() + date_skew)) end
  local r, id = match(uri)
  if id then id = ngx.unescape_uri(id) end
  if not r then
    local key = method .. " " .. uri
    counters[key] = (counters[key] or 0) + 1
    if ngx_var.http_x_api_key ~= CFG.api_key then return send_error(401, "Missing or invalid X-API-Key") end
    return send_error(404, "No route for " .. method .. " " .. uri)
  end
  local key = r.keys[method] or (method .. " " .. r.tmpl)
  counters[key] = (counters[key] or 0) + 1

  local lost    -- the request is carried out but its answer never leaves: the ambiguous failure
  if not r.admin then
    local cn = ngx_var.connection
    if not conns[cn] then conns[cn] = true; nconns = nconns + 1 end
    local f = ngx_var.http_x_sandbox_fault
    if not f and S.faults[1] then f = take_armed(method, uri, r.tmpl) end
    if not f and chaos then f = chaos_pick(key) end
    if f == "lost" then lost = true
    elseif f and apply_fault(f) then return end
  end

  if not r.public and not (r.public_methods and r.public_methods[method])
     and ngx_var.http_x_api_key ~= CFG.api_key then
    return send_error(401, "Missing or invalid X-API-Key")
  end

  local h = r.methods[method]
  if not h then
    ngx_header["Allow"] = r.allow
    return send_error(405, "Method " .. method .. " not allowed on " .. r.tmpl)
  end

  local body, args
  if not r.raw then
    if method == "POST" or method == "PATCH" then
      local err
      body, err = read_json_body()
      if not body then
        if h == A.reset then body = {} else return send_error(400, err) end
      end
    else
      args = ngx_req.get_uri_args()
    end
  end

  local ok, status, v = pcall(h, id, body, args)
  if not ok then
    ngx.log(ngx.ERR, "sandbox handler error: ", status)
    return send_error(500, "Sandbox internal error")
  end
  if lost then return ngx.exit(444) end
  if status == 204 then
    ngx.status = 204
    return ngx.exit(204)
  end
  if status >= 400 then return send_error(status, v) end
  if type(v) ~= "string" and not v[1] then v = encode(v) end
  return send_raw(status, v)
end

function _M.init(cfg)
  for k, v in pairs(cfg or {}) do CFG[k] = v end
  fresh_state()
end

function _M.init_worker()
  math.randomseed(math_floor(ngx_now() * 1000) + ngx.worker.pid())
  local ok, err = ngx.timer.every(0.02, function(premature)
    if premature then return end
    local tok, terr = pcall(tick)
    if not tok then ngx.log(ngx.ERR, "sandbox tick: ", terr) end
  end)
  if not ok then ngx.log(ngx.ERR, "sandbox: cannot start the ticker: ", err) end
end

return _M
