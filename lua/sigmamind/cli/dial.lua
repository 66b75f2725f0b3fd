-- sigmamind.cli.dial: `sigmamind dial CSV`, client:dial from a shell: resumable, one call per row.
local output = require "sigmamind.cli.output"
local context = require "sigmamind.cli.context"

local ipairs, tostring, string_format, table_concat = ipairs, tostring, string.format, table.concat

local _M = {}

function _M.add_to_parser(parser)
  local d = context.command(parser, "dial", "Place one call per valid row of a contacts CSV, --concurrency at a " ..
                            "time, never two for one row: a journal (CSV.journal unless --journal names another, " ..
                            "or --no-journal) records each intent on disk before its call, so running the same " ..
                            "dial again after an interruption, even kill -9, skips the rows already placed and " ..
                            "reports those that may have been placed 'uncertain' instead of dialing them again.")
  d:summary("Place one call per valid row of a contacts CSV, resumable.")
  d:argument("csv", "Contacts CSV file (a phoneNumber/phone/to column; other columns are variables).")
  d:option("--from", "The caller number (+E.164)."):count(1)
  d:option("--agent", "Agent id."):count(1)
  context.number_option(d, "--concurrency", "Calls in flight at once.", "8")
  d:option("--journal", "The journal file (default: the CSV's path with .journal appended).")
  d:flag("--no-journal", "Keep no journal: a second run dials every row again.")
  d:flag("--redial-uncertain", "Dial again the rows an earlier run may have placed (they may be called twice).")
  d:flag("--wait", "Follow each call to its final status.")
  context.number_option(d, "--wait-timeout", "Seconds to wait for each call with --wait.", "600")
  context.vars_option(d)
end

-- the report's rows, in file order, as the table (and --json) shows them; problems go to stderr
local function entries_of(ctx, report)
  local tty = ctx:is_tty("stderr")
  local entries = {}
  for n = 1, report.total do
    local r = report.rows[n]
    if r then
      local e = { row = n, to = r.phone, status = r.status, callId = r.callId, final = r.final,
                  reconciled = r.reconciled or nil,
                  error = r.err and tostring(r.err) or r.wait_err and tostring(r.wait_err) or nil }
      if r.status == "invalid" then
        for _, msg in ipairs(r.problems or {}) do ctx.stderr:write("skipped: ", msg, "\n") end
        e.error = table_concat(r.problems or {}, "; ")
      elseif (r.status == "failed" or r.status == "uncertain") and not tty then
        ctx.stderr:write("row ", n, ": ", r.status, ": ", tostring(e.error), "\n")
      end
      entries[#entries + 1] = e
    end
  end
  return entries
end

function _M.command(a, ctx)
  local client = ctx:client(a)
  ctx:need(not (a.journal and a.no_journal) or nil, "dial: --journal and --no-journal cannot both be given")
  ctx:need(a.concurrency and a.concurrency >= 1 and a.concurrency % 1 == 0 or nil,
           "--concurrency expects a whole number of at least 1, got '" .. tostring(a.concurrency) .. "'")
  ctx:seconds(a, "wait-timeout")
  local journal = not a.no_journal and (a.journal or a.csv .. ".journal") or nil
  if journal then ctx.interrupted_note = "; the same dial again goes on from the journal " .. journal end
  local p = ctx:progress("dial")
  local report, err = client:dial{
    csv_file = a.csv, from = a.from, agent = a.agent, variables = ctx:variables(a.var), concurrency = a.concurrency,
    journal = journal, wait = a.wait == true, wait_timeout = a.wait_timeout, redial_uncertain = a.redial_uncertain,
    on_progress = function(c)
      p.update(c.total - c.pending, c.total, string_format("placed %d, skipped %d, failed %d", c.placed, c.skipped,
                                                           c.failed + c.uncertain))
    end,
  }
  p.finish()
  if not report then ctx:fail(err) end
  local entries = entries_of(ctx, report)
  if ctx.json then
    ctx.stdout:write(output.json{ total = report.total, placed = report.placed, skipped = report.skipped,
                                  invalid = report.invalid, failed = report.failed, uncertain = report.uncertain,
                                  statuses = report.statuses, journal = report.journal, rows = entries }, "\n")
  else
    if #entries > 0 then
      local cols = { { "ROW", "row" }, { "TO", "to" }, { "RESULT", "status" }, { "CALL", "callId" } }
      if a.wait then cols[#cols + 1] = { "FINAL", "final" } end
      cols[#cols + 1] = { "ERROR", "error" }
      output.table(ctx.stdout, entries, cols)
    end
    ctx.stdout:write(string_format("placed %d, skipped %d, invalid %d, failed %d, uncertain %d (of %d rows)\n",
                                   report.placed, report.skipped, report.invalid, report.failed, report.uncertain,
                                   report.total))
    if journal then ctx.stderr:write("journal: ", journal, "\n") end
  end
  client:close()
  if report.failed + report.uncertain > 0 then ctx:exit(context.FAIL) end
end

return _M
