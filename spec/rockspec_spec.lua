-- Packaging: `luarocks make` installs the module into a tree from which a fresh Lua loads and uses it.
describe("sigmamind-scm-1.rockspec", function()
  it("installs with luarocks make into a temporary tree that works on its own", function()
    local tree = os.tmpname(); os.remove(tree)
    local ma = io.popen("gcc -print-multiarch"):read("l") or ""
    local inc = ma ~= "" and ("CURL_INCDIR=/usr/include/%s CURL_LIBDIR=/usr/lib/%s OPENSSL_LIBDIR=/usr/lib/%s")
      :format(ma, ma, ma) or ""
    local p = io.popen(("luarocks --lua-version=5.4 make --tree=%s --deps-mode=none sigmamind-scm-1.rockspec %s 2>&1")
      :format(tree, inc))
    local out = p:read("a")
    local built = p:close()
    assert.is_true(built, out)
    -- a process that sees only the installed tree (and the system's cjson), not the work tree
    local check = io.popen(("cd / && LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;' " ..
      "LUA_CPATH='%s/lib/lua/5.4/?.so;;' lua5.4 -e '" ..
      "local s = require \"sigmamind\" " ..
      "assert(package.searchpath(\"sigmamind.core\", package.cpath):find(\"%s\", 1, true)) " ..
      "local _, e = require(\"sigmamind.core\").validate(\"calls.create\", { toPhoneNumber = \"1\" }) " ..
      "print(s._VERSION, e.field)' 2>&1"):format(tree, tree, tree, tree))
    local got = check:read("a")
    local ok = check:close()
    os.execute("rm -rf " .. tree)
    assert.is_true(ok, got)
    assert.matches("^lua%-sigmamind %d+%.%d+%.%d+\tfromPhoneNumber", got)
  end)
end)
