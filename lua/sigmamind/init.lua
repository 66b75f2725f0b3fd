-- lua-sigmamind: the public face: sigmamind.new{} and the resource namespaces over the C core.

--- Place and track outbound phone calls handled by SigmaMind AI voice agents.
--
-- `require "sigmamind"` returns this module. @{new} makes a client; the client's namespaces
-- (@{calls}, @{campaigns}, @{phone_numbers}, @{webhooks}, @{agents}) hold one method per API endpoint, generated
-- from the C core's endpoint table, so field names are the API's own (`fromPhoneNumber`, `dynamicVariables`, ...).
-- Records come back as plain tables.
--
-- Misuse (wrong argument types, unknown options, a closed client) raises. Everything the world can do returns
-- `nil, err`, where `err` is an @{err|error object}. Iterators (`each`, `pages`) raise the error object itself,
-- so `pcall` around a loop gets the typed table.
--
-- Retries: GET, PATCH and DELETE are retried on network errors, timeouts, 408, 429 and 5xx, with backoff
-- 0.5 s·2ⁿ capped at 8 s plus jitter, `Retry-After` honoured (capped at 60 s) and `deadline` bounding the whole
-- operation. A POST creates something (a second `POST /v1/calls` rings a person twice), so it is retried only
-- when the connection was never made or the server answered 429; otherwise `err.sent == true` and you decide.
--
-- Inside one of the client's tasks (@{Client:spawn}, @{map}) the same methods yield to the client's curl multi
-- loop instead of blocking. Inside nginx (OpenResty) the client uses cosockets by itself: see @{sigmamind.ngx}.
-- @module sigmamind
-- @usage
-- local sigmamind = require "sigmamind"
-- local client = sigmamind.new{ api_key = os.getenv("SIGMAMIND_API_KEY") }
-- local call, err = client.calls:create{ fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445",
--                                        agentId = "agent_abc123", dynamicVariables = { customer_name = "Ada" } }
-- if not call then error(tostring(err)) end
-- local done = assert(client.calls:wait(call.callId, { timeout = 600 }))
-- print(done.status, done.duration)
local core  = require "sigmamind.core"
local pager = require "sigmamind.pager"
local build = require "sigmamind.build"
local csv   = require "sigmamind.csv"
local webhook = require "sigmamind.webhook"
local task  = require "sigmamind.task"
local upload = require "sigmamind.upload"

local error, type, pairs, ipairs, tostring, setmetatable, getmetatable, pcall =
      error, type, pairs, ipairs, tostring, setmetatable, getmetatable, pcall
local os_getenv, math_min, string_format, string_gsub, table_concat, table_sort =
      os.getenv, math.min, string.format, string.gsub, table.concat, table.sort

local _M = {
  _VERSION = "lua-sigmamind " .. core._VERSION,
  null     = core.null,
  csv      = csv,
  webhook  = webhook,
  campaign = build.campaign,
  call     = build.call,
  error    = core.error,
  is_error = core.is_error,
}

local FINAL = { ended = true, not_connected = true, error = true }
--- The final call statuses, after which a call changes no more: `ended`, `not_connected` and `error`.
-- @{calls:wait} returns as soon as the call reaches one of them.
_M.final_statuses = { "ended", "not_connected", "error" }

--- Sends an explicit JSON `null`, e.g. `client.phone_numbers:update(num, { outboundAgentId = sigmamind.null })`
-- to unassign a number's outbound agent. A `null` in a response is decoded as this value too (it is `cjson.null`).
-- @constant null

--- `"lua-sigmamind "` followed by the C core's version.
-- @constant _VERSION

--- Start a campaign plan: the same function as @{sigmamind.build.campaign}.
-- @function campaign
-- @tparam[opt] string name the campaign name
-- @treturn sigmamind.build.Campaign a plan for @{campaigns:create}

--- Make a call plan: the same function as @{sigmamind.build.call}.
-- @function call
-- @tparam[opt] table fields `from`, `to`, `agent`, `variables` or the API's own names
-- @treturn sigmamind.build.Call a plan for @{calls:create}

--- Make an error object: a copy of `fields` with the error metatable (its `__tostring`), as the client makes
-- them. Useful to return errors of the same shape from your own wrappers.
-- @function error
-- @tparam table fields at least `kind` (a string); see @{err} for the others
-- @treturn err
-- @raise when `fields.kind` is not a string

--- Is `v` an error object (made by the client or by @{error})?
-- @function is_error
-- @param v any value
-- @treturn boolean

--- The error object: the second value of every failed operation.
-- `tostring(err)` reads like `sigmamind: POST /v1/calls: 400 Bad Request: Invalid request parameters`
-- (with `(after N attempts)` when there were several). No error ever contains the API key.
-- @table err
-- @field kind `invalid` (caught before sending; see `field`), `auth` (401, 403), `not_found` (404),
-- `rejected` (other 4xx), `rate_limited` (429), `server` (5xx), `network`, `timeout`, `decode` (a
-- 2xx whose body is not JSON, or not the JSON the endpoint answers: a record that is not an object,
-- a list whose `data` is not an array of objects, pages repeated by a server that ignores paging),
-- `too_large` (a body over `max_response_bytes`)
-- @field status the HTTP status, when there was a response
-- @field message what went wrong, in words (the API's own `message` for an HTTP error)
-- @field method the HTTP method, e.g. `"POST"`
-- @field path the request path, e.g. `"/v1/calls"`
-- @field body the raw response body (a string), when there was one
-- @field request_id the response's `X-Request-Id`, for SigmaMind's support
-- @field attempts how many attempts were made (0 when nothing was sent)
-- @field resent `true` when the transport sent the last attempt's request twice (libcurl does, on a
-- new connection, when a kept-alive one dies before any answer): what answered was the second one
-- @field elapsed seconds spent on the whole operation
-- @field retryable whether trying again later may succeed
-- @field sent whether the request may have reached the server: when true for a `POST /v1/calls`, the call
-- may exist, and sending it again may ring the person twice
-- @field field for `invalid`: the parameter at fault, e.g. `"toPhoneNumber"`
-- @field problems for an invalid plan or contact list: every problem found, as strings
-- @field retry_after the server's `Retry-After` in seconds (capped at 60), when it sent one
-- @field call for a @{calls:wait} timeout: the call as last seen

