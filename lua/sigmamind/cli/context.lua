-- sigmamind.cli.context: what one run of the CLI gives its commands: its streams and environment,
-- the exits (raised, so that run() returns a code rather than ending the process), usage errors,
-- the client, and the small readers of options every command shares.
local sigmamind = require "sigmamind"
local output = require "sigmamind.cli.output"
local log = require "sigmamind.log"

local type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable, getmetatable =
      type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable, getmetatable
local io_open, os_getenv, os_execute = io.open, os.getenv, os.execute

local _M = { OK = 0, FAIL = 1, USAGE = 2, INTERRUPTED = 130 }

-- an exit on its way up to run(): its code, and text for stdout (help)
local Exit = { __name = "sigmamind.cli.exit" }
function _M.exit(code, out) error(setmetatable({ code = code, out = out }, Exit), 0) end
function _M.is_exit(v) return getmetatable(v) == Exit end

-- the error lua.c raises in running code on SIGINT (Ctrl-C): "interrupted!", maybe after a position
function _M.is_interrupt(v) return type(v) == "string" and v:find("interrupted!$") ~= nil end

-- errors that are not a command's failure, to pass on to run() untouched
local function passing(err) return _M.is_exit(err) or _M.is_interrupt(err) end

-- each parser's subcommands by name, for the usage of the command a usage error is about
local children = setmetatable({}, { __mode = "k" })

-- parent:command(name, description), with argparse's -h/--help answering through the run's exit:
-- argparse's own prints and calls os.exit, which would end a process that runs the CLI in-process
function _M.command(parent, name, description)
  local cmd = parent:command(name, description)
  _M.own_help(cmd)
  children[parent] = children[parent] or {}
  children[parent][name] = cmd
  return cmd
end

-- the deepest of parser's subcommands named by the path (e.g. "calls", "list")
function _M.subcommand(parser, ...)
  for _, name in ipairs{ ... } do
    local cmd = children[parser] and children[parser][name]
    if not cmd then break end
    parser = cmd
  end
  return parser
end

function _M.own_help(parser)
  parser:add_help{ action = function() _M.exit(_M.OK, parser:get_help() .. "\n") end }
  return parser
end

-- cmd:option(name, description, default) read as a number; a refusal names the flag, which
-- argparse's own ("malformed argument 'abc'") does not
function _M.number_option(cmd, name, description, default)
  return cmd:option(name, description, default):convert(function(s)
    local n = tonumber(s)
    if n == nil then return nil, name .. ": malformed argument '" .. s .. "' (expected a number)" end
    return n
  end)
end

-- the repeatable --var NAME=VALUE of commands taking dynamic variables (read by Context:variables)
function _M.vars_option(cmd)
  cmd:option("--var", "A dynamic variable NAME=VALUE (repeatable)."):count("*")
end

local Context = {}
Context.__index = Context

local OPTIONS = { stdout = true, stderr = true, stdin = true, env = true, tty = true, bindir = true }

-- opts: as sigmamind.cli.run documents them
function _M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("sigmamind.cli.run: expected a table of options, got " .. type(opts), 3) end
  for k in pairs(opts) do
    if not OPTIONS[k] then error("sigmamind.cli.run: unknown option '" .. tostring(k) .. "'", 3) end
  end
  local env, getenv = opts.env, os_getenv
  if type(env) == "table" then getenv = function(name) return env[name] end
  elseif type(env) == "function" then getenv = env
  elseif env ~= nil then error("sigmamind.cli.run: env: expected a table or a function, got " .. type(env), 3) end
  return setmetatable({
    stdout = opts.stdout or io.stdout, stderr = opts.stderr or io.stderr, stdin = opts.stdin or io.stdin,
    getenv = getenv, bindir = opts.bindir, ttys = opts.tty or {}, json = false,
  }, Context)
end

-- whether "stdout" or "stderr" is a terminal
function Context:is_tty(which)
  local v = self.ttys[which]
  if v == nil then
    local fd = ({ stdout = 1, stderr = 2 })[which]
    v = self[which] == io[which] and os_execute("test -t " .. fd) == true
    self.ttys[which] = v
  end
  return v
end

function Context.exit(_, code) _M.exit(code) end

