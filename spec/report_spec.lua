-- The CLI's reports: `calls stats` (table, bars, --json, --html rendered in headless Chromium) and
-- `campaigns watch`.
local sandbox = require "support.sandbox"
local util = require "support.util"
local observe = require "sigmamind.observe"
local json = sandbox.json

local ROOT = util.root()
local CLI = ROOT .. "/bin/sigmamind"

-- sh: stdout and exit code; read_file: nil when the file is not there
local shell_quote, read_file, sh = util.shell_quote, util.try_read, util.capture

local function find_chromium()
  for _, name in ipairs{ "chromium", "chromium-browser" } do
    local path = sh("command -v " .. name .. " 2>/dev/null"):match("^(%S+)")
    if path then return path end
  end
end

-- Debian's chromium, installed on first use by tools/deps.sh when it can be (root or sudo)
local chromium = find_chromium()
if not chromium then
  os.execute("sh " .. shell_quote(ROOT .. "/tools/deps.sh") .. " chromium >/dev/null 2>&1")
  chromium = find_chromium()
end
local NO_CHROMIUM = "headless Chromium is not available: Debian's chromium package is not installed and " ..
                    "could not be installed here (as root: apt-get install -y chromium)"

-- runs chromium headless on a file:// URL with its own throwaway profile; returns stdout, exit code
local function chrome(args, url)
  local profile = os.tmpname()
  os.remove(profile)
  local cmd = { shell_quote(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" .. shell_quote(profile) }
  for _, a in ipairs(args) do cmd[#cmd + 1] = a end
  cmd[#cmd + 1] = shell_quote(url)
  local out, code = sh("timeout 60 " .. table.concat(cmd, " ") .. " 2>/dev/null")
  os.execute("rm -rf " .. shell_quote(profile))
  return out, code
end

-- big-endian 32-bit integer at byte i
local function be32(s, i)
  local a, b, c, d = s:byte(i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

describe("reports", function()
  local sb

  setup(function()
    sb = sandbox.start{ speed = 1 }
    -- a known mix: 3 ended normally (20 s), 1 voicemail (5 s), 2 busy, 1 invalid destination
    for _, to in ipairs{ "+12137770010", "+12137770011", "+12137770012", "+12135550103", "+12135550101",
                         "+12135550101", "+12135550105" } do
      local status = sb:request("POST", "/v1/calls", { fromPhoneNumber = sb.number, toPhoneNumber = to })
      assert.equal(201, status)
    end
    sb:advance(60)
  end)
  teardown(function() if sb then sb:stop() end end)

  local function run(args)
    local parts = { "env", "SIGMAMIND_API_KEY=" .. shell_quote(sb.key), "SIGMAMIND_BASE_URL=" .. shell_quote(sb.url),
                    shell_quote(CLI) }
    for _, a in ipairs(args) do parts[#parts + 1] = shell_quote(a) end
    local errfile = os.tmpname()
    local out, code = sh(table.concat(parts, " ") .. " 2>" .. errfile .. " </dev/null")
    local err = read_file(errfile)
    os.remove(errfile)
    return out, err, code
  end

  describe("sigmamind calls stats", function()
    it("prints a summary table and bar charts (ASCII through a pipe, as here)", function()
      local out, err, code = run{ "calls", "stats" }
      assert.equal(0, code, err)
      assert.matches("calls%s+7\n", out)
      assert.matches("completion rate%s+57%.1 %%   %(ended 4 of 7 finished%)", out)
      assert.matches("duration %(s%)%s+count 7  mean 9%.3  p50 5  p95 20  max 20", out)
      assert.matches("STATUS\n  ended +4   57%.1 %%  ####[^\n]*\n  not_connected +2   28%.6 %%  ##", out)
      assert.matches("OUTCOME %(terminationReason%)\n  dial_busy +2 .*\n  user_ended_call +2 .*\n  agent_ended_call +1 ", out)
      assert.matches("DURATION\n", out)
    end)

    it("prints one JSON document with --json", function()
      local out, err, code = run{ "calls", "stats", "--json", "--status", "not_connected" }
      assert.equal(0, code, err)
      local s = json.decode(out)
      assert.equal(2, s.count)
      assert.same({ not_connected = 2 }, s.by_status)
      assert.same({ dial_busy = 2 }, s.by_reason)
      assert.equal("not_connected", s.filters.status)
    end)

    it("refuses a time it cannot read with exit code 2", function()
      local _, err, code = run{ "calls", "stats", "--since", "last week" }
      assert.equal(2, code)
      assert.matches("--since expects an ISO-8601 time", err, 1, true)
    end)

    it("writes a self-contained HTML report: inline SVG, no script, nothing fetched, every text escaped", function()
      local path = os.tmpname() .. ".html"
      local _, err, code = run{ "calls", "stats", "--html", path, "--agent", sb.agent }
      assert.equal(0, code, err)
      local html = assert(read_file(path))
      os.remove(path)
      assert.matches("^<!DOCTYPE html>", html)
      local svgs = select(2, html:gsub("<svg ", ""))
      assert.equal(3, svgs)   -- status, outcomes, duration histogram
      for _, bad in ipairs{ "<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import" } do
        assert.is_nil(html:find(bad, 1, true), bad)
      end
      -- text from outside (filters, and whatever the server calls an outcome) is escaped
      local hostile = observe.html({ count = 1, scanned = 1, finished = 1, by_status = { ended = 1 },
        by_reason = { ["<script>alert('x')</script>"] = 1 }, duration = { count = 0, histogram = {} },
        filters = { campaign = 'a"b&c<d>' } })
      assert.is_nil(hostile:find("<script", 1, true))
      assert.truthy(hostile:find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;", 1, true))
      assert.truthy(hostile:find("campaign a&quot;b&amp;c&lt;d&gt;", 1, true))
    end)

    it("renders in headless Chromium with its charts and numbers", function()
      if not chromium then pending(NO_CHROMIUM) return end
      local path = os.tmpname() .. ".html"
      local png = os.tmpname() .. ".png"
      local _, err, code = run{ "calls", "stats", "--html", path }
      assert.equal(0, code, err)

      local _, scode = chrome({ "--screenshot=" .. shell_quote(png), "--window-size=1200,900" }, "file://" .. path)
      local image = read_file(png)
      os.remove(png)
      assert.equal(0, scode)
      assert.truthy(image, "no screenshot written")
      assert.equal("\137PNG\r\n\26\n", image:sub(1, 8))
      assert.equal(1200, be32(image, 17))
      assert.equal(900, be32(image, 21))
      -- a blank 1200x900 page compresses to a few KB; text, tables and coloured bars take tens
      assert.is_true(#image > 20000, "screenshot of " .. #image .. " bytes")

      local dom, dcode = chrome({ "--dump-dom" }, "file://" .. path)
      os.remove(path)
      assert.equal(0, dcode)
      assert.equal(3, select(2, dom:gsub("<svg ", "")))
      assert.truthy(dom:find('<td class="num" id="calls">7</td>', 1, true))
      assert.truthy(dom:find('<td class="num" id="completion">57.1 %</td>', 1, true))
      assert.truthy(dom:find('<td class="num" id="duration-p95">20</td>', 1, true))
      assert.truthy(dom:find(">dial_busy</text>", 1, true))
      assert.truthy(dom:find(">voicemail_detected</text>", 1, true))
      assert.truthy(dom:find('<rect [^>]*fill="#2e7d32"><title>ended: 4</title></rect>'))
    end)
  end)

  describe("sigmamind campaigns watch", function()
    it("follows a campaign to the end with its outcome counts", function()
      local csv = util.temp_file("phone,name\n+12137770010,Ann\n+1234,Bad\n+12135550102,Bob\n")
      local out, err, code = run{ "--json", "campaigns", "create", "--name", "watch spec", "--agent", sb.agent,
                                  "--from", sb.number, "--csv", csv }
      os.remove(csv)
      assert.equal(0, code, err)
      local camp = json.decode(out)
      sb:advance(120)
      out, err, code = run{ "campaigns", "watch", camp.campaignId, "--interval", "0.1" }
      assert.equal(0, code, err)
      assert.matches("campaign " .. camp.campaignId .. ": 2/2  completed  ended 1, not_connected 1", err, 1, true)
      assert.matches("completed: 2 calls (ended 1, not_connected 1)", out, 1, true)
      assert.matches("outcomes: dial_no_answer 1, user_ended_call 1", out, 1, true)
    end)
  end)
end)
