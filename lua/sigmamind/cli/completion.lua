-- sigmamind.cli.completion: `sigmamind completion bash|zsh|fish`, argparse's completion scripts for
-- the tree of commands and flags.
local context = require "sigmamind.cli.context"

local _M = {}

function _M.add_to_parser(parser)
  local c = context.command(parser, "completion", "Print a completion script for a shell. Bash: add " ..
                            "'source <(sigmamind completion bash)' to ~/.bashrc; zsh: sigmamind completion zsh > " ..
                            "\"${fpath[1]}/_sigmamind\"; fish: sigmamind completion fish > " ..
                            "~/.config/fish/completions/sigmamind.fish.")
  c:summary("Print a completion script for bash, zsh or fish.")
  c:argument("shell", "bash, zsh or fish."):choices{ "bash", "zsh", "fish" }
end

function _M.command(a, ctx)
  local parser = ctx.parser
  ctx.stdout:write(parser["get_" .. a.shell .. "_complete"](parser))
end

return _M
