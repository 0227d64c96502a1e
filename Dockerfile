# syntax=docker/dockerfile:1
#
# Athena in a container: a release build, then a slim runtime image that runs as a non-root user,
# listens on 0.0.0.0:4052, checks its own /health (athena_rs health: the image has no curl) and
# carries pg_dump/pg_restore for backups. Configuration comes from the environment through the
# bundled config.yaml's ${VAR} interpolation (see docs/operations.md, "Container").
#
# Build: docker build --build-arg ATHENA_GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t athena .
# Run:   docker run --rm -p 4052:4052 -e ATHENA_PG_URI=postgres://user:pass@db:5432/app \
#          -e ATHENA_LOGGING_URI=postgres://user:pass@db:5432/athena_logging -e ATHENA_KEY_12=... athena

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# The commit `athena_rs version` reports (.git is not sent to the build).
ARG ATHENA_GIT_COMMIT=
WORKDIR /src
COPY . .
# Registry and target caches survive between builds (BuildKit); the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    ATHENA_GIT_COMMIT="${ATHENA_GIT_COMMIT}" cargo build --release --locked --bin athena_rs \
    && cp target/release/athena_rs /usr/local/bin/athena_rs

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ARG DEBIAN_RELEASE
# pg_dump and pg_restore must be at least as new as the servers they back up: the client of the
# PostgreSQL project's own repository (17 reads 9.2 to 17).
ARG PG_MAJOR=17
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl gnupg; \
    install -d /usr/share/postgresql-common/pgdg; \
    curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc \
        | gpg --dearmor -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.gpg; \
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.gpg] https://apt.postgresql.org/pub/repos/apt ${DEBIAN_RELEASE}-pgdg main" \
        > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}"; \
    apt-get purge -y --auto-remove curl gnupg; \
    rm -rf /var/lib/apt/lists/*; \
    pg_dump --version; pg_restore --version; \
    groupadd --system --gid 10001 athena; \
    useradd --system --uid 10001 --gid athena --home-dir /srv/athena --shell /usr/sbin/nologin athena; \
    install -d -o athena -g athena /srv/athena /srv/athena/config

COPY --from=build /usr/local/bin/athena_rs /usr/local/bin/athena_rs
COPY config.yaml /etc/athena/config.yaml
COPY config/pipelines.yaml /srv/athena/config/pipelines.yaml

# Listen beyond loopback inside the container; everything else is the bundled config's default
# unless set at `docker run -e` (ATHENA_PG_URI, ATHENA_LOGGING_URI, ATHENA_KEY_12, …).
ENV ATHENA_CONFIG=/etc/athena/config.yaml \
    ATHENA_HOST=0.0.0.0 \
    ATHENA_PORT=4052 \
    ATHENA_HEALTH_URL=http://127.0.0.1:4052 \
    RUST_LOG=info

WORKDIR /srv/athena
USER athena:athena
EXPOSE 4052
# SIGTERM drains: requests in flight are answered and statistics flushed within
# server.shutdown_timeout_secs (10 s); give `docker stop -t` at least that.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["athena_rs", "health", "--timeout-ms", "3000"]
ENTRYPOINT ["athena_rs"]
CMD ["server"]
