-- bench child under callgrind: N sequential creates, as create_seq. Run twice (N = W, N = W + K)
-- and subtracted, so that start-up (dynamic linking, loading, connecting) drops out of the figure.
local sigmamind = require "sigmamind"
local core = require "sigmamind.core"
local n = tonumber(arg[1])
local params = assert(core.json_decode(os.getenv("BENCH_BODY")))
local client = sigmamind.new{}
for _ = 1, n do assert(client.calls:create(params)) end
client:close()
