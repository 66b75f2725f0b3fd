-- Writes docs/cli.md, the command line's reference page, from the CLI's own --help of every command and
-- subcommand, so that the page is what the program says. Usage: lua5.4 tools/cli-reference.lua > docs/cli.md
-- (spec/docs_spec.lua fails when the page and the program disagree).
local cli = require "sigmamind.cli"

local function help(argv)
  local chunks = {}
  local sink = { write = function(self, ...) for i = 1, select("#", ...) do chunks[#chunks + 1] = select(i, ...) end
                                            return self end }
  local args = {}
  for i, a in ipairs(argv) do args[i] = a end
  args[#args + 1] = "--help"
  cli.run(args, { stdout = sink, stderr = sink, env = {} })
  return table.concat(chunks)
end

-- the commands a help text lists under "Commands:"
local function commands(text)
  local list, inside = {}, false
  for line in text:gmatch("[^\n]*") do
    if line == "Commands:" then inside = true
    elseif inside and line:match("^   (%S+)") then list[#list + 1] = line:match("^   (%S+)")
    elseif inside and line == "" then break end
  end
  return list
end

local out = { "# The `sigmamind` command\n\n",
  "The command line's reference, as its `--help` prints it (made by `tools/cli-reference.lua`). Every command\n",
  "takes the global options of `sigmamind --help` before its name; `--json` prints one JSON document instead\n",
  "of a table, errors included (on stderr). `sigmamind sandbox` hands its arguments to the sandbox launcher,\n",
  "whose reference is `docs/sandbox.md`.\n" }

local function section(argv, depth)
  local text = help(argv)
  out[#out + 1] = ("\n%s `sigmamind%s`\n\n```\n%s```\n"):format(string.rep("#", depth),
    #argv > 0 and " " .. table.concat(argv, " ") or "", text)
  for _, name in ipairs(commands(text)) do
    if name ~= "sandbox" then
      local sub = { table.unpack(argv) }
      sub[#sub + 1] = name
      section(sub, math.min(depth + 1, 3))
    end
  end
end

section({}, 2)
io.write(table.concat(out))
