-- Packaging: the README's install commands, run as written into temporary trees, give a module that
-- loads and works from another directory with only `luarocks path` set.
local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function tmptree()
  local t = os.tmpname(); os.remove(t)
  return t
end

-- the probe runs from / so nothing of the work tree is on the path but what `luarocks path` names
local function run_installed(tree, lua_version, interp, code)
  return sh(("cd / && eval \"$(luarocks --lua-version %s --tree %s path)\" && %s -e %q"):format(
    lua_version, tree, interp, code))
end

local PROBE = [[
local s = require "sigmamind"
assert(package.searchpath("sigmamind.core", package.cpath):find(TREE, 1, true))
local _, e = require("sigmamind.core").validate("calls.create", { toPhoneNumber = "1" })
print(s._VERSION, e.field)]]

describe("the rockspecs", function()
  it("pass luarocks lint", function()
    for f in io.popen("ls *.rockspec"):lines() do
      local ok, out = sh("luarocks lint " .. f)
      assert.is_true(ok, f .. ": " .. out)
    end
  end)

  it("install with `luarocks --lua-version 5.4 make` and no variables, and load from another directory", function()
    local tree = tmptree()
    finally(function() os.execute("rm -rf " .. tree) end)
    local built, out = sh(("luarocks --lua-version 5.4 make --tree %s sigmamind-scm-1.rockspec"):format(tree))
    assert.is_true(built, out)
    local ok, got = run_installed(tree, "5.4", "lua5.4", ("local TREE = %q\n"):format(tree) .. PROBE)
    assert.is_true(ok, got)
    assert.matches("^lua%-sigmamind %d+%.%d+%.%d+\tfromPhoneNumber", got)
  end)

  it("install for LuaJIT with `--lua-version 5.1 LUA_INCDIR=...`, the OpenResty route", function()
    local tree = tmptree()
    finally(function() os.execute("rm -rf " .. tree) end)
    local built, out = sh(("luarocks --lua-version 5.1 make --tree %s sigmamind-scm-1.rockspec " ..
      "LUA_INCDIR=/usr/include/luajit-2.1"):format(tree))
    assert.is_true(built, out)
    local ok, got = run_installed(tree, "5.1", "luajit", ("local TREE = %q\n"):format(tree) .. PROBE)
    assert.is_true(ok, got)
    assert.matches("^lua%-sigmamind %d+%.%d+%.%d+\tfromPhoneNumber", got)
  end)

  it("refuse PUC Lua 5.1 at build time, saying which versions work", function()
    local tree = tmptree()
    finally(function() os.execute("rm -rf " .. tree) end)
    local built, out = sh(("luarocks --lua-version 5.1 make --tree %s sigmamind-scm-1.rockspec"):format(tree))
    assert.is_falsy(built)
    assert.matches("needs Lua 5.4 or LuaJIT 2.1", out, 1, true)
  end)
end)
