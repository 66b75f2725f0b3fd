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

    describe("with prefetch = true", function()
      local function ids_of_each(query)
        local ids = {}
        for call in c.calls:each(query) do ids[#ids + 1] = call.callId end
        return ids
      end

      it("yields what each yields without it, in order, with no extra request", function()
        local plain = ids_of_each{ size = 100 }
        local before = sb:count("GET", "/v1/calls")
        local fetched = ids_of_each{ size = 100, prefetch = true }
        assert.same(plain, fetched)
        assert.equal(1000, #fetched)
        assert.equal(10, sb:count("GET", "/v1/calls") - before)    -- the last page starts no other
        before = sb:count("GET", "/v1/calls")
        assert.equal(150, #ids_of_each{ size = 100, limit = 150, prefetch = true })
        assert.equal(2, sb:count("GET", "/v1/calls") - before)     -- page 1 ends the limit: no page 2
        local pages = 0
        for page in c.calls:pages{ size = 50, limit = 180, prefetch = true } do
          pages = pages + 1
          assert.equal(50, #page.data)
        end
        assert.equal(4, pages)
      end)

      it("has the next page on its way while the loop reads this one, retried like any other", function()
        local start = sb:count("GET", "/v1/calls")
        local it = c.calls:each{ size = 100, prefetch = true }
        assert.truthy(it())                 -- page 0 read, page 1 sent
        assert.equal(start + 2, sb:count("GET", "/v1/calls"))
        -- page 1 has reached the sandbox by now, so the fault falls on page 2, started while page 1 is read; either
        -- way on a page that came through prefetching, retried by its waiter
        sb:arm{ method = "GET", path = "/v1/calls", fault = "503", count = 1 }
        local before = sb:count("GET", "/v1/calls")
        local n = 1
        while it() do n = n + 1 end
        assert.equal(1000, n)
        assert.equal(8 + 1, sb:count("GET", "/v1/calls") - before)   -- pages 2-9, and the 503 answered once
      end)

      it("abandons the page it started when the loop is left early", function()
        for call in c.calls:each{ size = 100, prefetch = true } do if call then break end end
        local active, done = c._c:_pending()
        assert.equal(0, active + done)
      end)

      it("is off inside a task, where pages come as the loop asks", function()
        local t = c:spawn(function() return ids_of_each{ size = 100, prefetch = true } end)
        local ids = assert(t:join())
        assert.equal(1000, #ids)
        local active, done = c._c:_pending()
        assert.equal(0, active + done)
      end)

      it("refuses a prefetch that is not a boolean", function()
        assert.has_error(function() c.calls:each{ prefetch = "yes" } end, "prefetch: expected a boolean, got yes")
      end)
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
