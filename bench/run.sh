#!/usr/bin/env bash
# Athena load benchmark.
#
# Measures the gateway with wrk and, for each scenario, the same SQL sent
# straight to PostgreSQL with pgbench, at the same concurrency, and prints a
# comparison table (also written to bench/out/results.md).
#
# Requirements: Debian 12 (missing wrk / pgbench / psql / curl are installed
# with apt-get when run as root), a Rust toolchain (cargo), and PostgreSQL
# listening on 127.0.0.1:5432 with user `postgres` and trust authentication.
#
# Environment:
#   BENCH_CONNECTIONS   concurrent connections / clients        (default 32)
#   BENCH_DURATION      seconds per measurement                 (default 10)
#   BENCH_WARMUP        seconds of unrecorded gateway load before
#                       each gateway measurement, 0 to skip      (default 2)
#   BENCH_PG_PORT       PostgreSQL port on 127.0.0.1             (default 5432)
#   BENCH_PG_SSLMODE    libpq's sslmode for the gateway's client and logging database and for
#                       pgbench alike, e.g. disable or require, to measure what TLS costs
#                       (default: none given, so libpq's prefer: TLS when the server offers it)
#   BENCH_BUILD_TIMEOUT seconds allowed for `cargo build --release` (default 1800)
#   BENCH_SKIP_BUILD    1: use the existing target/release/athena_rs
#   BENCH_SKIP_GATEWAY  1: measure only the direct PostgreSQL baseline
#   BENCH_POOL          the gateway's database connections (ATHENA_PG_POOL_MAX_CONNECTIONS)
#                       (default: none given, so the bundled config's, sized to this machine;
#                       the report says what the gateway used)
#   BENCH_AUTOGROUP     keep: the kernel's autogroup scheduling as it is (the default, as most
#                       Linux machines and CI run); off: turned off for the run (needs root;
#                       restored on exit), so that every thread competes on its own
#   BENCH_OWN_SESSION   1: the gateway leaves this script's session, as it does by default when
#                       started without a terminal (server.own_session); 0: it stays in it, with
#                       the load client, to see what sharing the session's CPU share costs
#                       (default 1)
#   BENCH_DB_DELAY_MS   0: the gateway and pgbench reach PostgreSQL directly (the default); N: through
#                       bench/delay_proxy.rs, which delays every byte N ms each way, a database on
#                       another machine (a round trip takes 2N ms and a little more), to size the
#                       pool for one (BENCH_POOL); not with BENCH_COMPARE
#   BENCH_P99_LIMIT_MS  a measurement whose p99 exceeds this is flagged in the report (default 10)
#   BENCH_ENFORCE       1: API keys are enforced (the bundled default); 0: not enforced.
#                       Every request carries an API key (minted with `athena_rs keys
#                       create`) either way; raw SQL always checks it.
#   BENCH_STATS         1: requests are recorded (logs, statistics, metrics; the bundled
#                       default); 0: stats.enabled is false.
#   BENCH_WS_SOCKETS    WebSockets of scenario (g)                              (default 1)
#   BENCH_WS_INFLIGHT   requests kept in flight on each of them
#                       (default: BENCH_CONNECTIONS / BENCH_WS_SOCKETS, the same concurrency as HTTP)
#   BENCH_CDC_RATE      changes per second written in scenario (h)              (default 1000)
#   BENCH_CDC_SUBSCRIBERS  WebSocket subscribers of scenario (h)                (default 10)
#   BENCH_SCENARIOS     the scenarios to run, by name: fetch_user fetch_pk insert query health
#                       fetch_cached fetch_ws cdc (default: all of them)
#   BENCH_COMPARE       1: measure what enforcement and statistics cost instead (see below)
#   BENCH_COMPARE_ROUNDS  rounds per scenario of BENCH_COMPARE                  (default 5)
#   BENCH_COMPARE_TLS   1: BENCH_COMPARE with TLS as the difference instead: both gateways
#                       with enforcement and statistics as BENCH_ENFORCE / BENCH_STATS say,
#                       'off' reaching PostgreSQL with sslmode=disable, 'on' with sslmode=require
#
# With BENCH_COMPARE=1 two gateways run side by side on the same database, one with API-key
# enforcement and statistics off, one with both on (the bundled default; BENCH_ENFORCE=0 or
# BENCH_STATS=0 leaves that one off on this side too, to measure the other alone), and each scenario (a)-(g)
# is measured in BENCH_COMPARE_ROUNDS rounds of BENCH_DURATION seconds on each, the first of a
# round alternating between them, one second apart. After an 'on' slice the script waits until
# its statistics are written (/metrics: athena_stats_buffer_records is 0), and counts the CPU
# spent until then as the slice's. A round's two slices are adjacent in time, so the machine's
# drift between rounds cancels out of its on/off ratio; the report gives each side's rates, their
# medians and the median of the rounds' ratios (bench/out/compare.md), with each side's CPU time
# per request (the machine's, the gateway's, and the statistics writer's database backends'), and
# the records the 'on' gateway wrote and dropped. A run in which it dropped any fails: it would not
# have paid their cost. pgbench is not run.
#
# Scenario (g) sends (b)'s request over WebSocket (/wss/gateway) instead of one HTTP request per
# call; wrk speaks no WebSocket, so its load comes from bench/ws_load.rs, an example target built
# here (never part of the shipped binary). Its pgbench baseline is (b)'s.
#
# Scenario (h) measures change data capture: BENCH_CDC_RATE single-row transactions a second,
# written straight to the database with tokio-postgres, captured (the table cdc_ticks is added
# with POST /admin/cdc/tables) and streamed to BENCH_CDC_SUBSCRIBERS WebSocket subscribers
# (cdc.subscribe); it reports the latency from the INSERT's return (the commit acknowledged) to
# each subscriber's frame, p50 and p99, and the changes a subscriber never received (must be 0).
# Its load client is bench/cdc_load.rs, another example target. It needs wal_level = logical
# (scripts/prepare-postgres.sh); without it the scenario is skipped, saying so. The gateway runs
# with the bundled config under a replication slot prefix of its own, dropped at the end.
#
# All traffic goes to 127.0.0.1. The script creates its own database and drops
# it on exit, and stops the gateway it started.

set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
OUT="$BENCH/out"

CONNECTIONS="${BENCH_CONNECTIONS:-32}"
DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-2}"
PG_HOST=127.0.0.1
PG_PORT="${BENCH_PG_PORT:-5432}"
PG_SSLMODE="${BENCH_PG_SSLMODE:-}"
BUILD_TIMEOUT="${BENCH_BUILD_TIMEOUT:-1800}"
SKIP_BUILD="${BENCH_SKIP_BUILD:-0}"
SKIP_GATEWAY="${BENCH_SKIP_GATEWAY:-0}"
POOL="${BENCH_POOL:-}"
AUTOGROUP_MODE="${BENCH_AUTOGROUP:-keep}"
P99_LIMIT_MS="${BENCH_P99_LIMIT_MS:-10}"
OWN_SESSION="${BENCH_OWN_SESSION:-1}"
DB_DELAY_MS="${BENCH_DB_DELAY_MS:-0}"
ENFORCE="${BENCH_ENFORCE:-1}"
STATS="${BENCH_STATS:-1}"
WS_SOCKETS="${BENCH_WS_SOCKETS:-1}"
CDC_RATE="${BENCH_CDC_RATE:-1000}"
CDC_SUBSCRIBERS="${BENCH_CDC_SUBSCRIBERS:-10}"
ALL_SCENARIOS="fetch_user fetch_pk insert query health fetch_cached fetch_ws cdc"
COMPARE="${BENCH_COMPARE:-0}"
COMPARE_ROUNDS="${BENCH_COMPARE_ROUNDS:-5}"
COMPARE_TLS="${BENCH_COMPARE_TLS:-0}"
case "$COMPARE_TLS" in 0) ;; 1) COMPARE=1 ;; *) echo "BENCH_COMPARE_TLS must be 0 or 1" >&2; exit 2 ;; esac
SELECTED="${BENCH_SCENARIOS:-$ALL_SCENARIOS}"
for s in $SELECTED; do
    case " $ALL_SCENARIOS " in *" $s "*) ;; *) echo "BENCH_SCENARIOS: unknown scenario '$s' (known: $ALL_SCENARIOS)" >&2; exit 2 ;; esac
