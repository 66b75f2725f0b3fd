-- Inbound webhook deliveries (docs/api.md §5): verify their signature, decode and normalise the
-- event, drop repeats. Lua 5.1/LuaJIT compatible, since it runs inside OpenResty handlers too.

--- Webhook deliveries: verify their signature, decode and normalise the event, drop repeats.
--
-- SigmaMind POSTs call events to your webhook URL, signed with the webhook's `secret` (returned by
-- @{sigmamind.webhooks:create}):
-- `X-SigmaMind-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t .. "." .. body)>`. Verify the
-- **raw body** bytes as received, never re-encoded JSON. The HMAC runs in C (OpenSSL) and is
-- compared in constant time against every `v1=` value and every secret; the timestamp must be
-- within `tolerance` seconds of now in both directions. Also `require("sigmamind").webhook`.
-- @module sigmamind.webhook
-- @usage
-- local webhook = require("sigmamind").webhook
-- local seen = webhook.dedupe{}
-- local event, err = webhook.verify(raw_body, headers, { secret = secret, dedupe = seen })
-- if not event then return 401, tostring(err) end   -- err.reason: see Failure
-- print(event.event, event.call.callId, event.call.status)
local core = require "sigmamind.core"
local describe = require "sigmamind.describe"

local error, type, pairs, ipairs, tostring, tonumber, setmetatable, getmetatable, select =
      error, type, pairs, ipairs, tostring, tonumber, setmetatable, getmetatable, select
local string_lower, string_match, string_find, string_gsub, string_format =
      string.lower, string.match, string.find, string.gsub, string.format
local table_concat, table_sort, math_floor, math_huge = table.concat, table.sort, math.floor, math.huge
local math_type = rawget(math, "type")    -- Lua 5.3+; nil under LuaJIT and 5.1
local hmac_sha256, consteq, json_decode, core_time = core.hmac_sha256, core.consteq, core.json_decode, core.time

local _M = {}

--- The signature header's name; `opts.header` of @{verify} and @{sign_headers} overrides it.
_M.header = "X-SigmaMind-Signature"
--- Seconds a timestamp may be off, either way, when `opts.tolerance` is not given.
_M.default_tolerance = 300

----------------------------------------------------------------------------------------------------
-- Failures: a table with a reason a program can switch on and a message a person can act on.

local Failure = { __name = "sigmamind.webhook.failure" }
Failure.__index = Failure
Failure.__tostring = function(f) return "sigmamind.webhook: " .. f.reason .. ": " .. f.message end

local function fail(reason, message)
  return nil, setmetatable({ reason = reason, message = message }, Failure)
end
--- What @{verify} returns, after `nil`, when a delivery must be refused.
-- `tostring(failure)` reads `sigmamind.webhook: REASON: MESSAGE`.
-- @table Failure
-- @field reason what a program switches on: `missing_signature` (no signature header), `bad_header`
-- (a header that cannot be read), `bad_signature` (no signature matched), `too_old` and `too_new`
-- (the timestamp is outside the tolerance), `bad_json` (the body is not a JSON object with an
-- `event` string: an array is not), `no_secret` (the secrets given are empty), `duplicate` (seen
-- before by `opts.dedupe`), or the reason a custom verifier returned
-- @field message what a person can act on, with hints (re-encoded body, a secret ending in a
-- newline, ...)

--- Make a @{Failure}, for a custom verifier (`opts.scheme`) to return.
-- @string reason
-- @string message
-- @treturn Failure
_M.failure = function(reason, message) return select(2, fail(reason, message)) end

----------------------------------------------------------------------------------------------------
-- Headers: names compared case-insensitively; a value may be an array (OpenResty gives repeated
-- headers so).

