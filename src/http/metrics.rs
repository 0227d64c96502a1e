//! `GET /metrics`: Prometheus text format 0.0.4. Request counts and latency histograms come from
//! the shards the edges count them in; pool, lifecycle and health gauges from the registry
//! snapshot; the statistics pipeline's counters from the atomics the actor publishes. Needs the
//! admin key unless `metrics.public` is set.

use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::backend::breaker::StateKind;
use athena_actors::backend::postgres::HealthState;
use athena_actors::registry::Lifecycle;
use athena_actors::stats::metrics::{family, sample};
use athena_actors::stats::StatsCounters;

use super::error::ApiError;
use super::{auth, AppState};

/// The content type Prometheus scrapes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !state.settings.metrics_public {
        auth::require_admin(&req, &state)?;
    }
    let requests = state.actors.stats.metrics();
    let mut out = String::with_capacity(8192);
    family(
        &mut out,
        "athena_build_info",
        "gauge",
        "The running version.",
    );
    sample(
        &mut out,
        "athena_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    family(
        &mut out,
        "athena_uptime_seconds",
        "gauge",
        "Seconds since start.",
    );
    sample(
        &mut out,
        "athena_uptime_seconds",
        &[],
        state.started.elapsed().as_secs_f64(),
    );
    requests.render(&mut out);
    clients(&state, &mut out);
    pipeline(&state, &mut out);
    cache(&state, &mut out);
    super::cdc::render_metrics(&state, &mut out);
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(out))
}

fn cache(state: &AppState, out: &mut String) {
    let cache = &state.actors.cache;
    let c = &cache.shared.counters;
    let get = |a: &std::sync::atomic::AtomicU64| StatsCounters::get(a) as f64;
    family(
        out,
        "athena_cache_lookups_total",
        "counter",
        "Fetches by cache outcome: hit (here or in Redis), miss, or bypass (Cache-Control or a zero time to live).",
    );
    for (outcome, source, n) in [
        ("hit", "local", get(&c.hits_local)),
        ("hit", "redis", get(&c.hits_redis)),
        ("miss", "", get(&c.misses)),
        ("bypass", "", get(&c.bypasses)),
    ] {
        let mut labels = vec![("outcome", outcome)];
        if !source.is_empty() {
            labels.push(("source", source));
        }
        sample(out, "athena_cache_lookups_total", &labels, n);
    }
    family(
        out,
        "athena_cache_invalidations_total",
        "counter",
        "Tables invalidated by writes, here and announced by other instances.",
    );
    sample(
        out,
        "athena_cache_invalidations_total",
        &[],
        get(&c.invalidations),
    );
    family(
        out,
        "athena_cache_redis_errors_total",
        "counter",
        "Redis commands that failed or timed out.",
    );
    sample(
        out,
        "athena_cache_redis_errors_total",
        &[],
        get(&c.redis_errors),
    );
    let status = cache.status();
    family(
        out,
        "athena_cache_entries",
        "gauge",
        "Entries in the local cache.",
    );
    sample(out, "athena_cache_entries", &[], status.entries as f64);
    family(
        out,
        "athena_cache_bytes",
        "gauge",
        "Weighted size of the local cache, in bytes.",
    );
    sample(out, "athena_cache_bytes", &[], status.bytes as f64);
    if let Some(up) = status.redis_up {
        family(
            out,
            "athena_cache_redis_up",
            "gauge",
            "1 while Redis is reachable.",
        );
        sample(out, "athena_cache_redis_up", &[], f64::from(u8::from(up)));
    }
}

