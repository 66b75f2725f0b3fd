-- bench child: build and encode an N-contact campaign (rows made before the clock starts) with
-- :contacts(rows), :build() (CSV, base64, row checks) and the JSON body; seconds and peak RSS.
local sigmamind = require "sigmamind"
local core = require "sigmamind.core"
local n = tonumber(arg[1])
local rows = {}
for i = 1, n do
  rows[i] = { phoneNumber = string.format("+1212%07d", i), customer_name = "Customer " .. i,
              plan = (i % 3 == 0) and "Premium" or "Basic", account = tostring(100000 + i) }
end
local c0, t0 = os.clock(), core.now()
local params, problems, fatal = sigmamind.campaign "Benchmark campaign"
  :agent(os.getenv("SIGMAMIND_SANDBOX_AGENT") or "agent_abc123")
  :caller(os.getenv("SIGMAMIND_SANDBOX_NUMBER") or "+14157774444")
  :concurrency(10)
  :variables{ source = "bench" }
  :contacts(rows)
  :build()
local body = core.json_encode(params)
local elapsed, cpu = core.now() - t0, os.clock() - c0
local errors = (fatal or problems or type(body) ~= "string") and 1 or 0
local f = assert(io.open("/proc/self/status"))
local hwm = tonumber(f:read("a"):match("VmHWM:%s*(%d+)"))
f:close()
print(string.format("count=%d elapsed=%.6f cpu=%.6f errors=%d hwm_kb=%d bytes=%d", n, elapsed, cpu, errors, hwm,
                    #body))
