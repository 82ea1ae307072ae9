#!/bin/sh
# Installs the Debian 12 packages h1mock needs to build, test and benchmark.
# Idempotent: apt-get runs only when a package is missing, so CI and the
# Dockerfile can call it unconditionally.
#
#   deps/install.sh              build + test dependencies
#   deps/install.sh --build      only what compiling and the unit tests need (Docker build stage)
#   deps/install.sh --runtime    only what the built binary needs (Docker runtime stage)
#   deps/install.sh --bench      also wrk and nginx with the Lua module
#   deps/install.sh --containers also podman, runc and mmdebstrap (tests/containers/run.sh)
#   deps/install.sh --list ...   print the packages of the other options, install nothing
# --bench and --containers add to the build + test set; options combine.
set -eu

# One list per purpose. A library the build needs goes in $build only: the
# default set and --build both take it from there.
build="build-essential pkg-config meson ninja-build
  liblua5.4-dev libuv1-dev node-llhttp python3"
# chromium: a real browser for the CORS test (tests/integration/test_cors.py).
test="python3-pytest python3-requests python3-yaml python3-jsonschema curl
  clang libclang-rt-14-dev clang-format docker-compose shellcheck iproute2 chromium"
runtime="liblua5.4-0 libuv1 curl"
bench="wrk nginx libnginx-mod-http-lua lua-cjson util-linux jq"
# podman with Debian's own network stack (netavark + aardvark-dns, and the
# iptables it drives); runc because crun refuses hybrid cgroup hierarchies;
# mmdebstrap makes the base image from Debian's packages.
containers="podman runc netavark aardvark-dns iptables mmdebstrap"

base=""
extra=""
list=""
for arg in "$@"; do
  case "$arg" in
    --build) base="$base $build" ;;
    --runtime) base="$base $runtime" ;;
    --bench) extra="$extra $bench" ;;
    --containers) extra="$extra $containers" ;;
    --list) list=yes ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
# No --build/--runtime: the full development set; extras add to it.
packages="${base:-$build $test}$extra"

if [ -n "$list" ]; then
  # shellcheck disable=SC2086 # one package a line
  printf '%s\n' $packages | sort -u
  exit 0
fi

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