done
case "$STATS" in 0) STATS_BOOL=false ;; 1) STATS_BOOL=true ;; *) echo "BENCH_STATS must be 0 or 1" >&2; exit 2 ;; esac
case "$ENFORCE" in 0) ENFORCE_BOOL=false ;; 1) ENFORCE_BOOL=true ;; *) echo "BENCH_ENFORCE must be 0 or 1" >&2; exit 2 ;; esac
READY_TIMEOUT=60
ROWS=100000
USERS=10000

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
if ! is_uint "$CONNECTIONS" || [ "$CONNECTIONS" -lt 1 ]; then
    die "BENCH_CONNECTIONS must be a positive integer (got '$CONNECTIONS')"
fi
if ! is_uint "$DURATION" || [ "$DURATION" -lt 1 ]; then
    die "BENCH_DURATION must be a positive integer number of seconds (got '$DURATION')"
fi
if ! is_uint "$WS_SOCKETS" || [ "$WS_SOCKETS" -lt 1 ]; then
    die "BENCH_WS_SOCKETS must be a positive integer (got '$WS_SOCKETS')"
fi
WS_INFLIGHT="${BENCH_WS_INFLIGHT:-$(( CONNECTIONS / WS_SOCKETS > 0 ? CONNECTIONS / WS_SOCKETS : 1 ))}"
if ! is_uint "$WS_INFLIGHT" || [ "$WS_INFLIGHT" -lt 1 ]; then
    die "BENCH_WS_INFLIGHT must be a positive integer (got '$WS_INFLIGHT')"
fi
if ! is_uint "$CDC_RATE" || [ "$CDC_RATE" -lt 1 ]; then
    die "BENCH_CDC_RATE must be a positive integer (got '$CDC_RATE')"
fi
if ! is_uint "$CDC_SUBSCRIBERS" || [ "$CDC_SUBSCRIBERS" -lt 1 ]; then
    die "BENCH_CDC_SUBSCRIBERS must be a positive integer (got '$CDC_SUBSCRIBERS')"
fi
is_uint "$WARMUP" || die "BENCH_WARMUP must be a non-negative integer (got '$WARMUP')"
case "$COMPARE" in 0 | 1) ;; *) die "BENCH_COMPARE must be 0 or 1 (got '$COMPARE')" ;; esac
if ! is_uint "$COMPARE_ROUNDS" || [ "$COMPARE_ROUNDS" -lt 1 ]; then
    die "BENCH_COMPARE_ROUNDS must be a positive integer (got '$COMPARE_ROUNDS')"
fi
if [ -n "$POOL" ] && { ! is_uint "$POOL" || [ "$POOL" -lt 1 ]; }; then
    die "BENCH_POOL must be a positive integer (got '$POOL')"
fi
case "$OWN_SESSION" in 0) OWN_SESSION_BOOL=false ;; 1) OWN_SESSION_BOOL=true ;; *) die "BENCH_OWN_SESSION must be 0 or 1 (got '$OWN_SESSION')" ;; esac
case "$AUTOGROUP_MODE" in keep | off) ;; *) die "BENCH_AUTOGROUP must be keep or off (got '$AUTOGROUP_MODE')" ;; esac
is_uint "$DB_DELAY_MS" || die "BENCH_DB_DELAY_MS must be a whole number of milliseconds (got '$DB_DELAY_MS')"
if [ "$DB_DELAY_MS" -gt 0 ] && [ "$COMPARE" = 1 ]; then die "BENCH_DB_DELAY_MS does not combine with BENCH_COMPARE"; fi
is_uint "$P99_LIMIT_MS" || die "BENCH_P99_LIMIT_MS must be a whole number of milliseconds (got '$P99_LIMIT_MS')"
is_uint "$PG_PORT" || die "BENCH_PG_PORT must be a port number (got '$PG_PORT')"
case "$PG_SSLMODE" in
    "" | disable | allow | prefer | require) ;;
    *) die "BENCH_PG_SSLMODE must be disable, allow, prefer or require (got '$PG_SSLMODE')" ;;
esac
is_uint "$BUILD_TIMEOUT" || die "BENCH_BUILD_TIMEOUT must be an integer (got '$BUILD_TIMEOUT')"

# wrk and pgbench both refuse more threads than connections.
THREADS=2
[ "$CONNECTIONS" -lt "$THREADS" ] && THREADS="$CONNECTIONS"

mkdir -p "$OUT"

