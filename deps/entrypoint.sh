#!/bin/sh
# Container entrypoint of the h1mock image (docker/Dockerfile).
#
#   h1mock-entrypoint.sh [TRAFFIC_PORT [ADMIN_PORT [VERBOSE [IPV6]]]] [--OPTION...]
#   h1mock-entrypoint.sh healthcheck
#   h1mock-entrypoint.sh --help | --version | --check FILE...
#
# The four positional arguments are those of the Flask-based h1mock image
# (an empty one means "not given"); the same settings can come from the
# variables TRAFFIC_PORT, ADMIN_PORT, VERBOSE and IPV6, or from h1mock's own
# H1MOCK_PORT, H1MOCK_ADMIN_PORT, H1MOCK_VERBOSE and H1MOCK_ADDRESS, which
# h1mock reads itself. The first that is set wins, in that order: argument,
# H1MOCK_* variable, short variable. VERBOSE and IPV6 take 1/true/yes/on or
# 0/false/no/off ("verbose" and "ipv6" also mean on); IPV6 on listens on '::'.
# Arguments starting with '-' are passed to h1mock as they are, after the
# ones derived here, so they win (see h1mock --help).
#
# Provisions: h1mock serves $H1MOCK_PROVISIONS (default /app/provision). When
# $H1MOCK_CONFIG_DIR (default /config, where a Kubernetes ConfigMap is
# mounted) holds provisions and the provisions directory holds none, h1mock
# serves the ConfigMap directly, so that updating the ConfigMap changes the
# served provision without a restart (posted provisions then go to
# --state-dir). When both hold provisions, the ConfigMap's files are copied
# into the provisions directory first, as the Flask image did.
#
# H1MOCK_BIN (default /usr/local/bin/h1mock) and H1MOCK_RUN_DIR (default
# /tmp: where the admin URL is noted for `healthcheck`, whose curl gives up
# after H1MOCK_HEALTH_TIMEOUT seconds, default 3) let the script run outside
# the image. h1mock replaces this shell (exec), so SIGTERM reaches
# it: it lets requests in flight finish, then exits 0.
set -eu

me="h1mock-entrypoint"
bin=${H1MOCK_BIN:-/usr/local/bin/h1mock}
config_dir=${H1MOCK_CONFIG_DIR:-/config}
run_dir=${H1MOCK_RUN_DIR:-/tmp}
health_file="$run_dir/h1mock-admin.url"

say() { echo "$me: $*" >&2; }
die() {
  say "$*"
  exit 2
}

# port VALUE SOURCE: VALUE if it is a port number, else stops naming SOURCE.
port() {
  case $1 in
    '' | *[!0-9]* | ??????*) die "$2: '$1' is not a port (0-65535)" ;;
  esac
  [ "$1" -le 65535 ] || die "$2: '$1' is not a port (0-65535)"
  printf "%s\n" "$1"
}

# switch VALUE SOURCE WORD: "1" or "0"; WORD (e.g. "verbose") also means on.
switch() {
  v=$(printf "%s" "$1" | tr '[:upper:]' '[:lower:]')
  case $v in
    1 | true | yes | on | "$3") echo 1 ;;
    0 | false | no | off) echo 0 ;;
    *) die "$2: '$1' is not a switch (1/0, true/false, yes/no, on/off)" ;;
  esac
}

healthcheck() {
  url=""
  if [ -r "$health_file" ]; then
    url=$(cat "$health_file")
  fi
  if [ -z "$url" ]; then
    url="http://127.0.0.1:${H1MOCK_ADMIN_PORT:-${ADMIN_PORT:-8074}}/healthz"
  fi
  exec curl -fsS --noproxy '*' --max-time "${H1MOCK_HEALTH_TIMEOUT:-3}" -o /dev/null "$url"
}

