-- make bench: the performance scenarios of bench/README.md, against a sandbox it starts and stops
-- itself. Prints `bench NAME VALUE UNIT` and `ratio NAME VALUE` lines, then a table for people.
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"

local LUA = os.getenv("LUA") or "lua5.4"
local PYTHON = "/usr/bin/python3"
local SCALE = tonumber(os.getenv("BENCH_SCALE") or "1") or error("BENCH_SCALE: expected a number")
local ROUNDS = 8            -- create_seq peers take turns this many times, so drift on the machine hits all alike
local ROUNDS_SHORT = 4      -- the same for create_c32 and the TLS scenarios, where wrk's whole seconds dominate

local string_format, table_concat = string.format, table.concat
local function scaled(n, min) return math.max(min or 1, math.floor(n * SCALE + 0.5)) end

local N_SEQ      = scaled(20000, 30)
local N_C32      = scaled(50000, 64)
local N_TLS_SEQ  = scaled(10000, 30)
local N_TLS_C32  = scaled(25000, 64)
local N_LUASEC   = scaled(400, 16)  -- LuaSocket + LuaSec stalls ~40 ms a request (README), so fewer of them
local N_PAGINATE = scaled(100000, 200)
local N_CAMPAIGN = scaled(100000, 100)
local CG_WARM, CG_MEASURED = 20, scaled(200, 20)
local CG_WARM_C32 = 64

local BODY = '{"fromPhoneNumber":"+14157774444","toPhoneNumber":"+12137774445","agentId":"agent_abc123",' ..
             '"dynamicVariables":{"customer_name":"John Doe","plan_type":"Premium","account_id":"A-10042"}}'

----------------------------------------------------------------------------------------------------
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

----------------------------------------------------------------------------------------------------
-- the sandbox

local Sandbox = {}
Sandbox.__index = Sandbox

-- a self-signed certificate for 127.0.0.1 in a fresh temporary directory, its own CA file
local function make_cert()
  if not have("openssl") then note("TLS scenarios skipped: openssl not installed"); return nil end
  local dir = run("mktemp -d"):match("^(%S+)")
  local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
  local out, code = run(string_format("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 " ..
    "-nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s",
    sh_quote(key), sh_quote(cert)))
  if code ~= 0 then
    os.execute("rm -rf " .. sh_quote(dir))
    note("TLS scenarios skipped: openssl req failed: " .. out)
    return nil
  end
  return { dir = dir, cert = cert, key = key }
end

local function start_sandbox(tls)
  local cmd = "bin/sigmamind-sandbox --port 0 --daemon"
  if tls then cmd = cmd .. string_format(" --https-port 0 --cert %s --key %s", sh_quote(tls.cert), sh_quote(tls.key)) end
  local out, code = run(cmd)
  if code ~= 0 then error("bench: the sandbox did not start:\n" .. out, 0) end
  local sb = setmetatable({ tls = tls }, Sandbox)
  for k, v in out:gmatch("SIGMAMIND_([%w_]+)=([^\n]*)") do sb[k] = v end
  assert(sb.BASE_URL and sb.API_KEY and sb.SANDBOX_PREFIX, "bench: unexpected sandbox output:\n" .. out)
  assert(not tls or sb.SANDBOX_HTTPS_URL, "bench: the sandbox printed no SIGMAMIND_SANDBOX_HTTPS_URL:\n" .. out)
  return sb
end

-- the children's environment; with `tls`, BENCH_URL (the TLS port) and BENCH_CA (to verify with)
function Sandbox:env(tls)
  local s = string_format("SIGMAMIND_BASE_URL=%s SIGMAMIND_API_KEY=%s SIGMAMIND_SANDBOX_NUMBER=%s " ..
                          "SIGMAMIND_SANDBOX_AGENT=%s BENCH_BODY=%s BENCH_KEY=%s BENCH_PAGES=%d ",
                          sh_quote(self.BASE_URL), sh_quote(self.API_KEY), sh_quote(self.SANDBOX_NUMBER),
                          sh_quote(self.SANDBOX_AGENT), sh_quote(BODY), sh_quote(self.API_KEY),
                          math.ceil(N_PAGINATE / 100))
  if tls then
    s = s .. string_format("BENCH_URL=%s BENCH_CA=%s ", sh_quote(self.SANDBOX_HTTPS_URL), sh_quote(self.tls.cert))
  end
  return s
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

