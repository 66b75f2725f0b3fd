#!/bin/sh
# Installs the Debian packages the build, the sandbox and the specs need, unless all are present.
# A stamp per package list (under build/, so `make clean` or a fresh clone checks again) makes
# reruns free.
set -eu
PKGS="${*:-lua5.4 liblua5.4-dev lua-cjson lua-busted lua-socket nginx libnginx-mod-http-lua lua-resty-core
      libcurl4-openssl-dev libssl-dev openssl pkg-config gcc make curl tzdata luarocks lua-argparse tmux
      libluajit2-5.1-dev luajit2 lua5.1 liblua5.1-0-dev lua-check lua-ldoc lua-markdown ca-certificates}"
stamp="build/.deps/$(echo $PKGS | cksum | tr ' ' -)"
[ -f "$stamp" ] && exit 0
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then mkdir -p build/.deps && : > "$stamp"; exit 0; fi
echo "deps: installing$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "deps: missing Debian packages:$missing (run as root: apt-get install$missing)" >&2; exit 2
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# nginx's post-install must not start a system nginx on port 80
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq >/dev/null 2>&1 || $SUDO apt-get update
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
mkdir -p build/.deps && : > "$stamp"
