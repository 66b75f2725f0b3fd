#!/bin/sh
# Writes OUT, a lua wrapper that runs LUA with the ASan runtime preloaded through ld.so (not
# LD_PRELOAD, which every child process the specs start would inherit), plus include/ and lib/
# beside it, where luarocks looks for Lua's headers. Usage: tools/asan-wrap.sh OUT LUA CC
set -e
out=$1; lua=$(command -v "$2"); cc=$3
ldso=$(readelf -l "$lua" | sed -n 's/.*interpreter: \(.*\)]/\1/p')
mkdir -p "$(dirname "$out")"
printf '#!/bin/sh\nexec %s --preload %s %s "$@"\n' "$ldso" "$($cc -print-file-name=libasan.so)" "$lua" > "$out"
chmod +x "$out"
base=$(dirname "$(dirname "$out")")
ln -sfn /usr/include "$base/include"; ln -sfn /usr/lib "$base/lib"
