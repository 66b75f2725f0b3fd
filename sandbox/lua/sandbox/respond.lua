-- Sandbox answers: a JSON body with its length, and SigmaMind's error envelope.
local ngx = ngx
local util = require "sandbox.util"
local store = require "sandbox.store"

local encode, iso, now = util.encode, util.iso, store.now
local type, string_find, string_sub = type, string.find, string.sub
local ngx_var, ngx_header = ngx.var, ngx.header

local _M = {}

local ERROR_NAMES = { [302] = "Found", [400] = "Bad Request", [401] = "Unauthorized", [404] = "Not Found",
                      [405] = "Method Not Allowed", [413] = "Payload Too Large", [415] = "Unsupported Media Type",
                      [429] = "Too Many Requests", [500] = "Internal Server Error", [503] = "Service Unavailable" }

-- body: a string, or an array of fragments (ngx.print takes it as it is)
local function send_raw(status, body)
  local len
  if type(body) == "table" then
    len = 0
    for i = 1, #body do len = len + #body[i] end
  else
    len = #body
  end
  ngx.status = status
  ngx_header["Content-Type"] = "application/json"
  ngx_header["Content-Length"] = len
  ngx.print(body)
end
_M.send_raw = send_raw

function _M.send_error(status, message)
  local path = ngx_var.request_uri
  local q = string_find(path, "?", 1, true)
  if q then path = string_sub(path, 1, q - 1) end
  send_raw(status, encode{ error = ERROR_NAMES[status] or "Error", message = message, path = path,
                           status = status, timestamp = iso(now()) })
end

return _M
