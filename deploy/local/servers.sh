#!/usr/bin/env bash
# Starts and stops the servers the distributed mode and the integration tests need:
# PostgreSQL and nats-server (JetStream), on free loopback ports, with every file under
# one state directory. Installs them from Debian packages when absent. No Docker here.
#
#   servers.sh start <state-dir>         start both (idempotent); writes <state-dir>/env
#   servers.sh stop <state-dir>          stop exactly what start started (idempotent)
#   servers.sh restart-nats <state-dir>  stop and start NATS on the same port and store
#   servers.sh status <state-dir>        print what is running
#
# <state-dir>/env is shell- and dotenv-readable: HCP_DATABASE_URL, HCP_NATS_URL,
# HCP_SERVERS_DIR, plus the ports and pids the script needs to stop things again.
set -Eeuo pipefail

log() { printf '[servers] %s\n' "$*" >&2; }
die() {
  printf '[servers] ERROR: %s\n' "$*" >&2
  # Kept for callers that only see the exit code (the jest integration setup's banner).
  if [ -n "${STATE:-}" ] && [ -d "$STATE" ]; then printf '%s\n' "$*" >"$STATE/last-error"; fi
  exit 1
}

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -eq 2 ] || usage
CMD=$1
mkdir -p "$2"
STATE=$(cd "$2" && pwd)
ENV_FILE="$STATE/env"
PG_DB=hcp
PG_USER=hcp

is_root() { [ "$(id -u)" = 0 ]; }

# PostgreSQL refuses to run as root: as root, its commands run as the postgres user.
as_pg() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

