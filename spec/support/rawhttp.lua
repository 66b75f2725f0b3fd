-- Spec helper run as a child process: a bare HTTP/1.1 server on 127.0.0.1 that answers each request, in
-- order, with the next of the raw responses given (files named on the command line, each the exact bytes to
-- send: status line, headers and body), on kept-alive connections, then exits. It writes its port to PORTFILE,
-- and each request line it read to PORTFILE.requests. A response file that holds `!restart MS` answers nothing:
-- the server reads that request, closes the connection and stops listening for MS milliseconds (a restart, so
-- a reconnect is refused), then listens on the same port again.
-- One that holds `!close` answers nothing either: it closes the connection after reading the
-- request and listens on (an answer lost; libcurl resends on a new connection, never a POST).
-- usage: lua5.4 rawhttp.lua PORTFILE RESPONSE...
--
-- Required as a module (`require "support.rawhttp"`), it starts such a server for a spec:
--   local raw = rawhttp.start{ rawhttp.answer(200, '{"data":[]}'), "!close", ... }
--   raw.port, raw.url, raw.requests() (the request lines read so far), raw.stop()
--   raw.request(n): the n-th request read, whole: { line =, headers = { [lower-case name] = value },
--   header_lines = { "Name: value", ... }, body = } (nil before it came)
--   raw.received() (each request read so far: { line, headers = { "Name: value", ... }, body })
local socket = require "socket"

if ... == "support.rawhttp" then
  local script = debug.getinfo(1, "S").source:match("^@(.*)$")
  local M = {}

  -- a whole response: status line, JSON content type, length, `headers` ("Name: value" lines), body
  function M.answer(status, body, headers)
    local extra = headers and (table.concat(headers, "\r\n") .. "\r\n") or ""
    return ("HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s")
      :format(status, #body, extra, body)
  end

  function M.start(answers)
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local files = {}
    for i, a in ipairs(answers) do
      files[i] = dir .. "/r" .. i
      local f = assert(io.open(files[i], "wb"))
      f:write(a)
      f:close()
    end
    assert(os.execute(("lua5.4 %s %s/port %s >%s/log 2>&1 & echo $! > %s/pid")
      :format(script, dir, table.concat(files, " "), dir, dir)))
    local port
    for _ = 1, 200 do
      local f = io.open(dir .. "/port")
      if f then port = tonumber(f:read("l")); f:close(); break end
      socket.sleep(0.05)
    end
    assert(port, "the raw server did not start")
    local server = { port = port, url = "http://127.0.0.1:" .. port }
    function server.requests()
      local out = {}
      local f = io.open(dir .. "/port.requests")
      if f then
        for line in f:lines() do out[#out + 1] = line end
        f:close()
      end
      return out
    end
    function server.received()
      local out = {}
      local f = io.open(dir .. "/port.raw", "rb")
      if not f then return out end
      local data = f:read("a")
      f:close()
      local pos = 1
      while pos <= #data do
        local n, at = data:match("^(%d+)\n()", pos)
        if not n then break end
        local head, body = data:sub(at, at + n - 1):match("^(.-)\r\n\r\n(.*)$")
        local lines = {}
        for l in (head .. "\r\n"):gmatch("(.-)\r\n") do lines[#lines + 1] = l end
        out[#out + 1] = { line = table.remove(lines, 1), headers = lines, body = body }
        pos = at + n
      end
      return out
    end
    function server.request(n)
      local r = server.received()[n]
      if not r then return nil end
      local out = { line = r.line, headers = {}, header_lines = r.headers, body = r.body }
      for _, l in ipairs(r.headers) do
        local k, v = l:match("^([^:]+):%s*(.-)%s*$")
        if k then out.headers[k:lower()] = v end
      end
      return out
    end
    function server.stop() os.execute("kill $(cat " .. dir .. "/pid) 2>/dev/null; rm -rf " .. dir) end
    return server
  end
  return M
end

local portfile = assert(arg[1], "usage: rawhttp.lua PORTFILE RESPONSE...")
local responses = {}
for i = 2, #arg do
  local f = assert(io.open(arg[i], "rb"))
  responses[#responses + 1] = f:read("a")
  f:close()
end

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local requests = assert(io.open(portfile .. ".requests", "w"))
requests:setvbuf("line")
local raw = assert(io.open(portfile .. ".raw", "wb"))      -- each request whole, its length first
local pf = assert(io.open(portfile .. ".tmp", "w"))
pf:write(port, "\n")
pf:close()
assert(os.rename(portfile .. ".tmp", portfile))
server:settimeout(30)

local next_response = 1
while next_response <= #responses do
  local conn = server:accept()
  if not conn then break end                   -- nobody came for 30 s: give up
  conn:settimeout(30)
  while next_response <= #responses do
    local line = conn:receive("*l")
    if not line then break end                 -- the client closed this connection
    local length, whole = 0, { line }
    repeat                                     -- the headers; a body only as long as Content-Length says
      local h = conn:receive("*l")
      if not h then break end
      whole[#whole + 1] = h
      local n = h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
      if n then length = tonumber(n) end
    until h == ""
    local body = length > 0 and conn:receive(length) or ""
    local text = table.concat(whole, "\r\n") .. "\r\n" .. (body or "")
    raw:write(#text, "\n", text)
    raw:flush()
    requests:write(line, "\n")
    local r = responses[next_response]
    next_response = next_response + 1
    local ms = r:match("^!restart (%d+)")
    if r:match("^!close%s*$") then
      break                                    -- closed below, without an answer
    elseif ms then
      conn:close()
      server:close()
      socket.sleep(tonumber(ms) / 1000)
      server = assert(socket.bind("127.0.0.1", port))
      server:settimeout(30)
      break
    end
    conn:send(r)
  end
  conn:close()
end
server:close()
requests:close()
raw:close()