# --------------------------------------------------------------------------
# 1. tools
# --------------------------------------------------------------------------
ensure_tools() {
    local pkgs=()
    command -v wrk >/dev/null 2>&1 || pkgs+=(wrk)
    if ! pgbench --version >/dev/null 2>&1 || ! psql --version >/dev/null 2>&1; then
        pkgs+=(postgresql-client)
    fi
    command -v curl >/dev/null 2>&1 || pkgs+=(curl)
    command -v timeout >/dev/null 2>&1 || pkgs+=(coreutils)
    if [ "${#pkgs[@]}" -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || die "missing tools (${pkgs[*]}); run as root or install them first"
        command -v apt-get >/dev/null 2>&1 || die "missing tools (${pkgs[*]}) and apt-get is not available"
        log "installing ${pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null
    fi
    command -v wrk >/dev/null 2>&1 || die "wrk is still not available"
    pgbench --version >/dev/null 2>&1 || die "pgbench is still not available"
    psql --version >/dev/null 2>&1 || die "psql is still not available"
    command -v curl >/dev/null 2>&1 || die "curl is still not available"

    if [ "$SKIP_GATEWAY" != 1 ] && [ "$SKIP_BUILD" != 1 ]; then
        if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
            PATH="${HOME:-/root}/.cargo/bin:$PATH"
        fi
        command -v cargo >/dev/null 2>&1 || die "cargo (Rust toolchain) is required to build the gateway"
    fi
}

# --------------------------------------------------------------------------
# cleanup
# --------------------------------------------------------------------------
DB=""
DB_CREATED=0
AUTOGROUP=/proc/sys/kernel/sched_autogroup_enabled
AUTOGROUP_WAS="" # set when the run turned autogroup scheduling off
AUTOGROUP_STATE=""
SERVER_PID=""
# BENCH_COMPARE: the other gateway, while SERVER_PID is the one being measured.
OTHER_PID=""
CHILD_PID=""
PROXY_PID=""
# The port the gateway and pgbench reach PostgreSQL on: PG_PORT, or the delay proxy's.
DB_PORT="$PG_PORT"

# run_bounded SECONDS COMMAND...: runs COMMAND with a time limit, in the
# background so that an interrupt reaches the trap at once (which then stops
# the command) instead of waiting for the command to finish.
run_bounded() {
    local secs="$1" rc=0
    shift
    timeout "$secs" "$@" &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    return "$rc"
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local _
        # the gateway drains in-flight requests for up to shutdown_timeout_secs
        for _ in $(seq 1 150); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "gateway did not stop after SIGTERM; sending SIGKILL"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    # A signal can arrive while a command's output is redirected to a file;
    # report on the script's own streams.
    exec 1>&3 2>&4
    if [ -n "$CHILD_PID" ]; then
        kill -TERM "$CHILD_PID" 2>/dev/null
        wait "$CHILD_PID" 2>/dev/null
    fi
    stop_server
    if [ -n "$PROXY_PID" ]; then
        kill -TERM "$PROXY_PID" 2>/dev/null
        wait "$PROXY_PID" 2>/dev/null
    fi
    if [ -n "$OTHER_PID" ]; then
        SERVER_PID="$OTHER_PID"
        OTHER_PID=""
        stop_server
    fi
    if [ "$DB_CREATED" = 1 ]; then
        # A replication slot (scenario (h)) keeps WAL and prevents dropping its database.
        psql_admin -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$DB' AND NOT active" >/dev/null 2>&1 \
            || log "could not drop the replication slots of $DB"
        log "dropping database $DB"
        psql_admin -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null \
            || log "could not drop database $DB"
    fi
    if [ -n "$AUTOGROUP_WAS" ]; then
        echo "$AUTOGROUP_WAS" >"$AUTOGROUP" 2>/dev/null || log "could not restore $AUTOGROUP to $AUTOGROUP_WAS"
    fi
    rm -f "$OUT"/pgbench_log.* 2>/dev/null
    exit "$rc"
}
exec 3>&1 4>&2
trap 'printf "[bench] ERROR: command failed (status %s) at line %s: %s\n" "$?" "$LINENO" "$BASH_COMMAND" >&4' ERR
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --------------------------------------------------------------------------
# 2./3. database
# --------------------------------------------------------------------------
export PGCONNECT_TIMEOUT=10
if [ -n "$PG_SSLMODE" ]; then
    export PGSSLMODE="$PG_SSLMODE"
fi
export PGAPPNAME=athena_bench

psql_admin() {
    PGOPTIONS="-c statement_timeout=300000" psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
}
psql_db() {
    PGOPTIONS="-c statement_timeout=300000" psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d "$DB" -v ON_ERROR_STOP=1 "$@"
}

setup_database() {
    psql_admin -tAc "SELECT 1" >/dev/null 2>&1 \
        || die "cannot connect to PostgreSQL at $PG_HOST:$PG_PORT as user postgres (trust auth expected)"
    DB="athena_bench_$(date +%s)_$$"
    log "creating database $DB"
    psql_admin -c "CREATE DATABASE \"$DB\"" >/dev/null
    DB_CREATED=1

    log "seeding events ($ROWS rows, $USERS users)"
    psql_db >/dev/null <<SQL
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    user_id int NOT NULL,
    kind text NOT NULL,
    value numeric(12,2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON events(user_id);
CREATE TABLE cdc_ticks (n bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
INSERT INTO events (user_id, kind, value, created_at)
SELECT ((g - 1) % $USERS) + 1,
       (ARRAY['view', 'click', 'purchase', 'signup'])[1 + g % 4],
       round((random() * 1000)::numeric, 2),
       now() - g * interval '1 second'
FROM generate_series(1, $ROWS) AS g;
VACUUM ANALYZE events;
SQL
    local n u per
    n="$(psql_db -tAc "SELECT count(*) FROM events")"
    u="$(psql_db -tAc "SELECT count(DISTINCT user_id) FROM events")"
    per="$(psql_db -tAc "SELECT count(*) FROM events WHERE user_id = 1")"
    if [ "$n" != "$ROWS" ] || [ "$u" != "$USERS" ] || [ "$per" != 10 ]; then
        die "seeding check failed: rows=$n distinct users=$u rows for user 1=$per"
    fi
}

# --------------------------------------------------------------------------
# 4. gateway
# --------------------------------------------------------------------------
PORT=""
KEY=""
API_KEY=""
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/athena_rs"
WS_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/ws_load"
PROXY_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/delay_proxy"
CDC_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/cdc_load"
# The bundled config with a replication slot prefix of this run's own (scenario (h)).
CONFIG="$OUT/config.yaml"
SLOT_PREFIX="athena_bench_$$"
SERVER_LOG="$OUT/server.log"

free_port() {
    local _ p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

build_gateway() {
    if [ "$SKIP_BUILD" = 1 ]; then
        log "skipping build (BENCH_SKIP_BUILD=1)"
    else
        log "building release gateway (cargo build --release)"
        cd "$ROOT"
        run_bounded "$BUILD_TIMEOUT" cargo build --release \
            || die "cargo build --release failed or timed out"
        log "building the load clients (cargo build --release --example ws_load --example cdc_load --example delay_proxy)"
        run_bounded "$BUILD_TIMEOUT" cargo build --release --example ws_load --example cdc_load --example delay_proxy \
            || die "cargo build --release of the load clients failed or timed out"
    fi
    [ -x "$BIN" ] || die "gateway binary not found at $BIN"
    [ -x "$WS_BIN" ] || die "WebSocket load client not found at $WS_BIN"
    [ -x "$CDC_BIN" ] || die "change data capture load client not found at $CDC_BIN"
    [ -x "$PROXY_BIN" ] || die "delay proxy not found at $PROXY_BIN"
    [ -f "$ROOT/config.yaml" ] || die "config file not found at $ROOT/config.yaml"
    sed "s/^  slot_prefix: athena_cdc /  slot_prefix: $SLOT_PREFIX /" "$ROOT/config.yaml" >"$CONFIG"
    grep -q "slot_prefix: $SLOT_PREFIX " "$CONFIG" || die "could not set cdc.slot_prefix in $CONFIG"
}

# BENCH_DB_DELAY_MS: starts the delay proxy in front of PostgreSQL and points DB_PORT at it.
start_delay_proxy() {
    [ "$DB_DELAY_MS" -gt 0 ] || return 0
    local port deadline
    port="$(free_port)" || die "could not find a free TCP port on 127.0.0.1"
    "$PROXY_BIN" --listen "127.0.0.1:$port" --to "$PG_HOST:$PG_PORT" --delay-ms "$DB_DELAY_MS" \
        >"$OUT/delay_proxy.log" 2>&1 </dev/null &
    PROXY_PID=$!
    deadline=$((SECONDS + 10))
    until grep -q '^DELAY_PROXY listening=' "$OUT/delay_proxy.log"; do
        kill -0 "$PROXY_PID" 2>/dev/null || die "the delay proxy did not start: $(cat "$OUT/delay_proxy.log")"
        [ "$SECONDS" -lt "$deadline" ] || die "the delay proxy did not start within 10 s"
        sleep 0.1
    done
    DB_PORT="$port"
    log "PostgreSQL reached through the delay proxy on 127.0.0.1:$port, ${DB_DELAY_MS} ms each way"
}

# Runs a command with the gateway's environment. It replaces the calling (sub)shell, so that
# `gateway_env ... &` leaves the command's own PID in $! for stop_server.
gateway_env() {
    exec env \
        ATHENA_PG_URI="postgres://postgres@$PG_HOST:$DB_PORT/$DB${PG_SSLMODE:+?sslmode=$PG_SSLMODE}" \
        ${POOL:+ATHENA_PG_POOL_MAX_CONNECTIONS="$POOL"} \
        ATHENA_LOGGING_URI="postgres://postgres@$PG_HOST:$DB_PORT/$DB${PG_SSLMODE:+?sslmode=$PG_SSLMODE}" \
        ATHENA_ENFORCE_API_KEYS="$ENFORCE_BOOL" \
        ATHENA_STATS_ENABLED="$STATS_BOOL" \
        ATHENA_OWN_SESSION="$OWN_SESSION_BOOL" \
        ATHENA_KEY_12="$KEY" \
        NO_COLOR=1 \
        "$@"
}

# Mints the API key every benchmark request carries, and waits until the gateway accepts it.
mint_api_key() {
    API_KEY="$(gateway_env "$BIN" keys create --config "$CONFIG" --name bench \
        --rights events.read events.write gateway.query cdc_ticks.read 2>>"$SERVER_LOG")" \
        || die "athena_rs keys create failed (see $SERVER_LOG)"
    await_api_key
}

# Waits until the gateway on $PORT accepts the minted key.
await_api_key() {
    local deadline=$((SECONDS + 20)) code
    while :; do
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST \
            -H 'X-Athena-Client: default' -H "Authorization: Bearer $API_KEY" \
            --data-binary '{"table_name":"events","limit":1}' \
            "http://127.0.0.1:$PORT/gateway/fetch" || true)"
        [ "$code" = 200 ] && break
        [ "$SECONDS" -ge "$deadline" ] && die "the gateway did not accept the minted key (last status ${code:-none})"
        sleep 0.2
    done
    log "API key minted and accepted (enforcement: $ENFORCE_BOOL, statistics: $STATS_BOOL)"
}

# The request connections the gateway on $PORT gives the client default (its /metrics), or
# "unknown".
read_gateway_pool() {
    GATEWAY_POOL="$({ curl -sf --max-time 5 -H "Authorization: Bearer $KEY" \
        "http://127.0.0.1:$PORT/metrics" || true; } \
        | awk '$1 == "athena_pool_connections_max{client=\"default\"}" { printf "%d", $2; n++ }
            END { if (!n) printf "unknown" }')"
}

start_gateway() {
    PORT="$(free_port)" || die "could not find a free TCP port on 127.0.0.1"
    KEY="bench$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    log "starting gateway on 127.0.0.1:$PORT (log: $SERVER_LOG)"
    : >"$SERVER_LOG"
    gateway_env "$BIN" server --config "$CONFIG" --port "$PORT" \
        >>"$SERVER_LOG" 2>&1 </dev/null &
    SERVER_PID=$!

    local deadline code
    deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null && code=0 || code=$?
            SERVER_PID=""
            echo "----- gateway log ($SERVER_LOG) -----" >&2
            tail -n 100 "$SERVER_LOG" >&2
            die "gateway exited during startup (exit code $code)"
        fi
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/ready" || true)"
        [ "$code" = 200 ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "----- gateway log ($SERVER_LOG) -----" >&2
            tail -n 100 "$SERVER_LOG" >&2
            die "gateway not ready after ${READY_TIMEOUT}s (last GET /ready status: ${code:-none})"
        fi
        sleep 0.5
    done
    log "gateway ready (pid $SERVER_PID)"
}

require_gateway_alive() {
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        local code
        wait "$SERVER_PID" 2>/dev/null && code=0 || code=$?
        SERVER_PID=""
        echo "----- gateway log ($SERVER_LOG) -----" >&2
        tail -n 100 "$SERVER_LOG" >&2
        die "gateway died $1 (exit code $code)"
    fi
}

peak_memory_mib() {
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024; found = 1 } END { if (!found) print "n/a" }' \
        "/proc/$SERVER_PID/status" 2>/dev/null || echo "n/a"
}

# --------------------------------------------------------------------------
# 5. scenarios
# --------------------------------------------------------------------------
SCENARIOS=()
for s in fetch_user fetch_pk insert query health fetch_cached fetch_ws; do
    case " $SELECTED " in *" $s "*) SCENARIOS+=("$s") ;; esac
done
CDC=0
case " $SELECTED " in *" cdc "*) CDC=1 ;; esac

scenario_label() {
    case "$1" in
        fetch_user) echo "(a) fetch 10 rows by user_id" ;;
        fetch_pk) echo "(b) fetch 1 row by id" ;;
        fetch_cached) echo "(f) fetch 1 row by id, cached" ;;
        fetch_ws) echo "(g) (b) over WebSocket" ;;
        insert) echo "(c) insert 1 row" ;;
        query) echo "(d) raw SQL by id" ;;
        health) echo "(e) GET /health vs SELECT 1" ;;
    esac
}

