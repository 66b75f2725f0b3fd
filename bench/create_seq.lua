-- bench child: N sequential client.calls:create{...} (BENCH_BODY decoded), decoded by the module.
local sigmamind = require "sigmamind"
local core = require "sigmamind.core"
local n = tonumber(arg[1])
local params = assert(core.json_decode(os.getenv("BENCH_BODY")))
-- BENCH_URL (https://…, the sandbox's TLS port) and BENCH_CA (its certificate): the TLS scenarios
local client = sigmamind.new{ base_url = os.getenv("BENCH_URL"), ca_file = os.getenv("BENCH_CA") }
assert(client.calls:create(params))            -- connect outside the timed loop, as wrk does
local errors = 0
local c0, t0 = os.clock(), core.now()
for _ = 2, n do
  local call = client.calls:create(params)
  if not (call and call.callId) then errors = errors + 1 end
end
local elapsed, cpu = core.now() - t0, os.clock() - c0
client:close()
print(string.format("count=%d elapsed=%.6f cpu=%.6f errors=%d", n - 1, elapsed, cpu, errors))
