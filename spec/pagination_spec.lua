-- Pagination: list as sent with both total spellings; each and pages lazy, bounded, and flat in memory.
local sandbox = require "support.sandbox"
local sigmamind = require "sigmamind"

describe("pagination", function()
  local sb, c

  setup(function()
    sb = sandbox.start{}
    c = sigmamind.new{ api_key = sb.key, base_url = sb.url }
  end)
  teardown(function() if c then c:close() end; if sb then sb:stop() end end)

  describe("over 1,000 seeded calls", function()
    setup(function()
      sb:reset()
      local status = sb:request("POST", "/_sandbox/seed", { calls = 1000 })
      assert.equal(200, status)
    end)

    it("list returns the page as sent, with totalCount and totalCounts", function()
      local page = assert(c.calls:list{ page = 2, size = 50 })
      assert.equal(2, page.page)
      assert.equal(50, page.size)
      assert.equal(50, #page.data)
      assert.equal(1000, page.totalCount)
      assert.equal(1000, page.totalCounts)
      assert.is_true(page.hasNext)
      assert.is_true(page.hasPrevious)
    end)

    it("each yields every record once, in order, and stops on hasNext == false", function()
      local ids, n = {}, 0
      local before = sb:count("GET", "/v1/calls")
      for call in c.calls:each{ size = 100 } do
        assert.is_nil(ids[call.callId])
        ids[call.callId] = true
        n = n + 1
      end
      assert.equal(1000, n)
      assert.equal(10, sb:count("GET", "/v1/calls") - before)
    end)

    it("each honours limit and fetches no page it does not need", function()
      local before = sb:count("GET", "/v1/calls")
      local n = 0
      for _ in c.calls:each{ size = 100, limit = 150 } do n = n + 1 end
      assert.equal(150, n)
      assert.equal(2, sb:count("GET", "/v1/calls") - before)
    end)

    it("is lazy: nothing is fetched until the loop asks", function()
      local before = sb:count("GET", "/v1/calls")
      local it = c.calls:each{ size = 10 }
      assert.equal(before, sb:count("GET", "/v1/calls"))
      assert.truthy(it())
      assert.equal(before + 1, sb:count("GET", "/v1/calls"))
    end)

    it("pages yields pages with the filter kept", function()
      local pages, total = 0, 0
      for page in c.calls:pages{ size = 90, status = "ended" } do
        pages = pages + 1
        total = total + #page.data
        for _, call in ipairs(page.data) do assert.equal("ended", call.status) end
      end
      assert.equal(12, pages)
      assert.equal(1000, total)
    end)

    it("raises the typed error from inside a loop", function()
      sb:arm{ method = "GET", path = "/v1/calls", fault = "500", count = 10 }
      local quick = sigmamind.new{ api_key = sb.key, base_url = sb.url, max_retries = 0 }
      local ok, err = pcall(function() for _ in quick.calls:each{} do end end)
      quick:close()
      sb:request("POST", "/_sandbox/faults", { method = "GET", path = "/v1/calls", fault = "500", count = 0 })
      assert.is_false(ok)
      assert.equal("server", err.kind)
      assert.equal(500, err.status)
    end)
  end)

  it("iterates 100,000 calls with flat memory", function()
    sb:reset()
    assert.equal(200, (sb:request("POST", "/_sandbox/seed", { calls = 100000 })))
    collectgarbage()
    local base = collectgarbage("count")
    local peak, n = 0, 0
    for _ in c.calls:each{ size = 100 } do
      n = n + 1
      if n % 5000 == 0 then
        local kb = collectgarbage("count") - base
        if kb > peak then peak = kb end
      end
    end
    assert.equal(100000, n)
    -- one page of 100 records plus the ids of the previous one; garbage collection keeps the rest away
    assert.is_true(peak < 8 * 1024, ("Lua heap grew by %.0f kB"):format(peak))
  end)

  it("reads webhooks and campaigns totals spelled totalCount, as totalCounts too", function()
    sb:reset()
    assert(c.webhooks:create{ name = "h", agentId = sb.agent, url = "http://127.0.0.1:9/h",
                              events = { "conversation_ended" } })
    local page = assert(c.webhooks:list{})
    assert.equal(1, page.totalCount)
    assert.equal(1, page.totalCounts)
    local n = 0
    for _ in c.webhooks:each{} do n = n + 1 end
    assert.equal(1, n)
  end)
end)
