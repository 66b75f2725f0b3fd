-- bench child: N sequential creates with LuaSocket's socket.http (a new connection each: it has no
-- keep-alive) and lua-cjson, the way glue code usually does it. With an https BENCH_URL, LuaSec's
-- ssl.https instead, which wraps socket.http (a new connection and TLS handshake each), verifying
-- the server against BENCH_CA.
local socket = require "socket"
local ltn12 = require "ltn12"
local cjson = require "cjson"
local n = tonumber(arg[1])
local base = os.getenv("BENCH_URL") or os.getenv("SIGMAMIND_BASE_URL")
local url = base .. "/v1/calls"
local key = os.getenv("SIGMAMIND_API_KEY")
local params = cjson.decode(os.getenv("BENCH_BODY"))
local concat = table.concat
local http, tls
if base:find("^https:") then
  http = require "ssl.https"
  tls = { verify = "peer", cafile = os.getenv("BENCH_CA") or error("BENCH_CA: expected the CA file") }
else
  http = require "socket.http"
end
local function create()
  local body = cjson.encode(params)
  local out = {}
  local req = {
    url = url, method = "POST", sink = ltn12.sink.table(out), source = ltn12.source.string(body),
    headers = { ["content-type"] = "application/json", ["accept"] = "application/json",
                ["x-api-key"] = key, ["content-length"] = #body },
  }
  if tls then req.verify, req.cafile = tls.verify, tls.cafile end
  local _, status = http.request(req)
  if status ~= 201 then return nil end
  return cjson.decode(concat(out))
end
assert(create())
local errors = 0
local c0, t0 = os.clock(), socket.gettime()
for _ = 2, n do
  local call = create()
  if not (call and call.callId) then errors = errors + 1 end
end
print(string.format("count=%d elapsed=%.6f cpu=%.6f errors=%d", n - 1, socket.gettime() - t0, os.clock() - c0,
                    errors))
