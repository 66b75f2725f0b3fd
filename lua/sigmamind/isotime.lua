-- ISO-8601 times to unix seconds and back (observe.lua's filters, reconcile.lua's windows).
--
-- Computed arithmetically, in UTC: os.time would read the fields as local time.
local type, tonumber = type, tonumber
local math_floor, math_huge = math.floor, math.huge
local string_format, string_match = string.format, string.match

local _M = {}

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
-- Accepts a date alone (midnight), `T` or a space before HH:MM[:SS[.fff]], and `Z`, `+hh:mm`,
-- `+hhmm`, `+hh` or nothing (read as UTC) after it; unix seconds (a number) pass through.
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

return _M
