-- Pagination: list as sent with both total spellings; each and pages lazy, bounded, flat in memory.
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
      local status = sb:request("POST", "/_sandbox/seed", { calls = 1000, mix = "uniform" })
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
      it("goes on when the loop's body runs tasks of the same client, joined or not", function()
        -- a task's perform must not collect the prefetched page and drop it: the loop would hang
        local n, joined, tasks = 0, 0, {}
        for call in c.calls:each{ size = 10, prefetch = true } do
          n = n + 1
          if n == 1 then
            local t = c:spawn(function() require("sigmamind.core").sleep(0.1) return c.agents:list() end)
            assert(t:join())
            joined = joined + 1
          elseif n % 10 == 5 and n < 50 then                 -- left running while the loop goes on
            tasks[#tasks + 1] = c:spawn(function() return c.calls:get(call.callId) end)
          end
          if n == 60 then break end
        end
        assert.equal(60, n)
        for _, t in ipairs(tasks) do assert.truthy((t:join())) end
        assert.equal(1, joined)
      end)

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
        -- page 1 has reached the sandbox by now, so the fault falls on page 2, started while page 1
        -- is read; either way on a page that came through prefetching, retried by its waiter
        sb:arm{ method = "GET", path = "/v1/calls", fault = "503", count = 1 }
        local before = sb:count("GET", "/v1/calls")
        local n = 1
        while it() do n = n + 1 end
        assert.equal(1000, n)
        assert.equal(8 + 1, sb:count("GET", "/v1/calls") - before)   -- pages 2-9, and the 503 answered once
      end)

      it("abandons the page it started when the loop is left early", function()
        for call in c.calls:each{ size = 100, prefetch = true } do if call then break end end
        if not require("sigmamind.pager").closing_values then
          -- Lua 5.4.4's break bug (pager.lua): no closing value; the collected iterator forgets its
          -- page, whose answer the next loop's perform drops
          collectgarbage()
          collectgarbage()
          local n = 0
          for _ in c.calls:each{ size = 100, prefetch = true } do n = n + 1 end
          assert.equal(1000, n)
        end
        local active, done = c._c:_pending()
        assert.equal(0, active + done)
      end)

      it("knows whether this interpreter breaks out of a loop with a closing value correctly", function()
        local probe = load([[
          local keep = {}
          for v in function(_, i) i = (i or 0) + 1 return i end, nil, nil,
                   setmetatable({}, { __close = function() end }) do
            if v == 1 then keep[#keep + 1] = function() return v end end
            if v == 2 then break end
          end
          return tostring("ok")
        ]])
        local ok = pcall(probe)
        assert.equal(ok, require("sigmamind.pager").closing_values)
        assert.equal(_VERSION ~= "Lua 5.4" or ok, require("sigmamind.pager").closing_values)
      end)

      it("is off inside a task, where pages come as the loop asks", function()
        local t = c:spawn(function() return ids_of_each{ size = 100, prefetch = true } end)
        local ids = assert(t:join())
        assert.equal(1000, #ids)
        local active, done = c._c:_pending()
        assert.equal(0, active + done)
      end)

      it("refuses a prefetch that is not a boolean", function()
        assert.has_error(function() c.calls:each{ prefetch = "yes" } end,
                         'sigmamind: calls:each: prefetch: expected a boolean, got the string "yes"')
      end)
    end)

    it("refuses a limit below 0 (or not a number), naming the method, before sending", function()
      local before = sb:count("GET", "/v1/calls")
      for _, case in ipairs{ { "each", -1, "got -1" }, { "pages", -1, "got -1" },
                             { "each", "5", 'got the string "5"' }, { "each", 0 / 0, "got " .. tostring(0 / 0) } } do
        local method, limit, got = case[1], case[2], case[3]
        local ok, err = pcall(function() for _ in c.calls[method](c.calls, { limit = limit }) do end end)
        assert.is_false(ok)
        assert.matches("^spec/pagination_spec%.lua:%d+: sigmamind: calls:" .. method ..
                       ": limit: expected a number >= 0, " .. got:gsub("%p", "%%%0") .. "$", err)
      end
      assert.equal(before, sb:count("GET", "/v1/calls"))
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
    assert.equal(200, (sb:request("POST", "/_sandbox/seed", { calls = 100000, mix = "uniform" })))
    collectgarbage()
    local base = collectgarbage("count")
    local peak, n = 0, 0
    for _ in c.calls:each{ size = 100 } do
      n = n + 1
      -- what stays alive, after a full collection: the garbage not yet collected between two is the
      -- collector's policy, which grows with the heap the earlier specs left (lua5.4's generational
      -- collector lets the heap double before a major collection: 8.6 MB of garbage were seen once the
      -- suite had grown), not a property of the iteration
      if n % 10000 == 0 then
        collectgarbage()
        local kb = collectgarbage("count") - base
        if kb > peak then peak = kb end
      end
    end
    assert.equal(100000, n)
    print(("\n  100,000 records: live Lua heap at most %.0f kB above where it started"):format(peak))
    -- one page of 100 records plus the previous one's ids (a page is ~150 kB; keeping every id seen
    -- would be ~8 MB, every record ~150 MB)
    assert.is_true(peak < 2 * 1024, ("Lua heap grew by %.0f kB"):format(peak))
  end)

  describe("deleting while iterating", function()
    local function seed(n)
      sb:reset()
      assert.equal(200, (sb:request("POST", "/_sandbox/seed", { calls = n, mix = "uniform" })))
    end
    local function left() return assert(c.calls:list{ size = 1 }).totalCount end

    it("skips records when each's loop deletes them, as the README warns", function()
      seed(50)
      local deleted = 0
      for call in c.calls:each{ size = 10 } do
        assert.is_true(c.calls:delete(call.callId))
        deleted = deleted + 1
      end
      assert.is_true(deleted < 50, "deleted " .. deleted)
      assert.equal(50 - deleted, left())
    end)

    it("deletes every record when the ids are collected first, as documented", function()
      seed(50)
      local ids = {}
      for call in c.calls:each{ size = 10 } do ids[#ids + 1] = call.callId end
      for _, id in ipairs(ids) do assert(c.calls:delete(id)) end
      assert.equal(50, #ids)
      assert.equal(0, left())
    end)

    it("deletes every record when page 0 is read again until it is empty, as documented", function()
      seed(50)
      local deleted = 0
      repeat
        local page = assert(c.calls:list{ page = 0, size = 10 })
        for _, call in ipairs(page.data) do
          assert(c.calls:delete(call.callId))
          deleted = deleted + 1
        end
      until #page.data == 0
      assert.equal(50, deleted)
      assert.equal(0, left())
    end)
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
