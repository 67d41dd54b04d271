//! The job runner: workers that claim persisted jobs with a lease, heartbeat while they
//! run, and retry with backoff. Jobs are idempotent: running one twice does no harm.

use super::{trash, OpsError};
use crate::blobs::BlobStore;
use crate::store::{Job, MetaStore};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

pub const LEASE_SECS: u64 = 60;
pub const MAX_ATTEMPTS: i64 = 5;
/// How often a running job renews its lease, well within `LEASE_SECS`.
const HEARTBEAT_SECS: u64 = 15;

#[derive(Clone)]
pub struct JobEnv {
    pub store: Arc<dyn MetaStore>,
    pub blobs: BlobStore,
    pub wake: Arc<Notify>,
    /// Where jobs keep temporary files (`{data-dir}/tmp`), so fsck finds what a crash left.
    pub tmp_root: std::path::PathBuf,
    /// The pixel limit of conversions (`max_image_pixels`).
    pub max_image_pixels: u64,
}

/// Reports progress of a running job (and keeps its lease alive).
pub struct Progress<'a> {
    env: &'a JobEnv,
    job: &'a Job,
    owner: &'a str,
}

impl Progress<'_> {
    pub async fn report(&self, progress: Value) {
        if let Err(e) = self
            .env
            .store
            .job_progress(&self.job.id, self.owner, &progress, LEASE_SECS)
            .await
        {
            tracing::warn!(job = %self.job.id, error = %e, "could not record job progress");
        }
    }
}

async fn run_one(env: &JobEnv, job: &Job, owner: &str) -> Result<Value, OpsError> {
    let progress = Progress { env, job, owner };
    match job.kind.as_str() {
        trash::BULK_DELETE => trash::run_bulk_delete(env, job, &progress).await,
        trash::BULK_RESTORE => trash::run_bulk_restore(env, job, &progress).await,
        trash::BULK_PURGE => trash::run_bulk_purge(env, job, &progress).await,
        super::import::IMPORT => super::import::run(env, job).await,
        other => Err(OpsError::Invalid(crate::domain::Invalid::new(format!(
            "unknown job kind {other}"
        )))),
    }
}

/// Runs jobs until `stop` turns true. Several workers may run in one process and in
/// many processes against one database.
pub async fn worker(env: JobEnv, name: String, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let job = match env.store.claim_job(&name, LEASE_SECS).await {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "could not claim a job");
                None
            }
        };
        let Some(job) = job else {
            tokio::select! {
                _ = env.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        let started = std::time::Instant::now();
        if job.attempts > MAX_ATTEMPTS {
            // Claimed again after its lease ran out that often: it kills its workers.
            let msg = format!("gave up after {} attempts", job.attempts - 1);
            tracing::error!(job = %job.id, kind = %job.kind, "{msg}");
            super::import::give_up(&env, &job, &msg).await;
            let _ = env
                .store
                .finish_job(&job.id, &name, false, &json!({"error": msg}))
                .await;
            continue;
        }
        // A heartbeat keeps the lease while the job runs, however long it takes.
        let beat = {
            let (store, id, owner) = (env.store.clone(), job.id.clone(), name.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(HEARTBEAT_SECS)).await;
                    if let Err(e) = store.job_progress(&id, &owner, &Value::Null, LEASE_SECS).await {
                        tracing::warn!(job = %id, error = %e, "could not renew a job's lease");
                    }
                }
            })
        };
        let outcome = run_one(&env, &job, &name).await;
        beat.abort();
        let seconds = started.elapsed().as_secs_f64();
        match &outcome {
            Ok(_) => crate::metrics::job(&job.kind, "ok", seconds),
            Err(OpsError::Invalid(_)) => crate::metrics::job(&job.kind, "failed", seconds),
            Err(_) if job.attempts >= MAX_ATTEMPTS => crate::metrics::job(&job.kind, "failed", seconds),
            Err(_) => crate::metrics::job(&job.kind, "retry", seconds),
        }
        match outcome {
            Ok(result) => {
                tracing::info!(job = %job.id, kind = %job.kind, ms = started.elapsed().as_millis() as u64, "job done");
                let _ = env.store.finish_job(&job.id, &name, true, &result).await;
            }
            Err(OpsError::Invalid(e)) => {
                super::import::give_up(&env, &job, &e.0).await;
                let _ = env
                    .store
                    .finish_job(&job.id, &name, false, &json!({"error": e.0}))
                    .await;
            }
            Err(e) if job.attempts >= MAX_ATTEMPTS => {
                tracing::error!(job = %job.id, error = %e, "job failed for good");
                super::import::give_up(&env, &job, &e.to_string()).await;
                let _ = env
                    .store
                    .finish_job(&job.id, &name, false, &json!({"error": e.to_string()}))
                    .await;
            }
            Err(e) => {
                let delay = 2u64.pow(job.attempts.clamp(0, 10) as u32);
                tracing::warn!(job = %job.id, error = %e, retry_in = delay, "job failed; will retry");
                let _ = env.store.retry_job(&job.id, &name, delay, &e.to_string()).await;
            }
        }
    }
}

/// Periodic upkeep: expired leases back to the queue, the trash emptied of assets past
/// their retention.
pub async fn maintenance(env: JobEnv, retention_days: f64, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = env.store.requeue_expired_jobs().await {
            tracing::error!(error = %e, "could not requeue expired jobs");
        }
        if retention_days >= 0.0 {
            let cutoff = chrono::Utc::now() - chrono::Duration::milliseconds((retention_days * 86_400_000.0) as i64);
            match trash::purge_expired(&env, &crate::domain::dates::format_emdb(cutoff)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "emptied the trash of expired assets"),
                Err(e) => tracing::error!(error = %e, "could not purge the trash"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}
