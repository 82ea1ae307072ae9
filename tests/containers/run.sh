#!/bin/sh
# Proves docker/Dockerfile and docker/docker-compose.yml for real, with
# Debian's podman standing in for a Docker engine:
#   1. a debian:bookworm-slim base image made from Debian's packages
#      (mmdebstrap), so that nothing comes from a container registry;
#   2. the README's compose command, `docker-compose -f
#      docker/docker-compose.yml up --build --exit-code-from sut`, through
#      podman's Docker API: both images build, h1mock gets healthy, and the
#      stand-in system under test (docker/sut.sh) passes;
#   3. the image itself: non-root, health-checked, slim (no apt caches, no
#      compiler), and the README's `docker run` answering from the host.
# Prints "ok N - ..." / "not ok N - ..." per check and ends with the line
# "N passed, N failed, N skipped" that tests/run-all.sh counts. Where podman
# cannot run here (packages missing, no network for containers, ...) it
# prints why and ends "0 passed, 0 failed, 1 skipped".
#
# Nothing outside a temporary folder changes: podman's storage, run state,
# networks and API socket live there, its settings come from
# tests/containers/containers.conf (CONTAINERS_CONF), nothing under /etc is
# written. What podman and netavark add to the host (firewall chains, IP
# forwarding, /run/containers/networks, podman's blob cache, run folders and
# the /run/netns mount) is undone when it was not there before. Runs take a
# lock: two at once would share netavark's subnet.
#
#   tests/containers/run.sh       (as root, as CI runs it; after deps/install.sh --containers)
# Elsewhere it skips where podman cannot start a container.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2

STEP_TIMEOUT=${CONTAINER_TEST_TIMEOUT:-900} # seconds for one build or compose run
passed=0
failed=0
n=0
tmp=""
service_pid=""
compose_up=""

say() { echo "containers: $*"; }

skip() {
  say "skipped: $*"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
}

check() { # description, then the command whose status decides
  what=$1
  shift
  n=$((n + 1))
  if "$@"; then
    echo "ok $n - $what"
    passed=$((passed + 1))
  else
    echo "not ok $n - $what"
    failed=$((failed + 1))
  fi
}

show() { # log file: its last lines, indented, when something went wrong
  tail -n "${2:-30}" "$1" | sed 's/^/    /'
}

for tool in podman runc mmdebstrap docker-compose iptables-save flock timeout mountpoint; do
  command -v "$tool" >/dev/null 2>&1 ||
    skip "$tool is not installed (deps/install.sh --containers installs what this test needs)"
done

lock="${TMPDIR:-/tmp}/h1mock-containers.lock"
exec 9>"$lock"
if ! flock -w "$STEP_TIMEOUT" 9; then
  skip "another container test held $lock for $STEP_TIMEOUT s"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/h1mock-containers.XXXXXX") || exit 2
export CONTAINERS_CONF="$ROOT/tests/containers/containers.conf"
export TMPDIR="$tmp/tmp" # podman build's scratch files
mkdir -p "$TMPDIR"
sock="$tmp/podman.sock"
export DOCKER_HOST="unix://$sock"
project="h1mockct$$"
# Host ports: loopback, chosen by podman (compose's "${VAR:-8000}:8000").
export MOCK_TRAFFIC_PORT=127.0.0.1: MOCK_ADMIN_PORT=127.0.0.1:

pm_exec="" # "exec": pm replaces the (sub)shell that calls it
pm() { # podman on the private storage; no call outlives the step timeout
  $pm_exec timeout "${pm_timeout:-$STEP_TIMEOUT}" podman --root "$tmp/root" \
    --runroot "$tmp/runroot" --tmpdir "$tmp/libpod" --network-config-dir "$tmp/networks" \
    --runtime runc "$@"
}

compose() {
  timeout "$STEP_TIMEOUT" docker-compose -p "$project" -f docker/docker-compose.yml "$@"
}

# What netavark changes on the host, as found before the test.
had_run_networks=false
[ -e /run/containers/networks ] && had_run_networks=true
had_chains=false
iptables-save 2>/dev/null | grep -q NETAVARK && had_chains=true
forward=$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null || echo 1)
# Folders podman, runc and libmount make whatever --root says: removed
# afterwards when empty (and /run/netns unmounted), if this test made them.
made_dirs=""
for d in /run/netns /run/runc /run/mount /var/lib/containers/cache /var/lib/containers; do
  [ -e "$d" ] || made_dirs="$made_dirs $d"
