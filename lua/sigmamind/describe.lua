-- A value as a misuse message shows it after "got": the string "2" must not read as the number 2.
local type, tostring, next, pcall, require = type, tostring, next, pcall, require
local string_format, string_gsub, string_sub = string.format, string.gsub, string.sub

-- the builders (rules.lua uses this) work without the C core, as build.lua's base64 does
local has_core, core = pcall(require, "sigmamind.core")
local null = has_core and type(core) == "table" and core.null or nil

local _M = {}

local SHOW_MAX = 40   -- characters of a string shown; the rest is cut

-- `the string "2"`, `2`, `nan`, `true`, `nothing`, `null`, `a table`, ...
function _M.value(v)
  local t = type(v)
  if t == "string" then
    local s = string_gsub(string_sub(v, 1, SHOW_MAX), "[%c\"\\]", "?")
    return string_format('the string "%s"%s', s, #v > SHOW_MAX and "..." or "")
  end
  if t == "number" or t == "boolean" then return tostring(v) end
  if v == nil then return "nothing" end
  if null ~= nil and v == null then return "null" end
  if t == "table" then return next(v) == nil and "an empty table" or "a table" end
  return "a " .. t
end

return _M
