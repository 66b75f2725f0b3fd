-- bench child, run under Lua 5.2 (the newest Lua Debian's lua-http and its dependencies install
-- for): N creates with lua-http over cqueues and lua-cjson. `conns` coroutines share the N, each on
-- its own kept-alive HTTP/1.1 connection (lua-http 0.4 has no pool: http.request would connect for
-- every request).
-- Usage: lua5.2 lua_http_create.lua N [conns]; BENCH_URL (or SIGMAMIND_BASE_URL), BENCH_CA (https).
local cqueues = require "cqueues"
local http_client = require "http.client"
local http_headers = require "http.headers"
local http_tls = require "http.tls"
local cjson = require "cjson"

local n, conns = tonumber(arg[1]), tonumber(arg[2]) or 1
local base = os.getenv("BENCH_URL") or os.getenv("SIGMAMIND_BASE_URL")
local key = os.getenv("SIGMAMIND_API_KEY")
local scheme, host, port = base:match("^(https?)://([^:/]+):(%d+)")
local params = cjson.decode(os.getenv("BENCH_BODY"))
local ctx
if scheme == "https" then
  -- the default client context (peer verification, host/IP check) with our CA added to its store
  ctx = http_tls.new_client_context()
  local ca = os.getenv("BENCH_CA") or error("BENCH_CA: expected the CA file for " .. base)
  assert(ctx:getStore():add(ca))
end

local function connect()
  return assert(http_client.connect{ host = host, port = tonumber(port), tls = ctx ~= nil, ctx = ctx,
                                     version = 1.1 })
end

local function create(conn)
  local body = cjson.encode(params)
  local h = http_headers.new()
  h:append(":method", "POST")
  h:append(":scheme", scheme)
  h:append(":authority", host .. ":" .. port)
  h:append(":path", "/v1/calls")
  h:append("content-type", "application/json")
  h:append("accept", "application/json")
  h:append("x-api-key", key)
  h:append("content-length", tostring(#body))
  local stream = assert(conn:new_stream())
  assert(stream:write_headers(h, false))
  assert(stream:write_chunk(body, true))
  local rh = assert(stream:get_headers())
  local rbody = assert(stream:get_body_as_string())
  if rh:get(":status") ~= "201" then return nil end
  return cjson.decode(rbody)
end

local cq = cqueues.new()
local left, errors, t0, c0 = n, 0, nil, nil
local ready = 0
for _ = 1, conns do
  cq:wrap(function()
    local conn = connect()
    assert(create(conn))                  -- connect (and handshake) outside the timed part, as wrk does
    ready = ready + 1
    if ready == conns then t0, c0 = cqueues.monotime(), os.clock() end
    while not t0 do cqueues.sleep(0) end  -- start together
    while left > 0 do
      left = left - 1
      local call = create(conn)
      if not (call and call.callId) then errors = errors + 1 end
    end
    conn:close()
  end)
end
assert(cq:loop())
print(string.format("count=%d elapsed=%.6f cpu=%.6f errors=%d", n, cqueues.monotime() - t0, os.clock() - c0,
                    errors))
