#!/usr/bin/env bash
# Prepares the local PostgreSQL for the TLS tests, idempotently and with a reload (no restart):
#
#   * a certificate authority, a second one that signed nothing the servers present, a server
#     certificate for localhost and 127.0.0.1, and a client certificate for the role
#     athena_tls_cert, made with the openssl CLI in $ATHENA_TEST_TLS_DIR (remade when missing or
#     about to expire);
#   * PostgreSQL serving that server certificate (ssl_cert_file, ssl_key_file) and trusting that
#     authority for client certificates (ssl_ca_file);
#   * three roles only TLS reaches, through pg_hba.conf lines ahead of the others:
#     athena_tls_only (a plain connection is rejected), athena_tls_cert (TLS with a client
#     certificate whose name is the role's) and athena_tls_scram (a SCRAM password, so that
#     channel binding can be required).
#
# The settings are harmless to other tests: the server still accepts plain and TLS connections
# for every other role, and any certificate check other clients make is their own. Redis with TLS
# is started by the tests themselves, from the same files.
#
#   ATHENA_TEST_TLS_DIR (/var/lib/athena-test-tls): where the certificates are written.
#   PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres): the server to prepare.
set -euo pipefail

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
dir="${ATHENA_TEST_TLS_DIR:-/var/lib/athena-test-tls}"

command -v openssl >/dev/null || {
  echo "error: openssl is needed to make the test certificates (Debian: apt-get install openssl)" >&2
  exit 1
}
q() { psql -d postgres -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

mkdir -p "$dir"
chmod 755 "$dir"
cd "$dir"

# A certificate is remade when missing or expiring within a day; remaking the CA remakes all.
fresh() { [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1; }
made=0
ca() { # name subject
  if ! fresh "$1.crt"; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=$2" -keyout "$1.key" -out "$1.crt" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
      2>/dev/null
    made=1
  fi
}
leaf() { # name subject extensions
  if [ "$made" = 1 ] || ! fresh "$1.crt" || ! openssl verify -CAfile ca.crt "$1.crt" >/dev/null 2>&1; then
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
      -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
      -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
  fi
}
ca ca "Athena test CA"
ca other-ca "Athena test CA that signed nothing"
leaf server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client athena_tls_cert "extendedKeyUsage=clientAuth"
chmod 600 ./*.key
chmod 644 ./*.crt

# PostgreSQL reads its key as its own user, and refuses a key others can read.
mkdir -p postgres
cp server.crt server.key postgres/
chown -R postgres:postgres postgres 2>/dev/null || true
chmod 700 postgres
chmod 600 postgres/server.key
chmod 755 postgres

reload=0
set_if() { # setting value
  if [ "$(q "SHOW $1")" != "$2" ]; then
    q "ALTER SYSTEM SET $1 = '$2'"
    reload=1
  fi
}
set_if ssl on
set_if ssl_cert_file "$dir/postgres/server.crt"
set_if ssl_key_file "$dir/postgres/server.key"
set_if ssl_ca_file "$dir/ca.crt"

for role in athena_tls_only athena_tls_cert athena_tls_scram; do
  q "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN
       CREATE ROLE $role LOGIN SUPERUSER; END IF; END \$\$"
done
q "SET password_encryption = 'scram-sha-256'; ALTER ROLE athena_tls_scram PASSWORD 'athena-tls-test'"

hba=$(q 'SHOW hba_file')
begin='# athena-tls-test: begin (scripts/prepare-tls.sh)'
end='# athena-tls-test: end'
block="$begin
hostnossl all athena_tls_only 127.0.0.1/32 reject
hostnossl all athena_tls_cert 127.0.0.1/32 reject
hostssl   all athena_tls_cert 127.0.0.1/32 trust clientcert=verify-full
hostnossl all athena_tls_scram 127.0.0.1/32 reject
hostssl   all athena_tls_scram 127.0.0.1/32 scram-sha-256
# athena-tls-test: end"
# The block is written anew when it differs (an older version of this script wrote another).
current=$(awk -v b="$begin" -v e="$end" '$0 == b {f = 1} f {print} $0 == e {f = 0}' "$hba")
if [ "$current" != "$block" ]; then
  { printf '%s\n' "$block"
    awk -v b="$begin" -v e="$end" '$0 == b {f = 1; next} f && $0 == e {f = 0; next} !f' "$hba"
  } > "$hba.athena-tls"
  cat "$hba.athena-tls" > "$hba"
  rm -f "$hba.athena-tls"
  reload=1
fi

# Files may have been remade with the same names: reload whenever a certificate is new.
[ "$made" = 1 ] && reload=1
if [ "$reload" = 1 ]; then
  q 'SELECT pg_reload_conf()' >/dev/null
fi

# The reload is asynchronous: wait until a plain connection of the TLS-only role is refused and a
# verified one is served.
ok=0
for _ in $(seq 1 50); do
  if ! psql "host=$PGHOST port=$PGPORT user=athena_tls_only dbname=postgres sslmode=disable" \
      -XAtqc 'SELECT 1' >/dev/null 2>&1 &&
     psql "host=$PGHOST port=$PGPORT user=athena_tls_only dbname=postgres sslmode=verify-full sslrootcert=$dir/ca.crt" \
      -XAtqc 'SELECT 1' >/dev/null 2>&1; then
    ok=1
    break
  fi
  sleep 0.2
done
if [ "$ok" != 1 ]; then
  echo "error: PostgreSQL did not take the TLS settings (see its log)" >&2
  exit 1
fi
echo "PostgreSQL serves TLS with the test certificates in $dir"
