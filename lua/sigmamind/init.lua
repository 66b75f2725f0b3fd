-- lua-sigmamind: the public face: sigmamind.new{} and the resource namespaces over the C core.
local core  = require "sigmamind.core"
local pager = require "sigmamind.pager"
local build = require "sigmamind.build"
local csv   = require "sigmamind.csv"
local webhook = require "sigmamind.webhook"
local task  = require "sigmamind.task"

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
_M.final_statuses = { "ended", "not_connected", "error" }

-- option name -> checker returning an error message or nil
local function number_opt(min)
  return function(v)
    if type(v) ~= "number" or v ~= v or v < min then
      return string_format("expected a number >= %s", tostring(min))
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
  pn.sipPhoneNumber = e164(pn.sipPhoneNumber)
  pn.outboundPhoneNumber = e164(pn.outboundPhoneNumber)
  return pn
end

local function norm_status(s)
  if type(s) == "string" and s:find("-", 1, true) then return (string_gsub(s, "-", "_")) end
  return s
end

local function norm_campaign(c)
  if type(c) ~= "table" then return c end
  norm_number(c.phoneNumber)
  return c
end

local function norm_call(c)
  if type(c) ~= "table" then return c end
  c.status = norm_status(c.status)
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
  if type(id) ~= "string" and type(id) ~= "number" then
    error(string_format("sigmamind: %s:%s: expected an id string, got %s", ns, method, type(id)), 3)
  end
  return tostring(id)
end

local function finish(norm, value, err)
  if value == nil then return nil, err end
  if norm and type(value) == "table" then norm(value) end
  return value
end

local function finish_page(norm, page, err)
  if page == nil then return nil, err end
  page = pager.normalise_page(page)
  if norm then for _, rec in ipairs(page.data) do norm(rec) end end
  return page
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

local function make_method(ns, method, name)
  local ep = core.endpoints[name]
  local norm = NORMALISE[ns]
  local nargs = #ep.args
  if ep.method == "GET" and nargs == 0 then
    return function(self, query)
      check_self(self, ns, method); check_params(query, ns, method)
      return finish_page(norm, request(self, name, nil, query))
    end
  elseif nargs == 0 then
    return function(self, params)
      check_self(self, ns, method); check_params(params, ns, method)
      local body, err = resolve_plan(params, name)
      if body == nil and err then return nil, err end
      return finish(norm, request(self, name, nil, body))
    end
  elseif ep.method == "PATCH" then
    return function(self, id, params)
      check_self(self, ns, method); id = check_id(id, ns, method); check_params(params, ns, method)
      return finish(norm, request(self, name, { id }, params or {}))
    end
  else
    return function(self, id, query)
      check_self(self, ns, method); id = check_id(id, ns, method); check_params(query, ns, method)
      return finish(norm, request(self, name, { id }, query))
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
    local list, id_field = M.list, ID_FIELD[ns]
    M.each = function(self, query)
      check_self(self, ns, "each"); check_params(query, ns, "each")
      return pager.each(function(q) return list(self, q) end, query, id_field)
    end
    M.pages = function(self, query)
      check_self(self, ns, "pages"); check_params(query, ns, "pages")
      return pager.pages(function(q) return list(self, q) end, query)
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

function Calls.wait(self, id, opts)
  check_self(self, "calls", "wait"); id = check_id(id, "calls", "wait")
  if opts ~= nil and type(opts) ~= "table" then error("sigmamind: calls:wait: expected an options table", 2) end
  opts = opts or {}
  local timeout = opts.timeout or 600
  local interval = opts.interval or 0.5
  local max_interval = opts.max_interval or 5
  if type(timeout) ~= "number" or timeout < 0 then error("sigmamind: calls:wait: timeout: expected seconds", 2) end
  if type(interval) ~= "number" or interval <= 0 then error("sigmamind: calls:wait: interval: expected seconds", 2) end
  local client = self._client
  local start = core.now()
  local polls = 0
  while true do
    local call, err = self:get(id)
    polls = polls + 1
    if not call then return nil, err end
    if FINAL[call.status] then return call end
    local left = timeout - (core.now() - start)
    if left <= 0 then
      return nil, core.error{
        kind = "timeout", method = "GET", path = "/v1/calls/" .. id, attempts = polls,
        elapsed = core.now() - start, retryable = true, sent = true, call = call,
        message = string_format("call %s did not reach a final status within %g s (last status: %s)",
                                id, timeout, tostring(call.status)) }
    end
    client:_sleep(math_min(interval, left))
    interval = math_min(interval * 1.5, max_interval)
  end
end

---------------------------------------------------------------------------------------------------------------
-- The client.

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
  local ok, c = pcall(make, o)
  o.api_key = nil
  if not ok then error(c, 2) end

  local client = setmetatable({ _c = c, base_url = o.base_url }, Client)
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

function Client:spawn(fn, ...)
  return task.spawn(self, fn, ...)
end

function Client:poll(timeout)
  if timeout == nil then timeout = 0 end
  if type(timeout) ~= "number" or timeout ~= timeout or timeout < 0 then
    error("sigmamind: poll: expected a timeout in seconds >= 0, got " .. tostring(timeout), 2)
  end
  return task.poll(self, timeout)
end

function Client:run()
  return task.run(self)
end

function Client:dial(opts)
  return require("sigmamind.dial").dial(self, opts)
end

_M.map = task.map

function Client:close()
  self._c:close()
end

Client.__close = function(self) self._c:close() end
Client.__gc = nil
Client.__name = "sigmamind.client"
Client.__tostring = function(self) return tostring(self._c) end

-- `sigmamind.new` may also be spelled `sigmamind(opts)`.
return setmetatable(_M, { __call = function(_, opts) return _M.new(opts) end })
