-- multipart/form-data (RFC 7578 over RFC 2046) read from a whole body, in pure Lua: the campaign upload the
-- API reference shows. Strict where a client could be wrong (CRLF, the boundary, a named form-data part),
-- and every refusal says what is wrong, for a 400.
local string_find, string_sub, string_lower, string_match, string_byte =
  string.find, string.sub, string.lower, string.match, string.byte
local type, table_concat = type, table.concat

local _M = {}

_M.MAX_BYTES = 16 * 1024 * 1024   -- a bigger body is refused with 413 before it is read
_M.MAX_PARTS = 100

-- `; name=value` parameters from position i of a header value (a value token or quoted string, with \
-- escapes) -> { [lowercase name] = value } | nil when they do not parse
local function params(s, i)
  local out, n = {}, #s
  while true do
    i = string_find(s, "[^ \t]", i) or n + 1
    if i > n then return out end
    if string_sub(s, i, i) ~= ";" then return nil end
    i = string_find(s, "[^ \t]", i + 1) or n + 1
    if i > n then return out end                       -- a trailing ';' is harmless
    local name, e = string_match(s, "^([^=;%s\"]+)%s*=%s*()", i)
    if not name then return nil end
    i = e
    local value
    if string_sub(s, i, i) == '"' then
      local buf, j = {}, i + 1
      while true do
        local c = string_sub(s, j, j)
        if c == "" then return nil end                 -- no closing quote
        if c == '"' then break end
        if c == "\\" then j = j + 1; c = string_sub(s, j, j) end
        buf[#buf + 1] = c
        j = j + 1
      end
      value, i = table_concat(buf), j + 1
    else
      value, i = string_match(s, "^([^;%s]*)()", i)
    end
    out[string_lower(name)] = value
  end
end

-- boundary characters (RFC 2046 bchars), 1 to 70 of them, not ending in a space
local function valid_boundary(b)
  return type(b) == "string" and #b >= 1 and #b <= 70 and string_find(b, "^[%w'()+_,%-%./:=? ]+$") ~= nil
         and string_byte(b, #b) ~= 32
end

-- the boundary of a multipart/form-data Content-Type -> boundary | nil, message
function _M.boundary(content_type)
  local kind, e = string_match(content_type, "^%s*([^;%s]+)()")
  if not kind or string_lower(kind) ~= "multipart/form-data" then
    return nil, "Content-Type: expected multipart/form-data, got '" .. content_type .. "'"
  end
  local p = params(content_type, e)
  local b = p and p.boundary
  if not valid_boundary(b) then
    return nil, "Content-Type: expected multipart/form-data with a boundary parameter (1 to 70 of the " ..
      "characters RFC 2046 allows), got '" .. content_type .. "'"
  end
  return b
end

-- -> { { name =, filename = (or nil), content_type = (or nil), data = }, ... } | nil, message
function _M.parse(content_type, body)
  local b, err = _M.boundary(content_type)
  if not b then return nil, err end
  local delim = "--" .. b
  local function fail(msg) return nil, "body: multipart: " .. msg end
  -- the first delimiter opens the body or ends a preamble (which is ignored)
  local pos
  if string_sub(body, 1, #delim) == delim then
    pos = #delim + 1
  else
    local at = string_find(body, "\r\n" .. delim, 1, true)
    if not at then return fail("expected the boundary '" .. delim .. "' (from Content-Type), found none") end
    pos = at + 2 + #delim
  end
  local parts = {}
  while true do
    if string_sub(body, pos, pos + 1) == "--" then return parts end      -- the close delimiter; epilogue ignored
    local n = #parts + 1
    if n > _M.MAX_PARTS then return fail("expected at most " .. _M.MAX_PARTS .. " parts") end
    pos = string_find(body, "[^ \t]", pos) or #body + 1                  -- transport padding
    if string_sub(body, pos, pos + 1) ~= "\r\n" then
      if pos > #body then return fail("expected the closing boundary '" .. delim .. "--', got the end of the body") end
      return fail("part " .. n .. ": expected CRLF after the boundary")
    end
    pos = pos + 2
    local part, cd = {}, nil
    while true do                                                         -- headers, up to a blank line
      local eol = string_find(body, "\r\n", pos, true)
      if not eol then return fail("part " .. n .. ": expected its headers to end with a blank line (CRLF CRLF)") end
      local line = string_sub(body, pos, eol - 1)
      pos = eol + 2
      if line == "" then break end
      local name, value = string_match(line, "^([!#-'*+%-.0-9A-Z^-z|~]+):[ \t]*(.-)[ \t]*$")
      if not name then
        if #line > 40 then line = string_sub(line, 1, 37) .. "..." end
        return fail("part " .. n .. ": expected a header 'Name: value', got '" .. line .. "'")
      end
      name = string_lower(name)
      if name == "content-disposition" then cd = value
      elseif name == "content-type" then part.content_type = value end
    end
    local kind, e
    if cd then kind, e = string_match(cd, "^([^;%s]+)()") end
    local p = kind and string_lower(kind) == "form-data" and params(cd, e)
    if not p or not p.name or p.name == "" then
      return fail("part " .. n .. ": expected a Content-Disposition: form-data header with a name")
    end
    part.name = p.name
    part.filename = p.filename or p["filename*"]
    local stop = string_find(body, "\r\n" .. delim, pos, true)
    if not stop then
      return fail("part " .. n .. " ('" .. part.name .. "'): expected CRLF and the boundary '" .. delim ..
        "' after its content, got the end of the body")
    end
    part.data = string_sub(body, pos, stop - 1)
    parts[n] = part
    pos = stop + 2 + #delim
  end
end

return _M
