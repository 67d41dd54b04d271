//! Prometheus metrics of the process. Counters and histograms are bumped where things
//! happen (the request dispatcher, the upload stream, the job runner, the renderer);
//! gauges of shared state (job queue, database pool) are read from the store when the
//! page is scraped, so every process of a scale-out reports the same queue.
//!
//! One registry per process: several servers in one process (the tests) share it.

use crate::store::MetaStore;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: HistogramFamily,
    uploads: Counter,
    upload_bytes: Counter,
    jobs: Family<Labels, Gauge>,
    job_duration: HistogramFamily,
    conversion_failures: Family<Labels, Counter>,
    pool: Family<Labels, Gauge>,
}

fn request_buckets() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn job_buckets() -> Histogram {
    // 10 ms to about 11 min.
    Histogram::new(exponential_buckets(0.01, 2.0, 17))
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let mut registry = Registry::with_prefix("mediadb");
        let m = Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(request_buckets as fn() -> Histogram),
            uploads: Counter::default(),
            upload_bytes: Counter::default(),
            jobs: Family::default(),
            job_duration: Family::new_with_constructor(job_buckets as fn() -> Histogram),
            conversion_failures: Family::default(),
            pool: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by route (the API endpoint) and status",
            m.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            m.latency.clone(),
        );
        registry.register(
            "uploads",
            "Originals received (uploads, imports, fetches)",
            m.uploads.clone(),
        );
        registry.register("upload_bytes", "Bytes of originals received", m.upload_bytes.clone());
        registry.register(
            "jobs",
            "Background jobs waiting (state=queued) or running, by kind",
            m.jobs.clone(),
        );
        registry.register(
            "job_duration_seconds",
            "Time a job ran, by kind and outcome (ok, retry, failed)",
            m.job_duration.clone(),
        );
        registry.register(
            "conversion_failures",
            "Originals whose renditions could not be made, by reason",
            m.conversion_failures.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database connections of this process by state (idle, busy) and the pool's maximum (max)",
            m.pool.clone(),
        );
        Metrics { registry, ..m }
    })
}

/// One answered request.
pub fn request(route: &str, status: u16, seconds: f64) {
    let m = metrics();
    m.requests
        .get_or_create(&vec![("route", route.to_string()), ("status", status.to_string())])
        .inc();
    m.latency
        .get_or_create(&vec![("route", route.to_string())])
        .observe(seconds);
}

/// One original received in full.
pub fn upload(bytes: u64) {
    let m = metrics();
    m.uploads.inc();
    m.upload_bytes.inc_by(bytes);
}

/// A job finished (`ok`), will be retried (`retry`) or gave up (`failed`).
pub fn job(kind: &str, outcome: &'static str, seconds: f64) {
    metrics()
        .job_duration
        .get_or_create(&vec![("kind", kind.to_string()), ("outcome", outcome.to_string())])
        .observe(seconds);
}

/// Renditions could not be made: `unsupported` (no renderer or tool), `input` (a broken
/// file), `internal`.
pub fn conversion_failure(reason: &'static str) {
    metrics()
        .conversion_failures
        .get_or_create(&vec![("reason", reason.to_string())])
        .inc();
}

/// The page in the Prometheus text format, with the gauges read now.
pub async fn render(store: &dyn MetaStore) -> String {
    let m = metrics();
    match store.job_counts().await {
        Ok(counts) => {
            m.jobs.clear();
            // Every kind and state always appears, so an empty queue reads 0 rather than nothing.
            let known = [
                crate::ops::import::IMPORT,
                crate::ops::trash::BULK_DELETE,
                crate::ops::trash::BULK_RESTORE,
                crate::ops::trash::BULK_PURGE,
            ];
            let kinds: std::collections::BTreeSet<String> = known
                .iter()
                .map(|k| k.to_string())
                .chain(counts.iter().map(|c| c.0.clone()))
                .collect();
            for kind in kinds {
                for state in ["queued", "running"] {
                    m.jobs
                        .get_or_create(&vec![("kind", kind.clone()), ("state", state.into())])
                        .set(0);
                }
            }
            for (kind, state, n) in counts {
                m.jobs
                    .get_or_create(&vec![("kind", kind), ("state", state)])
                    .set(n as i64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not count jobs"),
    }
    let pool = store.pool_stats();
    for (state, n) in [
        ("idle", pool.idle),
        ("busy", pool.size.saturating_sub(pool.idle)),
        ("max", pool.max),
    ] {
        m.pool.get_or_create(&vec![("state", state.to_string())]).set(n as i64);
    }
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &m.registry) {
        tracing::error!(error = %e, "metrics: could not encode");
    }
    out
}
