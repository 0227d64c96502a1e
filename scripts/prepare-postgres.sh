#!/usr/bin/env bash
# Makes the local PostgreSQL ready for change data capture, idempotently: logical decoding needs
# wal_level = logical (a restart to change) and free replication slots. The decoder, pgoutput, is
# built into PostgreSQL, so no package is installed. Run by scripts/test.sh; safe to run again (it
# restarts the server only when a setting has to change).
#
#   PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres): the server to prepare.
#   ATHENA_MIN_REPLICATION_SLOTS (10, PostgreSQL's default): raise max_replication_slots to at
#   least this (each CDC test holds one slot while it runs).
set -euo pipefail

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
min_slots="${ATHENA_MIN_REPLICATION_SLOTS:-10}"

command -v psql >/dev/null || {
  echo "error: psql is needed (Debian: apt-get install postgresql-client)" >&2
  exit 1
}
q() { psql -d postgres -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

level=$(q 'SHOW wal_level')
slots=$(q 'SHOW max_replication_slots')
senders=$(q 'SHOW max_wal_senders')
major=$(( $(q 'SHOW server_version_num') / 10000 ))

changes=()
[ "$level" = logical ] || changes+=("wal_level = logical")
[ "$slots" -ge "$min_slots" ] || changes+=("max_replication_slots = $min_slots")
# Not used by Athena's reader (it polls through SQL), but logical replication clients need some.
[ "$senders" -ge 10 ] || changes+=("max_wal_senders = 10")

if [ ${#changes[@]} -eq 0 ]; then
  echo "PostgreSQL $major is ready for logical decoding (wal_level=$level, max_replication_slots=$slots)"
  exit 0
fi

for c in "${changes[@]}"; do
  echo "setting $c"
  q "ALTER SYSTEM SET ${c%% = *} = '${c##* = }'"
done

# These settings take effect on restart only.
cluster=main
if command -v pg_lsclusters >/dev/null; then
  port_cluster=$(pg_lsclusters --no-header | awk -v v="$major" -v p="$PGPORT" '$1 == v && $3 == p {print $2; exit}')
  cluster="${port_cluster:-main}"
fi
if command -v pg_ctlcluster >/dev/null && { [ "$(id -u)" = 0 ] || [ "$(id -un)" = postgres ]; }; then
  echo "restarting PostgreSQL $major/$cluster"
  pg_ctlcluster --skip-systemctl-redirect "$major" "$cluster" restart
else
  echo "error: restart PostgreSQL for the new settings to take effect (as root: pg_ctlcluster $major $cluster restart), then run this again" >&2
  exit 1
fi

for _ in $(seq 1 120); do
  if pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null && q 'SELECT 1' >/dev/null 2>&1; then
    break
  fi
  sleep 0.5
done
level=$(q 'SHOW wal_level')
[ "$level" = logical ] || {
  echo "error: wal_level is still $level after the restart" >&2
  exit 1
}
echo "PostgreSQL $major is ready for logical decoding"