fn clients(state: &AppState, out: &mut String) {
    let snap = state.actors.snapshot.load();
    let gauges: [(&str, &str); 6] = [
        (
            "athena_pool_inflight",
            "Operations running now, per client.",
        ),
        (
            "athena_pool_capacity",
            "Operations allowed in flight at once, per client.",
        ),
        (
            "athena_pool_connections",
            "Open request connections, per client.",
        ),
        (
            "athena_pool_connections_idle",
            "Idle request connections, per client.",
        ),
        (
            "athena_pool_connections_max",
            "Most request connections, per client.",
        ),
        ("athena_client_frozen", "1 when the client is frozen."),
    ];
    for (name, help) in gauges {
        family(out, name, "gauge", help);
        for c in snap.clients.values() {
            let (open, idle, max) = c.backend.connections().unwrap_or_default();
            let value = match name {
                "athena_pool_inflight" => c.backend.inflight(),
                "athena_pool_capacity" => c.backend.capacity(),
                "athena_pool_connections" => open,
                "athena_pool_connections_idle" => idle,
                "athena_pool_connections_max" => max,
                _ => usize::from(matches!(c.lifecycle, Lifecycle::Frozen { .. })),
            };
            sample(out, name, &[("client", &c.name)], value as f64);
        }
    }
    family(
        out,
        "athena_client_health",
        "gauge",
        "1 for the client's current health state (unknown, online, offline).",
    );
    for c in snap.clients.values() {
        let now = c.backend.breaker().health();
        for s in [
            HealthState::Unknown,
            HealthState::Online,
            HealthState::Offline,
        ] {
            let v = f64::from(u8::from(now == s));
            sample(
                out,
                "athena_client_health",
                &[("client", &c.name), ("state", s.as_str())],
                v,
            );
        }
    }
    family(
        out,
        "athena_client_breaker_state",
        "gauge",
        "1 for the state of the client's circuit breaker (closed, open, half_open).",
    );
    for c in snap.clients.values() {
        let now = c.backend.breaker().state();
        for s in StateKind::ALL {
            sample(
                out,
                "athena_client_breaker_state",
                &[("client", &c.name), ("state", s.as_str())],
                f64::from(u8::from(now == s)),
            );
        }
    }
    family(
        out,
        "athena_client_breaker_opened_total",
        "counter",
        "Times the client's circuit breaker opened.",
    );
    for c in snap.clients.values() {
        let opened = c.backend.breaker().opened();
        sample(
            out,
            "athena_client_breaker_opened_total",
            &[("client", &c.name)],
            opened as f64,
        );
    }
    family(
        out,
        "athena_logging_ready",
        "gauge",
        "1 when the logging database is migrated (0 while pending or not migrated at start).",
    );
    let ready = matches!(
        snap.logging,
        athena_actors::registry::LoggingState::Ready { .. }
    );
    sample(out, "athena_logging_ready", &[], f64::from(u8::from(ready)));
}

fn pipeline(state: &AppState, out: &mut String) {
    let c = &state.actors.stats.counters;
    let get = |a| StatsCounters::get(a) as f64;
    family(
        out,
        "athena_stats_records_written_total",
        "counter",
        "Request records written to the logging database.",
    );
    sample(
        out,
        "athena_stats_records_written_total",
        &[],
        get(&c.written),
    );
    family(
        out,
        "athena_stats_records_dropped_total",
        "counter",
        "Request records dropped: mailbox full, buffer full, or refused by the database.",
    );
    for (reason, v) in [
        ("mailbox_full", &c.dropped_mailbox),
        ("buffer_full", &c.dropped_buffer),
        ("rejected", &c.dropped_rejected),
    ] {
        sample(
            out,
            "athena_stats_records_dropped_total",
            &[("reason", reason)],
            get(v),
        );
    }
    family(
        out,
        "athena_stats_flush_failures_total",
        "counter",
        "Flushes that failed (each attempt while the logging database is down counts).",
    );
    sample(
        out,
        "athena_stats_flush_failures_total",
        &[],
        get(&c.flush_failures),
    );
    family(
        out,
        "athena_stats_buffer_records",
        "gauge",
        "Request records waiting to be written, including a batch being written.",
    );
    sample(out, "athena_stats_buffer_records", &[], get(&c.buffered));
}
