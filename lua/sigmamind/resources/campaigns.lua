-- client.campaigns' own verbs: pause, resume, progress, and a create that remembers its contacts.
local resource = require "sigmamind.resource"
local upload = require "sigmamind.upload"

local require = require

local Campaigns = resource.methods.campaigns
local check_self, check_params, check_id = resource.check_self, resource.check_params, resource.check_id
local check_opts = resource.check_opts

-- Pause and resume are PATCHes of campaignStatus (docs/api.md §6: no endpoint is published).
function Campaigns.pause(self, id, opts)
  check_self(self, "campaigns", "pause"); check_opts(opts, "campaigns", "pause")
  return self:update(id, { campaignStatus = "paused" }, opts)
end

function Campaigns.resume(self, id, opts)
  check_self(self, "campaigns", "resume"); check_opts(opts, "campaigns", "resume")
  return self:update(id, { campaignStatus = "live" }, opts)
end

-- observe.lua: campaigns:progress; create remembers the contacts it sent, for progress. Loaded on
-- first use.
local function observe() return require("sigmamind.observe") end

local resolve_plan, campaign_create = resource.resolve_plan, Campaigns.create
function Campaigns.create(self, params, opts)
  check_self(self, "campaigns", "create"); check_params(params, "campaigns", "create")
  check_opts(opts, "campaigns", "create")
  local body, err = resolve_plan(params, "campaigns.create")
  if body == nil and err then return nil, err end
  local camp, cerr = upload.create(self._client, campaign_create, self, body, opts)
  if camp then observe().remember(self._client, camp, body) end
  return camp, cerr
end

function Campaigns.progress(self, id)
  check_self(self, "campaigns", "progress")
  return observe().progress(self._client, check_id(id, "campaigns", "progress"))
end

return Campaigns
