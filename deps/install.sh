#!/bin/sh
# Installs the Debian 12 packages h1mock needs to build, test and benchmark.
# Idempotent: apt-get runs only when a package is missing, so CI and the
# Dockerfile can call it unconditionally.
#
#   deps/install.sh           build + test dependencies
#   deps/install.sh --bench   also wrk and nginx with the Lua module
#   deps/install.sh --runtime only what the built binary needs (Docker runtime stage)
set -eu

packages="build-essential pkg-config meson ninja-build
  liblua5.4-dev libuv1-dev node-llhttp
  python3 python3-pytest python3-requests python3-yaml python3-jsonschema curl
  clang libclang-rt-14-dev clang-format docker-compose shellcheck iproute2"

for arg in "$@"; do
  case "$arg" in
    --bench) packages="$packages wrk nginx libnginx-mod-http-lua lua-cjson util-linux jq" ;;
    --runtime) packages="liblua5.4-0 libuv1 curl" ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  exit 0
fi

echo "deps/install.sh: installing$missing" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
$sudo apt-get install -y -q --no-install-recommends $missing
