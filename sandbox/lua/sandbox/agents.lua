-- Sandbox agents: the Agent object (API.md §3) and GET /v1/agents[/{agentId}] (seeded only).
local util = require "sandbox.util"
local store = require "sandbox.store"
local validate = require "sandbox.validate"

local cache_json = util.cache_json
local list_page = validate.list_page
local S = store.S

local _M = {}

local function agent_obj(a)
  return { name = a.name, agentId = a.id, status = a.status }
end
_M.agent_obj = agent_obj

function _M.agent_json(a) return a.json or cache_json(a, agent_obj) end

function _M.list_agents(_, _, args)
  return list_page(S.agent_list, args, "totalCount", nil, agent_obj)
end

_M.get_agent = validate.get_by_id("agents", "Agent", agent_obj)

return _M
