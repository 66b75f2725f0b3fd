-- make bench: the performance scenarios of issue 7, against sandboxes it starts and stops itself.
-- Prints `bench NAME VALUE UNIT` and `ratio NAME VALUE` lines, then a table for people. See bench/README.md.
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"

local LUA = os.getenv("LUA") or "lua5.4"
local PYTHON = "/usr/bin/python3"
local SCALE = tonumber(os.getenv("BENCH_SCALE") or "1") or error("BENCH_SCALE: expected a number")
local ROUNDS = 8            -- create_seq peers take turns this many times, so drift on the machine hits all alike

local string_format, table_concat = string.format, table.concat
local function scaled(n, min) return math.max(min or 1, math.floor(n * SCALE + 0.5)) end

local N_SEQ      = scaled(20000, 30)
local N_C32      = scaled(50000, 64)
local N_PAGINATE = scaled(100000, 200)
local N_CAMPAIGN = scaled(100000, 100)
local CG_WARM, CG_MEASURED = 20, scaled(200, 20)

local BODY = '{"fromPhoneNumber":"+14157774444","toPhoneNumber":"+12137774445","agentId":"agent_abc123",' ..
             '"dynamicVariables":{"customer_name":"John Doe","plan_type":"Premium","account_id":"A-10042"}}'

---------------------------------------------------------------------------------------------------------------
-- helpers

local function log(fmt, ...) io.stderr:write("bench: ", string_format(fmt, ...), "\n") end

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function have(cmd) return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") == true end

-- parses a child's `key=value ...` result line
local function result_of(out)
  local line
  for l in out:gmatch("[^\n]+") do if l:find("^count=") or l:find("^skipped=") then line = l end end
  if not line then return nil end
  local r = {}
  for k, v in line:gmatch("([%w_]+)=(%S+)") do r[k] = tonumber(v) or v end
  return r
end

local figures, ratios, notes = {}, {}, {}
local function figure(name, value, unit)
  figures[name] = value
  local v = (math.abs(value) >= 100 or value == math.floor(value)) and string_format("%d", math.floor(value + 0.5))
            or string_format("%.3f", value)
  print(string_format("bench %s %s %s", name, v, unit))
  io.stdout:flush()
end
local function ratio(name, a, b)
  if not a or not b or b == 0 then return end
  ratios[name] = a / b
  print(string_format("ratio %s %.3f", name, a / b))
  io.stdout:flush()
