-- The sandbox's entry point (a fake SigmaMind API): route, faults, key, handler, answer.
local ngx = ngx
local util = require "sandbox.util"
local store = require "sandbox.store"
local respond = require "sandbox.respond"
local routes = require "sandbox.routes"
local faults = require "sandbox.faults"
local admin = require "sandbox.admin"
local multipart = require "sandbox.multipart"

local encode, decode, describe = util.encode, util.decode, util.describe
local now, CFG, S = store.now, store.CFG, store.S
local send_raw, send_error = respond.send_raw, respond.send_error
local match, take_armed, chaos_pick, fault_before = routes.match, faults.take_armed, faults.chaos_pick, faults.before
local tick = admin.tick
local type, pairs, pcall, tonumber = type, pairs, pcall, tonumber
local string_find, string_sub, string_lower, math_floor = string.find, string.sub, string.lower, math.floor
local io_open = io.open
local ngx_now, ngx_var, ngx_req, ngx_header = ngx.now, ngx.var, ngx.req, ngx.header

local _M = {}

-- the request body, wherever nginx put it (memory, or a temporary file past client_body_buffer_size)
local function read_body_data()
  ngx_req.read_body()
  local data = ngx_req.get_body_data()
  if not data then
    local path = ngx_req.get_body_file()
    if path then
      local f = io_open(path, "rb")
      if f then data = f:read("*a") f:close() end
    end
  end
  return data
end

local function read_json_body()
  local data = read_body_data()
  if not data or data == "" then return nil, "body: expected a JSON object, got nothing" end
  local v = decode(data)
  if v == nil then return nil, "body: expected a JSON object, got invalid JSON" end
  if not util.is_object(v) then return nil, "body: expected a JSON object, got " .. describe(v) end
  return v
end

-- A route's upload (POST /v1/campaigns): JSON, or multipart/form-data made into the same body by form(parts),
-- as --campaign-upload allows -> body | nil, status, message
local function read_upload(form)
  local ctype = ngx_var.content_type
  local mode = CFG.campaign_upload
  if ctype and string_find(string_lower(ctype), "^%s*multipart/form%-data") then
    if mode == "json" then
      return nil, 415, "Content-Type: expected application/json (this sandbox takes JSON uploads only: " ..
        "--campaign-upload json), got '" .. ctype .. "'"
    end
    local max = multipart.MAX_BYTES
    local len = tonumber(ngx_var.content_length)
    if len and len > max then
      return nil, 413, "body: expected at most " .. max .. " bytes of multipart/form-data, got " .. len
    end
    local data = read_body_data() or ""
    if #data > max then
      return nil, 413, "body: expected at most " .. max .. " bytes of multipart/form-data, got " .. #data
    end
    local parts, err = multipart.parse(ctype, data)
    if not parts then return nil, 400, err end
    return form(parts)
  end
  if mode == "multipart" then
    return nil, 415, "Content-Type: expected multipart/form-data (this sandbox takes multipart uploads only: " ..
      "--campaign-upload multipart), got " .. (ctype and "'" .. ctype .. "'" or "nothing")
  end
  local body, err = read_json_body()
  if not body then return nil, 400, err end
  return body
end

function _M.handle()
  -- route on the path as sent: nginx's $uri is decoded and normalised, so /v1/calls/..%2Fagents would
  -- turn into /v1/agents and hide a client that failed to keep an id inside its own path segment
  local uri = ngx_var.request_uri
  local q = string_find(uri, "?", 1, true)
  if q then uri = string_sub(uri, 1, q - 1) end
  local method = ngx_req.get_method()
  -- a moved clock is the server's clock: its Date header says so too (a client may read the server's time
  -- from it, as calls:create's reconciliation does); nginx's own is the wall clock
  local date_skew = S.date_skew
  if S.offset ~= 0 or date_skew ~= 0 then ngx_header["Date"] = ngx.http_time(math_floor(now() + date_skew)) end
  local r, id = match(uri)
  if id then id = ngx.unescape_uri(id) end
  local counters = S.counters
  if not r then
    local key = method .. " " .. uri
    counters[key] = (counters[key] or 0) + 1
    if ngx_var.http_x_api_key ~= CFG.api_key then return send_error(401, "Missing or invalid X-API-Key") end
    return send_error(404, "No route for " .. method .. " " .. uri)
  end
  local key = r.keys[method] or (method .. " " .. r.tmpl)
  counters[key] = (counters[key] or 0) + 1

  -- a fault: from the header, else armed, else drawn by chaos mode; one acting after the handler
  -- (lost: carried out, but the answer never leaves: the ambiguous failure) is kept in after
  local f, after, n
  if not r.admin then
    local cn, conns = ngx_var.connection, S.conns
    if not conns[cn] then conns[cn] = true; S.nconns = S.nconns + 1 end
    f = ngx_var.http_x_sandbox_fault
    if not f and S.faults[1] then f = take_armed(method, uri, r.tmpl) end
    if not f and S.chaos then f = chaos_pick(key) end
    if f then
      local answered
      answered, after, n = fault_before(f)
      if answered then return end
    end
  end

  if not r.public and not (r.public_methods and r.public_methods[method])
     and ngx_var.http_x_api_key ~= CFG.api_key then
    return send_error(401, "Missing or invalid X-API-Key")
  end

  local h = r.methods[method]
  if not h then
    ngx_header["Allow"] = r.allow
    return send_error(405, "Method " .. method .. " not allowed on " .. r.tmpl)
  end

  local body, args
  if not r.raw then
    if method == "POST" or method == "PATCH" then
      local form = r.forms and r.forms[method]
      if form then
        local st, err
        body, st, err = read_upload(form)
        if not body then return send_error(st, err) end
      else
        local err
        body, err = read_json_body()
        if not body then
          if r.body_optional then body = {} else return send_error(400, err) end
        end
      end
    else
      args = ngx_req.get_uri_args()
    end
  end

  local ok, status, v = pcall(h, id, body, args)
  if not ok then
    ngx.log(ngx.ERR, "sandbox handler error: ", status)
    return send_error(500, "Sandbox internal error")
  end
  if after then return after(f, n) end
  if status == 204 then
    ngx.status = 204
    return ngx.exit(204)
  end
  if status >= 400 then return send_error(status, v) end
  if type(v) ~= "string" and not v[1] then v = encode(v) end
  return send_raw(status, v)
end

function _M.init(cfg)
  for k, v in pairs(cfg or {}) do CFG[k] = v end
  store.reset()
end

function _M.init_worker()
  math.randomseed(math_floor(ngx_now() * 1000) + ngx.worker.pid())
  local ok, err = ngx.timer.every(0.02, function(premature)
    if premature then return end
    local tok, terr = pcall(tick)
    if not tok then ngx.log(ngx.ERR, "sandbox tick: ", terr) end
  end)
  if not ok then ngx.log(ngx.ERR, "sandbox: cannot start the ticker: ", err) end
end

return _M
