rockspec_format = "3.0"
package = "sigmamind"
version = "0.2.0-1"
source = {
   url = "git+https://github.com/lua-sigmamind/lua-sigmamind.git",
   tag = "v0.2.0"
}
description = {
   summary = "Place and track outbound phone calls handled by SigmaMind AI voice agents",
   detailed = [[
    A C core over libcurl (one kept-alive connection, validation before sending, typed errors,
    retries that never ring a person twice) under a small pure-Lua layer: resource namespaces,
    lazy pagination, campaign builders and RFC 4180 CSV.
  ]],
   homepage = "https://github.com/lua-sigmamind/lua-sigmamind",
   license = "MIT"
}
supported_platforms = {
   "linux"
}
dependencies = {
   "lua >= 5.1, < 5.5"
}
external_dependencies = {
   CURL = {
      library = "curl"
   },
   OPENSSL = {
      header = "openssl/hmac.h",
      library = "crypto"
   }
}
build = {
   type = "builtin",
   modules = {
      sigmamind = "lua/sigmamind/init.lua",
      ["sigmamind.build"] = "lua/sigmamind/build.lua",
      ["sigmamind.cli"] = "lua/sigmamind/cli/init.lua",
      ["sigmamind.cli.agents"] = "lua/sigmamind/cli/agents.lua",
      ["sigmamind.cli.calls"] = "lua/sigmamind/cli/calls.lua",
      ["sigmamind.cli.campaigns"] = "lua/sigmamind/cli/campaigns.lua",
      ["sigmamind.cli.completion"] = "lua/sigmamind/cli/completion.lua",
      ["sigmamind.cli.context"] = "lua/sigmamind/cli/context.lua",
      ["sigmamind.cli.dial"] = "lua/sigmamind/cli/dial.lua",
      ["sigmamind.cli.doctor"] = "lua/sigmamind/cli/doctor.lua",
      ["sigmamind.cli.numbers"] = "lua/sigmamind/cli/numbers.lua",
      ["sigmamind.cli.output"] = "lua/sigmamind/cli/output.lua",
      ["sigmamind.cli.sandbox"] = "lua/sigmamind/cli/sandbox.lua",
      ["sigmamind.cli.webhooks"] = "lua/sigmamind/cli/webhooks.lua",
      ["sigmamind.core"] = {
         defines = {
            "_POSIX_C_SOURCE=200809L"
         },
         incdirs = {
            "$(CURL_INCDIR)",
            "$(OPENSSL_INCDIR)"
         },
         libdirs = {
            "$(CURL_LIBDIR)",
            "$(OPENSSL_LIBDIR)"
         },
         libraries = {
            "curl",
            "crypto"
         },
         sources = {
            "src/core.c",
            "src/clock.c",
            "src/endpoints.c",
            "src/validate.c",
            "src/encode.c",
            "src/json.c",
            "src/error.c",
            "src/crypto.c",
            "src/journal.c",
            "src/httpdate.c",
            "src/request.c",
            "src/policy.c",
            "src/transfer.c",
            "src/attempt.c",
            "src/client.c",
            "src/multi.c",
            "src/mime.c",
            "src/options.c",
            "src/interrupt.c"
         }
      },
      ["sigmamind.csv"] = "lua/sigmamind/csv.lua",
      ["sigmamind.describe"] = "lua/sigmamind/describe.lua",
      ["sigmamind.dial"] = "lua/sigmamind/dial.lua",
      ["sigmamind.doctor"] = "lua/sigmamind/doctor.lua",
      ["sigmamind.isotime"] = "lua/sigmamind/isotime.lua",
      ["sigmamind.log"] = "lua/sigmamind/log.lua",
      ["sigmamind.ngx"] = "lua/sigmamind/ngx.lua",
      ["sigmamind.observe"] = "lua/sigmamind/observe.lua",
      ["sigmamind.pager"] = "lua/sigmamind/pager.lua",
      ["sigmamind.reconcile"] = "lua/sigmamind/reconcile.lua",
      ["sigmamind.records"] = "lua/sigmamind/records.lua",
      ["sigmamind.report"] = "lua/sigmamind/report.lua",
      ["sigmamind.resource"] = "lua/sigmamind/resource.lua",
      ["sigmamind.resources.calls"] = "lua/sigmamind/resources/calls.lua",
      ["sigmamind.resources.campaigns"] = "lua/sigmamind/resources/campaigns.lua",
      ["sigmamind.resources.webhooks"] = "lua/sigmamind/resources/webhooks.lua",
      ["sigmamind.rules"] = "lua/sigmamind/rules.lua",
      ["sigmamind.task"] = "lua/sigmamind/task.lua",
      ["sigmamind.transfers"] = "lua/sigmamind/transfers.lua",
      ["sigmamind.upload"] = "lua/sigmamind/upload.lua",
      ["sigmamind.webhook"] = "lua/sigmamind/webhook.lua"
   },
   copy_directories = {
      "examples",
      "sandbox"
   },
   install = {
      bin = {
         sigmamind = "bin/sigmamind",
         ["sigmamind-sandbox"] = "bin/sigmamind-sandbox"
      }
   }
}
test = {
   type = "busted"
}
