-- Spec helper: a private nginx (Debian nginx + lua module, or OpenResty) under a temporary prefix, serving a
-- given configuration with our Lua layer and the LuaJIT build of the core on its paths. LuaSocket only.
local socket = require "socket"
local util = require "support.util"

local io_open, io_popen, os_execute, os_getenv, os_remove, table_concat, error, pairs =
      io.open, io.popen, os.execute, os.getenv, os.remove, table.concat, error, pairs

local _M = {}
local mt = { __index = _M }

local MODDIR = "/usr/lib/nginx/modules"

local function sh(cmd)
  local p = assert(io_popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  return ok, out
end

local quote = util.shell_quote

function _M.binary()
  for _, b in ipairs{ os_getenv("SIGMAMIND_SANDBOX_NGINX") or "", "/usr/local/openresty/bin/openresty",
                      "/usr/sbin/nginx" } do
    if b ~= "" and io_open(b, "r") then return b end
  end
end

_M.free_port = util.free_port

-- the main-context lines that load the Lua module into a stock Debian nginx (none for OpenResty)
function _M.load_modules(bin)
  local _, v = sh(quote(bin) .. " -V")
  if v:find("lua-nginx-module", 1, true) or v:find("openresty", 1, true) then return "" end
  return "load_module " .. MODDIR .. "/ndk_http_module.so;\nload_module " .. MODDIR .. "/ngx_http_lua_module.so;\n"
end

-- lua_package_path/cpath for our module, the specs' helpers and Debian's resty/cjson for LuaJIT
function _M.lua_paths(root)
  return 'lua_package_path "' .. root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. root ..
         '/spec/?.lua;/usr/share/lua/5.1/?.lua;;";\n' ..
         'lua_package_cpath "' .. root .. '/build/luajit/?.so;/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;";\n'
end

-- opts.conf(ctx) returns the whole nginx.conf, ctx = { prefix, port, root, modules, paths, user, head };
-- opts.env: environment for nginx. Starts it as a daemon and waits until the port answers.
function _M.start(opts)
  local bin = assert(_M.binary(), "nginx not found (Debian: nginx + libnginx-mod-http-lua)")
  local root = util.root()
  local ok, prefix = sh("mktemp -d ${TMPDIR:-/tmp}/sigmamind-ngx.XXXXXX")
  assert(ok, prefix)
  prefix = prefix:gsub("%s+$", "")
  os_execute("mkdir -p " .. quote(prefix .. "/logs") .. " " .. quote(prefix .. "/conf"))
  local port = opts.port or _M.free_port()
  local ctx = { prefix = prefix, port = port, root = root, modules = _M.load_modules(bin),
                paths = _M.lua_paths(root), user = sh("test \"$(id -u)\" = 0") and "user root;" or "" }
  -- the usual start of a spec's nginx.conf, up to inside `http {` (the caller closes it)
  ctx.head = ctx.modules .. ctx.user .. "\nworker_processes 1;\ndaemon on;\npid " .. prefix .. "/logs/nginx.pid;\n" ..
             "error_log " .. prefix .. "/logs/error.log warn;\nevents { worker_connections 1024; }\nhttp {\n" ..
             "  access_log off;\n  client_body_temp_path " .. prefix .. "/logs/body;\n  " .. ctx.paths
  local conf = opts.conf(ctx)
  local f = assert(io_open(prefix .. "/conf/nginx.conf", "w"))
  f:write(conf)
  f:close()
  local env = {}
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. quote(v) end
  local started, out = sh(table_concat(env, " ") .. " " .. quote(bin) .. " -p " .. quote(prefix) .. " -c " ..
                          quote(prefix .. "/conf/nginx.conf") .. " -e " .. quote(prefix .. "/logs/error.log"))
  if not started then
    local log = _M.read(prefix .. "/logs/error.log")
    os_execute("rm -rf " .. quote(prefix))
    error("nginx failed to start: " .. out .. "\n" .. log, 2)
  end
  local self = setmetatable({ prefix = prefix, port = port, url = "http://127.0.0.1:" .. port, bin = bin }, mt)
  for _ = 1, 100 do
    local c = socket.tcp()
    c:settimeout(0.1)
    if c:connect("127.0.0.1", port) then c:close() return self end
    c:close()
    socket.sleep(0.05)
  end
  self:stop()
  error("nginx did not listen on " .. port, 2)
end

function _M.read(path)
  local f = io_open(path, "r")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

function _M:error_log() return _M.read(self.prefix .. "/logs/error.log") end

-- curl against this nginx: returns the body, the status (from -w) and whether curl succeeded
function _M:get(path, extra)
  local ok, out = sh("curl -s -m 30 " .. (extra or "") .. " -w '\\n%{http_code}' " .. quote(self.url .. path))
  local body, status = out:match("^(.*)\n(%d+)$")
  return body or out, tonumber(status), ok
end

function _M:stop()
  if self.stopped then return end
  self.stopped = true
  local pid = _M.read(self.prefix .. "/logs/nginx.pid"):match("%d+")
  if pid then
    os_execute("kill -TERM " .. pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not sh("kill -0 " .. pid) then break end
      socket.sleep(0.05)
    end
  end
  os_remove(self.prefix .. "/conf/nginx.conf")
  os_execute("rm -rf " .. quote(self.prefix))
end

return _M
