-- Observe: calls:stats (aggregates made in paging) and campaigns:progress (contacts' latest calls).
local sandbox = require "support.sandbox"
local sigmamind = require "sigmamind"
local observe = require "sigmamind.observe"

-- the sandbox's magic destinations (docs/sandbox.md): last digits force the outcome
local MIX = {
  { "+12137770010", 3 },   -- ended, user_ended_call (even), 20 s at speed 1
  { "+12137770011", 2 },   -- ended, agent_ended_call (odd), 20 s
  { "+12135550101", 3 },   -- not_connected, dial_busy, 0 s
  { "+12135550102", 1 },   -- not_connected, dial_no_answer
  { "+12135550103", 1 },   -- ended, voicemail_detected, 5 s
  { "+12135550104", 1 },   -- not_connected, dial_user_declined
  { "+12135550105", 1 },   -- error, dial_invalid_destination
  { "+12135550106", 1 },   -- error, error_telephony
}

describe("observe", function()
  local sb, c

  setup(function()
    sb = sandbox.start{ speed = 1 }   -- real durations; the clock is advanced rather than waited for
    c = sigmamind.new{ api_key = sb.key, base_url = sb.url }
  end)
  teardown(function() if c then c:close() end; if sb then sb:stop() end end)

  local function place_mix()
    local created = {}
    for _, m in ipairs(MIX) do
      for _ = 1, m[2] do
        created[#created + 1] = assert(c.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = m[1] })
      end
    end
    return created
  end

  describe("parse_time", function()
    it("reads ISO-8601 UTC with or without millis and Z, and +hh:mm offsets, as unix seconds", function()
      assert.equal(1713607200, observe.parse_time("2024-04-20T10:00:00.000Z"))
      assert.equal(1713607200, observe.parse_time("2024-04-20T10:00:00Z"))
      assert.equal(1713607200, observe.parse_time("2024-04-20T10:00:00"))
      assert.equal(1713607200, observe.parse_time("2024-04-20T12:30:00+02:30"))
      assert.equal(1713607200, observe.parse_time("2024-04-20T05:00:00-0500"))
      assert.equal(1713607200.25, observe.parse_time("2024-04-20T10:00:00.250Z"))
      assert.equal(1713571200, observe.parse_time("2024-04-20"))
      assert.equal(951782400, observe.parse_time("2000-02-29T00:00:00Z"))   -- a leap day (date -u -d 2000-02-29 +%s)
      assert.equal(-86400, observe.parse_time("1969-12-31T00:00:00Z"))
      assert.equal(1713607200, observe.parse_time(1713607200))
    end)

    it("refuses what is not a time", function()
      for _, s in ipairs{ "2024-02-30", "2023-02-29", "2024-13-01", "2024-04-20T24:00:00Z", "yesterday",
                          "2024-04-20T10:00:00+25:00", "2024-04-20T10:00:00Q", "" } do
        assert.is_nil(observe.parse_time(s), s)
      end
    end)

    it("formats unix seconds back as ISO-8601 UTC", function()
      assert.equal("2024-04-20T10:00:00Z", observe.format_time(1713607200))
      assert.equal("2000-03-01T00:59:59.500Z", observe.format_time(observe.parse_time("2000-02-29T23:59:59.5-01:00")))
    end)
  end)

  describe("calls:stats", function()
    local created

    setup(function()
      sb:reset()
      created = place_mix()
      sb:advance(60)   -- every call final
    end)

    it("counts a known mix of outcomes exactly: statuses, reasons, completion rate, durations", function()
      local s = assert(c.calls:stats())
      assert.equal(13, s.count)
      assert.same({ ended = 6, not_connected = 5, error = 2 }, s.by_status)
      assert.same({ user_ended_call = 3, agent_ended_call = 2, voicemail_detected = 1, dial_busy = 3,
                    dial_no_answer = 1, dial_user_declined = 1, dial_invalid_destination = 1,
                    error_telephony = 1 }, s.by_reason)
      assert.equal(13, s.finished)
      assert.equal(6 / 13, s.completion_rate)
      -- durations: 5 × 20 s, 1 × 5 s (voicemail), 7 × 0 s (never connected)
      assert.equal(13, s.duration.count)
      assert.equal(105 / 13, s.duration.mean)
      assert.equal(0, s.duration.p50)
      assert.equal(20, s.duration.p95)
      assert.equal(20, s.duration.max)
      assert.equal(created[1].createdAt, s.first)
      assert.equal(created[#created].createdAt, s.last)
      assert.equal("newest_first", s.order)
    end)

    it("rates calls per hour over the window asked for", function()
      local t0 = observe.parse_time(created[1].createdAt)
      local s = assert(c.calls:stats{ since = t0 - 1800, before = t0 + 1800 })
      assert.equal(13, s.count)
      assert.equal(13, s.calls_per_hour)
      assert.equal(observe.format_time(t0 - 1800), s.filters.since)
      -- all thirteen were placed within a second: too short a span for a rate of its own
      assert.is_nil(assert(c.calls:stats()).calls_per_hour)
    end)

    it("filters by status on the server, and by agent and campaign while paging", function()
      local s = assert(c.calls:stats{ status = "error" })
      assert.equal(2, s.count)
      assert.same({ error = 2 }, s.by_status)
      assert.equal(0, s.completion_rate)
      assert.equal(13, assert(c.calls:stats{ agent = sb.agent }).count)
      local none = assert(c.calls:stats{ agent = "agent_nobody" })
      assert.equal(0, none.count)
      assert.equal(13, none.scanned)
      assert.is_nil(none.completion_rate)
      assert.is_nil(none.duration.p50)
      assert.equal(0, assert(c.calls:stats{ campaign = "camp_none" }).count)
    end)

    it("stops at `limit` calls", function()
      local s = assert(c.calls:stats{ limit = 4, size = 2 })
      assert.equal(4, s.count)
      assert.equal("limit", s.stopped_early)
    end)

    it("stops paging at the first call older than `since` (newest-first list)", function()
      sb:reset()
      assert.equal(200, (sb:request("POST", "/_sandbox/seed", { calls = 1000, mix = "uniform" })))   -- old, ended
      sb:advance(3600)
      local new = place_mix()
      sb:advance(60)
      local before = sb:count("GET", "/v1/calls")
      local s = assert(c.calls:stats{ since = new[1].createdAt })
      assert.equal(13, s.count)
      assert.equal("since", s.stopped_early)
      assert.equal(14, s.scanned)                             -- the 13, then the first older one
      assert.equal(1, sb:count("GET", "/v1/calls") - before)   -- one page of 100, not eleven
      -- and `before` keeps the older ones only
      local old = assert(c.calls:stats{ before = new[1].createdAt })
      assert.equal(1000, old.count)
      assert.same({ ended = 1000 }, old.by_status)
    end)

    it("raises, blaming the caller, for options it does not know or times it cannot read", function()
      local ok, err = pcall(function() return c.calls:stats{ sinse = "2024-01-01" } end)
      assert.is_false(ok)
      assert.matches("observe_spec.lua:%d+: sigmamind: calls:stats: unknown option 'sinse'", err)
      ok, err = pcall(function() return c.calls:stats{ since = "last tuesday" } end)
      assert.is_false(ok)
      assert.matches("observe_spec.lua:%d+: .*since: expected an ISO%-8601 time", err)
      assert.has_error(function() c.calls.stats(nil, {}) end)
    end)

    it("returns nil, err when the API fails while paging", function()
      sb:arm{ method = "GET", path = "/v1/calls", fault = "500", count = 10 }
      local s, err = c.calls:stats{}
      assert.is_nil(s)
      assert.equal("server", err.kind)
      sb:request("DELETE", "/_sandbox/faults")
    end)

    it("keeps the Lua heap flat over 100,000 calls", function()
      sb:reset()
      assert.equal(200, (sb:request("POST", "/_sandbox/seed", { calls = 100000, mix = "uniform" })))
      -- the live heap after a full collection every 50 pages, through the client's own event hook
      local samples, events = {}, 0
      local mc = sigmamind.new{ api_key = sb.key, base_url = sb.url, on_event = function()
        events = events + 1
        if events % 100 == 0 then
          collectgarbage("collect")
          samples[#samples + 1] = collectgarbage("count")
        end
      end }
      collectgarbage("collect")
      local base = collectgarbage("count")
      local s = assert(mc.calls:stats())
      mc:close()
      assert.equal(100000, s.count)
      assert.equal(100000, s.scanned)
      assert.equal(20, s.duration.p50)
      assert.equal(3600, math.floor(s.calls_per_hour))        -- the seed spaces calls one second apart
      assert.is_true(#samples >= 15, "samples: " .. #samples)
      local lo, hi, top = math.huge, 0, 0
      for i, kb in ipairs(samples) do
        top = math.max(top, kb)
        -- from the second sample on: by the first, the state earlier specs left (their interned
        -- strings, the string table's size) has settled, which can move the heap down, never up
        if i > 1 then lo = math.min(lo, kb); hi = math.max(hi, kb) end
      end
      -- one page of 100 decoded calls is about 200 KB; 100,000 kept calls would be about 100 MB
      assert.is_true(top - base < 1024, string.format("heap grew from %.0f KB to %.0f KB", base, top))
      assert.is_true(hi - lo < 128, string.format("heap varied from %.0f KB to %.0f KB while paging (samples: %s)",
                                                lo, hi, table.concat(samples, " ")))
    end)
  end)

  describe("campaigns:progress", function()
    -- rows 2 and 4 are bad (invalid number; missing variable); rows 1, 3, 5, 6 dialed in file order
    local CSV = "phone,name\n+12137770010,Ann\n+1234,Bad\n+12135550101,Bob\n+12137770020,\n" ..
                "+12135550105,Eve\n+12135550103,Vic\n"

    local function plan(name, text)
      return sigmamind.campaign(name):agent(sb.agent):caller(sb.number):csv(text or CSV):concurrency(1)
    end

    setup(function() sb:reset() end)

    it("follows a campaign it created, from its CSV, with bad rows left out, to 100 %", function()
      local camp = assert(c.campaigns:create(plan("progress csv")))
      local p = assert(c.campaigns:progress(camp.campaignId))
      assert.equal("csv", p.source)
      assert.equal(4, p.total)
      assert.equal(2, p.invalid)
      assert.equal(0, p.done)
      assert.equal(0, p.percent)
      assert.same({ 1, 3, 5, 6 }, { p.contacts[1].row, p.contacts[2].row, p.contacts[3].row, p.contacts[4].row })
      assert.is_true(p.counts.pending >= 3)   -- one slot: at most the first contact is dialed yet

      sb:advance(300)
      p = assert(c.campaigns:progress(camp.campaignId))
      assert.equal("completed", p.campaign.campaignStatus)
      assert.equal(100, p.percent)
      assert.equal(4, p.done)
      assert.same({ pending = 0, scheduled = 0, in_progress = 0, ended = 2, not_connected = 1, error = 1 }, p.counts)
      local by_phone = {}
      for _, ct in ipairs(p.contacts) do by_phone[ct.phoneNumber] = ct end
      assert.equal("ended", by_phone["+12137770010"].status)
      assert.equal("dial_busy", by_phone["+12135550101"].terminationReason)
      assert.equal("error", by_phone["+12135550105"].status)
      assert.equal("voicemail_detected", by_phone["+12135550103"].terminationReason)
      for _, ct in ipairs(p.contacts) do
        assert.equal(camp.campaignId, assert(c.calls:get(ct.callId)).campaign.campaignId)
      end
    end)

    it("matches calls to contacts in dial order when their variables cannot tell them apart", function()
      local camp = assert(c.campaigns:create(plan("progress order",
        "phoneNumber\n+12135550106\n+12137770010\n+12135550102\n")))
      sb:advance(300)
      local p = assert(c.campaigns:progress(camp.campaignId))
      assert.equal(100, p.percent)
      assert.same({ "error_telephony", "user_ended_call", "dial_no_answer" },
                  { p.contacts[1].terminationReason, p.contacts[2].terminationReason, p.contacts[3].terminationReason })
    end)

    it("follows a campaign created elsewhere from the calls that carry its campaignId", function()
      local camp = assert(c.campaigns:create(plan("progress elsewhere")))
      sb:advance(300)
      local other = sigmamind.new{ api_key = sb.key, base_url = sb.url }
      local p = assert(other.campaigns:progress(camp.campaignId))
      other:close()
      assert.equal("calls", p.source)
      assert.equal(4, p.total)
      assert.equal(2, p.invalid)              -- counted from the campaign's `errors`
      assert.equal(100, p.percent)
      assert.is_nil(p.contacts[1].phoneNumber) -- calls do not carry the number they dialed
      assert.same({ name = "Ann" }, p.contacts[1].dynamicVariables)
      assert.same({ name = "Vic" }, p.contacts[4].dynamicVariables)
    end)

    it("remembers at most 100 campaigns per client, least recently used first out", function()
      local first = assert(c.campaigns:create(plan("lru 0", "phone\n+12137771000\n")))
      for i = 1, 100 do assert(c.campaigns:create(plan("lru " .. i, "phone\n+12137771000\n"))) end
      assert.equal("calls", assert(c.campaigns:progress(first.campaignId)).source)
    end)

    it("matches calls to contacts by their variables when a campaign variable is a whole-valued float", function()
      -- 50.0 goes out as 50 and comes back as the integer 50, and must still tell the contacts
      -- apart: in dial order each contact would get the other's call.
      local rawhttp = require "support.rawhttp"
      local answer = rawhttp.answer
      local camp = '{"campaignId":"camp_f","campaignStatus":"live"}'
      local function call(id, name, at, status)
        return ('{"callId":"%s","status":"%s","createdAt":"2024-04-20T10:00:%02dZ","campaign":{"campaignId":' ..
                '"camp_f"},"dynamicVariables":{"amount":50,"zero":0,"name":"%s"}}'):format(id, status, at, name)
      end
      local raw = rawhttp.start{ answer(201, camp), answer(200, camp), answer(200, '{"data":[' ..
        call("call_b", "Ann", 5, "ended") .. "," .. call("call_a", "Bob", 0, "not_connected") .. '],"hasNext":false}') }
      local rc = sigmamind.new{ api_key = "sk_test_raw", base_url = raw.url, max_retries = 0 }
      assert(rc.campaigns:create(sigmamind.campaign("floats"):agent("agent_1"):caller("+14157774444")
        :variables{ amount = 50.0, zero = -0.0 }:csv("phone,name\n+12137770001,Ann\n+12137770002,Bob\n")))
      local p, err = rc.campaigns:progress("camp_f")
      rc:close()
      raw.stop()
      assert(p, tostring(err))
      assert.equal("csv", p.source)
      assert.same({ "call_b", "ended", "call_a", "not_connected" },
                  { p.contacts[1].callId, p.contacts[1].status, p.contacts[2].callId, p.contacts[2].status })
    end)

    it("works inside a task, and returns nil, err for an unknown campaign", function()
      local t = c:spawn(function() return c.campaigns:progress("camp_nope") end)
      c:run()
      local p, err = t:join()
      assert.is_nil(p)
      assert.equal("not_found", err.kind)
    end)
  end)
end)
