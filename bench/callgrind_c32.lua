-- bench child under callgrind: N creates with 32 in flight through sigmamind.map, as create_c32 (an
-- untimed first map of 32 opens the connections). Run twice (N = W, N = W + K) and subtracted, as
-- callgrind_create.lua, for the instructions per create at 32 in flight (README: "At 32 in flight").
local sigmamind = require "sigmamind"
local core = require "sigmamind.core"
local n = tonumber(arg[1])
local params = assert(core.json_decode(os.getenv("BENCH_BODY")))
local client = sigmamind.new{}
local warm = {}
for i = 1, 32 do warm[i] = i end
sigmamind.map(client, warm, function() return assert(client.calls:create(params)) end, { concurrency = 32 })
local items = {}
for i = 1, n do items[i] = i end
local results = sigmamind.map(client, items, function() return client.calls:create(params) end,
                              { concurrency = 32 })
for i = 1, n do assert(results[i][1], tostring(results[i][2])) end
client:close()
