#!/usr/bin/env bash
# The audit examples of docs/operations.md, run for real against the embedded stack, so the
# documentation cannot drift from the code. Needs `pnpm build`; uses curl (installed if absent).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
LOG=$(mktemp)
export HCP_AUTH_HS256_SECRET=$(node -e "console.log(require('crypto').randomBytes(32).toString('base64'))")
HCP_LOG_LEVEL=warn node apps/embedded/dist/main.js >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 300); do grep -q "^audit:" "$LOG" && break; sleep 0.1; done
grep -q "^audit:" "$LOG" || { cat "$LOG"; exit 1; }

# --- the documented commands, verbatim ---
TOKEN=$(node apps/embedded/dist/token.js ops-1 operator)
curl -sf -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8082/v1/audit/entries?outcome=deny&limit=5'
curl -sf -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8082/v1/audit/entries?principal=alice&reason=RESOURCE_DENIED'
curl -sf -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8082/v1/audit/verify'
curl -sf 'http://127.0.0.1:8082/v1/openapi.json' >/dev/null
AGENT=$(node apps/embedded/dist/token.js alice agent)
curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $AGENT" 'http://127.0.0.1:8082/v1/audit/entries'
# --- end ---

# And the checks behind them.
deny=$(curl -sf -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8082/v1/audit/entries?outcome=deny')
echo "$deny" | grep -q '"reason":"RESOURCE_DENIED"' || { echo "no denial found: $deny"; exit 1; }
curl -sf -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8082/v1/audit/verify' | grep -q '"ok":true'
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $AGENT" 'http://127.0.0.1:8082/v1/audit/entries')" = 403 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' 'http://127.0.0.1:8082/v1/audit/entries')" = 401 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8082/v1/audit/entries?limit=0')" = 400 ]
echo "audit examples: ok"
