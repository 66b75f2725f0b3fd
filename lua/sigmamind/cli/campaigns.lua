-- sigmamind.cli.campaigns: `sigmamind campaigns create|get|list|pause|resume|delete|watch`.
local sigmamind = require "sigmamind"
local core = require "sigmamind.core"
local observe = require "sigmamind.observe"
local output = require "sigmamind.cli.output"
local context = require "sigmamind.cli.context"

local ipairs, next, type, tostring, string_format, table_concat =
      ipairs, next, type, tostring, string.format, table.concat

local _M = {}

local COLUMNS = { { "CAMPAIGN", "campaignId" }, { "NAME", "campaignName" }, { "STATUS", "campaignStatus" },
                  { "CONCURRENCY", "concurrentCalls" }, { "FROM", "phoneNumber.sipPhoneNumber" },
                  { "ROW PROBLEMS", function(c) return type(c.errors) == "table" and #c.errors or 0 end } }
local FIRST = { "campaignId", "campaignName", "campaignStatus", "concurrentCalls", "errors" }

-- the options for the fields create and update share; create needs the first three (then a --csv)
local function field_options(cmd, create)
  for _, o in ipairs{ { "--name", "Campaign name (unique)." }, { "--agent", "Agent id." },
                      { "--from", "The caller number (+E.164)." } } do
    local option = cmd:option(o[1], o[2])
    if create then option:count(1) end
  end
  if create then
    cmd:option("--csv", "Contacts CSV file (a phoneNumber/phone/to column; other columns are variables)."):count(1)
  end
  context.number_option(cmd, "--concurrency", "Calls at a time.")
  context.vars_option(cmd)
  cmd:option("--date", "Schedule: YYYY-MM-DD (with --time and --timezone" ..
                       (create and ")." or "; all three schedule a campaign)."))
  cmd:option("--time", "Schedule: HH:MM.")
  cmd:option("--timezone", "Schedule: IANA time zone, e.g. America/New_York.")
end

function _M.add_to_parser(parser)
  local campaigns = context.command(parser, "campaigns", "Create and follow campaigns."):command_target("sub")
  local c = context.command(campaigns, "create", "Create a campaign from a contacts CSV.")
  field_options(c, true)
  c:flag("--watch", "Follow it to completion (as campaigns watch).")
  c:option("--upload", "How the campaign goes: json (file in base64, the default) or multipart (a form " ..
                       "with a file part); JSON refused with 415 is sent again as multipart.")
    :choices{ "json", "multipart" }
  context.command(campaigns, "get", "Show one campaign."):argument("id")
  local l = context.command(campaigns, "list", "List campaigns.")
  l:option("--status", "live, scheduled, paused or completed.")
  context.limit_options(l, "campaigns")
  local u = context.command(campaigns, "update", "Change a campaign (its contacts cannot be changed).")
  u:argument("id")
  field_options(u, false)
  u:flag("--unschedule", "Drop the schedule: a scheduled campaign starts now.")
  u:option("--status", "live or paused (as resume and pause)."):choices{ "live", "paused" }
  context.command(campaigns, "pause", "Pause a live campaign."):argument("id")
  context.command(campaigns, "resume", "Resume a paused campaign."):argument("id")
  context.command(campaigns, "delete", "Delete a campaign."):argument("id")
  local w = context.command(campaigns, "watch", "Follow a campaign until it completes, with a progress bar and " ..
                            "outcome counts on a terminal (campaigns:progress: each contact's latest call, found by " ..
                            "listing calls, as the API has no per-campaign filter).")
  w:summary("Follow a campaign until it completes.")
  w:argument("id")
  context.number_option(w, "--contacts", "How many contacts it has (for a percentage when it was created elsewhere).")
  context.number_option(w, "--interval", "Seconds between polls.", "1")
  context.number_option(w, "--wait-timeout", "Give up after this many seconds.", "86400")
end

local function counts_line(c)
  local parts = {}
  for _, k in ipairs{ "pending", "scheduled", "in_progress", "ended", "not_connected", "error" } do
    if (c[k] or 0) > 0 then parts[#parts + 1] = k .. " " .. c[k] end
  end
  return table_concat(parts, ", ")
end

local SEGMENTS = { { "ended", "\226\150\136" }, { "not_connected", "\226\150\147" },
                   { "error", "\226\150\146" }, { "in_progress", "\226\150\145" } }   -- █ ▓ ▒ ░

-- follow a campaign with campaigns:progress, each contact's latest call status counted, until it
-- completes or `timeout` seconds pass; `contacts`: how many it has, when known
local function watch(ctx, client, id, contacts, interval, timeout)
  local p = ctx:progress("campaign " .. id)
  local start = core.now()
  local pr
  while true do
    local err
    pr, err = client.campaigns:progress(id)
    if not pr then p.finish() ctx:fail(err) end
    local camp, counts = pr.campaign, pr.counts
    local complete = camp.campaignStatus == "completed" and counts.scheduled + counts.in_progress == 0
    -- Contacts not dialed yet are known only when this process sent the CSV (or from --contacts);
    -- for a campaign created elsewhere the total is that of the calls dialed so far, and says so.
    local total, note = contacts, camp.campaignStatus .. "  " .. counts_line(counts)
    if not total then
      if pr.source == "csv" or complete then total = pr.total
      elseif pr.total > 0 then total, note = pr.total, "dialed so far  " .. note end
    end
    local segments = {}
    for i, seg in ipairs(SEGMENTS) do segments[i] = { counts[seg[1]] or 0, seg[2] } end
    p.update(pr.done, total, note, segments)
    if complete then break end
    if core.now() - start > timeout then
      p.finish()
      ctx:die(context.FAIL, string_format("campaign %s not completed after %g s (status %s)", id, timeout,
                                          tostring(camp.campaignStatus)))
    end
    core.sleep(interval)
  end
  p.finish()
  local summary = { campaignId = id, campaignStatus = pr.campaign.campaignStatus, calls = pr.done,
                    counts = pr.counts, reasons = pr.reasons, contacts = pr.total, invalid = pr.invalid,
                    percent = pr.percent }
  if ctx.json then ctx.stdout:write(output.json(summary), "\n")
  else
    local reasons = {}
    for _, it in ipairs(observe.ranked(pr.reasons)) do reasons[#reasons + 1] = it[1] .. " " .. it[2] end
    ctx.stdout:write(string_format("campaign %s completed: %d calls (%s)\n", id, pr.done, counts_line(pr.counts)))
    if #reasons > 0 then ctx.stdout:write("outcomes: ", table_concat(reasons, ", "), "\n") end
  end
end

local function create(ctx, client, a)
  local plan = sigmamind.campaign(a.name):agent(a.agent):caller(a.from):csv_file(a.csv)
  if a.concurrency then plan:concurrency(a.concurrency) end
  local vars = ctx:variables(a.var)
  if vars then plan:variables(vars) end
  if a.date or a.time or a.timezone then plan:schedule{ date = a.date, time = a.time, timezone = a.timezone } end
  local report = plan:report()
  -- a fatal problem is the error create returns below; the others are rows the server will skip
  for _, msg in ipairs(report.problems or {}) do
    if msg ~= report.fatal then ctx.stderr:write("skipped: ", msg, "\n") end
  end
  local camp = ctx:check(client.campaigns:create(plan))
  if a.watch then
    if not ctx.json then ctx.stderr:write("created ", camp.campaignId, "\n") end
    return watch(ctx, client, camp.campaignId, report.contacts, 1, 86400)
  end
  ctx:show(camp, FIRST)
end

local function update(ctx, cs, a)
  local p = { campaignName = a.name, agentId = a.agent, sipPhoneNumber = a.from, concurrentCalls = a.concurrency,
              dynamicVariables = ctx:variables(a.var), scheduledDate = a.date, scheduledTime = a.time,
              scheduledTimezone = a.timezone, campaignStatus = a.status }
  ctx:need(not (a.unschedule and (a.date or a.time or a.timezone)) or nil,
           "campaigns update: --unschedule cannot be given with --date, --time or --timezone")
  if a.unschedule then p.isScheduled = false
  elseif a.date and a.time and a.timezone then p.isScheduled = true end
  ctx:need(next(p), "campaigns update needs at least one of --name, --agent, --from, --concurrency, --var, " ..
                    "--date, --time, --timezone, --unschedule, --status")
  return ctx:check(cs:update(a.id, p))
end

function _M.command(a, ctx)
  local client = ctx:client(a)
  local s, cs = a.sub, client.campaigns
  if s == "create" then create(ctx, client, a)
  elseif s == "get" then ctx:show(ctx:check(cs:get(a.id)), FIRST)
  elseif s == "list" then
    ctx:listing(cs, { status = a.status }, ctx:limit(a), COLUMNS, "campaigns")
  elseif s == "update" then ctx:show(update(ctx, cs, a), FIRST)
  elseif s == "pause" then ctx:show(ctx:check(cs:pause(a.id)), FIRST)
  elseif s == "resume" then ctx:show(ctx:check(cs:resume(a.id)), FIRST)
  elseif s == "delete" then ctx:check(cs:delete(a.id)); ctx:done("campaign", a.id)
  elseif s == "watch" then
    ctx:seconds(a, "interval"); ctx:seconds(a, "wait-timeout")
    watch(ctx, client, a.id, a.contacts, a.interval or 1, a.wait_timeout)
  end
  client:close()
end

return _M
