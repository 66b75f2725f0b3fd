-- lua-sigmamind: the public face: sigmamind.new{}, the client's methods and the module's exports.

--- Place and track outbound phone calls handled by SigmaMind AI voice agents.
--
-- `require "sigmamind"` returns this module. @{new} makes a client; the client's namespaces
-- (@{calls}, @{campaigns}, @{phone_numbers}, @{webhooks}, @{agents}) hold one method per API
-- endpoint, generated from the C core's endpoint table, so field names are the API's own
-- (`fromPhoneNumber`, `dynamicVariables`, ...). Records come back as plain tables.
--
-- Misuse (wrong argument types, unknown options, a closed client) raises. Everything the world can
-- do returns `nil, err`, where `err` is an @{err|error object}. Iterators (`each`, `pages`) raise
-- the error object itself, so `pcall` around a loop gets the typed table.
--
-- Retries: GET, PATCH and DELETE are retried on network errors, timeouts, 408, 429 and 5xx, with
-- backoff 0.5 s·2ⁿ capped at 8 s plus jitter, `Retry-After` honoured (capped at 60 s) and
-- `deadline` bounding the whole operation. A POST creates something (a second `POST /v1/calls`
-- rings a person twice), so it is retried only when the connection was never made or the server
-- answered 429; otherwise `err.sent == true` and you decide.
--
-- Inside one of the client's tasks (@{Client:spawn}, @{map}) the same methods yield to the client's
-- curl multi loop instead of blocking. Inside nginx (OpenResty) the client uses cosockets by
-- itself: see @{sigmamind.ngx}.
-- @module sigmamind
-- @usage
-- local sigmamind = require "sigmamind"
-- local client = sigmamind.new{ api_key = os.getenv("SIGMAMIND_API_KEY") }
-- local call, err = client.calls:create{ fromPhoneNumber = "+14157774444",
--   toPhoneNumber = "+12137774445", agentId = "agent_abc123",
--   dynamicVariables = { customer_name = "Ada" } }
-- if not call then error(tostring(err)) end
-- local done = assert(client.calls:wait(call.callId, { timeout = 600 }))
-- print(done.status, done.duration)
local core     = require "sigmamind.core"
local build    = require "sigmamind.build"
local csv      = require "sigmamind.csv"
local webhook  = require "sigmamind.webhook"
local task     = require "sigmamind.task"
local records  = require "sigmamind.records"
local resource = require "sigmamind.resource"
local log      = require "sigmamind.log"
local describe = require "sigmamind.describe"
-- the namespaces with verbs of their own add them to the methods resource.lua generated
require "sigmamind.resources.calls"
require "sigmamind.resources.campaigns"
require "sigmamind.resources.webhooks"

local error, type, pairs, tostring, setmetatable, pcall, rawget, require, _G =
      error, type, pairs, tostring, setmetatable, pcall, rawget, require, _G
local os_getenv, math_huge, string_format, table_concat, table_sort, io_stderr =
      os.getenv, math.huge, string.format, table.concat, table.sort, io.stderr

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
-- sigmamind.calls etc.: the method tables, for extension and documentation
for ns, M in pairs(resource.methods) do _M[ns] = M end

--- The final call statuses, after which a call changes no more: `ended`, `not_connected` and
-- `error`. @{calls:wait} returns as soon as the call reaches one of them.
-- @table final_statuses
_M.final_statuses = records.final_statuses

--- Base64 (RFC 4648, standard alphabet, padded, one line): what `file` of a raw
-- @{campaigns:create} wants, the CSV's bytes encoded. A plan (@{campaign}) encodes its CSV itself.
-- @string s bytes
-- @treturn string the base64 text
-- @raise when `s` is not a string
-- @usage client.campaigns:create{ campaignName = "Follow-ups", agentId = agent, sipPhoneNumber = from,
--   file = sigmamind.base64(io.open("contacts.csv", "rb"):read("a")) }
function _M.base64(s)
  if type(s) ~= "string" then error("sigmamind.base64: expected a string, got " .. describe.value(s), 2) end
  return core.base64_encode(s)
end

