-- sigmamind.cli.calls: `sigmamind calls create|get|list|wait|delete|stats`.
local sigmamind = require "sigmamind"
local observe = require "sigmamind.observe"
local output = require "sigmamind.cli.output"
local context = require "sigmamind.cli.context"

local ipairs, type, tonumber, tostring, io_open, os_time = ipairs, type, tonumber, tostring, io.open, os.time

local _M = {}

local COLUMNS = { { "CALL", "callId" }, { "STATUS", "status" }, { "FROM", "phoneNumber.sipPhoneNumber" },
                  { "AGENT", "agent.agentId" }, { "DURATION", "duration" }, { "REASON", "terminationReason" },
                  { "CREATED", "createdAt" } }
local FIRST = { "callId", "status", "callType", "terminationReason", "duration", "startTime", "endTime", "createdAt" }

-- the CSV columns of `calls list --format csv`: flat values a spreadsheet can hold
local CSV = {
  { "callId", "callId" }, { "status", "status" }, { "callType", "callType" },
  { "fromPhoneNumber", "phoneNumber.sipPhoneNumber" }, { "agentId", "agent.agentId" },
  { "campaignId", "campaign.campaignId" }, { "duration", "duration" }, { "terminationReason", "terminationReason" },
  { "startTime", "startTime" }, { "endTime", "endTime" }, { "createdAt", "createdAt" },
  { "recordingUrl", "recordingUrl" },
}

function _M.add_to_parser(parser)
  local calls = context.command(parser, "calls", "Place, inspect and list calls."):command_target("sub")
  local c = context.command(calls, "create", "Place one call.")
  c:option("--from", "The caller: one of your numbers (+E.164)."):args(1):count(1)
  c:option("--to", "The destination (+E.164)."):args(1):count(1)
  c:option("--agent", "Agent id (default: the number's outbound agent).")
  context.vars_option(c)
  c:flag("--wait", "Wait for the call to reach a final status.")
  context.number_option(c, "--wait-timeout", "Seconds to wait with --wait.", "600")
  context.command(calls, "get", "Show one call."):argument("id", "Call id.")
  local l = context.command(calls, "list", "List calls, newest first as the API returns them.")
  l:option("--status", "Only calls with this status (scheduled, in_progress, ended, not_connected, error).")
  context.number_option(l, "--size", "Page size (1 to 100).", "100")
  context.number_option(l, "--limit", "At most this many calls (table and --json; 0: all).", "100")
  l:flag("--all", "Every call (no limit).")
  l:option("--format", "table, json or csv (csv streams every page).", "table"):choices{ "table", "json", "csv" }
  local w = context.command(calls, "wait", "Wait for a call to reach a final status and show it.")
  w:argument("id", "Call id.")
  context.number_option(w, "--wait-timeout", "Seconds.", "600")
  context.command(calls, "delete", "Delete a call."):argument("id", "Call id.")
  local st = context.command(calls, "stats", "Read the calls once and print counts by status and outcome, the " ..
                             "completion rate (ended / finished), durations (mean, p50, p95, max), calls per hour, " ..
                             "and bar charts. Times are ISO-8601 (2024-04-20T10:00:00Z, +hh:mm offsets) or unix " ..
                             "seconds.")
  st:summary("Call analytics: counts, completion rate, durations, with charts.")
  st:option("--since", "Only calls created at or after this time (reading stops at the first older call).")
  st:option("--before", "Only calls created before this time.")
  st:option("--campaign", "Only this campaign's calls.")
  st:option("--agent", "Only this agent's calls.")
  st:option("--status", "Only calls with this status.")
  context.number_option(st, "--limit", "At most this many calls (0: all).", "0")
  st:option("--html", "Also write a self-contained HTML report (inline SVG charts) to this file."):argname("<file>")
end