-- option name -> checker returning an error message or nil
local function number_opt(min)
  return function(v)
    if type(v) ~= "number" or v ~= v or v < min or v == math.huge then
      return string_format("expected a finite number >= %s", tostring(min))
    end
  end
end
local function integer_opt(min)
  return function(v)
    if type(v) ~= "number" or v % 1 ~= 0 or v < min then
      return string_format("expected an integer >= %d", min)
    end
  end
end
local function kind_opt(kind)
  return function(v) if type(v) ~= kind then return "expected a " .. kind end end
end

local OPTIONS = {
  api_key = kind_opt("string"), base_url = kind_opt("string"),
  timeout = number_opt(0.001), connect_timeout = number_opt(0.001), deadline = number_opt(0.001),
  max_retries = integer_opt(0), ca_file = kind_opt("string"), proxy = kind_opt("string"),
  user_agent = kind_opt("string"), max_response_bytes = integer_opt(1), on_event = kind_opt("function"),
  insecure = kind_opt("boolean"),
  reconcile = kind_opt("boolean"), campaign_upload = kind_opt("string"),   -- its values: core.new
}

local DEFAULTS = {
  base_url = "https://api.sigmamind.ai", timeout = 30, connect_timeout = 10, deadline = 120,
  max_retries = 2, max_response_bytes = 8 * 1024 * 1024, insecure = false,
}

---------------------------------------------------------------------------------------------------------------
-- Reading records: the API's spellings vary between pages of its docs; users see one.

local function e164(v)
  if type(v) == "number" then return "+" .. string_format("%.0f", v) end
  return v
end

local function norm_number(pn)
  if type(pn) ~= "table" then return pn end
  if type(pn.sipPhoneNumber) == "number" then pn.sipPhoneNumber = e164(pn.sipPhoneNumber) end
  if type(pn.outboundPhoneNumber) == "number" then pn.outboundPhoneNumber = e164(pn.outboundPhoneNumber) end
  return pn
end

-- statuses are few: each spelling seen is normalised once (a page of calls asks 100 times)
local status_memo, status_memo_n = {}, 0
local function norm_status(s)
  local v = status_memo[s]
  if v ~= nil then return v end
  if type(s) ~= "string" then return s end
  v = string_gsub(s, "-", "_")
  if status_memo_n < 64 then status_memo[s], status_memo_n = v, status_memo_n + 1 end
  return v
end

local function norm_campaign(c)
  if type(c) ~= "table" then return c end
  norm_number(c.phoneNumber)
  return c
end

-- runs once a record of every page of calls: a status seen before is looked up here, without a call
local function norm_call(c)
  if type(c) ~= "table" then return c end
  local s = c.status
  local v = status_memo[s] or norm_status(s)
  if v ~= s then c.status = v end
  if c.dynamicVariables == nil and c.variables ~= nil then c.dynamicVariables = c.variables end
  norm_number(c.phoneNumber)
  norm_campaign(c.campaign)
  return c
end

local EVENT_ALIASES = { conversation_analyzed = "conversation_analysed" }

local function norm_events(events)
  if type(events) == "string" then events = { events } end
  if type(events) == "table" then
    for i, e in ipairs(events) do events[i] = EVENT_ALIASES[e] or e end
  end
  return events
end

local function norm_webhook(w)
  if type(w) ~= "table" then return w end
  w.events = norm_events(w.events)
  return w
end

local NORMALISE = {
  calls = norm_call, campaigns = norm_campaign, phone_numbers = norm_number, webhooks = norm_webhook,
}

-- The fields by which records are identified, for de-duplicating across shifting pages.
local ID_FIELD = {
  calls = "callId", campaigns = "campaignId", phone_numbers = "sipPhoneNumber", webhooks = "webhookId",
  agents = "agentId",
}

---------------------------------------------------------------------------------------------------------------
-- Namespaces: one metatable per namespace, its methods generated from the core's endpoint table.

local Client = {}
Client.__index = Client

local namespace_meta = {}

local function check_self(self, ns, method)
  if getmetatable(self) ~= namespace_meta[ns] then
    error(string_format("sigmamind: call it as client.%s:%s(...) (with a colon)", ns, method), 3)
  end
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function check_params(params, ns, method)
  if params ~= nil and type(params) ~= "table" then
    error(string_format("sigmamind: %s:%s: expected a table of parameters, got %s", ns, method, type(params)), 3)
  end
end

local function check_id(id, ns, method)
  if type(id) == "string" then return id end
  -- a number is taken when it is a whole one (written out: tostring gives 1e+15 for a float); NaN went out as -nan
  if type(id) ~= "number" or id ~= id or id % 1 ~= 0 or id >= 2 ^ 53 or id <= -2 ^ 53 then
    error(string_format("sigmamind: %s:%s: expected an id string, got %s", ns, method,
                        type(id) == "number" and tostring(id) or type(id)), 3)
  end
  return string_format("%d", id)
end

-- what a namespace's records are called in errors: one, and a page of them
local NOUN = { calls = { "a call", "calls" }, campaigns = { "a campaign", "campaigns" },
               phone_numbers = { "a phone number", "phone numbers" }, webhooks = { "a webhook", "webhooks" },
               agents = { "an agent", "agents" } }

-- A 2xx whose JSON is not what the endpoint answers (a record that is a number, a list whose data
-- is not an array) is a decode error like a body that is not JSON: the request reached the server
-- (sent), and asking again will not change the answer. The path is the request's own, as the core's
-- errors give it.
local core_prepare = core.prepare
local function shape_error(name, args, params, message)
  local ep = core.endpoints[name]
  local ok, method, _, _, path = pcall(core_prepare, name, args, params)
  return core.error{ kind = "decode", sent = true, retryable = false, method = ep.method,
                     path = ok and method and path or ep.path, message = message }
end

local is_record, json_shape = pager.is_record, pager.json_shape

-- a record (get, create, update): a JSON object, normalised
local function finish(ns, name, args, params, value, err)
  if value == nil then return nil, err end
  if not is_record(value) then
    return nil, shape_error(name, args, params, string_format("the response is not %s: expected a JSON object, " ..
                                                              "got %s", NOUN[ns][1], json_shape(value)))
  end
  local norm = NORMALISE[ns]
  if norm then norm(value) end
  return value
