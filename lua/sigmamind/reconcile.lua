-- No double dial after an ambiguous failure: find the call a POST /v1/calls may have made.
--
-- When a create fails after the request may have reached the server (its answer was lost, it timed
-- out, the server failed while handling it), the call may exist. Redialing would ring the person
-- twice; giving up would lose a call that was placed. So the client looks for it first. The Call
-- record carries no destination number (docs/api.md §4), so a candidate must match everything the
-- record does carry: the caller's number, the agent (when one was named), the dynamic variables, a
-- creation time inside the attempt's window, and not be a call this client has already returned.
-- The window is read on the server's clock, which its Date header gives: this host's clock may be
-- minutes off, and a window widened to allow for that would take a look-alike call made a minute
-- before (by another process) for this request's, so that the person this request was for is never
-- called. Only without a Date header is this host's clock taken, with SKEW either way. Only a
-- single such candidate is taken; with none or several, the original error is returned with
-- `err.reconcile` saying why, and the decision stays the caller's.
local isotime = require "sigmamind.isotime"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local string_format, string_find = string.format, string.find

local _M = {}

-- the failures after which the request may have been carried out
local AMBIGUOUS = { timeout = true, network = true, server = true, decode = true, too_large = true }
-- the server may still be handling the request when we first look
local WAITS = { 0, 0.5, 1, 2 }
local SKEW = 120        -- seconds of clock difference tolerated between this host and the server,
                        -- when the server's clock is not known
local SLACK = 1         -- seconds between the clock of the server's Date header and its createdAt's
local PAGE = 100        -- calls per page looked at
local MAX_SCAN = 1000   -- at most this many of the newest calls are looked at, each time
local REMEMBER = 1024   -- call ids this client returned, kept to rule them out

function _M.ambiguous(err)
  return type(err) == "table" and err.sent == true and AMBIGUOUS[err.kind] == true
end

-- A bounded set of the call ids a client has returned from calls:create: the last REMEMBER to
-- 2 * REMEMBER of them, in two generations (when the newer holds REMEMBER, it becomes the older
-- and the older is dropped). Not a ring over one set: Lua 5.4 leaves a deleted key's slot unusable
-- until the table is rehashed, so a set kept at a fixed size by deleting one key per insert is
-- rehashed on every insert (17 us each at 1024 keys).
-- remember_id takes an id known to be a string (calls:create checked it), remember anything.
local function remember_id(client, id)
  local r = client._returned
  if not r then
    r = { new = {}, old = {}, n = 0 }
    client._returned = r
  end
  local new, n = r.new, r.n
  if new[id] or r.old[id] then return end
  if n >= REMEMBER then
    r.old, new, n = new, {}, 0
    r.new = new
  end
  new[id], r.n = true, n + 1
end
_M.remember_id = remember_id

function _M.remember(client, id)
  if type(id) == "string" then remember_id(client, id) end
end

-- whether the client returned this call id (among those remembered)
local function returned_by(r, id)
  return r ~= nil and id ~= nil and (r.new[id] or r.old[id]) == true
end

-- A variable's value as text equal exactly when the values are equal as JSON numbers: the core
-- writes 50.0 as 50 and the server answers the integer 50 (tostring said "50.0" and "50"). A
-- number's text in a string counts as that number; anything else is its tostring.
local function var_text(v)
  if type(v) == "string" then
    if not string_find(v, "^%-?%d+%.?%d*[eE]?[%+%-]?%d*$") then return v end
    local n = tonumber(v)
    if n == nil or n ~= n then return v end
    v = n
  end
  if type(v) ~= "number" then return tostring(v) end
  -- not NaN, not inf
  if v % 1 == 0 and v >= -2 ^ 63 and v < 2 ^ 63 then return string_format("%d", v) end
  return string_format("%.17g", v)
end
_M.var_text = var_text

-- variables equal as JSON would carry them (var_text; nil and {} alike)
local function same_vars(a, b)
  a = type(a) == "table" and a or {}
  b = type(b) == "table" and b or {}
  for k, v in pairs(a) do
    local w = b[k]
    if v ~= w and (w == nil or var_text(v) ~= var_text(w)) then return false end
  end
  for k, v in pairs(b) do if a[k] == nil and v ~= nil then return false end end
  return true
