-- client.calls' own verbs: create (never a second call after an ambiguous failure), wait, stats.
local core      = require "sigmamind.core"
local task      = require "sigmamind.task"
local reconcile = require "sigmamind.reconcile"
local records   = require "sigmamind.records"
local resource  = require "sigmamind.resource"
local describe  = require "sigmamind.describe"

local error, type, pairs, tostring, getmetatable, require =
      error, type, pairs, tostring, getmetatable, require
local math_min, math_huge, string_format = math.min, math.huge, string.format

local Calls = resource.methods.calls
local check_self, check_params, check_id = resource.check_self, resource.check_params, resource.check_id
local check_opts, responses = resource.check_opts, resource.responses
local FINAL = records.FINAL

-- calls:create never leads to a second call after an ambiguous failure: it first looks for the
-- call the lost request may have made (sigmamind.reconcile) and returns it marked
-- `reconciled = true`. It is the call most scripts are made of, so the generic method's steps
-- (check_self, check_params, resolve_plan, request, finish) are written out here: as five calls
-- they were 8 % of a create's instructions.
local remember, remember_id = reconcile.remember, reconcile.remember_id
local enter, register, leave = reconcile.enter, reconcile.register, reconcile.leave
local resolve_plan, norm_call = resource.resolve_plan, records.norm_call
local task_request, task_current = task.request, task.current
local calls_meta = resource.meta.calls
local core_time, null = core.time, core.null
function Calls.create(self, params, opts)
  if getmetatable(self) ~= calls_meta then check_self(self, "calls", "create") end
  if params ~= nil and type(params) ~= "table" then check_params(params, "calls", "create") end
  if opts ~= nil then check_opts(opts, "calls", "create") end
  local client = self._client
  if client._closed then error("sigmamind: attempt to use a closed client", 2) end
  local body = params
  if params ~= nil and params.build ~= nil then      -- a plan's build comes through its metatable
    local perr
    body, perr = resolve_plan(params, "calls.create")
    if body == nil and perr then return nil, perr end
  end
  local s = client._sched
  local call, err, meta, intent, from, agent, vars
  local tasked = s ~= nil and task_current(s)
  -- this host's clock before the first attempt, where reconciliation's window starts: taken after
  -- the failure (less the attempts' time), it moved on by whatever ran in between (an on_event,
  -- another task)
  local t0 = core_time()
  if tasked then
    -- other tasks run while this one waits: registered (reconcile.enter) while in flight
    if body ~= nil then intent = enter(client, body, t0) end       -- body: nil or a table
    call, err, meta = task_request(s, self._c, "calls.create", nil, body, opts)
  else
    -- blocking: no other create of this client runs until it returns, so it is registered only if
    -- it fails ambiguously, with what the body said when it was sent
    if body ~= nil then from, agent, vars = body.fromPhoneNumber, body.agentId, body.dynamicVariables end
    call, err, meta = self._c:request("calls.create", nil, body, opts)
  end
  if call ~= nil then
    if type(call) == "table" and type(call.callId) == "string" then
      norm_call(call)
      if meta then responses[call] = meta end
      remember_id(client, call.callId)
      if intent then leave(client, intent) end
      return call
    end
    -- a 2xx that says nothing usable (no body, null, no callId) most likely placed the call: as
    -- ambiguous as a lost answer, so looked for like one, never returned as if it were a call
    local what = type(call) == "table" and "no callId" or call == true and "no body"
                 or call == null and "null" or "a JSON " .. type(call)
    err = core.error{ kind = "decode", sent = true, retryable = false, method = "POST", path = "/v1/calls",
      message = "the server answered success without a call (" .. what .. "): it may have been placed" }
  end
  if not reconcile.ambiguous(err) then
    if intent then leave(client, intent) end
    return nil, err
  end
  if not tasked and body ~= nil then
    intent = register(client, { from = from, agent = agent, vars = vars, t0 = t0, slot = false })
  end
  if client._reconcile == false then return nil, err end  -- its intent stays: may own look-alikes
  local found, why = reconcile.find(self, body, t0, core_time, function(sec) client:_sleep(sec) end,
                                    intent)
  if not found then
    err.reconcile = why
    return nil, err
  end
  found.reconciled = true
  remember(client, found.callId)
  return found
end

-- calls:wait: poll with backoff until a final status.
function Calls.wait(self, id, opts)
  check_self(self, "calls", "wait"); id = check_id(id, "calls", "wait")
  if opts ~= nil and type(opts) ~= "table" then
    error("sigmamind: calls:wait: expected an options table, got " .. describe.value(opts), 2)
  end
  opts = opts or {}
  local timeout = opts.timeout or 600
  local interval = opts.interval or 0.5
  local max_interval = opts.max_interval or 5
  -- not "x < 0" alone: NaN passes that test, and a NaN wait never ends (in a task, it stopped every
  -- timer)
  local function seconds(name, v, least, open, endless)
    if type(v) ~= "number" or v ~= v or (v == math_huge and not endless) or v < least
       or (open and v == least) then
      error(string_format("sigmamind: calls:wait: %s: expected a %snumber of seconds %s %g, got %s", name,
                          endless and "" or "finite ", open and ">" or ">=", least, describe.value(v)), 3)
    end
  end
  for k in pairs(opts) do
    if k ~= "timeout" and k ~= "interval" and k ~= "max_interval" then
      error("sigmamind: calls:wait: unknown option '" .. tostring(k) ..
            "' (expected timeout, interval, max_interval)", 2)
    end
  end
  seconds("timeout", timeout, 0, false, true)         -- math.huge: no timeout
  seconds("interval", interval, 0, true)
  seconds("max_interval", max_interval, 0, true)
  local client = self._client
  local start = core.now()
  local polls = 0
  local last = false       -- the sleep just done was the one to the timeout: this poll is the last
  while true do
    local call, err = self:get(id)
    polls = polls + 1
    if not call then return nil, err end
    if FINAL[call.status] then return call end
    local left = timeout - (core.now() - start)
    -- not "left <= 0" alone: ngx.sleep can come back a little early (nginx's cached clock) and
    -- rounds a wait under a millisecond to none, so near the timeout that test alone polled again
    -- and again
    if left <= 0 or last then
      return nil, core.error{
        kind = "timeout", method = "GET", path = "/v1/calls/" .. id, attempts = polls,
        elapsed = core.now() - start, retryable = true, sent = true, call = call,
        message = string_format("call %s did not reach a final status within %g s (last status: %s)",
                                id, timeout, tostring(call.status)) }
    end
    if left <= interval then last = true end
    client:_sleep(math_min(interval, left))
    interval = math_min(interval * 1.5, max_interval)
  end
end

-- observe.lua computes it; loaded on first use
function Calls.stats(self, q)
  check_self(self, "calls", "stats")
  return require("sigmamind.observe").stats(self, q)
end

return Calls
