-- sigmamind.cli.output: how the CLI shows things: JSON documents, aligned tables and records,
-- progress on stderr. Pure functions over a writer (anything with :write and :flush), so a
-- command's output goes wherever run() says.
local core = require "sigmamind.core"
local utf8 = require "utf8"

local type, ipairs, pairs, tostring, error, math_floor, math_min, string_rep, string_format, table_concat,
      table_sort = type, ipairs, pairs, tostring, error, math.floor, math.min, string.rep, string.format,
      table.concat, table.sort
local json_encode = core.json_encode

local _M = {}

local function is_null(v) return v == nil or v == core.null end
_M.is_null = is_null

-- v as one JSON document whose object keys are sorted at every level, so that a value prints the
-- same text in every run (a table's order changes between processes). Scalars, and the rule telling
-- an array (keys 1..n) from an object, are the core encoder's (exact integers, cjson's escapes).
local function encode(v, depth, buf)
  if type(v) ~= "table" then
    local s, err = json_encode(v)
    if not s then error("sigmamind: cannot write JSON: " .. tostring(err), 0) end
    buf[#buf + 1] = s
    return
  end
  if depth > 1000 then error("sigmamind: cannot write JSON: excessive nesting", 0) end
  local n, max, array = 0, 0, true
  for k in pairs(v) do
    if type(k) == "number" and k >= 1 and k % 1 == 0 then
      n = n + 1
      if k > max then max = k end
    else
      array = false
      break
    end
  end
  if array and n > 0 then
    if max > n * 2 and max > 10 then error("sigmamind: cannot write JSON: excessively sparse array", 0) end
    buf[#buf + 1] = "["
    for i = 1, max do
      if i > 1 then buf[#buf + 1] = "," end
      encode(v[i], depth + 1, buf)
    end
    buf[#buf + 1] = "]"
    return
  end
  local keys, names = {}, {}
  for k in pairs(v) do
    local name
    if type(k) == "string" then name = json_encode(k)
    elseif type(k) == "number" then name = '"' .. json_encode(k) .. '"'     -- as cjson: the number, quoted
    else error("sigmamind: cannot write JSON: a table key must be a number or a string", 0) end
    keys[#keys + 1] = name
    names[name] = k
  end
  table_sort(keys)
  buf[#buf + 1] = "{"
  for i, name in ipairs(keys) do
    if i > 1 then buf[#buf + 1] = "," end
    buf[#buf + 1] = name
    buf[#buf + 1] = ":"
    encode(v[names[name]], depth + 1, buf)
  end
  buf[#buf + 1] = "}"
end

function _M.json(v)
  local buf = {}
  encode(v, 0, buf)
  return table_concat(buf)
end

-- a value as a table cell: flat arrays joined by commas, other tables as JSON, newlines as " / "
function _M.cell(v)
  if is_null(v) then return "-" end
  if type(v) == "table" then
    local flat = #v > 0
    for _, x in ipairs(v) do if type(x) == "table" then flat = false end end
    if flat then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = tostring(x) end
      return table_concat(parts, ",")
    end
    return _M.json(v)
  end
  return (tostring(v):gsub("\r?\n", " / "))
end
local cell = _M.cell

-- rec's value at a dotted path ("phoneNumber.sipPhoneNumber"), nil when a step is not a table
function _M.get_path(rec, path)
  local v = rec
  for part in path:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    v = v[part]
  end
  return v
end
local get_path = _M.get_path

-- aligned columns on w: columns = { { "TITLE", "field.path" or function(rec) }, ... }
function _M.table(w, rows, columns)
  local cells, widths = {}, {}
  for j, col in ipairs(columns) do widths[j] = #col[1] end
  for i, rec in ipairs(rows) do
    local line = {}
    for j, col in ipairs(columns) do
      local v
      if type(col[2]) == "function" then v = col[2](rec) else v = get_path(rec, col[2]) end
      line[j] = cell(v)
      if utf8.len(line[j]) and utf8.len(line[j]) > widths[j] then widths[j] = utf8.len(line[j]) end
    end
    cells[i] = line
  end
  local function emit(line)
    local out = {}
    for j, s in ipairs(line) do
      out[j] = j < #line and s .. string_rep(" ", widths[j] - (utf8.len(s) or #s)) or s
    end
    w:write(table_concat(out, "  "), "\n")
  end
  local header = {}
  for j, col in ipairs(columns) do header[j] = col[1] end
  emit(header)
  for _, line in ipairs(cells) do emit(line) end
end

-- one record on w as aligned "key  value" lines: the given fields first, then the others by name
function _M.record(w, rec, first)
  local keys, seen = {}, {}
  for _, k in ipairs(first or {}) do
    if rec[k] ~= nil then keys[#keys + 1] = k; seen[k] = true end
  end
  local rest = {}
  for k in pairs(rec) do if not seen[k] then rest[#rest + 1] = tostring(k) end end
  table_sort(rest)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  local width = 0
  for _, k in ipairs(keys) do if #k > width then width = #k end end
  for _, k in ipairs(keys) do
    local v = rec[k]
    if type(v) == "string" and v:find("\n") then
      w:write(k, ":\n")
      for line in (v:gsub("\n$", "") .. "\n"):gmatch("([^\n]*)\n") do w:write("  ", line, "\n") end
    else
      w:write(k, string_rep(" ", width - #k + 2), cell(v), "\n")
    end
  end
end

-- Text for what is not a terminal (a pipe, a file, a log that may not be UTF-8): the block elements
-- of bars (U+2580..U+259F) as '#', an eighth-block under half a cell as '.', the ellipsis as "...".
local ASCII = { ["\226\128\166"] = "...", ["\226\150\141"] = ".", ["\226\150\142"] = ".", ["\226\150\143"] = "." }
function _M.ascii(text)
  return (text:gsub("\226[\128\150][\128-\191]", function(c)
    if ASCII[c] then return ASCII[c] end
    if c:byte(2) == 150 and c:byte(3) <= 159 then return "#" end
  end))
end

-- Progress on w (stderr): a bar redrawn in place on a terminal, else plain lines (logs, pipes, CI).
function _M.progress(w, tty, label)
  local p = { label = label, last_line = nil, open = false }   -- open: a bar is drawn on the current line
  local BAR = 30
  -- segments (optional): { { n, char }, ... } drawn as one stacked bar of total
  function p.update(done, total, note, segments)
    note = note and ("  " .. note) or ""
    if tty then
      local bar
      if total and total > 0 and segments then
        local cells, used = {}, 0
        for _, seg in ipairs(segments) do
          local n = math_min(math_floor(seg[1] / total * BAR + 0.5), BAR - used)
          cells[#cells + 1] = string_rep(seg[2], n)
          used = used + n
        end
        bar = string_format("[%s%s] %3d%% %d/%d", table_concat(cells), string_rep(" ", BAR - used),
                            math_floor(math_min(done / total, 1) * 100), done, total)
      elseif total and total > 0 then
        local frac = math_min(done / total, 1)
        local n = math_floor(frac * BAR + 0.5)
        bar = string_format("[%s%s] %3d%% %d/%d", string_rep("=", n), string_rep(" ", BAR - n),
                            math_floor(frac * 100), done, total)
      else
        bar = string_format("[%s] %d", string_rep("-", BAR), done)
      end
      w:write("\r", label, " ", bar, note, "\27[K")
      p.open = true
    else
      local line = label .. ": " .. done .. (total and ("/" .. total) or "") .. note
      if line ~= p.last_line then w:write(line, "\n"); p.last_line = line end
    end
    if w.flush then w:flush() end
  end
  function p.finish()
    if tty then w:write("\n") end
    p.open = false
  end
  return p
end

return _M
