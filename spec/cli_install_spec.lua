-- bin/sigmamind installed by LuaRocks (install.bin): the wrapper runs the script from the rock's tree, where the
-- command modules must come from the rockspec's module list.
local ROOT = require("support.sandbox").root()

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

describe("sigmamind installed with luarocks make", function()
  local tree

  setup(function()
    tree = os.tmpname(); os.remove(tree)
    local ok, out = sh(("cd '%s' && luarocks --lua-version 5.4 make --tree '%s' sigmamind-scm-1.rockspec"):format(
      ROOT, tree))
    assert(ok, out)
  end)
  teardown(function() os.execute("rm -rf '" .. tree .. "'") end)

  it("runs from another directory, with every command module named in the rockspec", function()
    local spec = {}
    assert(loadfile(ROOT .. "/sigmamind-scm-1.rockspec", "t", spec))()
    local f = assert(io.popen("ls '" .. ROOT .. "/lua/sigmamind/cli'"))
    for name in f:lines() do
      local module = "sigmamind.cli" .. (name == "init.lua" and "" or "." .. name:gsub("%.lua$", ""))
      assert.equal("lua/sigmamind/cli/" .. name, spec.build.modules[module], module .. " is not in the rockspec")
    end
    f:close()
    local ok, out = sh("cd / && '" .. tree .. "/bin/sigmamind' --help")
    assert.is_true(ok, out)
    assert.matches("Usage: sigmamind", out, 1, true)
    for _, command in ipairs{ "calls", "campaigns", "numbers", "webhooks", "dial", "sandbox" } do
      assert.matches("\n   " .. command .. " ", out, 1, true)
    end
  end)
end)
