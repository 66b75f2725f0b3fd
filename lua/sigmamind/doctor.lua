-- sigmamind.doctor: a read-only check of a server and an account (`sigmamind doctor`), for the
-- first contact with the real API and for support. It reads the raw decoded answers through the core, not
-- the client's normalised pages, so that it sees what the server really sends.
local core = require "sigmamind.core"
local isotime = require "sigmamind.isotime"

local type, pairs, ipairs, tostring, error, next, pcall, os_time, math_abs, string_format, table_concat, table_sort =
      type, pairs, ipairs, tostring, error, next, pcall, os.time, math.abs, string.format, table.concat, table.sort
local null = core.null

local _M = {}

-- the skew above which the clock check warns: reconciliation compares the server's times with ours
_M.MAX_SKEW = 5

-- the list endpoints checked, in order, with the id field of their records
local LISTS = {
  { name = "calls", endpoint = "calls.list", id = "callId", size = 1 },
  { name = "campaigns", endpoint = "campaigns.list", id = "campaignId", size = 1 },
  { name = "phone_numbers", endpoint = "phone_numbers.list", id = "sipPhoneNumber", e164 = true, size = 100 },
  { name = "webhooks", endpoint = "webhooks.list", id = "webhookId", size = 1 },
  { name = "agents", endpoint = "agents.list", id = "agentId", size = 100 },
}

-- libcurl's codes for a TLS failure (handshake, certificate, CA file, pinning)
local TLS_CODES = { [35] = true, [51] = true, [53] = true, [54] = true, [58] = true, [59] = true, [60] = true,
                    [64] = true, [66] = true, [77] = true, [80] = true, [82] = true, [83] = true, [90] = true,
                    [91] = true }

local OPTIONS = { api_key = "string", base_url = "string", timeout = "number", ca_file = "string",
                  place_test_call = "string", now = "function" }

local E164 = "^%+[1-9]%d%d%d%d%d%d?%d?%d?%d?%d?%d?%d?%d?%d?$"   -- + and 7 to 15 digits

local function is_e164(v) return type(v) == "string" and v:match(E164) ~= nil end
_M.is_e164 = is_e164

-- a value's JSON kind in words, for what was seen
local function shape(v)
  if v == nil or v == null then return "null" end
  if type(v) == "table" then
    if next(v) == nil then return "an empty object or array" end
    return v[1] ~= nil and "an array" or "an object"
  end
  if type(v) == "string" then return string_format("a string %q", #v > 40 and v:sub(1, 40) .. "..." or v) end
  return string_format("a %s %s", type(v), tostring(v))
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                 Nov = 11, Dec = 12 }