done

cleanup() {
  if [ -n "$compose_up" ]; then
    compose down --rmi all --volumes --remove-orphans >"$tmp/down.log" 2>&1 ||
      show "$tmp/down.log"
  fi
  pm rm --all --force >/dev/null 2>&1
  if [ -n "$service_pid" ]; then
    kill "$service_pid" 2>/dev/null
    wait "$service_pid" 2>/dev/null
  fi
  pm rmi --all --force >/dev/null 2>&1
  pm network prune --force >/dev/null 2>&1
  if [ "$(id -u)" = 0 ]; then
    if ! $had_chains && iptables-save 2>/dev/null | grep -q NETAVARK; then
      # netavark keeps its top chains forever; drop them, nothing else.
      iptables-save | grep -v NETAVARK | iptables-restore
    fi
    if [ "$forward" = 0 ]; then echo 0 >/proc/sys/net/ipv4/ip_forward; fi
    if ! $had_run_networks; then
      rm -rf /run/containers/networks
      rmdir /run/containers 2>/dev/null
    fi
    case "$made_dirs" in # podman 4.3's blob cache ignores --root
      *" /var/lib/containers/cache"*) rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb ;;
    esac
    for d in $made_dirs; do
      # podman mounts /run/netns on itself (shared, as `ip netns` does)
      if [ "$d" = /run/netns ] && mountpoint -q "$d" && [ -z "$(ls -A "$d")" ]; then
        umount "$d"
      fi
      rmdir "$d" 2>/dev/null
    done
  fi
  if grep -q " $tmp/" /proc/mounts; then
    say "warning: mounts left under $tmp, not removed"
  elif [ -n "$tmp" ]; then
    rm -rf --one-file-system "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM

started=$(date +%s)

# -- the base image, from Debian's own packages ------------------------------
# Like Docker's debian:bookworm-slim: minbase without manuals and docs.
if ! timeout "$STEP_TIMEOUT" mmdebstrap --variant=minbase \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  bookworm "$tmp/base.tar" </dev/null >"$tmp/mmdebstrap.log" 2>&1; then
  show "$tmp/mmdebstrap.log" 10
  skip "mmdebstrap cannot make a Debian base image here (no Debian mirror reachable?)"
fi
if ! pm import "$tmp/base.tar" debian:bookworm-slim >"$tmp/import.log" 2>&1; then
  show "$tmp/import.log" 10
  skip "podman cannot store an image here"
fi
rm -f "$tmp/base.tar"
if ! pm run --rm debian:bookworm-slim true >"$tmp/probe.log" 2>&1; then
  show "$tmp/probe.log" 10
  skip "podman cannot start a container here"
fi
if ! pm run --rm debian:bookworm-slim apt-get update -q >"$tmp/probe.log" 2>&1; then
  show "$tmp/probe.log" 10
  skip "a container cannot reach Debian's mirror here"
fi

# $! is then timeout's PID, which hands its TERM on to podman. The service
# lives through every step.
(
  pm_exec="exec" pm_timeout=$((STEP_TIMEOUT * 4))
  pm system service --time=0 "unix://$sock" >"$tmp/service.log" 2>&1
) &
service_pid=$!
tries=0
until [ -S "$sock" ] || [ "$tries" -ge 300 ]; do
  tries=$((tries + 1))
  sleep 0.1
done
if [ ! -S "$sock" ]; then
  show "$tmp/service.log" 10
  skip "podman's API service did not start"
fi
say "base image and podman ready in $(($(date +%s) - started)) s"

# -- the README's compose command ---------------------------------------------
# Podman runs health checks from systemd timers, absent here: while compose
# waits for service_healthy, run the h1mock service's check every second.
compose_up=yes
compose up --build --exit-code-from sut >"$tmp/compose.log" 2>&1 &
compose_pid=$!
while kill -0 "$compose_pid" 2>/dev/null; do
  id=$(pm ps -q --filter "label=com.docker.compose.project=$project" \
    --filter label=com.docker.compose.service=h1mock 2>/dev/null)
  if [ -n "$id" ]; then pm healthcheck run "$id" >/dev/null 2>&1; fi
  sleep 1