-- With --json an error is also one JSON document, the last line of stderr, after the line for
-- people: {"error":{"kind":...,"message":...}}, plus an error object's status, field, method, ...
function Context:error_json(fields)
  if self.json then self.stderr:write(output.json{ error = fields }, "\n") end
end

local ERROR_FIELDS = { "kind", "message", "status", "field", "method", "path", "request_id", "attempts", "retryable",
                       "sent", "reason" }

-- the fields of an error worth a machine's reading (its body and the like are left out)
function _M.error_fields(err)
  local fields = {}
  if type(err) == "table" then
    for _, k in ipairs(ERROR_FIELDS) do
      local v = err[k]
      if type(v) ~= "table" and type(v) ~= "function" and type(v) ~= "userdata" then fields[k] = v end
    end
  end
  if fields.kind == nil then
    local mt = getmetatable(err)
    fields.kind = type(mt) == "table" and mt.__name == "sigmamind.webhook.failure" and "webhook" or "error"
  end
  if fields.message == nil then fields.message = tostring(err) end
  return fields
end

-- exit with msg on stderr; fields: the JSON error's (default: kind "usage" for 2, else "error")
function Context:die(code, msg, fields)
  msg = tostring(msg):gsub("^sigmamind: ", "")
  self.stderr:write("sigmamind: ", msg, "\n")
  self:error_json(fields or { kind = code == _M.USAGE and "usage" or "error", message = msg })
  _M.exit(code)
end

-- The exit code for a failure, the one mapping every command uses: 2 when the input was refused
-- before anything was sent (an error of kind `invalid`, or a webhook check given only empty
-- secrets), 1 for anything else (API, network, bad signature, a raised non-error value)
function _M.exit_code(err)
  if type(err) ~= "table" then return _M.FAIL end
  if sigmamind.is_error(err) then return err.kind == "invalid" and _M.USAGE or _M.FAIL end
  local mt = getmetatable(err)
  if type(mt) == "table" and mt.__name == "sigmamind.webhook.failure" then
    return err.reason == "no_secret" and _M.USAGE or _M.FAIL
  end
  return _M.FAIL
end

-- exit with the error, with its code from exit_code
function Context:fail(err)
  if passing(err) then error(err, 0) end
  self:die(_M.exit_code(err), tostring(err), _M.error_fields(err))
end

-- v, or exit with the error
function Context:check(v, err)
  if v == nil then self:fail(err) end
  return v
end

-- run fn (a loop over an `each` or `pages` iterator, which raise the error object); on an error,
-- `cleanup` (optional) runs and the error exits as check's would
function Context:guard(fn, cleanup)
  local ok, err = pcall(fn)
  if cleanup then cleanup() end
  if not ok then self:fail(err) end
end

-- a usage error: the usage, the message, exit 2
function Context:usage(what)
  self.stderr:write((self.usage_of or self.parser):get_usage(), "\n\nError: ", what, "\n")
  self:error_json{ kind = "usage", message = what }
  _M.exit(_M.USAGE)
end

-- v, or a usage error saying what was wrong
function Context:need(v, what)
  if v == nil then self:usage(what) end
  return v
end

-- the option --NAME of args (a number of seconds, or nil) when it is >= 0; otherwise a usage error,
-- before anything is sent
function Context:seconds(args, name)
  local v = args[(name:gsub("-", "_"))]
  if v ~= nil then self:need(v >= 0 and v or nil, "--" .. name .. " expects seconds >= 0, got " .. tostring(v)) end
  return v
end

-- the --var NAME=VALUE list as a table (nil when empty)
function Context:variables(list)
  local vars
  for _, kv in ipairs(list or {}) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    self:need(k, "--var expects NAME=VALUE, got '" .. kv .. "'")
    vars = vars or {}
    vars[k] = v
  end
  return vars
end

-- A secret given on stdin rather than in argv, which every user can read in ps and /proc: its first
-- line, without the line end. Stdin has one first line, so only one flag may read it per run.
function Context:stdin_secret(flag)
  local line = self.stdin:read("L")
  if line then line = line:gsub("\r?\n$", "") end
  self:need(line ~= nil and line ~= "" and line or nil, flag .. " expects the secret on the first line of stdin, got " ..
                                                       (line == nil and "nothing" or "an empty line"))
  return line
