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
  -- `luarocks make` compiles in the checkout; what it leaves there is no part of the tree
  teardown(function() os.execute("rm -rf sigmamind src/*.o") end)
  it("build every C file of src/ and install every Lua module of lua/", function()
    local spec = {}
    assert(loadfile("sigmamind-scm-1.rockspec", "t", spec))()
    local sources = {}
    for _, f in ipairs(spec.build.modules["sigmamind.core"].sources) do sources[f] = true end
    for f in io.popen("ls src/*.c"):lines() do assert(sources[f], f .. " is not in the rockspec's sources") end
    local files = {}
    for _, f in pairs(spec.build.modules) do if type(f) == "string" then files[f] = true end end
    for f in io.popen("find lua -name '*.lua'"):lines() do
      assert(files[f], f .. " is not in the rockspec's modules")
    end
  end)

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

  it("agree on one version: the versioned rockspec, its tag, the C core, sigmamind and the changelog", function()
    local core = require "sigmamind.core"
    local v = core._VERSION
    local file = ("sigmamind-%s-1.rockspec"):format(v)
    local spec, scm = {}, {}
    assert(loadfile(file, "t", spec), file .. " is missing: luarocks new_version sigmamind-scm-1.rockspec " .. v)()
    assert(loadfile("sigmamind-scm-1.rockspec", "t", scm))()
    assert.equal(v .. "-1", spec.version)
    assert.equal("v" .. v, spec.source.tag)
    assert.same(scm.build, spec.build)               -- made from the scm rockspec, and kept in step with it
    assert.same(scm.dependencies, spec.dependencies)
    assert.equal("lua-sigmamind " .. v, require("sigmamind")._VERSION)
    local f = assert(io.open("CHANGELOG.md")); local log = f:read("a"); f:close()
    assert.truthy(log:find("\n## " .. v:gsub("%.", "%%.") .. " ", 1), "CHANGELOG.md has no section for " .. v)
    -- no second version string anywhere in the Lua layer
    local p = io.popen("grep -rlnE '_VERSION *= *\"[0-9]' lua")
    assert.equal("", p:read("a")); p:close()
  end)

  it("pack into a binary rock that installs into a clean tree and works there", function()
    local v = require("sigmamind.core")._VERSION
    local build, clean, dir = tmptree(), tmptree(), tmptree()
    finally(function() os.execute(("rm -rf %s %s %s"):format(build, clean, dir)) end)
    assert(os.execute("mkdir -p " .. dir))
    local ok, out = sh(("luarocks --lua-version 5.4 make --tree %s sigmamind-%s-1.rockspec"):format(build, v))
    assert.is_true(ok, out)
    ok, out = sh(("cd %s && luarocks --lua-version 5.4 pack --tree %s sigmamind %s-1"):format(dir, build, v))
    assert.is_true(ok, out)
    local rock = assert(io.popen("ls " .. dir .. "/*.rock"):read("l"), out)
    assert.matches("sigmamind%-" .. v:gsub("%.", "%%.") .. "%-1%.linux%-[%w_]+%.rock$", rock)
    ok, out = sh(("luarocks --lua-version 5.4 install --tree %s %s"):format(clean, rock))
    assert.is_true(ok, out)
    local got
    ok, got = run_installed(clean, "5.4", "lua5.4", ("local TREE = %q\n"):format(clean) .. PROBE)
    assert.is_true(ok, got)
    assert.matches("^lua%-sigmamind " .. v:gsub("%.", "%%.") .. "\tfromPhoneNumber", got)
  end)
end)
