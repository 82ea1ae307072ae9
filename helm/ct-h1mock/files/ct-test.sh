#!/bin/sh
# ct-test.sh NAME TRAFFIC_URL ADMIN_URL PATH TEXT
#
# The component test of one h1mock deployed by ct-h1mock (run by `helm
# test`, once per alias):
#   1. the provision served at start is the alias's ConfigMap 'initial':
#      GET TRAFFIC_URL/PATH answers 200 with TEXT in the body;
#   2. with ADMIN_TOKEN set, the admin API refuses a call without it (401);
#   3. the CI steps of docker/sut.sh (health, provision foo-bar, calls,
#      journal counts), with the token when there is one.
# sut.sh and foo-bar.lua are looked up beside this script (CT_FILES).
set -eu

if [ $# -ne 5 ]; then
  echo "usage: ct-test.sh NAME TRAFFIC_URL ADMIN_URL PATH TEXT" >&2
  exit 2
fi
name=$1 traffic=$2 admin=$3 path=$4 text=$5
files=${CT_FILES:-$(dirname "$0")}
ADMIN_TOKEN=${ADMIN_TOKEN:-}

fail() {
  echo "ct $name: FAILED: $*" >&2
  exit 1
}

body=$(mktemp)
trap 'rm -f "$body"' EXIT

# status URL [curl options...]: the status code; the body is in $body.
status() {
  url=$1
  shift
  : >"$body"
  code=$(curl -sS --noproxy '*' --max-time 10 -o "$body" -w '%{http_code}' "$@" "$url") || true
  echo "${code:-000}"
}

# The admin port first: once it is healthy the initial provision has loaded.
waited=0
until [ "$(status "$admin/healthz" 2>/dev/null)" = 200 ]; do
  waited=$((waited + 1))
  [ "$waited" -lt "${WAIT_SECONDS:-60}" ] || fail "$admin/healthz not healthy"
  sleep 1
done

got=$(status "$traffic$path")
[ "$got" = 200 ] || fail "GET $path: status $got, expected 200: $(cat "$body")"
grep -qF -- "$text" "$body" || fail "GET $path: the answer lacks '$text': $(cat "$body")"
echo "ct $name: the ConfigMap's initial provision answers GET $path"

if [ -n "$ADMIN_TOKEN" ]; then
  got=$(status "$admin/app/v1/provision")
  [ "$got" = 401 ] || fail "admin call without the token: status $got, expected 401"
  echo "ct $name: the admin API wants the token"
fi

MOCK_URL=$traffic MOCK_ADMIN_URL=$admin PROVISIONS=$files PROVISION=foo-bar ADMIN_TOKEN=$ADMIN_TOKEN \
  sh "$files/sut.sh" || fail "the CI steps (sut.sh) failed"
echo "ct $name: ok"