end

-- the whole of a file, or of stdin for "-"
function Context:read_file(path)
  local f, err
  if path == "-" then f = self.stdin else f, err = io_open(path, "rb") end
  if not f then self:die(_M.USAGE, "cannot read " .. tostring(err)) end
  local text = f:read("a")
  if f ~= self.stdin then f:close() end
  return text
end

-- the client the global flags and the environment describe
function Context:client(args)
  local key = args.api_key
  if args.api_key_stdin then key = self:stdin_secret("--api-key-stdin") end
  -- the run's environment, not the process's: an in-process run may be given another
  if key == nil then key = self.getenv("SIGMAMIND_API_KEY") or "" end
  local base_url = args.base_url
  if base_url == nil and self.getenv("SIGMAMIND_BASE_URL") ~= "" then base_url = self.getenv("SIGMAMIND_BASE_URL") end
  -- the log: --verbose, else the run's SIGMAMIND_LOG; where this run's messages go
  local level = args.verbose and "debug" or log.env_level(self.getenv, self.stderr) or false
  local ok, client = pcall(sigmamind.new, { api_key = key, base_url = base_url, timeout = args.timeout,
                                            campaign_upload = args.upload, log = level,
                                            log_file = self.stderr })
  if not ok and passing(client) then error(client, 0) end
  if not ok then self:die(_M.USAGE, tostring(client):gsub("sigmamind.new: ", "") ..
                          (tostring(client):find("API key") and " (or --api-key-stdin)" or "")) end
  return client
end

-- Showing results on stdout: JSON with --json (or when `json` says so), else a record or a table.

function Context:show(rec, first, json)
  if json or self.json then self.stdout:write(output.json(rec), "\n") else output.record(self.stdout, rec, first) end
end

-- A listing of a namespace (client.calls, ...): up to `limit` records (nil: all) as a table, or
-- JSON. A table cut short says so on stderr with the total, which one more request (for the record
-- after the table) gives, or at least shows that there is more.
function Context:listing(ns, query, limit, columns, noun, json)
  local rows = {}
  self:guard(function()
    for rec in ns:each(query) do
      rows[#rows + 1] = rec
      if limit and #rows >= limit then break end
    end
  end)
  if json or self.json then self.stdout:write(#rows == 0 and "[]" or output.json(rows), "\n") return end
  if #rows == 0 then self.stderr:write("(none)\n") return end
  output.table(self.stdout, rows, columns)
  if not limit or #rows < limit then return end
  local q = {}
  for k, v in pairs(query) do q[k] = v end
  q.size, q.page = 1, limit
  local page = ns:list(q)
  if not page then return end                  -- only the note is lost
  local total = page.totalCount or page.totalCounts
  if type(total) == "number" and total > #rows then
    self.stderr:write("showing ", #rows, " of ", total, " ", noun, "; --all for every one, --limit N for N\n")
  elseif type(total) ~= "number" and #page.data > 0 then
    self.stderr:write("showing the first ", #rows, " ", noun, ", and there are more; --all for every one, ",
                      "--limit N for N\n")
  end
end

-- --limit and --all, for a listing of `noun`
function _M.limit_options(cmd, noun)
  _M.number_option(cmd, "--limit", "At most this many " .. noun .. " (0: all).", "100")
  cmd:flag("--all", "Every one (no limit).")
end

-- the limit that --limit and --all ask for (nil: none)
function Context:limit(args)
  if args.all or args.limit == 0 then return nil end
  return self:need(args.limit >= 0 and args.limit % 1 == 0 and args.limit or nil,
                   "--limit expects a whole number >= 0 (0: all), got " .. tostring(args.limit))
end

function Context:done(kind, id)
  if self.json then self.stdout:write(output.json{ deleted = true, id = id }, "\n")
  else self.stdout:write("deleted ", kind, " ", id, "\n") end
end

-- the progress of a long command on stderr; the last one is kept, to end its line if interrupted
function Context:progress(label)
  self.bar = output.progress(self.stderr, self:is_tty("stderr"), label)
  return self.bar
end

return _M