done
wait "$compose_pid"
compose_status=$?
say "compose up --build ran in $(($(date +%s) - started)) s in all"

compose_passed() {
  [ "$compose_status" = 0 ] && grep -q "sut: ok" "$tmp/compose.log"
}
check "docker-compose up --build --exit-code-from sut: exit 0 and 'sut: ok'" compose_passed
if ! compose_passed; then show "$tmp/compose.log" 40; fi

mock_health() {
  id=$(pm ps -aq --filter "label=com.docker.compose.project=$project" \
    --filter label=com.docker.compose.service=h1mock)
  [ -n "$id" ] && [ "$(pm inspect --format '{{.State.Health.Status}}' "$id")" = healthy ]
}
check "the h1mock service got healthy through its healthcheck" mock_health

# -- the image ----------------------------------------------------------------
image=h1mock:local
inspect() { pm image inspect --format "$1" "$image" 2>/dev/null; }
in_image() { # shell command, then podman run options: run in the image
  cmd=$1
  shift
  pm run --rm --no-healthcheck "$@" --entrypoint /bin/sh "$image" -c "$cmd"
}

check "the image runs as user 10001" [ "$(inspect '{{.Config.User}}')" = 10001:10001 ]
check "the image keeps its HEALTHCHECK" \
  [ "$(inspect '{{index .Config.Healthcheck.Test 1}}')" = /usr/local/bin/h1mock-entrypoint.sh ]
check "the binary finds its libraries in the image" \
  in_image '/usr/local/bin/h1mock --version | grep -q "^h1mock "'
# As root: apt's partial/ folder is private to apt.
# shellcheck disable=SC2016 # expanded in the container
check "no apt package lists or downloaded packages in the image" \
  in_image '[ -z "$(find /var/lib/apt/lists /var/cache/apt -type f ! -name lock)" ]' --user 0
check "no compiler, meson or python in the image" \
  in_image '! command -v cc gcc meson python3 >/dev/null'

size=$(inspect '{{.Size}}')
base=$(pm image inspect --format '{{.Size}}' debian:bookworm-slim 2>/dev/null)
own=$((${size:-0} - ${base:-0}))
say "image $image: $((size / 1000000)) MB, of which h1mock's layers $((own / 1000000)) MB" \
  "over the base's $((base / 1000000)) MB"
# The runtime packages (Lua, libuv, curl) take ~14 MB; apt's caches took 98.
slim() { [ "$own" -gt 0 ] && [ "$own" -lt 40000000 ]; }
check "h1mock's layers over the base are under 40 MB" slim

# The README's `docker run`, on loopback ports podman picks.
run_answers() {
  cid=$(pm run -d -p 127.0.0.1::8000 -p 127.0.0.1::8074 \
    -v "$ROOT/provisions:/app/provision:ro" "$image" 2>"$tmp/run.log") || {
    show "$tmp/run.log" 10
    return 1
  }
  traffic=$(pm port "$cid" 8000/tcp | sed 's/.*://')
  admin=$(pm port "$cid" 8074/tcp | sed 's/.*://')
  tries=0
  until curl -sf --noproxy '*' -o /dev/null "http://127.0.0.1:$admin/healthz"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 300 ]; then
      pm logs "$cid" | tail -n 20
      pm rm -f "$cid" >/dev/null 2>&1
      return 1
    fi
    sleep 0.1
  done
  code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$traffic/health")
  pm healthcheck run "$cid" >/dev/null
  health=$?
  pm rm -f "$cid" >/dev/null 2>&1
  [ "$code" = 200 ] && [ "$health" = 0 ]
}
check "docker run: /healthz and the provisions' /health answer from the host, healthcheck passes" \
  run_answers

# -- compose down leaves nothing ------------------------------------------------
down_clean() {
  compose down --rmi all --volumes --remove-orphans >"$tmp/down.log" 2>&1 || return 1
  compose_up=""
  [ -z "$(pm ps -aq --filter "label=com.docker.compose.project=$project")" ] &&
    ! pm network exists "${project}_default"
}
check "docker-compose down removes the containers and the network" down_clean

say "done in $(($(date +%s) - started)) s"
echo "$passed passed, $failed failed, 0 skipped"
[ "$failed" -eq 0 ]
