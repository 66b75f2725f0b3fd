-- Sandbox webhooks: the Webhook object, /v1/webhooks routes, and firing a call's events to them.
local util = require "sandbox.util"
local deliver = require "sandbox.deliver"
local store = require "sandbox.store"
local validate = require "sandbox.validate"
local calls = require "sandbox.calls"

local null, encode, iso, array = util.null, util.encode, util.iso, util.array
local bad, check_string, check_agent, check_bool, list_page =
  validate.bad, validate.check_string, validate.check_agent, validate.check_bool, validate.list_page
local call_parts = calls.call_parts
local now, next_id, sim_start, sim_end, CFG = store.now, store.next_id, store.sim_start, store.sim_end, store.CFG
local type, ipairs = type, ipairs
local string_find, table_concat = string.find, table.concat
local S = store.S

local _M = {}

local EVENTS = { conversation_started = "conversation_started", conversation_ended = "conversation_ended",
                 conversation_analysed = "conversation_analysed", conversation_analyzed = "conversation_analysed" }
local EVENT_NAMES = "conversation_started, conversation_ended or conversation_analysed"

local function webhook_obj(w)
  return { webhookId = w.id, workspaceId = "ws_sandbox", name = w.name, agentId = w.agent, url = w.url,
           events = array(w.events), active = w.active, secret = w.secret }
end

local function rebuild_hooked()
  local h = {}
  for _, w in ipairs(S.webhook_list) do
    if w.active then h[w.agent] = true end
  end
  S.hooked = h
end

-- a due event of a call: one delivery to each active webhook of its agent subscribed to it
local function fire(ev)
  local c = ev.call
  if c.deleted then return end
  local body
  for _, w in ipairs(S.webhook_list) do
    if w.active and w.agent == c.agent.id and w.subscribed[ev.event] then
      if not body then
        -- the event's moment in the call's own (simulated) times: its startTime, its endTime, a second later
        local at = ev.event == "conversation_started" and sim_start(c) or
                   sim_end(c) + (ev.event == "conversation_analysed" and 1 or 0)
        local parts = { '{"event":', encode(ev.event), ',"timestamp":"', iso(at), '","call":' }
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

function _M.create_webhook(_, b)
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

function _M.list_webhooks(_, _, args)
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

_M.get_webhook = validate.get_by_id("webhooks", "Webhook", webhook_obj)

function _M.update_webhook(id, b)
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

_M.delete_webhook = validate.delete_by_id("webhooks", "webhook_list", "Webhook", rebuild_hooked)

_M.fire = fire

return _M
