-- Sandbox faults: the registry every fault list comes from, armed faults, and chaos mode.
local ngx = ngx
local util = require "sandbox.util"
local store = require "sandbox.store"
local validate = require "sandbox.validate"
local respond = require "sandbox.respond"

local null, describe, array = util.null, util.describe, util.array
local bad, check_int, first_error = validate.bad, validate.check_int, validate.first_error
local send_raw, send_error = respond.send_raw, respond.send_error
local type, ipairs, tonumber, assert = type, ipairs, tonumber, assert
local string_find, string_match, string_sub, string_rep = string.find, string.match, string.sub, string.rep
local table_concat = table.concat
local table_remove, math_floor, math_max, math_min = table.remove, math.floor, math.max, math.min
local ngx_now, ngx_var, ngx_header = ngx.now, ngx.var, ngx.header
local S = store.S

local _M = {}

-- What faults do: each answers the request and returns true, or returns false to let it go on.
-- f is the fault as sent, n its number (MS, BYTES) for one that takes one.
local function too_many()
  ngx_header["Retry-After"] = "1"
  send_error(429, "Rate limit exceeded (sandbox fault)")
  return true
end

local function error_status(f)
  send_error(tonumber(f), "Sandbox fault " .. f)
  return true
end

local function close()
  ngx.exit(444)
  return true
end

local function slow(_, ms)
  ngx.sleep(ms / 1000)
  return false
end

local function truncate()
  local part = '{"callId":"call_truncated","status":"sch'
  ngx.status = 200
  ngx_header["Content-Type"] = "application/json"
  ngx_header["Content-Length"] = #part + 1000
  ngx.print(part)
  ngx.flush(true)
  ngx.exit(ngx.ERROR)
  return true
end

local function garbage()
  send_raw(200, "<html><body>502 Bad Gateway? {not json\n")
  return true
end

local function redirect()
  -- a client that follows redirects would land on another route and be counted there
  ngx_header["Location"] = "/v1/calls"
  send_error(302, "Found (sandbox fault)")
  return true
end

local function send_big(n, chunked)
  if n > 256 * 1024 * 1024 then
    send_error(400, "X-Sandbox-Fault: expected big=BYTES of at most 268435456, got " .. n)
    return true
  end
  local fill = math_max(0, n - 12)
  ngx.status = 200
  ngx_header["Content-Type"] = "application/json"
  if not chunked then
    ngx_header["Content-Length"] = fill + 12
    ngx.print('{"data":"', string_rep("x", fill), '"}\n')
  else
    ngx.print('{"data":"')
    ngx.flush(true)
    local chunk = string_rep("x", 65536)
    local left = fill
    while left > 0 do
      local k = math_min(left, 65536)
      ngx.print(k == 65536 and chunk or string_sub(chunk, 1, k))
      local ok = ngx.flush(true)
      if not ok then return true end
      left = left - k
    end
    ngx.print('"}\n')
  end
  return true
end

local function big(_, n) return send_big(n, false) end
local function bigchunked(_, n) return send_big(n, true) end

-- The faults, one row each, in the order every list of them shows: the "expected ..." messages
-- below, README.md, HACKING.md and docs/sandbox.md (spec/faults_spec.lua holds them to it).
-- fault: its name, or NAME=UNIT for one taking a whole number; chaos: what chaos mode draws by
-- default (none: only when listed); when: "before" the handler (it may answer instead) or "after"
-- it (the request is carried out first); does: what it does (above).
local REGISTRY = {
  { fault = "429",              chaos = "429",      when = "before", does = too_many },
  { fault = "500",              chaos = "500",      when = "before", does = error_status },
  { fault = "503",              chaos = "503",      when = "before", does = error_status },
  { fault = "reset",            chaos = "reset",    when = "before", does = close },
  { fault = "slow=MS",          chaos = "slow=50",  when = "before", does = slow },
  { fault = "truncate",         chaos = "truncate", when = "before", does = truncate },
  { fault = "garbage",          chaos = "garbage",  when = "before", does = garbage },
  { fault = "redirect",                             when = "before", does = redirect },
  { fault = "lost",             chaos = "lost",     when = "after",  does = close },
  { fault = "big=BYTES",                            when = "before", does = big },
  { fault = "bigchunked=BYTES",                     when = "before", does = bigchunked },
}