--- Decode base64 as the API checks it: canonical RFC 4648 (padding, no line breaks or spaces,
-- unused bits zero), as for a campaign's `file`.
-- @string s base64 text
-- @treturn[1] string the bytes
-- @return[2] nil, and a message saying the text is not canonical base64
-- @raise when `s` is not a string
function _M.base64_decode(s)
  if type(s) ~= "string" then error("sigmamind.base64_decode: expected a string, got " .. describe.value(s), 2) end
  return core.base64_decode(s)
end

--- The per-request options: the optional last argument of every resource method, such as
-- `client.calls:get(id, opts)` or `client.calls:create(params, opts)`. An unknown name raises.
-- @field timeout seconds per attempt, for this call only
-- @field connect_timeout seconds to connect, per attempt
-- @field deadline seconds for all the attempts of this call together
-- @field max_retries retries after the first attempt
-- @field headers `{ Name = "value" }` sent over the client's own (`false` leaves one out);
-- `X-API-Key`, `Host`, `Content-Length` and `Transfer-Encoding` raise
-- @field extra_body a table merged into the JSON body as given, unchecked: fields the client does
-- not know yet (POST and PATCH only)
-- @field extra_query a table of query parameters appended as given, unchecked
-- @table request_options

--- The response a table came from: for any table a resource method returned (a record, a page), its
-- metadata `{ status, headers, request_id, attempts, elapsed, method, path }`, where `headers` has
-- lower-case names (repeated headers joined by ", ") and `request_id` is the server's `X-Request-Id`;
-- `nil` for any other value (records themselves carry no extra fields). Kept as long as the table is.
-- @param value what a method returned
-- @treturn[1] table the response's metadata
-- @return[2] nil for a value the client did not return
-- @usage local call = assert(client.calls:create(params))
-- print(sigmamind.response(call).request_id, sigmamind.response(call).headers["x-ratelimit-remaining"])
function _M.response(value)
  if type(value) ~= "table" then return nil end
  return resource.responses[value]
end

--- Sends an explicit JSON `null`, as in `client.phone_numbers:update(num, { outboundAgentId =
-- sigmamind.null })` to unassign a number's outbound agent. A `null` in a response is decoded as
-- this value too (it is `cjson.null`).
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

--- Make an error object: a copy of `fields` with the error metatable (its `__tostring`), as the
-- client makes them. Useful to return errors of the same shape from your own wrappers.
-- @function error
-- @tparam table fields at least `kind` (a string); see @{err} for the others
-- @treturn err
-- @raise when `fields.kind` is not a string

--- Is `v` an error object (made by the client or by @{error})?
-- @function is_error
-- @param v any value
-- @treturn boolean

--- The error object: the second value of every failed operation.
-- `tostring(err)` reads like `sigmamind: POST /v1/calls: 400 Bad Request: Invalid request
-- parameters` (with `(after N attempts)` when there were several). No error ever contains the API
-- key.
-- @table err
-- @field kind `invalid` (caught before sending; see `field`), `auth` (401, 403), `not_found`
-- (404), `rejected` (other 4xx), `rate_limited` (429), `server` (5xx), `network`, `timeout`,
-- `decode` (a 2xx whose body is not JSON, or not the JSON the endpoint answers: a record that is
-- not an object, a list whose `data` is not an array of objects, pages repeated by a server that
-- ignores paging), `too_large` (a body over `max_response_bytes`)
-- @field status the HTTP status, when there was a response
-- @field message what went wrong, in words (the API's own `message` for an HTTP error)
-- @field method the HTTP method, e.g. `"POST"`
-- @field path the request path, e.g. `"/v1/calls"`
-- @field body the raw response body (a string), when there was one
-- @field request_id the response's `X-Request-Id`, for SigmaMind's support
-- @field attempts how many attempts were made (0 when nothing was sent)
-- @field resent `true` when the transport sent the last attempt's request twice (libcurl does, on
-- a new connection, when a kept-alive one dies before any answer): what answered was the second
-- one
-- @field elapsed seconds spent on the whole operation
-- @field retryable whether trying again later may succeed
-- @field sent whether the request may have reached the server: when true for a `POST /v1/calls`,
-- the call may exist, and sending it again may ring the person twice
-- @field field for `invalid`: the parameter at fault, e.g. `"toPhoneNumber"`
-- @field problems for an invalid plan or contact list: every problem found, as strings
-- @field retry_after the server's `Retry-After` in seconds (capped at 60), when it sent one
-- @field call for a @{calls:wait} timeout: the call as last seen

