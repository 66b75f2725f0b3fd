-- client.webhooks' own verbs: events sent in the documented spelling, enable and disable.
local build    = require "sigmamind.build"
local records  = require "sigmamind.records"
local resource = require "sigmamind.resource"

local type, pairs = type, pairs

local Webhooks = resource.methods.webhooks
local check_self, check_opts = resource.check_self, resource.check_opts
local norm_events = records.norm_events

-- send the documented spelling whatever the caller wrote (the caller's tables are left alone)
local function with_events(params)
  if type(params) ~= "table" or params.events == nil or build.is_plan(params) then return params end
  local sent = {}
  for k, v in pairs(params) do sent[k] = v end
  local ev = params.events
  if type(ev) == "table" then
    local list = {}
    for k, e in pairs(ev) do list[k] = e end
    ev = list
  end
  sent.events = norm_events(ev)
  return sent
end

local webhook_create, webhook_update = Webhooks.create, Webhooks.update
function Webhooks.create(self, params, opts) return webhook_create(self, with_events(params), opts) end
function Webhooks.update(self, id, params, opts)
  return webhook_update(self, id, with_events(params), opts)
end

function Webhooks.enable(self, id, opts)
  check_self(self, "webhooks", "enable"); check_opts(opts, "webhooks", "enable")
  return self:update(id, { active = true }, opts)
end

function Webhooks.disable(self, id, opts)
  check_self(self, "webhooks", "disable"); check_opts(opts, "webhooks", "disable")
  return self:update(id, { active = false }, opts)
end

return Webhooks
