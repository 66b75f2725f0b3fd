-- The sandbox's faults as README.md, HACKING.md and docs/sandbox.md list them are its registry
-- (sandbox/lua/sandbox/faults.lua), read from a running sandbox: the faults its 400s expect, and
-- those chaos mode draws by default.
local sandbox = require "support.sandbox"
local util = require "support.util"
local json = sandbox.json

local ROOT = util.root()

-- a file of the repository, by its path from the top
local function slurp(path) return util.read_file(ROOT .. "/" .. path) end

-- "a, b, c or d" -> { "a", "b", "c", "d" }
local function split_list(s)
  local out = {}
  for item in (s:gsub(" or ", ", ") .. ", "):gmatch("(.-), ") do out[#out + 1] = item end
  return out
end

-- the `X-Sandbox-Fault: a|b|c` list of a document
local function header_list(path)
  local list = slurp(path):match("X%-Sandbox%-Fault: ([^`]+)`")
  assert(list, path .. " has no `X-Sandbox-Fault: ...` list")
  local out = {}
  for item in list:gmatch("[^|]+") do out[#out + 1] = item end
  return out
end

describe("the sandbox's fault list", function()
  local sb, registry, chaos_defaults

  setup(function()
    sb = sandbox.start{}
    local status, v = sb:request("POST", "/_sandbox/faults", { path = "/v1/agents", fault = "none" })
    assert(status == 400, "arming an unknown fault answered " .. tostring(status))
    registry = split_list(assert(v.message:match("^fault: expected (.-), got 'none'$"), v.message))
    status, v = sb:request("POST", "/_sandbox/chaos", { rate = 0.5, seed = 1 })
    assert(status == 200, "chaos mode answered " .. tostring(status))
    chaos_defaults = v.faults
    assert(sb:request("POST", "/_sandbox/chaos", { rate = 0 }) == 200)
  end)

  teardown(function() if sb then sb:stop() end end)

  it("is the same in each message that lists the faults (arming, chaos mode, the request header)", function()
    local _, v = sb:request("POST", "/_sandbox/chaos", { rate = 0.5, faults = { "none" } })
    assert.are.same(registry, split_list(v.message:match("^faults: expected only (.-), got 'none'$")))
    _, v = sb:request("GET", "/v1/agents", nil, { ["X-Sandbox-Fault"] = "none" })
    assert.are.same(registry, split_list(v.message:match("^X%-Sandbox%-Fault: expected (.-), got 'none'$")))
    assert.is_true(#registry > 1)
  end)

  it("names faults that can each be armed, and chaos mode draws some of them by default", function()
    for _, f in ipairs(registry) do
      local status, _, raw = sb:request("POST", "/_sandbox/faults",
                                        { path = "/v1/nothing", fault = (f:gsub("=%u+$", "=1")) })
      assert.are.equal(200, status, f .. ": " .. tostring(raw))
    end
    assert.are.equal(204, (sb:request("DELETE", "/_sandbox/faults")))
    local listed = {}
    for _, f in ipairs(registry) do listed[f:gsub("=%u+$", "=")] = true end
    assert.is_true(#chaos_defaults > 0)
    for _, f in ipairs(chaos_defaults) do assert.is_true(listed[f:gsub("=%d+$", "=")], f) end
  end)

  it("is README.md's X-Sandbox-Fault list", function()
    assert.are.same(registry, header_list("README.md"))
  end)

  it("is HACKING.md's X-Sandbox-Fault list", function()
    assert.are.same(registry, header_list("HACKING.md"))
  end)

  it("is the table of docs/sandbox.md's Faults section, whose chaos default list is chaos mode's", function()
    local doc = slurp("docs/sandbox.md")
    local section = assert(doc:match("\n## Faults\n(.-)\n##"), "docs/sandbox.md has no Faults section")
    local rows = {}
    for cell in section:gmatch("\n| ([^|\n]-) |") do
      for f in cell:gmatch("`([^`]+)`") do rows[#rows + 1] = f end
    end
    assert.are.same(registry, rows)
    local default = assert(doc:match('%(default `(%b[])`%)'), "docs/sandbox.md names no chaos default list")
    assert.are.same(chaos_defaults, json.decode(default))
  end)
end)
