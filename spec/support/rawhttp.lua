-- Spec helper run as a child process: a bare HTTP/1.1 server on 127.0.0.1 that answers each request, in
-- order, with the next of the raw responses given (files named on the command line, each the exact bytes to
-- send: status line, headers and body), on kept-alive connections, then exits. It writes its port to PORTFILE,
-- and each request line it read to PORTFILE.requests. A response file that holds `!restart MS` answers nothing:
-- the server reads that request, closes the connection and stops listening for MS milliseconds (a restart, so
-- a reconnect is refused), then listens on the same port again.
-- usage: lua5.4 rawhttp.lua PORTFILE RESPONSE...
local socket = require "socket"

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
    local length = 0
    repeat                                     -- the headers; a body only as long as Content-Length says
      local h = conn:receive("*l")
      if not h then break end
      local n = h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
      if n then length = tonumber(n) end
    until h == ""
    if length > 0 then conn:receive(length) end
    requests:write(line, "\n")
    local r = responses[next_response]
    next_response = next_response + 1
    local ms = r:match("^!restart (%d+)")
    if ms then
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
