-- Sandbox admin routes (/_sandbox/ reset, state, seed, clock, deliveries, echo) and the ticker.
local ngx = ngx
local util = require "sandbox.util"
local store = require "sandbox.store"
local validate = require "sandbox.validate"
local campaigns = require "sandbox.campaigns"
local webhooks = require "sandbox.webhooks"
local seed = require "sandbox.seed"

local null, iso, array = util.null, util.iso, util.array
local bad = validate.bad
local now, heap_pop, CFG = store.now, store.heap_pop, store.CFG
local SEED_NUMBER, SEED_AGENT = store.SEED_NUMBER, store.SEED_AGENT
local advance_all, fire = campaigns.advance_all, webhooks.fire
local type, ipairs, tonumber, next, collectgarbage = type, ipairs, tonumber, next, collectgarbage
local math_min = math.min
local ngx_var, ngx_req = ngx.var, ngx.req
local S = store.S

local A = {}

-- the 20 ms timer's work, and a moved clock's: due webhook events and campaign dials, in order
local function tick()
  local t = now()
  local h = S.heap
  while h[1] and h[1].due <= t do fire(heap_pop(h)) end
  advance_all(t)
  -- dials made just now may have events that are already due (after a clock jump)
  while h[1] and h[1].due <= t do fire(heap_pop(h)) end
end

A.tick = tick

function A.ping() return 200, '{"ok":true}' end

-- The state dropped is collected now, in full: otherwise the incremental collector sweeps it during whatever
-- requests come next, and a benchmark that resets between scenarios charges one scenario for another's garbage.
function A.reset()
  store.reset()
  collectgarbage("collect")
  return 200, { ok = true }
end

function A.state()
  local armed = {}
  for i, f in ipairs(S.faults) do armed[i] = { method = f.method, path = f.path, fault = f.fault, count = f.count } end
  local counters, chaos_counts, chaos = S.counters, S.chaos_counts, S.chaos
  return 200, {
    requests = next(counters) and counters or {}, connections = S.nconns, calls = #S.calls, campaigns = #S.campaign_list,
    webhooks = #S.webhook_list, phoneNumbers = #S.number_list, agents = #S.agent_list,
    deliveries = #S.deliveries, pendingEvents = #S.heap, faults = array(armed),
    clock = iso(now()), clockOffset = S.offset, speed = CFG.speed, campaignUpload = CFG.campaign_upload,
    chaos = next(chaos_counts) and chaos_counts or {},
    chaosMode = chaos and { rate = chaos.rate, faults = array(chaos.faults), seed = chaos.seed } or null,
  }
end

local MIXES = { uniform = seed.uniform, realistic = seed.realistic }

function A.seed(_, b)
  local n = b.calls
  if type(n) ~= "number" or n % 1 ~= 0 or n < 1 or n > 1000000 then
    return bad("calls", "expected an integer from 1 to 1000000", n)
  end
  -- realistic by default, so stats and reports over a fresh sandbox look like calls; uniform for paging
  local mix = b.mix == nil and "realistic" or b.mix
  if type(mix) ~= "string" or not MIXES[mix] then
    return bad("mix", "expected 'uniform' or 'realistic'", mix)
  end
  local draws = b.seed
  if draws ~= nil and (mix ~= "realistic" or type(draws) ~= "number" or draws % 1 ~= 0 or draws < 1
                       or draws > 2147483646) then
    return bad("seed", mix == "realistic" and "expected an integer from 1 to 2147483646" or
                       "expected no seed without mix 'realistic'", draws)
  end
  local num = S.numbers[SEED_NUMBER] or S.number_list[1]
  if not num then return 400, "calls: expected a phone number on the account to seed calls from, got none" end
  local old = S.calls
  local t = now()
  -- the newest seeded call an hour older than the oldest call held (or than now)
  local newest = (old[1] and math_min(old[1].created, t) or t) - 3600
  local calls = {}
  if mix == "realistic" then
    seed.realistic(calls, n, newest, num, draws or 1)
  else
    seed.uniform(calls, n, newest, num, S.agents[SEED_AGENT])
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
  if skew ~= nil then S.date_skew = skew end
  if s ~= nil then
    S.offset = S.offset + s
    tick()
  end
  return 200, { now = iso(now()), offset = S.offset, dateSkew = S.date_skew }
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

return A
