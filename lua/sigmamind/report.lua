-- The renderings of calls:stats: a text table with block-character bars, and an HTML report.
--
-- Text for `sigmamind calls stats`; HTML as one self-contained document (inline CSS and SVG, no
-- script, nothing fetched). Also reached as observe.text, observe.html, observe.bar and
-- observe.ranked.
local records = require "sigmamind.records"

local pairs, ipairs, tostring = pairs, ipairs, tostring
local math_floor, math_max = math.floor, math.max
local string_format, string_match, string_rep, string_gsub, string_find, string_sub =
      string.format, string.match, string.rep, string.gsub, string.find, string.sub
local table_concat, table_sort = table.concat, table.sort

local _M = {}

local STATUS_ORDER = records.call_statuses

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

-- an outcome in the colour of the status it usually comes with
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

-- html(stats, { title =, generated = }) -> a complete HTML document: inline CSS and SVG, nothing
-- fetched, no script
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
