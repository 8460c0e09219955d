#!/usr/bin/env bash
# Runs the distributed stack on one machine: PostgreSQL and NATS (via servers.sh), then
# audit-log, grant-store, handle-vault, policy-decision and the edge as separate processes
# against them, with the demo world of `pnpm start` (a sandbox folder served by the real
# filesystem MCP server, demo grants, demo tokens). Stops everything it started on exit
# (Ctrl-C, SIGTERM, or --once after the health checks and the example have passed).
#
#   deploy/local/run.sh [--once] [state-dir]        (pnpm stack:up builds first, then runs this)
#
# Needs `pnpm build` first. Ports: grant-store $HCP_GRANT_STORE_PORT (50061),
# policy-decision gRPC $HCP_PDP_GRPC_PORT (50062) and HTTP $HCP_PDP_HTTP_PORT (8091),
# handle-vault $HCP_VAULT_PORT (50063), audit-log REST $HCP_AUDIT_HTTP_PORT (8092),
# edge MCP $HCP_EDGE_PORT (8090). Token settings for audit-log and the edge come from HCP_AUTH_*
# (default: HS256 with a secret generated into the state directory, issuer hcp-local, audience
# hcp; demo tokens are minted only with HS256); vault keys from HCP_VAULT_KEYS /
# HCP_VAULT_ACTIVE_KEY and edge session keys from HCP_SESSION_KEYS (default: one key each,
# generated into the state directory). The stack is the product: with HCP_EDGE_MODE (other than
# hcp) or HCP_ABLATIONS set it refuses to start, as the edge and policy-decision themselves do (the
# benchmark composes baselines and ablations in code: pnpm bench:attacks).
# The demo world lives in <state-dir>/sandbox; the edge's providers file is
# <state-dir>/edge-providers.json (HCP_EDGE_PROVIDERS_FILE overrides it and skips the demo).
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
EDGE_PORT=${HCP_EDGE_PORT:-8090}
PIDS=()

log() { printf '[run] %s\n' "$*" >&2; }

