-- Campaign: contacts from CSV -> a campaign -> watch it dial through the list until it completes.
-- Run against the sandbox: eval "$(bin/sigmamind-sandbox --daemon --speed 20)"; lua5.4 examples/campaign.lua
local sigmamind = require "sigmamind"

local client = sigmamind.new{}
local from = os.getenv("SIGMAMIND_FROM") or "+14157774444"
local agent = os.getenv("SIGMAMIND_AGENT") or "agent_abc123"

local contacts = [[
phoneNumber,customer_name,plan_type
+12137770001,Ada,Premium
+12137770002,"Grace, Admiral",Basic
+1234,Bad Number,Basic
+12135550101,Busy Bee,Premium
]]

local plan = sigmamind.campaign("Example follow-ups " .. os.time())
  :agent(agent)
  :caller(from)
  :csv(contacts)
  :concurrency(2)

local _, problems = plan:build()
for _, p in ipairs(problems or {}) do print("will be skipped: " .. p) end

local campaign, err = client.campaigns:create(plan)
if not campaign then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
print(("campaign %s is %s"):format(campaign.campaignId, campaign.campaignStatus))
for _, e in ipairs(campaign.errors or {}) do print("server reported: " .. e) end

local deadline = os.time() + 120
repeat
  local c, gerr = client.campaigns:get(campaign.campaignId)
  if not c then io.stderr:write(tostring(gerr), "\n"); os.exit(1) end
  local counts = {}
  for call in client.calls:each{ size = 100 } do
    if call.campaign and call.campaign.campaignId == campaign.campaignId then
      counts[call.status] = (counts[call.status] or 0) + 1
    end
  end
  local parts = {}
  for status, n in pairs(counts) do parts[#parts + 1] = status .. "=" .. n end
  table.sort(parts)
  print(("status %-10s calls: %s"):format(c.campaignStatus, table.concat(parts, " ")))
  if c.campaignStatus == "completed" then break end
  os.execute("sleep 1")
until os.time() > deadline
client:close()