# Prints one example request for a scenario as: METHOD PATH BODY
# shellcheck disable=SC2016 # $1 in the raw query is a SQL placeholder
example_request() {
    local uid=$((1 + RANDOM % USERS)) id=$((1 + (RANDOM * 32768 + RANDOM) % ROWS))
    case "$1" in
        fetch_user) printf 'POST\t/gateway/fetch\t{"table_name":"events","conditions":[{"eq_column":"user_id","eq_value":%d}],"limit":10}\n' "$uid" ;;
        fetch_pk) printf 'POST\t/gateway/fetch\t{"table_name":"events","conditions":[{"eq_column":"id","eq_value":%d}],"limit":1}\n' "$id" ;;
        fetch_cached) printf 'POST\t/gateway/fetch\t{"table_name":"events","conditions":[{"eq_column":"id","eq_value":%d}],"limit":1}\n' "$((1 + id % 100))" ;;
        insert) printf 'PUT\t/gateway/insert\t{"table_name":"events","insert_body":{"user_id":%d,"kind":"bench","value":1.5}}\n' "$uid" ;;
        query) printf 'POST\t/gateway/query\t{"query":"SELECT * FROM events WHERE id = $1","params":[%d]}\n' "$id" ;;
        health) printf 'GET\t/health\t\n' ;;
    esac
}

ws_url() { echo "ws://127.0.0.1:$PORT/wss/gateway"; }

check_scenario() {
    local s="$1" method path body code
    if [ "$s" = fetch_ws ]; then
        local answer
        answer="$(ATHENA_BENCH_KEY="$API_KEY" "$WS_BIN" --check --url "$(ws_url)" --rows "$ROWS" 2>&1)" \
            || die "check failed for $(scenario_label "$s"): $answer"
        log "check ok: gateway.fetch over $(ws_url) -> $(head -c 160 <<<"$answer" | tr -d '\n')"
        return 0
    fi
    IFS=$'\t' read -r method path body < <(example_request "$s")
    local args=(-sS -o "$OUT/check_$s.body" -w '%{http_code}' --max-time 10
        -X "$method"
        -H 'X-Athena-Client: default'
        -H 'Content-Type: application/json')
    args+=(-H "Authorization: Bearer $API_KEY")
    [ -n "$body" ] && args+=(--data-binary "$body")
    code="$(curl "${args[@]}" "http://127.0.0.1:$PORT$path" || true)"
    if [ "$code" != 200 ]; then
        echo "----- response body -----" >&2
        cat "$OUT/check_$s.body" >&2 2>/dev/null || true
        echo >&2
        die "check failed for $(scenario_label "$s"): $method $path ${body:+with body $body }returned HTTP ${code:-nothing} (expected 200)"
    fi
    log "check ok: $method $path -> 200 $(head -c 160 "$OUT/check_$s.body" | tr -d '\n')"
    local want="" got
    case "$s" in
        fetch_user) want=10 ;;
        fetch_pk | fetch_cached | query | insert) want=1 ;;
    esac
    if [ -n "$want" ]; then
        got="$(grep -o '"user_id"' "$OUT/check_$s.body" | wc -l || true)"
        if [ "$got" != "$want" ]; then
            log "warning: expected $want row(s) in the response, found $got"
        fi
    fi
    rm -f "$OUT/check_$s.body"
}

# result slots, filled per scenario
declare -A GW_RPS GW_P50 GW_P99 GW_MAX GW_ERR PG_TPS PG_P50 PG_P99 PG_MAX PG_FAIL

us_to_ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }

# Whether a latency in milliseconds exceeds BENCH_P99_LIMIT_MS.
over_limit() { [ -n "$1" ] && awk -v v="$1" -v l="$P99_LIMIT_MS" 'BEGIN { exit !(v > l) }'; }

kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

run_wrk() {
    local s="$1" secs="$2" outfile="$3"
    ATHENA_BENCH_KEY="$API_KEY" run_bounded $((secs + 60)) \
        wrk -t "$THREADS" -c "$CONNECTIONS" -d "${secs}s" --timeout 10s --latency \
        -s "$BENCH/wrk/gateway.lua" "http://127.0.0.1:$PORT" -- "$s" >"$outfile" 2>&1
}

run_ws() {
    local secs="$1" outfile="$2"
    ATHENA_BENCH_KEY="$API_KEY" run_bounded $((secs + 60)) \
        "$WS_BIN" --url "$(ws_url)" --sockets "$WS_SOCKETS" --inflight "$WS_INFLIGHT" \
        --threads "$THREADS" --duration "$secs" --rows "$ROWS" >"$outfile" 2>&1
}

# Runs one gateway measurement: wrk, or the WebSocket load client for fetch_ws.
run_load() {
    local s="$1" secs="$2" outfile="$3"
    if [ "$s" = fetch_ws ]; then
        run_ws "$secs" "$outfile"
    else
        run_wrk "$s" "$secs" "$outfile"
    fi
}

