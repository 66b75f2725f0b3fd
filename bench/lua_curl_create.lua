-- bench child, run under Lua 5.2 (Debian's lua-curl installs for 5.1 and 5.2): N sequential creates
-- through Debian's lua-curl (luacurl 0.3.0: easy handles only, no multi, no getinfo) and lua-cjson,
-- one easy handle reused so that libcurl keeps the connection alive. The floor for a Lua binding of
-- libcurl's easy interface.
local curl = require "curl"
local cjson = require "cjson"
local socket = require "socket"
local n = tonumber(arg[1])
local url = os.getenv("SIGMAMIND_BASE_URL") .. "/v1/calls"
local params = cjson.decode(os.getenv("BENCH_BODY"))
local concat = table.concat

local e = curl.easy_init()
local chunks, nchunks = {}, 0
e:setopt(curl.OPT_URL, url)
e:setopt(curl.OPT_HTTPHEADER, { "Content-Type: application/json", "Accept: application/json",
                                "X-API-Key: " .. os.getenv("SIGMAMIND_API_KEY") })
e:setopt(curl.OPT_NOSIGNAL, 1)
e:setopt(curl.OPT_TCP_NODELAY, 1)
e:setopt(curl.OPT_FAILONERROR, 1)      -- no getinfo in this binding: a status >= 400 fails perform instead
e:setopt(curl.OPT_WRITEFUNCTION, function(buf, len)
  nchunks = nchunks + 1
  chunks[nchunks] = buf
  return len
end)

local function create()
  e:setopt(curl.OPT_POSTFIELDS, cjson.encode(params))
  nchunks = 0
  if e:perform() ~= 0 then return nil end   -- perform returns libcurl's code (0: CURLE_OK) and a message
  return cjson.decode(concat(chunks, "", 1, nchunks))
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