# has_provisions DIR: true when DIR holds a file whose name does not start
# with '.' (a ConfigMap's "..data" and its timestamped folders do).
has_provisions() {
  for f in "$1"/*; do
    if [ -f "$f" ]; then
      return 0
    fi
  done
  return 1
}

case ${1:-} in
  healthcheck)
    healthcheck
    ;;
  --help | -h | --version | -V | --check)
    exec "$bin" "$@"
    ;;
esac

# Positional arguments of the Flask image: up to four, before any option.
a_port="" a_admin="" a_verbose="" a_ipv6="" n=0
while [ $# -gt 0 ] && [ $n -lt 4 ]; do
  case $1 in
    -*) break ;;
  esac
  n=$((n + 1))
  case $n in
    1) a_port=$1 ;;
    2) a_admin=$1 ;;
    3) a_verbose=$1 ;;
    4) a_ipv6=$1 ;;
  esac
  shift
done

# What the options passed through say about the settings decided here.
o_admin="" o_address="" o_provisions="" next=""
for a in "$@"; do
  case $next in
    admin-port) o_admin=$a ;;
    address) o_address=$a ;;
    provisions) o_provisions=$a ;;
  esac
  next=""
  case $a in
    --admin-port=*) o_admin=${a#*=} ;;
    --address=*) o_address=${a#*=} ;;
    --provisions=*) o_provisions=${a#*=} ;;
    --admin-port | --address | --provisions) next=${a#--} ;;
  esac
done

# Options derived here are put in front of those passed through (which win).

ipv6=0
if [ -n "$a_ipv6" ]; then
  ipv6=$(switch "$a_ipv6" "argument 4 (ipv6)" ipv6)
elif [ -z "${H1MOCK_ADDRESS:-}" ] && [ -n "${IPV6:-}" ]; then
  ipv6=$(switch "$IPV6" IPV6 ipv6)
fi
address=${o_address:-${H1MOCK_ADDRESS:-}}
if [ "$ipv6" = 1 ]; then
  set -- --address :: "$@"
  address=${o_address:-::}
fi

# (A failing $(...) stops the script only in an assignment: hence the
# variables.)
if [ -n "$a_verbose" ]; then
  v=$(switch "$a_verbose" "argument 3 (verbose)" verbose)
  set -- --verbose="$v" "$@"
elif [ -z "${H1MOCK_VERBOSE:-}" ] && [ -n "${VERBOSE:-}" ]; then
  v=$(switch "$VERBOSE" VERBOSE verbose)
  set -- --verbose="$v" "$@"
fi

admin=${H1MOCK_ADMIN_PORT:-8074}
if [ -n "$a_admin" ]; then
  admin=$(port "$a_admin" "argument 2 (admin port)")
  set -- --admin-port "$admin" "$@"
elif [ -z "${H1MOCK_ADMIN_PORT:-}" ] && [ -n "${ADMIN_PORT:-}" ]; then
  admin=$(port "$ADMIN_PORT" ADMIN_PORT)
  set -- --admin-port "$admin" "$@"
fi
admin=${o_admin:-$admin}

if [ -n "$a_port" ]; then
  v=$(port "$a_port" "argument 1 (traffic port)")
  set -- --port "$v" "$@"
elif [ -z "${H1MOCK_PORT:-}" ] && [ -n "${TRAFFIC_PORT:-}" ]; then
  v=$(port "$TRAFFIC_PORT" TRAFFIC_PORT)
  set -- --port "$v" "$@"
fi

# Provisions: an explicit --provisions is the caller's choice; otherwise the
# ConfigMap directory is served directly, copied, or left alone.
if [ -z "$o_provisions" ]; then
  provisions=${H1MOCK_PROVISIONS:-/app/provision}
  if [ "$config_dir" != "$provisions" ] && has_provisions "$config_dir"; then
    if has_provisions "$provisions"; then
      for f in "$config_dir"/*; do
        if [ -f "$f" ]; then
          cp "$f" "$provisions/" || die "cannot copy $f into $provisions"
        fi
      done
      say "copied the provisions of $config_dir into $provisions (later changes to $config_dir are not followed)"
    else
      provisions=$config_dir
      say "serving the provisions of $config_dir directly (changes to it apply without a restart)"
    fi
  elif [ ! -e "$provisions" ]; then
    mkdir -p "$provisions" 2>/dev/null || true
  fi
  set -- --provisions "$provisions" "$@"
fi

# Where `healthcheck` finds the admin port; a wildcard address is reached
# on loopback. Best effort: without it, healthcheck falls back to the
# variables.
case $address in
  '' | 0.0.0.0 | :: | '[::]') host=127.0.0.1 ;;
  \[*) host=$address ;;
  *:*) host="[$address]" ;;
  *) host=$address ;;
esac
case $admin in
  '' | *[!0-9]* | 0) rm -f "$health_file" 2>/dev/null || true ;;
  *) { printf 'http://%s:%s/healthz\n' "$host" "$admin" >"$health_file.$$" &&
    mv -f "$health_file.$$" "$health_file"; } 2>/dev/null || rm -f "$health_file.$$" 2>/dev/null || true ;;
esac

if [ ! -x "$bin" ]; then
  say "h1mock binary '$bin' is missing or not executable (set H1MOCK_BIN)"
  exit 127
fi
exec "$bin" "$@"
