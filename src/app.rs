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
        config.validate()?;
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
        crate::ops::customfields::refresh(state.store.as_ref()).await?;
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
            max_image_pixels: self.config.max_image_pixels,
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
        tasks.push(tokio::spawn(refresh_custom_fields(self.store.clone(), stop.clone())));
        tasks
    }
}

/// How often another process's custom-field changes are picked up.
const CUSTOM_FIELDS_REFRESH: Duration = Duration::from_secs(10);

async fn refresh_custom_fields(store: Arc<dyn MetaStore>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CUSTOM_FIELDS_REFRESH) => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        if *stop.borrow() {
            return;
        }
        if let Err(e) = crate::ops::customfields::refresh(store.as_ref()).await {
            tracing::warn!(error = %e, "could not refresh the custom fields");
        }
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
    serve_all(state, listener, ExtraListeners::default(), shutdown).await
}

/// Listeners beside the main one, bound by the caller (so it knows their ports).
#[derive(Default)]
pub struct ExtraListeners {
    /// Plain HTTP, every request redirected to the HTTPS listener (`redirect_listen`).
    pub redirect: Option<TcpListener>,
    /// `/metrics` without authentication (`metrics_listen`).
    pub metrics: Option<TcpListener>,
}

/// [`serve`] with the optional listeners; the main one speaks HTTPS when the
/// configuration names a certificate.
pub async fn serve_all(
    state: AppState,
    listener: TcpListener,
    extra: ExtraListeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    use std::net::SocketAddr;
    let config = state.config.clone();
    // Certificates first: a bad one must stop start-up before anything is served.
    let certs = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::CertStore::open(cert, key).map_err(std::io::Error::other)?),
        _ => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = state.spawn_background(&stop_rx);
    let (down_tx, down_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = down_tx.send(true);
    });
    let down = move || {
        let mut rx = down_rx.clone();
        async move {
            let _ = rx.wait_for(|d| *d).await;
        }
    };
    let https_port = config.public_https_port.unwrap_or(listener.local_addr()?.port());
    let mut servers = Vec::new();
    if let Some(l) = extra.redirect {
        let router = crate::api::https_redirect::router(https_port);
        let stop = down();
        servers.push(tokio::spawn(async move {
            axum::serve(l, router).with_graceful_shutdown(stop).await
        }));
    }
    if let Some(l) = extra.metrics {
        let router = axum::Router::new()
            .route("/metrics", axum::routing::get(crate::api::metrics_page::open))
            .with_state(state.clone());
        let stop = down();
        servers.push(tokio::spawn(async move {
            axum::serve(l, router).with_graceful_shutdown(stop).await
        }));
    }
    let router = crate::api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = match certs {
        Some(certs) => {
            let every = Duration::from_secs(config.tls_watch_secs);
            background.push(crate::tls::spawn_reloader(certs.clone(), every, stop_rx.clone()));
            let tls = crate::tls::TlsListener::new(listener, certs.server_config())?.tap_io(|_| {});
            axum::serve(tls, router).with_graceful_shutdown(down()).await
        }
        None => axum::serve(listener, router).with_graceful_shutdown(down()).await,
    };
    for s in servers {
        let _ = s.await;
    }
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
