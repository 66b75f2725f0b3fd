-- sigmamind.webhook: signatures against openssl's arithmetic, replay windows, dedupe, deliveries.
local webhook = require "sigmamind.webhook"
local util = require "support.util"

local SECRET = "whsec_spec_0123456789"
local NOW = 1700000000
local BODY = '{"event":"conversation_ended","timestamp":"2023-11-14T22:13:20Z",' ..
             '"call":{"callId":"call_1","status":"not-connected","variables":{"name":"Ann"}}}'

local snapshot, shell_quote = util.snapshot, util.shell_quote

-- HMAC-SHA256 by the openssl command, over exact bytes in a temp file: independent arithmetic.
local function openssl_hmac(secret, message)
  local path = util.temp_file(message)
  local out = util.capture("openssl dgst -sha256 -hmac " .. shell_quote(secret) .. " " .. shell_quote(path))
  os.remove(path)
  return assert(out:match("= *(%x+)%s*$"), "unexpected openssl output: " .. out)
end

local function header_for(t, body, ...)
  local parts = { "t=" .. t }
  for _, secret in ipairs{ ... } do parts[#parts + 1] = "v1=" .. openssl_hmac(secret, t .. "." .. body) end
  return table.concat(parts, ",")
end

local function verify(body, header, opts)
  opts = opts or {}
  if opts.secret == nil and opts.secrets == nil then opts.secret = SECRET end
  if opts.now == nil then opts.now = NOW end
  return webhook.verify(body, { ["X-SigmaMind-Signature"] = header }, opts)
end

describe("sigmamind.webhook", function()
  it("loads without writing any global", function()
    local before = snapshot(_G)
    package.loaded["sigmamind.webhook"] = nil
    local fresh = require "sigmamind.webhook"
    assert.is_function(fresh.verify)
    assert.same(before, snapshot(_G))
  end)

  describe("the sigmamind scheme (t=<unix>,v1=<hex>)", function()
    it("accepts a signature computed by openssl and returns the decoded, normalised event", function()
      local event, err = verify(BODY, header_for(NOW, BODY, SECRET))
      assert.is_nil(err)
      assert.equal("conversation_ended", event.event)
      assert.equal("call_1", event.call.callId)
      assert.equal("not_connected", event.call.status)           -- hyphenated status normalised
      assert.same({ name = "Ann" }, event.call.dynamicVariables)  -- older `variables` offered under the new name
    end)

    it("names opts.t when sign() is given a timestamp no header can carry", function()
      for _, t in ipairs{ 0 / 0, math.huge, -math.huge, 2 ^ 63, 1e15, -1, "1700000000" } do
        assert.has_error(function() webhook.sign(BODY, SECRET, { t = t }) end,
          "sigmamind.webhook.sign: opts.t: expected unix seconds (a finite number from 0 to 1e15), got " ..
          (type(t) == "string" and ('the string "%s"'):format(t) or tostring(t)))
      end
      -- the largest it takes is the largest verify reads
      local t = 1e15 - 1
      assert.equal("t=999999999999999,", webhook.sign(BODY, SECRET, { t = t }):sub(1, 18))
      assert.is_table((verify(BODY, webhook.sign(BODY, SECRET, { t = t }), { now = t })))
      assert.equal("t=0,", webhook.sign(BODY, SECRET, { t = 0.5 }):sub(1, 4))
    end)

    it("makes the same header as openssl with sign()", function()
      assert.equal(header_for(NOW, BODY, SECRET), webhook.sign(BODY, SECRET, { t = NOW }))
      assert.equal(header_for(NOW, BODY, SECRET, "other"), webhook.sign(BODY, { SECRET, "other" }, { t = NOW }))
      assert.same({ ["X-SigmaMind-Signature"] = header_for(NOW, BODY, SECRET) },
                  webhook.sign_headers(BODY, SECRET, { t = NOW }))
    end)

    it("refuses a one-byte change to the body, the timestamp or the secret", function()
      local good = header_for(NOW, BODY, SECRET)
      local _, err = verify(BODY:gsub("call_1", "call_2"), good)
      assert.equal("bad_signature", err.reason)
      local forged_t = good:gsub("^t=%d+", "t=" .. (NOW + 1))
      _, err = verify(BODY, forged_t)
      assert.equal("bad_signature", err.reason)
      _, err = verify(BODY, good, { secret = SECRET:sub(1, -2) .. "X" })
      assert.equal("bad_signature", err.reason)
      assert.matches("sigmamind.webhook: bad_signature: ", tostring(err), 1, true)
    end)

    it("rejects timestamps more than 300 s away in either direction and accepts 299 s both ways", function()
      local _, err = verify(BODY, header_for(NOW - 301, BODY, SECRET))
      assert.equal("too_old", err.reason)
      _, err = verify(BODY, header_for(NOW + 301, BODY, SECRET))
      assert.equal("too_new", err.reason)
      assert.is_table((verify(BODY, header_for(NOW - 299, BODY, SECRET))))
      assert.is_table((verify(BODY, header_for(NOW + 299, BODY, SECRET))))
    end)

    it("takes the tolerance and the clock (a number or a function) from opts", function()
      local header = header_for(NOW - 1000, BODY, SECRET)
      assert.is_table((verify(BODY, header, { tolerance = 1000 })))
      assert.is_table((verify(BODY, header, { now = function() return NOW - 1000 end, tolerance = 0 })))
      local _, err = verify(BODY, header, { tolerance = 999 })
      assert.equal("too_old", err.reason)
    end)

    it("raises on a NaN, infinite or negative tolerance instead of accepting a replay", function()
      local replay = header_for(NOW - 1000000000, BODY, SECRET)     -- signed 31 years before now
      for _, tolerance in ipairs{ 0 / 0, -(0 / 0), math.huge, -math.huge, -1 } do
        assert.has_error(function() verify(BODY, replay, { tolerance = tolerance }) end,
          "sigmamind.webhook.verify: opts.tolerance: expected finite seconds >= 0, got " .. tostring(tolerance))
      end
      -- misuse raises whatever the delivery: a missing header too
      assert.has_error(function() webhook.verify(BODY, {}, { secret = SECRET, tolerance = 0 / 0 }) end)
      assert.has_error(function() verify(BODY, replay, { tolerance = "300" }) end)
    end)

    it("raises on a NaN or infinite clock, and on a clock function that returns one, instead of accepting a replay", function()
      local replay = header_for(NOW - 1000000000, BODY, SECRET)
      for _, now in ipairs{ 0 / 0, math.huge, -math.huge } do
        assert.has_error(function() verify(BODY, replay, { now = now }) end,
          "sigmamind.webhook.verify: opts.now: expected finite unix seconds or a function returning them, got " ..
          tostring(now))
        assert.has_error(function() verify(BODY, replay, { now = function() return now end }) end,
          "sigmamind.webhook.verify: opts.now: the function returned " .. tostring(now) .. ", expected finite unix seconds")
      end
      assert.has_error(function() verify(BODY, replay, { now = function() return "soon" end }) end,
        'sigmamind.webhook.verify: opts.now: the function returned the string "soon", expected finite unix seconds')
      assert.has_error(function() verify(BODY, replay, { now = "1700000000" }) end)
    end)

    it("uses the wall clock by default", function()
      local t = os.time()
      local event = webhook.verify(BODY, { ["X-SigmaMind-Signature"] = header_for(t, BODY, SECRET) },
                                   { secret = SECRET })
      assert.is_table(event)
    end)

    it("accepts any of several v1 values and any of several secrets (rotation)", function()
      local both = header_for(NOW, BODY, "old_secret", "new_secret")
      assert.is_table((verify(BODY, both, { secret = "new_secret" })))
      assert.is_table((verify(BODY, both, { secret = "old_secret" })))
      assert.is_table((verify(BODY, header_for(NOW, BODY, "old_secret"), { secrets = { "new_secret", "old_secret" } })))
      local _, err = verify(BODY, both, { secrets = { "third", "fourth" } })
      assert.equal("bad_signature", err.reason)
      assert.matches("2 signatures, 2 secrets tried", err.message, 1, true)
    end)

    it("matches header names case-insensitively and accepts repeated headers given as an array", function()
      local header = header_for(NOW, BODY, SECRET)
      assert.is_table((webhook.verify(BODY, { ["x-sigmamind-signature"] = header }, { secret = SECRET, now = NOW })))
      assert.is_table((webhook.verify(BODY, { ["X-SIGMAMIND-SIGNATURE"] = header }, { secret = SECRET, now = NOW })))
      local repeated = { ["x-sigmamind-signature"] = { "t=1,v1=00", header } }
      assert.is_table((webhook.verify(BODY, repeated, { secret = SECRET, now = NOW })))
    end)

    it("says which header it expected when there is none, and which headers it got", function()
      local _, err = webhook.verify(BODY, { ["Content-Type"] = "application/json" }, { secret = SECRET })
      assert.equal("missing_signature", err.reason)
      assert.matches("no X-SigmaMind-Signature header", err.message, 1, true)
      assert.matches("content-type", err.message, 1, true)
    end)

    it("reports an unreadable header as bad_header", function()
      for _, value in ipairs{ "v1=abcd", "t=" .. NOW, "t=soon,v1=abcd", "garbage" } do
        local _, err = verify(BODY, value)
        assert.equal("bad_header", err.reason, value)
      end
    end)

    it("reports a body that is not a JSON object as bad_json, after the signature checks out", function()
      local body = "not json"
      local _, err = verify(body, header_for(NOW, body, SECRET))
      assert.equal("bad_json", err.reason)
    end)

    it("reports a correctly signed JSON array as bad_json, not as an event without fields", function()
      for _, body in ipairs{ "[1,2]", ' \r\n\t[{"event":"conversation_ended","call":{"callId":"c"}}]', "[]", '"x"', "42" } do
        local event, err = verify(body, header_for(NOW, body, SECRET))
        assert.is_nil(event, body)
        assert.equal("bad_json", err.reason, body)
        assert.matches("the body is not a JSON object", err.message, 1, true)
      end
      local _, err = verify("[1,2]", header_for(NOW, "[1,2]", SECRET))
      assert.equal("the body is not a JSON object: it is an array", err.message)
      -- objects still pass, white space before them included
      local body = ' \n{"event":"conversation_started","call":{"callId":"c"}}'
      assert.equal("conversation_started", verify(body, header_for(NOW, body, SECRET)).event)
    end)

    it("reports an object whose event is missing or not a string as bad_json", function()
      for body, what in pairs{ ['{"call":{"callId":"c"}}'] = "missing", ['{}'] = "missing",
                               ['{"event":null,"call":{}}'] = "null", ['{"event":7}'] = "a number",
                               ['{"event":{"name":"conversation_ended"}}'] = "a table",
                               ['{"event":["conversation_ended"]}'] = "a table" } do
        local event, err = verify(body, header_for(NOW, body, SECRET))
        assert.is_nil(event, body)
        assert.equal("bad_json", err.reason, body)
        assert.equal('the body is not a JSON object with an "event" string: event is ' .. what, err.message, body)
      end
    end)

    it("normalises conversation_analyzed to conversation_analysed", function()
      local body = '{"event":"conversation_analyzed","call":{"callId":"c","status":"in-progress"}}'
      local event = verify(body, header_for(NOW, body, SECRET))
      assert.equal("conversation_analysed", event.event)
      assert.equal("in_progress", event.call.status)
    end)
  end)

  describe("the plain scheme (hex HMAC of the body)", function()
    it("accepts openssl's HMAC of the raw body, bare or prefixed sha256=", function()
      local hex = openssl_hmac(SECRET, BODY)
      assert.is_table((webhook.verify(BODY, { ["X-Signature"] = hex },
                                      { secret = SECRET, scheme = "plain", header = "X-Signature" })))
      assert.is_table((webhook.verify(BODY, { ["x-signature"] = "sha256=" .. hex:upper() },
                                      { secret = SECRET, scheme = "plain", header = "X-Signature" })))
      assert.equal(hex, webhook.sign(BODY, SECRET, { scheme = "plain" }))
    end)

    it("refuses a changed body and uses X-SigmaMind-Signature by default", function()
      local hex = openssl_hmac(SECRET, BODY)
      local _, err = webhook.verify(BODY .. " ", { ["X-SigmaMind-Signature"] = hex }, { secret = SECRET, scheme = "plain" })
      assert.equal("bad_signature", err.reason)
      _, err = webhook.verify(BODY, { ["X-Other"] = hex }, { secret = SECRET, scheme = "plain" })
      assert.equal("missing_signature", err.reason)
    end)
  end)

  describe("a custom verifier", function()
    it("decides, and its reason is passed on", function()
      local seen
      local function verifier(raw, headers, opts)
        seen = { raw = raw, token = headers["X-Token"], opts = opts }
        if headers["X-Token"] == "let-me-in" then return true end
        return nil, "bad_token"
      end
      local event = webhook.verify(BODY, { ["X-Token"] = "let-me-in" }, { scheme = verifier })
      assert.equal("call_1", event.call.callId)
      assert.equal(BODY, seen.raw)
      local _, err = webhook.verify(BODY, { ["X-Token"] = "nope" }, { scheme = verifier })
      assert.equal("bad_token", err.reason)
    end)
  end)

  describe("hints and misuse", function()
    it("raises, with a hint, when given a decoded table instead of the raw body", function()
      assert.has_error(function() webhook.verify({ event = "x" }, {}, { secret = SECRET }) end,
        "sigmamind.webhook.verify: raw_body: expected a string, got table: pass the raw request body string, not a decoded table")
    end)

    it("hints at surrounding whitespace in the secret when the signature does not match", function()
      local _, err = verify(BODY, header_for(NOW, BODY, SECRET), { secret = SECRET .. "\n" })
      assert.equal("bad_signature", err.reason)
      assert.matches("secret has leading/trailing whitespace", err.message, 1, true)
    end)

    it("raises without any secret, and reports an empty one as no_secret", function()
      assert.has_error(function() webhook.verify(BODY, {}, {}) end)
      assert.has_error(function() webhook.verify(BODY, {}, { secret = 42 }) end)
      assert.has_error(function() webhook.verify(BODY, {}, { secret = SECRET, scheme = "md5" }) end)
      assert.has_error(function() webhook.verify(BODY, nil, { secret = SECRET }) end)
      local _, err = webhook.verify(BODY, {}, { secret = "" })
      assert.equal("no_secret", err.reason)
    end)
  end)

  describe("dedupe", function()
    local function event(id, name) return { event = name or "conversation_ended", call = { callId = id } } end

    it("remembers (callId, event) pairs in memory", function()
      local d = webhook.dedupe()
      assert.is_false(d:seen(event("a")))
      assert.is_true(d:seen(event("a")))
      assert.is_false(d:seen(event("a", "conversation_started")))
      assert.is_false(d:seen(event("b")))
      d:forget(event("b"))
      assert.is_false(d:seen(event("b")))
    end)

    it("bounds the default store and lets keys expire", function()
      local clock = 0
      local d = webhook.dedupe{ max_keys = 2, ttl = 10, now = function() return clock end }
      d:seen(event("a")); d:seen(event("b")); d:seen(event("c"))   -- "a" is evicted
      assert.equal(2, d.store:size())
      assert.is_false(d:seen(event("a")))
      clock = 11
      assert.is_false(d:seen(event("c")))
    end)

    -- a store as ngx.shared.DICT is one: its functions refuse to be called other than as methods
    local function shared_dict()
      local dict = { data = {}, ttls = {}, calls = {} }
      local function method(name, fn)
        dict[name] = function(self, ...)
          if self ~= dict then error('bad "zone" argument', 2) end
          dict.calls[#dict.calls + 1] = name
          return fn(...)
        end
      end
      method("get", function(k) return dict.data[k] end)
      method("set", function(k, v, ttl) dict.data[k] = v; dict.ttls[k] = ttl; return true end)
      method("add", function(k, v, ttl)
        if dict.data[k] ~= nil then return false, "exists" end
        dict.data[k] = v; dict.ttls[k] = ttl
        return true
      end)
      method("delete", function(k) dict.data[k] = nil; return true end)
      return dict
    end

    it("calls its store's functions as methods, as an ngx.shared.DICT needs: add, then delete to forget", function()
      local dict = shared_dict()
      local d = webhook.dedupe{ store = dict, ttl = 60 }
      assert.is_false(d:seen(event("x")))
      assert.is_true(d:seen(event("x")))
      assert.same({ ["sigmamind:webhook:x:conversation_ended"] = 1 }, dict.data)
      assert.same({ ["sigmamind:webhook:x:conversation_ended"] = 60 }, dict.ttls)
      d:forget(event("x"))
      assert.same({}, dict.data)
      assert.is_false(d:seen(event("x")))
      assert.same({ "add", "add", "delete", "add" }, dict.calls)        -- atomic add, never get-then-set
    end)

    it("works over a get/set store, called as methods, forgetting with set(key, nil) when it has no delete", function()
      local data, ttls = {}, {}
      local store = {}
      function store:get(k) assert(self == store); return data[k] end
      function store:set(k, v, ttl) assert(self == store); data[k] = v; ttls[k] = ttl end
      local d = webhook.dedupe{ store = store, ttl = 60 }
      assert.is_false(d:seen(event("x")))
      assert.is_true(d:seen(event("x")))
      local key, ttl = next(ttls)
      assert.equal("sigmamind:webhook:x:conversation_ended", key)
      assert.equal(60, ttl)
      d:forget(event("x"))
      assert.is_nil(data[key])
      assert.is_false(d:seen(event("x")))
    end)

    it("uses a store's atomic add when it has one, and counts an add that could not store as new", function()
      local data, full = {}, false
      local store = { get = function() error("get is not used when add exists") end, set = function() end }
      function store:add(k, v)
        assert(self == store)
        if data[k] then return false, "exists" end
        if full then return false, "no memory" end
        data[k] = v
        return true
      end
      local d = webhook.dedupe{ store = store }
      assert.is_false(d:seen(event("y")))
      assert.is_true(d:seen(event("y")))
      full = true     -- a full dict forgets nothing it had, and must not drop an event it cannot remember
      assert.is_true(d:seen(event("y")))
      assert.is_false(d:seen(event("z")))
    end)

    it("offers the default store's functions as methods too", function()
      local store = webhook.memory_store{ max_keys = 2 }
      assert.is_true(store:set("k", 1, 10))
      assert.equal(1, store:get("k"))
      assert.equal(1, store:size())
      store:delete("k")
      assert.is_nil(store:get("k"))
      assert.equal(0, store:size())
    end)

    it("raises on a store without get and set functions", function()
      assert.has_error(function() webhook.dedupe{ store = {} } end,
        "sigmamind.webhook.dedupe: store: expected an ngx.shared.DICT or an object with the methods " ..
        "store:get(key) and store:set(key, value, ttl)")
      assert.has_error(function() webhook.dedupe{ ttl = 0 / 0 } end, "sigmamind.webhook.dedupe: ttl: expected seconds > 0")
    end)

    it("drops a repeated delivery in verify over an ngx.shared-like store, and accepts it again once forgotten", function()
      local d = webhook.dedupe{ store = shared_dict() }
      local header = header_for(NOW, BODY, SECRET)
      assert.is_table((verify(BODY, header, { dedupe = d })))
      local _, err = verify(BODY, header, { dedupe = d })
      assert.equal("duplicate", err.reason)
      assert.equal("already seen: conversation_ended for call call_1", err.message)
      d:forget((verify(BODY, header)))
      assert.is_table((verify(BODY, header, { dedupe = d })))
    end)

    it("never counts events without a usable call id as repeats of each other, and stores nothing for them", function()
      local dict = shared_dict()
      local d = webhook.dedupe{ store = dict }
      local null = require("sigmamind.core").null
      local idless = {
        { event = "conversation_started" },                             -- no call at all
        { event = "conversation_started", call = null },
        { event = "conversation_started", call = "call_1" },            -- a call that is not an object
        { event = "conversation_started", call = {} },
        { event = "conversation_started", call = { callId = null } },
        { event = "conversation_started", call = { callId = "" } },
        { event = "conversation_started", call = { callId = false } },
        { event = "conversation_started", call = { callId = true } },
        { event = "conversation_started", call = { callId = {} } },
        { event = "conversation_started", call = { callId = { "call_1" } } },
        { event = "conversation_started", call = { callId = 1.5 } },
        { event = "conversation_started", call = { callId = 0 / 0 } },
        { event = "conversation_started", call = { callId = math.huge } },
      }
      for round = 1, 2 do
        for i, ev in ipairs(idless) do
          assert.is_false(d:seen(ev), "round " .. round .. ", event " .. i)
        end
      end
      d:forget(idless[9])                                               -- forgetting one is a no-op, not a raise
      assert.same({}, dict.data)
      assert.same({}, dict.calls)                                       -- the store is never asked about them
    end)

    it("identifies a call by a non-empty string or an integer id, and keeps ':' in ids and names from colliding", function()
      local d = webhook.dedupe()
      assert.is_false(d:seen(event(42)))
      assert.is_true(d:seen(event(42)))
      assert.is_false(d:seen(event(43)))
      assert.is_false(d:seen(event("a:b", "c")))
      assert.is_false(d:seen(event("a", "b:c")))
      assert.is_false(d:seen(event("a%3Ab", "c")))
      assert.is_true(d:seen(event("a:b", "c")))
    end)

    it("accepts two distinct signed deliveries that carry no call in verify", function()
      local d = webhook.dedupe()
      for _, body in ipairs{ '{"event":"conversation_started","timestamp":"2023-11-14T22:13:20Z"}',
                             '{"event":"conversation_started","timestamp":"2023-11-14T22:13:21Z"}',
                             '{"event":"conversation_started","timestamp":"2023-11-14T22:13:22Z","call":null}' } do
        local ev, err = verify(body, header_for(NOW, body, SECRET), { dedupe = d })
        assert.is_table(ev, tostring(err))
      end
    end)

    it("drops a repeated delivery in verify with reason duplicate", function()
      local d = webhook.dedupe()
      local header = header_for(NOW, BODY, SECRET)
      assert.is_table((verify(BODY, header, { dedupe = d })))
      local _, err = verify(BODY, header, { dedupe = d })
      assert.equal("duplicate", err.reason)
    end)
  end)

  describe("real deliveries from the sandbox", function()
    local sandbox = require "support.sandbox"
    local socket = require "socket"
    local json = sandbox.json
    local sb, client

    setup(function()
      sb = sandbox.start{ speed = 200 }
      client = util.client(sb)
    end)
    teardown(function()
      if client then client:close() end
      if sb then sb:stop() end
    end)

    -- a minimal HTTP receiver on a loopback port, in this process: it verifies the wire's bytes
    local function receiver()
      local server = assert(socket.bind("127.0.0.1", 0))
      server:settimeout(0.05)
      local _, port = server:getsockname()
      local r = { url = "http://127.0.0.1:" .. port .. "/hooks/sigmamind", got = {} }
      function r.poll()
        local c = server:accept()
        if not c then return end
        c:settimeout(2)
        local request_line = c:receive("*l")
        local headers = {}
        while true do
          local line = c:receive("*l")
          if not line or line == "" then break end
          local k, v = line:match("^([^:]+):%s*(.-)%s*$")
          if k then headers[k] = v end
        end
        local body = c:receive(tonumber(headers["Content-Length"]) or 0)
        c:send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        c:close()
        r.got[#r.got + 1] = { request_line = request_line, headers = headers, body = body }
      end
      function r.close() server:close() end
      return r
    end

    it("verifies every delivery of a call with the secret webhooks:create returned", function()
      local r = receiver()
      local hook = assert(client.webhooks:create{ name = "spec receiver", agentId = sb.agent, url = r.url,
        events = { "conversation_started", "conversation_ended", "conversation_analysed" } })
      assert.is_string(hook.secret)
      local call = assert(client.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12137774445",
                                               agentId = sb.agent })
      util.wait_for(function() r.poll(); return #r.got >= 3 end, 15)
      r.close()
      assert.equal(3, #r.got)
      local names = {}
      for _, d in ipairs(r.got) do
        assert.equal("POST /hooks/sigmamind HTTP/1.1", d.request_line)
        local event, err = webhook.verify(d.body, d.headers, { secret = hook.secret })
        assert.is_nil(err)
        assert.equal(call.callId, event.call.callId)
        names[#names + 1] = event.event
        local _, forged = webhook.verify(d.body, d.headers, { secret = hook.secret .. "x" })
        assert.equal("bad_signature", forged.reason)
      end
      table.sort(names)
      assert.same({ "conversation_analysed", "conversation_ended", "conversation_started" }, names)
      assert.truthy(client.calls:wait(call.callId, { timeout = 10 }))
      assert(client.webhooks:delete(hook.webhookId))
    end)

    -- the requests the sandbox's recording receiver got that `keep` keeps, once n (or after 15 s)
    local function echoed(n, keep)
      local got
      util.wait_for(function()
        local _, v = sb:request("GET", "/_sandbox/echo")
        got = {}
        for _, rec in ipairs(v and v.data or {}) do
          if keep(rec) then got[#got + 1] = rec end
        end
        return #got >= n
      end, 15)
      return got
    end

    it("drops the retry of a delivery the receiver failed, with dedupe", function()
      -- the sandbox's recording receiver answers 500 to the first request: the delivery is retried
      local hook = assert(client.webhooks:create{ name = "flaky receiver", agentId = sb.agent,
        url = sb.url .. "/_sandbox/echo/flaky?fail=1", events = { "conversation_ended" } })
      local call = assert(client.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12135550101",
                                               agentId = sb.agent })
      local got = echoed(2, function(rec) return rec.path == "/_sandbox/echo/flaky" end)
      assert.equal(2, #got)
      local d = webhook.dedupe()
      local results = {}
      for i, rec in ipairs(got) do
        local event, err = webhook.verify(rec.body, rec.headers, { secret = hook.secret, dedupe = d })
        results[i] = event and ("ok " .. event.event .. " " .. event.call.status) or err.reason
        assert.equal(call.callId, json.decode(rec.body).call.callId)
      end
      assert.same({ "ok conversation_ended not_connected", "duplicate" }, results)
    end)

    it("rotates a secret as the README says: a second webhook on the same URL, secrets = { new, old } and dedupe", function()
      local url = sb.url .. "/_sandbox/echo/rotate"
      local old = assert(client.webhooks:create{ name = "old", agentId = sb.agent, url = url,
                                                 events = { "conversation_ended" } })
      local new = assert(client.webhooks:create{ name = "new", agentId = sb.agent, url = url,
                                                 events = { "conversation_ended" } })
      assert.are_not.equal(old.secret, new.secret)
      local call = assert(client.calls:create{ fromPhoneNumber = sb.number, toPhoneNumber = "+12135550102",
                                               agentId = sb.agent })
      local got = echoed(2, function(rec)
        return rec.path == "/_sandbox/echo/rotate" and json.decode(rec.body).call.callId == call.callId
      end)
      assert.equal(2, #got)                                   -- during the overlap each event comes twice
      local d = webhook.dedupe()
      local results, alone = {}, {}
      for i, rec in ipairs(got) do
        local event, err = webhook.verify(rec.body, rec.headers, { secrets = { new.secret, old.secret }, dedupe = d })
        results[i] = event and ("ok " .. event.event) or err.reason
        alone[i] = (webhook.verify(rec.body, rec.headers, { secret = new.secret }) and "new" or "") ..
                   (webhook.verify(rec.body, rec.headers, { secret = old.secret }) and "old" or "")
      end
      assert.same({ "ok conversation_ended", "duplicate" }, results)
      table.sort(alone)
      assert.same({ "new", "old" }, alone)                    -- one copy signed with each secret
      assert(client.webhooks:delete(old.webhookId))
      assert(client.webhooks:delete(new.webhookId))
    end)
  end)
end)
