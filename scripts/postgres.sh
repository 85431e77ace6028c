#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: installs the Debian package when the server binaries are missing,
# starts a cluster in /tmp (the server's own user must reach it) on loopback (port $PGPORT, default 54329) and prints the SQLAlchemy URL
# of its empty `assistant` database on stdout (everything else goes to stderr). Idempotent: a cluster that
# already runs is reused.
#
#   export ASSISTANT_TEST_POSTGRES_URL="$(bash scripts/postgres.sh)"
#   bash scripts/postgres.sh stop
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT="${PGPORT:-54329}"
DATA="${ASSISTANT_TEST_PGDATA:-${TMPDIR:-/tmp}/assistant-postgres-$(echo "$ROOT" | sha1sum | cut -c1-8)}"
log() { echo "[postgres] $*" >&2; }

bindir() {
  local pg_config
  for pg_config in /usr/lib/postgresql/*/bin/pg_config; do
    [[ -x "$pg_config" ]] && { dirname "$pg_config"; return; }
  done
  command -v pg_ctl >/dev/null 2>&1 && dirname "$(readlink -f "$(command -v pg_ctl)")"
}

BIN="$(bindir || true)"
if [[ -z "$BIN" ]]; then
  log "PostgreSQL is not installed: apt-get install postgresql"
  if [[ "$(id -u)" != 0 ]]; then
    log "installing it needs root; run: sudo apt-get install -y postgresql"
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
  BIN="$(bindir)"
fi

# The server refuses to run as root: root hands the cluster to the `postgres` user the package created.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [[ "${1:-start}" == stop ]]; then
  [[ -f "$DATA/postmaster.pid" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
  exit 0
fi

if [[ ! -f "$DATA/PG_VERSION" ]]; then
  log "new cluster in $DATA"
  mkdir -p "$DATA"
  [[ "$(id -u)" == 0 ]] && chown postgres: "$DATA"
  chmod 700 "$DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U assistant --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
if ! as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  log "starting on 127.0.0.1:$PORT"
  as_owner "$BIN/pg_ctl" -D "$DATA" -w -t 60 -l "$DATA/server.log" \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off -c max_connections=200" start >&2
fi
if ! as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U assistant -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'assistant'" | grep -q 1; then
  as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U assistant assistant
fi
echo "postgresql+asyncpg://assistant@127.0.0.1:$PORT/assistant"
