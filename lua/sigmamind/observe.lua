-- Observe: call analytics (calls:stats), per-contact campaign progress (campaigns:progress) and their renderings.
local core  = require "sigmamind.core"
local build = require "sigmamind.build"
local csv   = require "sigmamind.csv"
local var_text = require("sigmamind.reconcile").var_text

local type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable =
      type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable
local math_floor, math_ceil, math_log, math_exp, math_max, math_min, math_huge =
      math.floor, math.ceil, math.log, math.exp, math.max, math.min, math.huge
local string_format, string_match, string_rep, string_gsub, string_find, string_sub =
      string.format, string.match, string.rep, string.gsub, string.find, string.sub
local table_concat, table_sort = table.concat, table.sort

local _M = {}

local FINAL = { ended = true, not_connected = true, error = true }
local STATUS_ORDER = { "scheduled", "in_progress", "ended", "not_connected", "error" }

---------------------------------------------------------------------------------------------------------------
-- Time: ISO-8601 UTC computed arithmetically (os.time would read the fields as local time).

-- days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math_floor(y / 400)
  local yoe = y - era * 400
  local doy = math_floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + math_floor(yoe / 4) - math_floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = math_floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math_floor((doe - math_floor(doe / 1460) + math_floor(doe / 36524) - math_floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math_floor(yoe / 4) - math_floor(yoe / 100))
  local mp = math_floor((5 * doy + 2) / 153)
  local d = doy - math_floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local MONTH_DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function month_days(y, m)
  if m == 2 and y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) then return 29 end
  return MONTH_DAYS[m]
end

-- parse_time("2024-04-20T10:00:00.000Z") -> unix seconds (with fraction) | nil
-- Accepts a date alone (midnight), `T` or a space before HH:MM[:SS[.fff]], and `Z`, `+hh:mm`, `+hhmm`, `+hh`
-- or nothing (read as UTC) after it; unix seconds (a number) pass through.
function _M.parse_time(v)
  if type(v) == "number" then
    if v ~= v or v == math_huge or v == -math_huge then return nil end
    return v
  end
  if type(v) ~= "string" then return nil end
  local y, mo, d, rest = string_match(v, "^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  local h, mi, sec = 0, 0, 0
  if rest ~= "" then
    local hh, mm, tail = string_match(rest, "^[Tt ](%d%d):(%d%d)(.*)$")
    if not hh then return nil end
    h, mi, rest = tonumber(hh), tonumber(mm), tail
    local ss, tail2 = string_match(rest, "^:(%d%d)(.*)$")
    if ss then
      sec, rest = tonumber(ss), tail2
      local frac, tail3 = string_match(rest, "^[%.,](%d+)(.*)$")
      if frac then sec, rest = sec + tonumber("0." .. frac), tail3 end
    end
  end
  local offset = 0
  if rest ~= "" and rest ~= "Z" and rest ~= "z" then
    local sign, oh, om = string_match(rest, "^([%+%-])(%d%d):?(%d%d)$")
    if not sign then sign, oh = string_match(rest, "^([%+%-])(%d%d)$"); om = "00" end
    if not sign then return nil end
    oh, om = tonumber(oh), tonumber(om)
    if oh > 23 or om > 59 then return nil end
    offset = (oh * 60 + om) * 60
    if sign == "-" then offset = -offset end
  end
  if mo < 1 or mo > 12 or d < 1 or d > month_days(y, mo) or h > 23 or mi > 59 or sec >= 61 then return nil end
  -- local wall time = UTC + offset
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset
end

-- format_time(unix seconds) -> "2024-04-20T10:00:00Z" (".123Z" when there are milliseconds)
function _M.format_time(t)
  if type(t) ~= "number" then return nil end
  local ms = math_floor(t * 1000 + 0.5)
  local s = math_floor(ms / 1000)
  ms = ms - s * 1000
  local days = math_floor(s / 86400)
  local rem = s - days * 86400
  local y, m, d = civil_from_days(days)
  local base = string_format("%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, math_floor(rem / 3600),
                             math_floor(rem % 3600 / 60), rem % 60)
  if ms == 0 then return base .. "Z" end
  return string_format("%s.%03dZ", base, ms)
end
local parse_time, format_time = _M.parse_time, _M.format_time

---------------------------------------------------------------------------------------------------------------
-- Durations: a fixed histogram, so memory does not grow with the number of calls.
-- Durations are whole seconds (API.md); each is rounded to one and counted in its own bucket up to EXACT_MAX
-- (two hours), so p50/p95 are exact (nearest rank) for every duration up to two hours. Longer ones fall into
-- logarithmic buckets 1 % wide and are reported as the bucket's geometric middle: within 0.5 % of the truth.
-- Memory: at most 7,201 exact buckets plus one per 1 % above two hours, whatever the number of calls.
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

-- about `bins` bins of a round width (1, 2 or 5 times a power of ten seconds) from 0 to the longest duration
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

---------------------------------------------------------------------------------------------------------------
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
                        "seconds, got %s", name, tostring(opts[name])), 4)
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
-- Pages through the calls once with `each` (one page in memory) and keeps only counters and the histogram.
-- Early stop: the list's order is read from the data (the sandbox and SigmaMind list newest first). Once
-- createdAt has decreased and never increased along the list, the list is taken to be newest-first, and the
-- first record older than `since` ends the scan: every later one is older still. A list seen to go both ways
-- is scanned to the end.
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

