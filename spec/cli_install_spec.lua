-- bin/sigmamind installed by LuaRocks (install.bin): the wrapper runs the script from the rock's tree, where the
-- command modules must come from the rockspec's module list.
local ROOT = require("support.sandbox").root()

describe("sigmamind installed with luarocks make", function()
  local tree, log

  -- runs cmd, its stdout and stderr into the log; the log's text, after an assertion that cmd succeeded
  local function succeeds(cmd)
    local ok = os.execute(cmd .. " >'" .. log .. "' 2>&1")
    local f = assert(io.open(log))
    local text = f:read("a")
    f:close()
    assert.is_true(ok, cmd .. "\n" .. text)
    return text
  end

  setup(function()
    tree, log = os.tmpname(), os.tmpname()
    os.remove(tree)
    succeeds(("cd '%s' && luarocks --lua-version 5.4 make --tree '%s' sigmamind-scm-1.rockspec"):format(ROOT, tree))
  end)
  teardown(function()
    os.execute("rm -rf '" .. tree .. "'")
    os.remove(log)
  end)

  it("runs from another directory, with every command module named in the rockspec", function()
    local spec = {}
    assert(loadfile(ROOT .. "/sigmamind-scm-1.rockspec", "t", spec))()
    for name in succeeds("ls '" .. ROOT .. "/lua/sigmamind/cli'"):gmatch("[^\n]+") do
      local module = "sigmamind.cli" .. (name == "init.lua" and "" or "." .. name:gsub("%.lua$", ""))
      assert.equal("lua/sigmamind/cli/" .. name, spec.build.modules[module], module .. " is not in the rockspec")
    end
    local help = succeeds("cd / && '" .. tree .. "/bin/sigmamind' --help")
    assert.matches("Usage: sigmamind", help, 1, true)
    for _, command in ipairs{ "calls", "campaigns", "numbers", "webhooks", "agents", "dial", "sandbox",
                              "completion" } do
      assert.matches("\n   " .. command .. " ", help, 1, true)
    end
    assert.equal(require("sigmamind")._VERSION .. "\n", succeeds("cd / && '" .. tree .. "/bin/sigmamind' --version"))
  end)
end)
