--- The `sigmamind` command as a function: `run(argv, opts)` parses argv, runs one command and
-- returns its exit code; bin/sigmamind is `run(arg)` and `os.exit`. Each command is a module with
-- `add_to_parser(parser)` and `command(args, ctx)`, as LuaRocks' `cmd/*.lua` are.
-- @module sigmamind.cli
local context = require "sigmamind.cli.context"

local type, ipairs, tostring, error, require, pcall, xpcall, debug_traceback =
      type, ipairs, tostring, error, require, pcall, xpcall, debug.traceback

local _M = {}

-- in the order --help lists them
local COMMANDS = { "calls", "campaigns", "numbers", "webhooks", "agents", "dial", "doctor", "sandbox", "completion" }

local function build_parser(argparse)
  local parser = argparse("sigmamind", "Place and track SigmaMind voice-agent calls from a shell.")
    :epilog("Environment: SIGMAMIND_API_KEY, SIGMAMIND_BASE_URL (the flags override them), SIGMAMIND_LOG.\n" ..
            "Try it locally: eval \"$(sigmamind sandbox --daemon)\" starts a fake SigmaMind and exports both.\n" ..
            "Secrets: a command line is visible to every user of this machine (ps, /proc/PID/cmdline), your\n" ..
            "environment only to you: pass the API key in $SIGMAMIND_API_KEY or with --api-key-stdin, the trunk\n" ..
            "password of numbers import in $SIGMAMIND_TRUNK_PASSWORD or with --password-stdin, and a webhook\n" ..
            "secret in $SIGMAMIND_WEBHOOK_SECRET, rather than --api-key, --password or --secret.\n" ..
            "Exit codes: 0 ok, 1 API or network failure (or an invalid webhook signature), 2 usage, 130 Ctrl-C.")
  context.own_help(parser)
  parser:command_target("command")
  parser:mutex(
    parser:option("--api-key", "API key (default: $SIGMAMIND_API_KEY). Visible to other users in ps and " ..
                  "/proc/PID/cmdline: prefer the variable or --api-key-stdin."),
    parser:flag("--api-key-stdin", "Read the API key from the first line of stdin (not with --password-stdin, " ..
                "nor with webhooks verify reading the body from stdin).")
  )
  parser:option("--base-url", "API base URL (default: $SIGMAMIND_BASE_URL or https://api.sigmamind.ai).")
  context.number_option(parser, "--timeout", "Seconds per HTTP attempt.")
  parser:flag("--json", "Print one JSON document on stdout instead of a table.")
  parser:flag("--verbose", "Log each request, response, retry and give-up on stderr (as SIGMAMIND_LOG=debug).")
  parser:flag("--version", "Print the version of lua-sigmamind and exit."):action(function()
    context.exit(context.OK, require("sigmamind")._VERSION .. "\n")
  end)
  local modules = {}
  for _, name in ipairs(COMMANDS) do
    modules[name] = require("sigmamind.cli." .. name)
    modules[name].add_to_parser(parser)
  end
  return parser, modules
end

-- parse argv; a parse error is a usage error (the usage, the message, exit 2)
local function parse(ctx, parser, argv)
  parser.error = function(command, msg)          -- command: the (sub)command argparse was reading
    ctx.stderr:write(command:get_usage(), "\n\nError: ", msg, "\n")
    -- --json is known only once parsed: any --json in argv asks for the JSON error too
    for _, v in ipairs(argv) do if v == "--json" then ctx.json = true end end
    ctx:error_json{ kind = "usage", message = msg }
    context.exit(context.USAGE)
  end
  return parser:parse(argv)
end

local function main(ctx, argv)
  -- the sandbox launcher takes its own arguments, and needs nothing of the client
  if argv[1] == "sandbox" then
    local rest = {}
    for i = 2, #argv do rest[#rest + 1] = argv[i] end
    context.exit(require("sigmamind.cli.sandbox").pass(rest, ctx))
  end
  -- only the command line needs argparse, so the rock does not depend on it: say how to get it
  local found, argparse = pcall(require, "argparse")
  if not found then
    ctx.stderr:write("sigmamind: the command line needs the Lua module argparse: apt-get install lua-argparse, ",
                     "or luarocks install argparse\n")
    context.exit(context.FAIL)
  end
  local parser, modules = build_parser(argparse)
  ctx.parser = parser
  local args = parse(ctx, parser, argv)
  ctx.json = args.json == true
  ctx.usage_of = context.subcommand(parser, args.command, args.sub)
  -- stdin has one first line: only one secret may come from it
  if args.api_key_stdin and args.password_stdin then
    ctx:usage("--api-key-stdin and --password-stdin cannot both read stdin: pass the API key in " ..
              "$SIGMAMIND_API_KEY instead")
  end
  modules[args.command].command(args, ctx)
  return context.OK
end

--- Run the CLI in this process.
-- @tparam {string,...} argv the arguments, without the program name
-- @tparam[opt] table opts `stdout`, `stderr` (anything with `:write`), `stdin` (a file), `env` (a
-- table, or a function of a name; default `os.getenv`), `tty` (`{ stdout = bool, stderr = bool }`;
-- default: asked of the process's own streams, false for others), `bindir` (where
-- `sigmamind-sandbox` is)
-- @treturn integer the exit code: 0 ok, 1 API or network failure, 2 usage, 130 interrupted (SIGINT)
-- @raise a bug in a command, with its traceback
function _M.run(argv, opts)
  if type(argv) ~= "table" then error("sigmamind.cli.run: expected a table of arguments, got " .. type(argv), 2) end
  local ctx = context.new(opts)
  local ok, res = xpcall(main, function(err)
    if context.is_exit(err) or context.is_interrupt(err) then return err end
    return debug_traceback(tostring(err), 2)
  end, ctx, argv)
  if ok then return res end
  if context.is_exit(res) then
    if res.out then ctx.stdout:write(res.out) end
    return res.code
  end
  if context.is_interrupt(res) then
    -- Ctrl-C: one line, and the shell's code for SIGINT (128 + 2), never a traceback
    if ctx.bar and ctx.bar.open then ctx.stderr:write("\n") end
    ctx.stderr:write("sigmamind: interrupted", ctx.interrupted_note or "", "\n")
    ctx:error_json{ kind = "interrupted", message = "interrupted" }
    return context.INTERRUPTED
  end
  error(res, 0)
end

return _M