---------------------------------------------------------------------------------------------------------------
-- Contacts of the campaigns a client created in this process: per client (weak keys, so a dropped client takes
-- its entries with it), at most MAX_REMEMBERED campaigns, least recently used first out. Only the body's `file`
-- (base64, immutable) is kept until progress first asks; then the decoded contacts replace it.
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

-- the remembered contacts of campaign id, decoded on first use: { { row =, phoneNumber =, sig = }, ... }
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
    if csv.phone_rank(name) then phone_col = csv.trim(name); break end   -- report.good's keys are trimmed
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

-- progress(client, id) -> { campaign, source, contacts, counts, reasons, total, done, percent, invalid } | nil, err
-- Calls carry the campaignId but not the number they dialed, so calls are matched to the CSV's contacts by the
-- dynamic variables the server gave them (when a contact's are unique), the rest in dial order (file order,
-- oldest call first). Without a remembered CSV each call of the campaign is one contact, numbered in dial order,
-- with no phone number; contacts not dialed yet cannot be known then.
function _M.progress(client, id)
  local camp, err = client.campaigns:get(id)
  if not camp then return nil, err end
  id = tostring(id)
  local contacts, rows = known_contacts(client, id)

  -- this campaign's calls; every call is read, except that a campaign of N known contacts dials each once,
  -- so the scan ends at its N-th call
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

---------------------------------------------------------------------------------------------------------------
-- Renderings: text (a table and block-character bars) and a self-contained HTML report (inline SVG, no script).

local function group(n)
  local sign, digits = string_match(string_format("%d", n), "^(-?)(%d+)$")
  local out = string_gsub(digits:reverse(), "(%d%d%d)", "%1,"):reverse()
  if string_sub(out, 1, 1) == "," then out = string_sub(out, 2) end
  return sign .. out
end

local function num(v, decimals)
  if v == nil then return "-" end
  if v % 1 == 0 and not decimals then return group(v) end
  return string_format("%." .. (decimals or 1) .. "f", v)
end

local function pct(v)
  if v == nil then return "-" end
  return string_format("%.1f %%", v * 100)
end

