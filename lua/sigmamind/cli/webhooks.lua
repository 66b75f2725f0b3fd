-- sigmamind.cli.webhooks: `sigmamind webhooks create|list|get|enable|disable|delete|verify`.
local webhook = require "sigmamind.webhook"
local output = require "sigmamind.cli.output"
local context = require "sigmamind.cli.context"

local ipairs, next, type, tostring, table_concat = ipairs, next, type, tostring, table.concat

local _M = {}

local COLUMNS = {
  { "WEBHOOK", "webhookId" }, { "NAME", "name" }, { "AGENT", "agentId" }, { "URL", "url" },
  { "EVENTS", function(w) return type(w.events) == "table" and table_concat(w.events, ",") or w.events end },
  { "ACTIVE", "active" },
}
local FIRST = { "webhookId", "name", "agentId", "url", "events", "active", "secret" }
local EVENTS = { "conversation_started", "conversation_ended", "conversation_analysed" }
local EVENT_NAMES = { "conversation_started", "conversation_ended", "conversation_analysed", "conversation_analyzed" }

function _M.add_to_parser(parser)
  local webhooks = context.command(parser, "webhooks", "Manage webhooks and check deliveries."):command_target("sub")
  local c = context.command(webhooks, "create", "Create a webhook; prints its signing secret.")
  c:option("--name", "Name."):count(1)
  c:option("--agent", "Agent id."):count(1)
  c:option("--url", "Receiver URL."):count(1)
  c:option("--event", "Event (repeatable; default: all three)."):count("*"):choices(EVENT_NAMES)
  local l = context.command(webhooks, "list", "List webhooks.")
  l:option("--agent", "Only this agent's.")
  l:flag("--inactive", "List the disabled ones (the API hides them by default).")
  context.limit_options(l, "webhooks")
  context.command(webhooks, "get", "Show one webhook."):argument("id")
  local u = context.command(webhooks, "update", "Change a webhook.")
  u:argument("id")
  u:option("--name", "Name.")
  u:option("--url", "Receiver URL.")
  u:option("--event", "Event (repeatable): the events it receives from now on."):count("*"):choices(EVENT_NAMES)
  u:option("--active", "true delivers, false stops (as enable and disable)."):choices{ "true", "false" }
  context.command(webhooks, "enable", "Enable a webhook."):argument("id")
  context.command(webhooks, "disable", "Disable a webhook."):argument("id")
  context.command(webhooks, "delete", "Delete a webhook."):argument("id")
  local v = context.command(webhooks, "verify", "Check a delivery's signature: exit 0 if valid, 1 (with the " ..
                            "reason) if not.")
  v:option("--body", "File with the raw body ('-': stdin).", "-")
  v:option("--signature", "The X-SigmaMind-Signature header value (or the plain scheme's HMAC)."):count(1)
  v:option("--secret", "The webhook's secret (repeatable while rotating; default: $SIGMAMIND_WEBHOOK_SECRET). " ..
           "Visible to other users in ps and /proc/PID/cmdline: prefer the variable."):count("*")
  context.number_option(v, "--tolerance", "Seconds a timestamp may be off, either way.", "300")
  v:option("--scheme", "sigmamind (t=,v1=) or plain (HMAC of the body).", "sigmamind"):choices{ "sigmamind", "plain" }
end

-- local arithmetic: needs no API key
local function verify(ctx, a)
  local secrets = {}
  for _, s in ipairs(a.secret or {}) do secrets[#secrets + 1] = s end
  if #secrets == 0 and ctx.getenv("SIGMAMIND_WEBHOOK_SECRET") then secrets[1] = ctx.getenv("SIGMAMIND_WEBHOOK_SECRET") end
  ctx:need(secrets[1], "webhooks verify needs --secret (or SIGMAMIND_WEBHOOK_SECRET)")
  ctx:need(not (a.api_key_stdin and a.body == "-") or nil,
           "--api-key-stdin: webhooks verify needs no API key, and reads the body from stdin (--body -)")
  ctx:seconds(a, "tolerance")
  local body = ctx:read_file(a.body)
  local event, err = webhook.verify(body, { [webhook.header] = a.signature },
                                    { secrets = secrets, tolerance = a.tolerance, scheme = a.scheme })
  if not event then
    if ctx.json then
      ctx.stdout:write(output.json{ valid = false, reason = err.reason, message = err.message }, "\n")
    end
    ctx.stderr:write("invalid: ", err.reason, ": ", err.message, "\n")
    ctx:error_json(context.error_fields(err))
    ctx:exit(context.exit_code(err))
  end
  if ctx.json then ctx.stdout:write(output.json{ valid = true, event = event }, "\n")
  else
    local call = type(event.call) == "table" and event.call or {}
    ctx.stdout:write("valid: ", tostring(event.event), " ", tostring(call.callId), " ", tostring(call.status), "\n")
  end
end

function _M.command(a, ctx)
  if a.sub == "verify" then return verify(ctx, a) end
  local client = ctx:client(a)
  local s, w = a.sub, client.webhooks
  if s == "create" then
    local events = a.event
    if not events or #events == 0 then events = EVENTS end
    ctx:show(ctx:check(w:create{ name = a.name, agentId = a.agent, url = a.url, events = events }), FIRST)
  elseif s == "list" then
    local q = { agentId = a.agent }
    if a.inactive then q.active = false end
    ctx:listing(w, q, ctx:limit(a), COLUMNS, "webhooks")
  elseif s == "get" then ctx:show(ctx:check(w:get(a.id)), FIRST)
  elseif s == "update" then
    local p = { name = a.name, url = a.url }
    if a.event and #a.event > 0 then p.events = a.event end
    if a.active then p.active = a.active == "true" end
    ctx:need(next(p), "webhooks update needs at least one of --name, --url, --event, --active")
    ctx:show(ctx:check(w:update(a.id, p)), FIRST)
  elseif s == "enable" then ctx:show(ctx:check(w:enable(a.id)), FIRST)
  elseif s == "disable" then ctx:show(ctx:check(w:disable(a.id)), FIRST)
  elseif s == "delete" then ctx:check(w:delete(a.id)); ctx:done("webhook", a.id)
  end
  client:close()
end

return _M
