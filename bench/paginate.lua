-- bench child: iterate every call with client.calls:each{ size = 100 } (with a second argument,
-- `prefetch`: each page but the last starts the next); records/s and the process's peak RSS.
local sigmamind = require "sigmamind"
local core = require "sigmamind.core"
local expect = tonumber(arg[1])
local prefetch = arg[2] == "prefetch"
local client = sigmamind.new{}
local n, errors = 0, 0
local c0, t0 = os.clock(), core.now()
for call in client.calls:each{ size = 100, prefetch = prefetch } do
  if call.callId then n = n + 1 else errors = errors + 1 end
end
local elapsed, cpu = core.now() - t0, os.clock() - c0
client:close()
local f = assert(io.open("/proc/self/status"))
local hwm = tonumber(f:read("a"):match("VmHWM:%s*(%d+)"))
f:close()
if n ~= expect then errors = errors + 1 end
print(string.format("count=%d elapsed=%.6f cpu=%.6f errors=%d hwm_kb=%d", n, elapsed, cpu, errors, hwm))