local function header_values(headers, name)
  local lname, out = string_lower(name), {}
  for k, v in pairs(headers) do
    if type(k) == "string" and string_lower(k) == lname then
      if type(v) == "table" then
        for _, x in ipairs(v) do if type(x) == "string" then out[#out + 1] = x end end
      elseif type(v) == "string" then
        out[#out + 1] = v
      end
    end
  end
  return out
end

local function header_names(headers)
  local names = {}
  for k in pairs(headers) do if type(k) == "string" then names[#names + 1] = string_lower(k) end end
  table_sort(names)
  return #names > 0 and table_concat(names, ", ") or "none"
end

local function missing(headers, name, shape)
  return fail("missing_signature", string_format("no %s header (expected '%s: %s'); headers received: %s",
                                                 name, name, shape, header_names(headers)))
end

----------------------------------------------------------------------------------------------------
-- Secrets

local function trim(s) return (string_gsub(s, "^%s+", ""):gsub("%s+$", "")) end

-- opts.secret / opts.secrets -> the non-empty ones, all; misuse raises, blaming verify's caller
local function secrets_of(opts, required, fname)
  local list = {}
  if opts.secret ~= nil then
    if type(opts.secret) ~= "string" then
      error(fname .. ": opts.secret: expected a string, got " .. type(opts.secret), 3)
    end
    list[#list + 1] = opts.secret
  end
  if opts.secrets ~= nil then
    if type(opts.secrets) ~= "table" then
      error(fname .. ": opts.secrets: expected an array of strings, got " .. type(opts.secrets), 3)
    end
    for i, s in ipairs(opts.secrets) do
      if type(s) ~= "string" then
        error(string_format("%s: opts.secrets[%d]: expected a string, got %s", fname, i, type(s)), 3)
      end
      list[#list + 1] = s
    end
  end
  if required and opts.secret == nil and opts.secrets == nil then
    error(fname .. ": no secret: pass opts.secret (the webhook's secret, returned by webhooks:create) " ..
          "or opts.secrets = { new, old } while rotating", 3)
  end
  local usable = {}
  for _, s in ipairs(list) do if s ~= "" then usable[#usable + 1] = s end end
  return usable, list
end

local function whitespace_hint(list)
  for _, s in ipairs(list) do
    if s ~= trim(s) then
      return " (hint: secret has leading/trailing whitespace; a secret read from a file or an environment " ..
             "variable often ends in a newline)"
    end
  end
  return ""
end

-- Compares every candidate with every secret's HMAC and never stops early, so the time taken says
-- nothing about which candidate or secret came close.
local function any_match(secrets, message, candidates)
  local ok = false
  for _, secret in ipairs(secrets) do
    local expected = hmac_sha256(secret, message, "hex")
    for _, c in ipairs(candidates) do
      if consteq(expected, c) then ok = true end
    end
  end
  return ok
end

----------------------------------------------------------------------------------------------------
-- Schemes

local SHAPE = "t=<unix seconds>,v1=<hex HMAC-SHA256>"

-- "t=1700000000,v1=abc,v1=def" -> t, { "abc", "def" } | nil, message
local function parse_sigmamind(value)
  local t, v1s, err = nil, {}, nil
  for item in (value .. ","):gmatch("([^,]*),") do
    local k, v = string_match(item, "^%s*([%w_]+)%s*=%s*(.-)%s*$")
    if k == "t" then
      if t ~= nil then err = "more than one t= value" end
      -- at most 15 digits: no clock gives more, and past 2^63 tonumber makes a float %d refuses
      if not string_find(v, "^%d+$") or #v > 15 then err = "t= is not a whole number of unix seconds" end
      t = v
    elseif k == "v1" then
      if string_find(v, "^%x+$") then v1s[#v1s + 1] = string_lower(v) end
    elseif not k and string_find(item, "%S") then
      err = "unreadable element '" .. item .. "'"
    end
    -- other keys (v0=, future schemes) are ignored, as the header format allows
  end
  if err then return nil, err end
  if not t then return nil, "no t= timestamp" end
  if #v1s == 0 then return nil, "no v1= signature" end
  return t, v1s
end

-- NaN compares false with everything, so a NaN tolerance or clock would let any timestamp through:
-- refuse them, and infinities with them (an infinite tolerance accepts every replay).
local function finite(x) return type(x) == "number" and x == x and x ~= math_huge and x ~= -math_huge end

-- opts.tolerance and opts.now, checked before anything is read: misuse raises whatever the delivery
local function window(opts)
  local tolerance = opts.tolerance
  if tolerance == nil then tolerance = _M.default_tolerance end
  if not finite(tolerance) or tolerance < 0 then
    error("sigmamind.webhook.verify: opts.tolerance: expected finite seconds >= 0, got " .. describe.value(tolerance),
          4)
  end
  local now = opts.now
  if now ~= nil and type(now) ~= "function" and not finite(now) then
    error("sigmamind.webhook.verify: opts.now: expected finite unix seconds or a function returning them, got " ..
          describe.value(now), 4)
  end
  return tolerance
end

-- a function's answer is checked each time: a clock returning NaN must not accept every timestamp
local function clock(opts)
  local now = opts.now
  if now == nil then return core_time() end
  if type(now) == "function" then
    now = now()
    if not finite(now) then
      error("sigmamind.webhook.verify: opts.now: the function returned " .. describe.value(now) ..
            ", expected finite unix seconds", 4)
    end
  end
  return now
end

local function verify_sigmamind(raw_body, headers, opts, secrets, all_secrets)
  local tolerance = window(opts)
  local name = opts.header or _M.header
  local values = header_values(headers, name)
  if #values == 0 then return missing(headers, name, SHAPE) end
  -- each header value (repeated headers) is checked on its own; any one that verifies is enough
  local matched_t, last_err, count = nil, nil, 0
  for _, value in ipairs(values) do
    local t, v1s = parse_sigmamind(value)
    if not t then
      last_err = v1s
    else
      count = count + #v1s
      if any_match(secrets, t .. "." .. raw_body, v1s) then matched_t = matched_t or tonumber(t) end
    end
  end
  if count == 0 then
    return fail("bad_header", string_format("%s: %s (expected '%s')", name, last_err, SHAPE))
  end
  if not matched_t then
    return fail("bad_signature", string_format(
      "no v1 signature matched (%d signature%s, %d secret%s tried); verify the raw body bytes as received, " ..
      "not re-encoded JSON%s", count, count == 1 and "" or "s", #secrets, #secrets == 1 and "" or "s",
      whitespace_hint(all_secrets)))
  end
  local now = clock(opts)
  if now - matched_t > tolerance then
    return fail("too_old", string_format("timestamp %d is %d s before now (tolerance %g s): a replay, or a " ..
                                         "clock that is off", matched_t, math_floor(now - matched_t), tolerance))
  end
  if matched_t - now > tolerance then
    return fail("too_new", string_format("timestamp %d is %d s after now (tolerance %g s): check this " ..
                                         "machine's clock", matched_t, math_floor(matched_t - now), tolerance))
  end
  return true
end

local function verify_plain(raw_body, headers, opts, secrets, all_secrets)
  local name = opts.header or _M.header
  local values = header_values(headers, name)
  if #values == 0 then return missing(headers, name, "<hex HMAC-SHA256 of the body>") end
  local candidates = {}
  for _, v in ipairs(values) do
    local hex = string_match(v, "^%s*[Ss][Hh][Aa]256=(%x+)%s*$") or string_match(v, "^%s*(%x+)%s*$")
    if hex then candidates[#candidates + 1] = string_lower(hex) end
  end
  if #candidates == 0 then
    return fail("bad_header", string_format("%s: expected a hex HMAC-SHA256, optionally prefixed 'sha256='", name))
  end
  if not any_match(secrets, raw_body, candidates) then
    return fail("bad_signature", "the HMAC of the body does not match; verify the raw body bytes as received" ..
                                 whitespace_hint(all_secrets))
  end
  return true
end

----------------------------------------------------------------------------------------------------
-- The event: decoded and normalised like the client's records (docs/api.md §4, §5).

local EVENT_ALIASES = { conversation_analyzed = "conversation_analysed" }

local function normalise(event)
  if type(event.event) == "string" then event.event = EVENT_ALIASES[event.event] or event.event end
  local call = event.call
  if type(call) == "table" then
    if type(call.status) == "string" then call.status = (string_gsub(call.status, "-", "_")) end
    if call.dynamicVariables == nil and call.variables ~= nil then call.dynamicVariables = call.variables end
  end
  return event
end
--- Normalise a decoded event in place, as @{verify} does: `conversation_analyzed` becomes
-- `conversation_analysed`, a call status `in-progress` becomes `in_progress`, and the call's
-- `variables` are also offered as `dynamicVariables`.
-- @function normalise
-- @tparam table event
-- @treturn table the same event
_M.normalise = normalise

-- The decoder gives arrays and objects alike as tables, so an array is told by its first byte
-- after white space: a signed `[1,2]` must not pass for an event whose fields are all nil.
local function decode(raw_body)
  local event, msg = json_decode(raw_body)
  if type(event) ~= "table" then
    return fail("bad_json", "the body is not a JSON object" .. (msg and (": " .. tostring(msg)) or ""))
  end
  if not string_find(raw_body, "^[ \t\r\n]*{") then
    return fail("bad_json", "the body is not a JSON object: it is an array")
  end
  local name = event.event
  if type(name) ~= "string" then
    return fail("bad_json", "the body is not a JSON object with an \"event\" string: event is " ..
                            (name == nil and "missing" or name == core.null and "null" or "a " .. type(name)))
  end
  return normalise(event)
end

----------------------------------------------------------------------------------------------------
-- verify

local function check_args(raw_body, headers, opts)
  if type(raw_body) ~= "string" then
    local hint = type(raw_body) == "table" and "pass the raw request body string, not a decoded table"
              or raw_body == nil and "pass the raw request body string (OpenResty: ngx.req.read_body() " ..
                                     "then ngx.req.get_body_data())"
              or "pass the raw request body string"
    error("sigmamind.webhook.verify: raw_body: expected a string, got " .. type(raw_body) .. ": " .. hint, 3)
  end
  if type(headers) ~= "table" then
    error("sigmamind.webhook.verify: headers: expected a table of request headers, got " .. type(headers), 3)
  end
  if type(opts) ~= "table" then
    error("sigmamind.webhook.verify: opts: expected a table with secret = ..., got " .. type(opts), 3)
  end
end

--- Verify a delivery and return the decoded, normalised event.
-- @string raw_body the request body exactly as received (OpenResty: `ngx.req.read_body()` then
-- `ngx.req.get_body_data()`)
-- @tparam table headers the request headers; names are matched case-insensitively and a value may
-- be an array of repeated headers
-- @tparam table opts
-- @tparam[opt] string opts.secret the webhook's secret
-- @tparam[opt] {string,...} opts.secrets several secrets, any of which may match (`{ new, old }`
-- while rotating)
-- @tparam[opt=300] number opts.tolerance seconds the timestamp may be off, in either direction
-- @tparam[opt] number|function opts.now the current unix time, or a function giving it (for tests)
-- @tparam[opt="sigmamind"] string|function opts.scheme `"sigmamind"` (`t=...,v1=...`), `"plain"` (a
-- bare hex HMAC of the body, optionally prefixed `sha256=`), or your own
-- `function(raw_body, headers, opts)` returning true, or false and a reason string or @{Failure};
-- no secret is needed then
-- @tparam[opt] string opts.header the signature header's name (default @{header})
-- @tparam[opt] Dedupe opts.dedupe drop a delivery seen before (see @{dedupe})
-- @treturn[1] table the event (`event`, `call`, ...)
-- @return[2] nil, @{Failure}
-- @raise on misuse: `raw_body` not a string (a decoded table, say), no secret, a bad option
function _M.verify(raw_body, headers, opts)
  check_args(raw_body, headers, opts)
  local scheme = opts.scheme or "sigmamind"
  if scheme ~= "sigmamind" and scheme ~= "plain" and type(scheme) ~= "function" then
    error("sigmamind.webhook.verify: opts.scheme: expected \"sigmamind\", \"plain\" or a function, got " ..
          describe.value(scheme), 2)
  end
  if opts.dedupe ~= nil and (type(opts.dedupe) ~= "table" or type(opts.dedupe.seen) ~= "function") then
    error("sigmamind.webhook.verify: opts.dedupe: expected an object from webhook.dedupe()", 2)
  end
  local custom = type(scheme) == "function"
  local secrets, all_secrets = secrets_of(opts, not custom, "sigmamind.webhook.verify")
  local ok, reason
  if custom then
    ok, reason = scheme(raw_body, headers, opts)
    if not ok then
      if type(reason) == "table" and getmetatable(reason) == Failure then return nil, reason end
      return fail(type(reason) == "string" and reason or "bad_signature", "the custom verifier refused the delivery")
    end
  else
    if #secrets == 0 then
      return fail("no_secret", "the configured secret is empty" .. (#all_secrets > 1 and " (all of them)" or ""))
    end
    if scheme == "plain" then
      ok, reason = verify_plain(raw_body, headers, opts, secrets, all_secrets)
    else
      ok, reason = verify_sigmamind(raw_body, headers, opts, secrets, all_secrets)
    end
    if not ok then return nil, reason end
  end
  local event, err = decode(raw_body)
  if not event then return nil, err end
  if opts.dedupe and opts.dedupe:seen(event) then
    return fail("duplicate", string_format("already seen: %s for call %s", tostring(event.event),
                                           tostring(type(event.call) == "table" and event.call.callId)))
  end
  return event
end

----------------------------------------------------------------------------------------------------
-- sign: the header a sender would set; for tests and for users testing their receivers.
-- @section sign

--- Sign a body as SigmaMind does: the value of the signature header.
-- @string raw_body
-- @tparam string|{string,...} secret a secret, or several (one `v1=` each)
-- @tparam[opt] table opts `t` (unix seconds, default now; finite, from 0 to below 1e15);
-- `scheme = "plain"` gives the bare hex HMAC of the body with the first secret
-- @treturn string e.g. `t=1700000000,v1=5f2b...`
-- @raise on misuse
-- @usage local headers = { ["X-SigmaMind-Signature"] = webhook.sign(body, secret) }
function _M.sign(raw_body, secret, opts)
  if type(raw_body) ~= "string" then error("sigmamind.webhook.sign: raw_body: expected a string, got " .. type(raw_body), 2) end
  local list = type(secret) == "table" and secret or { secret }
  if #list == 0 then error("sigmamind.webhook.sign: expected a secret string or an array of them", 2) end
  for _, s in ipairs(list) do
    if type(s) ~= "string" then error("sigmamind.webhook.sign: secret: expected a string, got " .. type(s), 2) end
  end
  if opts ~= nil and type(opts) ~= "table" then error("sigmamind.webhook.sign: opts: expected a table", 2) end
  opts = opts or {}
  if opts.scheme == "plain" then return hmac_sha256(list[1], raw_body, "hex") end
  local t = opts.t or core_time()
  -- the t= verify reads: at most 15 digits, so NaN, infinities, 2^63 and negatives make no header
  if not finite(t) or t < 0 or t >= 1e15 then
    error("sigmamind.webhook.sign: opts.t: expected unix seconds (a finite number from 0 to 1e15), got " ..
          describe.value(t), 2)
  end
  t = string_format("%d", math_floor(t))
  local parts = { "t=" .. t }
  for _, s in ipairs(list) do parts[#parts + 1] = "v1=" .. hmac_sha256(s, t .. "." .. raw_body, "hex") end
  return table_concat(parts, ",")
end

--- @{sign}, as a headers table: `{ [opts.header or header] = signature }`.
-- @string raw_body
-- @tparam string|{string,...} secret
-- @tparam[opt] table opts as for @{sign}, plus `header`
-- @treturn table
function _M.sign_headers(raw_body, secret, opts)
  local name = opts and opts.header or _M.header
  return { [name] = _M.sign(raw_body, secret, opts) }
end

----------------------------------------------------------------------------------------------------
-- dedupe: retried deliveries arrive twice; remember (callId, event) for a while.
-- @section dedupe

-- The default store: an in-memory table bounded in size (least recently used evicted) with a TTL
-- per key. Its functions are called as methods, like an ngx.shared.DICT's, so that Dedupe has one
-- convention for every store.
local function memory_store(max_keys, now)
  local map, count = {}, 0
  local head = {}              -- sentinel of a circular doubly-linked list, most recent after head
  head.next, head.prev = head, head
  local function unlink(n) n.prev.next, n.next.prev = n.next, n.prev end
  local function push(n) n.next, n.prev = head.next, head; head.next.prev = n; head.next = n end
  local store = {}
  function store.get(_, key)
    local n = map[key]
    if not n then return nil end
    if n.expires and n.expires <= now() then
      unlink(n); map[key] = nil; count = count - 1
      return nil
    end
    unlink(n); push(n)
    return n.value
  end
  function store.set(_, key, value, ttl)
    local n = map[key]
    if n then unlink(n); map[key] = nil; count = count - 1 end
    if value == nil then return true end
    n = { key = key, value = value, expires = ttl and ttl > 0 and now() + ttl or nil }
    map[key] = n; push(n); count = count + 1
    while count > max_keys do
      local last = head.prev
      unlink(last); map[last.key] = nil; count = count - 1
    end
    return true
  end
  function store.delete(self, key) return self:set(key, nil) end
  function store.size() return count end
  return store
end
--- The default store of @{dedupe}: an in-memory table bounded in size (least recently used
-- evicted), with a TTL per key. Each worker process has its own; inside nginx use an
-- `ngx.shared.DICT`, which has `add`.
-- @tparam[opt] table opts `max_keys` (default 10000), `now` (a clock function, default the
-- system's)
-- @treturn table a store, called with methods as an `ngx.shared.DICT` is: `store:get(key)`,
-- `store:set(key, value, ttl)`, `store:delete(key)`, `store:size()`
_M.memory_store = function(opts)
  opts = opts or {}
  return memory_store(opts.max_keys or 10000, opts.now or core_time)
end

local Dedupe = { __name = "sigmamind.webhook.dedupe" }
Dedupe.__index = Dedupe

-- The text of a call id that identifies a call: a non-empty string, or an integer (or a whole float
-- within 2^53, as LuaJIT has only floats). Anything else identifies nothing: tostring gives "false"
-- or "userdata: NULL" to unrelated calls alike, and no retry repeats a table's address.
local function call_id_text(id)
  if type(id) == "string" then return id ~= "" and id or nil end
  if type(id) ~= "number" then return nil end
  if math_type and math_type(id) == "integer" then return string_format("%d", id) end
  if id == math_floor(id) and id < 2 ^ 53 and id > -2 ^ 53 then return string_format("%d", id) end
  return nil
end

-- ':' and '%' are escaped so that the id and the event name, both from the body, cannot shift into
-- each other ("a:b" + "c" against "a" + "b:c"); ids and names without them keep their plain key.
local function key_part(s) return (string_gsub(s, "[%%:]", { ["%"] = "%25", [":"] = "%3A" })) end

-- The event name and the call id identify a delivery (one event of each kind per call). An event
-- without both is never a repeat: at-least-once receivers handle a retry twice anyway, while
-- dropping a distinct event loses it.
local function default_key(event)
  if type(event) ~= "table" or type(event.event) ~= "string" then return nil end
  local call = event.call
  local id = type(call) == "table" and call_id_text(call.callId) or nil
  if id == nil then return nil end
  return "sigmamind:webhook:" .. key_part(id) .. ":" .. key_part(event.event)
end

--- A memory of deliveries already accepted, for `opts.dedupe` of @{verify}: retried deliveries
-- arrive twice.
-- @tparam[opt] table opts
-- @tparam[opt] table opts.store where keys are remembered: an `ngx.shared.DICT`
-- (`lua_shared_dict`), or any object with the same methods, called as methods (`store:get(key)`,
-- not `store.get(key)`): `get(key)` and `set(key, value, ttl)`, optionally `add(key, value, ttl)`
-- (`ngx.shared.DICT:add`'s contract: `true`, or `false, "exists"`; used atomically) and
-- `delete(key)`; default @{memory_store}
-- @tparam[opt=86400] number opts.ttl seconds to remember a delivery
-- @tparam[opt=10000] integer opts.max_keys the default store's size
-- @tparam[opt] function opts.key `key(event)` gives the key, or nil for an event never counted as a
-- repeat (default: the event name and `call.callId` when that is a non-empty string or an integer;
-- nil otherwise)
-- @tparam[opt] number|function opts.now the clock of the default store
-- @treturn Dedupe
-- @raise on a bad option
-- @usage -- nginx.conf: lua_shared_dict webhooks 10m;
-- local seen = webhook.dedupe{ store = ngx.shared.webhooks }
-- @usage local data = {}   -- a custom store: its functions take the store first, as methods do
-- local store = { get = function(self, k) return data[k] end,
--                 set = function(self, k, v, ttl) data[k] = v end }
-- local seen = webhook.dedupe{ store = store }
function _M.dedupe(opts)
  if opts ~= nil and type(opts) ~= "table" then error("sigmamind.webhook.dedupe: expected an options table", 2) end
  opts = opts or {}
  local store = opts.store
  if store ~= nil and (type(store) ~= "table" or type(store.get) ~= "function" or type(store.set) ~= "function") then
    error("sigmamind.webhook.dedupe: store: expected an ngx.shared.DICT or an object with the methods " ..
          "store:get(key) and store:set(key, value, ttl)", 2)
  end
  if opts.key ~= nil and type(opts.key) ~= "function" then error("sigmamind.webhook.dedupe: key: expected a function", 2) end
  local ttl = opts.ttl or 86400
  if type(ttl) ~= "number" or ttl ~= ttl or ttl <= 0 then     -- NaN is no number of seconds
    error("sigmamind.webhook.dedupe: ttl: expected seconds > 0", 2)
  end
  local now = opts.now or core_time
  if type(now) == "number" then local n = now; now = function() return n end end
  return setmetatable({
    store = store or memory_store(opts.max_keys or 10000, now),
    ttl = ttl, key = opts.key or default_key,
  }, Dedupe)
end

--- What @{dedupe} returns.
-- @type Dedupe

--- Was this (callId, event) seen before? Records it otherwise. Only a `call.callId` that is a
-- non-empty string or an integer identifies an event; an event without one (no `call`, a null,
-- table or fractional id) is never a repeat, since nothing tells its retry from a different event.
-- A store with `add(key, value, ttl) -> true | false, "exists"` (ngx.shared.DICT:add's contract) is
-- used atomically, so two workers receiving the same retry at once cannot both see it as new;
-- get-then-set stores cannot promise that. An `add` that fails for another reason
-- (`false, "no memory"`) did not remember the key: the delivery is then not a repeat, since
-- dropping it would lose the event.
-- @tparam table event a decoded event
-- @treturn boolean
function Dedupe:seen(event)
  local key = self.key(event)
  if key == nil then return false end
  local store = self.store
  if store.add then
    local ok, err = store:add(key, 1, self.ttl)
    if ok then return false end
    return err == nil or err == "exists"
  end
  if store:get(key) then return true end
  store:set(key, 1, self.ttl)
  return false
end

--- Undo @{Dedupe:seen} for an event the handler failed to process, so that SigmaMind's retry is
-- accepted.
-- @tparam table event
function Dedupe:forget(event)
  local key = self.key(event)
  if key == nil then return end
  local store = self.store
  if store.delete then store:delete(key) else store:set(key, nil, 0) end
end

return _M
