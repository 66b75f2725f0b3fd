-- Fault soak: SOAK_OPS operations (default 100,000) over every endpoint, through tasks, against a
-- sandbox that faults 10 % of the requests at random; then the checks. `make soak` runs it.
--
--   SOAK_OPS=5000 make soak          a short run (CI)
--   SOAK_CONCURRENCY (32)  tasks in flight     SOAK_RATE (0.1)   the share of requests faulted
--   SOAK_SEED (1)          the ops and faults  SOAK_SPEED (500)  the sandbox's --speed
--
-- Checks, each a violation (exit 1) when it fails:
--   1. no crash: the script reaches its report (a crash of the module kills the process: no
--      report, exit != 0);
--   2. every operation ended in a value or a typed error (sigmamind.is_error, a documented kind);
--      none raised;
--   3. no POST /v1/calls retried unsafely: every retry event of a create follows a 429 or a network
--      error with no answer that never reached the server; the sandbox received exactly the create
--      attempts the client made (on_event "request" events) minus those never sent; each create op
--      made exactly one first attempt; the client's view of each fault agrees with the sandbox's
--      chaos counts; no create intent (a unique dynamic variable per op) is found on two calls in
--      the sandbox; every reconciled call is the op's own;
--   4. RSS (VmRSS) grows less than 5 % after the warm-up (the first 10 % of the ops, at least 5000
--      or half of a shorter run): the median of the last quarter of the samples taken after it
--      against that of the first.
-- luacheck: std lua54
local sigmamind = require "sigmamind"
local sandbox = require "support.sandbox"

local io_open, io_write, os_getenv, os_exit = io.open, io.write, os.getenv, os.exit
local pairs, ipairs, pcall, type, tostring, tonumber, next = pairs, ipairs, pcall, type, tostring, tonumber, next
local table_pack, table_unpack = table.pack, table.unpack
local string_format, string_match, table_concat, table_sort = string.format, string.match, table.concat, table.sort
local co_running, math_random, math_floor = coroutine.running, math.random, math.floor
local now = require("sigmamind.core").now

local function env_num(name, default)
  local v = os_getenv(name)
  if v == nil or v == "" then return default end
  local n = tonumber(v)
  if not n or n <= 0 then
    io.stderr:write("soak: ", name, ": expected a positive number, got '", v, "'\n")
    os_exit(2)
  end
  return n
end

local OPS = math_floor(env_num("SOAK_OPS", 100000))
local CONCURRENCY = math_floor(env_num("SOAK_CONCURRENCY", 32))
local RATE = env_num("SOAK_RATE", 0.1)
local SEED = math_floor(env_num("SOAK_SEED", 1))
local SPEED = env_num("SOAK_SPEED", 500)
local FAULTS = { "429", "500", "503", "reset", "slow=50", "truncate", "garbage", "lost" }
local KINDS = { invalid = true, auth = true, not_found = true, rejected = true, rate_limited = true, server = true,
                network = true, timeout = true, decode = true, too_large = true }
local CREATE = "POST /v1/calls"

local violations = {}
local function violation(fmt, ...)
  local msg = string_format(fmt, ...)
  if #violations < 200 then violations[#violations + 1] = msg end
  violations.n = (violations.n or 0) + 1
end

local function rss_kb()
  local f = assert(io_open("/proc/self/status", "r"))
  local s = f:read("a")
  f:close()
  return tonumber(string_match(s, "VmRSS:%s*(%d+)"))
end

local function settle()
  collectgarbage("collect")
  collectgarbage("collect")
  return rss_kb(), collectgarbage("count")
end

local function inc(t, k, n) t[k] = (t[k] or 0) + (n or 1) end