end

-- a list: a page (pager.normalise_page), its records normalised
local function finish_page(ns, name, query, page, err)
  if page == nil then return nil, err end
  local why
  page, why = pager.normalise_page(page)
  if not page then
    return nil, shape_error(name, nil, query, string_format("the response is not a page of %s: %s", NOUN[ns][2],
                                                            why))
  end
  local norm = NORMALISE[ns]
  if norm then for _, rec in ipairs(page.data) do norm(rec) end end
  return page
end

-- A DELETE answered 404 after it was sent again (a retry, or libcurl's resend when a kept-alive
-- connection died) most likely lost the answer to the send that deleted it: gone is what was asked,
-- so it is `true`, and on_event hears a `gone` event. Any 2xx is `true`, whatever its body.
local function finish_delete(client, value, err)
  if value ~= nil then return true end
  if err.kind ~= "not_found" or not ((err.attempts or 1) > 1 or err.resent) then return nil, err end
  local on_event = client._on_event
  if on_event then
    pcall(on_event, { type = "gone", method = err.method, path = core.mask_path(err.path), attempt = err.attempts,
                      status = err.status, elapsed = err.elapsed, kind = err.kind })
  end
  return true
end

-- params that are builder plans are built here; row problems are the server's to report (it skips those
-- rows, as the real API does), field problems stop the request before anything is sent
local function resolve_plan(params, name)
  if not build.is_plan(params) then return params end
  local body, problems, fatal = params:build()
  if fatal or body == nil then
    local first = (type(fatal) == "string" and fatal) or (problems and problems[1]) or "invalid plan"
    local field = first:match("^([%w_]+):") or "file"
    return nil, core.error{ kind = "invalid", field = field, message = first, problems = problems,
                            method = core.endpoints[name].method, path = core.endpoints[name].path,
                            attempts = 0, sent = false, retryable = false }
  end
  return body
end

-- Inside one of this client's tasks a request yields to the client's loop; anywhere else it blocks. The
-- blocking path costs one field lookup until the client has spawned a task.
local co_running = coroutine.running
local task_request = task.request
local function request(self, name, args, params)
  local s = self._client._sched
  if s ~= nil and s.tasks[co_running()] then return task_request(s, self._c, name, args, params) end
  return self._c:request(name, args, params)
end

-- `each` and `pages` with `prefetch = true`: pages are started on the client's multi handle (pushed out at once,
-- so the server works on one while this client decodes another) and collected when the loop gets there, retries
-- waited for here as the blocking path waits for them. Only in plain code with no task of this client live
-- (their loop would be handed the transfers), and only over libcurl; elsewhere pages come when asked for. A
-- perform reports transfers by slot, and a slot is reused as soon as it is reported, so each record is handed at
-- once to the waiter registered for its slot (per client: loops nested in loops each get their own).
local core_sleep = core.sleep
local function list_starter(self, ns, name)
  return function(q)
    local client, c = self._client, self._c
    local s = client._sched
    if c._start == nil or (s ~= nil and (s.live > 0 or s.tasks[co_running()])) then return nil end
    local waiting = client._prefetching
    if not waiting then waiting = {} client._prefetching = waiting end
    local function collect(recs)
      for i = 1, recs and #recs or 0 do
        local r = recs[i]
        local box = waiting[r[1]]
        local sched = client._sched
        if box then waiting[r[1]], box.rec = nil, r
        elseif sched and sched.waiting[r[1]] then task.dispatch(sched, { r })  -- a task's, started in the loop
        elseif r[2] == "retry" then c:_cancel(r[1]) end      -- a transfer nobody waits for any more
      end
    end
    local id, err = c:_start(name, nil, q)
    if not id then return function() return nil, err end end
    local box = {}
    waiting[id] = box
    collect(c:_perform(0))                 -- out on the wire now
    return function(abandon, lazily)
      if not box then return nil end
      local r = box.rec
      if abandon then
        if lazily then if r == nil then waiting[id] = nil end  -- from a finalizer: the transfer is left alone
        elseif r == nil then waiting[id] = nil; c:_cancel(id)  -- still in flight
        elseif r[2] == "retry" then c:_cancel(id) end          -- waiting to be tried again
        box = nil
        return nil
      end
      while true do
        if r then
          box.rec = nil
          if r[2] == "ok" then box = nil; return finish_page(ns, name, q, r[3]) end
          if r[2] ~= "retry" then box = nil; return nil, r[3] end
          core_sleep(r[4])
          waiting[id] = box
          c:_retry(id)
        end
        collect(c:_perform(3600))
        r = box.rec
        if r == nil and waiting[id] ~= box then         -- never to come: its record went to nobody
          box = nil
          return nil, core.error{ kind = "network", sent = true, retryable = true, method = "GET",
                                  message = "the prefetched page's transfer was lost" }
        end
      end
    end
  end
end

local function make_method(ns, method, name)
  local ep = core.endpoints[name]
  local nargs = #ep.args
  if ep.method == "GET" and nargs == 0 then
    return function(self, query)
      check_self(self, ns, method); check_params(query, ns, method)
      return finish_page(ns, name, query, request(self, name, nil, query))
    end
  elseif nargs == 0 then
    return function(self, params)
      check_self(self, ns, method); check_params(params, ns, method)
      local body, err = resolve_plan(params, name)
      if body == nil and err then return nil, err end
      return finish(ns, name, nil, body, request(self, name, nil, body))
    end
  elseif ep.method == "PATCH" then
    return function(self, id, params)
      check_self(self, ns, method); id = check_id(id, ns, method); check_params(params, ns, method)
      params = params or {}
      return finish(ns, name, { id }, params, request(self, name, { id }, params))
    end
  elseif ep.method == "DELETE" then
    return function(self, id, query)
      check_self(self, ns, method); id = check_id(id, ns, method); check_params(query, ns, method)
      return finish_delete(self._client, request(self, name, { id }, query))
    end
  else
    return function(self, id, query)
      check_self(self, ns, method); id = check_id(id, ns, method); check_params(query, ns, method)
      return finish(ns, name, { id }, query, request(self, name, { id }, query))
    end
  end
