-- Observe: call analytics (calls:stats) and per-contact campaign progress (campaigns:progress).
local core    = require "sigmamind.core"
local build   = require "sigmamind.build"
local csv     = require "sigmamind.csv"
local isotime = require "sigmamind.isotime"
local api_records = require "sigmamind.records"
local describe    = require "sigmamind.describe"
local renderings  = require "sigmamind.report"
local var_text = require("sigmamind.reconcile").var_text

local type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable =
      type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable
local math_floor, math_ceil, math_log, math_exp, math_max, math_min, math_huge =
      math.floor, math.ceil, math.log, math.exp, math.max, math.min, math.huge
local string_format, string_match, string_find, string_sub =
      string.format, string.match, string.find, string.sub
local table_concat, table_sort = table.concat, table.sort

local _M = {}

local FINAL, STATUS_ORDER = api_records.FINAL, api_records.call_statuses

-- ISO-8601 times (isotime.lua), also observe.parse_time and observe.format_time for the CLI
local parse_time, format_time = isotime.parse_time, isotime.format_time
_M.parse_time, _M.format_time = parse_time, format_time

-- the renderings (report.lua), also reached from here
_M.text, _M.html, _M.bar, _M.ranked, _M.escape = renderings.text, renderings.html, renderings.bar,
                                                 renderings.ranked, renderings.escape

----------------------------------------------------------------------------------------------------
-- Durations: a fixed histogram, so memory does not grow with the number of calls.
-- Durations are whole seconds (docs/api.md §4); each is rounded to one and counted in its own
-- bucket up to EXACT_MAX (two hours), so p50/p95 are exact (nearest rank) for every duration up to
-- two hours. Longer ones fall into logarithmic buckets 1 % wide and are reported as the bucket's
-- geometric middle: within 0.5 % of the truth. Memory: at most 7,201 exact buckets plus one per
-- 1 % above two hours, whatever the number of calls.
local EXACT_MAX = 7200
local LOG_STEP = math_log(1.01)

local function hist_new() return { exact = {}, over = {}, n = 0 } end

local function hist_add(h, d)
  local s = math_floor(d + 0.5)
  if s < 0 then s = 0 end
  if s <= EXACT_MAX then
    h.exact[s] = (h.exact[s] or 0) + 1
  else
    local k = math_floor(math_log(s) / LOG_STEP)
    h.over[k] = (h.over[k] or 0) + 1
  end
  h.n = h.n + 1
end