bench_gateway() {
    local s="$1" out="$OUT/wrk_$1.txt" line
    if [ "$WARMUP" -gt 0 ]; then
        run_load "$s" "$WARMUP" "$OUT/wrk_${s}_warmup.txt" \
            || { cat "$OUT/wrk_${s}_warmup.txt" >&2; die "warmup failed for $s"; }
        require_gateway_alive "during the $s warmup"
    fi
    if [ "$s" = fetch_ws ]; then
        log "ws_load: $(scenario_label "$s"), ${WS_SOCKETS} socket(s) x ${WS_INFLIGHT} in flight, ${DURATION}s"
    else
        log "wrk: $(scenario_label "$s"), ${CONNECTIONS} connections, ${DURATION}s"
    fi
    run_load "$s" "$DURATION" "$out" || { cat "$out" >&2; die "the load run failed for $s"; }
    require_gateway_alive "during the $s measurement"
    line="$(grep '^BENCH_RESULT ' "$out" || true)"
    [ -n "$line" ] || { cat "$out" >&2; die "the load run produced no result for $s"; }
    GW_RPS[$s]="$(awk -v v="$(kv rps "$line")" 'BEGIN { printf "%.0f", v }')"
    GW_P50[$s]="$(us_to_ms "$(kv p50_us "$line")")"
    GW_P99[$s]="$(us_to_ms "$(kv p99_us "$line")")"
    GW_MAX[$s]="$(us_to_ms "$(kv max_us "$line")")"
    local non200 sock statuses err
    non200="$(kv non200 "$line")"
    sock="$(kv socket_errors "$line")"
    statuses="$(kv statuses "$line")"
    err="$((non200 + sock))"
    if [ "$non200" -gt 0 ]; then err="$err [status $statuses]"; fi
    if [ "$sock" -gt 0 ]; then err="$err [socket $sock]"; fi
    GW_ERR[$s]="$err"
    log "  gateway: ${GW_RPS[$s]} req/s, p50 ${GW_P50[$s]} ms, p99 ${GW_P99[$s]} ms, max ${GW_MAX[$s]} ms, errors ${GW_ERR[$s]}"
    if over_limit "${GW_P99[$s]}"; then
        log "  WARNING: the gateway's p99 for $(scenario_label "$s") is ${GW_P99[$s]} ms, over ${P99_LIMIT_MS} ms"
    fi
}

bench_pgbench() {
    local s="$1" out="$OUT/pgbench_$1.txt" prefix="$OUT/pgbench_log"
    rm -f "$prefix".*
    log "pgbench: $(scenario_label "$s"), ${CONNECTIONS} clients, ${DURATION}s"
    if ! run_bounded $((DURATION + 60)) \
        pgbench -n -M prepared -c "$CONNECTIONS" -j "$THREADS" -T "$DURATION" \
        -h "$PG_HOST" -p "$DB_PORT" -U postgres \
        --log --log-prefix="$prefix" \
        -f "$BENCH/pgbench/$s.sql" "$DB" >"$out" 2>&1; then
        cat "$out" >&2
        die "pgbench failed for $s"
    fi
    local tps fails
    tps="$(awk '/^tps = / { print $3; exit }' "$out")"
    [ -n "$tps" ] || { cat "$out" >&2; die "pgbench printed no tps for $s"; }
    PG_TPS[$s]="$(awk -v v="$tps" 'BEGIN { printf "%.0f", v }')"
    fails="$(awk -F': ' '/^number of failed transactions/ { split($2, a, " "); print a[1]; exit }' "$out")"
    PG_FAIL[$s]="${fails:-0}"

    # Per-transaction latencies (3rd column, microseconds) from all thread logs.
    local sorted="$OUT/pgbench_log.sorted" n i50 i99
    cat "$prefix".* 2>/dev/null | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n >"$sorted"
    n="$(wc -l <"$sorted")"
    [ "$n" -gt 0 ] || die "pgbench wrote no transaction log for $s"
    # nearest-rank percentiles
    i50=$(( (n * 50 + 99) / 100 ))
    i99=$(( (n * 99 + 99) / 100 ))
    PG_P50[$s]="$(us_to_ms "$(sed -n "${i50}p" "$sorted")")"
    PG_P99[$s]="$(us_to_ms "$(sed -n "${i99}p" "$sorted")")"
    PG_MAX[$s]="$(us_to_ms "$(tail -n 1 "$sorted")")"
    rm -f "$prefix".*
    log "  pgbench: ${PG_TPS[$s]} tps, p50 ${PG_P50[$s]} ms, p99 ${PG_P99[$s]} ms, max ${PG_MAX[$s]} ms ($n transactions logged)"
}

# (h) change data capture: commit-to-subscriber latency and loss.
CDC_RESULT=""
CDC_LOST=0

admin_api() { # METHOD PATH [BODY]
    curl -sS --max-time 10 -X "$1" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        ${3:+--data-binary "$3"} "http://127.0.0.1:$PORT$2"
}

bench_cdc() {
    local wal out="$OUT/cdc_load.txt" line answer deadline
    wal="$(psql_admin -tAc 'SHOW wal_level')"
    if [ "$wal" != logical ]; then
        CDC_RESULT="skipped: wal_level is $wal, not logical (run scripts/prepare-postgres.sh)"
        log "(h) $CDC_RESULT"
        return 0
    fi
    # Capturing waits for the logging database (migrated in the background at start).
    deadline=$((SECONDS + 30))
    while :; do
        answer="$(admin_api POST /admin/cdc/tables '{"client_name":"default","table":"cdc_ticks"}')" \
            || die "POST /admin/cdc/tables failed"
        grep -q '"status":"success"' <<<"$answer" && break
        grep -q '"code":"cdc_unavailable"' <<<"$answer" && [ "$SECONDS" -lt "$deadline" ] \
            || die "could not capture cdc_ticks: $answer"
        sleep 0.2
    done
    # The reader leads once it has made its slot and read the log's head.
    until answer="$(admin_api GET /admin/cdc)" && grep -q '"role":"leader"' <<<"$answer" \
        && grep -q '"head_seq":[0-9]' <<<"$answer"; do
        [ "$SECONDS" -ge "$deadline" ] && die "the change data capture reader did not start: $(admin_api GET /admin/cdc)"
        sleep 0.2
    done
    log "cdc_load: (h) ${CDC_RATE} changes/s to ${CDC_SUBSCRIBERS} WebSocket subscribers, ${DURATION}s"
    ATHENA_BENCH_KEY="$API_KEY" run_bounded $((DURATION + 120)) \
        "$CDC_BIN" --url "$(ws_url)" --pg "postgres://postgres@$PG_HOST:$PG_PORT/$DB" \
        --subscribers "$CDC_SUBSCRIBERS" --rate "$CDC_RATE" --duration "$DURATION" \
        --threads "$THREADS" >"$out" 2>&1 || { cat "$out" >&2; die "the change data capture load run failed"; }
    require_gateway_alive "during the change data capture measurement"
    line="$(grep '^BENCH_CDC ' "$out" || true)"
    [ -n "$line" ] || { cat "$out" >&2; die "cdc_load produced no result"; }
    CDC_LOST="$(kv lost "$line")"
    CDC_RESULT="$(kv changes "$line") changes at $(kv write_rate "$line")/s to $(kv subscribers "$line") WebSocket subscribers: commit-to-subscriber p50 $(us_to_ms "$(kv p50_us "$line")") ms, p99 $(us_to_ms "$(kv p99_us "$line")") ms, max $(us_to_ms "$(kv max_us "$line")") ms; lost $CDC_LOST, duplicates $(kv duplicates "$line"), lagged $(kv lagged "$line") (commit = the INSERT's return through tokio-postgres)"
    log "  $CDC_RESULT"
}

# --------------------------------------------------------------------------
# 6. report
# --------------------------------------------------------------------------
HEADERS=("scenario" "gateway req/s" "p50 ms" "p99 ms" "max ms" "pgbench tps" "p50 ms" "p99 ms" "max ms" "ratio" "errors" "flags")

