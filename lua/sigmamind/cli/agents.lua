-- sigmamind.cli.agents: `sigmamind agents list|get`, for the agent ids the other commands ask for.
local context = require "sigmamind.cli.context"

local _M = {}

local COLUMNS = { { "AGENT", "agentId" }, { "NAME", "name" }, { "STATUS", "status" } }
local FIRST = { "agentId", "name", "status" }

function _M.add_to_parser(parser)
  local agents = context.command(parser, "agents", "List your AI voice agents (read only).")
    :command_target("sub")
  local l = context.command(agents, "list", "List agents.")
  context.limit_options(l, "agents")
  context.command(agents, "get", "Show one agent."):argument("id", "Agent id.")
end

function _M.command(a, ctx)
  local client = ctx:client(a)
  if a.sub == "list" then ctx:listing(client.agents, {}, ctx:limit(a), COLUMNS, "agents")
  else ctx:show(ctx:check(client.agents:get(a.id)), FIRST) end
  client:close()
end

return _M