end

local NAMESPACES = {
  calls         = { "create", "get", "list", "delete" },
  campaigns     = { "create", "get", "list", "update", "delete" },
  phone_numbers = { "list", "provision", "import", "get", "update", "delete" },
  webhooks      = { "create", "list", "get", "update", "delete" },
  agents        = { "list", "get" },
}

for ns, methods in pairs(NAMESPACES) do
  local M = {}
  local meta = { __index = M, __name = "sigmamind." .. ns,
                 __tostring = function() return "sigmamind." .. ns end }
  namespace_meta[ns] = meta
  for _, method in ipairs(methods) do
    local name = ns .. "." .. method
    if not core.endpoints[name] then error("sigmamind: the core has no endpoint " .. name) end
    M[method] = make_method(ns, method, name)
  end
  if M.list then
    local list, id_field, list_name = M.list, ID_FIELD[ns], ns .. ".list"
    local path = core.endpoints[list_name].path
    M.each = function(self, query)
      check_self(self, ns, "each"); check_params(query, ns, "each")
      return pager.each(function(q) return list(self, q) end, query, id_field, list_starter(self, ns, list_name),
                        path)
    end
    M.pages = function(self, query)
      check_self(self, ns, "pages"); check_params(query, ns, "pages")
      return pager.pages(function(q) return list(self, q) end, query, list_starter(self, ns, list_name), id_field,
                         path)
    end
  end
  _M[ns] = M   -- sigmamind.calls etc.: the method tables, for extension and documentation
end

-- Campaign pause/resume are PATCHes of campaignStatus (API.md §6: no endpoint is published).
local Campaigns = _M.campaigns
function Campaigns.pause(self, id) check_self(self, "campaigns", "pause")
  return self:update(id, { campaignStatus = "paused" }) end
function Campaigns.resume(self, id) check_self(self, "campaigns", "resume")
  return self:update(id, { campaignStatus = "live" }) end

-- observe.lua: calls:stats and campaigns:progress; create remembers the contacts it sent, for progress
local function observe() return require("sigmamind.observe") end
local campaign_create = Campaigns.create
function Campaigns.create(self, params)
  check_self(self, "campaigns", "create"); check_params(params, "campaigns", "create")
  local body, err = resolve_plan(params, "campaigns.create")
  if body == nil and err then return nil, err end
  local camp, cerr = upload.create(self._client, campaign_create, self, body)
  if camp then observe().remember(self._client, camp, body) end
  return camp, cerr
end
function Campaigns.progress(self, id) check_self(self, "campaigns", "progress")
  return observe().progress(self._client, check_id(id, "campaigns", "progress")) end
function _M.calls.stats(self, q) check_self(self, "calls", "stats")
  return observe().stats(self, q) end

local Webhooks = _M.webhooks
local webhook_create, webhook_update = Webhooks.create, Webhooks.update
-- send the documented spelling whatever the caller wrote
local function with_events(params)
  if type(params) == "table" and params.events ~= nil and not build.is_plan(params) then
    params = copy(params)
    local ev = params.events
    if type(ev) == "table" then ev = copy(ev) end
    params.events = norm_events(ev)
  end
  return params
end
function Webhooks.create(self, params) return webhook_create(self, with_events(params)) end
function Webhooks.update(self, id, params) return webhook_update(self, id, with_events(params)) end
function Webhooks.enable(self, id) check_self(self, "webhooks", "enable")
  return self:update(id, { active = true }) end
function Webhooks.disable(self, id) check_self(self, "webhooks", "disable")
  return self:update(id, { active = false }) end

---------------------------------------------------------------------------------------------------------------
-- calls:wait: poll with backoff until a final status.

local Calls = _M.calls