end

local function matches(call, body, lo, hi, returned, parse_time, exclude)
  if type(call) ~= "table" or returned_by(returned, call.callId) then return false end
  if exclude and call.callId ~= nil and exclude[call.callId] then return false end
  if call.callType ~= nil and call.callType ~= "outbound" then return false end
  local pn = call.phoneNumber
  if type(pn) ~= "table" or pn.sipPhoneNumber ~= body.fromPhoneNumber then return false end
  if body.agentId ~= nil and not (type(call.agent) == "table" and call.agent.agentId == body.agentId) then
    return false
  end
  local t = parse_time(call.createdAt)
  if t == nil or t < lo or t > hi then return false end
  return same_vars(body.dynamicVariables, call.dynamicVariables)
end

-- The attempt's window, from t0 (this host's wall clock before the first attempt) to now, on the
-- server's clock when a response told it (`server_clock_offset` of the transport's info()). A Date
-- header counts whole seconds, so the server's clock was up to 1 s ahead of the offset: the window
-- starts at t0 + offset (less SLACK) and ends 1 s (and SLACK) after now + offset.
local function window(c, t0, now)
  local info
  if (type(c) == "table" or type(c) == "userdata") and c.info then info = c:info() end
  local off = type(info) == "table" and info.server_clock_offset or nil
  if type(off) == "number" and off == off then return t0 + off - SLACK, now() + off + 1 + SLACK end
  return t0 - SKEW, now() + SKEW
end