-- the buckets in order: calls fn(value, count) for each
local function hist_walk(h, fn)
  local exact = h.exact
  for s = 0, EXACT_MAX do
    local c = exact[s]
    if c and fn(s, c) then return end
  end
  local keys = {}
  for k in pairs(h.over) do keys[#keys + 1] = k end
  table_sort(keys)
  for _, k in ipairs(keys) do
    if fn(math_floor(math_exp((k + 0.5) * LOG_STEP) + 0.5), h.over[k]) then return end
  end
end

-- nearest-rank quantile: the smallest value with at least ceil(p * n) values at or below it
local function hist_quantile(h, p)
  if h.n == 0 then return nil end
  local rank = math_max(1, math_ceil(p * h.n))
  local acc, found = 0, nil
  hist_walk(h, function(v, c)
    acc = acc + c
    if acc >= rank then found = v; return true end
  end)
  return found
end

-- about `bins` bins of a round width (1, 2 or 5 times a power of ten seconds) from 0 to the longest
-- duration
local function hist_bins(h, max, bins)
  if h.n == 0 then return {} end
  local width, scale = 1, 1
  while math_floor(max / width) + 1 > bins do
    if width == scale then width = 2 * scale
    elseif width == 2 * scale then width = 5 * scale
    else scale = scale * 10; width = scale end
  end
  local out = {}
  for i = 1, math_floor(max / width) + 1 do
    out[i] = { from = (i - 1) * width, to = i * width - 1, count = 0 }
  end
  hist_walk(h, function(v, c)
    local b = out[math_min(#out, math_floor(v / width) + 1)]
    b.count = b.count + c
  end)
  return out
end

----------------------------------------------------------------------------------------------------
-- calls:stats

local STATS_OPTS = { status = "string", since = true, before = true, campaign = "string", agent = "string",
                     limit = "number", size = "number" }

local function check_time(opts, name)
  local v = opts[name]
  if v == nil then return nil end
  if type(v) == "string" and string_find(v, "^%d+%.?%d*$") then v = tonumber(v) end
  local t = parse_time(v)
  if t == nil then
    error(string_format("sigmamind: calls:stats: %s: expected an ISO-8601 time (2024-04-20T10:00:00Z) or unix " ..
                        "seconds, got %s", name, describe.value(opts[name])), 4)
  end
  return t
end

local function check_stats_opts(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("sigmamind: calls:stats: expected a table of options, got " .. type(opts), 4) end
  for k, v in pairs(opts) do
    local want = STATS_OPTS[k]
    if not want then
      error(string_format("sigmamind: calls:stats: unknown option '%s' (known: agent, before, campaign, limit, " ..
                          "since, size, status)", tostring(k)), 4)
    end
    if want ~= true and type(v) ~= want then
      error(string_format("sigmamind: calls:stats: %s: expected a %s, got %s", k, want, type(v)), 4)
    end
  end
  if opts.limit ~= nil and (opts.limit < 0 or opts.limit % 1 ~= 0) then
    error("sigmamind: calls:stats: limit: expected an integer >= 0", 4)
  end
  return opts
end

local function agent_of(call)
  local a = call.agent
  if type(a) == "table" and a.agentId ~= nil then return a.agentId end
  return call.agentId
end

local function campaign_of(call)
  local c = call.campaign
  if type(c) == "table" then return c.campaignId end
  return nil
end

-- stats(calls_namespace, opts) -> stats | nil, err (see README "Observing calls and campaigns").
--
-- Pages through the calls once with `each` (one page in memory) and keeps only counters and the
-- histogram. Early stop: the list's order is read from the data (the sandbox and SigmaMind list
-- newest first). Once createdAt has decreased and never increased along the list, the list is taken
-- to be newest-first, and the first record older than `since` ends the scan: every later one is
-- older still. A list seen to go both ways is scanned to the end.
function _M.stats(calls, opts)
  opts = check_stats_opts(opts)
  local since, before = check_time(opts, "since"), check_time(opts, "before")
  local want_status, want_campaign, want_agent = opts.status, opts.campaign, opts.agent
  local limit = opts.limit
  if limit == 0 then limit = nil end

  local count, scanned, finished = 0, 0, 0
  local by_status, by_reason = {}, {}
  local hist, dsum, dmin, dmax = hist_new(), 0, nil, nil
  local first_t, first_s, last_t, last_s
  local prev_t, decreasing, increasing, stopped = nil, false, false, nil

  local function add(call, t)
    count = count + 1
    local st = call.status
    if type(st) == "string" then
      by_status[st] = (by_status[st] or 0) + 1
      if FINAL[st] then finished = finished + 1 end
    end
    local reason = call.terminationReason
    if type(reason) == "string" then by_reason[reason] = (by_reason[reason] or 0) + 1 end
    local d = call.duration
    if type(d) == "number" and d == d and d >= 0 and d < math_huge then
      hist_add(hist, d)
      dsum = dsum + d
      if dmax == nil or d > dmax then dmax = d end
      if dmin == nil or d < dmin then dmin = d end
    end
    if t then
      if first_t == nil or t < first_t then first_t, first_s = t, call.createdAt end
      if last_t == nil or t > last_t then last_t, last_s = t, call.createdAt end
    end
  end

  local ok, err = pcall(function()
    for call in calls:each{ status = want_status, size = opts.size or 100 } do
      scanned = scanned + 1
      local t = parse_time(call.createdAt)
      if t then
        if prev_t then
          if t < prev_t then decreasing = true elseif t > prev_t then increasing = true end
        end
        prev_t = t
        if since and t < since and decreasing and not increasing then stopped = "since"; break end
      end
      local keep = true
      if (since or before) and t == nil then keep = false        -- cannot be placed in the window
      elseif since and t < since then keep = false
      elseif before and t >= before then keep = false
      elseif want_status and call.status ~= want_status then keep = false
      elseif want_campaign and campaign_of(call) ~= want_campaign then keep = false
      elseif want_agent and agent_of(call) ~= want_agent then keep = false end
      if keep then
        add(call, t)
        if limit and count >= limit then stopped = "limit"; break end
      end
    end
  end)
  if not ok then
    if core.is_error(err) then return nil, err end
    error(err, 0)
  end

  local from_t, to_t = since or first_t, before or last_t
  local per_hour
  -- over less than a minute a rate says nothing: left out
  if from_t and to_t and to_t - from_t >= 60 then per_hour = count * 3600 / (to_t - from_t) end
  local ended = by_status.ended or 0
  return {
    count = count, scanned = scanned, stopped_early = stopped,
    order = (decreasing and increasing and "unordered") or (decreasing and "newest_first")
            or (increasing and "oldest_first") or "unknown",
    filters = { status = want_status, since = since and format_time(since), before = before and format_time(before),
                campaign = want_campaign, agent = want_agent, limit = limit },
    by_status = by_status, by_reason = by_reason,
    finished = finished, completion_rate = finished > 0 and ended / finished or nil,
    duration = {
      count = hist.n, mean = hist.n > 0 and dsum / hist.n or nil, min = dmin, max = dmax,
      p50 = hist_quantile(hist, 0.50), p95 = hist_quantile(hist, 0.95),
      histogram = hist_bins(hist, dmax or 0, 12),
    },
    calls_per_hour = per_hour,
    first = first_s, last = last_s,
  }
end

----------------------------------------------------------------------------------------------------
-- Contacts of the campaigns a client created in this process: per client (weak keys, so a dropped
-- client takes its entries with it), at most MAX_REMEMBERED campaigns, least recently used first
-- out. Only the body's `file` (base64, immutable) is kept until progress first asks; then the
-- decoded contacts replace it.
local MAX_REMEMBERED = 100
local remembered = setmetatable({}, { __mode = "k" })

local function shallow(t)
  if type(t) ~= "table" then return nil end
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

function _M.remember(client, camp, body)
  if type(camp) ~= "table" or camp.campaignId == nil or type(body) ~= "table" or type(body.file) ~= "string" then
    return
  end
  local cache = remembered[client]
  if not cache then
    cache = { n = 0, tick = 0, map = {} }
    remembered[client] = cache
  end
  local id = tostring(camp.campaignId)
  cache.tick = cache.tick + 1
  if cache.map[id] == nil then
    if cache.n >= MAX_REMEMBERED then
      local old, old_tick
      for k, e in pairs(cache.map) do
        if old_tick == nil or e.used < old_tick then old, old_tick = k, e.used end
      end
      cache.map[old] = nil
      cache.n = cache.n - 1
    end
    cache.n = cache.n + 1
  end
  cache.map[id] = { file = body.file, vars = shallow(body.dynamicVariables) or {}, used = cache.tick }
end

-- the variables the server gives a contact's call (HACKING.md: the campaign's, overridden by the
-- row's non-empty cells), as one comparable string; values as reconcile.var_text writes them
local function var_signature(vars)
  if type(vars) ~= "table" then return "" end
  local parts = {}
  for k, v in pairs(vars) do
    if v ~= core.null and type(v) ~= "table" then parts[#parts + 1] = tostring(k) .. "=" .. var_text(v) end
  end
  table_sort(parts)
  return table_concat(parts, "\0")
end

local function header_of(text)
  if string_sub(text, 1, 3) == "\239\187\191" then text = string_sub(text, 4) end
  local line = string_match(text, "^([^\r\n]*)")
  if not string_find(line, '"', 1, true) then
    local cells, pos = {}, 1
    while true do
      local c = string_find(line, ",", pos, true)
      cells[#cells + 1] = string_sub(line, pos, (c or #line + 1) - 1)
      if not c then return cells end
      pos = c + 1
    end
  end
  local records = csv.records(text)
  return records and records[1] or {}
end

-- the remembered contacts of campaign id, decoded on first use: a list of
-- { row =, phoneNumber =, sig = }
local function known_contacts(client, id)
  local cache = remembered[client]
  local e = cache and cache.map[tostring(id)]
  if not e then return nil end
  cache.tick = cache.tick + 1
  e.used = cache.tick
  if e.contacts then return e.contacts, e.rows end
  local text = core.base64_decode(e.file)
  if type(text) ~= "string" then return nil end
  local report = build.check_csv(text, e.vars)
  if report.fatal and report.contacts == 0 then return nil end
  local phone_col
  for _, name in ipairs(header_of(text)) do
    -- report.good's keys are trimmed
    if csv.phone_rank(name) then phone_col = csv.trim(name); break end
  end
  local contacts = {}
  for k, row in ipairs(report.good) do
    local vars = shallow(e.vars)
    for name, cell in pairs(row) do
      if name ~= phone_col then
        local v = csv.trim(cell)
        if v ~= "" then vars[name] = v end
      end
    end
    contacts[k] = { row = report.numbers[k], phoneNumber = phone_col and csv.trim(row[phone_col]) or nil,
                    sig = var_signature(vars) }
  end
  e.contacts, e.rows, e.file = contacts, report.rows, nil
  return contacts, e.rows
end

local function row_problems(errors)
  local rows, n = {}, 0
  if type(errors) ~= "table" then return 0 end
  for _, msg in ipairs(errors) do
    local r = type(msg) == "string" and string_match(msg, "^Row (%d+):")
    if r and not rows[r] then rows[r] = true; n = n + 1 end
  end
  return n
end

-- progress(client, id) -> { campaign, source, contacts, counts, reasons, total, done, percent,
--                           invalid } | nil, err
--
-- Calls carry the campaignId but not the number they dialed, so calls are matched to the CSV's
-- contacts by the dynamic variables the server gave them (when a contact's are unique), the rest in
-- dial order (file order, oldest call first). Without a remembered CSV each call of the campaign is
-- one contact, numbered in dial order, with no phone number; contacts not dialed yet cannot be
-- known then.
function _M.progress(client, id)
  local camp, err = client.campaigns:get(id)
  if not camp then return nil, err end
  id = tostring(id)
  local contacts, rows = known_contacts(client, id)

  -- this campaign's calls; every call is read, except that a campaign of N known contacts dials
  -- each once, so the scan ends at its N-th call
  local found, seen = {}, {}
  local ok, perr = pcall(function()
    for call in client.calls:each{ size = 100 } do
      local cid = call.callId
      if campaign_of(call) ~= nil and tostring(campaign_of(call)) == id and not seen[cid] then
        if cid ~= nil then seen[cid] = true end
        local n = #found + 1
        found[n] = { callId = cid, status = call.status, terminationReason = call.terminationReason,
                     duration = call.duration, t = parse_time(call.createdAt) or 0, i = n,
                     vars = call.dynamicVariables }
        if contacts and n >= #contacts then break end
      end
    end
  end)
  if not ok then
    if core.is_error(perr) then return nil, perr end
    error(perr, 0)
  end
  -- oldest first; equal times keep the list's newest-first order reversed
  table_sort(found, function(a, b)
    if a.t ~= b.t then return a.t < b.t end
    return a.i > b.i
  end)

  local out, source = {}, contacts and "csv" or "calls"
  if contacts then
    local by_sig = {}
    for k, c in ipairs(contacts) do
      out[k] = { row = c.row, phoneNumber = c.phoneNumber, status = "pending" }
      local s = by_sig[c.sig]
      by_sig[c.sig] = (s == nil) and k or false   -- false: shared by several contacts, not usable
    end
    local unmatched = {}
    for _, f in ipairs(found) do
      local k = by_sig[var_signature(f.vars)]
      if k then
        local o = out[k]
        o.callId, o.status, o.terminationReason, o.duration = f.callId, f.status, f.terminationReason, f.duration
      else
        unmatched[#unmatched + 1] = f
      end
    end
    -- dialing follows the file, so the calls left over belong, in order, to the contacts left over
    local j = 1
    for _, o in ipairs(out) do
      if j > #unmatched then break end
      if o.callId == nil then
        local f = unmatched[j]; j = j + 1
        o.callId, o.status, o.terminationReason, o.duration = f.callId, f.status, f.terminationReason, f.duration
      end
    end
  else
    for k, f in ipairs(found) do
      out[k] = { row = k, callId = f.callId, status = f.status, terminationReason = f.terminationReason,
                 duration = f.duration, dynamicVariables = f.vars }
    end
  end

  local counts = { pending = 0 }
  for _, s in ipairs(STATUS_ORDER) do counts[s] = 0 end
  local reasons, done = {}, 0
  for _, o in ipairs(out) do
    local s = o.status or "pending"
    counts[s] = (counts[s] or 0) + 1
    if FINAL[s] then done = done + 1 end
    if type(o.terminationReason) == "string" then
      reasons[o.terminationReason] = (reasons[o.terminationReason] or 0) + 1
    end
  end
  local total = #out
  local percent
  if total > 0 then percent = math_floor(done * 1000 / total) / 10
  else percent = camp.campaignStatus == "completed" and 100 or 0 end
  return {
    campaign = camp, source = source, contacts = out, counts = counts, reasons = reasons,
    total = total, done = done, percent = percent,
    invalid = rows and (rows - total) or row_problems(camp.errors),
  }
end

return _M
