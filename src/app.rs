//! Application state, start-up (migrations, bootstrap admin), and the server loop with
//! graceful shutdown. Tests use [`serve`] with a listener bound to port 0.

use crate::auth::{self, permissions};
use crate::blobs::BlobStore;
use crate::config::Config;
use crate::ops::jobs::{self, JobEnv};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{MetaStore, StoreError, User};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn MetaStore>,
    pub blobs: BlobStore,
    /// Wakes idle job workers when a job is queued.
    pub wake: Arc<Notify>,
    /// Callers resolved from keys (valid while the store's auth epoch stands).
    pub keys: Arc<crate::api::key_cache::KeyCache>,
}

impl AppState {
    /// Opens (creating if needed) the metadata store (PostgreSQL when `database_url` is
    /// set, else SQLite in the data directory) and the blob store (`storage`, else the
    /// data directory), brings the schema up to date and creates the groups and the
    /// bootstrap admin.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let store = open_store(&config).await?;
        store.migrate().await?;
        let blobs = match config.storage.as_deref().filter(|s| !s.is_empty()) {
            Some(spec) => BlobStore::open(spec)?,
            None => BlobStore::local(config.data_dir.join("blobs"))?,
        };
        let state = AppState {
            config: Arc::new(config),
            store,
            blobs,
            wake: Arc::new(Notify::new()),
            keys: Arc::default(),
        };
        state.bootstrap().await?;
        Ok(state)
    }

    async fn bootstrap(&self) -> anyhow::Result<()> {
        let all: Vec<&str> = auth::Permission::ALL.iter().map(|p| p.id()).collect();
        self.store
            .ensure_group(permissions::ADMINISTRATORS, "Administrators", &all)
            .await?;
        self.store
            .ensure_group(permissions::USERS, "Users", &permissions::default_user_permissions())
            .await?;
        if self.store.user_count().await? == 0 {
            let (password, generated) = match &self.config.admin_password {
                Some(p) if !p.is_empty() => (p.clone(), false),
                _ => (auth::random_password(), true),
            };
            let mut admin = User::new("admin", String::new());
            admin.screenname = "Administrator".into();
            let policy = crate::ops::users::KeyPolicy {
                legacy_keys: self.config.legacy_emdb_keys,
                legacy_secret: self.config.legacy_emdb_secret.clone(),
            };
            crate::ops::users::set_password(&mut admin, &password, &policy);
            match self.store.create_user(&admin, &[permissions::ADMINISTRATORS]).await {
                // Several processes starting on one new shared database: one wins.
                Err(StoreError::Conflict(_)) => return Ok(()),
                r => r?,
            }
            if generated {
                // Printed once, on the first start of a new data directory.
                println!("Created user \"admin\" with password: {password}");
            }
            tracing::info!("created the admin user");
        }
        Ok(())
    }
}

impl AppState {
    pub fn job_env(&self) -> JobEnv {
        JobEnv {
            store: self.store.clone(),
            blobs: self.blobs.clone(),
            wake: self.wake.clone(),
            tmp_root: self.config.data_dir.join("tmp"),
        }
    }

    /// Starts the configured job workers and the maintenance loop; they stop when
    /// `stop` turns true.
    pub fn spawn_background(&self, stop: &watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        tasks.push(self.start_recovery());
        for i in 0..self.config.workers {
            let name = format!("{}-{}-{i}", hostname(), std::process::id());
            tasks.push(tokio::spawn(jobs::worker(self.job_env(), name, stop.clone())));
        }
        tasks.push(tokio::spawn(jobs::maintenance(
            self.job_env(),
            self.config.trash_retention_days,
            Duration::from_secs(self.config.maintenance_interval_secs.max(1)),
            stop.clone(),
        )));
        tasks
    }
}

impl AppState {
    /// Journals the blobs this process writes and, in the background, recovers what a
    /// crashed predecessor left (see `ops::recovery`). Runs before any request or job.
    fn start_recovery(&self) -> tokio::task::JoinHandle<()> {
        let started = std::time::SystemTime::now();
        let tmp = self.config.data_dir.join("tmp");
        if let Err(e) = self.blobs.start_journal(&tmp) {
            tracing::error!(error = %e, dir = %tmp.display(), "could not start the in-flight blob journal");
        }
        let embedded = self.config.database_url.as_deref().is_none_or(str::is_empty);
        let (store, blobs) = (self.store.clone(), self.blobs.clone());
        tokio::spawn(async move {
            match crate::ops::recovery::run(store.as_ref(), &blobs, &tmp, embedded, started).await {
                Ok(r) if r.journals + r.temp_dirs_removed > 0 => tracing::info!(
                    journals = r.journals,
                    blobs_removed = r.blobs_removed,
                    blobs_kept = r.blobs_kept,
                    staged_removed = r.staged_removed,
                    temp_dirs_removed = r.temp_dirs_removed,
                    "recovered after an unclean stop"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "start-up recovery failed; run mediadb fsck"),
            }
        })
    }
}

/// The metadata store the configuration names.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn MetaStore>> {
    match config.database_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(PostgresStore::open(url).await?))
        }
        // A typo must not silently fall back to an empty embedded database.
        Some(_) => anyhow::bail!("MEDIADB_DATABASE_URL must be a postgres:// URL"),
        None => {
            std::fs::create_dir_all(&config.data_dir)?;
            Ok(Arc::new(
                SqliteStore::open(&config.data_dir.join("mediadb.sqlite")).await?,
            ))
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "mediadb".into())
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish. Job workers
/// run alongside and stop with the server (a job cut short is retried later).
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let background = state.spawn_background(&stop_rx);
    let router = crate::api::router(state);
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    let _ = stop_tx.send(true);
    for t in background {
        let _ = t.await;
    }
    result
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