# The report's flags for scenario $1: each measurement whose p99 is over BENCH_P99_LIMIT_MS.
flags_of() {
    local f=()
    over_limit "${GW_P99[$1]:-}" && f+=("gateway p99>${P99_LIMIT_MS}ms")
    over_limit "${PG_P99[$1]:-}" && f+=("pgbench p99>${P99_LIMIT_MS}ms")
    if [ "${#f[@]}" -gt 0 ]; then (IFS=,; echo "${f[*]}"); else echo "-"; fi
}

row_values() {
    local s="$1" ratio err
    if [ -n "${GW_RPS[$s]:-}" ] && [ -n "${PG_TPS[$s]:-}" ] && [ "${PG_TPS[$s]}" != 0 ]; then
        ratio="$(awk -v g="${GW_RPS[$s]}" -v p="${PG_TPS[$s]}" 'BEGIN { printf "%.1f%%", 100 * g / p }')"
    else
        ratio="n/a"
    fi
    err="${GW_ERR[$s]:-n/a}"
    if [ "${PG_FAIL[$s]:-0}" != 0 ]; then err="$err [pgbench failed ${PG_FAIL[$s]}]"; fi
    printf '%s\t' "$(scenario_label "$s")" "${GW_RPS[$s]:-n/a}" "${GW_P50[$s]:-n/a}" "${GW_P99[$s]:-n/a}" \
        "${GW_MAX[$s]:-n/a}" "${PG_TPS[$s]:-n/a}" "${PG_P50[$s]:-n/a}" "${PG_P99[$s]:-n/a}" \
        "${PG_MAX[$s]:-n/a}" "$ratio" "$err" "$(flags_of "$s")"
    printf '\n'
}

# (f) against (b): the same request answered from the cache and from the database.
cache_speedup() {
    if [ -n "${GW_RPS[fetch_cached]:-}" ] && [ -n "${GW_RPS[fetch_pk]:-}" ] && [ "${GW_RPS[fetch_pk]}" != 0 ]; then
        awk -v c="${GW_RPS[fetch_cached]}" -v u="${GW_RPS[fetch_pk]}" \
            'BEGIN { printf "cache: a hit (f) serves %.1fx the uncached rate (b)\n", c / u }'
    else
        echo "cache: n/a"
    fi
}

# (g) against (b): the same fetch multiplexed over WebSocket and as one HTTP request per call.
ws_speedup() {
    if [ -n "${GW_RPS[fetch_ws]:-}" ] && [ -n "${GW_RPS[fetch_pk]:-}" ] && [ "${GW_RPS[fetch_pk]}" != 0 ]; then
        awk -v w="${GW_RPS[fetch_ws]}" -v h="${GW_RPS[fetch_pk]}" -v n="$WS_SOCKETS" -v k="$WS_INFLIGHT" \
            'BEGIN { printf "websocket: (g), %d socket(s) x %d in flight, serves %.2fx the HTTP rate of (b)\n", n, k, w / h }'
    else
        echo "websocket: n/a"
    fi
}

# The delay between the gateway (and pgbench) and PostgreSQL, as the report names it.
delay_words() {
    [ "$DB_DELAY_MS" -gt 0 ] && echo ", PostgreSQL ${DB_DELAY_MS} ms away each way (bench/delay_proxy.rs)"
    return 0
}

# Where the gateway runs, as the report names it.
session_words() {
    if [ "$OWN_SESSION" = 1 ]; then
        echo "gateway in a session of its own"
    else
        echo "gateway in the load client's session (BENCH_OWN_SESSION=0)"
    fi
}

# The gateway's request pool as the report names it.
pool_words() {
    if [ -n "$POOL" ]; then
        echo "gateway pool: $POOL database connections (BENCH_POOL)"
    else
        echo "gateway pool: ${GATEWAY_POOL:-unknown} database connections (the bundled default)"
    fi
}

# One line naming the measurements whose p99 exceeded BENCH_P99_LIMIT_MS, or saying none did.
flag_summary() {
    local s f flagged=()
    for s in "${SCENARIOS[@]}"; do
        f="$(flags_of "$s")"
        [ "$f" = - ] || flagged+=("$(scenario_label "$s"): $f")
    done
    if [ "${#flagged[@]}" -gt 0 ]; then
        printf 'FLAGGED: p99 over %s ms in %s\n' "$P99_LIMIT_MS" "$(printf '%s; ' "${flagged[@]}" | sed 's/; $//')"
    else
        echo "p99 within ${P99_LIMIT_MS} ms in every measurement"
    fi
}

print_report() {
    local peak="$1" s
    local fmt='%-30s %13s %8s %8s %8s %11s %8s %8s %8s %7s  %-8s %s\n'
    echo
    # shellcheck disable=SC2059
    printf "$fmt" "${HEADERS[@]}"
    # shellcheck disable=SC2059
    printf "$fmt" "------------------------------" "-------------" "--------" "--------" "--------" \
        "-----------" "--------" "--------" "--------" "-------" "--------" "-----"
    for s in "${SCENARIOS[@]}"; do
        local vals=()
        IFS=$'\t' read -r -a vals < <(row_values "$s")
        # shellcheck disable=SC2059
        printf "$fmt" "${vals[@]}"
    done
    echo
    echo "$(cache_speedup)"
    echo "$(ws_speedup)"
    echo "change data capture (h): ${CDC_RESULT:-not run}"
    echo "gateway peak memory (VmHWM): ${peak} MiB"
    echo "connections: $CONNECTIONS, threads: $THREADS, duration: ${DURATION}s per measurement, $(pool_words), autogroup scheduling: $AUTOGROUP_STATE, $(session_words)$(delay_words)"
    flag_summary

    {
        echo "# Athena gateway benchmark"
        echo
        echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "- revision: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
        echo "- machine: $(nproc) CPU(s), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
        echo "- PostgreSQL: $(psql_admin -tAc 'SHOW server_version' 2>/dev/null || echo unknown)"
        echo "- connections: $CONNECTIONS, threads: $THREADS, duration: ${DURATION}s per measurement, gateway warmup: ${WARMUP}s, $(pool_words), autogroup scheduling: $AUTOGROUP_STATE, $(session_words)$(delay_words)"
        echo "- table: events, $ROWS rows, $USERS distinct user_id values"
        echo
        printf '| %s ' "${HEADERS[@]}"
        echo '|'
        echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|"
        for s in "${SCENARIOS[@]}"; do
            row_values "$s" | sed 's/\t$//; s/|/\\|/g; s/\t/ | /g; s/^/| /; s/$/ |/'
        done
        echo
        cache_speedup
        echo
        ws_speedup
        echo
        echo "Change data capture (h): ${CDC_RESULT:-not run}"
        echo
        echo "Gateway peak memory (VmHWM): ${peak} MiB"
        echo
        echo "ratio = gateway req/s as a percentage of pgbench tps for the same SQL; (g) is compared with (b)'s pgbench run."
        echo "errors = gateway responses with a status other than 200 plus socket errors."
        echo
        flag_summary
    } >"$OUT/results.md"
    echo "results written to $OUT/results.md"
}

# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
# --------------------------------------------------------------------------
# BENCH_COMPARE: enforcement and statistics off against on
# --------------------------------------------------------------------------
declare -A CMP_PORT CMP_PID CMP_KEY CMP_RPS CMP_P99 CMP_MAX CMP_CPU CMP_GWCPU CMP_LOGCPU