cleanup() {
  local code=$?
  trap - EXIT INT TERM # once: a signal's exit must not run it again
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

for built in services/grant-store/dist/main.js services/edge/dist/main.js apps/embedded/dist/seed-cli.js; do
  [ -f "$built" ] || { log "$built missing: run 'pnpm build' first"; exit 1; }
done
if [ -n "${HCP_ABLATIONS:-}" ] || { [ -n "${HCP_EDGE_MODE:-}" ] && [ "${HCP_EDGE_MODE}" != hcp ]; }; then
  log "HCP_EDGE_MODE / HCP_ABLATIONS are benchmark-only (pnpm bench:attacks); unset them to run the stack"
  exit 2
fi
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
export HCP_SESSION_KEYS=${HCP_SESSION_KEYS:-k1:$(secret session-key-k1)}

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

# The demo world: the sandbox and the edge's providers file now; the demo grants once the edge
# has written the manifest entries they name (grant-store refuses grants of unknown capabilities).
SANDBOX=
seed() {
  node apps/embedded/dist/seed-cli.js --sandbox "$STATE/sandbox" "$@" >>"$STATE/seed.log" 2>&1 ||
    { cat "$STATE/seed.log" >&2; log "seeding failed"; exit 1; }
}
if [ -z "${HCP_EDGE_PROVIDERS_FILE:-}" ]; then
  log "creating the demo sandbox in $STATE/sandbox"
  seed --providers-file "$STATE/edge-providers.json"
  SANDBOX=$(cd "$STATE/sandbox" && pwd -P)
fi

log "starting edge on $EDGE_PORT"
HCP_EDGE_PORT=$EDGE_PORT HCP_GRANT_STORE_URL=127.0.0.1:$GS_PORT HCP_PDP_URL=127.0.0.1:$PDP_PORT \
  HCP_VAULT_URL=127.0.0.1:$VAULT_PORT \
  HCP_EDGE_PROVIDERS_FILE=${HCP_EDGE_PROVIDERS_FILE:-$STATE/edge-providers.json} \
  node services/edge/dist/main.js >"$STATE/edge.log" 2>&1 &
PIDS+=($!)
wait_port "$EDGE_PORT" edge
EDGE_URL=http://127.0.0.1:$EDGE_PORT/mcp
# The mode banner (the edge prints it as plain lines among its JSON logs): loud here too.
grep -v '^{' "$STATE/edge.log" >&2 || true
if [ -n "$SANDBOX" ]; then
  log "seeding the demo grants"
  seed --grant-store "127.0.0.1:$GS_PORT"
fi

# Demo tokens (12 h) for the demo principals, signed with the stack's HS256 secret.
TOKENS=0
if [ -n "${HCP_AUTH_HS256_SECRET:-}" ]; then
  mint() { (umask 077 && node apps/embedded/dist/token.js "$1" "$2" 43200 >"$STATE/$3.token"); }
  mint alice agent alice && mint bob agent bob && mint demo-operator operator operator
  TOKENS=1
fi

cat <<EOT
edge (MCP)       $EDGE_URL
grant-store      grpc://127.0.0.1:$GS_PORT
policy-decision  grpc://127.0.0.1:$PDP_PORT   http://127.0.0.1:$PDP_HTTP/access/v1/evaluation
handle-vault     grpc://127.0.0.1:$VAULT_PORT
audit-log        http://127.0.0.1:$AUDIT_HTTP/v1/audit/entries
PostgreSQL       $HCP_DATABASE_URL
NATS             $HCP_NATS_URL
logs             $STATE/*.log
EOT
if [ -n "$SANDBOX" ]; then echo "sandbox          $SANDBOX"; fi
if [ "$TOKENS" = 1 ] && [ -n "$SANDBOX" ]; then
  cat <<EOT

demo tokens (12 h) in $STATE/: alice.token (reads public/ and secrets/), bob.token (lists public/), operator.token (approves, reads the audit)

try it from another terminal:
  export HCP_EDGE_URL=$EDGE_URL HCP_TOKEN=\$(cat $STATE/alice.token)
  pnpm -s agent call fs.read_text_file '{"path":"$SANDBOX/public/hello.txt"}'   # a handle; then: pnpm -s agent peek <handle>
  pnpm -s agent call fs.read_text_file '{"path":"$SANDBOX/public/../../../etc/passwd"}'   # denied: reason code + decision id
  curl -s -H "authorization: Bearer \$(cat $STATE/operator.token)" 'http://127.0.0.1:$AUDIT_HTTP/v1/audit/entries?outcome=deny&limit=5'
EOT
fi

# --once: the printed example, run as a new user would, with the exit codes it promises.
FAILED=0
expect_exit() {
  local want=$1 what=$2 got=0
  shift 2
  "$@" >"$STATE/once.out" 2>&1 || got=$?
  if [ "$got" = "$want" ]; then
    log "ok: $what (exit $got)"
  else
    log "UNEXPECTED: $what: exit $got, wanted $want"
    sed 's/^/    /' "$STATE/once.out" >&2
    FAILED=1
  fi
}
agent() { HCP_EDGE_URL=$EDGE_URL HCP_TOKEN=$(cat "$STATE/$1.token") node apps/embedded/dist/agent.js "${@:2}"; }
# GET with an optional bearer token; prints the body, fails on a non-2xx status.
http_get() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e 'fetch(process.argv[1], { headers: process.argv[2] ? { authorization: `Bearer ${process.argv[2]}` } : {} })
    .then(async (r) => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); })
    .catch((e) => { console.error(e.message); process.exit(2); })' "$@"
}

if [ "$ONCE" = 1 ]; then
  wait_port "$PDP_HTTP" readyz && log "ready"
  expect_exit 0 "edge /readyz" http_get "http://127.0.0.1:$EDGE_PORT/readyz"
  if [ "$TOKENS" = 1 ] && [ -n "$SANDBOX" ]; then
    expect_exit 0 "alice lists her tools" agent alice tools
    grep -q 'fs.read_text_file' "$STATE/once.out" || { log "UNEXPECTED: fs.read_text_file not listed"; FAILED=1; }
    expect_exit 0 "alice reads public/hello.txt (a handle)" \
      agent alice call fs.read_text_file "{\"path\":\"$SANDBOX/public/hello.txt\"}"
    HANDLE=$(grep -o 'hdl_[A-Za-z0-9_-]*' "$STATE/once.out" | head -n 1 || true)
    if [ -n "$HANDLE" ]; then
      expect_exit 0 "alice peeks her handle" agent alice peek "$HANDLE"
      grep -q 'Hello from the HCP sandbox' "$STATE/once.out" || { log "UNEXPECTED: the peek does not show the file"; FAILED=1; }
      expect_exit 1 "bob may not peek alice's handle" agent bob peek "$HANDLE"
    else
      log "UNEXPECTED: the read returned no handle"
      FAILED=1
    fi
    expect_exit 1 "alice is denied the ../ escape" \
      agent alice call fs.read_text_file "{\"path\":\"$SANDBOX/public/../../../etc/passwd\"}"
    grep -q '"reason"' "$STATE/once.out" || { log "UNEXPECTED: the denial carries no reason code"; FAILED=1; }
    DECISION=$(grep -o '"decisionId": *"[^"]*"' "$STATE/once.out" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/' || true)
    expect_exit 1 "bob is denied reading (he may only list)" \
      agent bob call fs.read_text_file "{\"path\":\"$SANDBOX/public/hello.txt\"}"
    # That denial reaches the audit log through the durable stream; give ingestion a moment.
    AUDITED=0
    for _ in $(seq 1 50); do
      if [ -n "$DECISION" ] && http_get "http://127.0.0.1:$AUDIT_HTTP/v1/audit/entries?outcome=deny&decision_id=$DECISION" \
        "$(cat "$STATE/operator.token")" 2>/dev/null | grep -q "$DECISION"; then
        AUDITED=1
        break
      fi
      sleep 0.1
    done
    if [ "$AUDITED" = 1 ]; then log "ok: the denial ($DECISION) is in the audit API"; else
      log "UNEXPECTED: the denial (decision ${DECISION:-none}) is not in the audit API"
      FAILED=1
    fi
  else
    log "demo example skipped (custom providers file or no HS256 secret to mint demo tokens)"
  fi
  [ "$FAILED" = 0 ] || { log "the stack misbehaved; see $STATE/*.log"; exit 1; }
  exit 0
fi
log "serving; Ctrl-C to stop"
wait -n "${PIDS[@]}"
log "a service exited; see $STATE/*.log"
exit 1
