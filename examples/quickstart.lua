-- Quickstart: place a call, wait for it to finish, print its transcript, then list recent calls.
-- Run against the sandbox: eval "$(bin/sigmamind-sandbox --daemon)"; lua5.4 examples/quickstart.lua
local sigmamind = require "sigmamind"

-- api_key and base_url come from SIGMAMIND_API_KEY and SIGMAMIND_BASE_URL
local client = sigmamind.new{ timeout = 10 }

-- a call still ringing or talking has no duration yet
local function seconds(call)
  return type(call.duration) == "number" and call.duration .. " s" or "-"
end

local from = os.getenv("SIGMAMIND_FROM") or "+14157774444"     -- a number on your account
local agent = os.getenv("SIGMAMIND_AGENT") or "agent_abc123"

local call, err = client.calls:create{
  fromPhoneNumber = from,
  toPhoneNumber = "+12137774445",
  agentId = agent,
  dynamicVariables = { customer_name = "John Doe", plan_type = "Premium" },
}
if not call then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
print(("placed %s (%s)"):format(call.callId, call.status))

local done, werr = client.calls:wait(call.callId, { timeout = 120 })
if not done then
  io.stderr:write(tostring(werr), "\n")
  os.exit(1)
end
print(("finished: %s, %s, %s"):format(done.status, tostring(done.terminationReason), seconds(done)))
print("transcript:")
print(done.transcript)

print("recent calls:")
for c in client.calls:each{ limit = 5 } do
  local line = type(c.phoneNumber) == "table" and c.phoneNumber.sipPhoneNumber or "?"
  print(("  %-24s %-14s from %s, %s"):format(c.callId, c.status, line, seconds(c)))
end
client:close()