-- option name -> checker returning an error message or nil
local function number_opt(min)
  return function(v)
    if type(v) ~= "number" or v ~= v or v < min or v == math_huge then
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
-- a level's name, or false (off); the value shown as it is, as a string level would be
local function log_opt(v)
  if v ~= false and not log.levels[v] then return 'expected "debug", "info" or false', describe.value(v) end
end
-- anything with a write method, as io.stderr
local function file_opt(v)
  local t = type(v)
  local ok, w = pcall(function() return (t == "table" or t == "userdata") and v.write end)
  if not (ok and type(w) == "function") then return "expected a file (anything with a write method)" end
end

local OPTIONS = {
  api_key = kind_opt("string"), base_url = kind_opt("string"),
  timeout = number_opt(0.001), connect_timeout = number_opt(0.001), deadline = number_opt(0.001),
  max_retries = integer_opt(0), ca_file = kind_opt("string"), proxy = kind_opt("string"),
  user_agent = kind_opt("string"), max_response_bytes = integer_opt(1), on_event = kind_opt("function"),
  insecure = kind_opt("boolean"),
  reconcile = kind_opt("boolean"), campaign_upload = kind_opt("string"),   -- its values: core.new
  log = log_opt, log_file = file_opt, keep_nulls = kind_opt("boolean"),
}

local DEFAULTS = {
  base_url = "https://api.sigmamind.ai", timeout = 30, connect_timeout = 10, deadline = 120,
  max_retries = 2, max_response_bytes = 8 * 1024 * 1024, insecure = false,
}

local Client = {}
Client.__index = Client
local task_current = task.current

----------------------------------------------------------------------------------------------------
-- The client.
-- @section client

--- The options of @{new}. Every one is optional; an unknown key, or a value of the wrong type,
-- raises.
-- @table options
-- @field api_key the API key (default: the environment variable `SIGMAMIND_API_KEY`; neither
-- raises). It is copied into the client's C memory and never shown again, not by
-- `tostring(client)` nor in any error or event
-- @field base_url default `"https://api.sigmamind.ai"`, or the environment variable
-- `SIGMAMIND_BASE_URL`
-- @field timeout seconds per attempt (default 30)
-- @field connect_timeout seconds to connect, per attempt (default 10)
-- @field deadline seconds for all the attempts of one operation together, waits included (default
-- 120)
-- @field max_retries retries after the first attempt, an integer >= 0 (default 2)
-- @field ca_file a PEM file of CA certificates to verify the server with (refused inside nginx)
-- @field proxy a proxy URL for libcurl (refused inside nginx). Default: the variables libcurl
-- reads (`http_proxy` for http://; `https_proxy` or `HTTPS_PROXY` for https://; else `all_proxy`,
-- `ALL_PROXY`), with `no_proxy`/`NO_PROXY` for exceptions, read once by `new` rather than on every
-- request. A plain `http://` `base_url` goes straight to its host, never through a proxy (which
-- would read the key): there `proxy` raises, unless `insecure`. An `https://` one goes through an
-- http proxy as a CONNECT tunnel, the key inside TLS
-- @field user_agent replaces the `User-Agent` header (default `lua-sigmamind/VERSION
-- libcurl/VERSION`)
-- @field max_response_bytes a larger response body fails with kind `too_large` (default 8 MiB)
-- @field on_event `function(ev)` called for each `request`, `response`, `retry` and `give_up`;
-- `ev` has `type`, `method`, `path` (numbers masked), `attempt`, `status`, `elapsed`, `delay`,
-- `kind` and never the key. A `gone` event tells that a DELETE sent again was answered 404 and is
-- returned as done. An error it raises does not harm the request; the first one is reported in one
-- line on `log_file` (`sigmamind: on_event handler failed: ...`), the others of that client are not
-- shown
-- @field log `"info"` writes a line on `log_file` for each response (status, time since the
-- operation began, attempt), retry and give-up, `"debug"` for each request too, as
-- `sigmamind: info: POST /v1/calls -> 201 in 12 ms (attempt 1)`; `false` writes none. The lines
-- are made from the events `on_event` gets, so they never hold the key and mask phone numbers.
-- Default: the environment variable `SIGMAMIND_LOG` (`info`, `debug`, or `off`; any other value is
-- ignored with one warning line)
-- @field keep_nulls keep JSON `null` members of records and pages as @{null} instead of leaving them
-- out (default `false`: `call.duration or 0` reads as it looks)
-- @field log_file where the log and the `on_event` report go: anything with a `write` method
-- (default `io.stderr`)
-- @field insecure must be `true` to use `http://` with a host that is not loopback: a literal
-- 127.0.0.0/8 or `[::1]` address, or `localhost` (default `false`); with it, an `http://`
-- request also uses proxies
-- @field reconcile after a `calls:create` that failed once the request may have reached the
-- server, look for the call it may have made and return it marked `reconciled = true` instead of
-- the error (default `true`)
-- @field campaign_upload how @{campaigns:create} sends a campaign: `"json"` (default), `file` the
-- base64 of the CSV, as SigmaMind's outbound-calls guide shows, or `"multipart"`, a
-- `multipart/form-data` form (the CSV as a file part, the variables as a JSON part `variables`), as
-- its API reference shows. A server that answers JSON with 415 gets the same campaign once more as a
-- form, and the client keeps to forms (`on_event` hears a `switch`). Not inside nginx, which sends JSON

