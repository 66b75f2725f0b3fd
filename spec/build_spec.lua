-- sigmamind.build: campaign and call plans, the CSV rules of HACKING.md, and the file's base64.
local build = require "sigmamind.build"
local csv = require "sigmamind.csv"

local function snapshot(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function write_file(bytes)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  return path
end

-- coreutils as the independent arithmetic
local function coreutils_base64(bytes)
  local path = write_file(bytes)
  local p = assert(io.popen("base64 -w0 " .. path, "r"))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return out
end

local function coreutils_unbase64(text)
  local path = write_file(text)
  local p = assert(io.popen("base64 -d " .. path, "r"))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return out
end

local function ready(name)
  return build.campaign(name or "September Follow-ups"):agent("agent_abc123"):caller("+14157774444")
end

-- problems of a CSV text through a complete plan
local function csv_problems(text, vars)
  local plan = ready():csv(text)
  if vars then plan:variables(vars) end
  local _, problems = plan:build()
  return problems
end

-- the error message with the "file:line: " position taken off, and whether it blamed this spec file
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  local where, msg = tostring(err):match("^(.-:%d+): (.*)$")
  return msg or err, where and where:find("build_spec.lua", 1, true) ~= nil
end

describe("sigmamind.build", function()
  it("loads without writing any global", function()
    local before = snapshot(_G)
    package.loaded["sigmamind.build"] = nil
    package.loaded["sigmamind.csv"] = nil
    local fresh = require "sigmamind.build"
    assert.is_function(fresh.campaign)
    assert.same(before, snapshot(_G))
  end)

  it("loads and encodes the file without the C core, which it looks up only at first use", function()
    local saved_core, saved_build = package.loaded["sigmamind.core"], package.loaded["sigmamind.build"]
    local looked_up = 0
    package.loaded["sigmamind.core"] = nil
    package.loaded["sigmamind.build"] = nil
    package.preload["sigmamind.core"] = function() looked_up = looked_up + 1; error("no C core here") end
    local ok, err = pcall(function()
      local fresh = require "sigmamind.build"
      assert.equal(0, looked_up)
      local params = fresh.campaign("x"):agent("a"):caller("+14157774444"):csv("phone\n+14155552671\n"):build()
      assert.equal(1, looked_up)
      assert.equal("phone\n+14155552671\n", coreutils_unbase64(params.file))
      fresh.base64_encode("again")
      assert.equal(1, looked_up)
    end)
    package.preload["sigmamind.core"] = nil
    package.loaded["sigmamind.core"], package.loaded["sigmamind.build"] = saved_core, saved_build
    assert(ok, err)
  end)

  describe("campaign plans", function()
    it("chain with Lua's string-call syntax and build the POST /v1/campaigns body", function()
      local sigmamind = { campaign = build.campaign }
      local plan = sigmamind.campaign "September Follow-ups" :agent "agent_abc123" :caller "+14157774444"
        :contacts{ { phoneNumber = "+14155552671", customer_name = "Ada" } }
        :concurrency(5) :variables{ plan_type = "Premium" }
        :schedule{ date = "2025-09-01", time = "09:00", timezone = "America/New_York" }
      local params, problems, fatal = plan:build()
      assert.is_nil(problems)
      assert.is_nil(fatal)
      local file = params.file
      params.file = nil
      assert.same({ campaignName = "September Follow-ups", agentId = "agent_abc123", sipPhoneNumber = "+14157774444",
                    concurrentCalls = 5, dynamicVariables = { plan_type = "Premium" }, isScheduled = true,
                    scheduledDate = "2025-09-01", scheduledTime = "09:00", scheduledTimezone = "America/New_York" },
                  params)
      assert.equal("phoneNumber,customer_name\r\n+14155552671,Ada\r\n", coreutils_unbase64(file))
    end)

    it("sends the CSV text byte for byte as base64 in `file`", function()
      local text = "\239\187\191Phone , name\n+14155552671,\"Zoë, \"\"Z\"\"\"\n\n+14155552672,日本\n"
      local params = ready():csv(text):build()
      assert.equal(text, coreutils_unbase64(params.file))
    end)

    it("names the contacts' phone column phoneNumber whatever the rows call it", function()
      local params = ready():contacts{ { to = "+14155552671", b = "1" }, { Phone = "+14155552672", a = "2" } }:build()
      assert.equal("phoneNumber,a,b\r\n+14155552671,,1\r\n+14155552672,2,\r\n", coreutils_unbase64(params.file))
    end)

    it("reads a CSV file whole, at build time", function()
      local text = "phone,name\r\n+14155552671,Ada\r\n"
      local path = write_file(text)
      local plan = ready():csv_file(path)
      local params, problems = plan:build()
      os.remove(path)
      assert.is_nil(problems)
      assert.equal(text, coreutils_unbase64(params.file))
    end)

    it("reports an unreadable CSV file as a fatal problem instead of raising", function()
      local params, problems, fatal = ready():csv_file("/nonexistent/contacts.csv"):build()
      assert.same({ "file: cannot read /nonexistent/contacts.csv: No such file or directory" }, problems)
      assert.equal(problems[1], fatal)
      assert.is_nil(params.file)
    end)

    it("merges variables, later calls winning, and omits dynamicVariables when there are none", function()
      local plan = ready():csv("phone\n+14155552671\n")
      assert.is_nil((plan:build()).dynamicVariables)
      plan:variables{ a = "1", b = "2" }:variables{ b = "3", c = "4" }
      assert.same({ a = "1", b = "3", c = "4" }, (plan:build()).dynamicVariables)
    end)

    it("sets raw API fields with :set, and replaces the variables with :set('dynamicVariables', t)", function()
      local plan = ready():csv("phone\n+14155552671\n"):variables{ a = "1" }
        :set("futureField", "x"):set("dynamicVariables", { b = "2" }):set("campaignName", "Renamed")
      local params = plan:build()
      assert.equal("x", params.futureField)
      assert.equal("Renamed", params.campaignName)
      assert.same({ b = "2" }, params.dynamicVariables)
    end)

    it("names the campaign with :name as well as with campaign(name)", function()
      local params = build.campaign():name("Late name"):agent("agent_abc123"):caller("+14157774444")
        :csv("phone\n+14155552671\n"):build()
      assert.equal("Late name", params.campaignName)
    end)

    it("unschedules with :schedule(false)", function()
      local plan = ready():csv("phone\n+14155552671\n")
        :schedule{ date = "2025-09-01", time = "09:00", timezone = "UTC" }:schedule(false)
      local params = plan:build()
      assert.is_nil(params.isScheduled)
      assert.is_nil(params.scheduledDate)
    end)

    it("never changes the contacts it is given, and reads them when it is built", function()
      -- rows are not copied (a 100,000-contact list would double in memory); the list itself is
      local rows = { { phone = "+14155552671", name = "Ada" } }
      local vars = { plan_type = "Premium" }
      local plan = ready():contacts(rows):variables(vars)
      rows[1].name = "Grace"
      rows[2] = { phone = "+14155552672" }
      vars.plan_type = "Changed"
      local params = plan:build()
      assert.same({ phone = "+14155552671", name = "Grace" }, rows[1])
      assert.is_nil(rows[1].phoneNumber)
      assert.equal("phoneNumber,name\r\n+14155552671,Grace\r\n", coreutils_unbase64(params.file))
      assert.same({ plan_type = "Premium" }, params.dynamicVariables)
    end)

    it("hands out a fresh params table each build", function()
      local plan = ready():csv("phone\n+14155552671\n"):variables{ a = "1" }
      local p1 = plan:build()
      p1.dynamicVariables.a = "changed"
      p1.agentId = "other"
      local p2 = plan:build()
      assert.equal("1", p2.dynamicVariables.a)
      assert.equal("agent_abc123", p2.agentId)
    end)
  end)

  describe("field problems", function()
    it("lists every missing required field, before anything about the file", function()
      local params, problems, fatal = build.campaign():build()
      assert.same({ "campaignName: required", "agentId: required", "sipPhoneNumber: required", "file: required" },
                  problems)
      assert.equal("campaignName: required", fatal)
      assert.is_table(params)
    end)

    it("words a bad caller number with the E.164 example", function()
      local _, problems = build.campaign("x"):agent("a"):caller("4157774444"):csv("phone\n+14155552671\n"):build()
      assert.same({ 'sipPhoneNumber: expected an E.164 phone number like +14155552671, got "4157774444"' },
                  problems)
    end)

    it("checks the documented lengths of campaignName and agentId", function()
      local _, problems = build.campaign(string.rep("n", 129)):agent(string.rep("a", 65)):caller("+14157774444")
        :csv("phone\n+14155552671\n"):build()
      assert.same({ "campaignName: expected at most 128 characters, got 129",
                    "agentId: expected at most 64 characters, got 65" }, problems)
    end)

    it("wants concurrentCalls to be a positive integer", function()
      local _, problems = ready():csv("phone\n+14155552671\n"):concurrency(0):build()
      assert.same({ "concurrentCalls: expected a positive integer, got 0" }, problems)
      _, problems = ready():csv("phone\n+14155552671\n"):concurrency(2.5):build()
      assert.same({ "concurrentCalls: expected a positive integer, got 2.5" }, problems)
    end)

    it("wants all three schedule fields, well formed, when scheduled", function()
      local _, problems = ready():csv("phone\n+14155552671\n"):schedule{ date = "2025-13-01", time = "9:00" }:build()
      assert.same({ 'scheduledDate: expected a date like 2025-09-01 (YYYY-MM-DD), got "2025-13-01"',
                    'scheduledTime: expected a time like 09:00 (HH:MM), got "9:00"',
                    "scheduledTimezone: required when isScheduled" }, problems)
      _, problems = ready():csv("phone\n+14155552671\n")
        :schedule{ date = "2025-09-01", time = "23:59", timezone = "not a zone" }:build()
      assert.same({ 'scheduledTimezone: expected an IANA time zone like America/New_York, got "not a zone"' },
                  problems)
    end)

    it("wants dynamic variables flat: a nested value raises in :variables and is a problem through :set", function()
      local ok, err = pcall(function() ready():variables{ customer = { name = "Ada" } } end)
      assert.is_false(ok)
      assert.matches("campaign:variables: customer: expected a string, number or boolean, got table", err, 1, true)
      ok, err = pcall(function() build.call{ to = "+14155552671" }:variables{ n = 0 / 0 } end)
      assert.is_false(ok)
      assert.matches("call:variables: n: expected a string, number or boolean, got number", err, 1, true)
      for _, f in ipairs{
        function() ready():set("dynamicVariables", { a = { 1 } }) end,
        function() build.call{ from = "+14157774444", to = "+14155552671" }:set("dynamicVariables", { a = { 1 } }) end,
        function() build.call{ to = "+14155552671", variables = { a = { 1 } } } end,
      } do
        ok, err = pcall(f)
        assert.is_false(ok)
        assert.matches("a: expected a string, number or boolean, got table", err, 1, true)
      end
      -- a plan's variables changed after they were given are checked when it is built
      local vars = { c = 1 }
      local plan = ready():csv("phone\n+14155552671\n"):variables(vars)
      local call = build.call{ from = "+14157774444", to = "+14155552671" }:set("dynamicVariables", vars)
      local _, problems = plan:build()
      assert.is_nil(problems)
      plan._vars.b, plan._vars.a = {}, { 1 }
      call._fields.dynamicVariables.tags = { "x" }
      _, problems = plan:build()
      assert.same({ "dynamicVariables.a: expected a string, number or boolean, got table",
                    "dynamicVariables.b: expected a string, number or boolean, got table" }, problems)
      local _, cproblems = call:build()
      assert.same({ "dynamicVariables.tags: expected a string, number or boolean, got table" }, cproblems)
    end)

    it("judges schedule dates and zones as the core does, so a plan it passes is not refused at create", function()
      local core = require "sigmamind.core"
      local dates = { "2024-02-29", "2025-02-29", "2025-02-28", "2025-04-31", "2025-04-30", "2025-12-31", "2025-13-01",
                      "2025-00-10", "2025-01-00", "2000-02-29", "1900-02-29" }
      local zones = { "America/New_York", "UTC", "GMT", "Japan", "EST5EDT", "Etc/GMT+5", "America/Argentina/Buenos_Aires",
                      "America/Port-au-Prince", "America/", "/New_York", "America//New_York", "America/New York", "+05:00",
                      "5America", "", string.rep("A", 65) }
      local function agree(date, zone)
        local plan = ready():csv("phone\n+14155552671\n"):schedule{ date = date, time = "09:00", timezone = zone }
        local params, problems = plan:build()
        local ok = core.validate("campaigns.create", {
          campaignName = "x", agentId = "agent_abc123", sipPhoneNumber = "+14157774444",
          file = core.base64_encode("phoneNumber\n+14155552671\n"), isScheduled = true,
          scheduledDate = date, scheduledTime = "09:00", scheduledTimezone = zone })
        assert.equal(ok == true, params ~= nil and problems == nil,
                     string.format("%s %s: core %s, build %s", date, zone, tostring(ok),
                                   table.concat(problems or {}, "; ")))
      end
      for _, d in ipairs(dates) do agree(d, "UTC") end
      for _, z in ipairs(zones) do agree("2025-09-01", z) end
    end)

    it("is fatal: the client must not send such a plan", function()
      local _, _, fatal = build.campaign("x"):caller("+14157774444"):csv("phone\n+14155552671\n"):build()
      assert.equal("agentId: required", fatal)
    end)
  end)

  describe("the campaign CSV rules", function()
    it("refuses a CSV without a phone column", function()
      local _, problems, fatal = ready():csv("name,mobile\nAda,+14155552671\n"):build()
      assert.same({ "file: CSV has no phone number column " ..
                    "(expected one of: phoneNumber, phone_number, phone, toPhoneNumber, to)" }, problems)
      assert.equal(problems[1], fatal)
    end)

    it("treats an empty CSV as one without a phone column", function()
      assert.same({ "file: CSV has no phone number column " ..
                    "(expected one of: phoneNumber, phone_number, phone, toPhoneNumber, to)" }, csv_problems(""))
    end)

    it("refuses a CSV with a header and no data rows, blank lines not counting", function()
      local _, problems, fatal = ready():csv("phoneNumber,name\r\n\r\n\n"):build()
      assert.same({ "file: CSV has no contacts" }, problems)
      assert.equal("file: CSV has no contacts", fatal)
      assert.same({ "file: CSV has no contacts" }, (select(2, ready():contacts({}):build())))
    end)

    it("reports malformed CSV as a fatal file problem with its line", function()
      local _, problems, fatal = ready():csv('phone,name\n+14155552671,"Ada\n'):build()
      assert.same({ "file: csv: line 2: unterminated quoted field" }, problems)
      assert.equal(problems[1], fatal)
    end)

    it("finds the phone column under each accepted name, ignoring case and surrounding spaces", function()
      for _, name in ipairs{ "phoneNumber", "phone_number", "phone", "toPhoneNumber", "to", "PHONENUMBER",
                             " Phone_Number ", "\tTo" } do
        local header = name:find("[ \t]") and ('"' .. name .. '"') or name
        local report = ready():csv("name," .. header .. "\nAda,+14155552671\n"):report()
        assert.same({ contacts = 1, rows = 1, problems = {} }, report, name)
      end
    end)

    it("uses the first header cell that names a phone column; later ones are variables", function()
      local plan = ready():csv("to,phone\n+14155552671,\n+14155552672,x\n")
      local _, problems = plan:build()
      assert.same({ "Row 1: missing required variable 'phone'" }, problems)
      local good, numbers = plan:good_rows()
      assert.same({ { to = "+14155552672", phone = "x" } }, good)
      assert.same({ 2 }, numbers)
    end)

    it("numbers data rows from 1, skipping blank lines, and counts a multi-line record once", function()
      local text = "phone,note\r\n\r\n+1234,a\r\n\r\n\r\n+14155552671,\"two\r\nlines\"\r\nbad,b\r\n"
      assert.same({ "Row 1: invalid phone number '+1234'", "Row 3: invalid phone number 'bad'" },
                  csv_problems(text))
    end)

    it("reports a row whose field count differs from the header, and checks nothing else in it", function()
      local text = "phone,name,plan\n+14155552671,Ada\n,,,\n+14155552672,Bob,Basic\n"
      assert.same({ "Row 1: expected 3 columns, got 2", "Row 2: expected 3 columns, got 4" }, csv_problems(text))
    end)

    it("reports an empty phone cell, spaces only counting as empty", function()
      assert.same({ "Row 1: missing phone number", "Row 2: missing phone number" },
                  csv_problems('phone,name\n,Ada\n"   ",Bob\n'))
    end)

    it("quotes an invalid phone cell as given, untrimmed", function()
      local text = 'phone,name\n" +1234 ",a\n14155552671,b\n+04155552671,c\n+1415555267100000,d\n+1-415-555,e\n'
      assert.same({ "Row 1: invalid phone number ' +1234 '", "Row 2: invalid phone number '14155552671'",
                    "Row 3: invalid phone number '+04155552671'", "Row 4: invalid phone number '+1415555267100000'",
                    "Row 5: invalid phone number '+1-415-555'" }, csv_problems(text))
    end)

    it("accepts a valid phone with surrounding spaces and the shortest and longest E.164 lengths", function()
      local report = ready():csv('phone\n" +14155552671 "\n+1234567\n+123456789012345\n'):report()
      assert.same({ contacts = 3, rows = 3, problems = {} }, report)
    end)

    it("reports a duplicate of an earlier good row, with the trimmed number", function()
      local text = 'phone,name\n+14155552671,Ada\n" +14155552671",Bob\n+14155552671,Cy\n'
      assert.same({ "Row 2: duplicate phone number '+14155552671'", "Row 3: duplicate phone number '+14155552671'" },
                  csv_problems(text))
    end)

    it("does not count a number from a row with problems as used", function()
      local text = "phone,name\n+14155552671,\n+14155552671,Bob\n"
      assert.same({ "Row 1: missing required variable 'name'" }, csv_problems(text))
      assert.same({ { phone = "+14155552671", name = "Bob" } }, (ready():csv(text):good_rows()))
    end)

    it("reports each empty variable cell that dynamicVariables does not supply, in header order", function()
      local text = "name,phone,plan,city\n,+14155552671,,\n  ,+14155552672,Gold,Paris\n"
      assert.same({ "Row 1: missing required variable 'name'", "Row 1: missing required variable 'plan'",
                    "Row 1: missing required variable 'city'", "Row 2: missing required variable 'name'" },
                  csv_problems(text))
      assert.same({ "Row 1: missing required variable 'name'", "Row 2: missing required variable 'name'" },
                  csv_problems(text, { plan = "Basic", city = "Lyon", name = "  " }))
      assert.is_nil(csv_problems(text, { plan = "Basic", city = "Lyon", name = "Friend" }))
    end)

    it("lists a row's phone problem before its variable problems", function()
      assert.same({ "Row 1: invalid phone number '+1234'", "Row 1: missing required variable 'name'",
                    "Row 2: missing phone number", "Row 2: missing required variable 'name'" },
                  csv_problems("phone,name\n+1234,\n,\n"))
    end)

    it("words every problem exactly, in row order, for a mixed file", function()
      local text = table.concat({
        "phoneNumber,customer_name,plan_type",
        "+14155550001,Ada,Basic",          -- 1 good
        "+1234,Bob,Basic",                 -- 2 invalid
        "",                                -- blank: not a row
        ",Cy,Gold",                        -- 3 missing phone
        "+14155550001,Dee,Gold",           -- 4 duplicate
        "+14155550005,,Gold",              -- 5 missing variable
        "+14155550006,Eve",                -- 6 field count
        "+14155550007,Fay,",               -- 7 plan_type supplied by the campaign
      }, "\r\n") .. "\r\n"
      local plan = ready():csv(text):variables{ plan_type = "Premium" }
      local _, problems, fatal = plan:build()
      assert.same({ "Row 2: invalid phone number '+1234'", "Row 3: missing phone number",
                    "Row 4: duplicate phone number '+14155550001'", "Row 5: missing required variable 'customer_name'",
                    "Row 6: expected 3 columns, got 2" }, problems)
      assert.is_nil(fatal)   -- row problems alone: the server skips those rows
      assert.same({ contacts = 2, rows = 7, problems = problems }, plan:report())
      local good, numbers = plan:good_rows()
      assert.same({ { phoneNumber = "+14155550001", customer_name = "Ada", plan_type = "Basic" },
                    { phoneNumber = "+14155550007", customer_name = "Fay", plan_type = "" } }, good)
      assert.same({ 1, 7 }, numbers)
    end)

    it("keeps the file as given even when some rows have problems", function()
      local text = "phone\n+1234\n+14155552671\n"
      local params = ready():csv(text):build()
      assert.equal(text, coreutils_unbase64(params.file))
    end)

    it("makes a plan fatal when not one row is a contact", function()
      local _, problems, fatal = ready():csv("phone,name\n+1234,a\n,b\n"):build()
      assert.same({ "Row 1: invalid phone number '+1234'", "Row 2: missing phone number" }, problems)
      assert.equal("file: none of the 2 rows is a contact (every row has a problem)", fatal)
    end)

    it("gives rows from :contacts exactly the problems of the same CSV text", function()
      local rows = {
        { phoneNumber = "+14155550001", customer_name = "Ada", plan_type = "Basic" },
        { phoneNumber = "+1234", customer_name = "Bob", plan_type = "" },
        { customer_name = "Cy", plan_type = "Gold" },
        { phoneNumber = " +14155550001 ", customer_name = "Dee", plan_type = "Gold" },
        { phoneNumber = "+14155550005", customer_name = "", plan_type = "Gold" },
        { phoneNumber = 14155550006, customer_name = "Num", plan_type = "Gold" },
        { phoneNumber = "+14155550007", customer_name = "Fay, \"F\"\nline two" },
      }
      local text = "phoneNumber,customer_name,plan_type\n" ..
                   "+14155550001,Ada,Basic\n+1234,Bob,\n,Cy,Gold\n\" +14155550001 \",Dee,Gold\n" ..
                   "+14155550005,,Gold\n14155550006,Num,Gold\n+14155550007,\"Fay, \"\"F\"\"\nline two\",\n"
      local from_rows = ready():contacts(rows):build()
      local _, p_rows = ready():contacts(rows):build()
      local _, p_text = ready():csv(text):build()
      assert.same(p_text, p_rows)
      assert.same({ "Row 2: invalid phone number '+1234'", "Row 2: missing required variable 'plan_type'",
                    "Row 3: missing phone number", "Row 4: duplicate phone number '+14155550001'",
                    "Row 5: missing required variable 'customer_name'",
                    "Row 6: invalid phone number '14155550006'", "Row 7: missing required variable 'plan_type'" },
                  p_rows)
      assert.same(ready():contacts(rows):report(), ready():csv(text):report())
      assert.same(csv.decode(text), csv.decode(coreutils_unbase64(from_rows.file)))
    end)

    it("checks a CSV on its own with check_csv", function()
      local r = build.check_csv("phone,name\n+14155552671,\n", { name = "x" })
      assert.same({ contacts = 1, rows = 1, problems = {} },
                  { contacts = r.contacts, rows = r.rows, problems = r.problems })
    end)
  end)

  describe("misuse", function()
    it("raises, blaming the caller, naming the method and the expected type", function()
      local plan = ready()
      local cases = {
        { function() plan:agent(5) end, "campaign:agent: expected a string, got number" },
        { function() plan:caller(nil) end, "campaign:caller: expected a string, got nil" },
        { function() plan:name({}) end, "campaign:name: expected a string, got table" },
        { function() plan:concurrency("5") end, "campaign:concurrency: expected a number, got string" },
        { function() plan:variables("x") end, "campaign:variables: expected a table, got string" },
        { function() plan:variables{ [1] = "x" } end, "campaign:variables: variable names must be strings, got number" },
        { function() plan:schedule("tomorrow") end, "campaign:schedule: expected a table, got string" },
        { function() plan:schedule{ day = "x" } end,
          "campaign:schedule: unknown key 'day' (expected date, time, timezone)" },
        { function() plan:schedule{ date = 20250901 } end, "campaign:schedule: date: expected a string, got number" },
        { function() plan:contacts("rows") end, "campaign:contacts: expected a table, got string" },
        { function() plan:contacts{ "x" } end, "campaign:contacts: row 1: expected a table, got string" },
        { function() plan:contacts{ { phone = {} } } end,
          "campaign:contacts: row 1, column 'phone': expected a string, number or boolean, got table" },
        { function() plan:csv(42) end, "campaign:csv: expected a string, got number" },
        { function() plan:csv_file(false) end, "campaign:csv_file: expected a string, got boolean" },
        { function() plan:set(1, "x") end, "campaign:set: expected a string, got number" },
        { function() plan:set("file", "eA==") end,
          "campaign:set: 'file' is made from :contacts(rows), :csv(text) or :csv_file(path)" },
        { function() plan:set("dynamicVariables", "x") end, "campaign:set: expected a table, got string" },
        { function() build.campaign(42) end, "campaign: expected a string (the campaign name), got number" },
        { function() plan.agent("agent_abc123") end, "campaign:agent: call it as a method (plan:agent(...))" },
        { function() build.call("x") end, "call: expected a table, got string" },
        { function() build.call{ form = "+14155552671" } end,
          "call: unknown field 'form' (expected from, to, agent, variables or the API's own names; use :set for others)" },
        { function() build.call{ from = "+14155552671", fromPhoneNumber = "+14155552672" } end,
          "call: 'from' and 'fromPhoneNumber' both given, with different values" },
        { function() build.call{ variables = "x" } end, "call: variables: expected a table, got string" },
        { function() build.call():to(14155552671) end, "call:to: expected a string, got number" },
      }
      for i, case in ipairs(cases) do
        local msg, blamed_here = raised(case[1])
        assert.equal(case[2], msg, "case " .. i)
        assert.is_true(blamed_here, "case " .. i .. " should blame the spec line")
      end
    end)
  end)

  describe("call plans", function()
    it("take the short aliases and build the POST /v1/calls body", function()
      local plan = build.call{ from = "+14157774444", to = "+12137774445", agent = "agent_abc123",
                               variables = { customer_name = "John" } }
      local params, problems, fatal = plan:build()
      assert.is_nil(problems)
      assert.is_nil(fatal)
      assert.same({ fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445", agentId = "agent_abc123",
                    dynamicVariables = { customer_name = "John" } }, params)
      assert.is_nil(getmetatable(params))
    end)

    it("take the API's own names too, and chain", function()
      local params = build.call{ fromPhoneNumber = "+14157774444", from = "+14157774444" }
        :to "+12137774445" :agent "agent_abc123" :variables{ a = "1" } :variables{ b = "2" } :set("extra", true)
        :build()
      assert.same({ fromPhoneNumber = "+14157774444", toPhoneNumber = "+12137774445", agentId = "agent_abc123",
                    dynamicVariables = { a = "1", b = "2" }, extra = true }, params)
    end)

    it("leave agentId out when not given (the number's outbound agent answers)", function()
      local params, problems = build.call{ from = "+14157774444", to = "+12137774445" }:build()
      assert.is_nil(problems)
      assert.is_nil(params.agentId)
    end)

    it("report missing and malformed numbers and an over-long agentId, all fatal", function()
      local _, problems, fatal = build.call{ to = "12137774445", agent = string.rep("a", 65) }:build()
      assert.same({ "fromPhoneNumber: required",
                    'toPhoneNumber: expected an E.164 phone number like +14155552671, got "12137774445"',
                    "agentId: expected at most 64 characters, got 65" }, problems)
      assert.equal("fromPhoneNumber: required", fatal)
    end)

    it("copy their input", function()
      local input = { from = "+14157774444", to = "+12137774445", variables = { a = "1" } }
      local plan = build.call(input)
      input.variables.a = "changed"
      plan:variables{ b = "2" }
      assert.same({ a = "changed" }, input.variables)
      assert.same({ a = "1", b = "2" }, (plan:build()).dynamicVariables)
    end)
  end)

  describe("is_plan", function()
    it("recognises campaign and call plans and anything with a build method, not plain params", function()
      assert.is_true(build.is_plan(build.campaign "x"))
      assert.is_true(build.is_plan(build.call()))
      assert.is_true(build.is_plan({ build = function() end }))
      assert.is_false(build.is_plan({ campaignName = "x" }))
      assert.is_false(build.is_plan("x"))
      assert.is_false(build.is_plan(nil))
    end)
  end)

  describe("base64 of the file", function()
    local VECTORS = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==", fooba = "Zm9vYmE=",
                      foobar = "Zm9vYmFy" }

    it("matches the RFC 4648 test vectors, in pure Lua and through base64_encode", function()
      for input, want in pairs(VECTORS) do
        assert.equal(want, build._base64_lua(input))
        assert.equal(want, build.base64_encode(input))
      end
    end)

    it("matches coreutils' base64 on random bytes of every length remainder (seeded)", function()
      math.randomseed(4648)
      for _, len in ipairs{ 1, 2, 3, 4, 5, 255, 256, 257, 12287, 12288, 12289, 100000 } do
        local bytes = {}
        for i = 1, len do bytes[i] = string.char(math.random(0, 255)) end
        local s = table.concat(bytes)
        local want = coreutils_base64(s)
        assert.equal(want, build._base64_lua(s), "length " .. len)
        assert.equal(want, build.base64_encode(s), "length " .. len)
      end
    end)
  end)
end)
