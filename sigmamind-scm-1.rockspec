rockspec_format = "3.0"
package = "sigmamind"
version = "scm-1"
source = {
  url = "git+https://github.com/lua-sigmamind/lua-sigmamind.git",
}
description = {
  summary = "Place and track outbound phone calls handled by SigmaMind AI voice agents",
  detailed = [[
    A C core over libcurl (one kept-alive connection, validation before sending, typed errors,
    retries that never ring a person twice) under a small pure-Lua layer: resource namespaces,
    lazy pagination, campaign builders and RFC 4180 CSV.
  ]],
  homepage = "https://github.com/lua-sigmamind/lua-sigmamind",
  license = "MIT",
}
supported_platforms = { "linux" }
-- Lua 5.4, or LuaJIT 2.1 through `--lua-version 5.1` with LuaJIT's headers (the OpenResty route). LuaRocks cannot
-- say "5.4 or LuaJIT", so the C core refuses PUC Lua 5.1, 5.2 and 5.3 itself, with a message (src/compat.h).
-- argparse is not a dependency: only the CLI needs it, and it says how to get it when it is missing.
dependencies = {
  "lua >= 5.1, < 5.5",
}
-- No header for CURL: Debian keeps curl/curl.h under /usr/include/<multiarch>, which the compiler searches by
-- itself but LuaRocks does not; the library is found in lib/<multiarch> by LuaRocks' own search.
external_dependencies = {
  CURL = { library = "curl" },
  OPENSSL = { header = "openssl/hmac.h", library = "crypto" },
}
build = {
  type = "builtin",
  modules = {
    ["sigmamind.core"] = {
      sources = {
        "src/core.c", "src/clock.c", "src/endpoints.c", "src/validate.c", "src/encode.c", "src/json.c",
        "src/error.c", "src/crypto.c", "src/journal.c", "src/httpdate.c", "src/request.c", "src/policy.c",
        "src/transfer.c", "src/attempt.c", "src/client.c", "src/multi.c", "src/mime.c", "src/options.c",
        "src/interrupt.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "curl", "crypto" },
      incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)" },
    },
    ["sigmamind"]       = "lua/sigmamind/init.lua",
    ["sigmamind.records"] = "lua/sigmamind/records.lua",
    ["sigmamind.resource"] = "lua/sigmamind/resource.lua",
    ["sigmamind.resources.calls"] = "lua/sigmamind/resources/calls.lua",
    ["sigmamind.resources.campaigns"] = "lua/sigmamind/resources/campaigns.lua",
    ["sigmamind.resources.webhooks"] = "lua/sigmamind/resources/webhooks.lua",
    ["sigmamind.pager"] = "lua/sigmamind/pager.lua",
    ["sigmamind.log"]   = "lua/sigmamind/log.lua",
    ["sigmamind.describe"] = "lua/sigmamind/describe.lua",
    ["sigmamind.build"] = "lua/sigmamind/build.lua",
    ["sigmamind.rules"] = "lua/sigmamind/rules.lua",
    ["sigmamind.csv"]   = "lua/sigmamind/csv.lua",
    ["sigmamind.webhook"] = "lua/sigmamind/webhook.lua",
    ["sigmamind.reconcile"] = "lua/sigmamind/reconcile.lua",
    ["sigmamind.isotime"] = "lua/sigmamind/isotime.lua",
    ["sigmamind.report"] = "lua/sigmamind/report.lua",
    ["sigmamind.task"]  = "lua/sigmamind/task.lua",
    ["sigmamind.transfers"] = "lua/sigmamind/transfers.lua",
    ["sigmamind.dial"]  = "lua/sigmamind/dial.lua",
    ["sigmamind.ngx"]   = "lua/sigmamind/ngx.lua",
    ["sigmamind.observe"] = "lua/sigmamind/observe.lua",
    ["sigmamind.upload"] = "lua/sigmamind/upload.lua",
    ["sigmamind.doctor"] = "lua/sigmamind/doctor.lua",
    ["sigmamind.cli"]           = "lua/sigmamind/cli/init.lua",
    ["sigmamind.cli.context"]   = "lua/sigmamind/cli/context.lua",
    ["sigmamind.cli.output"]    = "lua/sigmamind/cli/output.lua",
    ["sigmamind.cli.calls"]     = "lua/sigmamind/cli/calls.lua",
    ["sigmamind.cli.campaigns"] = "lua/sigmamind/cli/campaigns.lua",
    ["sigmamind.cli.numbers"]   = "lua/sigmamind/cli/numbers.lua",
    ["sigmamind.cli.webhooks"]  = "lua/sigmamind/cli/webhooks.lua",
    ["sigmamind.cli.agents"]    = "lua/sigmamind/cli/agents.lua",
    ["sigmamind.cli.dial"]      = "lua/sigmamind/cli/dial.lua",
    ["sigmamind.cli.doctor"]    = "lua/sigmamind/cli/doctor.lua",
    ["sigmamind.cli.sandbox"]   = "lua/sigmamind/cli/sandbox.lua",
    ["sigmamind.cli.completion"] = "lua/sigmamind/cli/completion.lua",
  },
  install = { bin = { sigmamind = "bin/sigmamind", ["sigmamind-sandbox"] = "bin/sigmamind-sandbox" } },
  copy_directories = { "examples", "sandbox" },
}
test = { type = "busted" }
