-- An nginx handler for SigmaMind webhook deliveries: verify against the raw body, 401 forged, 204 good, 200 a
-- repeat already accepted, then hand each event once to on_event. Runs in the content phase (content_by_lua_block).
local webhook = require "sigmamind.webhook"
local cjson = require("cjson.safe").new()

local ngx = ngx
local os_getenv, io_open, tostring, type, pcall = os.getenv, io.open, tostring, type, pcall

local _M = {}

local events = ngx.shared.sigmamind_events

-- SigmaMind retries a delivery that got no 2xx in time, so one event can arrive more than once: the
-- (callId, event) pairs accepted are remembered for a day in the shared dict, one memory for every worker, whose
-- atomic add lets only one of two simultaneous copies through.
local seen = webhook.dedupe{ store = events }

-- Your code goes here: the event is verified and decoded: event.event (conversation_started, conversation_ended
-- or conversation_analysed), event.timestamp, and event.call, the Call (event.call.callId, event.call.status ...).
-- Keep it quick; for slow work use ngx.timer.at(0, fn, event) so the sender gets its answer at once. If it
-- raises, the delivery is answered 500 and forgotten by the dedupe, so that SigmaMind's retry is accepted.
function _M.on_event(event)
  local call = type(event.call) == "table" and event.call or {}
  ngx.log(ngx.INFO, "sigmamind webhook: ", event.event, " for call ", tostring(call.callId),
          " (", tostring(call.status), ")")
  local n = events:incr("count", 1, 0)
  events:set("event:" .. n, cjson.encode(event))
end

local function raw_body()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data then return data end
  local path = ngx.req.get_body_file()     -- larger than client_body_buffer_size: nginx wrote it to a file
  if not path then return "" end
  local f = io_open(path, "rb")
  if not f then return "" end
  data = f:read("*a")
  f:close()
  return data
end

local function answer(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(body))
  return ngx.exit(status)
end

function _M.receive()
  if ngx.req.get_method() ~= "POST" then return ngx.exit(ngx.HTTP_NOT_ALLOWED) end
  local secret = os_getenv("SIGMAMIND_WEBHOOK_SECRET")
  if not secret or secret == "" then
    ngx.log(ngx.ERR, "sigmamind webhook: SIGMAMIND_WEBHOOK_SECRET is not set (and named by an env directive)")
    return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
  end
  local event, failure = webhook.verify(raw_body(), ngx.req.get_headers(), { secret = secret, dedupe = seen })
  if not event and failure.reason == "duplicate" then
    -- a retry of a delivery accepted before (our answer was lost or late): verified, so answer 2xx, and 200
    -- rather than an error, or the sender would go on retrying it; on_event is not run a second time
    ngx.log(ngx.INFO, "sigmamind webhook: ", tostring(failure))
    return answer(ngx.HTTP_OK, { duplicate = true })
  end
  if not event then
    ngx.log(ngx.WARN, "sigmamind webhook refused: ", tostring(failure))
    return answer(ngx.HTTP_UNAUTHORIZED, { error = failure.reason })
  end
  local ok, err = pcall(_M.on_event, event)
  if not ok then
    seen:forget(event)
    ngx.log(ngx.ERR, "sigmamind webhook: on_event failed, the retry will be accepted: ", tostring(err))
    return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
  end
  return ngx.exit(ngx.HTTP_NO_CONTENT)
end

-- GET: the events received so far, oldest first
function _M.received()
  local out = {}
  for i = 1, events:get("count") or 0 do
    local e = events:get("event:" .. i)
    if e then out[#out + 1] = cjson.decode(e) end
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.say(#out == 0 and "[]" or cjson.encode(out))
end

return _M
