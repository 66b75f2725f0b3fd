-- An nginx handler for SigmaMind webhook deliveries: verify against the raw body, 401 forged, 204 good, then
-- hand the event to on_event. Runs in the content phase (content_by_lua_block).
local webhook = require "sigmamind.webhook"
local cjson = require("cjson.safe").new()

local ngx = ngx
local os_getenv, io_open, tostring = os.getenv, io.open, tostring

local _M = {}

local events = ngx.shared.sigmamind_events

-- Your code goes here: the event is verified and decoded (event.event, event.callId, event.data ...).
-- Keep it quick; for slow work use ngx.timer.at(0, fn, event) so the sender gets its answer at once.
function _M.on_event(event)
  ngx.log(ngx.INFO, "sigmamind webhook: ", tostring(event.event), " for call ", tostring(event.callId))
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

function _M.receive()
  if ngx.req.get_method() ~= "POST" then return ngx.exit(ngx.HTTP_NOT_ALLOWED) end
  local secret = os_getenv("SIGMAMIND_WEBHOOK_SECRET")
  if not secret or secret == "" then
    ngx.log(ngx.ERR, "sigmamind webhook: SIGMAMIND_WEBHOOK_SECRET is not set (and named by an env directive)")
    return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
  end
  local event, failure = webhook.verify(raw_body(), ngx.req.get_headers(), { secret = secret })
  if not event then
    ngx.log(ngx.WARN, "sigmamind webhook refused: ", tostring(failure))
    ngx.status = ngx.HTTP_UNAUTHORIZED
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode({ error = failure.reason }))
    return ngx.exit(ngx.HTTP_UNAUTHORIZED)
  end
  _M.on_event(event)
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