end
local function note(s) notes[#notes + 1] = s; log("%s", s) end

---------------------------------------------------------------------------------------------------------------
-- the sandbox

local Sandbox = {}
Sandbox.__index = Sandbox

local function start_sandbox()
  local out, code = run("bin/sigmamind-sandbox --port 0 --daemon")
  if code ~= 0 then error("bench: the sandbox did not start:\n" .. out, 0) end
  local sb = setmetatable({}, Sandbox)
  for k, v in out:gmatch("SIGMAMIND_([%w_]+)=([^\n]*)") do sb[k] = v end
  assert(sb.BASE_URL and sb.API_KEY and sb.SANDBOX_PREFIX, "bench: unexpected sandbox output:\n" .. out)
  return sb
end

function Sandbox:env()
  return string_format("SIGMAMIND_BASE_URL=%s SIGMAMIND_API_KEY=%s SIGMAMIND_SANDBOX_NUMBER=%s " ..
                       "SIGMAMIND_SANDBOX_AGENT=%s BENCH_BODY=%s BENCH_KEY=%s BENCH_PAGES=%d ",
                       sh_quote(self.BASE_URL), sh_quote(self.API_KEY), sh_quote(self.SANDBOX_NUMBER),
                       sh_quote(self.SANDBOX_AGENT), sh_quote(BODY), sh_quote(self.API_KEY),
                       math.ceil(N_PAGINATE / 100))
end

function Sandbox:admin(method, path, body)
  local out = {}
  local _, status = http.request{
    url = self.BASE_URL .. path, method = method, sink = ltn12.sink.table(out),
    source = body and ltn12.source.string(body) or nil,
    headers = { ["x-api-key"] = self.API_KEY, ["content-type"] = "application/json",
                ["content-length"] = body and #body or nil },
  }
  if status ~= 200 then error(string_format("bench: %s %s: %s %s", method, path, tostring(status),
                                            table_concat(out)), 0) end
  return table_concat(out)
end

function Sandbox:reset() self:admin("POST", "/_sandbox/reset") end

function Sandbox:stop()
  if self.stopped then return end
  self.stopped = true
  run("bin/sigmamind-sandbox stop --prefix " .. sh_quote(self.SANDBOX_PREFIX))
end

---------------------------------------------------------------------------------------------------------------
-- runners: each returns { count, elapsed, cpu, errors, ... } or nil, reason

local function child(sb, cmd)
  local out, code = run(sb:env() .. cmd)
  local r = result_of(out)
  if code ~= 0 or not r then return nil, out end
  return r
end

local function lua_child(sb, script, ...)
  local args = {}
  for i, a in ipairs{ ... } do args[i] = sh_quote(a) end
  return child(sb, LUA .. " bench/" .. script .. " " .. table_concat(args, " "))
end

-- wrk for `seconds` (whole seconds, wrk's unit) with `conns` connections; requests/s from its summary
local function wrk(sb, script, path, conns, seconds)
  local out, code = run(sb:env() .. string_format("wrk -t1 -c%d -d%ds -s bench/%s %s", conns, seconds, script,
                                                  sh_quote(sb.BASE_URL .. path)))
  local total, secs = out:match("(%d+) requests in ([%d.]+)(m?s)")
  local unit = out:match("%d+ requests in [%d.]+(m?s)")
  if code ~= 0 or not total then return nil, out end
  secs = tonumber(secs) / (unit == "ms" and 1000 or 1)
  local bad = tonumber(out:match("Non%-2xx or 3xx responses: (%d+)") or "0")
  local errs = out:match("Socket errors: ([^\n]+)")
  return { count = tonumber(total), elapsed = secs, errors = bad, socket_errors = errs }
end

local function rate(r) return r and r.count / r.elapsed end

local function check(r, what, out)
  if not r then log("%s failed:\n%s", what, tostring(out)); return nil end
  if (r.errors or 0) > 0 then note(string_format("%s: %d requests failed", what, r.errors)) end
  return r
end

-- adds one round's result into a running total
local function add(total, r)
  if not r then return total end
  total = total or { count = 0, elapsed = 0, cpu = 0, errors = 0 }
  total.count, total.elapsed = total.count + r.count, total.elapsed + r.elapsed
  total.cpu, total.errors = total.cpu + (r.cpu or 0), total.errors + (r.errors or 0)
  return total
end

---------------------------------------------------------------------------------------------------------------
-- scenarios

local results = {}

local function build_libcurl_peer()
  local dir = os.tmpname()
  os.remove(dir)
  local bin = dir .. "-libcurl_create"
  local cflags = run("pkg-config --cflags --libs libcurl 2>/dev/null"):gsub("\n", " ")
  if cflags == "" then cflags = "-lcurl" end
  local out, code = run(string_format("${CC:-cc} -O2 -o %s bench/libcurl_create.c %s", sh_quote(bin), cflags))
  if code ~= 0 then note("libcurl C floor skipped: cannot compile bench/libcurl_create.c: " .. out); return nil end
  return bin
end

local function create_seq(sb)
  log("create_seq: %d creates per peer, %d rounds", N_SEQ, ROUNDS)
  local per_round = math.max(10, math.floor(N_SEQ / ROUNDS + 0.5))
  local python_ok = os.execute(PYTHON .. " -c 'import requests' >/dev/null 2>&1") == true
  if not python_ok then note("python peer skipped: /usr/bin/python3 cannot import requests " ..
                             "(apt-get install python3-requests)") end
  local libcurl_bin = build_libcurl_peer()
  local tot = {}
  for round = 1, ROUNDS do
    sb:reset()
    local ours = check(lua_child(sb, "create_seq.lua", per_round), "create_seq (ours)")
    if not ours then error("bench: create_seq failed", 0) end
    tot.ours = add(tot.ours, ours)
    -- wrk runs as long as ours did (whole seconds), so both see the same amount of sandbox state
    sb:reset()
    tot.wrk = add(tot.wrk, check(wrk(sb, "wrk_create.lua", "/v1/calls", 1,
                                     math.max(1, math.floor(ours.elapsed + 0.5))), "wrk -c1"))
    sb:reset()
    tot.luasocket = add(tot.luasocket, check(lua_child(sb, "luasocket_create.lua", per_round), "luasocket"))
    if python_ok then
      sb:reset()
      tot.python = add(tot.python, check(child(sb, PYTHON .. " bench/python_create.py " .. per_round), "python"))
    end
    if libcurl_bin then
      sb:reset()
      tot.libcurl = add(tot.libcurl, check(child(sb, string_format("%s %s %s %s %d", sh_quote(libcurl_bin),
        sh_quote(sb.BASE_URL .. "/v1/calls"), sh_quote(sb.API_KEY), sh_quote(BODY), per_round)), "libcurl C"))
    end
    log("create_seq round %d/%d: ours %.0f/s, wrk -c1 %.0f/s", round, ROUNDS, rate(ours),
        tot.wrk and rate(tot.wrk) or 0)
  end
  if libcurl_bin then os.remove(libcurl_bin) end
  results.create_seq = tot
  figure("create_seq", rate(tot.ours), "creates/s")
  figure("create_seq_cpu", tot.ours.cpu / tot.ours.count * 1e6, "us/create")
  if tot.wrk then figure("create_seq_wrk_c1", rate(tot.wrk), "requests/s") end
  if tot.luasocket then figure("create_seq_luasocket", rate(tot.luasocket), "creates/s") end
  if tot.python then figure("create_seq_python", rate(tot.python), "creates/s") end
  if tot.libcurl then figure("create_seq_libcurl_c", rate(tot.libcurl), "requests/s") end
  -- client CPU (user + system) per request: where a peer's time goes when the server is not the limit
  if tot.luasocket then figure("create_seq_luasocket_cpu", tot.luasocket.cpu / tot.luasocket.count * 1e6, "us/create") end
  if tot.python then figure("create_seq_python_cpu", tot.python.cpu / tot.python.count * 1e6, "us/create") end
  if tot.libcurl then figure("create_seq_libcurl_c_cpu", tot.libcurl.cpu / tot.libcurl.count * 1e6, "us/request") end
  ratio("create_seq_vs_wrk_c1", rate(tot.ours), rate(tot.wrk))
  ratio("create_seq_vs_luasocket", rate(tot.ours), rate(tot.luasocket))
  ratio("create_seq_vs_python", rate(tot.ours), rate(tot.python))
  ratio("create_seq_vs_libcurl_c", rate(tot.ours), rate(tot.libcurl))
  -- the ceilings for the LuaSocket target on this machine, same run: what a client costing nothing (wrk) and
  -- libcurl's easy interface alone (no Lua, no JSON) reach against the same server
  ratio("create_seq_wrk_c1_vs_luasocket", rate(tot.wrk), rate(tot.luasocket))
  ratio("create_seq_libcurl_c_vs_luasocket", rate(tot.libcurl), rate(tot.luasocket))
end

local function create_c32(sb)
  log("create_c32: %d creates, 32 in flight", N_C32)
  sb:reset()
  local ours, out = lua_child(sb, "create_c32.lua", N_C32, 32)
  local seconds
  if ours and ours.skipped then
    print("bench create_c32 skipped (needs sigmamind.map)")
    results.create_c32_skipped = true
    seconds = math.max(1, math.floor(2 * SCALE + 0.5))
    ours = nil
  elseif not check(ours, "create_c32 (ours)", out) then
    error("bench: create_c32 failed", 0)
  else
    seconds = math.max(1, math.floor(ours.elapsed + 0.5))
  end
  sb:reset()
  local w = check(wrk(sb, "wrk_create.lua", "/v1/calls", 32, seconds), "wrk -c32")
  sb:reset()
  results.create_c32 = { ours = ours, wrk = w }
  if ours then figure("create_c32", rate(ours), "creates/s") end
  if w then figure("create_c32_wrk_c32", rate(w), "requests/s") end
  ratio("create_c32_vs_wrk_c32", rate(ours), rate(w))
end

local function paginate(sb)
  log("paginate: %d seeded calls, size 100", N_PAGINATE)
  sb:reset()
  sb:admin("POST", "/_sandbox/seed", string_format('{"calls":%d}', N_PAGINATE))
  local r = check(lua_child(sb, "paginate.lua", N_PAGINATE), "paginate (ours)")
  if not r then error("bench: paginate failed", 0) end
  -- the server's limit for the same pages on one connection (wrk reads them, decodes nothing)
  local w = check(wrk(sb, "wrk_pages.lua", "/v1/calls", 1, math.max(1, math.floor(r.elapsed + 0.5))),
                  "wrk pages")
  results.paginate = { ours = r, wrk = w }
  figure("paginate", rate(r), "records/s")
  figure("paginate_rss", r.hwm_kb / 1024, "MB")
  figure("paginate_cpu", r.count / r.cpu, "records/cpu-s")
  if w then figure("paginate_wrk_c1", w.count / w.elapsed * 100, "records/s") end
  ratio("paginate_vs_wrk_c1", rate(r), w and w.count / w.elapsed * 100)
  -- the same with prefetch = true: the server works on the next page while the client decodes this one
  local p = check(lua_child(sb, "paginate.lua", N_PAGINATE, "prefetch"), "paginate (ours, prefetch)")
  if p then
    results.paginate.prefetch = p
    figure("paginate_prefetch", rate(p), "records/s")
    figure("paginate_prefetch_rss", p.hwm_kb / 1024, "MB")
  end
  -- does the sandbox slow down as calls pile up? the same wrk -c1 create against N seeded calls
  local grown = check(wrk(sb, "wrk_create.lua", "/v1/calls", 1, 1), "wrk -c1 at N calls")
  if grown then figure("sandbox_create_c1_seeded", rate(grown), "requests/s") end
  sb:reset()
end

local function campaign_build(sb)
  log("campaign_build: %d contacts", N_CAMPAIGN)
  local r = check(lua_child(sb, "campaign_build.lua", N_CAMPAIGN), "campaign_build")
  if not r then error("bench: campaign_build failed", 0) end
  results.campaign_build = r
  figure("campaign_build", r.elapsed, "s")
  figure("campaign_build_rss", r.hwm_kb / 1024, "MB")
  figure("campaign_build_body", r.bytes / 1048576, "MB")
end

-- Ir by object, for one run of callgrind_create.lua with n creates
local function callgrind(sb, n)
  local out_file = os.tmpname()
  sb:reset()
  local out, code = run(sb:env() .. string_format(
    "valgrind --tool=callgrind --callgrind-out-file=%s %s bench/callgrind_create.lua %d",
    sh_quote(out_file), LUA, n))
  if code ~= 0 then os.remove(out_file); return nil, out end
  local sums = {}
  local listing = run(LUA .. " bench/callgrind_objects.lua " .. sh_quote(out_file))
  os.remove(out_file)
  for obj, ir in listing:gmatch("([^\t\n]+)\t(%d+)") do sums[obj] = tonumber(ir) end
  return sums
end

-- which part of the process an object belongs to (README: "instructions_per_create")
local function part_of(obj)
  local base = obj:match("([^/]+)$") or obj
  if base == "core.so" then return "core"
  elseif base:find("^lua5%.4$") or base:find("^liblua5%.4%.so") then return "lua"
  elseif base:find("cjson") then return "cjson"
  elseif base:find("^libcurl") then return "libcurl"
  elseif base:find("^libssl") or base:find("^libcrypto") then return "openssl"
  elseif base:find("^libc%.so") or base:find("^libm%.so") then return "libc"
  elseif base:find("^ld%-linux") then return "ld.so"
  end
  return "other"
end

local PARTS = { "core", "lua", "cjson", "libcurl", "openssl", "libc", "ld.so", "other" }

local function instructions(sb)
  if not have("valgrind") then note("instructions_per_create skipped: valgrind not installed"); return end
  log("instructions_per_create: callgrind, %d and %d creates", CG_WARM, CG_WARM + CG_MEASURED)
  local a, aerr = callgrind(sb, CG_WARM)
  local b, berr = callgrind(sb, CG_WARM + CG_MEASURED)
  sb:reset()
  if not a or not b then log("callgrind failed:\n%s", tostring(aerr or berr)); return end
  local per = {}
  for _, p in ipairs(PARTS) do per[p] = 0 end
  for obj, ir in pairs(b) do local p = part_of(obj); per[p] = per[p] + ir end
  for obj, ir in pairs(a) do local p = part_of(obj); per[p] = per[p] - ir end
  local total, ours = 0, 0
  for _, p in ipairs(PARTS) do
    per[p] = per[p] / CG_MEASURED
    total = total + per[p]
  end
  ours = per.core + per.lua + per.cjson
  results.instructions = { ours = ours, total = total, per = per }
  figure("instructions_per_create", math.floor(ours + 0.5), "instructions")
  figure("instructions_per_create_total", math.floor(total + 0.5), "instructions")
  for _, p in ipairs(PARTS) do
    figure("instructions_per_create_" .. p:gsub("%.", ""), math.floor(per[p] + 0.5), "instructions")
  end
end

---------------------------------------------------------------------------------------------------------------
-- the table

local function fmt(v, unit)
  if v == nil then return "-" end
  if v >= 100 then return string_format("%d %s", math.floor(v + 0.5), unit) end
  return string_format("%.2f %s", v, unit)
end

local function mark(ok) if ok == nil then return "?" end return ok and "✓" or "✗" end

local function report()
  local rows = {}
  local function row(what, value, target, ok) rows[#rows + 1] = { what, value, target, ok == nil and "-" or mark(ok) } end
  local seq = results.create_seq
  if seq then
    row("create_seq (ours)", fmt(rate(seq.ours), "/s"), "", nil)
    if seq.wrk then row("  vs wrk -t1 -c1", string_format("%.2f× (%s)", ratios.create_seq_vs_wrk_c1,
      fmt(rate(seq.wrk), "/s")), "≥ 0.75×", ratios.create_seq_vs_wrk_c1 >= 0.75) end
    if seq.luasocket then row("  vs LuaSocket + cjson", string_format("%.2f× (%s)", ratios.create_seq_vs_luasocket,
      fmt(rate(seq.luasocket), "/s")), "≥ 1.5×", ratios.create_seq_vs_luasocket >= 1.5) end
    if seq.python then row("  vs Python requests", string_format("%.2f× (%s)", ratios.create_seq_vs_python,
      fmt(rate(seq.python), "/s")), "≥ 4×", ratios.create_seq_vs_python >= 4)
    else row("  vs Python requests", "skipped (python3-requests)", "≥ 4×", nil) end
    if seq.libcurl then row("  vs libcurl easy loop in C", string_format("%.2f× (%s)", ratios.create_seq_vs_libcurl_c,
      fmt(rate(seq.libcurl), "/s")), "(diagnostic)", nil) end
    if seq.luasocket and seq.wrk then row("  ceiling: wrk -c1 vs LuaSocket", string_format("%.2f×",
      ratios.create_seq_wrk_c1_vs_luasocket), "(diagnostic)", nil) end
    if seq.luasocket and seq.libcurl then row("  ceiling: libcurl C vs LuaSocket", string_format("%.2f×",
      ratios.create_seq_libcurl_c_vs_luasocket), "(diagnostic)", nil) end
  end
  local c32 = results.create_c32
  if c32 then
    if c32.ours then
      row("create_c32 vs wrk -t1 -c32", string_format("%.2f× (%s vs %s)", ratios.create_c32_vs_wrk_c32,
        fmt(rate(c32.ours), "/s"), fmt(rate(c32.wrk), "/s")), "≥ 0.5×", ratios.create_c32_vs_wrk_c32 >= 0.5)
    else
      row("create_c32", "skipped (needs sigmamind.map); wrk -c32 " .. fmt(rate(c32.wrk), "/s"), "≥ 0.5×", nil)
    end
  end
  local pg = results.paginate
  if pg then
    row("paginate", fmt(rate(pg.ours), "records/s"), "≥ 200000/s", rate(pg.ours) >= 200000)
    row("  peak RSS", fmt(pg.ours.hwm_kb / 1024, "MB"), "< 40 MB", pg.ours.hwm_kb / 1024 < 40)
    if pg.prefetch then
      row("paginate, prefetch = true", fmt(rate(pg.prefetch), "records/s"), "≥ 200000/s", rate(pg.prefetch) >= 200000)
      row("  peak RSS", fmt(pg.prefetch.hwm_kb / 1024, "MB"), "< 40 MB", pg.prefetch.hwm_kb / 1024 < 40)
    end
    if pg.wrk then row("  server limit (wrk -c1, same pages)", fmt(pg.wrk.count / pg.wrk.elapsed * 100, "records/s"),
                       "", nil) end
  end
  local cb = results.campaign_build
  if cb then
    row("campaign_build", fmt(cb.elapsed, "s"), "< 1 s", cb.elapsed < 1)
    row("  peak RSS", fmt(cb.hwm_kb / 1024, "MB"), "< 100 MB", cb.hwm_kb / 1024 < 100)
  end
  local ins = results.instructions
  if ins then
    row("instructions/create (ours)", fmt(ins.ours, "Ir"), "", nil)
    row("  all objects", fmt(ins.total, "Ir"), "", nil)
  end
  local w = { 0, 0, 0 }
  for _, r in ipairs(rows) do
    for i = 1, 3 do w[i] = math.max(w[i], utf8.len(r[i]) or #r[i]) end
  end
  local function pad(s, n) return s .. string.rep(" ", n - (utf8.len(s) or #s)) end
  print("")
  print(string_format("BENCH_SCALE=%s on %s", tostring(SCALE), os.getenv("BENCH_MACHINE") or "this machine"))
  print(pad("scenario", w[1]) .. "  " .. pad("measured", w[2]) .. "  " .. pad("target", w[3]) .. "  met")
  for _, r in ipairs(rows) do print(pad(r[1], w[1]) .. "  " .. pad(r[2], w[2]) .. "  " .. pad(r[3], w[3]) .. "  " .. r[4]) end
  for _, n in ipairs(notes) do print("note: " .. n) end
end

---------------------------------------------------------------------------------------------------------------

local function main()
  for _, tool in ipairs{ "wrk" } do
    if not have(tool) then error("bench: " .. tool .. " is not installed (apt-get install " .. tool .. ")", 0) end
  end
  local cpu = run("grep -m1 'model name' /proc/cpuinfo"):match(":%s*(.-)%s*$") or "?"
  local nproc = run("nproc"):match("%d+") or "?"
  log("BENCH_SCALE=%s, %s CPUs, %s", tostring(SCALE), nproc, cpu)
  local t0 = socket.gettime()
  local sb = start_sandbox()
  local ok, err = pcall(function()
    create_seq(sb)
    create_c32(sb)
    paginate(sb)
    campaign_build(sb)
    instructions(sb)
  end)
  sb:stop()
  if not ok then error(err, 0) end
  figure("bench_wall", socket.gettime() - t0, "s")
  report()
end

main()