apt_update() {
  if [ -z "${APT_UPDATED:-}" ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
}

apt_install() {
  is_root || die "$* is not installed and installing it needs root (apt-get install $*)"
  apt_update
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

pg_bindir() {
  local d
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then
    echo "$d"
  elif command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

ensure_postgres() {
  PG_BIN=$(pg_bindir)
  if [ -z "$PG_BIN" ]; then
    apt_install postgresql
    PG_BIN=$(pg_bindir)
    [ -n "$PG_BIN" ] || die "postgresql installed but initdb not found"
  fi
  log "PostgreSQL binaries: $PG_BIN ($("$PG_BIN/postgres" --version))"
}

ensure_nats() {
  NATS_BIN=$(command -v nats-server || true)
  if [ -z "$NATS_BIN" ] && command -v go >/dev/null 2>&1 && [ -x "$(go env GOPATH)/bin/nats-server" ]; then
    NATS_BIN="$(go env GOPATH)/bin/nats-server"
  fi
  if [ -z "$NATS_BIN" ] && is_root; then
    apt_update
    if apt-cache show nats-server >/dev/null 2>&1; then
      apt_install nats-server
      NATS_BIN=$(command -v nats-server || true)
    else
      log "nats-server is not in apt"
    fi
  fi
  if [ -z "$NATS_BIN" ]; then
    command -v go >/dev/null 2>&1 || die "nats-server is not installed, not in apt, and Go is missing"
    log "go install github.com/nats-io/nats-server/v2@latest"
    go install github.com/nats-io/nats-server/v2@latest >&2
    NATS_BIN="$(go env GOPATH)/bin/nats-server"
    [ -x "$NATS_BIN" ] || die "go install did not produce nats-server"
  fi
  log "nats-server: $NATS_BIN ($("$NATS_BIN" --version))"
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{process.stdout.write(String(s.address().port));s.close()})'
}

wait_for() {
  local what=$1 seconds=$2
  shift 2
  local i
  for ((i = 0; i < seconds * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "$what did not answer within ${seconds}s"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

load_env() {
  # shellcheck disable=SC1090
  [ -f "$ENV_FILE" ] && . "$ENV_FILE"
}

write_env() {
  local tmp="$ENV_FILE.tmp"
  cat >"$tmp" <<EOF
HCP_DATABASE_URL=postgres://$PG_USER:${PG_PASSWORD:-}@127.0.0.1:${PG_PORT:-}/$PG_DB
HCP_NATS_URL=nats://127.0.0.1:${NATS_PORT:-}
HCP_SERVERS_DIR=$STATE
PG_BIN=${PG_BIN:-}
PG_DATA=${PG_DATA:-}
PG_PORT=${PG_PORT:-}
PG_PASSWORD=${PG_PASSWORD:-}
PG_PID=${PG_PID:-}
NATS_BIN=${NATS_BIN:-}
NATS_PORT=${NATS_PORT:-}
NATS_MON_PORT=${NATS_MON_PORT:-}
NATS_STORE=$STATE/nats
NATS_PID=${NATS_PID:-}
EOF
  chmod 600 "$tmp"
  mv "$tmp" "$ENV_FILE"
}

pg_pid_of() {
  if [ -f "$PG_DATA/postmaster.pid" ]; then head -n 1 "$PG_DATA/postmaster.pid"; fi
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }

start_postgres() {
  if [ -n "${PG_DATA:-}" ] && alive "$(pg_pid_of)"; then
    PG_PID=$(pg_pid_of)
    log "PostgreSQL already running (pid $PG_PID, port $PG_PORT)"
    return
  fi
  ensure_postgres
  PG_PORT=${PG_PORT:-$(free_port)}
  PG_DATA=${PG_DATA:-$STATE/pg}
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    # The postgres user must reach the data dir; a private temp dir may block it.
    if is_root && ! runuser -u postgres -- test -x "$STATE"; then
      chmod o+x "$STATE" 2>/dev/null || true
    fi
    if is_root && ! runuser -u postgres -- test -x "$STATE"; then
      PG_DATA=$(mktemp -d /tmp/hcp-pg.XXXXXX)
      log "postgres cannot reach $STATE; data dir is $PG_DATA"
    fi
    mkdir -p "$PG_DATA"
    chmod 700 "$PG_DATA"
    if is_root; then chown postgres: "$PG_DATA"; fi
    PG_PASSWORD=$(openssl rand -hex 16)
    log "initdb $PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 >"$STATE/initdb.log" 2>&1 ||
      die "initdb failed; see $STATE/initdb.log"
  fi
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off" start 9>&- >&2 ||
    die "PostgreSQL did not start; see $PG_DATA/server.log"
  wait_for PostgreSQL 30 pg_ready
  PG_PID=$(pg_pid_of)
  # Role and database, created once; the role may create databases (tests use scratch ones).
  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DATA" -p "$PG_PORT" -U postgres -d postgres)
  if [ "$(as_pg "${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" != 1 ]; then
    as_pg "${psql[@]}" -c "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD'"
    as_pg "${psql[@]}" -c "CREATE DATABASE $PG_DB OWNER $PG_USER"
    log "created role and database $PG_DB"
  fi
  log "PostgreSQL up (pid $PG_PID)"
}

# bash's /dev/tcp, not curl: a fresh machine may not have curl.
nats_healthy() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$NATS_MON_PORT" || exit 1
    printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    read -r _ status _ <&3 || exit 1
    [ "$status" = 200 ]
  ) 2>/dev/null
}

# The pid is ours only if it is a nats-server with our store dir (pids get reused).
nats_is_ours() {
  alive "${NATS_PID:-}" && tr '\0' ' ' <"/proc/$NATS_PID/cmdline" 2>/dev/null | grep -q -- "-sd $STATE/nats"
}

start_nats() {
  if nats_is_ours; then
    log "nats-server already running (pid $NATS_PID, port $NATS_PORT)"
    return
  fi
  ensure_nats
  NATS_PORT=${NATS_PORT:-$(free_port)}
  NATS_MON_PORT=${NATS_MON_PORT:-$(free_port)}
  mkdir -p "$STATE/nats"
  log "starting nats-server (JetStream) on 127.0.0.1:$NATS_PORT, monitor :$NATS_MON_PORT"
  rm -f "$STATE/nats.pid"
  # setsid: the server outlives this script and the caller's process group.
  setsid "$NATS_BIN" -js -sd "$STATE/nats" -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MON_PORT" \
    -l "$STATE/nats.log" -P "$STATE/nats.pid" </dev/null >/dev/null 2>&1 9>&- &
  wait_for nats-server 30 nats_healthy
  NATS_PID=$(cat "$STATE/nats.pid")
  log "nats-server up (pid $NATS_PID)"
}

stop_nats() {
  if ! nats_is_ours; then
    log "nats-server not running"
    NATS_PID=
    return
  fi
  log "stopping nats-server (pid $NATS_PID)"
  kill -TERM "$NATS_PID"
  local i
  for ((i = 0; i < 100; i++)); do
    alive "$NATS_PID" || break
    sleep 0.1
  done
  if alive "$NATS_PID"; then
    log "nats-server did not exit; killing"
    kill -KILL "$NATS_PID" || true
  fi
  NATS_PID=
}

stop_postgres() {
  if [ -z "${PG_DATA:-}" ] || ! alive "$(pg_pid_of)"; then
    log "PostgreSQL not running"
    PG_PID=
    return
  fi
  log "stopping PostgreSQL (pid $(pg_pid_of))"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >&2
  PG_PID=
}

# One command at a time per state dir. The servers are started with fd 9 closed, so they
# never hold the lock after this script exits.
exec 9>"$STATE/.servers.lock"
flock -w 120 9 || die "another servers.sh holds $STATE/.servers.lock"

load_env || true
rm -f "$STATE/last-error"
# Any other failing command (set -e) leaves what failed for the caller too.
on_error() {
  [ -f "$STATE/last-error" ] || echo "servers.sh $CMD: '$3' failed (exit $1, line $2)" >"$STATE/last-error"
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR
case "$CMD" in
  start)
    start_postgres
    write_env # so that stop finds PostgreSQL even if NATS fails to start
    start_nats
    write_env
    log "ready; env in $ENV_FILE"
    ;;
  stop)
    [ -f "$ENV_FILE" ] || {
      log "nothing started in $STATE"
      exit 0
    }
    stop_nats
    stop_postgres
    write_env
    log "stopped"
    ;;
  restart-nats)
    [ -f "$ENV_FILE" ] || die "nothing started in $STATE; run start first"
    stop_nats
    start_nats
    write_env
    ;;
  status)
    [ -f "$ENV_FILE" ] || {
      log "nothing started in $STATE"
      exit 0
    }
    if alive "$(pg_pid_of)"; then log "PostgreSQL running (pid $(pg_pid_of), port $PG_PORT)"; else log "PostgreSQL stopped"; fi
    if nats_is_ours; then log "nats-server running (pid $NATS_PID, port $NATS_PORT)"; else log "nats-server stopped"; fi
    ;;
  *) usage ;;
esac