-- an HTTP Date ("Sun, 06 Nov 1994 08:49:37 GMT") as unix seconds, or nil
function _M.parse_http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, hh, mm, ss = s:match("^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then return nil end
  return isotime.parse_time(string_format("%s-%02d-%02dT%s:%s:%sZ", y, MONTHS[mon], d + 0, hh, mm, ss))
end

local function is_tls_failure(err)
  return type(err) == "table" and TLS_CODES[err.curl_code] == true
end

local function is_loopback(url)
  local host = url:match("^%a+://%[?([^/%]]+)") or ""
  host = host:gsub(":%d+$", "")
  return host == "127.0.0.1" or host == "localhost" or host == "::1" or host:match("^127%.") ~= nil
end

-- the checks of one list's raw answer: status ("ok", "warn", "fail") and what was seen
local function check_page(list, value)
  if type(value) ~= "table" or (value[1] ~= nil and value.data == nil) then
    return "fail", "expected a JSON object with a data array, got " .. shape(value)
  end
  local data = value.data
  if type(data) ~= "table" or (data[1] == nil and next(data) ~= nil) then
    return "fail", "data: expected an array, got " .. shape(data)
  end
  local fails, warns, seen = {}, {}, {}
  seen[#seen + 1] = string_format("data[%d]", #data)
  local total = value.totalCount
  local total_name = "totalCount"
  if total == nil or total == null then total, total_name = value.totalCounts, "totalCounts" end
  if total == nil or total == null then
    warns[#warns + 1] = "no totalCount/totalCounts (a listing cannot say how many there are)"
  elseif type(total) ~= "number" then
    fails[#fails + 1] = total_name .. ": expected a number, got " .. shape(total)
  else
    seen[#seen + 1] = string_format("%s %s", total_name, tostring(total))
  end
  local hn = value.hasNext
  if hn == nil or hn == null then
    warns[#warns + 1] = "no hasNext (paging guesses the end from the page's size)"
  elseif type(hn) ~= "boolean" then
    fails[#fails + 1] = "hasNext: expected a boolean, got " .. shape(hn)
  else
    seen[#seen + 1] = "hasNext " .. tostring(hn)
  end
  local bad_ids = 0
  for i = 1, #data do
    local r = data[i]
    if type(r) ~= "table" or r[1] ~= nil then
      fails[#fails + 1] = string_format("data[%d]: expected an object, got %s", i, shape(r))
      break
    end
    local id = r[list.id]
    local good = list.e164 and is_e164(id) or (not list.e164 and type(id) == "string" and id ~= "")
    if not good then
      bad_ids = bad_ids + 1
      if bad_ids == 1 then
        fails[#fails + 1] = string_format("data[%d].%s: expected %s, got %s", i, list.id,
                                          list.e164 and "an E.164 number" or "a string", shape(id))
      end
    end
  end
  if #data == 0 then seen[#seen + 1] = "no records to check " .. list.id .. " on"
  elseif bad_ids == 0 then seen[#seen + 1] = list.id .. (list.e164 and " E.164" or " strings") end
  if #fails > 0 then
    for _, w in ipairs(warns) do fails[#fails + 1] = w end
    return "fail", table_concat(fails, "; ")
  end
  if #warns > 0 then return "warn", table_concat(warns, "; ") .. "; saw " .. table_concat(seen, ", ") end
  return "ok", table_concat(seen, ", ")
end

-- a failed request in words
local function failure(err)
  if type(err) ~= "table" then return tostring(err) end
  if err.status then
    return string_format("%s %s answered %s: %s", tostring(err.method), tostring(err.path), tostring(err.status),
                         tostring(err.message))
  end
  return string_format("%s %s: %s: %s", tostring(err.method), tostring(err.path), tostring(err.kind),
                       tostring(err.message))
end

--- Check a server and an account; creates nothing unless `place_test_call` is given.
-- opts: api_key, base_url (default https://api.sigmamind.ai), timeout, ca_file, place_test_call (an
-- E.164 number: place one call to it), now (a function giving unix seconds; default os.time).
-- Returns a report: { base_url, ok (nothing failed), checks = { { status, name, detail }, ... },
-- test_call_id (when a call was placed) }.
function _M.run(opts)
  if type(opts) ~= "table" then error("sigmamind.doctor.run: expected a table of options, got " .. type(opts), 2) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then error("sigmamind.doctor.run: unknown option '" .. tostring(k) .. "'", 2) end
    if type(v) ~= want then
      error(string_format("sigmamind.doctor.run: %s: expected a %s, got %s", k, want, type(v)), 2)
    end
  end
  if opts.place_test_call and not is_e164(opts.place_test_call) then
    error("sigmamind.doctor.run: place_test_call: expected an E.164 number (+ and 7 to 15 digits), got '" ..
          opts.place_test_call .. "'", 2)
  end
  local base_url = opts.base_url or "https://api.sigmamind.ai"
  local now = opts.now or os_time
  local report = { base_url = base_url, checks = {}, ok = true }
  local function add(status, name, detail)
    report.checks[#report.checks + 1] = { status = status, name = name, detail = detail }
    if status == "fail" then report.ok = false end
  end

  -- no retries: each check reports the first answer, as it came
  local made, c = pcall(core.new, { api_key = opts.api_key or "", base_url = base_url, max_retries = 0,
                                    timeout = opts.timeout, ca_file = opts.ca_file })
  if not made then
    error("sigmamind.doctor.run: " .. (tostring(c):gsub("^.-sigmamind%.new: ", "")), 2)
  end
  local https = base_url:lower():match("^https://") ~= nil
  local headers_seen = {}
  local function request(endpoint, body, query)
    local value, err, meta = c:request(endpoint, body, query)
    local h = meta and meta.headers or type(err) == "table" and type(err.headers) == "table" and err.headers
    if h then for name in pairs(h) do headers_seen[name] = true end end
    return value, err, meta
  end

  -- the first request: the server is reached, TLS verifies, the key is accepted
  local t0 = now()
  local agents, err, meta = request("agents.list", nil, { size = 100 })
  local t1 = now()
  if agents == nil and type(err) == "table" and err.status == nil then
    if is_tls_failure(err) then
      add("fail", "tls", "TLS failed: " .. tostring(err.message))
    else
      if https then add("warn", "tls", "not checked: the server was not reached") end
      add("fail", "server", "cannot reach " .. base_url .. ": " .. failure(err))
    end
    c:close()
    return report
  end
  if https then add("ok", "tls", "the certificate of " .. base_url .. " verifies")
  elseif is_loopback(base_url) then add("ok", "tls", "plain http to a loopback address: nothing to verify")
  else add("warn", "tls", "plain http: the key and the calls travel unencrypted") end
  if agents == nil and type(err) == "table" and (err.status == 401 or err.status == 403) then
    add("fail", "key", "the key is refused: " .. failure(err))
    c:close()
    return report
  end
  if agents == nil then add("fail", "key", "cannot tell: " .. failure(err))
  else add("ok", "key", "accepted (GET /v1/agents answered " .. tostring(meta and meta.status) .. ")") end

  -- the clock: the server's Date against ours, halfway through the request
  local date = (meta and meta.headers or (type(err) == "table" and type(err.headers) == "table" and err.headers)
                or {}).date
  local theirs = _M.parse_http_date(date)
  if date == nil then
    add("warn", "clock", "no Date header: cannot compare clocks (reconciliation depends on them agreeing)")
  elseif theirs == nil then
    add("warn", "clock", "unreadable Date header '" .. tostring(date) .. "' (reconciliation depends on clocks agreeing)")
  else
    local skew = theirs - (t0 + t1) / 2
    local text = string_format("the server's clock is %+.0f s from ours (Date: %s)", skew, date)
    if math_abs(skew) > _M.MAX_SKEW then
      add("warn", "clock", text .. ": more than " .. _M.MAX_SKEW .. " s, and reconciliation matches calls by time")
    else add("ok", "clock", text) end
  end

  -- each list's raw page
  local pages = {}
  for _, list in ipairs(LISTS) do
    local value, lerr
    if list.name == "agents" then value, lerr = agents, err
    else value, lerr = request(list.endpoint, nil, { size = list.size }) end
    if value == nil then add("fail", list.name, failure(lerr))
    else
      local status, detail = check_page(list, value)
      add(status, list.name, detail)
      if status ~= "fail" then pages[list.name] = value.data end
    end
  end

  -- what the server says about requests and limits
  local names = {}
  for name in pairs(headers_seen) do names[#names + 1] = name end
  table_sort(names)
  local ids, limits = {}, {}
  for _, name in ipairs(names) do
    if name == "x-request-id" or name == "request-id" then ids[#ids + 1] = name end
    if name:match("^x%-ratelimit%-") or name:match("^ratelimit") or name == "retry-after" then
      limits[#limits + 1] = name
    end
  end
  if #ids > 0 then add("ok", "request id", "sent as " .. table_concat(ids, ", "))
  else add("warn", "request id", "no x-request-id or request-id header: support cannot look a request up by id") end
  if #limits > 0 then add("ok", "rate limit", "sent as " .. table_concat(limits, ", "))
  else add("ok", "rate limit", "no x-ratelimit-*, ratelimit-* or retry-after header on these answers") end

  -- a number and an agent to place a call with
  local from, agent_id
  local agent_names = {}
  for _, a in ipairs(pages.agents or {}) do
    if type(a) == "table" and type(a.agentId) == "string" then agent_names[a.agentId] = a.name or true end
  end
  for _, n in ipairs(pages.phone_numbers or {}) do
    if type(n) == "table" and is_e164(n.sipPhoneNumber) and type(n.outboundAgentId) == "string"
       and n.outboundAgentId ~= "" then
      if not from or (agent_names[n.outboundAgentId] and not agent_names[agent_id]) then
        from, agent_id = n.sipPhoneNumber, n.outboundAgentId
      end
    end
  end
  if not pages.phone_numbers or not pages.agents then
    add("warn", "ready to call", "not known: the numbers or the agents could not be read")
  elseif #pages.agents == 0 then
    add("warn", "ready to call", "no agent: a call needs one")
  elseif not from then
    add("warn", "ready to call", "no phone number with an outboundAgentId (" .. #pages.phone_numbers ..
        " numbers): a call needs a number to call from and its agent")
  elseif not agent_names[agent_id] then
    add("warn", "ready to call", string_format("%s calls with agent %s, which is not among the first %d agents",
                                               from, agent_id, #pages.agents))
  else
    add("ok", "ready to call", string_format("%s with agent %s", from, agent_id))
  end

  -- the one call, only when asked for
  if opts.place_test_call then
    if not from then
      add("fail", "test call", "not placed: no phone number with an outboundAgentId to call from")
    else
      local call, cerr = request("calls.create", nil, { fromPhoneNumber = from,
                                                        toPhoneNumber = opts.place_test_call, agentId = agent_id })
      if call == nil then add("fail", "test call", failure(cerr))
      elseif type(call) ~= "table" or type(call.callId) ~= "string" then
        add("fail", "test call", "placed, but the answer has no callId string: " ..
            shape(type(call) == "table" and call.callId or call))
      else
        report.test_call_id = call.callId
        add("ok", "test call", string_format("placed %s from %s to %s", call.callId, from, opts.place_test_call))
      end
    end
  end
  c:close()
  return report
end

return _M