# CPU time the whole machine has spent busy (not idle, not waiting for I/O), in clock ticks.
machine_busy_ticks() {
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# CPU time process $1 has used (user and system), in clock ticks.
process_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# The database backends writing statistics (the statistics actor's connections).
stats_backends() {
    psql -X -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atc \
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'athena-stats'" 2>/dev/null || true
}

# CPU time processes $@ have used, in clock ticks (a process that ended counts 0).
processes_ticks() {
    local p t=0
    for p in "$@"; do t=$((t + $(process_ticks "$p" 2>/dev/null || echo 0))); done
    echo "$t"
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Makes gateway $1 (off or on) the one measured.
use_gateway() {
    PORT="${CMP_PORT[$1]}"
    SERVER_PID="${CMP_PID[$1]}"
    OTHER_PID="${CMP_PID[$([ "$1" = off ] && echo on || echo off)]}"
}

compare_slice() { # scenario side round
    local s="$1" side="$2" out="$OUT/compare_$1_$2_$3.txt" line
    use_gateway "$side"
    sleep 1
    local busy0 gw0 log0 busy1 gw1 log1 requests writers
    read -r -a writers <<<"$(stats_backends | tr '\n' ' ')"
    log0="$(processes_ticks "${writers[@]}")"
    busy0="$(machine_busy_ticks)"
    gw0="$(process_ticks "$SERVER_PID")"
    run_load "$s" "$DURATION" "$out" || { cat "$out" >&2; die "the load run failed for $s ($side)"; }
    # The statistics of the slice are part of its cost: the 'on' gateway's CPU and its writer's
    # are counted until they are written.
    # (With BENCH_COMPARE_TLS both gateways record, so both settle.)
    if { [ "$side" = on ] || [ "$COMPARE_TLS" = 1 ]; } && [ "$ON_STATS" = true ]; then stats_settle; fi
    busy1="$(machine_busy_ticks)"
    gw1="$(process_ticks "$SERVER_PID")"
    log1="$(processes_ticks "${writers[@]}")"
    require_gateway_alive "during the $s measurement ($side)"
    line="$(grep '^BENCH_RESULT ' "$out" || true)"
    [ -n "$line" ] || { cat "$out" >&2; die "the load run produced no result for $s ($side)"; }
    [ "$(kv non200 "$line")" = 0 ] && [ "$(kv socket_errors "$line")" = 0 ] \
        || die "$s ($side): requests failed: $line"
    CMP_RPS[$s,$side]="${CMP_RPS[$s,$side]:-} $(awk -v v="$(kv rps "$line")" 'BEGIN { printf "%.0f", v }')"
    CMP_P99[$s,$side]="${CMP_P99[$s,$side]:-} $(us_to_ms "$(kv p99_us "$line")")"
    CMP_MAX[$s,$side]="${CMP_MAX[$s,$side]:-} $(us_to_ms "$(kv max_us "$line")")"
    # CPU per request, in microseconds: the machine's (the gateway, the load client and every
    # database process) and the gateway's own.
    requests="$(awk -v r="$(kv rps "$line")" -v d="$DURATION" 'BEGIN { print r * d }')"
    CMP_CPU[$s,$side]="${CMP_CPU[$s,$side]:-} $(awk -v t="$((busy1 - busy0))" -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
    CMP_GWCPU[$s,$side]="${CMP_GWCPU[$s,$side]:-} $(awk -v t="$((gw1 - gw0))" -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
    CMP_LOGCPU[$s,$side]="${CMP_LOGCPU[$s,$side]:-} $(awk -v t="$((log1 - log0))" -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
}

# The kernel's autogroup scheduling shares CPU time between sessions before threads: PostgreSQL,
# a service of its own session, and the gateway with the load client, this script's, take turns,
# and every backend of the database shares its session's turn. Most Linux machines run with it on
# and so do the measurements by default; BENCH_AUTOGROUP=off turns it off for the run (it needs
# root; restored on exit), so that every thread competes on its own, as services in one cgroup do.
apply_autogroup() {
    [ -r "$AUTOGROUP" ] || { AUTOGROUP_STATE="not available"; return 0; }
    if [ "$AUTOGROUP_MODE" = off ] && [ "$(cat "$AUTOGROUP")" = 1 ]; then
        if echo 0 >"$AUTOGROUP" 2>/dev/null; then
            AUTOGROUP_WAS=1
            log "autogroup scheduling off for the run ($AUTOGROUP, restored on exit)"
        else
            die "BENCH_AUTOGROUP=off: $AUTOGROUP cannot be written (not root)"
        fi
    fi
    case "$(cat "$AUTOGROUP")" in 1) AUTOGROUP_STATE=on ;; *) AUTOGROUP_STATE=off ;; esac
    log "autogroup scheduling: $AUTOGROUP_STATE, $(session_words)"
}

compare_main() {
    CLK_TCK="$(getconf CLK_TCK)"
    local ON_ENFORCE="$ENFORCE_BOOL" ON_STATS="$STATS_BOOL"
    ensure_tools
    build_gateway
    setup_database
    local side s r first second
    for side in off on; do
        case "$side,$COMPARE_TLS" in
            off,0) ENFORCE_BOOL=false STATS_BOOL=false ;;
            on,0) ENFORCE_BOOL="$ON_ENFORCE" STATS_BOOL="$ON_STATS" ;;
            off,1) ENFORCE_BOOL="$ON_ENFORCE" STATS_BOOL="$ON_STATS" PG_SSLMODE=disable ;;
            on,1) ENFORCE_BOOL="$ON_ENFORCE" STATS_BOOL="$ON_STATS" PG_SSLMODE=require ;;
        esac
        SERVER_LOG="$OUT/server_$side.log"
        start_gateway
        CMP_PORT[$side]="$PORT"
        CMP_PID[$side]="$SERVER_PID"
        CMP_KEY[$side]="$KEY"
        if [ "$side" = off ]; then
            mint_api_key
            # stopped on exit as the other gateway
            OTHER_PID="$SERVER_PID"
            SERVER_PID=""
        else
            await_api_key
            read_gateway_pool
        fi
    done
    for side in off on; do
        use_gateway "$side"
        for s in "${SCENARIOS[@]}"; do check_scenario "$s"; done
    done
    if [ "$CDC" = 1 ]; then log "BENCH_COMPARE leaves out (h)"; fi
    for s in "${SCENARIOS[@]}"; do
        log "$(scenario_label "$s"): $COMPARE_ROUNDS rounds of ${DURATION}s off and on"
        if [ "$WARMUP" -gt 0 ]; then
            for side in off on; do
                use_gateway "$side"
                run_load "$s" "$WARMUP" "$OUT/compare_${s}_warmup.txt" \
                    || { cat "$OUT/compare_${s}_warmup.txt" >&2; die "warmup failed for $s"; }
            done
        fi
        for r in $(seq 1 "$COMPARE_ROUNDS"); do
            if [ $((r % 2)) = 1 ]; then first=off second=on; else first=on second=off; fi
            compare_slice "$s" "$first" "$r"
            compare_slice "$s" "$second" "$r"
        done
        log "  off:${CMP_RPS[$s,off]} req/s; on:${CMP_RPS[$s,on]} req/s"
        log "  machine CPU per request (us), off:${CMP_CPU[$s,off]}; on:${CMP_CPU[$s,on]}"
    done
    if [ "$ON_STATS" = true ]; then stats_accounting; fi
    compare_report
    case "${CMP_DROPPED:-0}" in
        0) ;;
        unknown) die "the 'on' gateway's statistics counters could not be read: whether it wrote every record is unknown" ;;
        *) die "the 'on' gateway dropped $CMP_DROPPED statistics records: these figures do not count their cost" ;;
    esac
}

# A statistics counter of the 'on' gateway's /metrics (the sum of its samples matching $1), or
# "unknown" when /metrics does not answer or has no such sample (never taken for 0).
on_metric() {
    { curl -sf --max-time 5 -H "Authorization: Bearer ${CMP_KEY[on]}" \
        "http://127.0.0.1:${CMP_PORT[on]}/metrics" || true; } \
        | awk -v m="$1" 'index($1, m) == 1 { t += $2; n++ }
            END { if (n) printf "%.0f", t; else printf "unknown" }'
}

# Waits until the 'on' gateway has written what it recorded: one flush interval for the records
# still with the request threads to reach its buffer, then until the buffer is empty (at most
# 30 s).
stats_settle() {
    local deadline=$((SECONDS + 30))
    sleep 0.6
    while [ "$(on_metric athena_stats_buffer_records)" != 0 ] && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1
    done
}

