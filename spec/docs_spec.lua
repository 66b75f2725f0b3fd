-- The API reference: LDoc builds it from the doc comments without one warning, and it names the entry points,
-- so a renamed function or a broken @{reference} fails here rather than rotting in doc/api/.
local ROOT = debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$") or "."

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- the doc-comment anchors LDoc writes: <a name = "calls:create"></a>
local function has_entry(html, name)
  return html:find('name = "' .. name .. '"', 1, true) ~= nil
end

describe("the API reference (make docs)", function()
  local dir, out, ok

  setup(function()
    dir = os.tmpname(); os.remove(dir)
    local p = io.popen(("cd '%s' && lua5.1 /usr/bin/ldoc -d '%s' . 2>&1"):format(ROOT, dir))
    out = p:read("a")
    ok = p:close()
  end)

  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("is built by LDoc, which prints nothing but its progress lines (every other line is a warning)", function()
    assert.is_true(ok, out)
    local extra = {}
    for line in out:gmatch("[^\n]+") do
      if not line:find("^reading configuration from ") and not line:find("^output written to ") then
        extra[#extra + 1] = line
      end
    end
    assert.are.same({}, extra)
    assert.truthy(slurp(dir .. "/index.html"):find("sigmamind.webhook", 1, true))
  end)

  it("documents new, the namespace methods, map and the Client methods on the sigmamind page", function()
    local html = slurp(dir .. "/modules/sigmamind.html")
    for _, name in ipairs{ "new", "options", "err", "map", "null",
                           "calls:create", "calls:get", "calls:list", "calls:each", "calls:pages", "calls:wait",
                           "campaigns:create", "campaigns:pause", "phone_numbers:provision", "webhooks:enable",
                           "agents:get", "Client:spawn", "Client:poll", "Client:run", "Client:dial" } do
      assert(has_entry(html, name), "no entry for " .. name .. " in modules/sigmamind.html")
    end
  end)

  it("documents the campaign and call builders, verify, sign, dedupe, dial and the pager", function()
    local pages = {
      ["sigmamind.build"] = { "campaign", "Campaign:contacts", "Campaign:csv_file", "Campaign:build", "call",
                              "Call:build" },
      ["sigmamind.webhook"] = { "verify", "sign", "dedupe", "Failure", "Dedupe:seen", "Dedupe:forget" },
      ["sigmamind.dial"] = { "dial", "options", "report" },
      ["sigmamind.task"] = { "spawn", "map", "Task:join" },
      ["sigmamind.pager"] = { "each", "pages" },
      ["sigmamind.csv"] = { "encode", "decode", "records" },
      ["sigmamind.ngx"] = { "available" },
    }
    for module, names in pairs(pages) do
      local html = slurp(dir .. "/modules/" .. module .. ".html")
      for _, name in ipairs(names) do
        assert(has_entry(html, name), "no entry for " .. name .. " in modules/" .. module .. ".html")
      end
    end
  end)
end)
