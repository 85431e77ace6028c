#!/usr/bin/env bash
# A throwaway PostgreSQL with pgvector for the tests: the server binaries come from the PyPI wheel `pgserver`
# (PostgreSQL 16 + pgvector, installed in .venv by the test extras: Debian 12 has no pgvector package). It starts
# a cluster in /tmp (the server's own user must reach it) on loopback (port $PGPORT, default 54329) and prints
# the SQLAlchemy URL of its empty `assistant` database on stdout (everything else goes to stderr). Idempotent:
# a cluster that already runs is reused.
#
#   export ASSISTANT_TEST_POSTGRES_URL="$(bash scripts/postgres.sh)"
#   bash scripts/postgres.sh stop
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT="${PGPORT:-54329}"
DATA="${ASSISTANT_TEST_PGDATA:-${TMPDIR:-/tmp}/assistant-pg16-$(echo "$ROOT" | sha1sum | cut -c1-8)}"
log() { echo "[postgres] $*" >&2; }

BIN="$("$ROOT/.venv/bin/python" -c 'import importlib.util as u, pathlib as p; print(p.Path(u.find_spec("pgserver").origin).parent / "pginstall" / "bin")' 2>/dev/null || true)"
if [[ -z "$BIN" || ! -x "$BIN/pg_ctl" ]]; then
  log "PostgreSQL with pgvector comes from the pgserver wheel: run \`bash scripts/setup.sh app\` first"
  exit 1
fi
if [[ "$(id -u)" == 0 ]] && ! id postgres >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin postgres
fi

# The server refuses to run as root: root hands the cluster to the `postgres` user.
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
