# Build: docker build -t athena .
# Run:   docker run -p 4052:4052 -e ATHENA_PG_URI=postgres://user:pass@db:5432/app -e ATHENA_KEY_12=... athena
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin athena_rs

FROM debian:bookworm-slim
# postgresql-client: pg_dump and pg_restore for backups (PostgreSQL 15 tools: they back up servers
# up to 15; newer servers need newer tools on PATH, e.g. from apt.postgresql.org).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /srv/athena athena
WORKDIR /srv/athena
COPY --from=build /src/target/release/athena_rs /usr/local/bin/athena_rs
COPY config.yaml /srv/athena/config.yaml
COPY config/pipelines.yaml /srv/athena/config/pipelines.yaml
USER athena
EXPOSE 4052
# Inside a container the gateway must listen beyond loopback to be reachable.
ENTRYPOINT ["athena_rs"]
CMD ["server", "--config", "/srv/athena/config.yaml", "--host", "0.0.0.0"]
