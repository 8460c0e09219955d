#!/usr/bin/env bash
# Installs the reference URL-fetching MCP server (PyPI `mcp-server-fetch`, pinned) into its own
# Python venv, so the edge's fetch provider and its end-to-end tests run a real upstream.
# Idempotent: a venv that already holds the pinned version is left alone.
# Venv: $HCP_FETCH_VENV, default $HOME/.cache/hcp/fetch-venv. Prints the server's executable path
# on stdout (the only stdout line); progress goes to stderr.
set -euo pipefail

# Bump deliberately: the edge pins the tool definitions this version serves.
MCP_SERVER_FETCH_VERSION=2026.10.24

VENV="${HCP_FETCH_VENV:-$HOME/.cache/hcp/fetch-venv}"
BIN="$VENV/bin/mcp-server-fetch"
PY="${PYTHON:-python3}"

log() { echo "install-fetch-provider: $*" >&2; }

installed_version() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" -c \
    'import importlib.metadata as m; print(m.version("mcp-server-fetch"))' 2>/dev/null
}

if [ -x "$BIN" ] && [ "$(installed_version || true)" = "$MCP_SERVER_FETCH_VERSION" ]; then
  log "mcp-server-fetch $MCP_SERVER_FETCH_VERSION already installed in $VENV"
  echo "$BIN"
  exit 0
fi

command -v "$PY" >/dev/null || { log "$PY not found; install Python 3.10+ first"; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  if ! "$PY" -m venv "$VENV" >&2; then
    rm -rf "$VENV"
    # Debian/Ubuntu split venv (ensurepip) into python3-venv; install it only when we can.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "python3 -m venv failed; installing python3-venv"
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
      "$PY" -m venv "$VENV" >&2
    else
      log "python3 -m venv failed; install the python3-venv package (needs root) and retry"
      exit 1
    fi
  fi
fi

log "installing mcp-server-fetch==$MCP_SERVER_FETCH_VERSION into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "mcp-server-fetch==$MCP_SERVER_FETCH_VERSION" >&2

[ -x "$BIN" ] || { log "pip finished but $BIN is missing"; exit 1; }
echo "$BIN"
