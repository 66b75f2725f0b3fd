-- Helpers for the sandbox: JSON, time formatting, HMAC-SHA256 (libcrypto via FFI), ids and value descriptions.
local ffi = require "ffi"
local cjson = require("cjson.safe").new()
local string_format, string_byte, os_date, math_floor, math_random = string.format, string.byte, os.date, math.floor, math.random
local type, pairs, next, pcall, tostring, tonumber = type, pairs, next, pcall, tostring, tonumber
local table_concat = table.concat

local _M = {}

cjson.encode_sparse_array(true)
cjson.decode_max_depth(64)
cjson.decode_invalid_numbers(false)   -- NaN, Infinity and 0x10 are not JSON: a body with them is refused

_M.null = cjson.null
_M.decode = cjson.decode

-- cjson 2.1.0 encodes an empty table as {}: arrays that may be empty hold this sentinel and are patched afterwards
local EMPTY = "\1sandbox-empty-array\1"
_M.EMPTY_ARRAY = EMPTY
local EMPTY_JSON = '"\\u0001sandbox-empty-array\\u0001"'

function _M.encode(v)
  local s = cjson.encode(v)
  if s and s:find(EMPTY_JSON, 1, true) then
    s = s:gsub('"\\u0001sandbox%-empty%-array\\u0001"', "[]")
  end
  return s
end

-- x's JSON as obj(x) gives it, kept in x.json for the next time (whoever changes x clears that)
function _M.cache_json(x, obj)
  local j = _M.encode(obj(x))
  x.json = j
  return j
end

-- A number as JSON, exactly: cjson 2.1.0 writes 14 significant digits, which turned a variable such as
-- 123456789012345 into 1.2345678901234e+14. Integers up to 2^53 are written whole, other numbers in the fewest
-- digits that read back the same.
local HUGE = math.huge
local function number_text(n)
  if n ~= n or n == HUGE or n == -HUGE then return nil end
  if n % 1 == 0 and n > -9007199254740992 and n < 9007199254740992 then return string_format("%d", n) end
  for p = 1, 16 do
    local s = string_format("%." .. p .. "g", n)
    if tonumber(s) == n then return s end
  end
  return string_format("%.17g", n)
end
_M.number_text = number_text

-- A flat object's JSON (string, number and boolean values: dynamicVariables, as check_vars lets them in), its
-- numbers exact; strings are written by cjson, as everywhere else.
function _M.encode_flat(t)
  local parts, n = {}, 0
  for k, v in pairs(t) do
    local j = type(v) == "number" and (number_text(v) or "null") or cjson.encode(v) or "null"
    parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4] = n == 0 and "" or ",", cjson.encode(tostring(k)), ":", j
    n = n + 4
  end
  if n == 0 then return "{}" end
  return "{" .. table_concat(parts) .. "}"
end

function _M.array(t)
  if t == nil or next(t) == nil then return EMPTY end
  return t
end

-- ISO-8601 UTC with milliseconds; the seconds part is cached since the hot path formats "now" repeatedly
local last_sec, last_prefix = nil, nil
function _M.iso(t)
  local sec = math_floor(t)
  local ms = math_floor((t - sec) * 1000 + 0.5)
  if ms >= 1000 then sec, ms = sec + 1, ms - 1000 end
  if sec ~= last_sec then
    last_sec, last_prefix = sec, os_date("!%Y-%m-%dT%H:%M:%S", sec)
  end
  return string_format("%s.%03dZ", last_prefix, ms)
end

-- how a received value is named in 400 messages ("..., got <what>")
function _M.describe(v)
  local t = type(v)
  if v == nil then return "nothing" end
  if v == cjson.null then return "null" end
  if t == "string" then
    if #v > 64 then v = v:sub(1, 61) .. "..." end
    return "'" .. v .. "'"
  end
  if t == "number" or t == "boolean" then return tostring(v) end
  if t == "table" then
    if next(v) == nil then return "an empty object or array" end
    if v[1] ~= nil then return "an array" end
    return "an object"
  end
  return t
end

function _M.is_object(v)
  return type(v) == "table" and (next(v) == nil or v[1] == nil)
end

function _M.is_array(v)
  if type(v) ~= "table" then return false end
  local n = #v
  if n == 0 then return next(v) == nil end
  for k in pairs(v) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math_floor(k) then return false end
  end
  return true
end

function _M.random_hex(nbytes)
  local out = {}
  for i = 1, nbytes do out[i] = string_format("%02x", math_random(0, 255)) end
  return table_concat(out)
end

function _M.to_hex(s)
  return (s:gsub(".", function(c) return string_format("%02x", string_byte(c)) end))
end

-- HMAC-SHA256 from the libcrypto nginx is linked with (lua-nginx-module only offers HMAC-SHA1)
pcall(ffi.cdef, [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
]])
local crypto
do
  local ok = pcall(function() return ffi.C.HMAC ~= nil and ffi.C.EVP_sha256 ~= nil end)
  if ok then
    crypto = ffi.C
  else
    for _, name in ipairs{ "crypto", "libcrypto.so.3", "libcrypto.so.1.1" } do
      local lok, lib = pcall(ffi.load, name)
      if lok then crypto = lib break end
    end
  end
end
local md_buf = ffi.new("unsigned char[64]")
local md_len = ffi.new("unsigned int[1]")

function _M.hmac_sha256_hex(key, msg)
  if not crypto then error("sandbox: libcrypto not found for HMAC-SHA256") end
  local r = crypto.HMAC(crypto.EVP_sha256(), key, #key, msg, #msg, md_buf, md_len)
  if r == nil then error("sandbox: HMAC failed") end
  return _M.to_hex(ffi.string(md_buf, md_len[0]))
end

return _M