----------------------------------------------------------------------------------------------------
-- runners: each returns { count, elapsed, cpu, errors, ... } or nil, reason

local function child(sb, cmd, tls)
  local out, code = run(sb:env(tls) .. cmd)
  local r = result_of(out)
  if code ~= 0 or not r then return nil, out end
  return r
end

-- `interp bench/script args...`, over the sandbox's TLS port when `tls`
local function script_child(sb, tls, interp, script, ...)
  local args = {}
  for i, a in ipairs{ ... } do args[i] = sh_quote(a) end
  return child(sb, interp .. " bench/" .. script .. " " .. table_concat(args, " "), tls)
end

local function lua_child(sb, script, ...) return script_child(sb, false, LUA, script, ...) end

-- wrk for `seconds` (whole seconds, wrk's unit) with `conns` connections; requests/s from its
-- summary. Over TLS (`tls`) wrk does not verify the certificate: it has no option to.
local function wrk(sb, script, path, conns, seconds, tls)
  local base = tls and sb.SANDBOX_HTTPS_URL or sb.BASE_URL
  local out, code = run(sb:env(tls) .. string_format("wrk -t1 -c%d -d%ds -s bench/%s %s", conns, seconds, script,
                                                     sh_quote(base .. path)))
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

----------------------------------------------------------------------------------------------------
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

-- The interpreter a peer runs under: the first of `interps` that loads all of `modules` (Debian
-- packages lua-http and lua-curl for Lua 5.1 and 5.2 only), or nil and a note naming the packages.
local peer_interp_cache = {}
local function peer_interp(what, interps, modules, packages)
  local key = what
  if peer_interp_cache[key] ~= nil then return peer_interp_cache[key] or nil end
  local reqs = {}
  for i, m in ipairs(modules) do reqs[i] = string_format("require %q", m) end
  for _, interp in ipairs(interps) do
    if have(interp) and os.execute(interp .. " -e " .. sh_quote(table_concat(reqs, "; ")) .. " >/dev/null 2>&1")
       == true then
      log("%s peer: %s", what, interp)
      peer_interp_cache[key] = interp
      return interp
    end
  end
  note(string_format("%s peer skipped: no interpreter among %s loads %s (apt-get install %s)", what,
                     table_concat(interps, ", "), table_concat(modules, ", "), packages))
  peer_interp_cache[key] = false
  return nil
end

local function lua_http_interp()
  return peer_interp("lua-http", { "lua5.2", "lua5.1" }, { "http.client", "http.tls", "cjson", "cqueues" },
                     "lua-http lua-cqueues lua-cjson lua5.2")
end
local function lua_curl_interp()
  return peer_interp("lua-curl", { "lua5.2", "lua5.1" }, { "curl", "cjson", "socket" },
                     "lua-curl lua-cjson lua-socket lua5.2")
end
local function luasec_interp()
  return peer_interp("LuaSocket + LuaSec", { LUA }, { "ssl.https", "cjson" }, "lua-sec lua-cjson")
end
local python_ok_cached
local function python_ok()
  if python_ok_cached == nil then
    python_ok_cached = os.execute(PYTHON .. " -c 'import requests' >/dev/null 2>&1") == true
    if not python_ok_cached then note("python peer skipped: /usr/bin/python3 cannot import requests " ..
                                      "(apt-get install python3-requests)") end
  end
  return python_ok_cached
end

-- Runs `peers` in turn, `rounds` times, the sandbox reset before each run, so that drift in the
-- machine's speed hits them all alike; returns each peer's totals by name.
-- A peer is { name, run = fn(this_round) -> result }, where this_round holds the results of the
-- peers before it in the round (wrk runs as long as ours did).
local function interleave(sb, label, rounds, peers)
  local tot = {}
  for round = 1, rounds do
    local this_round = {}
    for _, p in ipairs(peers) do
      sb:reset()
      local r, out = p.run(this_round)
      r = check(r, label .. " (" .. p.name .. ")", out)
      if p.required and not r then error("bench: " .. label .. " (" .. p.name .. ") failed", 0) end
      this_round[p.name] = r
      tot[p.name] = add(tot[p.name], r)
    end
    log("%s round %d/%d: ours %.0f/s, wrk %.0f/s", label, round, rounds, rate(this_round.ours) or 0,
        rate(tot.wrk) or 0)
  end
  sb:reset()
  return tot
end

-- wrk for as many whole seconds as ours took in the same round, so both see as much sandbox state
local function wrk_like_ours(this_round) return math.max(1, math.floor(this_round.ours.elapsed + 0.5)) end

local function per_create(t, scale) return t and t.cpu / t.count * (scale or 1e6) end

local function create_seq(sb)
  log("create_seq: %d creates per peer, %d rounds", N_SEQ, ROUNDS)
  local per_round = math.max(10, math.floor(N_SEQ / ROUNDS + 0.5))
  local libcurl_bin = build_libcurl_peer()
  local lua_curl, lua_http = lua_curl_interp(), lua_http_interp()
  local peers = {
    { name = "ours", required = true, run = function()
      return lua_child(sb, "create_seq.lua", per_round) end },
    { name = "wrk", run = function(this_round)
      return wrk(sb, "wrk_create.lua", "/v1/calls", 1, wrk_like_ours(this_round)) end },
    { name = "luasocket", run = function()
      return lua_child(sb, "luasocket_create.lua", per_round) end },
  }
  if python_ok() then peers[#peers + 1] = { name = "python", run = function()
    return child(sb, PYTHON .. " bench/python_create.py " .. per_round) end } end
  if lua_curl then peers[#peers + 1] = { name = "lua_curl", run = function()
    return script_child(sb, false, lua_curl, "lua_curl_create.lua", per_round) end } end
  if lua_http then peers[#peers + 1] = { name = "lua_http", run = function()
    return script_child(sb, false, lua_http, "lua_http_create.lua", per_round, 1) end } end
  if libcurl_bin then peers[#peers + 1] = { name = "libcurl", run = function()
    return child(sb, string_format("%s %s %s %s %d", sh_quote(libcurl_bin),
      sh_quote(sb.BASE_URL .. "/v1/calls"), sh_quote(sb.API_KEY), sh_quote(BODY), per_round)) end } end
  local tot = interleave(sb, "create_seq", ROUNDS, peers)
  if libcurl_bin then os.remove(libcurl_bin) end
  results.create_seq = tot
  figure("create_seq", rate(tot.ours), "creates/s")
  figure("create_seq_cpu", per_create(tot.ours), "us/create")
  if tot.wrk then figure("create_seq_wrk_c1", rate(tot.wrk), "requests/s") end
  if tot.luasocket then figure("create_seq_luasocket", rate(tot.luasocket), "creates/s") end
  if tot.python then figure("create_seq_python", rate(tot.python), "creates/s") end
  if tot.lua_curl then figure("create_seq_lua_curl", rate(tot.lua_curl), "creates/s") end
  if tot.lua_http then figure("create_seq_lua_http", rate(tot.lua_http), "creates/s") end
  if tot.libcurl then figure("create_seq_libcurl_c", rate(tot.libcurl), "requests/s") end
  -- client CPU (user + system) per request: where a peer's time goes when the server is no limit
  if tot.luasocket then figure("create_seq_luasocket_cpu", per_create(tot.luasocket), "us/create") end
  if tot.python then figure("create_seq_python_cpu", per_create(tot.python), "us/create") end
  if tot.lua_curl then figure("create_seq_lua_curl_cpu", per_create(tot.lua_curl), "us/create") end
  if tot.lua_http then figure("create_seq_lua_http_cpu", per_create(tot.lua_http), "us/create") end
  if tot.libcurl then figure("create_seq_libcurl_c_cpu", per_create(tot.libcurl), "us/request") end
  ratio("create_seq_vs_wrk_c1", rate(tot.ours), rate(tot.wrk))
  ratio("create_seq_vs_luasocket", rate(tot.ours), rate(tot.luasocket))
  ratio("create_seq_vs_python", rate(tot.ours), rate(tot.python))
  ratio("create_seq_vs_lua_curl", rate(tot.ours), rate(tot.lua_curl))
  ratio("create_seq_vs_lua_http", rate(tot.ours), rate(tot.lua_http))
  ratio("create_seq_vs_libcurl_c", rate(tot.ours), rate(tot.libcurl))
  -- the ceilings for the LuaSocket target on this machine, same run: what a client costing nothing
  -- (wrk) and libcurl's easy interface alone (no Lua, no JSON) reach against the same server
  ratio("create_seq_wrk_c1_vs_luasocket", rate(tot.wrk), rate(tot.luasocket))
  ratio("create_seq_libcurl_c_vs_luasocket", rate(tot.libcurl), rate(tot.luasocket))
end

-- `prefix`: create_c32 or tls_c32; ours through sigmamind.map, wrk -t1 -c32, lua-http's coroutines
local function c32(sb, prefix, n, tls)
  log("%s: %d creates per peer, 32 in flight, %d rounds", prefix, n, ROUNDS_SHORT)
  local per_round = math.max(64, math.floor(n / ROUNDS_SHORT + 0.5))
  local has_sm, sigmamind = pcall(require, "sigmamind")
  if not (has_sm and type(sigmamind.map) == "function") then
    print(string_format("bench %s skipped (needs sigmamind.map)", prefix))
    results[prefix] = { skipped = true }
    return
  end
  local lua_http = lua_http_interp()
  local peers = {
    { name = "ours", required = true, run = function()
      return script_child(sb, tls, LUA, "create_c32.lua", per_round, 32) end },
    { name = "wrk", run = function(this_round)
      return wrk(sb, "wrk_create.lua", "/v1/calls", 32, wrk_like_ours(this_round), tls) end },
  }
  if lua_http then peers[#peers + 1] = { name = "lua_http", run = function()
    return script_child(sb, tls, lua_http, "lua_http_create.lua", per_round, 32) end } end
  local tot = interleave(sb, prefix, ROUNDS_SHORT, peers)
  results[prefix] = tot
  figure(prefix, rate(tot.ours), "creates/s")
  figure(prefix .. "_cpu", per_create(tot.ours), "us/create")
  if tot.wrk then figure(prefix .. "_wrk_c32", rate(tot.wrk), "requests/s") end
  if tot.lua_http then
    figure(prefix .. "_lua_http_c32", rate(tot.lua_http), "creates/s")
    figure(prefix .. "_lua_http_c32_cpu", per_create(tot.lua_http), "us/create")
  end
  ratio(prefix .. "_vs_wrk_c32", rate(tot.ours), rate(tot.wrk))
  ratio(prefix .. "_vs_lua_http_c32", rate(tot.ours), rate(tot.lua_http))
end

local function create_c32(sb) c32(sb, "create_c32", N_C32, false) end

-- the sequential creates over HTTPS, every peer but wrk verifying the sandbox's certificate
local function tls_seq(sb)
  log("tls_seq: %d creates per peer over HTTPS (LuaSec %d), %d rounds", N_TLS_SEQ, N_LUASEC, ROUNDS_SHORT)
  local per_round = math.max(10, math.floor(N_TLS_SEQ / ROUNDS_SHORT + 0.5))
  local luasec_round = math.max(4, math.floor(N_LUASEC / ROUNDS_SHORT + 0.5))
  local lua_http, luasec = lua_http_interp(), luasec_interp()
  local peers = {
    { name = "ours", required = true, run = function()
      return script_child(sb, true, LUA, "create_seq.lua", per_round) end },
    { name = "wrk", run = function(this_round)
      return wrk(sb, "wrk_create.lua", "/v1/calls", 1, wrk_like_ours(this_round), true)
    end },
  }
  if python_ok() then peers[#peers + 1] = { name = "python", run = function()
    return child(sb, PYTHON .. " bench/python_create.py " .. per_round, true) end } end
  if lua_http then peers[#peers + 1] = { name = "lua_http", run = function()
    return script_child(sb, true, lua_http, "lua_http_create.lua", per_round, 1) end } end
  if luasec then peers[#peers + 1] = { name = "luasec", run = function()
    return script_child(sb, true, luasec, "luasocket_create.lua", luasec_round) end } end
  local tot = interleave(sb, "tls_seq", ROUNDS_SHORT, peers)
  results.tls_seq = tot
  figure("tls_seq", rate(tot.ours), "creates/s")
  figure("tls_seq_cpu", per_create(tot.ours), "us/create")
  if tot.wrk then figure("tls_seq_wrk_c1", rate(tot.wrk), "requests/s") end
  if tot.python then figure("tls_seq_python", rate(tot.python), "creates/s") end
  if tot.lua_http then figure("tls_seq_lua_http", rate(tot.lua_http), "creates/s") end
  if tot.luasec then figure("tls_seq_luasec", rate(tot.luasec), "creates/s") end
  if tot.python then figure("tls_seq_python_cpu", per_create(tot.python), "us/create") end
  if tot.lua_http then figure("tls_seq_lua_http_cpu", per_create(tot.lua_http), "us/create") end
  if tot.luasec then figure("tls_seq_luasec_cpu", per_create(tot.luasec), "us/create") end
  ratio("tls_seq_vs_wrk_c1", rate(tot.ours), rate(tot.wrk))
  ratio("tls_seq_vs_python", rate(tot.ours), rate(tot.python))
  ratio("tls_seq_vs_lua_http", rate(tot.ours), rate(tot.lua_http))
  ratio("tls_seq_vs_luasec", rate(tot.ours), rate(tot.luasec))
end

local function tls_c32(sb) c32(sb, "tls_c32", N_TLS_C32, true) end

local function paginate(sb)
  log("paginate: %d seeded calls, size 100", N_PAGINATE)
  sb:reset()
  sb:admin("POST", "/_sandbox/seed", string_format('{"calls":%d,"mix":"uniform"}', N_PAGINATE))
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
  -- with prefetch = true: the server works on the next page while the client decodes this one
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

-- Ir by object, for one run of callgrind_create.lua with n creates ("c32": 32 in flight)
local function callgrind(sb, n, mode)
  local out_file = os.tmpname()
  sb:reset()
  local out, code = run(sb:env() .. string_format(
    "valgrind --tool=callgrind --callgrind-out-file=%s %s bench/callgrind_create.lua %d %s",
    sh_quote(out_file), LUA, n, mode or ""))
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

-- instructions per create by part, one after another (suffix "") or 32 in flight (suffix "_c32")
local function instructions_of(sb, mode, suffix, warm, measured)
  log("instructions_per_create%s: callgrind, %d and %d creates", suffix, warm, warm + measured)
  local a, aerr = callgrind(sb, warm, mode)
  local b, berr = callgrind(sb, warm + measured, mode)
  sb:reset()
  if not a or not b then log("callgrind failed:\n%s", tostring(aerr or berr)); return end
  local per = {}
  for _, p in ipairs(PARTS) do per[p] = 0 end
  for obj, ir in pairs(b) do local p = part_of(obj); per[p] = per[p] + ir end
  for obj, ir in pairs(a) do local p = part_of(obj); per[p] = per[p] - ir end
  local total, ours = 0, 0
  for _, p in ipairs(PARTS) do
    per[p] = per[p] / measured
    total = total + per[p]
  end
  ours = per.core + per.lua + per.cjson
  local name = "instructions_per_create" .. suffix
  figure(name, math.floor(ours + 0.5), "instructions")
  figure(name .. "_total", math.floor(total + 0.5), "instructions")
  for _, p in ipairs(PARTS) do
    figure(name .. "_" .. p:gsub("%.", ""), math.floor(per[p] + 0.5), "instructions")
  end
  return { ours = ours, total = total, per = per }
end

local function instructions(sb)
  if not have("valgrind") then note("instructions_per_create skipped: valgrind not installed"); return end
  results.instructions = instructions_of(sb, nil, "", CG_WARM, CG_MEASURED)
  -- 32 in flight: the warm-up run opens the 32 connections too
  results.instructions_c32 = instructions_of(sb, "c32", "_c32", CG_WARM_C32, CG_MEASURED)
end

----------------------------------------------------------------------------------------------------
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
  -- a comparison: ours ÷ the peer, the peer's rate, the target (`min`× at least; nil: diagnostic)
  local function versus(what, name, peer, min, skipped)
    local r, target = ratios[name], min and string_format("≥ %.2g×", min) or "(diagnostic)"
    if not peer or not r then
      if skipped then row(what, "skipped (" .. skipped .. ")", target, nil) end
      return
    end
    local ok
    if min then ok = r >= min end
    row(what, string_format("%.2f× (%s)", r, fmt(rate(peer), "/s")), target, ok)
  end
  local seq = results.create_seq
  if seq then
    row("create_seq (ours)", fmt(rate(seq.ours), "/s"), "", nil)
    versus("  vs wrk -t1 -c1", "create_seq_vs_wrk_c1", seq.wrk, 0.8)
    versus("  vs lua-curl easy loop", "create_seq_vs_lua_curl", seq.lua_curl, 1.0, "lua-curl")
    versus("  vs lua-http, kept alive", "create_seq_vs_lua_http", seq.lua_http, nil, "lua-http")
    versus("  vs LuaSocket + cjson", "create_seq_vs_luasocket", seq.luasocket, 1.5)
    versus("  vs Python requests", "create_seq_vs_python", seq.python, 4, "python3-requests")
    versus("  vs libcurl easy loop in C", "create_seq_vs_libcurl_c", seq.libcurl, nil)
    if seq.luasocket and seq.wrk then row("  ceiling: wrk -c1 vs LuaSocket", string_format("%.2f×",
      ratios.create_seq_wrk_c1_vs_luasocket), "(diagnostic)", nil) end
    if seq.luasocket and seq.libcurl then row("  ceiling: libcurl C vs LuaSocket", string_format("%.2f×",
      ratios.create_seq_libcurl_c_vs_luasocket), "(diagnostic)", nil) end
  end
  local function c32_rows(prefix, cpu_max, wrk_min)
    local c = results[prefix]
    if c and c.skipped then
      row(prefix, "skipped (needs sigmamind.map)", "", nil)
    elseif c then
      local cpu = per_create(c.ours)
      row(prefix .. " (ours)", fmt(rate(c.ours), "/s"), "", nil)
      versus("  vs wrk -t1 -c32", prefix .. "_vs_wrk_c32", c.wrk, wrk_min)
      versus("  vs lua-http, 32 coroutines", prefix .. "_vs_lua_http_c32", c.lua_http, 2.0, "lua-http")
      local ok
      if cpu_max then ok = cpu <= cpu_max end
      row("  client CPU per create", fmt(cpu, "µs"), cpu_max and string_format("≤ %d µs", cpu_max) or "", ok)
    end
  end
  c32_rows("create_c32", 40, 0.65)
  local t = results.tls_seq
  if t then
    row("tls_seq (ours, HTTPS)", fmt(rate(t.ours), "/s"), "", nil)
    versus("  vs wrk -t1 -c1", "tls_seq_vs_wrk_c1", t.wrk, nil)
    versus("  vs Python requests", "tls_seq_vs_python", t.python, 7, "python3-requests")
    versus("  vs lua-http, kept alive", "tls_seq_vs_lua_http", t.lua_http, nil, "lua-http")
    versus("  vs LuaSocket + LuaSec", "tls_seq_vs_luasec", t.luasec, nil, "lua-sec")
  end
  c32_rows("tls_c32", nil, nil)
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
    row("instructions/create (ours)", fmt(ins.ours, "Ir"), "≤ 35000", ins.ours <= 35000)
    row("  all objects", fmt(ins.total, "Ir"), "", nil)
  end
  local ins32 = results.instructions_c32
  if ins32 then
    row("instructions/create, 32 in flight (ours)", fmt(ins32.ours, "Ir"), "", nil)
    row("  all objects", fmt(ins32.total, "Ir"), "", nil)
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

----------------------------------------------------------------------------------------------------

-- BENCH_ONLY=name,name runs only those scenarios (create_seq, create_c32, tls_seq, tls_c32, paginate,
-- campaign_build, instructions); unset, all of them
local ONLY = os.getenv("BENCH_ONLY")
local function wanted(name)
  return ONLY == nil or ONLY == "" or ("," .. ONLY .. ","):find("," .. name .. ",", 1, true) ~= nil
end

local function main()
  for _, tool in ipairs{ "wrk" } do
    if not have(tool) then error("bench: " .. tool .. " is not installed (apt-get install " .. tool .. ")", 0) end
  end
  local cpu = run("grep -m1 'model name' /proc/cpuinfo"):match(":%s*(.-)%s*$") or "?"
  local nproc = run("nproc"):match("%d+") or "?"
  log("BENCH_SCALE=%s, %s CPUs, %s", tostring(SCALE), nproc, cpu)
  local t0 = socket.gettime()
  local tls = make_cert()
  local ok, err = pcall(function()
    local sb = start_sandbox(tls)
    local ok2, err2 = pcall(function()
      if wanted("create_seq") then create_seq(sb) end
      if wanted("create_c32") then create_c32(sb) end
      if tls and wanted("tls_seq") then tls_seq(sb) end
      if tls and wanted("tls_c32") then tls_c32(sb) end
      if wanted("paginate") then paginate(sb) end
      if wanted("campaign_build") then campaign_build(sb) end
      if wanted("instructions") then instructions(sb) end
    end)
    sb:stop()
    if not ok2 then error(err2, 0) end
  end)
  if tls then os.execute("rm -rf " .. sh_quote(tls.dir)) end
  if not ok then error(err, 0) end
  figure("bench_wall", socket.gettime() - t0, "s")
  report()
end

main()
