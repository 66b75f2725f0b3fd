-- The API's records as users see them: one spelling of each field, ids and nouns per namespace.
--
-- SigmaMind's documents spell some fields two ways (docs/api.md §6); a record read by the client is
-- normalised in place to the spelling docs/api.md §4 gives, whichever the server sent. A namespace
-- with nothing to normalise needs no entry here.
local type, ipairs = type, ipairs
local string_format, string_gsub = string.format, string.gsub

local _M = {}

-- The final call statuses, after which a call changes no more (as a list, and as a set).
_M.final_statuses = { "ended", "not_connected", "error" }
_M.FINAL = { ended = true, not_connected = true, error = true }
-- every call status, in the order of a call's life
_M.call_statuses = { "scheduled", "in_progress", "ended", "not_connected", "error" }

-- a phone number the API sent as a bare JSON number, as the +E.164 string it is everywhere else
local function e164(v)
  if type(v) == "number" then return "+" .. string_format("%.0f", v) end
  return v
end

local function norm_number(pn)
  if type(pn) ~= "table" then return pn end
  if type(pn.sipPhoneNumber) == "number" then pn.sipPhoneNumber = e164(pn.sipPhoneNumber) end
  if type(pn.outboundPhoneNumber) == "number" then
    pn.outboundPhoneNumber = e164(pn.outboundPhoneNumber)
  end
  return pn
end

-- statuses are few: each spelling seen is normalised once (a page of calls asks 100 times)
local status_memo, status_memo_n = {}, 0
local function norm_status(s)
  local v = status_memo[s]
  if v ~= nil then return v end
  if type(s) ~= "string" then return s end
  v = string_gsub(s, "-", "_")
  if status_memo_n < 64 then status_memo[s], status_memo_n = v, status_memo_n + 1 end
  return v
end

local function norm_campaign(c)
  if type(c) ~= "table" then return c end
  norm_number(c.phoneNumber)
  return c
end

-- runs once a record of every page of calls: a status seen before is looked up here, without a call
local function norm_call(c)
  if type(c) ~= "table" then return c end
  local s = c.status
  local v = status_memo[s] or norm_status(s)
  if v ~= s then c.status = v end
  if c.dynamicVariables == nil and c.variables ~= nil then c.dynamicVariables = c.variables end
  norm_number(c.phoneNumber)
  norm_campaign(c.campaign)
  return c
end

local EVENT_ALIASES = { conversation_analyzed = "conversation_analysed" }

-- a webhook's events, in the documented spelling (a lone name becomes a list of one); changed in
-- place
local function norm_events(events)
  if type(events) == "string" then events = { events } end
  if type(events) == "table" then
    for i, e in ipairs(events) do events[i] = EVENT_ALIASES[e] or e end
  end
  return events
end

local function norm_webhook(w)
  if type(w) ~= "table" then return w end
  w.events = norm_events(w.events)
  return w
end

_M.norm_call, _M.norm_events = norm_call, norm_events

-- namespace -> the function that normalises one of its records in place (and returns it)
_M.normalise = {
  calls = norm_call, campaigns = norm_campaign, phone_numbers = norm_number, webhooks = norm_webhook,
}

-- namespace -> the field by which its records are identified, for de-duplicating across shifting
-- pages
_M.id_field = {
  calls = "callId", campaigns = "campaignId", phone_numbers = "sipPhoneNumber", webhooks = "webhookId",
  agents = "agentId",
}

-- what a namespace's records are called in errors: one, and a page of them
local NOUN = { calls = { "a call", "calls" }, campaigns = { "a campaign", "campaigns" },
               phone_numbers = { "a phone number", "phone numbers" },
               webhooks = { "a webhook", "webhooks" }, agents = { "an agent", "agents" } }

-- The words for a namespace's records: one (`"a call"`), and a page of them (`"calls"`). A
-- namespace not listed is named after itself (`"a record of things"`, `"things"`).
function _M.noun(ns)
  local n = NOUN[ns]
  if n == nil then
    local plural = string_gsub(ns, "_", " ")
    n = { "a record of " .. plural, plural }
    NOUN[ns] = n
  end
  return n
end

return _M