----------------------------------------------------------------------------------------------------
-- on_event accounting, per method and route template. ev.path has phone numbers masked
-- (+1415***4444) and ids as sent; the query string is not part of it.
local ROUTES = {
  { "^/v1/calls$", "/v1/calls" }, { "^/v1/calls/[^/]+$", "/v1/calls/{callId}" },
  { "^/v1/campaigns$", "/v1/campaigns" }, { "^/v1/campaigns/[^/]+$", "/v1/campaigns/{campaignId}" },
  { "^/v1/phone%-numbers$", "/v1/phone-numbers" }, { "^/v1/phone%-numbers/import$", "/v1/phone-numbers/import" },
  { "^/v1/phone%-numbers/[^/]+$", "/v1/phone-numbers/{phoneNumber}" },
  { "^/v1/webhooks$", "/v1/webhooks" }, { "^/v1/webhooks/[^/]+$", "/v1/webhooks/{webhookId}" },
  { "^/v1/agents$", "/v1/agents" }, { "^/v1/agents/[^/]+$", "/v1/agents/{agentId}" },
}
local route_cache = {}    -- "METHOD path" -> "METHOD template"; paths with ids are not cached (unbounded)
local function route_of(method, path)
  path = string_match(path, "^[^?]*")
  local k = method .. " " .. path
  local r = route_cache[k]
  if r then return r end
  for _, p in ipairs(ROUTES) do
    if string_match(path, p[1]) then
      r = method .. " " .. p[2]
      if p[2] == path then route_cache[k] = r end
      return r
    end
  end
  violation("on_event: a path that is no route: %s %s", method, path)
  return k
end

local attempts = {}            -- route -> "request" events
local responses = {}           -- route -> status or kind -> n (the client's view of every attempt's outcome)
local ev_count = { request = 0, response = 0, retry = 0, give_up = 0 }
local create_net_retries = 0   -- create retries after a network error with no answer (never sent: not received)
local op_of = {}               -- task coroutine -> the op it runs now

local function on_event(ev)
  local t = ev.type
  ev_count[t] = (ev_count[t] or 0) + 1
  local route = route_of(ev.method, ev.path)
  if t == "request" then
    inc(attempts, route)
    if route == CREATE then
      local op = op_of[co_running()]
      if not op then violation("a POST /v1/calls request event outside any operation")
      elseif ev.attempt == 1 then op.first = op.first + 1
      else op.retries = op.retries + 1 end
    end
  elseif t == "response" then
    local per = responses[route]
    if not per then per = {} responses[route] = per end
    -- "201", "rate_limited 429", "server 500", "decode 200", "network": a failure's kind, a status
    local k = ev.kind
    if ev.status then k = k and (k .. " " .. ev.status) or tostring(ev.status) end
    inc(per, k or "?")
  elseif t == "retry" and route == CREATE then
    -- allowed: a 429 (nothing was created), or a network error with no answer that never went out
    if ev.status == nil and ev.kind == "network" then create_net_retries = create_net_retries + 1
    elseif not (ev.status == 429 and ev.kind == "rate_limited") then
      violation("unsafe retry of POST /v1/calls after attempt %s: status %s, kind %s",
                tostring(ev.attempt), tostring(ev.status), tostring(ev.kind))
    end
  end
end

----------------------------------------------------------------------------------------------------
-- the sandbox
local sb = sandbox.start{ speed = SPEED }
local function stop() if sb then sb:stop() sb = nil end end
local function admin(method, path, body)
  local status, v, raw = sb:request(method, path, body)
  if status ~= 200 then
    stop()
    error(string_format("soak: %s %s: %s %s", method, path, tostring(status), tostring(raw)), 2)
  end
  return v
end

local NUMBER, AGENT = sb.number, sb.agent
local client = sigmamind.new{ api_key = sb.key, base_url = sb.url, on_event = on_event, timeout = 10 }

----------------------------------------------------------------------------------------------------
-- the operations. Pools of ids (bounded) feed gets, updates and deletes; an op on an empty pool
-- creates instead.
local POOL_CAP = { calls = 256, campaigns = 48, numbers = 24, webhooks = 12 }
local pools = { calls = {}, campaigns = {}, numbers = {}, webhooks = {} }
local function pool_add(name, id)
  local p = pools[name]
  if #p >= POOL_CAP[name] then p[math_random(#p)] = id else p[#p + 1] = id end
