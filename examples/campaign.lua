-- Campaign: contacts from CSV -> a campaign -> watch each contact's progress until the campaign completes.
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

-- progress: each contact's latest call status, counted (the API has no per-contact endpoint)
local deadline = os.time() + 120
repeat
  local p, perr = client.campaigns:progress(campaign.campaignId)
  if not p then io.stderr:write(tostring(perr), "\n"); os.exit(1) end
  local parts = {}
  for status, n in pairs(p.counts) do
    if n > 0 then parts[#parts + 1] = status .. "=" .. n end
  end
  table.sort(parts)
  print(("status %-10s %3.0f%% done  %s"):format(p.campaign.campaignStatus, p.percent, table.concat(parts, " ")))
  if p.campaign.campaignStatus == "completed" then break end
  os.execute("sleep 1")
until os.time() > deadline
client:close()
