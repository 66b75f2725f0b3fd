#!/bin/sh
# make bench: runs bench/run.lua under lua5.4 with the module on the paths (when make has not set them already).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
: "${LUA:=lua5.4}"
LUA_PATH="${LUA_PATH:-$root/lua/?.lua;$root/lua/?/init.lua;;}"
LUA_CPATH="${LUA_CPATH:-$root/build/?.so;;}"
export LUA_PATH LUA_CPATH LUA
cd "$root"
exec "$LUA" bench/run.lua "$@"
