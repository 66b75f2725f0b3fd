-- Campaign CSV: RFC 4180 parsing and the row checks of HACKING.md "Campaign CSV rules", worded exactly so.
local string_find, string_sub, string_byte, string_lower, string_format, string_gmatch =
  string.find, string.sub, string.byte, string.lower, string.format, string.gmatch
local table_concat, ipairs, pairs, type = table.concat, ipairs, pairs, type

local _M = {}

local PHONE_HEADERS = { phonenumber = true, phone_number = true, phone = true, tophonenumber = true, to = true }
local NO_PHONE = "file: CSV has no phone number column (expected one of: phoneNumber, phone_number, phone, toPhoneNumber, to)"
local NO_CONTACTS = "file: CSV has no contacts"

-- white space as the client's sigmamind.csv.trim takes it (%s: space, tab, CR, LF, VT, FF), so that the rules
-- plan:build() checks before sending are the ones applied here
local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end
_M.trim = trim

local function count_lf(str)
  local k = 0
  for _ in string_gmatch(str, "\n") do k = k + 1 end
  return k
end

local function malformed(line, what)
  return nil, string_format("file: csv: line %d: %s", line, what)
end

-- records: array of arrays of strings; records with no characters at all (blank lines) are skipped. Or nil and
-- the whole file's refusal when it is not RFC 4180: an unterminated quoted field, a quote inside an unquoted
-- field, or a character after a closing quote other than a comma or a line end (line: the physical line, from 1,
-- where the quoted field started or the fault is), worded as plan:build() words them.
function _M.parse(s)
  if string_sub(s, 1, 3) == "\239\187\191" then s = string_sub(s, 4) end
  local records, fields, buf = {}, {}, {}
  local i, n, line = 1, #s, 1
  local field_started = false -- whether the current record has any character
  local function end_field()
    fields[#fields + 1] = table_concat(buf)
    buf = {}
  end
  local function end_record()
    if field_started then
      end_field()
      records[#records + 1] = fields
    end
    fields, buf, field_started = {}, {}, false
  end
  while i <= n do
    local c = string_byte(s, i)
    if c == 34 and #buf == 0 then -- opening quote at the start of a field
      field_started = true
      local j, start_line = i + 1, line
      while true do
        local q = string_find(s, '"', j, true)
        if not q then return malformed(start_line, "unterminated quoted field") end
        buf[#buf + 1] = string_sub(s, j, q - 1)
        if string_byte(s, q + 1) == 34 then
          buf[#buf + 1] = '"'
          j = q + 2
        else
          line = line + count_lf(string_sub(s, i, q))
          i = q + 1
          break
        end
      end
      local after = string_byte(s, i)
      if after ~= nil and after ~= 44 and after ~= 10 and not (after == 13 and (i == n or string_byte(s, i + 1) == 10)) then
        return malformed(line, "unexpected character after a closing quote")
      end
      if after == 13 and i == n then i = i + 1 end
    elseif c == 44 then -- ,
      field_started = true
      end_field()
      i = i + 1
    elseif c == 10 then
      end_record()
      line = line + 1
      i = i + 1
    elseif c == 13 and string_byte(s, i + 1) == 10 then
      end_record()
      line = line + 1
      i = i + 2
    else
      field_started = true
      local j = string_find(s, '[,\r\n"]', i)
      while j and string_byte(s, j) == 13 and string_byte(s, j + 1) ~= 10 and j < n do  -- a lone CR is data
        j = string_find(s, '[,\r\n"]', j + 1)
      end
      if j and string_byte(s, j) == 34 then return malformed(line, "stray quote in an unquoted field") end
      if not j then j = n + 1 end
      local stop = j
      if j == n and string_byte(s, j) == 13 then j = n + 1 end    -- a CR ending the file ends its last record
      buf[#buf + 1] = string_sub(s, i, stop - 1)
      i = j
    end
  end
  end_record()
  return records
end

local function valid_phone(p)
  return string_find(p, "^%+[1-9]%d%d%d%d%d%d+$") ~= nil and #p <= 16
end
_M.valid_phone = valid_phone

-- returns contacts ({to=, vars=}), errors (strings); or nil, message when the whole file is refused
function _M.check(text, campaign_vars)
  campaign_vars = type(campaign_vars) == "table" and campaign_vars or {}
  local records, refusal = _M.parse(text)
  if not records then return nil, refusal end
  local header = records[1]
  if not header then return nil, NO_PHONE end
  local names, phone_col = {}, nil
  for k, cell in ipairs(header) do
    names[k] = trim(cell)
    if not phone_col and PHONE_HEADERS[string_lower(names[k])] then phone_col = k end
  end
  if not phone_col then return nil, NO_PHONE end
  if #records < 2 then return nil, NO_CONTACTS end
  local contacts, errors, seen = {}, {}, {}
  local ncols = #header
  for r = 2, #records do
    local row, rn = records[r], r - 1
    local bad = false
    local function problem(msg)
      errors[#errors + 1] = string_format("Row %d: %s", rn, msg)
      bad = true
    end
    if #row ~= ncols then
      problem(string_format("expected %d columns, got %d", ncols, #row))
    else
      local given = row[phone_col]
      local phone = trim(given)
      if phone == "" then
        problem("missing phone number")
      elseif not valid_phone(phone) then
        problem("invalid phone number '" .. given .. "'")
      elseif seen[phone] then
        problem("duplicate phone number '" .. phone .. "'")
      end
      for k = 1, ncols do
        -- a campaign variable supplies a column only with a value: a blank one no more than a blank cell
        local given_var = campaign_vars[names[k]]
        if k ~= phone_col and trim(row[k]) == "" and (given_var == nil or (type(given_var) == "string"
                                                                           and trim(given_var) == "")) then
          problem("missing required variable '" .. names[k] .. "'")
        end
      end
      if not bad then
        seen[phone] = true
        local vars = {}
        for name, v in pairs(campaign_vars) do vars[name] = v end
        for k = 1, ncols do
          if k ~= phone_col then
            local v = trim(row[k])
            if v ~= "" then vars[names[k]] = v end
          end
        end
        contacts[#contacts + 1] = { to = phone, vars = vars }
      end
    end
  end
  return contacts, errors
end

return _M
