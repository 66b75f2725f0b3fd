-- bin/sigmamind installed by LuaRocks (install.bin): the wrapper runs the script from the rock's
-- tree, where the command modules must come from the rockspec's module list.
local ROOT = require("support.sandbox").root()

describe("sigmamind installed with luarocks make", function()
  local tree, log

  -- runs cmd, its stdout and stderr into the log; the log's text, once cmd is asserted to succeed
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

  -- the sandbox the CLI's help tells users to start: its launcher and sandbox/, from the rock
  it("starts and stops the sandbox from the installed tree, through sigmamind and through the launcher", function()
    for _, cmd in ipairs{ tree .. "/bin/sigmamind sandbox", tree .. "/bin/sigmamind-sandbox" } do
      local out = succeeds("cd / && " .. cmd .. " --daemon --port 0")
      local url = assert(out:match("SIGMAMIND_BASE_URL=(%S+)"), out)
      local prefix = assert(out:match("SIGMAMIND_SANDBOX_PREFIX=(%S+)"), out)
      local listed = succeeds(("cd / && SIGMAMIND_BASE_URL=%s SIGMAMIND_API_KEY=sk_test_sandbox %s/bin/sigmamind "
        .. "--json agents list"):format(url, tree))
      assert.matches('"agentId"', listed, 1, true)
      succeeds(("cd / && %s stop --prefix %s"):format(cmd, prefix))
      assert.is_nil(io.open(prefix .. "/logs/nginx.pid"))
    end
  end)

  it("says which Debian packages to install when nginx is missing, exit 1", function()
    local ok, how, code = os.execute(("cd / && SIGMAMIND_SANDBOX_NGINX=/nonexistent/nginx %s/bin/sigmamind "
      .. "sandbox --daemon >'%s' 2>&1"):format(tree, log))
    local f = assert(io.open(log)); local text = f:read("a"); f:close()
    assert.is_falsy(ok)
    assert.equal("exit", how)
    assert.equal(1, code, text)
    assert.matches("install the Debian packages nginx and libnginx%-mod%-http%-lua", text)
  end)
end)
