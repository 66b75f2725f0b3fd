-- Spec helper: the small tools many spec files need, kept here once: the repository root, files and
-- temporary paths, the shell, polling, a free port, a client of the sandbox and on_event collectors.
-- LuaSocket only; the client is loaded by M.client alone, so a spec of the sandbox never loads it.
local socket = require "socket"

local io_open, io_popen, os_execute, os_remove, os_tmpname = io.open, io.popen, os.execute, os.remove, os.tmpname
local assert, ipairs, pairs, require, setmetatable, tostring = assert, ipairs, pairs, require, setmetatable, tostring

local M = {}

-- the repository root, from this file's own path (spec/support/util.lua)
function M.root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  if src:sub(1, 1) ~= "/" then src = (os.getenv("PWD") or ".") .. "/" .. src end
  return src:match("^(.*)/spec/support/[^/]*$") or "."
end

-- s as one word for sh, inside single quotes
function M.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- a fresh temporary path with nothing there yet
function M.tmpname()
  local p = os_tmpname()
  os_remove(p)
  return p
end

-- the whole of a file, or nil and io.open's message when it cannot be opened
function M.try_read(path)
  local f, msg = io_open(path, "rb")
  if not f then return nil, msg end
  local s = f:read("a")
  f:close()
  return s
end

-- the whole of a file; raises when it cannot be opened
function M.read_file(path)
  return (assert(M.try_read(path)))
end

-- writes text to path, byte for byte; returns path
function M.write_file(path, text)
  local f = assert(io_open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

-- a new temporary file holding text: its path
function M.temp_file(text)
  return M.write_file(M.tmpname(), text)
end

-- runs a shell command: its stdout, and its exit code (0 when it succeeded)
function M.capture(cmd)
  local p = assert(io_popen(cmd))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

-- `lua5.4 -e code` in a child process whose environment has no proxy variable but those `env` sets
-- ("NAME=value ...", or ""): its output, stdout and stderr together. The proxy specs use it so that
-- the variables are the child's own.
function M.lua_without_proxies(env, code)
  local cmd = "env -u http_proxy -u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY -u HTTPS_PROXY " ..
              "-u https_proxy " .. env .. " lua5.4 -e " .. ("%q"):format(code) .. " 2>&1"
  local p = assert(io_popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

-- runs a shell command with its output discarded; raises, naming it, unless it succeeded
function M.sh(cmd)
  local ok = os_execute(cmd .. " >/dev/null 2>&1")
  assert(ok, "command failed: " .. cmd)
end

-- calls fn every 20 ms until it returns a true value, and returns that; nil once `seconds` (5) passed
function M.wait_for(fn, seconds)
  local deadline = socket.gettime() + (seconds or 5)
  repeat
    local v = fn()
    if v then return v end
    socket.sleep(0.02)
  until socket.gettime() > deadline
  return nil
end

-- runs `lua5.4 script` in the background, its output discarded, until ready() returns true (20 s at
-- the most), then kills it with SIGKILL; returns its exit status (137: the kill ended it)
function M.kill_when(script, ready)
  local p = assert(io_popen("{ lua5.4 " .. script .. " >/dev/null 2>&1 & echo $!; wait $!; echo $?; } 2>/dev/null"))
  local pid = assert(tonumber(p:read("l")))
  M.wait_for(ready, 20)
  os_execute("kill -9 " .. pid)
  local code = tonumber(p:read("l"))
  p:close()
  return code
end

-- a port on 127.0.0.1 that nothing listens on (just now)
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- a shallow copy of t (of _G: to see that loading a module wrote no global)
function M.snapshot(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- sigmamind.new with the sandbox sb's key and URL (opts.base_url, if given, instead) and opts' others
function M.client(sb, opts)
  opts = opts or {}
  opts.api_key, opts.base_url = sb.key, opts.base_url or sb.url
  return require("sigmamind").new(opts)
end

local Events = {}
Events.__index = Events

-- how many of the events gathered are of type `kind`
function Events:count(kind)
  local n = 0
  for _, ev in ipairs(self) do if ev.type == kind then n = n + 1 end end
  return n
end

-- an on_event collector: the array the events are gathered in (with :count), and the function to
-- give as the client's on_event
function M.events()
  local events = setmetatable({}, Events)
  return events, function(ev) events[#events + 1] = ev end
end

-- a writer that keeps what it is given (a stream for the CLI or a log): buf:text() gives it back
function M.buffer()
  local parts = {}
  return {
    write = function(self, ...)
      for _, v in ipairs{ ... } do parts[#parts + 1] = tostring(v) end
      return self
    end,
    flush = function() end,
    text = function() return table.concat(parts) end,
  }
end

return M
