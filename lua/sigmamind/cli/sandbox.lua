-- sigmamind.cli.sandbox: `sigmamind sandbox ...` hands all its arguments to bin/sigmamind-sandbox.
local context = require "sigmamind.cli.context"

local ipairs, tostring, io_popen, os_execute, table_concat = ipairs, tostring, io.popen, os.execute, table.concat

local _M = {}

function _M.add_to_parser(parser)
  context.command(parser, "sandbox", "Run the local fake SigmaMind (bin/sigmamind-sandbox; every argument is " ..
                  "passed on).")
    :handle_options(false):argument("args"):args("*")
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- the launcher: next to bin/sigmamind, else on PATH
local function launcher(ctx) return ctx.bindir and ctx.bindir .. "/sigmamind-sandbox" or "sigmamind-sandbox" end

-- the launcher's own usage (which it prints as a refusal, exit 2), under ours, as an answer: exit 0
local function help(ctx)
  local p = io_popen(shell_quote(launcher(ctx)) .. " --help 2>&1")
  local usage = p:read("a")
  local _, _, code = p:close()
  if code == 126 or code == 127 then
    ctx:die(context.FAIL, "cannot run " .. launcher(ctx) .. ": " .. usage:gsub("\n$", ""))
  end
  ctx.stdout:write("Usage: sigmamind sandbox [<args>] ...\n\n",
                   "Runs the local fake SigmaMind: every argument goes to ", launcher(ctx), ", whose usage is:\n\n",
                   usage)
  return context.OK
end

-- run the launcher with args; its exit code
function _M.pass(args, ctx)
  for _, a in ipairs(args) do if a == "-h" or a == "--help" then return help(ctx) end end
  local cmd = { shell_quote(launcher(ctx)) }
  for i = 1, #args do cmd[#cmd + 1] = shell_quote(args[i]) end
  local ok, how, code = os_execute(table_concat(cmd, " "))
  if ok then return 0 end
  if how == "signal" then return 128 + code end      -- as a shell says it: Ctrl-C is 130
  return how == "exit" and code or 1
end

function _M.command(a, ctx) ctx:exit(_M.pass(a.args, ctx)) end

return _M
