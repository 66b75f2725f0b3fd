-- sigmamind.cli.numbers: `sigmamind numbers list|get|provision|import|update|delete`.
local sigmamind = require "sigmamind"
local context = require "sigmamind.cli.context"

local next = next

local _M = {}

local COLUMNS = { { "NUMBER", "sipPhoneNumber" }, { "PROVIDER", "provider" }, { "NAME", "friendlyName" },
                  { "INBOUND AGENT", "inboundAgentId" }, { "OUTBOUND AGENT", "outboundAgentId" },
                  { "ACTIVE", "active" } }
local FIRST = { "sipPhoneNumber", "provider", "friendlyName", "inboundAgentId", "outboundAgentId", "active" }

function _M.add_to_parser(parser)
  local numbers = context.command(parser, "numbers", "Manage phone numbers."):command_target("sub")
  local l = context.command(numbers, "list", "List phone numbers.")
  context.limit_options(l, "numbers")
  context.command(numbers, "get", "Show one number."):argument("number", "+E.164")
  local p = context.command(numbers, "provision", "Buy a number: a specific one, or one in a country/area code.")
  p:option("--number", "The number (+E.164).")
  p:option("--country", "Country code, e.g. US.")
  context.number_option(p, "--area-code", "Area code.")
  p:option("--name", "Friendly name.")
  p:option("--inbound-agent", "Inbound agent id.")
  p:option("--outbound-agent", "Outbound agent id.")
  local i = context.command(numbers, "import", "Import your own SIP number.")
  i:option("--number", "The number (+E.164)."):count(1)
  i:option("--sip-uri", "Termination SIP URI."):count(1)
  i:option("--username", "Trunk username."):count(1)
  i:mutex(
    i:option("--password", "Trunk password (default: $SIGMAMIND_TRUNK_PASSWORD). Visible to other users in ps " ..
             "and /proc/PID/cmdline: prefer the variable or --password-stdin."),
    i:flag("--password-stdin", "Read the trunk password from the first line of stdin.")
  )
  i:option("--name", "Friendly name.")
  i:option("--inbound-agent", "Inbound agent id.")
  i:option("--outbound-agent", "Outbound agent id.")
  local u = context.command(numbers, "update", "Change a number.")
  u:argument("number", "+E.164")
  u:option("--name", "Friendly name.")
  u:option("--inbound-agent", "Inbound agent id ('none' unassigns).")
  u:option("--outbound-agent", "Outbound agent id ('none' unassigns).")
  context.command(numbers, "delete", "Release a number."):argument("number", "+E.164")
end

local function unassign(v) if v == "none" then return sigmamind.null end return v end

local function import(ctx, n, a)
  local password = a.password
  if a.password_stdin then password = ctx:stdin_secret("--password-stdin")
  elseif password == nil and ctx.getenv("SIGMAMIND_TRUNK_PASSWORD") ~= "" then
    password = ctx.getenv("SIGMAMIND_TRUNK_PASSWORD")
  end
  ctx:need(password, "numbers import needs the trunk password: $SIGMAMIND_TRUNK_PASSWORD, --password-stdin or " ..
                     "--password")
  return ctx:check(n:import{ phoneNumber = a.number, terminationSipURI = a.sip_uri, trunkUsername = a.username,
                             trunkPassword = password, friendlyName = a.name,
                             inboundAgentId = a.inbound_agent, outboundAgentId = a.outbound_agent })
end

function _M.command(a, ctx)
  local client = ctx:client(a)
  local s, n = a.sub, client.phone_numbers
  if s == "list" then ctx:listing(n, {}, ctx:limit(a), COLUMNS, "numbers")
  elseif s == "get" then ctx:show(ctx:check(n:get(a.number)), FIRST)
  elseif s == "provision" then
    ctx:need(a.number or a.country, "numbers provision needs --number or --country")
    ctx:show(ctx:check(n:provision{ phoneNumber = a.number, countryCode = a.country, areaCode = a.area_code,
                                    friendlyName = a.name, inboundAgentId = a.inbound_agent,
                                    outboundAgentId = a.outbound_agent }), FIRST)
  elseif s == "import" then ctx:show(import(ctx, n, a), FIRST)
  elseif s == "update" then
    local p = { friendlyName = a.name, inboundAgentId = unassign(a.inbound_agent),
                outboundAgentId = unassign(a.outbound_agent) }
    ctx:need(next(p), "numbers update needs at least one of --name, --inbound-agent, --outbound-agent")
    ctx:show(ctx:check(n:update(a.number, p)), FIRST)
  elseif s == "delete" then ctx:check(n:delete(a.number)); ctx:done("number", a.number)
  end
  client:close()
end

return _M
