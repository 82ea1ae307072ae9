#!/bin/sh
# The "system under test" of docker-compose.yml: what a CI job does with
# h1mock beside the service it tests, in curl calls.
#   1. wait until the admin port answers GET /healthz
#   2. provision: POST $PROVISIONS/$PROVISION.lua to /app/v1/provision/$PROVISION
#   3. clear the request journal, so that the counts below are this run's
#   4. call the mock as the real service would (foo-bar's GET and POST)
#   5. ask the journal what the mock received: GET /app/v1/requests/count
# Exits 0 after "sut: ok", or 1 with the step that failed.
#
# Environment (defaults are docker-compose.yml's names):
#   MOCK_URL        traffic base URL         (http://h1mock:8000)
#   MOCK_ADMIN_URL  admin base URL           (http://h1mock:8074)
#   PROVISIONS      folder of provisions     (/provisions)
#   PROVISION       provision to post        (foo-bar; the checks are foo-bar's)
#   ADMIN_TOKEN     bearer token for the admin API, when h1mock has one
#   WAIT_SECONDS    how long to wait for health (30)
set -eu

MOCK_URL=${MOCK_URL:-http://h1mock:8000}
MOCK_ADMIN_URL=${MOCK_ADMIN_URL:-http://h1mock:8074}
PROVISIONS=${PROVISIONS:-/provisions}
PROVISION=${PROVISION:-foo-bar}
ADMIN_TOKEN=${ADMIN_TOKEN:-}
WAIT_SECONDS=${WAIT_SECONDS:-30}

body=$(mktemp)
trap 'rm -f "$body"' EXIT

fail() {
  echo "sut: FAILED: $*" >&2
  exit 1
}

# call METHOD URL [curl options...]: the status code; the body is in $body.
call() {
  method=$1 url=$2
  shift 2
  : >"$body"
  code=$(curl -sS --noproxy '*' --max-time 10 -o "$body" -w '%{http_code}' \
    -X "$method" "$@" "$url") || true
  echo "${code:-000}"
}

# admin METHOD PATH [curl options...]: call on the admin port, with the token.
admin() {
  method=$1 path=$2
  shift 2
  if [ -n "$ADMIN_TOKEN" ]; then
    call "$method" "$MOCK_ADMIN_URL$path" -H "Authorization: Bearer $ADMIN_TOKEN" "$@"
  else
    call "$method" "$MOCK_ADMIN_URL$path" "$@"
  fi
}

# expect WHAT STATUS WANTED [TEXT]: fails unless the status (and the body) fit.
expect() {
  if [ "$2" != "$3" ]; then
    fail "$1: status $2, expected $3: $(cat "$body")"
  fi
  if [ $# -ge 4 ] && ! grep -qF -- "$4" "$body"; then
    fail "$1: the answer lacks '$4': $(cat "$body")"
  fi
  echo "sut: $1: $2"
}

# count QUERY WANTED: the journal's count of requests matching QUERY.
count() {
  status=$(admin GET "/app/v1/requests/count?$1")
  expect "journal count ?$1" "$status" 200
  got=$(sed -n 's/.*"count"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$body")
  if [ "$got" != "$2" ]; then
    fail "journal count ?$1 is '${got:-none}', expected $2: $(cat "$body")"
  fi
  echo "sut: journal count ?$1 = $got"
}

waited=0
until [ "$(call GET "$MOCK_ADMIN_URL/healthz" 2>/dev/null)" = 200 ]; do
  waited=$((waited + 1))
  if [ "$waited" -ge "$WAIT_SECONDS" ]; then
    fail "$MOCK_ADMIN_URL/healthz not healthy after $WAIT_SECONDS s"
  fi
  sleep 1
done
echo "sut: h1mock is healthy"

file="$PROVISIONS/$PROVISION.lua"
[ -r "$file" ] || fail "cannot read the provision $file"
status=$(admin POST "/app/v1/provision/$PROVISION" --data-binary "@$file" \
  -H "Content-Type: text/plain")
expect "provision $PROVISION" "$status" 201 "has been loaded"

status=$(admin DELETE /app/v1/requests)
expect "clear the journal" "$status" 200

status=$(call GET "$MOCK_URL/app/v1/foo/bar")
expect "GET /app/v1/foo/bar" "$status" 200 '"resultData":"answering a get"'
status=$(call POST "$MOCK_URL/app/v1/foo/bar" -H "Content-Type: application/json" \
  --data '{"order":42}')
expect "POST /app/v1/foo/bar" "$status" 200 '"resultData":"answering a post"'

count "method=GET&path=/app/v1/foo/bar" 1
count "endpoint=answer_post" 1
count "path_prefix=/app/v1/" 2
echo "sut: ok"
