-- bench child under callgrind: N creates, as create_seq (one after another) or, with "c32", as
-- create_c32 (sigmamind.map, 32 in flight, after an untimed first map of 32). Run twice
-- (N = W, N = W + K) and subtracted, so that start-up (dynamic linking, loading, connecting)
-- drops out of the figure.
local sigmamind = require "sigmamind"
local core = require "sigmamind.core"
local n, mode = tonumber(arg[1]), arg[2]
local params = assert(core.json_decode(os.getenv("BENCH_BODY")))
local client = sigmamind.new{}
if mode == "c32" then
  local warm = {}                      -- opens the 32 connections
  for i = 1, 32 do warm[i] = i end
  sigmamind.map(client, warm, function() return assert(client.calls:create(params)) end, { concurrency = 32 })
  local items = {}
  for i = 1, n do items[i] = i end
  local results = sigmamind.map(client, items, function() return client.calls:create(params) end,
                                { concurrency = 32 })
  for i = 1, n do assert(results[i][1], results[i][2]) end
else
  for _ = 1, n do assert(client.calls:create(params)) end
end
client:close()
