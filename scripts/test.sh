#!/usr/bin/env bash
# The whole test suite, on a fresh machine or CI: checks the services the tests use, installs the
# Python tools the tests need beyond the Rust toolchain, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

need_service() { # name host port start-hint
  if ! (exec 3<>"/dev/tcp/$2/$3") 2>/dev/null; then
    echo "error: $1 is not reachable on $2:$3. Start it with: $4" >&2
    exit 1
  fi
}
need_service PostgreSQL 127.0.0.1 5432 \
  "pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start"
need_service Redis 127.0.0.1 6379 \
  "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"
# Change data capture needs logical decoding: wal_level = logical (changed, with a restart, only
# when it is not already).
scripts/prepare-postgres.sh
# The TLS tests need certificates, PostgreSQL serving them and roles only TLS reaches (a reload,
# never a restart); Redis over TLS is started by the tests from the same files.
export ATHENA_TEST_TLS_DIR="${ATHENA_TEST_TLS_DIR:-/var/lib/athena-test-tls}"
scripts/prepare-tls.sh
# The cache tests also start Redis servers of their own (redis-server and redis-cli on PATH).
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
  echo "error: redis-server and redis-cli are needed (Debian: apt-get install redis-server)" >&2
  exit 1
}

# The OpenAPI test validates both documents with openapi-spec-validator; the WebSocket contract
# test validates real messages with jsonschema, and tests/nul_fields.py reads openapi.yaml with
# PyYAML, both of which come with it.
if ! python3 -c 'import openapi_spec_validator, jsonschema, yaml' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator pyyaml
fi
# The /rest/v1 tests drive the server with postgrest-py, a real PostgREST client library.
POSTGREST_PY=2.34.1
if [ "$(python3 -c 'import importlib.metadata as m; print(m.version("postgrest"))' 2>/dev/null)" != "$POSTGREST_PY" ]; then
  python3 -m pip install --quiet --disable-pip-version-check "postgrest==$POSTGREST_PY"
fi

# The backup tests need pg_dump and pg_restore (the PostgreSQL client tools) and a local
# S3-compatible server: moto's, pinned, in a virtualenv of its own (later moto releases answer
# CompleteMultipartUpload in a shape S3 never sends, which the AWS SDK refuses). tests/common/s3.rs
# starts one per test on a free port, from this path unless ATHENA_TEST_MOTO_SERVER names another.
if ! { command -v pg_dump && command -v pg_restore; } >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-client
  else
    echo "error: pg_dump and pg_restore are needed (Debian: apt-get install postgresql-client)" >&2
    exit 1
  fi
fi
# The compose test validates docker-compose.yml with Compose's own schema check (Debian's
# docker-compose; `config` needs no Docker engine).
if ! command -v docker-compose >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-compose
  else
    echo "error: docker-compose is needed (Debian: apt-get install docker-compose)" >&2
    exit 1
  fi
fi
MOTO=5.0.28
MOTO_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/athena/moto-$MOTO"
if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO"
fi
export ATHENA_TEST_MOTO_SERVER="${ATHENA_TEST_MOTO_SERVER:-$MOTO_VENV/bin/moto_server}"
# The contract test runs schemathesis against a real server (tests/it/schemathesis.rs): pinned, in a
# virtualenv of its own, from this path unless ATHENA_TEST_SCHEMATHESIS names another `st`.
SCHEMATHESIS=4.32.5
ST_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/athena/schemathesis-$SCHEMATHESIS"
if [ ! -x "$ST_VENV/bin/st" ]; then
  python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS"
fi
export ATHENA_TEST_SCHEMATHESIS="${ATHENA_TEST_SCHEMATHESIS:-$ST_VENV/bin/st}"

cargo test --workspace --locked "$@"