# Whether the 'on' gateway wrote every record it served: its figures count the cost of the
# records it wrote, so a run in which it dropped any measures less than the whole cost (it
# fails). Reads its counters and the log rows in the database.
stats_accounting() {
    stats_settle
    sleep 1
    CMP_WRITTEN="$(on_metric athena_stats_records_written_total)"
    CMP_DROPPED="$(on_metric athena_stats_records_dropped_total)"
    local reason
    for reason in mailbox_full buffer_full rejected; do
        CMP_DROPPED_BY="${CMP_DROPPED_BY:-}${CMP_DROPPED_BY:+, }$reason $(on_metric "athena_stats_records_dropped_total{reason=\"$reason\"}")"
    done
    CMP_ROWS="$(psql -X -h "$PG_HOST" -p "$PG_PORT" -U postgres -d "$DB" -Atc \
        "SELECT count(*) FROM gateway_requests" 2>/dev/null || echo unknown)"
    log "the 'on' gateway wrote $CMP_WRITTEN records and dropped $CMP_DROPPED ($CMP_DROPPED_BY); gateway_requests holds $CMP_ROWS rows"
}

compare_report() {
    local s side off on ratios mo mn mr
    {
        if [ "$COMPARE_TLS" = 1 ]; then
            echo "# Athena: what TLS to PostgreSQL costs"
        else
            echo "# Athena: what API-key enforcement and statistics cost"
        fi
        echo
        echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "- revision: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
        echo "- machine: $(nproc) CPU(s); connections: $CONNECTIONS; $(pool_words); autogroup scheduling: $AUTOGROUP_STATE; $(session_words); $COMPARE_ROUNDS rounds of ${DURATION}s per side"
        if [ "$COMPARE_TLS" = 1 ]; then
            echo "- both: API-key enforcement $ON_ENFORCE, statistics $ON_STATS; off: sslmode=disable, on: sslmode=require (the gateway's client and logging database)"
        else
            echo "- on: API-key enforcement $ON_ENFORCE, statistics $ON_STATS; off: both false"
        fi
        echo
        echo "| scenario | both off: req/s | median | both on: req/s | median | on vs off, median of the rounds |"
        echo "|---|--:|--:|--:|--:|--:|"
        for s in "${SCENARIOS[@]}"; do
            read -r -a off <<<"${CMP_RPS[$s,off]}"
            read -r -a on <<<"${CMP_RPS[$s,on]}"
            ratios=()
            for r in "${!off[@]}"; do
                ratios+=("$(awk -v a="${on[$r]}" -v b="${off[$r]}" 'BEGIN { printf "%.1f", 100 * (a - b) / b }')")
            done
            mo="$(median "${off[@]}")"
            mn="$(median "${on[@]}")"
            mr="$(median "${ratios[@]}")"
            printf '| %s | %s | %.0f | %s | %.0f | %+.1f%% (%s) |\n' "$(scenario_label "$s")" \
                "$(IFS=/; echo "${off[*]}" | sed 's|/| / |g')" "$mo" \
                "$(IFS=/; echo "${on[*]}" | sed 's|/| / |g')" "$mn" "$mr" \
                "$(printf '%s%%, ' "${ratios[@]}" | sed 's/, $//')"
        done
        echo
        echo "CPU time per request, in microseconds (median of the rounds): the whole machine's (gateway,"
        echo "load client, both databases' processes), the gateway process's own, and that of the database"
        echo "backends writing the statistics (application_name athena-stats) while the 'on' gateway served."
        echo
        echo "| scenario | machine, off | machine, on | on vs off | gateway, off | gateway, on | on vs off | log writer, on |"
        echo "|---|--:|--:|--:|--:|--:|--:|--:|"
        for s in "${SCENARIOS[@]}"; do
            local c
            for c in CMP_CPU CMP_GWCPU; do
                local -n cpu="$c"
                read -r -a off <<<"${cpu[$s,off]}"
                read -r -a on <<<"${cpu[$s,on]}"
                mo="$(median "${off[@]}")"
                mn="$(median "${on[@]}")"
                if [ "$c" = CMP_CPU ]; then printf '| %s ' "$(scenario_label "$s")"; fi
                printf '| %.1f | %.1f | %+.1f ' "$mo" "$mn" "$(awk -v a="$mn" -v b="$mo" 'BEGIN { print a - b }')"
                unset -n cpu
            done
            read -r -a on <<<"${CMP_LOGCPU[$s,on]}"
            printf '| %.1f |\n' "$(median "${on[@]}")"
        done
        echo
        echo "Latency of each side, in milliseconds: p99 of every round, their median, and the largest max;"
        echo "a p99 over ${P99_LIMIT_MS} ms is flagged."
        echo
        echo "| scenario | off: p99 | median | max | on: p99 | median | max | flags |"
        echo "|---|--:|--:|--:|--:|--:|--:|---|"
        for s in "${SCENARIOS[@]}"; do
            local flags=() v
            printf '| %s ' "$(scenario_label "$s")"
            for side in off on; do
                read -r -a off <<<"${CMP_P99[$s,$side]}"
                read -r -a on <<<"${CMP_MAX[$s,$side]}"
                printf '| %s | %s | %s ' "$(IFS=/; echo "${off[*]}" | sed 's|/| / |g')" \
                    "$(median "${off[@]}")" "$(printf '%s\n' "${on[@]}" | sort -g | tail -n 1)"
                for v in "${off[@]}"; do
                    if over_limit "$v"; then flags+=("$side p99>${P99_LIMIT_MS}ms"); break; fi
                done
            done
            if [ "${#flags[@]}" -gt 0 ]; then printf '| %s |\n' "$(IFS=,; echo "${flags[*]}")"; else echo '| - |'; fi
        done
        if [ -n "${CMP_WRITTEN:-}" ]; then
            echo
            echo "Statistics of the 'on' gateway over the whole run (checks included): $CMP_WRITTEN request"
            echo "records written, $CMP_DROPPED dropped ($CMP_DROPPED_BY); gateway_requests holds $CMP_ROWS rows."
        fi
    } >"$OUT/compare.md"
    cat "$OUT/compare.md"
}

main() {
    apply_autogroup
    if [ "$COMPARE" = 1 ]; then
        compare_main
        return
    fi
    ensure_tools
    if [ "$SKIP_GATEWAY" != 1 ]; then
        build_gateway
    fi
    setup_database
    start_delay_proxy

    local peak="n/a" s
    if [ "$SKIP_GATEWAY" != 1 ]; then
        start_gateway
        mint_api_key
        read_gateway_pool
        for s in "${SCENARIOS[@]}"; do
            check_scenario "$s"
        done
    fi

    for s in "${SCENARIOS[@]}"; do
        if [ "$SKIP_GATEWAY" != 1 ]; then
            bench_gateway "$s"
        fi
        if [ "$s" = fetch_ws ]; then
            # The same SQL as (b): its pgbench run is the baseline.
            PG_TPS[$s]="${PG_TPS[fetch_pk]:-}" PG_P50[$s]="${PG_P50[fetch_pk]:-}"
            PG_P99[$s]="${PG_P99[fetch_pk]:-}" PG_MAX[$s]="${PG_MAX[fetch_pk]:-}"
            PG_FAIL[$s]="${PG_FAIL[fetch_pk]:-0}"
        else
            bench_pgbench "$s"
        fi
    done

    if [ "$SKIP_GATEWAY" != 1 ] && [ "$CDC" = 1 ]; then
        bench_cdc
    fi

    if [ "$SKIP_GATEWAY" != 1 ]; then
        require_gateway_alive "before the end of the run"
        peak="$(peak_memory_mib)"
        stop_server
    fi

    print_report "$peak"

    local bad=0
    for s in "${SCENARIOS[@]}"; do
        case "${GW_ERR[$s]:-0}" in 0) ;; *) bad=1 ;; esac
        [ "${PG_FAIL[$s]:-0}" = 0 ] || bad=1
    done
    if [ "$bad" = 1 ]; then
        log "some requests failed during the run (see the errors column)"
        exit 1
    fi
    if [ "$CDC_LOST" != 0 ]; then
        log "(h): $CDC_LOST changes never reached a subscriber"
        exit 1
    fi
}

main "$@"
