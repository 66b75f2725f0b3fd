-- Logging without code (SIGMAMIND_LOG, the `log` option, the CLI's --verbose): a listener on the
-- client's on_event events, so a line shows exactly what on_event shows (no key, numbers masked).
-- Also guards the user's own on_event, whose first error is reported rather than swallowed.
local type, tostring, tonumber, pcall = type, tostring, tonumber, pcall
local string_format, string_lower, math_floor = string.format, string.lower, math.floor

local _M = {}

-- what each level shows: info the answers, retries and give-ups; debug the requests too
local LEVELS = { info = true, debug = true }
_M.levels = LEVELS

local function emit(out, line)
  if type(out) == "function" then out(line .. "\n") else out:write(line, "\n") end
end

local function ms(seconds)
  return string_format("%d ms", math_floor((tonumber(seconds) or 0) * 1000 + 0.5))
end

-- "(attempt 1, request-id abc)"; an event carries request_id when the transport gives one
local function tail(ev)
  if ev.request_id then return string_format(" (attempt %s, request-id %s)", tostring(ev.attempt), ev.request_id) end
  return string_format(" (attempt %s)", tostring(ev.attempt))
end

-- the line for an event, or nil when `level` does not show it
local function line_of(ev, level)
  local typ, what = ev.type, tostring(ev.method) .. " " .. tostring(ev.path)
  if typ == "request" then
    if level ~= "debug" then return nil end
    return string_format("sigmamind: debug: %s%s", what, tail(ev))
  elseif typ == "response" then
    local outcome = ev.status and tostring(ev.status) or ev.kind or "no answer"
    if ev.status and ev.kind then outcome = outcome .. " " .. ev.kind end
    return string_format("sigmamind: info: %s -> %s in %s%s", what, outcome, ms(ev.elapsed), tail(ev))
  elseif typ == "retry" then
    return string_format("sigmamind: info: %s: retry in %s (attempt %s: %s)", what, ms(ev.delay),
                         tostring(ev.attempt), tostring(ev.kind or ev.status))
  elseif typ == "give_up" then
    return string_format("sigmamind: info: %s: gave up after %s attempt%s in %s (%s)", what,
                         tostring(ev.attempt), ev.attempt == 1 and "" or "s", ms(ev.elapsed),
                         tostring(ev.kind or ev.status))
  elseif typ == "gone" then
    return string_format("sigmamind: info: %s -> 404 to a DELETE sent again: taken as deleted%s", what, tail(ev))
  end
  return string_format("sigmamind: info: %s %s%s", tostring(typ), what, tail(ev))
end
_M.line = line_of

-- SIGMAMIND_LOG as a level (nil: off). An unknown value is ignored, with one warning a process.
local warned = false
function _M.env_level(getenv, out)
  local v = getenv("SIGMAMIND_LOG")
  if v == nil or v == "" then return nil end
  local level = string_lower(v)
  if LEVELS[level] then return level end
  if level ~= "off" and not warned then
    warned = true
    emit(out, string_format('sigmamind: SIGMAMIND_LOG: unknown level "%s" (expected debug, info or off): ' ..
                            "not logging", v))
  end
  return nil
end

-- The on_event to give the transport: the log listener (when `level`) and then the user's handler
-- (when `user`), whose errors are caught here, the first one reported on `out`. nil when neither.
function _M.on_event(user, level, out)
  local listener
  if level then
    listener = function(ev)
      local line = line_of(ev, level)
      if line then pcall(emit, out, line) end     -- a failing log_file must not hide the user's handler
    end
  end
  if not user then return listener end
  local reported = false
  local function guarded(ev)
    local ok, msg = pcall(user, ev)
    if not ok and not reported then
      reported = true
      local shown, text = pcall(tostring, msg)
      emit(out, "sigmamind: on_event handler failed: " .. (shown and text or "(an error value tostring refuses)")
                .. " (further errors not shown)")
    end
  end
  if not listener then return guarded end
  return function(ev)
    listener(ev)
    guarded(ev)
  end
end

return _M
