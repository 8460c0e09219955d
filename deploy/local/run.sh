#!/usr/bin/env bash
# Runs the distributed stack on one machine: PostgreSQL and NATS (via servers.sh), then
# grant-store and policy-decision as separate processes against them. Stops everything
# it started on exit (Ctrl-C, SIGTERM, or --once after the health checks pass).
#
#   deploy/local/run.sh [--once] [state-dir]
#
# Needs `pnpm build` first. Ports: grant-store $HCP_GRANT_STORE_PORT (50061),
# policy-decision gRPC $HCP_PDP_GRPC_PORT (50062) and HTTP $HCP_PDP_HTTP_PORT (8091),
# handle-vault $HCP_VAULT_PORT (50063), audit-log REST $HCP_AUDIT_HTTP_PORT (8092).
# Token settings for audit-log come from HCP_AUTH_* (default: HS256 with a secret generated
# into the state directory, issuer hcp-local, audience hcp); vault keys from HCP_VAULT_KEYS /
# HCP_VAULT_ACTIVE_KEY (default: one key generated into the state directory).
set -euo pipefail
cd "$(dirname "$0")/../.."
ONCE=0
if [ "${1:-}" = "--once" ]; then ONCE=1; shift; fi
STATE=${1:-$(mktemp -d -t hcp-local-XXXXXX)}
SERVERS=deploy/local/servers.sh
GS_PORT=${HCP_GRANT_STORE_PORT:-50061}
PDP_PORT=${HCP_PDP_GRPC_PORT:-50062}
PDP_HTTP=${HCP_PDP_HTTP_PORT:-8091}
VAULT_PORT=${HCP_VAULT_PORT:-50063}
AUDIT_HTTP=${HCP_AUDIT_HTTP_PORT:-8092}
PIDS=()

log() { printf '[run] %s\n' "$*" >&2; }

cleanup() {
  local code=$?
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$SERVERS" stop "$STATE" || true
  log "stopped (state in $STATE)"
  exit $code
}
trap cleanup EXIT INT TERM

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$name did not open port $port"
  return 1
}

[ -f services/grant-store/dist/main.js ] || { log "run 'pnpm build' first"; exit 1; }
"$SERVERS" start "$STATE"
set -a
# shellcheck disable=SC1091
. "$STATE/env"
set +a

# Local secrets live in the state directory (mode 600), never in the repository.
secret() { [ -f "$STATE/$1" ] || (umask 077 && head -c 32 /dev/urandom | base64 >"$STATE/$1"); cat "$STATE/$1"; }
export HCP_AUTH_ISSUER=${HCP_AUTH_ISSUER:-hcp-local} HCP_AUTH_AUDIENCE=${HCP_AUTH_AUDIENCE:-hcp}
if [ -z "${HCP_AUTH_PUBLIC_KEY_FILE:-}${HCP_AUTH_JWKS_URL:-}" ]; then
  export HCP_AUTH_HS256_SECRET=${HCP_AUTH_HS256_SECRET:-$(secret auth-secret)}
fi
export HCP_VAULT_KEYS=${HCP_VAULT_KEYS:-k1:$(secret vault-key-k1)} HCP_VAULT_ACTIVE_KEY=${HCP_VAULT_ACTIVE_KEY:-k1}

log "starting audit-log on $AUDIT_HTTP"
HCP_AUDIT_HTTP_PORT=$AUDIT_HTTP HCP_AUDIT_GRPC_PORT=0 node services/audit-log/dist/main.js >"$STATE/audit-log.log" 2>&1 &
PIDS+=($!)
wait_port "$AUDIT_HTTP" audit-log

log "starting grant-store on $GS_PORT"
HCP_GRANT_STORE_PORT=$GS_PORT node services/grant-store/dist/main.js >"$STATE/grant-store.log" 2>&1 &
PIDS+=($!)
wait_port "$GS_PORT" grant-store

log "starting handle-vault on $VAULT_PORT"
HCP_VAULT_PORT=$VAULT_PORT node services/handle-vault/dist/main.js >"$STATE/handle-vault.log" 2>&1 &
PIDS+=($!)
wait_port "$VAULT_PORT" handle-vault

log "starting policy-decision on $PDP_PORT (HTTP $PDP_HTTP)"
HCP_GRANT_STORE_URL=127.0.0.1:$GS_PORT HCP_PDP_GRPC_PORT=$PDP_PORT HCP_PDP_HTTP_PORT=$PDP_HTTP \
  node services/policy-decision/dist/main.js >"$STATE/policy-decision.log" 2>&1 &
PIDS+=($!)
wait_port "$PDP_PORT" policy-decision
wait_port "$PDP_HTTP" policy-decision-http

cat <<EOT
grant-store      grpc://127.0.0.1:$GS_PORT
policy-decision  grpc://127.0.0.1:$PDP_PORT   http://127.0.0.1:$PDP_HTTP/access/v1/evaluation
handle-vault     grpc://127.0.0.1:$VAULT_PORT
audit-log        http://127.0.0.1:$AUDIT_HTTP/v1/audit/entries
PostgreSQL       $HCP_DATABASE_URL
NATS             $HCP_NATS_URL
logs             $STATE/*.log
EOT
if [ "$ONCE" = 1 ]; then
  wait_port "$PDP_HTTP" readyz && log "ready"
  exit 0
fi
log "serving; Ctrl-C to stop"
wait -n "${PIDS[@]}"
log "a service exited; see $STATE/*.log"
exit 1
