-- RFC 4180 CSV for campaign contact lists: encode rows to CSV text, decode CSV text to rows or raw records.
-- Lua 5.1/LuaJIT compatible (it also runs under OpenResty); the text is scanned with string.find, never per char.

--- RFC 4180 CSV for campaign contact lists: encode rows to CSV text, decode CSV text to rows or raw records.
-- Also `require("sigmamind").csv`.
-- @module sigmamind.csv
-- @usage
-- local csv = require("sigmamind").csv
-- local text = csv.encode({ { phoneNumber = "+12137774445", customer_name = "Ada" } })
-- local rows, header = assert(csv.decode(text))
local error, type, pairs, ipairs, tostring =
      error, type, pairs, ipairs, tostring
local string_find, string_sub, string_byte, string_gsub, string_lower, string_match =
      string.find, string.sub, string.byte, string.gsub, string.lower, string.match
local table_concat, table_sort = table.concat, table.sort

local _M = {}

local BYTE_QUOTE, BYTE_COMMA, BYTE_CR, BYTE_LF = 34, 44, 13, 10
local BOM = "\239\187\191"

--- The header names that mark the phone column, in the order HACKING.md lists them (compared trimmed, lower case).
_M.phone_columns = { "phoneNumber", "phone_number", "phone", "toPhoneNumber", "to" }
local PHONE_NAMES = {}
for i, name in ipairs(_M.phone_columns) do PHONE_NAMES[string_lower(name)] = i end

local function trim(s)
  local a, b = string_byte(s, 1), string_byte(s, -1)
  if a and a > 32 and b > 32 then return s end      -- the common case: nothing to trim (%s bytes are <= 32)
  return string_match(s, "^%s*(.-)%s*$")
end
--- `s` without leading and trailing white space.
-- @function trim
-- @string s
-- @treturn string
_M.trim = trim

--- Is `name` (a header cell or a row key) one of the phone column names?  Returns its rank (1 = phoneNumber).
-- @param name
-- @treturn integer|nil the rank in @{phone_columns}, or nil
function _M.phone_rank(name)
  if type(name) ~= "string" then return nil end
  return PHONE_NAMES[string_lower(trim(name))]
end

---------------------------------------------------------------------------------------------------------------
-- Encoding
-- @section encoding

-- bytes that make a cell quoted when they begin or end it: space, \t, \n, \v, \f, \r (what %s matches)
local EDGE_SPACE = { [32] = true, [9] = true, [10] = true, [11] = true, [12] = true, [13] = true }

local function quote(s)
  if string_find(s, '[,"\r\n]') or EDGE_SPACE[string_byte(s, 1)] or EDGE_SPACE[string_byte(s, -1)] then
    return '"' .. string_gsub(s, '"', '""') .. '"'
  end
  return s
end

--- One cell as CSV: quoted when it holds a comma, a quote, CR or LF, or begins or ends with white space.
-- @function quote
-- @string s
-- @treturn string
_M.quote = quote

local function cell_text(v, where, level)
  local t = type(v)
  if t == "string" then return v end
  if v == nil then return "" end
  if t == "number" or t == "boolean" then return tostring(v) end
  error(where .. ": expected a string, number or boolean, got " .. t, level + 1)
end

