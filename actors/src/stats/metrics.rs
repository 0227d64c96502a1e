//! In-memory request metrics, counted by the edges as each request ends ([`SharedMetrics`]), and
//! the Prometheus text format (0.0.4) they are rendered in. Label values are bounded: routes are
//! patterns (`unmatched` for a 404), methods outside the standard set are `OTHER`, clients are
//! names the registry resolved.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations at or below each bound of [`BUCKETS`] (not cumulative; summed on render).
    pub buckets: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

/// One route's metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteMetrics {
    /// Requests answered, by client (empty: none resolved), then by method label and status.
    pub requests: BTreeMap<String, BTreeMap<(&'static str, u16), u64>>,
    pub latency: Histogram,
}

/// Request counts and latency by route pattern. Observing a request of a route and client seen
/// before allocates nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub routes: BTreeMap<String, RouteMetrics>,
}

fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "WS" => "WS",
        _ => "OTHER",
    }
}

/// The entry of `key`, inserting the default under an owned copy of it only when it is new.
fn entry<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("present or inserted just above")
}

/// One answered request, as the metrics count it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The matched route pattern, or `unmatched`.
    pub route: &'a str,
    pub method: &'a str,
    /// The client the registry resolved, if any.
    pub client: Option<&'a str>,
    pub status: u16,
    pub duration_ms: f64,
}

impl Metrics {
    pub fn observe(&mut self, o: Observation<'_>) {
        let route = entry(&mut self.routes, o.route);
        route.latency.observe(o.duration_ms / 1000.0);
        let client = entry(&mut route.requests, o.client.unwrap_or(""));
        *client
            .entry((method_label(o.method), o.status))
            .or_default() += 1;
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Metrics) {
        for (route, m) in &other.routes {
            let mine = entry(&mut self.routes, route);
            mine.latency.merge(&m.latency);
            for (client, counts) in &m.requests {
                let c = entry(&mut mine.requests, client);
                for (key, n) in counts {
                    *c.entry(*key).or_default() += n;
                }
            }
        }
    }

    /// `athena_http_requests_total` and `athena_http_request_duration_seconds`.
    pub fn render(&self, out: &mut String) {
        family(
            out,
            "athena_http_requests_total",
            "counter",
            "Requests answered, by route pattern, method, status and client.",
        );
        for (route, m) in &self.routes {
            for (client, counts) in &m.requests {
                for ((method, status), n) in counts {
                    let status = status.to_string();
                    sample(
                        out,
                        "athena_http_requests_total",
                        &[
                            ("route", route),
                            ("method", method),
                            ("status", &status),
                            ("client", client),
                        ],
                        *n as f64,
                    );
                }
            }
        }
        family(
            out,
            "athena_http_request_duration_seconds",
            "histogram",
            "Time from receiving a request to its response, by route pattern.",
        );
        for (route, RouteMetrics { latency: h, .. }) in &self.routes {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let le = bound.to_string();
                sample(
                    out,
                    "athena_http_request_duration_seconds_bucket",
                    &[("route", route), ("le", &le)],
                    cumulative as f64,
                );
            }
            sample(
                out,
                "athena_http_request_duration_seconds_bucket",
                &[("route", route), ("le", "+Inf")],
                h.count as f64,
            );
            sample(
                out,
                "athena_http_request_duration_seconds_sum",
                &[("route", route)],
                h.sum,
            );
            sample(
                out,
                "athena_http_request_duration_seconds_count",
                &[("route", route)],
                h.count as f64,
            );
        }
    }
}

/// Shards of [`SharedMetrics`]: more than the worker threads of a typical machine.
const SHARDS: usize = 16;

/// The request metrics of one gateway, counted on the threads that answer the requests. Each
/// thread counts into the shard it was given on first use, so workers neither wait on each other
/// nor send the statistics actor anything for a request that is not logged; a read merges the
/// shards.
#[derive(Debug)]
pub struct SharedMetrics {
    shards: Box<[Mutex<Metrics>]>,
}

impl Default for SharedMetrics {
    fn default() -> Self {
        SharedMetrics {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl SharedMetrics {
    pub fn observe(&self, o: Observation<'_>) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
        }
        let shard = SHARD.with(|s| *s);
        lock(&self.shards[shard]).observe(o);
    }

    /// Every shard's counts, merged.
    pub fn snapshot(&self) -> Metrics {
        let mut all = Metrics::default();
        for shard in self.shards.iter() {
            all.merge(&lock(shard));
        }
        all
    }
}

/// A shard, even if a thread panicked while holding it (counts are plain numbers).
fn lock(shard: &Mutex<Metrics>) -> MutexGuard<'_, Metrics> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `# HELP` and `# TYPE` lines of a metric family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line, with label values escaped as the text format asks.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<'a>(route: &'a str, method: &'a str, status: u16, ms: f64) -> Observation<'a> {
        Observation {
            route,
            method,
            client: Some("default"),
            status,
            duration_ms: ms,
        }
    }

    #[test]
    fn requests_and_latency_render_as_prometheus_text() {
        let m = SharedMetrics::default();
        m.observe(rec("/gateway/fetch", "POST", 200, 3.0));
        // counted on another thread (in another shard, unless the shards wrapped around)
        std::thread::scope(|s| {
            s.spawn(|| m.observe(rec("/gateway/fetch", "POST", 200, 30.0)));
        });
        m.observe(rec("/gateway/fetch", "BREW", 404, 20_000.0));
        m.observe(rec("/wss/gateway/gateway.fetch", "WS", 200, 1.0));
        let mut out = String::new();
        m.snapshot().render(&mut out);
        assert!(out.contains(
            "athena_http_requests_total{route=\"/gateway/fetch\",method=\"POST\",status=\"200\",client=\"default\"} 2\n"
        ), "{out}");
        assert!(out.contains("method=\"OTHER\",status=\"404\""), "{out}");
        assert!(
            out.contains("route=\"/wss/gateway/gateway.fetch\",method=\"WS\",status=\"200\""),
            "socket requests keep their own method label: {out}"
        );
        assert!(out.contains(
            "athena_http_request_duration_seconds_bucket{route=\"/gateway/fetch\",le=\"0.005\"} 1\n"
        ), "{out}");
        assert!(out.contains(
            "athena_http_request_duration_seconds_bucket{route=\"/gateway/fetch\",le=\"0.05\"} 2\n"
        ), "{out}");
        assert!(out.contains(
            "athena_http_request_duration_seconds_bucket{route=\"/gateway/fetch\",le=\"10\"} 2\n"
        ), "{out}");
        assert!(out.contains(
            "athena_http_request_duration_seconds_bucket{route=\"/gateway/fetch\",le=\"+Inf\"} 3\n"
        ), "{out}");
        assert!(out
            .contains("athena_http_request_duration_seconds_count{route=\"/gateway/fetch\"} 3\n"));
        assert_eq!(
            out.matches("# TYPE athena_http_requests_total counter")
                .count(),
            1
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", &[("a", "x\"y\\z\nw")], 1.0);
        assert_eq!(out, "m{a=\"x\\\"y\\\\z\\nw\"} 1\n");
    }
}