--- Make a client. `sigmamind(opts)` is the same call.
-- Inside nginx's Lua module the client talks through cosockets (@{sigmamind.ngx}); elsewhere
-- through libcurl.
-- @tparam[opt] options opts see @{options}
-- @treturn Client the client, with the namespaces @{calls}, @{campaigns}, @{phone_numbers},
-- @{webhooks} and @{agents} as fields
-- @raise on an unknown option, a value of the wrong type, no API key, or a `base_url` that is not
-- an `https://` URL (or `http://` to a loopback host, unless `insecure`)
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
      error(string_format("sigmamind.new: unknown option '%s' (known: %s)", tostring(k),
                          table_concat(names, ", ")), 2)
    end
    local msg, got = check(v)
    if msg then error(string_format("sigmamind.new: %s: %s, got %s", k, msg, got or type(v)), 2) end
    o[k] = v
  end
  o.api_key = o.api_key or os_getenv("SIGMAMIND_API_KEY")
  if o.api_key == nil or o.api_key == "" then
    error("sigmamind.new: no API key: pass api_key or set SIGMAMIND_API_KEY", 2)
  end
  local env_url = os_getenv("SIGMAMIND_BASE_URL")
  if o.base_url == nil and env_url and env_url ~= "" then o.base_url = env_url end
  for k, v in pairs(DEFAULTS) do if o[k] == nil then o[k] = v end end

  -- inside nginx: cosockets (never libcurl, which would block the worker); elsewhere the C core's
  -- libcurl
  local ngx_lua = rawget(_G, "ngx")
  local make = core.new
  if type(ngx_lua) == "table" and type(ngx_lua.socket) == "table"
     and type(ngx_lua.get_phase) == "function" then
    make = require("sigmamind.ngx").new
  end
  local reconcile_opt = o.reconcile
  o.reconcile = nil
  -- the log listener and the user's handler share the transport's one on_event
  local log_file, level = o.log_file or io_stderr, o.log
  if level == nil then level = log.env_level(os_getenv, log_file) end
  o.on_event = log.on_event(o.on_event, level or nil, log_file)
  o.log, o.log_file = nil, nil
  local ok, c = pcall(make, o)
  o.api_key = nil
  if not ok then error(c, 2) end

  local client = setmetatable({ _c = c, base_url = o.base_url, _reconcile = reconcile_opt,
                                _on_event = o.on_event }, Client)
  resource.attach(client, c)
  return client
end

-- waits: ngx.sleep inside nginx, a loop timer inside a task, else a sleep of the process
function Client:_sleep(seconds)
  if seconds <= 0 then return end
  if self._c.sleep then return self._c:sleep(seconds) end
  local s = self._sched
  if s ~= nil and task_current(s) then return task.sleep(s, seconds) end
  core.sleep(seconds)
end

----------------------------------------------------------------------------------------------------
-- Concurrency (task.lua) and the dialer (dial.lua).
-- @section concurrency