local BY_NAME, BY_KIND, CHAOS_FAULTS, names = {}, {}, {}, {}
for i, row in ipairs(REGISTRY) do
  assert(row.when == "before" or row.when == "after", row.fault .. ": when is 'before' or 'after'")
  local kind = string_match(row.fault, "^(%a+)=%u+$")
  if kind then BY_KIND[kind] = row else BY_NAME[row.fault] = row end
  if row.chaos then CHAOS_FAULTS[#CHAOS_FAULTS + 1] = row.chaos end
  names[i] = row.fault
end
-- "429, 500, ..., big=BYTES or bigchunked=BYTES": the faults every message that names them expects
local EXPECTED = table_concat(names, ", ", 1, #names - 1) .. " or " .. names[#names]

-- the row of fault f as sent (and its number, for one that takes one), or nil when f is not a fault
local function find(f)
  if type(f) ~= "string" then return nil end
  local row = BY_NAME[f]
  if row then return row end
  local kind, n = string_match(f, "^(%a+)=(%d+)$")
  row = kind and BY_KIND[kind]
  if row then return row, tonumber(n) end
end

-- Fault f (as sent) on a request, before its handler: true when it answered the request; else nil
-- and, for a fault acting after the handler, the function to call then as after(f, n).
function _M.before(f)
  local row, n = find(f)
  if not row then
    send_error(400, "X-Sandbox-Fault: expected " .. EXPECTED .. ", got " .. describe(f))
    return true
  end
  if row.when == "after" then return nil, row.does, n end
  return row.does(f, n) or nil
end

function _M.arm_fault(_, b)
  if b.method ~= nil and (type(b.method) ~= "string" or not string_find(b.method, "^%u+$")) then
    return bad("method", "expected an HTTP method like POST", b.method)
  end
  if type(b.path) ~= "string" or string_sub(b.path, 1, 1) ~= "/" then
    return bad("path", "expected a path like /v1/calls or a route like /v1/calls/{callId}", b.path)
  end
  if not find(b.fault) then return bad("fault", "expected " .. EXPECTED, b.fault) end
  local st, msg = first_error(check_int(b, "count", 1, 1000000))
  if st then return st, msg end
  local f = { method = b.method, path = b.path, fault = b.fault, count = b.count or 1 }
  S.faults[#S.faults + 1] = f
  return 200, { method = f.method or null, path = f.path, fault = f.fault, count = f.count }
end

function _M.clear_faults()
  S.faults = {}
  return 204
end

-- Chaos mode: each non-admin request without a header or armed fault gets, with probability `rate`, one fault
-- drawn from `faults`. The draws come from a private Park-Miller generator seeded by `seed`, so the same seed and
-- the same request sequence give the same faults (math.random also serves ids and numbers, so it is not used).
local PM_M, PM_A = 2147483647, 48271

local function chaos_next(c)
  c.state = c.state * PM_A % PM_M    -- < 2^47: exact in a double, so LuaJIT and Lua 5.4 agree
  return c.state
end

-- the fault for this request, or nil; counted per route and fault
local function chaos_pick(key)
  local c = S.chaos
  if chaos_next(c) >= c.threshold then return nil end
  local f = c.faults[chaos_next(c) % #c.faults + 1]
  local chaos_counts = S.chaos_counts
  local per = chaos_counts[key]
  if not per then per = {} chaos_counts[key] = per end
  per[f] = (per[f] or 0) + 1
  return f
end

function _M.chaos(_, b)
  local rate = b.rate
  if type(rate) ~= "number" or rate ~= rate or rate < 0 or rate > 1 then
    return bad("rate", "expected a probability from 0 to 1", rate)
  end
  if rate == 0 then
    S.chaos = nil
    return 200, { rate = 0, faults = array({}), seed = null }
  end
  local faults = b.faults
  if faults == nil then faults = CHAOS_FAULTS end
  if not util.is_array(faults) or #faults == 0 then
    return bad("faults", "expected a non-empty array of faults like \"500\" or \"slow=50\"", b.faults)
  end
  for _, f in ipairs(faults) do
    if not find(f) then return bad("faults", "expected only " .. EXPECTED, f) end
  end
  local seed = b.seed
  if seed == nil then seed = math_floor(ngx_now() * 1000) % PM_M end
  if type(seed) ~= "number" or seed % 1 ~= 0 or seed < 0 or seed > 1e15 then
    return bad("seed", "expected an integer from 0 to 1000000000000000", seed)
  end
  local list = {}
  for i, f in ipairs(faults) do list[i] = f end
  S.chaos = { rate = rate, faults = list, seed = seed, state = seed % (PM_M - 1) + 1,
            threshold = rate * (PM_M - 1) + 1 }    -- draws are 1 .. PM_M-1, uniform
  return 200, { rate = rate, faults = array(list), seed = seed }
end

local function take_armed(method, uri, tmpl)
  local faults = S.faults
  for i = 1, #faults do
    local f = faults[i]
    if (f.method == nil or f.method == method) and (f.path == uri or f.path == tmpl or f.path == ngx_var.uri) then
      f.count = f.count - 1
      if f.count <= 0 then table_remove(faults, i) end
      return f.fault
    end
  end
end

_M.take_armed, _M.chaos_pick = take_armed, chaos_pick

return _M