-- calls:create never leads to a second call after an ambiguous failure: it first looks for the call the lost
-- request may have made (sigmamind.reconcile) and returns it marked `reconciled = true`.
-- It is the call most scripts are made of, so the generic method's steps (check_self, check_params,
-- resolve_plan, request, finish) are written out here: as five calls they were 8 % of a create's instructions.
local reconcile = require "sigmamind.reconcile"
local remember, enter, leave = reconcile.remember, reconcile.enter, reconcile.leave
local calls_meta = namespace_meta.calls
local core_time = core.time
function Calls.create(self, params)
  if getmetatable(self) ~= calls_meta then check_self(self, "calls", "create") end
  if params ~= nil and type(params) ~= "table" then check_params(params, "calls", "create") end
  local client = self._client
  local body = params
  if params ~= nil and params.build ~= nil then          -- a plan's build comes through its metatable
    local perr
    body, perr = resolve_plan(params, "calls.create")
    if body == nil and perr then return nil, perr end
  end
  local s = client._sched
  local call, err
  -- this host's clock before the first attempt, where reconciliation's window starts: taken after the
  -- failure (less the attempts' time), it moved on by whatever ran in between (an on_event, another task)
  local t0 = core_time()
  local intent = type(body) == "table" and enter(client, body, t0) or nil
  if s ~= nil and s.tasks[co_running()] then call, err = task_request(s, self._c, "calls.create", nil, body)
  else call, err = self._c:request("calls.create", nil, body) end
  if call ~= nil then
    if type(call) == "table" and type(call.callId) == "string" then
      norm_call(call)
      remember(client, call.callId)
      if intent then leave(client, intent) end
      return call
    end
    -- a 2xx that says nothing usable (no body, null, no callId) most likely placed the call: as ambiguous as a
    -- lost answer, so looked for like one, never returned as if it were a call
    local what = type(call) == "table" and "no callId" or call == true and "no body" or call == core.null and "null"
                 or "a JSON " .. type(call)
    err = core.error{ kind = "decode", sent = true, retryable = false, method = "POST", path = "/v1/calls",
      message = "the server answered success without a call (" .. what .. "): it may have been placed" }
  end
  if not reconcile.ambiguous(err) then
    if intent then leave(client, intent) end
    return nil, err
  end
  if client._reconcile == false then return nil, err end     -- its intent stays: a possible owner of look-alikes
  local found, why = reconcile.find(self, body, t0, core_time, function(sec) client:_sleep(sec) end, intent)
  if not found then
    err.reconcile = why
    return nil, err
  end
  found.reconciled = true
  remember(client, found.callId)
  return found
end

function Calls.wait(self, id, opts)
  check_self(self, "calls", "wait"); id = check_id(id, "calls", "wait")
  if opts ~= nil and type(opts) ~= "table" then error("sigmamind: calls:wait: expected an options table", 2) end
  opts = opts or {}
  local timeout = opts.timeout or 600
  local interval = opts.interval or 0.5
  local max_interval = opts.max_interval or 5
  -- not "x < 0" alone: NaN passes that test, and a NaN wait never ends (in a task, it stopped every timer)
  local function seconds(name, v, least, open, endless)
    if type(v) ~= "number" or v ~= v or (v == math.huge and not endless) or v < least or (open and v == least) then
      error(string_format("sigmamind: calls:wait: %s: expected a %snumber of seconds %s %g, got %s", name,
                          endless and "" or "finite ", open and ">" or ">=", least, tostring(v)), 3)
    end
  end
  for k in pairs(opts) do
    if k ~= "timeout" and k ~= "interval" and k ~= "max_interval" then
      error("sigmamind: calls:wait: unknown option '" .. tostring(k) .. "' (expected timeout, interval, max_interval)",
            2)
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
    -- not "left <= 0" alone: ngx.sleep can come back a little early (nginx's cached clock) and rounds a wait
    -- under a millisecond to none, so near the timeout that test alone polled again and again
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

---------------------------------------------------------------------------------------------------------------
-- The client.
-- @section client

--- The options of @{new}. Every one is optional; an unknown key, or a value of the wrong type, raises.
-- @table options
-- @field api_key the API key (default: the environment variable `SIGMAMIND_API_KEY`; neither raises). It is
-- copied into the client's C memory and never shown again, not by `tostring(client)` nor in any error or event
-- @field base_url default `"https://api.sigmamind.ai"`, or the environment variable `SIGMAMIND_BASE_URL`
-- @field timeout seconds per attempt (default 30)
-- @field connect_timeout seconds to connect, per attempt (default 10)
-- @field deadline seconds for all the attempts of one operation together, waits included (default 120)
-- @field max_retries retries after the first attempt, an integer >= 0 (default 2)
-- @field ca_file a PEM file of CA certificates to verify the server with (refused inside nginx)
-- @field proxy a proxy URL for libcurl (refused inside nginx). Default: the variables libcurl reads
-- (`http_proxy` for http://; `https_proxy` or `HTTPS_PROXY` for https://; else `all_proxy`, `ALL_PROXY`), with
-- `no_proxy`/`NO_PROXY` for exceptions, read once by `new` rather than on every request.
-- A plain `http://` `base_url` goes straight to its host, never through a proxy (which would
-- read the key): there `proxy` raises, unless `insecure`. An `https://` one goes through an
-- http proxy as a CONNECT tunnel, the key inside TLS
-- @field user_agent replaces the `User-Agent` header (default `lua-sigmamind/VERSION libcurl/VERSION`)
-- @field max_response_bytes a larger response body fails with kind `too_large` (default 8 MiB)
-- @field on_event `function(ev)` called for each `request`, `response`, `retry` and `give_up`; `ev`
-- has `type`, `method`, `path` (numbers masked), `attempt`, `status`, `elapsed`, `delay`, `kind`
-- and never the key. A `gone` event tells that a DELETE sent again was answered 404 and is returned
-- as done. Errors it raises are ignored
-- @field insecure must be `true` to use `http://` with a host that is not loopback: a literal
-- 127.0.0.0/8 or `[::1]` address, or `localhost` (default `false`); with it, an `http://`
-- request also uses proxies
-- @field reconcile after a `calls:create` that failed once the request may have reached the server,
-- look for the call it may have made and return it marked `reconciled = true` instead of the error
-- (default `true`)
-- @field campaign_upload how @{campaigns:create} sends a campaign: `"json"` (default), `file` the base64
-- of the CSV, as SigmaMind's outbound-calls guide shows, or `"multipart"`, a `multipart/form-data` form
-- (the CSV as a file part, the variables as a JSON part `variables`), as its API reference shows. A server
-- that answers JSON with 415 gets the same campaign once more as a form, and the client keeps to forms
-- (`on_event` hears a `switch`). Not inside nginx, which sends JSON

--- Make a client. `sigmamind(opts)` is the same call.
-- Inside nginx's Lua module the client talks through cosockets (@{sigmamind.ngx}); elsewhere through libcurl.
-- @tparam[opt] options opts see @{options}
-- @treturn Client the client, with the namespaces @{calls}, @{campaigns}, @{phone_numbers}, @{webhooks} and
-- @{agents} as fields
-- @raise on an unknown option, a value of the wrong type, no API key, or a `base_url` that is not an
-- `https://` URL (or `http://` to a loopback host, unless `insecure`)
-- @usage local client = sigmamind.new{ timeout = 10, deadline = 60 }
function _M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("sigmamind.new: expected a table of options, got " .. type(opts), 2)
  end
  local o = {}
  for k, v in pairs(opts or {}) do
    local check = OPTIONS[k]
    if not check then
      local names = {}
      for name in pairs(OPTIONS) do names[#names + 1] = name end
      table_sort(names)
      error(string_format("sigmamind.new: unknown option '%s' (known: %s)", tostring(k), table_concat(names, ", ")), 2)
    end
    local msg = check(v)
    if msg then error(string_format("sigmamind.new: %s: %s, got %s", k, msg, type(v)), 2) end
    o[k] = v
  end
  o.api_key = o.api_key or os_getenv("SIGMAMIND_API_KEY")
  if o.api_key == nil or o.api_key == "" then
    error("sigmamind.new: no API key: pass api_key or set SIGMAMIND_API_KEY", 2)
  end
  local env_url = os_getenv("SIGMAMIND_BASE_URL")
  if o.base_url == nil and env_url and env_url ~= "" then o.base_url = env_url end
  for k, v in pairs(DEFAULTS) do if o[k] == nil then o[k] = v end end

  -- inside nginx: cosockets (never libcurl, which would block the worker); elsewhere the C core's libcurl
  local ngx_lua = rawget(_G, "ngx")
  local make = core.new
  if type(ngx_lua) == "table" and type(ngx_lua.socket) == "table" and type(ngx_lua.get_phase) == "function" then
    make = require("sigmamind.ngx").new
  end
  local reconcile_opt = o.reconcile
  o.reconcile = nil
  local ok, c = pcall(make, o)
  o.api_key = nil
  if not ok then error(c, 2) end

  local client = setmetatable({ _c = c, base_url = o.base_url, _reconcile = reconcile_opt,
                                _on_event = o.on_event }, Client)
  for ns in pairs(NAMESPACES) do
    client[ns] = setmetatable({ _c = c, _client = client }, namespace_meta[ns])
  end
  return client
end

function Client:_sleep(seconds)
  if seconds <= 0 then return end
  if self._c.sleep then return self._c:sleep(seconds) end                        -- ngx.sleep inside nginx
  local s = self._sched
  if s ~= nil and s.tasks[co_running()] then return task.sleep(s, seconds) end   -- a loop timer
  core.sleep(seconds)
end

---------------------------------------------------------------------------------------------------------------
-- Concurrency (task.lua) and the dialer (dial.lua).
-- @section concurrency

--- Run `fn(item, i)` for every item of `list`, `concurrency` at a time, as tasks of `client`, and wait for all.
-- Call it from plain code (it drives the loop itself) or from inside a task.
-- @function map
-- @tparam Client client
-- @tparam table list an array
-- @tparam function fn called as `fn(list[i], i)`; inside it the client's methods yield instead of blocking
-- @tparam[opt] table opts `concurrency`: how many run at once (default 16)
-- @treturn table `results[i]` is `{ value }` when `fn` returned a value, `{ nil, err }` when it returned
-- `nil, err` or raised `err`; in the order of `list`
-- @raise on misuse (not a list, not a function, a bad `concurrency`)
-- @usage local results = sigmamind.map(client, rows, function(row)
--   return client.calls:create{ fromPhoneNumber = from, toPhoneNumber = row.phone, agentId = agent }
-- end, { concurrency = 16 })

--- A client, made by @{new}. Its namespaces are the fields @{calls}, @{campaigns}, @{phone_numbers},
-- @{webhooks} and @{agents}; `base_url` is the URL it talks to. `tostring(client)` shows the base URL and a
-- redacted key. A client may be closed with `client:close()`, by a `<close>` variable, or by the garbage
-- collector; using it afterwards raises.
-- @type Client

--- Run `fn(...)` as a task: inside it, the client's methods (`calls:create`, `:each`, `:wait`, ...) hand
-- control to the client's curl multi loop instead of blocking, so many requests share one thread. The task
-- starts at the next @{Client:poll}, @{Client:run} or @{sigmamind.task.Task:join}.
-- At most 64 connections to the API are open at once; further requests queue.
-- @tparam function fn
-- @param ... its arguments
-- @treturn sigmamind.task.Task the task; `task:join()` gives its values, or `nil, err` if it raised
-- @raise when `fn` is not a function
-- @usage local t = client:spawn(function(to)
--   return client.calls:create{ fromPhoneNumber = from, toPhoneNumber = to, agentId = agent }
-- end, "+12137774445")
-- client:run()
-- local call, err = t:join()
function Client:spawn(fn, ...)
  return task.spawn(self, fn, ...)
end

--- Drive transfers, timers and ready tasks for at most `timeout` seconds, then return. `poll(0)` does what
-- is ready now and takes tens of microseconds: a host loop (a game, an app server) calls it every frame.
-- @number[opt=0] timeout seconds, >= 0
-- @treturn integer how many tasks are still alive
-- @raise when `timeout` is not a number >= 0
function Client:poll(timeout)
  if timeout == nil then timeout = 0 end
  if type(timeout) ~= "number" or timeout ~= timeout or timeout < 0 then
    error("sigmamind: poll: expected a timeout in seconds >= 0, got " .. tostring(timeout), 2)
  end
  return task.poll(self, timeout)
end

--- Block until every task of this client is done.
-- @raise when the tasks left wait for each other and nothing else (they could never finish)
function Client:run()
  return task.run(self)
end

--- The bulk dialer: one call per valid contact, never two, even across a crash. See @{sigmamind.dial.dial}
-- for the options and the report.
-- @tparam table opts @{sigmamind.dial.options}
-- @treturn[1] table the @{sigmamind.dial.report}
-- @return[2] nil, @{err} when the contact list cannot be used at all (kind `invalid`)
function Client:dial(opts)
  return require("sigmamind.dial").dial(self, opts)
end

_M.map = task.map

--- Close the client and its connections. Closing twice is harmless.
function Client:close()
  self._c:close()
end

Client.__close = function(self) self._c:close() end
Client.__gc = nil
Client.__name = "sigmamind.client"
Client.__tostring = function(self) return tostring(self._c) end

-- The reference for the generated namespace methods: LDoc cannot see functions made from the endpoint table.

--- `client.calls`: outbound calls (`/v1/calls`). The methods raise when called with a dot instead of a colon.
-- @type calls

--- Place a call (`POST /v1/calls`). Checked before sending: both numbers E.164, `agentId` at most 64
-- characters. Retried only when the request certainly never reached the server or got a 429.
-- @function calls:create
-- @tparam table params `fromPhoneNumber` and `toPhoneNumber` (required), `agentId`, `dynamicVariables` (string
-- keys; string, number or boolean values); or a @{sigmamind.build.Call} plan, built first
-- @treturn[1] table the call, with `callId` and `status`
-- @return[2] nil, @{err}; `err.sent == true` means the call may exist
-- @usage local call, err = client.calls:create{ fromPhoneNumber = "+14157774444",
--   toPhoneNumber = "+12137774445", agentId = "agent_abc123", dynamicVariables = { customer_name = "Ada" } }

--- Read a call (`GET /v1/calls/{callId}`). Statuses come as `in_progress` even when the API says
-- `in-progress`; `variables` is also offered as `dynamicVariables`.
-- @function calls:get
-- @string id the `callId`
-- @treturn[1] table the call
-- @return[2] nil, @{err}

--- One page of calls (`GET /v1/calls`), as sent, with both `totalCount` and `totalCounts` set.
-- @function calls:list
-- @tparam[opt] table query `status` (`scheduled`, `in_progress`, `ended`, `not_connected`, `error`),
-- `page` (from 0), `size`
-- @treturn[1] table the page: `data` (the calls), `page`, `size`, `totalCount`, `hasNext`, ...
-- @return[2] nil, @{err}

--- Delete a call (`DELETE /v1/calls/{callId}`). The other namespaces' `delete` do as this one: a
-- 404 to a DELETE that was sent again (a retry, or a resend of the transport) means the first one
-- deleted it and its answer was lost, so it returns `true` (and @{options|on_event} hears a `gone`
-- event).
-- @function calls:delete
-- @string id the `callId`
-- @treturn[1] boolean `true`
-- @return[2] nil, @{err}

--- Every call, one at a time, fetching pages lazily (one page in memory); see @{sigmamind.pager.each}.
-- @function calls:each
-- @tparam[opt] table query as @{calls:list}, plus `limit` (at most that many records)
-- @treturn function an iterator of calls
-- @raise the @{err} of a failed page, as the error value itself
-- @usage for c in client.calls:each{ status = "ended", limit = 500 } do print(c.callId) end

--- Every page of calls, lazily; see @{sigmamind.pager.pages}.
-- @function calls:pages
-- @tparam[opt] table query as @{calls:list}, plus `limit` (stop once that many records were returned)
-- @treturn function an iterator of pages
-- @raise the @{err} of a failed page, as the error value itself

--- Poll a call until it reaches a final status (see @{final_statuses}), waiting `interval` seconds between
-- reads, growing by half each time up to `max_interval`. Inside a task the waits yield to the loop.
-- @function calls:wait
-- @string id the `callId`
-- @tparam[opt] table opts `timeout` (seconds, default 600), `interval` (default 0.5), `max_interval` (default 5)
-- @treturn[1] table the call in its final status
-- @return[2] nil, @{err}: a failed read, or kind `timeout` with `err.call` the call as last seen
-- @raise when `timeout` or `interval` is not a number of seconds

--- Aggregates over the calls, computed while paging through them once (the API has none): counts by status
-- and termination reason, completion rate, duration mean, min, max, p50, p95 and histogram, calls per hour.
-- @function calls:stats
-- @tparam[opt] table opts `since`, `before` (ISO-8601 times or unix seconds), `status`, `campaign` (a
-- campaignId), `agent` (an agentId), `limit` (stop after that many matching calls), `size` (page size)
-- @treturn[1] table `count`, `scanned`, `by_status`, `by_reason`, `finished`, `completion_rate`, `duration`,
-- `calls_per_hour`, `first`, `last`, `filters`, `order`, `stopped_early`
-- @return[2] nil, @{err}
-- @raise on an unknown option or a value of the wrong type

--- `client.campaigns`: batch calling campaigns (`/v1/campaigns`).
-- @type campaigns

--- Create a campaign (`POST /v1/campaigns`). A plan is built first: when it is fatal (a field wrong or
-- missing, or a contact list without one usable row) nothing is sent and the error is kind `invalid` with
-- `problems`; rows with problems alone are sent, and the server skips them as its documentation says.
-- @function campaigns:create
-- @tparam table params a @{sigmamind.build.Campaign} plan, or the API's fields: `campaignName`, `agentId`,
-- `sipPhoneNumber`, `file` (the base64 CSV; required), `concurrentCalls`, `dynamicVariables`, `isScheduled`,
-- `scheduledDate`, `scheduledTime`, `scheduledTimezone`
-- @treturn[1] table the campaign, with `campaignId`
-- @return[2] nil, @{err}
-- @usage client.campaigns:create(sigmamind.campaign "September" :agent "agent_abc123"
--   :caller "+14157774444" :csv_file "contacts.csv")

--- Read a campaign (`GET /v1/campaigns/{campaignId}`).
-- @function campaigns:get
-- @string id the `campaignId`
-- @treturn[1] table the campaign
-- @return[2] nil, @{err}

--- One page of campaigns (`GET /v1/campaigns`).
-- @function campaigns:list
-- @tparam[opt] table query `status` (`live`, `scheduled`, `paused`, `completed`), `page`, `size`
-- @treturn[1] table the page (`data`, `totalCount`, ...)
-- @return[2] nil, @{err}

--- Every campaign, lazily (as @{calls:each}).
-- @function campaigns:each
-- @tparam[opt] table query as @{campaigns:list}, plus `limit`
-- @treturn function an iterator
-- @raise the @{err} of a failed page

--- Every page of campaigns, lazily (as @{calls:pages}).
-- @function campaigns:pages
-- @tparam[opt] table query as @{campaigns:list}, plus `limit`
-- @treturn function an iterator
-- @raise the @{err} of a failed page

--- Change a campaign (`PATCH /v1/campaigns/{campaignId}`); its `file` cannot be changed.
-- @function campaigns:update
-- @string id the `campaignId`
-- @tparam table params any of the create fields but `file`, and `campaignStatus`
-- @treturn[1] table the campaign
-- @return[2] nil, @{err}

--- Pause a campaign: `update(id, { campaignStatus = "paused" })` (the API publishes no endpoint for it).
-- @function campaigns:pause
-- @string id the `campaignId`
-- @treturn[1] table the campaign
-- @return[2] nil, @{err}

--- Resume a campaign: `update(id, { campaignStatus = "live" })`.
-- @function campaigns:resume
-- @string id the `campaignId`
-- @treturn[1] table the campaign
-- @return[2] nil, @{err}

--- Delete a campaign (`DELETE /v1/campaigns/{campaignId}`).
-- @function campaigns:delete
-- @string id the `campaignId`
-- @treturn[1] boolean `true`
-- @return[2] nil, @{err}

--- Each contact's latest call status, the counts by status and the percentage done. The contacts are those
-- this client sent with @{campaigns:create}; for another campaign the rows are its calls.
-- @function campaigns:progress
-- @string id the `campaignId`
-- @treturn[1] table `campaign`, `source` (`"csv"` or `"calls"`), `contacts` (`row`, `phoneNumber`, `callId`,
-- `status`, `terminationReason`, `duration`), `counts`, `reasons`, `total`, `done`, `percent`, `invalid`
-- @return[2] nil, @{err}

--- `client.phone_numbers`: the account's numbers (`/v1/phone-numbers`), identified by their E.164 number.
-- Numbers the API sends as bare JSON numbers are read as `+E.164` strings.
-- @type phone_numbers

--- One page of numbers (`GET /v1/phone-numbers`).
-- @function phone_numbers:list
-- @tparam[opt] table query `page`, `size`
-- @treturn[1] table the page (`data`, `totalCount`, ...)
-- @return[2] nil, @{err}

--- Every number, lazily (as @{calls:each}).
-- @function phone_numbers:each
-- @tparam[opt] table query `size`, `limit`
-- @treturn function an iterator
-- @raise the @{err} of a failed page

--- Every page of numbers, lazily (as @{calls:pages}).
-- @function phone_numbers:pages
-- @tparam[opt] table query `size`, `limit`
-- @treturn function an iterator
-- @raise the @{err} of a failed page

--- Buy a number (`POST /v1/phone-numbers`).
-- @function phone_numbers:provision
-- @tparam table params `phoneNumber` or `countryCode` and `areaCode`; `friendlyName`, `inboundAgentId`,
-- `outboundAgentId`, `outboundPhoneNumber`
-- @treturn[1] table the number
-- @return[2] nil, @{err}

--- Bring your own SIP trunk number (`POST /v1/phone-numbers/import`).
-- @function phone_numbers:import
-- @tparam table params `phoneNumber`, `terminationSipURI`, `trunkUsername`, `trunkPassword` (required);
-- `friendlyName`, `inboundAgentId`, `outboundAgentId`, `outboundPhoneNumber`
-- @treturn[1] table the number
-- @return[2] nil, @{err}

--- Read a number (`GET /v1/phone-numbers/{phoneNumber}`).
-- @function phone_numbers:get
-- @string number the number, E.164
-- @treturn[1] table the number
-- @return[2] nil, @{err}

--- Change a number (`PATCH /v1/phone-numbers/{phoneNumber}`); @{null} as an agent id unassigns it.
-- @function phone_numbers:update
-- @string number the number, E.164
-- @tparam table params `friendlyName`, `inboundAgentId`, `outboundAgentId`, `terminationSipUri`,
-- `trunkUsername`, `trunkPassword`, `outboundPhoneNumber`
-- @treturn[1] table the number
-- @return[2] nil, @{err}

--- Release a number (`DELETE /v1/phone-numbers/{phoneNumber}`).
-- @function phone_numbers:delete
-- @string number the number, E.164
-- @treturn[1] boolean `true`
-- @return[2] nil, @{err}

--- `client.webhooks`: where SigmaMind POSTs call events (`/v1/webhooks`). Event names are sent and read as
-- documented (`conversation_analysed`, whichever spelling you wrote). To check deliveries, see
-- @{sigmamind.webhook.verify}.
-- @type webhooks

--- Register a webhook (`POST /v1/webhooks`). The answer carries the `secret` that signs its deliveries.
-- @function webhooks:create
-- @tparam table params `name`, `agentId`, `url`, `events` (all required)
-- @treturn[1] table the webhook, with `webhookId` and `secret`
-- @return[2] nil, @{err}

--- One page of webhooks (`GET /v1/webhooks`).
-- @function webhooks:list
-- @tparam[opt] table query `agentId`, `active`, `page`, `size`
-- @treturn[1] table the page (`data`, `totalCount`, ...)
-- @return[2] nil, @{err}

--- Every webhook, lazily (as @{calls:each}).
-- @function webhooks:each
-- @tparam[opt] table query as @{webhooks:list}, plus `limit`
-- @treturn function an iterator
-- @raise the @{err} of a failed page

--- Every page of webhooks, lazily (as @{calls:pages}).
-- @function webhooks:pages
-- @tparam[opt] table query as @{webhooks:list}, plus `limit`
-- @treturn function an iterator
-- @raise the @{err} of a failed page

--- Read a webhook (`GET /v1/webhooks/{webhookId}`).
-- @function webhooks:get
-- @string id the `webhookId`
-- @treturn[1] table the webhook
-- @return[2] nil, @{err}

--- Change a webhook (`PATCH /v1/webhooks/{webhookId}`).
-- @function webhooks:update
-- @string id the `webhookId`
-- @tparam table params `name`, `url`, `events`, `active`
-- @treturn[1] table the webhook
-- @return[2] nil, @{err}

--- Turn deliveries on: `update(id, { active = true })`.
-- @function webhooks:enable
-- @string id the `webhookId`
-- @treturn[1] table the webhook
-- @return[2] nil, @{err}

--- Turn deliveries off: `update(id, { active = false })`.
-- @function webhooks:disable
-- @string id the `webhookId`
-- @treturn[1] table the webhook
-- @return[2] nil, @{err}

--- Delete a webhook (`DELETE /v1/webhooks/{webhookId}`).
-- @function webhooks:delete
-- @string id the `webhookId`
-- @treturn[1] boolean `true`
-- @return[2] nil, @{err}

--- `client.agents`: the account's AI voice agents (`/v1/agents`), read only.
-- @type agents

--- One page of agents (`GET /v1/agents`).
-- @function agents:list
-- @tparam[opt] table query `page`, `size`
-- @treturn[1] table the page (`data`, `totalCount`, ...)
-- @return[2] nil, @{err}

--- Every agent, lazily (as @{calls:each}).
-- @function agents:each
-- @tparam[opt] table query `size`, `limit`
-- @treturn function an iterator
-- @raise the @{err} of a failed page

--- Every page of agents, lazily (as @{calls:pages}).
-- @function agents:pages
-- @tparam[opt] table query `size`, `limit`
-- @treturn function an iterator
-- @raise the @{err} of a failed page

--- Read an agent (`GET /v1/agents/{agentId}`).
-- @function agents:get
-- @string id the `agentId`
-- @treturn[1] table the agent
-- @return[2] nil, @{err}

-- `sigmamind.new` may also be spelled `sigmamind(opts)`.
return setmetatable(_M, { __call = function(_, opts) return _M.new(opts) end })