-- sorted { name, count } pairs: by count descending, then name; `order` lists names to put first
local function ranked(t, order)
  local items, placed = {}, {}
  for _, name in ipairs(order or {}) do
    if t[name] then items[#items + 1] = { name, t[name] }; placed[name] = true end
  end
  local rest = {}
  for name, n in pairs(t) do if not placed[name] then rest[#rest + 1] = { name, n } end end
  table_sort(rest, function(a, b) if a[2] ~= b[2] then return a[2] > b[2] end return a[1] < b[1] end)
  for _, it in ipairs(rest) do items[#items + 1] = it end
  return items
end
_M.ranked = ranked

local EIGHTHS = { "", "\226\150\143", "\226\150\142", "\226\150\141", "\226\150\140", "\226\150\139",
                  "\226\150\138", "\226\150\137" }   -- ▏▎▍▌▋▊▉
local FULL = "\226\150\136"                           -- █

-- a bar of `width` cells for value/max, in eighths of a cell
function _M.bar(value, max, width)
  if not max or max <= 0 or value <= 0 then return "" end
  local eighths = math_floor(value / max * width * 8 + 0.5)
  if eighths == 0 then eighths = 1 end
  return string_rep(FULL, math_floor(eighths / 8)) .. EIGHTHS[eighths % 8 + 1]
end
local bar = _M.bar

local function text_chart(lines, title, items, total)
  if #items == 0 then return end
  local wname, max = #title, 0
  for _, it in ipairs(items) do
    wname = math_max(wname, #it[1]); max = math_max(max, it[2])
  end
  local wnum = #group(max)
  lines[#lines + 1] = ""
  lines[#lines + 1] = title
  for _, it in ipairs(items) do
    local share = total and total > 0 and string_format("  %5.1f %%", it[2] * 100 / total) or ""
    lines[#lines + 1] = string_format("  %-" .. wname .. "s  %" .. wnum .. "s%s  %s", it[1], group(it[2]), share,
                                      bar(it[2], max, 40))
  end
end

local function duration_items(s)
  local items = {}
  for i, b in ipairs(s.duration.histogram or {}) do
    items[i] = { b.from == b.to and tostring(b.from) or (b.from .. "-" .. b.to .. " s"), b.count }
  end
  return items
end

-- text(stats) -> the summary table and bar charts of `sigmamind calls stats`
function _M.text(s)
  local d = s.duration
  local lines = {}
  local function row(k, v) lines[#lines + 1] = string_format("%-18s %s", k, v) end
  row("calls", group(s.count) .. (s.scanned ~= s.count and ("   (" .. group(s.scanned) .. " read)") or ""))
  local f = s.filters or {}
  if f.since or f.before then row("window", (f.since or "…") .. " .. " .. (f.before or "…")) end
  for _, k in ipairs{ "status", "campaign", "agent" } do if f[k] then row(k, f[k]) end end
  row("first created", s.first or "-")
  row("last created", s.last or "-")
  row("completion rate", pct(s.completion_rate) ..
      string_format("   (ended %s of %s finished)", group(s.by_status.ended or 0), group(s.finished)))
  row("calls per hour", num(s.calls_per_hour, 1))
  row("duration (s)", string_format("count %s  mean %s  p50 %s  p95 %s  max %s", group(d.count),
      num(d.mean, 1), num(d.p50), num(d.p95), num(d.max)))
  text_chart(lines, "STATUS", ranked(s.by_status, STATUS_ORDER), s.count)
  text_chart(lines, "OUTCOME (terminationReason)", ranked(s.by_reason), s.count)
  text_chart(lines, "DURATION", duration_items(s), d.count)
  return table_concat(lines, "\n") .. "\n"
end

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }
local function esc(v)
  return (string_gsub(tostring(v), "[&<>\"']", ESCAPES))
end
_M.escape = esc

local COLORS = { ended = "#2e7d32", not_connected = "#f9a825", error = "#c62828", in_progress = "#1565c0",
                 scheduled = "#78909c" }

-- an outcome in the colour of the status it usually comes with (API.md's terminationReason list)
local function reason_color(reason)
  if string_find(reason, "^error") or reason == "dial_invalid_destination"
     or reason == "dial_telephony_permission_denied" then return COLORS.error end
  if string_find(reason, "^dial_") then return COLORS.not_connected end
  return COLORS.ended
end

-- horizontal bars: items { { label, value }, ... }
local function svg_bars(title, items, color_of)
  local row_h, label_w, bar_w, pad = 26, 190, 250, 10
  local h = pad * 2 + math_max(1, #items) * row_h
  local w = label_w + bar_w + 80
  local max = 0
  for _, it in ipairs(items) do max = math_max(max, it[2]) end
  local out = { string_format('<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" ' ..
                              'viewBox="0 0 %d %d" role="img" aria-label="%s">', w, h, w, h, esc(title)) }
  if #items == 0 then
    out[#out + 1] = string_format('<text x="%d" y="%d" class="none">no calls</text>', pad, pad + 17)
  end
  for i, it in ipairs(items) do
    local y = pad + (i - 1) * row_h
    local bw = max > 0 and math_max(1, math_floor(it[2] / max * bar_w + 0.5)) or 0
    out[#out + 1] = string_format(
      '<g><text x="%d" y="%d" text-anchor="end" class="label">%s</text>' ..
      '<rect x="%d" y="%d" width="%d" height="%d" rx="2" fill="%s"><title>%s: %s</title></rect>' ..
      '<text x="%d" y="%d" class="value">%s</text></g>',
      label_w - 8, y + 17, esc(it[1]), label_w, y + 4, bw, row_h - 8, color_of(it[1]), esc(it[1]), esc(group(it[2])),
      label_w + bw + 6, y + 17, esc(group(it[2])))
  end
  out[#out + 1] = "</svg>"
  return table_concat(out)
end

-- vertical columns for the duration histogram
local function svg_histogram(items)
  local n = math_max(1, #items)
  local col_w, gap, plot_h, top, left = math_max(24, math_floor(480 / n)), 4, 220, 24, 10
  local w = left * 2 + n * col_w
  local h = top + plot_h + 40
  local max = 0
  for _, it in ipairs(items) do max = math_max(max, it[2]) end
  local out = { string_format('<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" ' ..
                              'viewBox="0 0 %d %d" role="img" aria-label="Durations">', w, h, w, h) }
  out[#out + 1] = string_format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>', left, top + plot_h,
                                w - left, top + plot_h)
  if #items == 0 then
    out[#out + 1] = string_format('<text x="%d" y="%d" class="none">no durations</text>', left, top + 20)
  end
  for i, it in ipairs(items) do
    local x = left + (i - 1) * col_w
    local bh = max > 0 and math_floor(it[2] / max * plot_h + 0.5) or 0
    if it[2] > 0 and bh == 0 then bh = 1 end
    out[#out + 1] = string_format(
      '<g><rect x="%d" y="%d" width="%d" height="%d" fill="#5c6bc0"><title>%s: %s</title></rect>' ..
      '<text x="%d" y="%d" text-anchor="middle" class="value">%s</text>' ..
      '<text x="%d" y="%d" text-anchor="middle" class="tick">%s</text></g>',
      x + math_floor(gap / 2), top + plot_h - bh, col_w - gap, bh, esc(it[1]), esc(group(it[2])),
      x + math_floor(col_w / 2), top + plot_h - bh - 6, it[2] > 0 and esc(group(it[2])) or "",
      x + math_floor(col_w / 2), top + plot_h + 18, esc((string_gsub(it[1], " s$", ""))))
  end
  out[#out + 1] = string_format('<text x="%d" y="%d" text-anchor="middle" class="tick">seconds</text>',
                                math_floor(w / 2), top + plot_h + 36)
  out[#out + 1] = "</svg>"
  return table_concat(out)
end

local CSS = [[
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:32px;color:#222;
background:#fafafa}h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
p.filters{color:#555;margin:0 0 18px}table.summary{border-collapse:collapse;background:#fff;
box-shadow:0 1px 2px rgba(0,0,0,.15)}table.summary th,table.summary td{padding:6px 14px;text-align:left;
border-bottom:1px solid #eee;font-size:14px}table.summary td.num{text-align:right;font-variant-numeric:tabular-nums}
div.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:8px 28px;align-items:start}
section h2{margin-top:14px}svg.chart{background:#fff;
box-shadow:0 1px 2px rgba(0,0,0,.15)}svg text{font-size:12px;fill:#333}svg text.label{font-size:13px}
svg text.none{fill:#888}footer{margin-top:28px;color:#888;font-size:12px}
]]

-- html(stats, { title =, generated = }) -> a complete HTML document: inline CSS and SVG, nothing fetched, no script
function _M.html(s, opts)
  opts = opts or {}
  local title = opts.title or "Call statistics"
  local d = s.duration
  local f = s.filters or {}
  local parts = {}
  local function add(x) parts[#parts + 1] = x end
  add('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">')
  add('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">')
  add("<title>" .. esc(title) .. "</title><style>" .. CSS .. "</style></head><body>\n")
  add("<h1>" .. esc(title) .. "</h1>\n")
  local filt = {}
  if f.since or f.before then filt[#filt + 1] = "created " .. (f.since or "…") .. " .. " .. (f.before or "…") end
  for _, k in ipairs{ "status", "campaign", "agent" } do if f[k] then filt[#filt + 1] = k .. " " .. f[k] end end
  if f.limit then filt[#filt + 1] = "at most " .. group(f.limit) .. " calls" end
  add('<p class="filters">' .. esc(#filt > 0 and table_concat(filt, " · ") or "all calls") .. "</p>\n")
  add('<div class="grid"><section><h2>Summary</h2><table class="summary">')
  local function row(id, k, v)
    add(string_format('<tr><th>%s</th><td class="num" id="%s">%s</td></tr>', esc(k), id, esc(v)))
  end
  row("calls", "Calls", group(s.count))
  row("finished", "Finished", group(s.finished))
  row("completion", "Completion rate (ended / finished)", pct(s.completion_rate))
  row("per-hour", "Calls per hour", num(s.calls_per_hour, 1))
  row("duration-mean", "Mean duration (s)", num(d.mean, 1))
  row("duration-p50", "Median duration, p50 (s)", num(d.p50))
  row("duration-p95", "p95 duration (s)", num(d.p95))
  row("duration-max", "Longest (s)", num(d.max))
  row("first", "First created", s.first or "-")
  row("last", "Last created", s.last or "-")
  add("</table></section>\n")
  add('<section><h2>Status</h2>' .. svg_bars("Status", ranked(s.by_status, STATUS_ORDER), function(name)
    return COLORS[name] or "#607d8b" end) .. "</section>\n")
  add('<section><h2>Outcomes (terminationReason)</h2>' .. svg_bars("Outcomes", ranked(s.by_reason), reason_color) ..
      "</section>\n")
  add('<section><h2>Duration</h2>' .. svg_histogram(duration_items(s)) .. "</section></div>\n")
  add("<footer>" .. esc(opts.generated or "") .. "</footer>\n</body></html>\n")
  return table_concat(parts)
end

return _M