-- every page as CSV, written as it arrives: memory stays one page whatever the number of calls
local function list_csv(ctx, client, query)
  local names, paths = {}, {}
  for i, col in ipairs(CSV) do names[i], paths[i] = col[1], col[2] end
  local header = sigmamind.csv.encode({}, names)
  local p = ctx:progress("calls")
  local count, pages = 0, 0
  local out = ctx.stdout
  ctx:guard(function()
    for page in client.calls:pages(query) do
      -- the header once the first page came: a listing failing before then prints nothing on stdout
      if pages == 0 then out:write(header) end
      local rows = {}
      for i, rec in ipairs(page.data) do
        local row = {}
        for j, path in ipairs(paths) do
          local v = output.get_path(rec, path)
          if not output.is_null(v) and type(v) ~= "table" then row[names[j]] = v end
        end
        rows[i] = row
      end
      if #rows > 0 then out:write(sigmamind.csv.encode(rows, names):sub(#header + 1)) end
      if out.flush then out:flush() end
      count, pages = count + #rows, pages + 1
      local total = page.totalCounts or page.totalCount
      -- a one-page listing needs no progress report
      if pages > 1 or (type(total) == "number" and total > count) then
        p.update(count, type(total) == "number" and total or nil, "page " .. pages)
      end
    end
  end, function() if pages > 1 then p.finish() end end)
end

-- a --size the API does not serve (0, over 100) is refused by the core's endpoint table, before sending
local function list(ctx, client, a)
  local query = { status = a.status, size = a.size }
  if a.format == "csv" then return list_csv(ctx, client, query) end
  ctx:listing(client.calls, query, ctx:limit(a), COLUMNS, "calls", a.format == "json")
end

-- the table and bars on stdout (or --json), and the HTML report with --html
local function stats(ctx, client, a)
  local q = { status = a.status, campaign = a.campaign, agent = a.agent,
              limit = a.limit and a.limit > 0 and a.limit or nil }
  for _, k in ipairs{ "since", "before" } do
    local v = a[k]
    if v ~= nil then
      if v:match("^%d+%.?%d*$") then v = tonumber(v) end
      ctx:need(observe.parse_time(v) and v or nil,
               "--" .. k .. " expects an ISO-8601 time (2024-04-20T10:00:00Z) or unix seconds, got '" .. a[k] .. "'")
      q[k] = v
    end
  end
  local s = ctx:check(client.calls:stats(q))
  if a.html then
    local f, err = io_open(a.html, "wb")
    if not f then ctx:die(context.FAIL, "cannot write " .. tostring(err)) end
    f:write(observe.html(s, { generated = "sigmamind calls stats, " .. observe.format_time(os_time()) ..
                                          ", " .. (client.base_url or "") }))
    f:close()
  end
  if ctx.json then ctx.stdout:write(output.json(s), "\n")
  elseif ctx:is_tty("stdout") then ctx.stdout:write(observe.text(s))
  else ctx.stdout:write(output.ascii(observe.text(s))) end
  if a.html and not ctx.json then ctx.stderr:write("wrote ", a.html, "\n") end
end

function _M.command(a, ctx)
  local client = ctx:client(a)
  local s = a.sub
  if s == "create" then
    if a.wait then ctx:seconds(a, "wait-timeout") end
    local call = ctx:check(client.calls:create{ fromPhoneNumber = a.from, toPhoneNumber = a.to, agentId = a.agent,
                                                dynamicVariables = ctx:variables(a.var) })
    if a.wait then call = ctx:check(client.calls:wait(call.callId, { timeout = a.wait_timeout })) end
    ctx:show(call, FIRST)
  elseif s == "get" then ctx:show(ctx:check(client.calls:get(a.id)), FIRST)
  elseif s == "list" then list(ctx, client, a)
  elseif s == "wait" then
    ctx:show(ctx:check(client.calls:wait(a.id, { timeout = ctx:seconds(a, "wait-timeout") })), FIRST)
  elseif s == "delete" then ctx:check(client.calls:delete(a.id)); ctx:done("call", a.id)
  elseif s == "stats" then stats(ctx, client, a)
  end
  client:close()
end

return _M