-- The calls created inside the window, read page by page, newest first, until one is older than it,
-- the list ends, a page brings no call not read already, or MAX_SCAN calls were read. A call is
-- taken once, however many pages it is on (a newest-first list shifts while it is read, and a
-- server that ignores paging repeats its first page). The window is taken once the first page came,
-- so that its Date header has set the server's clock. Returns the matching calls, or nil and why.
local function candidates(calls, body, t0, now, returned, parse_time, exclude)
  local found, seen, scanned, lo, hi = {}, {}, 0, nil, nil
  for page_no = 0, MAX_SCAN / PAGE - 1 do
    local page, err = calls:list{ page = page_no, size = PAGE }
    if not page then return nil, "the lookup failed: " .. tostring(err) end
    -- A call made after the page was served cannot be on it: one that says so shows that the clock
    -- the window is read on (the Date header's, or this host's) is behind the one the server stamps
    -- calls with. Then time cannot tell this request's call from a look-alike made before it, and
    -- none is taken.
    if not lo then
      lo, hi = window(calls._c, t0, now)
      for _, call in ipairs(page.data) do
        local t = type(call) == "table" and parse_time(call.createdAt) or nil
        if t ~= nil and t > hi then
          return nil, string_format("call %s is dated %.0f s after the time the lookup was read at: the " ..
                                    "server's clocks (its Date header, its calls' createdAt) disagree, so no " ..
                                    "call is taken by its time", tostring(call.callId), t - (hi - 1 - SLACK)), true
        end
      end
    end
    local older, new = false, false
    for _, call in ipairs(page.data) do
      local id = call.callId
      if id == nil or not seen[id] then
        new, scanned = true, scanned + 1
        if id ~= nil then seen[id] = true end
        if matches(call, body, lo, hi, returned, parse_time, exclude) then found[#found + 1] = call end
      end
      local t = parse_time(call.createdAt)
      if t ~= nil and t < lo then older = true end
    end
    if older or not new or page.hasNext ~= true then break end
  end
  return found
end

-- The creates of a client that are in flight, or that failed ambiguously and were never resolved: a
-- call found for one of them could as well be another's when both have the same caller, agent and
-- variables (a Call has no destination). Tasks of one client create at the same time; a create left
-- unresolved stays a possible owner of the calls made around it for UNRESOLVED_FOR seconds.
-- They are the array client._intents[1 .. client._intents_n], each intent knowing its slot: entering
-- and leaving are an append and a swap with the last, where a set keyed by the intents (new tables,
-- one a create) was rehashed every few creates once some had left.
local UNRESOLVED_FOR = 2 * SKEW + 60

-- takes the registered intent out of the array (the last one moves into its slot)
local function unregister(client, intent)
  local i = intent.slot
  if not i then return end
  local intents, n = client._intents, client._intents_n
  local last = intents[n]
  intents[i], last.slot = last, i
  intents[n], intent.slot = nil, false
  client._intents_n = n - 1
end

-- drops the intents too old to own a call made after `t` (an unanswered one has long timed out by
-- then); returns how many are left
local function prune(client, t)
  local intents = client._intents
  for i = client._intents_n, 1, -1 do          -- from the top: the one swapped in was looked at
    local other = intents[i]
    if other.t0 < t - UNRESOLVED_FOR then unregister(client, other) end
  end
  return client._intents_n
end

-- registers an intent { from, agent, vars, t0, slot = false } (enter's, or one a caller made); returns it
local function register(client, intent)
  local intents = client._intents
  if not intents then intents = {} client._intents, client._intents_n = intents, 0 end
  local n = client._intents_n
  if n >= 256 then n = prune(client, intent.t0) end   -- they pile up only while creates fail
  n = n + 1
  intents[n], intent.slot, client._intents_n = intent, n, n
  return intent
end
_M.register = register

-- registers a create about to be sent; returns its intent, for leave() or find()
function _M.enter(client, body, t0)
  return register(client, { from = body.fromPhoneNumber, agent = body.agentId, vars = body.dynamicVariables,
                            t0 = t0, slot = false })    -- made with room for its slot: no rehash to add it
end

-- the create was answered with its call, or certainly created nothing
_M.leave = unregister

-- another registered create that could own the calls this one's would look like, or nil
local function sibling(client, intent)
  local intents = client._intents
  for i = client._intents_n, 1, -1 do          -- from the top: the one swapped in was looked at
    local other = intents[i]
    if other ~= intent then
      if other.t0 < intent.t0 - UNRESOLVED_FOR then
        unregister(client, other)                      -- too old to own a call made in this window
      elseif other.from == intent.from and (other.agent == nil or intent.agent == nil or other.agent == intent.agent)
             and same_vars(other.vars, intent.vars) then
        return other
      end
    end
  end
end

local function look(calls, body, t0, now, sleep, intent, opts)
  local parse_time = isotime.parse_time
  local client = calls._client
  local returned = client._returned
  local why, saw = "no call matching the request was found", false
  for _, wait in ipairs(opts and opts.waits or WAITS) do
    if wait > 0 then sleep(wait) end
    local found, err, final = candidates(calls, body, t0, now, returned, parse_time, opts and opts.exclude)
    if not found then
      why, saw = err, true                 -- a lookup that failed saw nothing: it proves nothing either
      if final then return nil, why, saw end
    elseif #found == 1 then
      saw = true
      -- a sibling may yet be answered with this very call (which then rules it out), so the waits
      -- go on
      if not (intent and sibling(client, intent)) then return found[1] end
      why = string_format("call %s matches, but another create of this client with the same caller, agent and " ..
                          "variables is unanswered or unresolved, and it may be that one's; give each call a " ..
                          "distinguishing dynamic variable", tostring(found[1].callId))
    elseif #found > 1 then
      return nil, string_format("%d calls match the request (same caller, agent and variables): not one to " ..
                                "choose; give each call a distinguishing dynamic variable", #found), true
    end
  end
  return nil, why, saw
end

-- calls: the client's calls namespace; body: the POST body that was sent; t0: wall-clock time before the first
-- attempt; intent: its registration (enter). Returns the call, or nil and the reason none was taken. The intent is
-- resolved: taken, or seen to have made no call (every lookup answered, and none showed a look-alike), it is
-- dropped; otherwise it stays registered, unresolved, as a possible owner of the look-alikes.
-- opts (optional): `exclude`, a set of call ids known to be other requests' (a dialer's journal
-- holds more than the client remembers), and `waits`, the pauses before each look (default WAITS;
-- { 0 } looks once, for a request answered long ago or abandoned).
function _M.find(calls, body, t0, now, sleep, intent, opts)
  local found, why, saw = look(calls, body, t0, now, sleep, intent, opts)
  if intent then
    if found or not saw then _M.leave(calls._client, intent) end
  end
  return found, why
end

_M.same_vars = same_vars
return _M
