-- Seeded calls (POST /_sandbox/seed): ended history older than every call held, either uniform (for paging
-- and benchmarks) or a realistic mix of outcomes, durations, agents and variables (for stats and reports).
local store = require "sandbox.store"

local next_id, CFG, OUTCOMES = store.next_id, store.CFG, store.OUTCOMES
local RING, NORMAL_USER, NORMAL_AGENT = store.RING, store.NORMAL_USER, store.NORMAL_AGENT
local string_format, math_floor, math_sqrt, math_log, math_exp, math_cos, math_pi =
  string.format, math.floor, math.sqrt, math.log, math.exp, math.cos, math.pi
local ipairs = ipairs
local S = store.S

local _M = {}

-- calls[1..n], created one second apart, ending at `newest`; each ended normally after 20 s
function _M.uniform(calls, n, newest, num, agent)
  local by_id, speed, vars = S.calls_by_id, CFG.speed, {}
  local base = newest - n
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
end

-- outcomes by cumulative share in thousandths: about three calls in four connect
local MIX = {
  { 380, OUTCOMES.user_ended_call }, { 680, OUTCOMES.agent_ended_call }, { 760, OUTCOMES.voicemail_detected },
  { 880, OUTCOMES.dial_no_answer }, { 930, OUTCOMES.dial_busy }, { 960, OUTCOMES.dial_user_declined },
  { 985, OUTCOMES.dial_invalid_destination }, { 1000, OUTCOMES.error_telephony },
}

-- agents by cumulative share; the two besides the ready one are added to the account when missing
local AGENTS = { { 500, store.SEED_AGENT }, { 800, "agent_sales01", "Sales Agent" },
                 { 1000, "agent_support01", "Support Agent" } }

local AREAS = { 212, 213, 305, 312, 415, 512, 617, 646, 702, 713, 718, 805, 917 }

-- dynamic variables: a fixed pool shared by the calls (nothing writes a call's variables)
local VARS = {}
do
  local first = { "Ana", "Ben", "Chloe", "Diego", "Emma", "Farah", "Grace", "Hugo", "Ines", "Jamal", "Kenji",
                  "Lena", "Mateo", "Nora", "Omar", "Priya" }
  local last = { "Lopez", "Smith", "Nguyen", "Okafor", "Rossi", "Schmidt", "Kim", "Haddad" }
  local plans = { "Basic", "Premium", "Enterprise" }
  for _, f in ipairs(first) do
    for _, l in ipairs(last) do
      for _, p in ipairs(plans) do VARS[#VARS + 1] = { customer_name = f .. " " .. l, plan_type = p } end
    end
  end
end
local NO_VARS = {}

local PM_M, PM_A = 2147483647, 48271   -- Park-Miller, as chaos mode: the same seed, the same calls

local function pick(list, k)
  for i = 1, #list do
    if k < list[i][1] then return list[i] end
  end
  return list[#list]
end

-- calls[1..n] ending at `newest`, a few seconds to a minute apart (about 180 an hour), drawn from `seed`.
-- Their times are history: a seeded call ended long ago, so its status changes are its own simulated times
-- whatever --speed says.
function _M.realistic(calls, n, newest, num, seed)
  local x = seed
  local function rnd()          -- in (0, 1)
    x = x * PM_A % PM_M         -- < 2^47: exact in a double
    return x / PM_M
  end
  local agents = {}
  for i, a in ipairs(AGENTS) do
    local agent = S.agents[a[2]]
    if not agent then
      agent = { id = a[2], name = a[3], status = "Live" }
      S.agents[agent.id] = agent
      S.agent_list[#S.agent_list + 1] = agent
    end
    agents[i] = { a[1], agent }
  end
  local by_id, created = S.calls_by_id, newest
  for i = n, 1, -1 do
    local oc = pick(MIX, rnd() * 1000)[2]
    local dur = 0
    if oc.voicemail then
      dur = 20 + math_floor(rnd() * 30)
    elseif oc.talk > 0 then
      if rnd() < 0.07 then
        -- the long tail: 5 to 15 minutes, most of them near 5
        local v = rnd()
        dur = 300 + math_floor(600 * v * v)
      else
        -- log-normal around 100 s: nine in ten of these between 30 s and 4 min
        local z = math_sqrt(-2 * math_log(rnd())) * math_cos(2 * math_pi * rnd())
        dur = math_floor(100 * math_exp(0.55 * z) + 0.5)
        if dur < 20 then dur = 20 elseif dur > 600 then dur = 600 end
      end
    end
    local digits = 2000000 + math_floor(rnd() * 7999999)
    if math_floor(digits / 10000) == 555 then digits = digits + 10000 end   -- not a magic destination
    local to = string_format("+1%d%07d", AREAS[math_floor(rnd() * #AREAS) + 1], digits)
    local vars = rnd() < 0.1 and NO_VARS or VARS[math_floor(rnd() * #VARS) + 1]
    local agent = pick(agents, rnd() * 1000)[2]
    local t1 = created + RING
    local c = { id = next_id("call_"), created = created, t1 = t1, t2 = t1 + dur, to = to, num = num,
                agent = agent, vars = vars, oc = oc, dur = dur }
    calls[i] = c
    by_id[c.id] = c
    created = created - 2 - math_floor(rnd() * 37)
  end
end

return _M
