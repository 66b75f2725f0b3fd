-- Sums a callgrind output file's self cost (the first event, Ir) by ELF object: "object<TAB>Ir"
-- lines. Self cost: every cost line but the one after a calls= line (the callee's inclusive cost).
local path = assert(arg[1], "usage: callgrind_objects.lua callgrind.out")
local names = {}            -- compressed "(id)" -> name, for ob=/cob=
local function name_of(spec)
  local id, rest = spec:match("^%((%d+)%)%s*(.*)$")
  if not id then return spec end
  if rest ~= "" then names[id] = rest end
  return names[id]
end
local sums, ob, skip = {}, "?", false
for line in io.lines(path) do
  local c = line:byte(1)
  if c and ((c >= 48 and c <= 57) or c == 43 or c == 45 or c == 42) then   -- a cost line: digit, + - *
    if skip then skip = false
    else
      local ir = line:match("^%S+%s+(%d+)")
      if ir then sums[ob] = (sums[ob] or 0) + tonumber(ir) end
    end
  elseif line:sub(1, 3) == "ob=" then ob = name_of(line:sub(4))
  elseif line:sub(1, 4) == "cob=" then name_of(line:sub(5))
  elseif line:sub(1, 6) == "calls=" then skip = true
  end
end
for k, v in pairs(sums) do print(k .. "\t" .. string.format("%d", v)) end
