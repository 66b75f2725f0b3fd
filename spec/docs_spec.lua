-- The API reference: LDoc builds it from the doc comments without a warning, and it names the entry
-- points, so a renamed function or a broken @{reference} fails here, not rotting in doc/api/.
local util = require "support.util"

local ROOT, slurp = util.root(), util.read_file

-- the doc-comment anchors LDoc writes: <a name = "calls:create"></a>
local function has_entry(html, name)
  return html:find('name = "' .. name .. '"', 1, true) ~= nil
end

describe("the API reference (make docs)", function()
  local dir, out, ok

  setup(function()
    dir = util.tmpname()
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

describe("the API reference's pages", function()
  local dir

  setup(function()
    dir = util.tmpname()
    assert(os.execute(("cd '%s' && lua5.1 /usr/bin/ldoc -d '%s' . >/dev/null 2>&1"):format(ROOT, dir)))
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  local function pages()
    local list = {}
    for f in io.popen("find '" .. dir .. "' -name '*.html'"):lines() do list[#list + 1] = f end
    return list
  end

  it("let code blocks use the page's width instead of a 700 px column", function()
    local n = 0
    for _, f in ipairs(pages()) do
      n = n + 1
      assert.truthy(slurp(f):find("#content { width: auto;", 1, true), f .. " keeps the narrow column")
    end
    assert.is_true(n >= 10)
  end)

  it("cut no summary short at an abbreviation such as e.g.", function()
    for _, f in ipairs(pages()) do
      for cell in slurp(f):gmatch('class="summary">(.-)</td>') do
        local text = cell:gsub("<[^>]+>", ""):gsub("%s+$", "")
        assert.is_nil(text:match("%f[%w]e%.g%.$") or text:match("%f[%w]i%.e%.$"), f .. ": " .. text)
      end
    end
  end)

  it("include the command line's and the sandbox's own reference pages", function()
    assert.truthy(slurp(dir .. "/topics/cli.md.html"):find("sigmamind calls create", 1, true))
    assert.truthy(slurp(dir .. "/topics/sandbox.md.html"):find("X-Sandbox-Fault", 1, true))
  end)
end)

describe("docs/cli.md", function()
  it("is what the CLI's --help says, command by command (tools/cli-reference.lua)", function()
    local p = io.popen(("cd '%s' && lua5.4 tools/cli-reference.lua"):format(ROOT))
    local made = p:read("a")
    assert.is_true(p:close())
    assert.are.equal(made, slurp(ROOT .. "/docs/cli.md"),
                     "docs/cli.md is out of date: lua5.4 tools/cli-reference.lua > docs/cli.md")
  end)
end)

-- The prose: README.md, HACKING.md and docs/api.md ship with the module, so everything they cite
-- must ship too, and docs/api.md must keep up with the endpoint table it describes.
describe("the written docs (README.md, HACKING.md, docs/api.md)", function()
  local core = require "sigmamind.core"
  local DOCS = { "README.md", "HACKING.md", "docs/api.md", "docs/cli.md", "docs/sandbox.md", "CHANGELOG.md" }
  -- made by the build, not kept in the repository
  local GENERATED = { "^build/", "^doc/", "^fuzz/out/", "^bench/out/" }

  local function exists(rel)
    local f = io.open(ROOT .. "/" .. rel, "r")
    if f then f:close() end
    return f ~= nil
  end

  local function generated(rel)
    for _, p in ipairs(GENERATED) do if rel:find(p) then return true end end
    return false
  end

  -- the dirname of a repository-relative path ("" at the top)
  local function dir_of(rel) return rel:match("^(.*/)") or "" end

  it("cite no file outside the repository (the team's notes are not shipped)", function()
    for _, name in ipairs(DOCS) do
      local text = slurp(ROOT .. "/" .. name)
      for _, bad in ipairs{ "../shared", "/work/", "API.md", "DESIGN.md", "STYLE.md" } do
        assert(not text:find(bad, 1, true), name .. " cites " .. bad)
      end
    end
  end)

  it("cite only paths and links that exist in the repository", function()
    local missing = {}
    for _, name in ipairs(DOCS) do
      local text = slurp(ROOT .. "/" .. name)
      -- a path-like word whose first part is a directory of the repository, or any *.md name
      for tok in text:gmatch("%f[%w_./-][%w_./-]+") do
        local first = tok:match("^([%w_-][%w_.-]*)/")
        local md = tok:find("%.md$")
        if ((first and exists(first)) or md) and not generated(tok) and not exists(tok) then
          missing[#missing + 1] = name .. ": " .. tok
        end
      end
      -- markdown links, relative to the file that holds them
      for target in text:gmatch("%]%(([^)%s]+)%)") do
        if not target:find("^%a[%w+.-]*:") and not target:find("^#") then
          local rel = dir_of(name) .. target:gsub("#.*$", "")
          if not exists(rel) then missing[#missing + 1] = name .. ": link " .. target end
        end
      end
    end
    assert.are.same({}, missing)
  end)

  it("link docs/api.md from the README, whose Webhooks section says the signature scheme is assumed", function()
    local readme = slurp(ROOT .. "/README.md")
    assert.truthy(readme:find("](docs/api.md)", 1, true))
    local section = readme:match("\n## Webhooks\n(.-)\n## ")
    assert.truthy(section, "no Webhooks section in README.md")
    for _, s in ipairs{ "has not published", "assumption", 'scheme = "plain"', "scheme = function", "docs/api.md" } do
      assert(section:find(s, 1, true), "README's Webhooks section does not say " .. s)
    end
  end)

  it("docs/api.md has every endpoint of the core's table, with its method, path and fields", function()
    local api = slurp(ROOT .. "/docs/api.md")
    local missing = {}
    for name, ep in pairs(core.endpoints) do
      if not api:find("`" .. name .. "`", 1, true) then missing[#missing + 1] = name end
      if not api:find(ep.method .. " " .. ep.path, 1, true) then missing[#missing + 1] = ep.method .. " " .. ep.path end
      for field in pairs(ep.fields) do
        if not api:find("`" .. field .. "`", 1, true) then missing[#missing + 1] = name .. " field " .. field end
      end
    end
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  it("docs/api.md names the Lua method of every namespace function", function()
    local sigmamind = require "sigmamind"
    local api = slurp(ROOT .. "/docs/api.md")
    local missing = {}
    for _, ns in ipairs{ "calls", "campaigns", "phone_numbers", "webhooks", "agents" } do
      for method in pairs(sigmamind[ns]) do
        local shown = api:find(ns .. ":" .. method, 1, true)
                      or ((method == "each" or method == "pages") and api:find("`:" .. method .. "`", 1, true))
        if not shown then missing[#missing + 1] = ns .. ":" .. method end
      end
    end
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  it("docs/api.md marks each open point confirmed (naming SigmaMind's document) or assumed", function()
    local api = slurp(ROOT .. "/docs/api.md")
    local section = api:match("\n## 6%.[^\n]*\n(.*)$")
    assert.truthy(section, "no section 6 in docs/api.md")
    local sources = { "the outbound-calls guide", "the POST /v1/calls API reference page",
                      "the GET /v1/calls reference page", "the API reference pages" }
    local rows = {}
    for row in section:gmatch("\n(|[^\n]+)") do
      if not row:find("^|%-") and not row:find("^| Point |") then
        rows[#rows + 1] = row
        local confirmed, assumed = row:find("*confirmed*", 1, true), row:find("*assumed*", 1, true)
        assert(confirmed or assumed, "neither confirmed nor assumed: " .. row)
        if confirmed then
          local named = false
          for _, s in ipairs(sources) do named = named or row:find(s, 1, true) ~= nil end
          assert(named, "confirmed without naming a SigmaMind document: " .. row)
        end
      end
    end
    local all = table.concat(rows, "\n")
    for _, point in ipairs{ "Webhook signature", "Webhook payload", "Pause and resume", "Request id",
                            "phone column", "upload encoding", "totalCounts", "Hyphenated", "Idempotency",
                            "Rate limits", "bare JSON numbers", "conversation_analyzed", "terminationSipUri",
                            "`active` default", "DELETE answers" } do
      assert(all:find(point, 1, true), "no open point row for " .. point)
    end
  end)

  it("docs/api.md calls campaign_upload planned exactly while sigmamind.new refuses it", function()
    local sigmamind = require "sigmamind"
    local api = slurp(ROOT .. "/docs/api.md")
    local line = api:match("[^\n]*campaign_upload[^\n]*")
    assert.truthy(line, "docs/api.md does not say how campaigns are uploaded (campaign_upload)")
    local planned = line:find("not yet available", 1, true) ~= nil
    local ok, err = pcall(sigmamind.new, { api_key = "sk_test_docs", campaign_upload = "multipart" })
    if ok then err:close() end
    if planned then
      assert.is_false(ok, "sigmamind.new takes campaign_upload: docs/api.md still calls it planned")
      assert.matches("unknown option 'campaign_upload'", err, 1, true)
    else
      assert.is_true(ok, "docs/api.md describes campaign_upload, which sigmamind.new refuses: " .. tostring(err))
    end
  end)
end)
