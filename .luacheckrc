-- luacheck configuration: `luacheck lua bin/sigmamind spec sandbox/lua bench` (make lint).
-- The Lua layer runs on Lua 5.4 and on LuaJIT/Lua 5.1 (OpenResty): only what all of them share ("min").
std = "min"
max_line_length = 130
codes = true

files["lua/sigmamind/ngx.lua"] = { std = "min+ngx_lua" }          -- cosockets: inside nginx only
files["examples/openresty"] = { std = "min+ngx_lua" }
files["spec/support/ngx_app.lua"] = { std = "min+ngx_lua" }
files["sandbox/lua"] = { std = "luajit+ngx_lua" }                  -- the sandbox is an OpenResty app
files["spec"] = { std = "lua54+busted" }
files["bin"] = { std = "lua54" }
files["bench"] = { std = "lua54" }
files["examples/*.lua"] = { std = "lua54" }
