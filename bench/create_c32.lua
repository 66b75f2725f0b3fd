-- bench child: N creates, 32 in flight from one Lua thread, through sigmamind.map (the tasks API).
local sigmamind = require "sigmamind"
local core = require "sigmamind.core"
local n = tonumber(arg[1])
local concurrency = tonumber(arg[2]) or 32
if type(sigmamind.map) ~= "function" then
  print("skipped=needs sigmamind.map")
  return
end
local params = assert(core.json_decode(os.getenv("BENCH_BODY")))
-- BENCH_URL (https://…, the sandbox's TLS port) and BENCH_CA (its certificate): the TLS scenarios
local client = sigmamind.new{ base_url = os.getenv("BENCH_URL"), ca_file = os.getenv("BENCH_CA") }
-- an untimed round opens the connections (and TLS sessions) the timed run reuses, as the peers do
local warm = {}
for i = 1, concurrency do warm[i] = i end
sigmamind.map(client, warm, function() return assert(client.calls:create(params)) end,
              { concurrency = concurrency })
local items = {}
for i = 1, n do items[i] = i end
local c0, t0 = os.clock(), core.now()
local results = sigmamind.map(client, items, function() return client.calls:create(params) end,
                              { concurrency = concurrency })
local elapsed, cpu = core.now() - t0, os.clock() - c0
local errors = 0
for i = 1, n do
  local r = results[i]
  if not (r and type(r[1]) == "table" and r[1].callId) then errors = errors + 1 end
end
client:close()
print(string.format("count=%d elapsed=%.6f cpu=%.6f errors=%d", n, elapsed, cpu, errors))
