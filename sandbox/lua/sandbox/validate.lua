-- Sandbox handler helpers: checks (nil, or 400 and a message naming the field), paging, by-id routes.
local util = require "sandbox.util"
local store = require "sandbox.store"

local null, describe, array = util.null, util.describe, util.array
local type, pairs, ipairs, tonumber, tostring, select = type, pairs, ipairs, tonumber, tostring, select
local string_find, string_format, string_gsub = string.find, string.format, string.gsub
local math_ceil, table_remove = math.ceil, table.remove
local S = store.S

local _M = {}

local MAX_SIZE = 100

local function bad(field, expected, got)
  return 400, field .. ": " .. expected .. ", got " .. describe(got)
end
_M.bad = bad

local function is_e164(v)
  return type(v) == "string" and #v <= 16 and string_find(v, "^%+[1-9]%d%d%d%d%d%d+$") ~= nil
end

local function check_e164(body, field, required)
  local v = body[field]
  if v == nil and not required then return end
  if not is_e164(v) then return bad(field, "expected an E.164 phone number like +14155552671", v) end
end

-- characters as API.md counts them: UTF-8 code points (every byte but the continuation bytes)
local function chars(s)
  local _, cont = string_gsub(s, "[\128-\191]", "")
  return #s - cont
end

local function check_string(body, field, required, min, max)
  local v = body[field]
  if v == nil and not required then return end
  if type(v) ~= "string" or chars(v) < (min or 1) or chars(v) > max then
    return bad(field, string_format("expected a string of %d to %d characters", min or 1, max), v)
  end
end

local function check_agent(body, field, required, nullable)
  local v = body[field]
  if v == nil and not required then return end
  if v == null and nullable then return end
  if type(v) ~= "string" or #v < 1 or chars(v) > 64 then
    return bad(field, "expected an agent id of at most 64 characters", v)
  end
  if not S.agents[v] then return bad(field, "expected the id of an existing agent", v) end
end

local function check_vars(body, field)
  local v = body[field]
  if v == nil then return end
  if not util.is_object(v) then return bad(field, "expected an object", v) end
  for k, x in pairs(v) do
    local t = type(x)
    if t ~= "string" and t ~= "number" and t ~= "boolean" then
      return bad(field .. "." .. tostring(k), "expected a string, number or boolean", x)
    end
  end
end

local function check_int(body, field, min, max)
  local v = body[field]
  if v == nil then return end
  if type(v) ~= "number" or v % 1 ~= 0 or v < min or v > max then
    return bad(field, string_format("expected an integer from %d to %d", min, max), v)
  end
end

local function check_bool(body, field)
  local v = body[field]
  if v ~= nil and type(v) ~= "boolean" then return bad(field, "expected true or false", v) end
end

local function first_error(...)
  local n = select("#", ...)
  local args = { ... }
  for i = 1, n, 2 do
    if args[i] then return args[i], args[i + 1] end
  end
end

local function page_args(args)
  local page, size = 0, 10
  if args.page ~= nil then
    page = tonumber(args.page)
    if type(args.page) ~= "string" or not page or page < 0 or page % 1 ~= 0 then
      return nil, nil, "page: expected an integer >= 0, got " .. describe(args.page)
    end
  end
  if args.size ~= nil then
    size = tonumber(args.size)
    if type(args.size) ~= "string" or not size or size < 1 or size > MAX_SIZE or size % 1 ~= 0 then
      return nil, nil, "size: expected an integer from 1 to " .. MAX_SIZE .. ", got " .. describe(args.size)
    end
  end
  return page, size
end

local function page_of(items, page, size, total, total_key)
  local pages = math_ceil(total / size)
  return { data = array(items), page = page, size = size, [total_key] = total, totalPages = pages,
           hasNext = page + 1 < pages, hasPrevious = page > 0 }
end

-- the handler of GET /{id}: 200 and obj(x) for the x S[map] holds under id, or 404 naming what
function _M.get_by_id(map, what, obj)
  return function(id)
    local x = S[map][id]
    if not x then return 404, what .. " not found: " .. id end
    return 200, obj(x)
  end
end

-- the handler of DELETE /{id}: drops the x S[map] holds under id from it and from the array S[list],
-- then calls gone(x) if given; or 404 naming what
function _M.delete_by_id(map, list, what, gone)
  return function(id)
    local x = S[map][id]
    if not x then return 404, what .. " not found: " .. id end
    S[map][id] = nil
    local xs = S[list]
    for i = 1, #xs do
      if xs[i] == x then table_remove(xs, i) break end
    end
    if gone then gone(x) end
    return 204
  end
end

-- a plain list (oldest first), filtered by keep(x), paged, rendered by obj(x)
local function list_page(list, args, total_key, keep, obj)
  local page, size, err = page_args(args)
  if err then return 400, err end
  local items, total, first = {}, 0, page * size
  for _, x in ipairs(list) do
    if not keep or keep(x) then
      if total >= first and #items < size then items[#items + 1] = obj(x) end
      total = total + 1
    end
  end
  return 200, page_of(items, page, size, total, total_key)
end

_M.is_e164, _M.check_e164, _M.check_string, _M.check_agent = is_e164, check_e164, check_string, check_agent
_M.check_vars, _M.check_int, _M.check_bool, _M.first_error = check_vars, check_int, check_bool, first_error
_M.page_args, _M.list_page = page_args, list_page

return _M