-- The default column list: the sorted union of the rows' string keys, the best-ranked phone column first.
local function default_columns(rows)
  local seen, cols = {}, {}
  for _, row in ipairs(rows) do
    for k in pairs(row) do
      if type(k) == "string" and not seen[k] then seen[k] = true; cols[#cols + 1] = k end
    end
  end
  table_sort(cols)
  local best, best_rank
  for i, k in ipairs(cols) do
    local r = _M.phone_rank(k)
    if r and (not best_rank or r < best_rank) then best, best_rank = i, r end
  end
  if best then
    local phone = cols[best]
    for i = best, 2, -1 do cols[i] = cols[i - 1] end
    cols[1] = phone
  end
  return cols
end

--- Rows to CSV text. Every record ends with CRLF; a record that is one empty cell is written as `""` so that it
-- is not mistaken for a blank line.
-- @tparam table rows an array of tables keyed by column name; values strings, numbers or booleans (nil is an
-- empty cell)
-- @tparam[opt] {string,...} columns the header, in order; default: the sorted union of the rows' string keys,
-- the best-ranked phone column first
-- @treturn string the text (`""` when there are no columns)
-- @raise on a value that is not a string, number or boolean, or a bad argument
function _M.encode(rows, columns)
  if type(rows) ~= "table" then
    error("csv.encode: rows: expected a table (array of rows), got " .. type(rows), 2)
  end
  if columns ~= nil and type(columns) ~= "table" then
    error("csv.encode: columns: expected a table (array of column names), got " .. type(columns), 2)
  end
  for i, row in ipairs(rows) do
    if type(row) ~= "table" then
      error("csv.encode: row " .. i .. ": expected a table, got " .. type(row), 2)
    end
  end
  local cols
  if columns then
    cols = {}
    for i, c in ipairs(columns) do
      if type(c) ~= "string" then
        error("csv.encode: columns[" .. i .. "]: expected a string, got " .. type(c), 2)
      end
      cols[i] = c
    end
  else
    cols = default_columns(rows)
  end
  local ncols = #cols
  if ncols == 0 then return "" end

  local out, n = {}, 0
  local function add_record(cells)
    if ncols == 1 and cells[1] == "" then cells[1] = '""' end
    n = n + 1
    out[n] = table_concat(cells, ",", 1, ncols)
  end
  local cells = {}
  for i = 1, ncols do cells[i] = quote(cols[i]) end
  add_record(cells)
  for r, row in ipairs(rows) do
    for i = 1, ncols do
      local c = cols[i]
      local v = row[c]
      if type(v) ~= "string" then
        v = cell_text(v, "csv.encode: row " .. r .. ", column '" .. c .. "'", 2)
      end
      cells[i] = quote(v)
    end
    add_record(cells)
  end
  out[n + 1] = ""
  return table_concat(out, "\r\n")
end

---------------------------------------------------------------------------------------------------------------
-- Decoding
-- @section decoding

local function count_lf(s)
  if not string_find(s, "\n", 1, true) then return 0 end
  local _, k = string_gsub(s, "\n", "")
  return k
end

-- Parses one record that contains a quote, starting at pos on line `line`.
-- Returns fields, next_pos, next_line  or  nil, message.
local function parse_quoted_record(text, pos, line, len)
  local fields, nf = {}, 0
  while true do
    local c = string_byte(text, pos)
    if c == BYTE_QUOTE then
      local start_line = line
      local parts, np = nil, 0
      local p = pos + 1
      local value
      while true do
        local q = string_find(text, '"', p, true)
        if not q then
          return nil, "csv: line " .. start_line .. ": unterminated quoted field"
        end
        if string_byte(text, q + 1) == BYTE_QUOTE then
          parts = parts or {}
          np = np + 1; parts[np] = string_sub(text, p, q)   -- keeps one of the two quotes
          p = q + 2
        else
          local piece = string_sub(text, p, q - 1)
          if parts then np = np + 1; parts[np] = piece; value = table_concat(parts) else value = piece end
          line = line + count_lf(string_sub(text, pos, q))
          pos = q + 1
          break
        end
      end
      nf = nf + 1; fields[nf] = value
      c = string_byte(text, pos)
      if c == BYTE_COMMA then
        pos = pos + 1
      elseif c == nil then
        return fields, pos, line
      elseif c == BYTE_LF then
        return fields, pos + 1, line + 1
      elseif c == BYTE_CR and string_byte(text, pos + 1) == BYTE_LF then
        return fields, pos + 2, line + 1
      elseif c == BYTE_CR and pos == len then
        return fields, pos + 1, line
      else
        return nil, "csv: line " .. line .. ": unexpected character after a closing quote"
      end
    else
      local s = string_find(text, '[,"\n]', pos)
      if s == nil then
        local v = string_sub(text, pos)
        if string_byte(v, -1) == BYTE_CR then v = string_sub(v, 1, -2) end
        nf = nf + 1; fields[nf] = v
        return fields, len + 1, line
      end
      local t = string_byte(text, s)
      if t == BYTE_QUOTE then
        return nil, "csv: line " .. line .. ": stray quote in an unquoted field"
      end
      local v = string_sub(text, pos, s - 1)
      if t == BYTE_LF then
        if string_byte(v, -1) == BYTE_CR then v = string_sub(v, 1, -2) end
        nf = nf + 1; fields[nf] = v
        return fields, s + 1, line + 1
      end
      nf = nf + 1; fields[nf] = v
      pos = s + 1
    end
  end
end

--- CSV text to raw records. A UTF-8 BOM is skipped; CRLF and LF both end a record; blank lines (no characters
-- at all) are skipped.
-- @string text
-- @treturn[1] table records: arrays of strings, the header first
-- @treturn[1] table lines: `lines[i]` is the line on which `records[i]` starts
-- @return[2] nil, `"csv: line N: <what>"` for malformed text
-- @raise when `text` is not a string
function _M.records(text)
  if type(text) ~= "string" then
    error("csv.records: expected a string, got " .. type(text), 2)
  end
  local len = #text
  local pos = 1
  if string_sub(text, 1, 3) == BOM then pos = 4 end
  local records, lines, n = {}, {}, 0
  local line = 1
  -- where the next quote is (len + 1: none left); looked up again only once the scan has passed it, so a file
  -- without quotes is searched for one just once
  local next_quote = string_find(text, '"', pos, true) or len + 1
  while pos <= len do
    if next_quote < pos then next_quote = string_find(text, '"', pos, true) or len + 1 end
    local nl = string_find(text, "\n", pos, true)
    local stop = nl and nl - 1 or len
    if stop >= pos and string_byte(text, stop) == BYTE_CR then stop = stop - 1 end
    if stop < pos then
      -- a blank line: not a record
      pos = (nl or len) + 1
      line = line + 1
    elseif next_quote > stop then
      -- the common case: a line with no quote is split on commas alone
      local fields, nf = {}, 0
      local p = pos
      while true do
        local c = string_find(text, ",", p, true)
        if c == nil or c > stop then
          nf = nf + 1; fields[nf] = string_sub(text, p, stop)
          break
        end
        nf = nf + 1; fields[nf] = string_sub(text, p, c - 1)
        p = c + 1
      end
      n = n + 1; records[n] = fields; lines[n] = line
      pos = (nl or len) + 1
      line = line + 1
    else
      local fields, next_pos, next_line = parse_quoted_record(text, pos, line, len)
      if not fields then return nil, next_pos end
      n = n + 1; records[n] = fields; lines[n] = line
      pos, line = next_pos, next_line
    end
  end
  return records, lines
end

--- CSV text to rows keyed by the header: `rows[i][header[j]]` is the j-th cell of data record i. A short
-- record leaves the missing columns absent; cells past the header's width are dropped (@{records} keeps them).
-- @string text
-- @treturn[1] table rows
-- @treturn[1] {string,...} header
-- @return[2] nil, `"csv: line N: <what>"` for malformed text
-- @raise when `text` is not a string
function _M.decode(text)
  if type(text) ~= "string" then
    error("csv.decode: expected a string, got " .. type(text), 2)
  end
  local records, lines = _M.records(text)
  if not records then return nil, lines end
  local header = records[1] or {}
  local width = #header
  local rows = {}
  for i = 2, #records do
    local rec, row = records[i], {}
    local m = #rec
    if m > width then m = width end
    for j = 1, m do row[header[j]] = rec[j] end
    rows[i - 1] = row
  end
  return rows, header
end

return _M
