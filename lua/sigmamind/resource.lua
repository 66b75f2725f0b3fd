-- The resource namespaces (client.calls, ...): a method per endpoint of the core's endpoint table.
--
-- Every endpoint `ns.method` of `core.endpoints` becomes the method `client.ns:method`, its shape
-- read from the endpoint: a GET with no path argument is a list (a page, its records normalised;
-- the namespace also gets `each` and `pages`), a POST with none takes a body (or a builder plan), a
-- PATCH takes an id and a body, a DELETE an id (true when done), any other GET an id. Namespaces
-- with verbs of their own (resources/*.lua) add them to `methods[ns]`; their reference is in
-- resources/*.luadoc. Records are read through records.lua.
local core      = require "sigmamind.core"
local pager     = require "sigmamind.pager"
local build     = require "sigmamind.build"
local task      = require "sigmamind.task"
local transfers = require "sigmamind.transfers"
local records   = require "sigmamind.records"

local error, type, pairs, ipairs, tostring, setmetatable, getmetatable, pcall =
      error, type, pairs, ipairs, tostring, setmetatable, getmetatable, pcall
local string_format, string_match = string.format, string.match

local _M = {}

local meta = {}       -- namespace -> the metatable of its objects (client.calls, ...)
local methods = {}    -- namespace -> its methods (sigmamind.calls, ...)
_M.meta, _M.methods = meta, methods

local NORMALISE, ID_FIELD, noun = records.normalise, records.id_field, records.noun

-- what sigmamind.response(value) gives: each table a method returned -> its response's metadata
-- (status, headers, request_id, attempts, elapsed, method, path), forgotten with the table
local responses = setmetatable({}, { __mode = "k" })
_M.responses = responses

---------------------------------------------------------------------------------------------------
-- Argument checks: misuse raises, blaming the caller of the method (level 3).

-- A closed client is refused here, before the transport's own check, which would blame a line of
-- this file.
local function check_self(self, ns, method)
  if getmetatable(self) ~= meta[ns] then
    error(string_format("sigmamind: call it as client.%s:%s(...) (with a colon)", ns, method), 3)
  end
  if self._client._closed then error("sigmamind: attempt to use a closed client", 3) end
end
_M.check_self = check_self

local function check_params(params, ns, method)
  if params ~= nil and type(params) ~= "table" then
    error(string_format("sigmamind: %s:%s: expected a table of parameters, got %s", ns, method,
                        type(params)), 3)
  end
end
_M.check_params = check_params

-- The per-request options every method takes as its last argument; their values are the core's to
-- check (it raises, naming the option), their names are checked here, blaming the caller.
local OPTION_NAMES = { timeout = true, connect_timeout = true, deadline = true, max_retries = true,
                       headers = true, extra_body = true, extra_query = true }
local KNOWN = "timeout, connect_timeout, deadline, max_retries, headers, extra_body, extra_query"
local function check_opts(opts, ns, method)
  if opts == nil then return end
  if type(opts) ~= "table" then
    error(string_format("sigmamind: %s:%s: expected a table of request options, got %s", ns, method,
                        type(opts)), 3)
  end
  for k in pairs(opts) do
    if not OPTION_NAMES[k] then
      error(string_format("sigmamind: %s:%s: unknown request option '%s' (known: %s)", ns, method,
                          tostring(k), KNOWN), 3)
    end
  end
end
_M.check_opts = check_opts

local function check_id(id, ns, method)
  if type(id) == "string" then return id end
  -- a whole number is taken, written out (tostring gives 1e+15 for a float); NaN went out as -nan
  if type(id) ~= "number" or id ~= id or id % 1 ~= 0 or id >= 2 ^ 53 or id <= -2 ^ 53 then
    error(string_format("sigmamind: %s:%s: expected an id string, got %s", ns, method,
                        type(id) == "number" and tostring(id) or type(id)), 3)
  end
  return string_format("%d", id)
end
_M.check_id = check_id

---------------------------------------------------------------------------------------------------
-- Reading the answers.

-- A 2xx whose JSON is not what the endpoint answers (a record that is a number, a list whose data
-- is not an array) is a decode error like a body that is not JSON: the request reached the server
-- (sent), and asking again will not change the answer. The path is the request's own, as the
-- core's errors give it.
local core_prepare = core.prepare
local function shape_error(name, args, params, message)
  local ep = core.endpoints[name]
  local ok, method, _, _, path = pcall(core_prepare, name, args, params)
  return core.error{ kind = "decode", sent = true, retryable = false, method = ep.method,
                     path = ok and method and path or ep.path, message = message }
end

local is_record, json_shape = pager.is_record, pager.json_shape

-- a record (get, create, update): a JSON object, normalised
local function finish(ns, name, args, params, value, err, response)
  if value == nil then return nil, err end
  if not is_record(value) then
    return nil, shape_error(name, args, params, string_format(
      "the response is not %s: expected a JSON object, got %s", noun(ns)[1], json_shape(value)))
  end
  local norm = NORMALISE[ns]
  if norm then norm(value) end
  if response then responses[value] = response end
  return value
end
_M.finish = finish

-- a list: a page (pager.normalise_page), its records normalised
local function finish_page(ns, name, query, page, err, response)
  if page == nil then return nil, err end
  local why
  page, why = pager.normalise_page(page)
  if not page then
    return nil, shape_error(name, nil, query, string_format("the response is not a page of %s: %s",
                                                            noun(ns)[2], why))
  end
  local norm = NORMALISE[ns]
  if norm then for _, rec in ipairs(page.data) do norm(rec) end end
  if response then responses[page] = response end
  return page
end

-- A DELETE answered 404 after it was sent again (a retry, or libcurl's resend when a kept-alive
-- connection died) most likely lost the answer to the send that deleted it: gone is what was
-- asked, so it is `true`, and on_event hears a `gone` event. Any 2xx is `true`, whatever its body.
local function finish_delete(client, value, err)
  if value ~= nil then return true end
  if err.kind ~= "not_found" or not ((err.attempts or 1) > 1 or err.resent) then return nil, err end
  local on_event = client._on_event
  if on_event then
    pcall(on_event, { type = "gone", method = err.method, path = core.mask_path(err.path),
                      attempt = err.attempts, status = err.status, elapsed = err.elapsed,
                      kind = err.kind })
  end
  return true
end

---------------------------------------------------------------------------------------------------
-- Sending.

-- params that are builder plans are built here; row problems are the server's to report (it skips
-- those rows, as the real API does), field problems stop the request before anything is sent
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
_M.resolve_plan = resolve_plan

-- Inside one of this client's tasks a request yields to the client's loop; anywhere else it
-- blocks. The blocking path costs one field lookup until the client has spawned a task.
local task_request, task_current = task.request, task.current
local function request(self, name, args, params, opts)
  local s = self._client._sched
  if s ~= nil and task_current(s) then return task_request(s, self._c, name, args, params, opts) end
  return self._c:request(name, args, params, opts)
end
_M.request = request

-- `each` and `pages` with `prefetch = true` have pages started early on the client's multi handle
-- (transfers.prefetch): only in plain code with no task of this client alive (their loop would be
-- handed the transfers), and only over libcurl; elsewhere pages come when asked for.
local task_live, prefetch = task.live, transfers.prefetch
local function list_starter(self, ns, name)
  local client = self._client
  return function(q)
    if task_live(client) > 0 then return nil end
    return prefetch(client, name, q, finish_page, ns)
  end
end

---------------------------------------------------------------------------------------------------
-- The methods, made from the endpoint table.

local function make_method(ns, method, name)
  local ep = core.endpoints[name]
  local nargs = #ep.args
  if ep.method == "GET" and nargs == 0 then
    return function(self, query, opts)
      check_self(self, ns, method); check_params(query, ns, method); check_opts(opts, ns, method)
      return finish_page(ns, name, query, request(self, name, nil, query, opts))
    end
  elseif nargs == 0 then
    return function(self, params, opts)
      check_self(self, ns, method); check_params(params, ns, method); check_opts(opts, ns, method)
      local body, err = resolve_plan(params, name)
      if body == nil and err then return nil, err end
      return finish(ns, name, nil, body, request(self, name, nil, body, opts))
    end
  elseif ep.method == "PATCH" then
    return function(self, id, params, opts)
      check_self(self, ns, method); id = check_id(id, ns, method); check_params(params, ns, method)
      check_opts(opts, ns, method)
      params = params or {}
      return finish(ns, name, { id }, params, request(self, name, { id }, params, opts))
    end
  elseif ep.method == "DELETE" then
    return function(self, id, opts)
      check_self(self, ns, method); id = check_id(id, ns, method); check_opts(opts, ns, method)
      return finish_delete(self._client, request(self, name, { id }, nil, opts))
    end
  else
    return function(self, id, opts)
      check_self(self, ns, method); id = check_id(id, ns, method); check_opts(opts, ns, method)
      return finish(ns, name, { id }, nil, request(self, name, { id }, nil, opts))
    end
  end
end

-- each and pages: every record, or page, of the list, lazily (pager.lua)
local function add_iterators(ns, M)
  local list, id_field, list_name = M.list, ID_FIELD[ns], ns .. ".list"
  local path = core.endpoints[list_name].path
  -- with request options, pages come when asked for (a prefetched page would go without them)
  M.each = function(self, query, opts)
    check_self(self, ns, "each"); check_params(query, ns, "each"); check_opts(opts, ns, "each")
    return pager.each(function(q) return list(self, q, opts) end, query, id_field,
                      opts == nil and list_starter(self, ns, list_name) or nil, path, ns .. ":each")
  end
  M.pages = function(self, query, opts)
    check_self(self, ns, "pages"); check_params(query, ns, "pages"); check_opts(opts, ns, "pages")
    return pager.pages(function(q) return list(self, q, opts) end, query,
                       opts == nil and list_starter(self, ns, list_name) or nil, id_field, path,
                       ns .. ":pages")
  end
end

for name in pairs(core.endpoints) do
  local ns, method = string_match(name, "^([%w_]+)%.([%w_]+)$")
  if not ns then error("sigmamind: the core's endpoint " .. tostring(name) .. " is not namespace.method") end
  local M = methods[ns]
  if M == nil then
    M = {}
    methods[ns] = M
    local label = "sigmamind." .. ns
    meta[ns] = { __index = M, __name = label, __tostring = function() return label end }
  end
  M[method] = make_method(ns, method, name)
end
for ns, M in pairs(methods) do
  if M.list then add_iterators(ns, M) end
end

-- Gives `client` its namespace objects (client.calls, ...), over the transport `c`.
function _M.attach(client, c)
  for ns, mt in pairs(meta) do client[ns] = setmetatable({ _c = c, _client = client }, mt) end
end

return _M
