-- sigmamind.upload: how campaigns:create sends a campaign, and the switch from JSON to multipart on a 415.
--
-- SigmaMind's outbound-calls guide sends POST /v1/campaigns as JSON (`file` the base64 of the CSV); its API
-- reference page shows multipart/form-data (the CSV as a file part, the variables as a part `variables`).
-- The core sends the encoding the client is set to (`campaign_upload`, `client._c:_upload()`); a server that
-- refuses JSON with 415 Unsupported Media Type created nothing, so the same campaign goes once more as a form
-- and the client keeps to forms from then on. Lua 5.1/LuaJIT compatible.
local pcall, type = pcall, type

local _M = {}

-- create(ns, params, opts) sends the campaign: the generated campaigns.create, blocking or in a task
function _M.create(client, create, ns, params, opts)
  local c = client._c
  local switchable = c._upload ~= nil             -- a transport that can send forms (not the nginx one)
  local sent_as = switchable and c:_upload() or "json"
  local camp, err = create(ns, params, opts)
  if camp ~= nil or sent_as ~= "json" or not switchable or type(err) ~= "table" or err.status ~= 415 then
    return camp, err
  end
  -- another task's 415 may have switched the client meanwhile: the event is told once, each create resent
  if c:_upload() == "json" then
    c:_upload("multipart")
    local on_event = client._on_event
    if on_event then
      pcall(on_event, { type = "switch", from = "json", to = "multipart", method = err.method, path = err.path,
                        status = err.status, attempt = err.attempts, elapsed = err.elapsed,
                        message = "the server refused JSON (415): campaigns go as multipart/form-data" })
    end
  end
  return create(ns, params, opts)
end

return _M
