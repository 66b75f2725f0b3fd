-- The sandbox's state (worker-level Lua tables), clock, ids, and making a Call with its events.
local ngx = ngx
local string_format, string_match, string_sub = string.format, string.match, string.sub
local table_insert, math_floor, math_random = table.insert, math.floor, math.random
local tonumber, pairs = tonumber, pairs
local ngx_now = ngx.now

local _M = {}

local CFG = { api_key = "sk_test_sandbox", speed = 1, base_url = "http://127.0.0.1", allow_remote_webhooks = false,
              campaign_upload = "both" }
_M.CFG = CFG

local SEED_NUMBER, SEED_AGENT = "+14157774444", "agent_abc123"
_M.SEED_NUMBER, _M.SEED_AGENT = SEED_NUMBER, SEED_AGENT
local RING = 1 -- seconds a call stays "scheduled", at --speed 1
_M.RING = RING

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
_M.NORMAL_USER, _M.NORMAL_AGENT = NORMAL_USER, NORMAL_AGENT
-- every outcome by its terminationReason (the seed draws from them)
_M.OUTCOMES = { user_ended_call = NORMAL_USER, agent_ended_call = NORMAL_AGENT }
for _, oc in pairs(OUTCOMES) do _M.OUTCOMES[oc.reason] = oc end

local function outcome_for(to)
  local magic = string_match(to, "^%+1%d%d%d555(01%d%d)$")
  local oc = magic and OUTCOMES[magic]
  if oc then return oc end
  local last = tonumber(string_sub(to, -1)) or 0
  return last % 2 == 0 and NORMAL_USER or NORMAL_AGENT
end

----------------------------------------------------------------------------------------------------------------------
-- state: the sandbox runs exactly one nginx worker, so these tables are the whole truth. All that
-- /_sandbox/reset clears is a field of S; S itself is never replaced (reset refills it), so each
-- module keeps it in a module-level local and reads the current state through it.
local S = {}
_M.S = S
local seq = 0       -- id counter; never reset so that ids stay unique for the life of the process

local function now() return ngx_now() + S.offset end
_M.now = now

local function next_id(prefix)
  seq = seq + 1
  -- random digits in the middle: LuaJIT hashes strings by sampling a few bytes, so counters alone collide
  return string_format("%s%06x%08x", prefix, math_random(0, 0xffffff), seq)
end
_M.next_id = next_id

function _M.reset()
  for k in pairs(S) do S[k] = nil end
  local agent = { id = SEED_AGENT, name = "Sandbox Agent", status = "Live" }
  local number = { number = SEED_NUMBER, provider = "twilio", inbound = SEED_AGENT, outbound = SEED_AGENT,
                   active = true, name = "Sandbox Line" }
  S.agents, S.agent_list = { [SEED_AGENT] = agent }, { agent }
  S.numbers, S.number_list = { [SEED_NUMBER] = number }, { number }
  S.calls, S.calls_by_id = {}, {}
  S.campaigns, S.campaign_list, S.campaign_names = {}, {}, {}
  S.webhooks, S.webhook_list, S.hooked = {}, {}, {}
  S.heap = {}           -- pending webhook events, a min-heap by due time
  S.deliveries = {}
  S.faults = {}         -- armed faults
  S.echo, S.echo_fails = {}, {}
  S.counters = {}       -- "METHOD /route/{template}" -> n
  -- nginx connection serial -> true, for the API requests since the last reset
  S.conns, S.nconns = {}, 0
  S.chaos = nil         -- nil when chaos mode is off (the hot path tests only this); see faults.lua
  S.chaos_counts = {}   -- "METHOD /route/{template}" -> fault -> n, chaos's faults since the reset
  S.offset = 0          -- sandbox clock minus wall clock, seconds
  S.date_skew = 0       -- the Date header's clock minus the sandbox clock (a misset front end)
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

function _M.heap_pop(h)
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
-- calls: made here, by POST /v1/calls and by campaign dials alike, with their webhook events queued
function _M.call_status(c, t)
  if t < c.t1 then return "scheduled" end
  if t < c.t2 then return "in_progress" end
  return c.oc.final
end

-- A call's own times are simulated seconds, whatever --speed: it starts RING s after its createdAt (the sandbox
-- clock) and a connected one talks c.dur s (seeded calls) or its outcome's talk. --speed shortens only how long
-- the sandbox takes to move it on (t1, t2: when its status changes, on the sandbox clock), so that a call sped
-- through in 0.2 s still reports the 20 s it lasted, with endTime - startTime = duration.
function _M.sim_start(c) return c.created + RING end

function _M.sim_duration(c)
  local oc = c.oc
  if oc.talk == 0 then return 0 end
  return c.dur or oc.talk
end

function _M.sim_end(c) return c.created + RING + _M.sim_duration(c) end

function _M.new_call(num, agent, to, vars, created, camp)
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

return _M
