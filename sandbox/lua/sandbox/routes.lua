-- Sandbox routes: path -> route (a handler and counter key per method, and flags).
local calls = require "sandbox.calls"
local campaigns = require "sandbox.campaigns"
local phone_numbers = require "sandbox.phone_numbers"
local webhooks = require "sandbox.webhooks"
local agents = require "sandbox.agents"
local faults = require "sandbox.faults"
local A = require "sandbox.admin"

local pairs = pairs
local string_find, string_sub, table_sort, table_concat = string.find, string.sub, table.sort, table.concat

local _M = {}

-- flags: admin (a /_sandbox/ route: no faults, no connection count), public (no key needed),
-- public_methods (the same for some methods), raw (the handler reads the request itself),
-- body_optional (no body is an empty one), forms (method -> form(parts): that method also takes
-- multipart/form-data, made into its body by form)
local function route(tmpl, methods, flags)
  local r = { tmpl = tmpl, methods = methods, keys = {} }
  for m in pairs(methods) do r.keys[m] = m .. " " .. tmpl end
  if flags then for k, v in pairs(flags) do r[k] = v end end
  local allow = {}
  for m in pairs(methods) do allow[#allow + 1] = m end
  table_sort(allow)
  r.allow = table_concat(allow, ", ")
  return r
end

local EXACT = {
  ["/v1/calls"] = route("/v1/calls", { POST = calls.create_call, GET = calls.list_calls }),
  ["/v1/campaigns"] = route("/v1/campaigns", { POST = campaigns.create_campaign, GET = campaigns.list_campaigns },
                            { forms = { POST = campaigns.form_body } }),
  ["/v1/phone-numbers"] = route("/v1/phone-numbers", { POST = phone_numbers.provision_number, GET = phone_numbers.list_numbers }),
  ["/v1/phone-numbers/import"] = route("/v1/phone-numbers/import", { POST = phone_numbers.import_number }),
  ["/v1/webhooks"] = route("/v1/webhooks", { POST = webhooks.create_webhook, GET = webhooks.list_webhooks }),
  ["/v1/agents"] = route("/v1/agents", { GET = agents.list_agents }),
  ["/_sandbox/ping"] = route("/_sandbox/ping", { GET = A.ping }, { admin = true, public = true }),
  ["/_sandbox/reset"] = route("/_sandbox/reset", { POST = A.reset }, { admin = true, body_optional = true }),
  ["/_sandbox/state"] = route("/_sandbox/state", { GET = A.state }, { admin = true }),
  ["/_sandbox/seed"] = route("/_sandbox/seed", { POST = A.seed }, { admin = true }),
  ["/_sandbox/clock"] = route("/_sandbox/clock", { POST = A.clock }, { admin = true }),
  ["/_sandbox/deliveries"] = route("/_sandbox/deliveries", { GET = A.deliveries }, { admin = true }),
  ["/_sandbox/faults"] = route("/_sandbox/faults", { POST = faults.arm_fault, DELETE = faults.clear_faults }, { admin = true }),
  ["/_sandbox/chaos"] = route("/_sandbox/chaos", { POST = faults.chaos }, { admin = true }),
  ["/_sandbox/echo"] = route("/_sandbox/echo", { POST = A.echo_post, GET = A.echo_get },
                             { admin = true, public_methods = { POST = true }, raw = true }),
}

local PREFIXED = {
  { "/v1/calls/", route("/v1/calls/{callId}", { GET = calls.get_call, DELETE = calls.delete_call }) },
  { "/v1/campaigns/", route("/v1/campaigns/{campaignId}",
      { GET = campaigns.get_campaign, PATCH = campaigns.update_campaign, DELETE = campaigns.delete_campaign }) },
  { "/v1/phone-numbers/", route("/v1/phone-numbers/{phoneNumber}",
      { GET = phone_numbers.get_number, PATCH = phone_numbers.update_number, DELETE = phone_numbers.delete_number }) },
  { "/v1/webhooks/", route("/v1/webhooks/{webhookId}",
      { GET = webhooks.get_webhook, PATCH = webhooks.update_webhook, DELETE = webhooks.delete_webhook }) },
  { "/v1/agents/", route("/v1/agents/{agentId}", { GET = agents.get_agent }) },
  { "/_sandbox/echo/", route("/_sandbox/echo/{name}", { POST = A.echo_post },
      { admin = true, public_methods = { POST = true }, raw = true }) },
}

-- -> route, the raw (still percent-encoded) id of a route with one, or nothing
function _M.match(uri)
  local r = EXACT[uri]
  if r then return r end
  for i = 1, #PREFIXED do
    local p = PREFIXED[i]
    local pre = p[1]
    if string_sub(uri, 1, #pre) == pre then
      local id = string_sub(uri, #pre + 1)
      if id ~= "" and not string_find(id, "/", 1, true) then return p[2], id end
    end
  end
end

return _M
