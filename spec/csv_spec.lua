-- sigmamind.csv: RFC 4180 encoding and decoding of contact lists.
local csv = require "sigmamind.csv"

local function snapshot(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

describe("sigmamind.csv", function()
  it("loads without writing any global", function()
    local before = snapshot(_G)
    package.loaded["sigmamind.csv"] = nil
    local fresh = require "sigmamind.csv"
    assert.is_table(fresh)
    assert.same(before, snapshot(_G))
  end)

  describe("encode", function()
    it("writes a header and CRLF-terminated records", function()
      assert.equal("a,b\r\n1,2\r\n", csv.encode({ { a = "1", b = "2" } }, { "a", "b" }))
    end)

    it("quotes cells with commas, quotes, CR, LF and leading or trailing spaces, doubling quotes", function()
      local text = csv.encode({ { v = "a,b" }, { v = 'say "hi"' }, { v = "two\r\nlines" }, { v = "lf\nonly" },
                                { v = "cr\ronly" }, { v = " lead" }, { v = "trail " }, { v = "\ttab" },
                                { v = "in side" } }, { "v" })
      assert.equal('v\r\n"a,b"\r\n"say ""hi"""\r\n"two\r\nlines"\r\n"lf\nonly"\r\n"cr\ronly"\r\n" lead"\r\n' ..
                   '"trail "\r\n"\ttab"\r\nin side\r\n', text)
    end)

    it("writes numbers and booleans with tostring and nil as an empty cell", function()
      assert.equal("a,b,c,d\r\n42,true,,1.5\r\n", csv.encode({ { a = 42, b = true, d = 1.5 } }, { "a", "b", "c", "d" }))
    end)

    it("defaults to the sorted union of the rows' keys with the phone column first", function()
      local text = csv.encode({ { zeta = "z", phone = "+14155552671" }, { alpha = "a", phone = "+14155552672" } })
      assert.equal("phone,alpha,zeta\r\n+14155552671,,z\r\n+14155552672,a,\r\n", text)
    end)

    it("picks phoneNumber before the other phone spellings when several are present", function()
      local text = csv.encode({ { to = "x", phoneNumber = "+14155552671", name = "n" } })
      assert.equal("phoneNumber,name,to\r\n+14155552671,n,x\r\n", text)
    end)

    it("keeps column order sorted when there is no phone column", function()
      assert.equal("a,b\r\n1,2\r\n", csv.encode({ { b = "2", a = "1" } }))
    end)

    it("writes a lone empty cell as \"\" so that it is not read back as a blank line", function()
      local text = csv.encode({ { v = "" }, { v = "x" } }, { "v" })
      assert.equal('v\r\n""\r\nx\r\n', text)
      local rows = csv.decode(text)
      assert.same({ { v = "" }, { v = "x" } }, rows)
    end)

    it("returns an empty string when there are no columns", function()
      assert.equal("", csv.encode({}))
    end)

    it("does not change the rows or columns it is given", function()
      local rows = { { b = 1, a = "x" } }
      local cols = { "b", "a" }
      csv.encode(rows, cols)
      assert.same({ { b = 1, a = "x" } }, rows)
      assert.same({ "b", "a" }, cols)
    end)

    it("raises, blaming the caller, on rows that are not tables and on unwritable values", function()
      assert.has_error(function() csv.encode("x") end,
                       "csv.encode: rows: expected a table (array of rows), got string")
      local ok, err = pcall(function() csv.encode({ { a = {} } }, { "a" }) end)
      assert.is_false(ok)
      assert.equal("csv_spec.lua:" .. debug.getinfo(1, "l").currentline - 2 ..
                   ": csv.encode: row 1, column 'a': expected a string, number or boolean, got table",
                   err:match("[^/]*$"))
      assert.has_error(function() csv.encode({ 5 }) end, "csv.encode: row 1: expected a table, got number")
    end)
  end)

  describe("decode", function()
    it("returns rows keyed by the header, and the header", function()
      local rows, header = csv.decode("phoneNumber,name\r\n+14155552671,Ada\r\n+14155552672,Bob\r\n")
      assert.same({ "phoneNumber", "name" }, header)
      assert.same({ { phoneNumber = "+14155552671", name = "Ada" }, { phoneNumber = "+14155552672", name = "Bob" } },
                  rows)
    end)

    it("accepts LF line ends and a last record without a line end", function()
      local rows = csv.decode("a,b\n1,2\n3,4")
      assert.same({ { a = "1", b = "2" }, { a = "3", b = "4" } }, rows)
    end)

    it("reads quoted fields with commas, doubled quotes and embedded CRLF", function()
      local rows = csv.decode('a,b\r\n"x, y","He said ""hi"""\r\n"line 1\r\nline 2",z\r\n')
      assert.same({ { a = "x, y", b = 'He said "hi"' }, { a = "line 1\r\nline 2", b = "z" } }, rows)
    end)

    it("skips a UTF-8 byte order mark", function()
      local rows, header = csv.decode("\239\187\191phone,name\r\n+14155552671,x\r\n")
      assert.same({ "phone", "name" }, header)
      assert.equal("+14155552671", rows[1].phone)
    end)

    it("passes UTF-8 through untouched", function()
      local text = "name,city\r\nZoë Ångström,\"東京, 日本\"\r\nМария,Київ\r\n"
      local rows = csv.decode(text)
      assert.same({ { name = "Zoë Ångström", city = "東京, 日本" }, { name = "Мария", city = "Київ" } }, rows)
      assert.equal(text, csv.encode(rows, { "name", "city" }))
    end)

    it("skips blank lines, CRLF or LF, wherever they are", function()
      local rows = csv.decode("\r\na,b\r\n\r\n1,2\n\n\n3,4\r\n\r\n")
      assert.same({ { a = "1", b = "2" }, { a = "3", b = "4" } }, rows)
    end)

    it("keeps a record of empty cells (it is not a blank line)", function()
      local rows = csv.decode("a,b\r\n,\r\n")
      assert.same({ { a = "", b = "" } }, rows)
    end)

    it("keeps a lone CR inside an unquoted field as data", function()
      local rows = csv.decode("a,b\r\nx\ry,z\r\n")
      assert.equal("x\ry", rows[1].a)
    end)

    it("leaves missing cells of a short record absent and drops cells beyond the header", function()
      local rows = csv.decode("a,b,c\r\n1\r\n1,2,3,4\r\n")
      assert.same({ { a = "1" }, { a = "1", b = "2", c = "3" } }, rows)
    end)

    it("decodes an empty text to no rows and no header", function()
      local rows, header = csv.decode("")
      assert.same({}, rows)
      assert.same({}, header)
    end)

    it("reports an unterminated quote with the line where the field starts", function()
      local rows, err = csv.decode('a,b\r\n1,2\r\n"open,\r\nmore\r\n')
      assert.is_nil(rows)
      assert.equal("csv: line 3: unterminated quoted field", err)
    end)

    it("reports a stray quote inside an unquoted field with its line", function()
      local rows, err = csv.decode('a,b\n1,2\n\n3,4"5\n')
      assert.is_nil(rows)
      assert.equal("csv: line 4: stray quote in an unquoted field", err)
    end)

    it("reports text after a closing quote, counting lines inside earlier quoted fields", function()
      local rows, err = csv.decode('a,b\n"x\ny\nz",1\n"q"r,2\n')
      assert.is_nil(rows)
      assert.equal("csv: line 5: unexpected character after a closing quote", err)
    end)

    it("raises when given something other than a string", function()
      assert.has_error(function() csv.decode(nil) end, "csv.decode: expected a string, got nil")
    end)
  end)

  describe("records", function()
    it("returns raw records, header included, and the line each record starts on", function()
      local records, lines = csv.records('phone,note\r\n\r\n+14155552671,"two\r\nlines"\r\n+14155552672,x,extra\r\n')
      assert.same({ { "phone", "note" }, { "+14155552671", "two\r\nlines" }, { "+14155552672", "x", "extra" } },
                  records)
      assert.same({ 1, 3, 5 }, lines)
    end)

    it("counts a trailing comma as one more, empty, field", function()
      assert.same({ { "a", "b", "" }, { "1", "", "" } }, (csv.records('a,b,\n1,"",')))
    end)
  end)

  describe("round trips", function()
    local ALPHABET = { "a", "b", "Z", "0", " ", ",", '"', "\r", "\n", "\r\n", "é", "日", "\t", "+", "'", ";" }

    local function random_cell()
      local n = math.random(0, 12)
      local parts = {}
      for i = 1, n do parts[i] = ALPHABET[math.random(#ALPHABET)] end
      return table.concat(parts)
    end

    it("decode(encode(rows)) gives back exactly the rows, for 500 random tables (seeded)", function()
      math.randomseed(4180)
      for _ = 1, 500 do
        local ncols = math.random(1, 6)
        local cols = {}
        for j = 1, ncols do cols[j] = "col" .. j .. random_cell() end
        local rows = {}
        for i = 1, math.random(0, 8) do
          local row = {}
          for j = 1, ncols do row[cols[j]] = random_cell() end
          rows[i] = row
        end
        local text = csv.encode(rows, cols)
        local back, header = csv.decode(text)
        assert.same(cols, header)
        assert.same(rows, back)
      end
    end)

    it("decodes a 100,000-row file", function()
      local rows = {}
      for i = 1, 100000 do
        rows[i] = { phoneNumber = string.format("+1415%07d", i), customer_name = "Customer " .. i,
                    plan = (i % 10 == 0) and "Premium, Gold" or "Basic",
                    note = (i % 7 == 0) and 'said "call back"\r\nlater' or "" }
      end
      local text = csv.encode(rows)
      local back, header = csv.decode(text)
      assert.same({ "phoneNumber", "customer_name", "note", "plan" }, header)
      assert.equal(100000, #back)
      assert.same(rows[70], back[70])
      assert.same(rows[100000], back[100000])
    end)
  end)
end)
