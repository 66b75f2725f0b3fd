-- Sandbox phone numbers: the PhoneNumber object (API.md §3) and the /v1/phone-numbers routes.
local util = require "sandbox.util"
local store = require "sandbox.store"
local validate = require "sandbox.validate"

local null, cache_json = util.null, util.cache_json
local bad, is_e164, check_e164, check_string = validate.bad, validate.is_e164, validate.check_e164, validate.check_string
local check_agent, check_int, first_error, list_page =
  validate.check_agent, validate.check_int, validate.first_error, validate.list_page
local type, tostring = type, tostring
local string_find, string_format, math_random = string.find, string.format, math.random
local S = store.S

local _M = {}

local function number_obj(n)
  return {
    sipPhoneNumber = n.number, provider = n.provider, inboundAgentId = n.inbound or null,
    outboundAgentId = n.outbound or null, outboundPhoneNumber = n.outphone or null, active = n.active,
    terminationSipURI = n.sipuri or null, friendlyName = n.name or null,
  }
end
_M.number_obj = number_obj

function _M.number_json(n) return n.json or cache_json(n, number_obj) end

local COUNTRY_CODES = { US = "1", CA = "1", GB = "44", DE = "49", FR = "33", ES = "34", IT = "39", NL = "31",
                        IN = "91", AU = "61", BR = "55", MX = "52", JP = "81", IE = "353", SE = "46" }

local function number_fields_error(b)
  local st, msg = check_string(b, "friendlyName", false, 0, 128)
  if st then return st, msg end
  st, msg = check_agent(b, "inboundAgentId", false, true)
  if st then return st, msg end
  st, msg = check_agent(b, "outboundAgentId", false, true)
  if st then return st, msg end
  return check_e164(b, "outboundPhoneNumber", false)
end

-- a BYO number's trunk: URI (terminationSipURI on import, terminationSipUri in a PATCH), user, password
local function check_trunk(b, uri_field, required)
  local uri = b[uri_field]
  if (uri ~= nil or required) and (type(uri) ~= "string" or #uri < 1 or #uri > 253) then
    return bad(uri_field, "expected a SIP URI of at most 253 characters", uri)
  end
  local st, msg = check_string(b, "trunkUsername", required, 1, 256)
  if st then return st, msg end
  return check_string(b, "trunkPassword", required, 1, 256)
end

local function add_number(n)
  S.numbers[n.number] = n
  S.number_list[#S.number_list + 1] = n
end

local function opt(v)
  if v == null then return nil end
  return v
end

function _M.provision_number(_, b)
  local number = b.phoneNumber
  if number ~= nil then
    local st, msg = check_e164(b, "phoneNumber", true)
    if st then return st, msg end
    if S.numbers[number] then return bad("phoneNumber", "expected a number not already on this account", number) end
  else
    local cc = b.countryCode
    if cc == nil then
      return bad("phoneNumber", "expected an E.164 phone number (or a countryCode to pick one)", nil)
    end
    if type(cc) ~= "string" or not string_find(cc, "^[A-Z][A-Z]$") then
      return bad("countryCode", "expected a two-letter country code like US", cc)
    end
    local st, msg = first_error(check_int(b, "areaCode", 100, 99999))
    if st then return st, msg end
    local prefix = COUNTRY_CODES[cc]
    if not prefix then return bad("countryCode", "expected a country with numbers available", cc) end
    local area = tostring(b.areaCode or (prefix == "1" and 415 or 20))
    for _ = 1, 1000 do
      local cand = "+" .. prefix .. area .. string_format("%07d", math_random(0, 9999999))
      if not S.numbers[cand] and is_e164(cand) then number = cand break end
    end
    if not number then return bad("areaCode", "expected an area code with numbers available", b.areaCode) end
  end
  local st, msg = number_fields_error(b)
  if st then return st, msg end
  local n = { number = number, provider = "twilio", active = true, name = b.friendlyName,
              inbound = opt(b.inboundAgentId), outbound = opt(b.outboundAgentId), outphone = b.outboundPhoneNumber }
  add_number(n)
  return 201, number_obj(n)
end

function _M.import_number(_, b)
  local st, msg = check_e164(b, "phoneNumber", true)
  if st then return st, msg end
  if S.numbers[b.phoneNumber] then return bad("phoneNumber", "expected a number not already on this account", b.phoneNumber) end
  st, msg = check_trunk(b, "terminationSipURI", true)
  if st then return st, msg end
  st, msg = number_fields_error(b)
  if st then return st, msg end
  local n = { number = b.phoneNumber, provider = "byo", active = true, name = b.friendlyName, sipuri = b.terminationSipURI,
              user = b.trunkUsername, password = b.trunkPassword,
              inbound = opt(b.inboundAgentId), outbound = opt(b.outboundAgentId), outphone = b.outboundPhoneNumber }
  add_number(n)
  return 201, number_obj(n)
end

function _M.list_numbers(_, _, args)
  return list_page(S.number_list, args, "totalCount", nil, number_obj)
end

_M.get_number = validate.get_by_id("numbers", "Phone number", number_obj)

function _M.update_number(id, b)
  local n = S.numbers[id]
  if not n then return 404, "Phone number not found: " .. id end
  local st, msg = number_fields_error(b)
  if st then return st, msg end
  st, msg = check_trunk(b, "terminationSipUri", false)
  if st then return st, msg end
  local uri = b.terminationSipUri
  n.json = nil
  if b.friendlyName ~= nil then n.name = b.friendlyName end
  if b.inboundAgentId ~= nil then n.inbound = opt(b.inboundAgentId) end
  if b.outboundAgentId ~= nil then n.outbound = opt(b.outboundAgentId) end
  if b.outboundPhoneNumber ~= nil then n.outphone = b.outboundPhoneNumber end
  if uri ~= nil then n.sipuri = uri end
  if b.trunkUsername ~= nil then n.user = b.trunkUsername end
  if b.trunkPassword ~= nil then n.password = b.trunkPassword end
  return 200, number_obj(n)
end

_M.delete_number = validate.delete_by_id("numbers", "number_list", "Phone number")

return _M
