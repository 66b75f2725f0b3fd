-- sigmamind.cli.sandbox: `sigmamind sandbox ...` hands every argument to bin/sigmamind-sandbox untouched.
local context = require "sigmamind.cli.context"

local os_execute, tostring, table_concat = os.execute, tostring, table.concat

local _M = {}

function _M.add_to_parser(parser)
  context.command(parser, "sandbox", "Run the local fake SigmaMind (bin/sigmamind-sandbox; every argument is " ..
                  "passed on).")
    :handle_options(false):argument("args"):args("*")
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- run the launcher (next to bin/sigmamind, else on PATH) with args; its exit code
function _M.pass(args, ctx)
  local cmd = { shell_quote(ctx.bindir and ctx.bindir .. "/sigmamind-sandbox" or "sigmamind-sandbox") }
  for i = 1, #args do cmd[#cmd + 1] = shell_quote(args[i]) end
  local ok, how, code = os_execute(table_concat(cmd, " "))
  if ok then return 0 end
  return how == "exit" and code or 1
end

function _M.command(a, ctx) ctx:exit(_M.pass(a.args, ctx)) end

return _M
