#!/bin/sh
# `make demo`: start the sandbox, run the quickstart and campaign examples against it, stop it.
set -eu
cd "$(dirname "$0")/.."
env_file=$(mktemp)
trap 'bin/sigmamind-sandbox stop --prefix "${SIGMAMIND_SANDBOX_PREFIX:-}" >/dev/null 2>&1 || true; rm -f "$env_file"' EXIT
bin/sigmamind-sandbox --port 0 --speed 20 --daemon > "$env_file"
set -a; . "$env_file"; set +a
echo "== sandbox at $SIGMAMIND_BASE_URL (key $SIGMAMIND_API_KEY)"
echo "== examples/quickstart.lua"
lua5.4 examples/quickstart.lua
echo "== examples/campaign.lua"
lua5.4 examples/campaign.lua
echo "== demo done"
