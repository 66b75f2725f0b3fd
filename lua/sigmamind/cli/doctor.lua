-- sigmamind.cli.doctor: `sigmamind doctor`, a read-only check of the server and the account (key,
-- TLS, clock, page and id shapes, headers, a number and an agent to call with), one line a check.
local context = require "sigmamind.cli.context"
local doctor = require "sigmamind.doctor"
local output = require "sigmamind.cli.output"

local ipairs, pcall, tostring, error = ipairs, pcall, tostring, error

local _M = {}

function _M.add_to_parser(parser)
  local cmd = context.command(parser, "doctor", "Check the key, TLS, clock and answers of the server (read only).")
  cmd:option("--place-test-call", "Also place one real call to this E.164 number (the only thing doctor " ..
             "creates, and only when asked)."):argname("<+E164>")
end

function _M.command(a, ctx)
  -- the key and URL as Context:client reads them, for the core doctor talks to directly
  local key = a.api_key
  if a.api_key_stdin then key = ctx:stdin_secret("--api-key-stdin") end
  if key == nil then key = ctx.getenv("SIGMAMIND_API_KEY") or "" end
  if key == "" then
    ctx:die(context.USAGE, "no API key: set SIGMAMIND_API_KEY or pass --api-key (or --api-key-stdin)")
  end
  local base_url = a.base_url
  if base_url == nil and ctx.getenv("SIGMAMIND_BASE_URL") ~= "" then base_url = ctx.getenv("SIGMAMIND_BASE_URL") end
  local target = a.place_test_call
  if target ~= nil and not doctor.is_e164(target) then
    ctx:usage("--place-test-call expects an E.164 number (+ and 7 to 15 digits), got '" .. target .. "'")
  end
  local ok, report = pcall(doctor.run, { api_key = key, base_url = base_url, timeout = a.timeout,
                                         place_test_call = target })
  -- doctor.run raises only on options it refuses (a base URL that is not one): the user's input
  if not ok and (context.is_interrupt(report) or context.is_exit(report)) then error(report, 0) end
  if not ok then ctx:die(context.USAGE, (tostring(report):gsub("^sigmamind%.doctor%.run: ", ""))) end
  if ctx.json then
    ctx.stdout:write(output.json(report), "\n")
  else
    local width = 0
    for _, c in ipairs(report.checks) do if #c.name > width then width = #c.name end end
    for _, c in ipairs(report.checks) do
      ctx.stdout:write(("%-4s  %-" .. width .. "s  %s\n"):format(c.status, c.name, tostring(c.detail)))
    end
  end
  ctx:exit(report.ok and context.OK or context.FAIL)
end

return _M
