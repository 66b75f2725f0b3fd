-- Spec helper: the inputs that pin what core.json_decode gives (spec/json_decode_spec.lua), and a
-- canonical text of a decoded value, which tells integers from floats and core.null from absent.
local core = require "sigmamind.core"

local M = {}

local null = core.null
local concat, sort = table.concat, table.sort
local format, rep = string.format, string.rep

-- the value as text: tables with their keys sorted, numbers as i<integer> or f<%.17g>
local function canon(v)
  if v == nil then return "nil" end
  if v == null then return "null" end
  local t = type(v)
  if t == "number" then
    if math.type(v) == "integer" then return "i" .. v end
    return format("f%.17g", v)
  end
  if t == "string" then return format("%q", v) end
  if t == "boolean" then return tostring(v) end
  if t ~= "table" then return "?" .. t end
  local ck = {}
  for k in pairs(v) do ck[#ck + 1] = { canon(k), k } end
  sort(ck, function(x, y) return x[1] < y[1] end)
  local out = {}
  for i, e in ipairs(ck) do out[i] = e[1] .. "=" .. canon(v[e[2]]) end
  return "{" .. concat(out, ",") .. "}"
end
M.canon = canon

-- what json_decode(s, opts) gives, as text: the value's canon (a digest of it past 60 bytes), or
-- "ERR " and the message
function M.result(s, opts)
  local v, msg = core.json_decode(s, opts)
  if v == nil then return "ERR " .. tostring(msg) end
  local c = canon(v)
  if #c > 60 then return "sha " .. core.hmac_sha256("pin", c):sub(1, 24) end
  return c
end

-- a create's answer and a record of a page of seeded calls, as the sandbox sends them
local CREATE = '{"callId":"call_7c8600000001e1","callType":"outbound","phoneNumber":{"outboundPhoneNumber":null,' ..
  '"active":true,"terminationSipURI":null,"provider":"twilio","friendlyName":"Sandbox Line","sipPhoneNumber":' ..
  '"+14157774444","inboundAgentId":"agent_abc123","outboundAgentId":"agent_abc123"},"status":"scheduled",' ..
  '"transcript":null,"startTime":null,"endTime":null,"duration":null,"terminationReason":null,"createdAt":' ..
  '"2026-12-06T07:40:45.182Z","updatedAt":"2026-12-06T07:40:45.182Z","dynamicVariables":{"account_id":' ..
  '"A-10042","customer_name":"John Doe","plan_type":"Premium"},"recordingUrl":null,"agent":{"status":"Live",' ..
  '"name":"Sandbox Agent","agentId":"agent_abc123"}}'
local RECORD = '{"callId":"call_2dc9fa00018574","callType":"outbound","phoneNumber":{"outboundAgentId":' ..
  '"agent_abc123","outboundPhoneNumber":null,"provider":"twilio","active":true,"terminationSipURI":null,' ..
  '"friendlyName":"Sandbox Line","sipPhoneNumber":"+14157774444","inboundAgentId":"agent_abc123"},"status":' ..
  '"ended","createdAt":"2026-12-06T06:37:34.776Z","dynamicVariables":{},"agent":{"name":"Sandbox Agent",' ..
  '"agentId":"agent_abc123","status":"Live"},"startTime":"2026-12-06T06:37:35.776Z","updatedAt":' ..
  '"2026-12-06T06:37:55.776Z","endTime":"2026-12-06T06:37:55.776Z","duration":20,"terminationReason":' ..
  '"user_ended_call","transcript":"Agent: Hello, this is Sandbox Agent calling +14150099700.\\nUser: Hi.\\n' ..
  'Agent: I have your details: no dynamic variables.\\nUser: That is right, thank you.\\nAgent: Goodbye.\\n",' ..
  '"recordingUrl":"http://127.0.0.1:32841/_sandbox/recordings/call_2dc9fa00018574.mp3"}'

local C = {}
local function add(s) C[#C + 1] = s end
add(CREATE); add(RECORD)
add('{"page":0,"size":3,"data":[' .. RECORD .. "," .. CREATE .. "," .. RECORD .. '],"hasNext":false}')
-- duplicate keys and nulls, in every order
for _, s in ipairs{ '{"a":1,"a":null}', '{"a":null,"a":1}', '{"a":null,"b":2,"a":null}',
  '{"a":1,"b":null,"a":null,"c":3}', '{"a":null}', '{"a":null,"a":null}', '{"b":1,"a":2,"a":null,"a":3}',
  '{"a":{"x":null},"a":null}', '{"a":[null,1,null],"b":null}', '[null,{"a":null},null]', 'null',
  '{"x\\u0041":1,"xA":null}', '{"xA":1,"x\\u0041":null}', '{"":null,"":1}', '{"":1,"":null}', '{"":null}',
  '{"q\\n":null}', '[{"z":null,"y":null},{"z":null,"y":null},{"z":1,"y":null}]' } do add(s) end
-- objects around 64 members (gathered on the stack up to there), a duplicate and nulls either side
for _, n in ipairs{ 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 66, 127, 128, 129, 300 } do
  local m = {}
  for i = 1, n do m[i] = format('"k%d":%s', i, i % 3 == 0 and "null" or tostring(i)) end
  add("{" .. concat(m, ",") .. "}")
  add("{" .. concat(m, ",") .. ',"k1":null,"k3":"back","k2":null}')
  add('{"k1":null,' .. concat(m, ",") .. "}")
end
-- objects with the same first key and changing sizes (a table is made at the size seen before)
for _, n in ipairs{ 3, 3, 10, 2, 40, 1, 0, 5, 5, 70, 4 } do
  local m = { '"id":"x"' }
  for i = 2, n do m[i] = format('"f%d":%d', i, i) end
  add("{" .. concat(m, ",") .. "}")
  add("[" .. rep("{" .. concat(m, ",") .. "},", 3) .. "{}]")
end
-- keys and strings of every length around the string cache's limits, with and without escapes
for _, n in ipairs{ 0, 1, 7, 8, 9, 15, 16, 17, 24, 39, 40, 41, 64, 1023, 1024, 1025, 3000 } do
  local k = rep("k", n)
  add(format('{"%s":"%s","%s":1}', k, rep("v", n), k))
  add(format('{"%s":"%s"}', k, rep("v", n)))
  add(format('["%s","%s"]', rep("v", n), rep("w", n)))
  if n > 0 then
    add(format('{"%s\\n":"%s\\t","%s":null}', k, rep("v", n), k))
    add(format('"\\u00e9%s\\"%s"', rep("a", n), rep("b", n)))
  end
end
-- the same length, other bytes
for _, s in ipairs{ '{"abcdefgh":1,"abcdefgi":2,"abcdefgh":3}', '["abcdefghijklmnopq","abcdefghijklmnopr"]',
  '{"status":"ended","status":"ended_"}', '{"aaaaaaaaaaaaaaaaaaaaaaaa":1,"aaaaaaaaaaaaaaaaaaaaaaab":2}',
  '["0123456789abcdef","0123456789abcdeg","0123456789abcdef"]', '["ab","ab\\u0000","ab"]' } do add(s) end
-- numbers
for _, s in ipairs{ "0", "-0", "1", "-1", "123456789012345678", "1234567890123456789", "-123456789012345678",
  "9007199254740992", "9007199254740993", "18446744073709551616", "1e2", "1E2", "1e+2", "1e-2", "1.5", "-1.5",
  "1.", "-.5", "1.e5", "1e", "1e+", "0.1", "2.0", "1e400", "-1e400", "1e-400", "0e0", "00", "01", "-", "-a",
  "0x10", "1.5e", "[1e]", "[-]", "[1,-0.0,3]", ".5", "+1", "1.0e18", "1.0e19", "12345678901234567890.0" } do
  add(s)
end
-- white space, literals, structure and errors
for _, s in ipairs{ ' { "a" : [ 1 , 2 ] , "b" : { } } ', "\t[\r\n]\n", "true", "false", "nul", "truex",
  "tru", "[true,false,null]", "{}", "[]", "[[],{}]", "{} x", "[1,]", '{"a":1,}', '{"a"}', '{"a":}', '{"a" 1}',
  "{a:1}", "[1 2]", "{}\0", "", "  ", "[", "{", '{"a":1', '{"a":1 ', '{"a":1,', '["a"', '"abc', '"a\\"',
  '"a\0b"', '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', '"\\u12"', '"\\u12g4"', '"\\x"', '"\\', '"\\u',
  '"\\ud83d\\ude00"', '"\\u0000"', '"\\/\\b\\f\\n\\r\\t\\"\\\\"', '{"a":tru}', '{"a":nulx}', "[nul]",
  '{"a" : null , "b":null }', '{"a":null x}', '{"a":n}',
  rep("[", 1000) .. rep("]", 1000), rep("[", 1001) .. rep("]", 1001),
  rep('{"a":', 999) .. "1" .. rep("}", 999), rep('{"a":', 1001) .. "1" .. rep("}", 1001),
  '{"a":[1,2,{"b":[3,{"c":null}]}],"d":"\\u20ac"}' } do add(s) end
-- every prefix of one document with a bit of everything
local doc = '{"a":[1,-2.5e1,"x\\ny\\u00e9",true,false,null,{"k":{}},[]],"bb":null,"c":"' .. rep("z", 20) ..
            '","d":{"e":12345678901234567890}}'
for i = 0, #doc do add(doc:sub(1, i)) end
M.cases = C

return M