--- Run `fn(item, i)` for every item of `list`, `concurrency` at a time, as tasks of `client`, and
-- wait for all. Call it from plain code (it drives the loop itself) or from inside a task.
-- @function map
-- @tparam Client client
-- @tparam table list an array
-- @tparam function fn called as `fn(list[i], i)`; inside it the client's methods yield instead of
-- blocking
-- @tparam[opt] table opts `concurrency`: how many run at once (default 16)
-- @treturn table `results[i]` is `{ value }` when `fn` returned a value, `{ nil, err }` when it
-- returned `nil, err` or raised `err`; in the order of `list`
-- @raise on misuse (not a list, not a function, a bad `concurrency`, an unknown option)
-- @usage local results = sigmamind.map(client, rows, function(row)
--   return client.calls:create{ fromPhoneNumber = from, toPhoneNumber = row.phone,
--                               agentId = agent }
-- end, { concurrency = 16 })
_M.map = task.map

--- A client, made by @{new}. Its namespaces are the fields @{calls}, @{campaigns},
-- @{phone_numbers}, @{webhooks} and @{agents}; `base_url` is the URL it talks to.
-- `tostring(client)` shows the base URL and a redacted key. A client may be closed with
-- `client:close()`, by a `<close>` variable, or by the garbage collector; using it afterwards
-- raises.
-- @type Client

--- Run `fn(...)` as a task: inside it, the client's methods (`calls:create`, `:each`, `:wait`,
-- ...) hand control to the client's curl multi loop instead of blocking, so many requests share
-- one thread. The task starts at the next @{Client:poll}, @{Client:run} or
-- @{sigmamind.task.Task:join}. At most 64 connections to the API are open at once; further
-- requests queue.
-- @tparam function fn
-- @param ... its arguments
-- @treturn sigmamind.task.Task the task; `task:join()` gives its values, or `nil, err` if it
-- raised
-- @raise when `fn` is not a function
-- @usage local t = client:spawn(function(to)
--   return client.calls:create{ fromPhoneNumber = from, toPhoneNumber = to, agentId = agent }
-- end, "+12137774445")
-- client:run()
-- local call, err = t:join()
function Client:spawn(fn, ...)
  if self._closed then error("sigmamind: attempt to use a closed client", 2) end
  return task.spawn(self, fn, ...)
end

--- Drive transfers, timers and ready tasks for at most `timeout` seconds, then return. `poll(0)`
-- does what is ready now, at most a few milliseconds of it however much is queued (1.5 ms of
-- resuming tasks, 32 requests handed to libcurl, 1 ms of acting on ready sockets, 1 ms of
-- completing finished ones; the rest waits for the next call), and tens of microseconds while
-- transfers are only in flight: a host loop (a game, an app server) calls it every frame.
-- @number[opt=0] timeout seconds, >= 0
-- @treturn integer how many tasks are still alive
-- @raise when `timeout` is not a number >= 0
function Client:poll(timeout)
  if timeout == nil then timeout = 0 end
  if type(timeout) ~= "number" or timeout ~= timeout or timeout < 0 then
    error("sigmamind: poll: expected a timeout in seconds >= 0, got " .. describe.value(timeout), 2)
  end
  return task.poll(self, timeout)
end

--- Block until every task of this client is done.
-- @raise when the tasks left wait for each other and nothing else (they could never finish)
function Client:run()
  return task.run(self)
end

--- The bulk dialer: one call per valid contact, never two, even across a crash. See
-- @{sigmamind.dial.dial} for the options and the report.
-- @tparam table opts @{sigmamind.dial.options}
-- @treturn[1] table the @{sigmamind.dial.report}
-- @return[2] nil, @{err} when the contact list cannot be used at all (kind `invalid`)
function Client:dial(opts)
  if self._closed then error("sigmamind: attempt to use a closed client", 2) end
  return require("sigmamind.dial").dial(self, opts)
end

--- Close the client and its connections. Closing twice is harmless.
function Client:close()
  self._c:close()
  self._closed = true        -- the methods check it first, to blame their caller's line
end

Client.__close = Client.close
Client.__gc = nil
Client.__name = "sigmamind.client"
Client.__tostring = function(self) return tostring(self._c) end

-- The reference of the namespace methods, which LDoc cannot see (they are made from the endpoint
-- table), is in resources/*.luadoc.

-- `sigmamind.new` may also be spelled `sigmamind(opts)`.
return setmetatable(_M, { __call = function(_, opts) return _M.new(opts) end })