end
local function pool_pick(name)
  local p = pools[name]
  if #p == 0 then return nil end
  return p[math_random(#p)]
end
local function pool_take(name)
  local p = pools[name]
  local n = #p
  if n == 0 then return nil end
  local i = math_random(n)
  local id = p[i]
  p[i] = p[n]
  p[n] = nil
  return id
end
local function pool_full(name) return #pools[name] >= POOL_CAP[name] end

local seqno = 0
local function digits7() return string_format("%07d", math_random(0, 9999999)) end

local O = {}
function O.calls_create(op)
  local v, err = client.calls:create{ fromPhoneNumber = NUMBER, toPhoneNumber = "+1415" .. digits7(),
                                      agentId = AGENT, dynamicVariables = { soak_op = op.tag, n = op.i } }
  if v then
    if type(v.dynamicVariables) ~= "table" or v.dynamicVariables.soak_op ~= op.tag then
      violation("op %d: calls:create returned %s call %s, made for %s", op.i, v.reconciled and "a reconciled" or "a",
                tostring(v.callId), tostring(type(v.dynamicVariables) == "table" and v.dynamicVariables.soak_op))
    end
    op.reconciled = v.reconciled == true
    pool_add("calls", v.callId)
  end
  return v, err
end
function O.calls_get() local id = pool_pick("calls"); if not id then return O.calls_create end
  return client.calls:get(id) end
function O.calls_list() return client.calls:list{ page = 0, size = math_random(1, 20) } end
function O.calls_delete() local id = pool_take("calls"); if not id then return O.calls_create end
  return client.calls:delete(id) end
function O.calls_wait() local id = pool_pick("calls"); if not id then return O.calls_create end
  return client.calls:wait(id, { timeout = 2, interval = 0.02, max_interval = 0.1 }) end

function O.campaigns_create()
  if pool_full("campaigns") then return O.campaigns_delete end
  seqno = seqno + 1
  local rows = {}
  for i = 1, math_random(1, 3) do rows[i] = { phoneNumber = "+1212" .. digits7(), name = "c" .. i } end
  local plan = sigmamind.campaign("soak " .. SEED .. "-" .. seqno):agent(AGENT):caller(NUMBER)
    :contacts(rows):concurrency(math_random(1, 2))
  if math_random() < 0.5 then plan:schedule{ date = "2099-01-01", time = "09:00", timezone = "UTC" } end
  local v, err = client.campaigns:create(plan)
  if v then pool_add("campaigns", v.campaignId) end
  return v, err
end
function O.campaigns_get() local id = pool_pick("campaigns"); if not id then return O.campaigns_create end
  return client.campaigns:get(id) end
function O.campaigns_list() return client.campaigns:list{ page = 0, size = math_random(1, 20) } end
function O.campaigns_update() local id = pool_pick("campaigns"); if not id then return O.campaigns_create end
  return client.campaigns:update(id, { campaignStatus = math_random() < 0.5 and "paused" or "live" }) end
function O.campaigns_pause() local id = pool_pick("campaigns"); if not id then return O.campaigns_create end
  return client.campaigns:pause(id) end
function O.campaigns_resume() local id = pool_pick("campaigns"); if not id then return O.campaigns_create end
  return client.campaigns:resume(id) end
function O.campaigns_delete() local id = pool_take("campaigns"); if not id then return O.campaigns_create end
  return client.campaigns:delete(id) end

function O.numbers_list() return client.phone_numbers:list{ page = 0, size = math_random(1, 20) } end
function O.numbers_provision()
  if pool_full("numbers") then return O.numbers_delete end
  local v, err = client.phone_numbers:provision{ countryCode = "US", areaCode = 628, friendlyName = "soak" }
  if v then pool_add("numbers", v.sipPhoneNumber or v.phoneNumber) end
  return v, err
end
function O.numbers_get() local id = pool_pick("numbers"); if not id then return O.numbers_provision end
  return client.phone_numbers:get(id) end
function O.numbers_update() local id = pool_pick("numbers"); if not id then return O.numbers_provision end
  return client.phone_numbers:update(id, { friendlyName = "soak " .. math_random(1000),
                                           outboundAgentId = math_random() < 0.5 and AGENT or sigmamind.null }) end
function O.numbers_delete() local id = pool_take("numbers"); if not id then return O.numbers_provision end
  return client.phone_numbers:delete(id) end

-- webhooks are inactive, with a non-loopback URL that the sandbox refuses without contacting it;
-- `active` is no field of the documented create, so it goes through the escape hatch
function O.webhooks_create()
  if pool_full("webhooks") then return O.webhooks_delete end
  local v, err = client.webhooks:create({ name = "soak", agentId = AGENT, url = "https://hooks.example.com/soak",
                                          events = { "conversation_ended" } }, { extra_body = { active = false } })
  if v then pool_add("webhooks", v.webhookId) end
  return v, err
end
function O.webhooks_list() return client.webhooks:list{ page = 0, size = math_random(1, 20),
                                                        active = math_random() < 0.5 } end
function O.webhooks_get() local id = pool_pick("webhooks"); if not id then return O.webhooks_create end
  return client.webhooks:get(id) end
function O.webhooks_update() local id = pool_pick("webhooks"); if not id then return O.webhooks_create end
  return client.webhooks:update(id, { name = "soak " .. math_random(1000) }) end
function O.webhooks_enable() local id = pool_pick("webhooks"); if not id then return O.webhooks_create end
  return client.webhooks:enable(id) end
function O.webhooks_disable() local id = pool_pick("webhooks"); if not id then return O.webhooks_create end
  return client.webhooks:disable(id) end
function O.webhooks_delete() local id = pool_take("webhooks"); if not id then return O.webhooks_create end
  return client.webhooks:delete(id) end

function O.agents_list() return client.agents:list{ page = 0, size = math_random(1, 20) } end
function O.agents_get() return client.agents:get(math_random() < 0.9 and AGENT or "agent_missing") end

local MIX = {   -- name, weight
  { "calls_create", 12 }, { "calls_get", 6 }, { "calls_list", 4 }, { "calls_delete", 3 }, { "calls_wait", 3 },
  { "campaigns_create", 3 }, { "campaigns_get", 3 }, { "campaigns_list", 2 }, { "campaigns_update", 2 },
  { "campaigns_pause", 2 }, { "campaigns_resume", 2 }, { "campaigns_delete", 2 },
  { "numbers_list", 2 }, { "numbers_provision", 2 }, { "numbers_get", 2 }, { "numbers_update", 2 },
  { "numbers_delete", 2 },
  { "webhooks_create", 2 }, { "webhooks_list", 2 }, { "webhooks_get", 2 }, { "webhooks_update", 2 },
  { "webhooks_enable", 2 }, { "webhooks_disable", 2 }, { "webhooks_delete", 2 },
  { "agents_list", 2 }, { "agents_get", 2 },
}
local WHEEL = {}
for _, m in ipairs(MIX) do
  assert(O[m[1]], m[1])
  for _ = 1, m[2] do WHEEL[#WHEEL + 1] = m[1] end
end
local NAME_OF = {}
for k, f in pairs(O) do NAME_OF[f] = k end

----------------------------------------------------------------------------------------------------
-- running them
local done, by_op, errors_by_kind, by_outcome = 0, {}, {}, {}
local creates, reconciled, create_values = 0, 0, 0
local errs_sample = {}
local unreconciled = {}    -- why an ambiguous create was not reconciled -> n

local function check_result(op, ok, ...)
  if not ok then
    violation("op %d (%s) raised: %s", op.i, op.name, tostring((...)))
    inc(by_outcome, "raised")
    return
  end
  local v, err = ...
  if v ~= nil then
    inc(by_outcome, "value")
    if op.name == "calls_create" then
      create_values = create_values + 1
      if op.reconciled then reconciled = reconciled + 1 end
    end
    return
  end
  if not sigmamind.is_error(err) then
    violation("op %d (%s) returned nil and an untyped error: %s (%s)", op.i, op.name, tostring(err), type(err))
    inc(by_outcome, "untyped")
  elseif not KINDS[err.kind] then
    violation("op %d (%s) returned an error of unknown kind '%s': %s", op.i, op.name, tostring(err.kind), tostring(err))
    inc(by_outcome, "unknown kind")
  else
    inc(by_outcome, "typed error")
    inc(errors_by_kind, err.kind)
    if err.reconcile then inc(unreconciled, (string_match(tostring(err.reconcile), "^[^:]*"))) end
    local k = op.name .. " " .. err.kind
    if not errs_sample[k] then errs_sample[k] = tostring(err) end
  end
end

local next_i, last_i = 0, 0
local trace, trace_every = {}, math.max(1, math_floor(OPS / 20))   -- RSS kB / Lua heap kB every 5 % of the ops
-- RSS after the warm-up, sampled every 2 % of the ops: growth is judged on the medians of the first
-- and last quarters, since glibc's allocator moves RSS up and down while a leak grows it steadily
local post, post_every, warm_done = {}, math.max(1, math_floor(OPS / 50)), math.huge
local function worker()
  local me = co_running()
  local op = { i = 0, first = 0, retries = 0 }
  op_of[me] = op
  while next_i < last_i do
    next_i = next_i + 1
    local name = WHEEL[math_random(#WHEEL)]
    local f = O[name]
    op.i, op.first, op.retries, op.reconciled = next_i, 0, 0, nil
    op.tag = SEED .. "-" .. next_i
    -- an op on an empty pool (or a full one) answers with the op to run instead
    local res = table_pack(pcall(f, op))
    while res[1] and type(res[2]) == "function" do
      f = res[2]
      res = table_pack(pcall(f, op))
    end
    op.name = NAME_OF[f]
    inc(by_op, op.name)
    check_result(op, table_unpack(res, 1, res.n))
    if op.name == "calls_create" then
      creates = creates + 1
      if op.first ~= 1 then violation("op %d: calls:create made %d first attempts (1 expected)", op.i, op.first) end
      if op.retries > 2 then violation("op %d: calls:create made %d retries (max_retries is 2)", op.i, op.retries) end
    elseif op.first ~= 0 then
      violation("op %d (%s) sent POST /v1/calls", op.i, op.name)
    end
    done = done + 1
    if done % trace_every == 0 then
      trace[#trace + 1] = string_format("%d:%d/%.0f", done, rss_kb(), collectgarbage("count"))
    end
    if done > warm_done and done % post_every == 0 then post[#post + 1] = rss_kb() end
  end
  op_of[me] = nil
end

local function run_until(n)
  last_i = n
  local tasks = {}
  for w = 1, CONCURRENCY do tasks[w] = client:spawn(worker) end
  client:run()
  for w = 1, #tasks do
    local ok, err = tasks[w]:join()
    if ok == nil and err ~= nil then violation("a worker task failed: %s", tostring(err)) end
  end
end

math.randomseed(SEED)
-- The collector starts each cycle as soon as the last one ends (pause 100, not Lua's 200, which
-- waits for the heap to double): a leak grows the live heap whatever the pause. With the default, a
-- burst's garbage can double the heap for a moment, and glibc keeps that high-water mark resident,
-- which the RSS check would take for growth.
collectgarbage("setpause", 100)
admin("POST", "/_sandbox/reset")
admin("POST", "/_sandbox/chaos", { rate = RATE, faults = FAULTS, seed = SEED })

local t0 = now()
-- the warm-up: the first 10 % of the ops, but at least 5000 (half of a shorter run): the heap only
-- reaches its working size once pools fill and every connection and transfer slot was remade
local warm = math.max(1, math_floor(OPS / 10), math.min(5000, math_floor(OPS / 2)))
run_until(warm)
local rss_warm, lua_warm = settle()
local t_warm = now()
warm_done = warm
run_until(OPS)
local rss_end, lua_end = settle()
post[#post + 1] = rss_end
local t1 = now()

admin("POST", "/_sandbox/chaos", { rate = 0 })
local st = admin("GET", "/_sandbox/state")

----------------------------------------------------------------------------------------------------
-- the checks
if done ~= OPS then violation("%d operations finished, %d expected", done, OPS) end
local finished = 0
for _, n in pairs(by_outcome) do finished = finished + n end
if finished ~= OPS then violation("%d operations have an outcome, %d expected", finished, OPS) end

-- 3a: every create attempt the client made reached the sandbox, and no other did
local sent_creates = (attempts[CREATE] or 0) - create_net_retries
local got_creates = st.requests[CREATE] or 0
if got_creates ~= sent_creates then
  violation("POST /v1/calls: the sandbox received %d, the client made %d attempts (%d never sent)",
            got_creates, attempts[CREATE] or 0, create_net_retries)
end

-- 3b: the client saw each fault the sandbox injected into a create, as that fault's outcome
local cc = st.chaos[CREATE] or {}
local cr = responses[CREATE] or {}
local function want(what, client_n, sandbox_n)
  if client_n ~= sandbox_n then
    violation("POST /v1/calls: %s: the client saw %d, the sandbox injected %d", what, client_n, sandbox_n)
  end
end
want("429 answers", cr["rate_limited 429"] or 0, cc["429"] or 0)
want("500 answers", cr["server 500"] or 0, cc["500"] or 0)
want("503 answers", cr["server 503"] or 0, cc["503"] or 0)
want("network errors (reset, truncate, lost)", cr.network or 0, (cc.reset or 0) + (cc.truncate or 0) + (cc.lost or 0))
want("decode errors (garbage)", cr["decode 200"] or 0, cc.garbage or 0)
if reconciled > (cc.lost or 0) then
  violation("POST /v1/calls: %d creates reconciled, but only %d requests were carried out without an answer",
            reconciled, cc.lost or 0)
end

-- 3c: no create intent is on two calls (read with chaos off, through the client, every page)
local seen, dup, tagged = {}, 0, 0
do
  local ok, err = pcall(function()
    for c in client.calls:each{ size = 100 } do
      local tag = type(c.dynamicVariables) == "table" and c.dynamicVariables.soak_op
      if tag then
        tagged = tagged + 1
        if seen[tag] then
          dup = dup + 1
          if dup <= 5 then violation("create intent %s was dialed twice: %s and %s", tag, seen[tag], c.callId) end
        end
        seen[tag] = c.callId
      end
    end
  end)
  if not ok then violation("listing the calls after the soak failed: %s", tostring(err)) end
end
seen = nil

-- 4: memory
local function median(t, a, b)
  local c = {}
  for i = a, b do c[#c + 1] = t[i] end
  table.sort(c)
  return c[math_floor((#c + 1) / 2)]
end
table.insert(post, 1, rss_warm)
local q = math.max(1, math_floor(#post / 4))
local rss_early, rss_late = median(post, 1, q), median(post, #post - q + 1, #post)
local growth = (rss_late - rss_early) / rss_early * 100
if growth >= 5 then
  violation("RSS grew %.1f %% after the warm-up (median of the first quarter of samples %d kB, of the last %d kB)",
            growth, rss_early, rss_late)
end

client:close()
stop()

----------------------------------------------------------------------------------------------------
-- the report
local function fmt_map(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table_sort(ks)
  local out = {}
  for _, k in ipairs(ks) do out[#out + 1] = k .. "=" .. tostring(math.tointeger(t[k]) or t[k]) end
  return "{" .. table_concat(out, ", ") .. "}"
end

local nerr = 0
for _, n in pairs(errors_by_kind) do nerr = nerr + n end
local injected, by_fault = 0, {}
for _, per in pairs(st.chaos) do for f, n in pairs(per) do injected = injected + n; inc(by_fault, f, n) end end
local requests = 0
for k, n in pairs(st.requests) do if not k:find(" /_sandbox", 1, true) then requests = requests + n end end

io_write(string_format("soak: %d ops in %.1f s (%.0f ops/s; warm-up %d ops, %.1f s), %d tasks, seed %d, " ..
  "sandbox --speed %g\n", OPS, t1 - t0, OPS / (t1 - t0), warm, t_warm - t0, CONCURRENCY, SEED, SPEED))
io_write("  ops by kind: ", fmt_map(by_op), "\n")
io_write("  outcomes: ", fmt_map(by_outcome), "\n")
io_write(string_format("  requests: the sandbox answered %d API requests; chaos injected %d faults (%.1f %%): %s\n",
  requests, injected, requests > 0 and injected / requests * 100 or 0, fmt_map(by_fault)))
io_write(string_format("  events: %s\n", fmt_map(ev_count)))
io_write(string_format("  POST /v1/calls: %d creates, %d attempts made, %d received by the sandbox, %d retried after " ..
  "an unsent request; outcomes seen %s; faults injected %s; %d values, %d of them reconciled; %d calls " ..
  "carry a create intent, %d intents twice\n", creates, attempts[CREATE] or 0, got_creates, create_net_retries,
  fmt_map(cr), fmt_map(cc), create_values, reconciled, tagged, dup))
local mism = {}
for k, n in pairs(st.requests) do
  if not k:find(" /_sandbox", 1, true) and (attempts[k] or 0) ~= n then mism[k] = (attempts[k] or 0) .. "/" .. n end
end
if next(mism) then
  io_write("  other routes where client attempts / sandbox requests differ (libcurl resends an idempotent request ",
           "by itself when a reused connection closes without an answer): ", fmt_map(mism), "\n")
end
if next(unreconciled) then io_write("  creates left unreconciled, by reason: ", fmt_map(unreconciled), "\n") end
io_write(string_format("  Lua heap %.0f -> %.0f kB; ops:RSS/heap %s\n", lua_warm, lua_end, table_concat(trace, " ")))
if os_getenv("SOAK_VERBOSE") then
  for k, v in pairs(errs_sample) do io_write("  sample ", k, ": ", v, "\n") end
end
io_write(string_format("soak: %d ops, %d errors by kind %s, RSS %d→%d kB (%+.1f %%, medians of the first and " ..
  "last quarters after the warm-up)\n", OPS, nerr, fmt_map(errors_by_kind), rss_early, rss_late, growth))
if violations.n then
  io_write(string_format("soak: FAILED, %d violation(s):\n", violations.n))
  for _, v in ipairs(violations) do io_write("  - ", v, "\n") end
  if violations.n > #violations then io_write("  ... and ", violations.n - #violations, " more\n") end
  os_exit(1)
end
io_write("soak: OK\n")
os_exit(0)
