//! HTTPS: rustls with a certificate that can be replaced while the server runs.
//!
//! The server config asks [`CertStore`] for the certificate on every handshake; a reload
//! (SIGHUP, or the files' modification time or size changing) parses the new pair first
//! and only then swaps it in, so a half-written or mismatched pair never replaces a good
//! one. Handshakes run in their own tasks (bounded by a timeout), so a slow client cannot
//! hold up the accept loop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::rustls::crypto::ring as provider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate that cannot be used, naming the setting at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: `{key}`: {message}")]
pub struct TlsError {
    pub key: &'static str,
    pub message: String,
}

fn err(key: &'static str, message: String) -> TlsError {
    TlsError { key, message }
}

/// Reads and checks a certificate chain and its private key.
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| err("tls_cert", format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(err("tls_cert", format!("{}: no PEM certificate in it", cert.display())));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| err("tls_key", format!("{}: {e}", key.display())))?;
    CertifiedKey::from_der(chain, private, &provider::default_provider()).map_err(|e| {
        err(
            "tls_key",
            format!("{} does not fit {}: {e}", key.display(), cert.display()),
        )
    })
}

/// The certificate in use, swapped whole on reload.
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// Modification times and sizes of the files when last loaded (or tried).
    stamp: Mutex<Option<Stamp>>,
}

type Stamp = [(Option<SystemTime>, u64); 2];

fn stamp_of(cert: &Path, key: &Path) -> Option<Stamp> {
    let one = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.modified().ok(), m.len()));
    Some([one(cert)?, one(key)?])
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore").field("cert", &self.cert).finish()
    }
}

impl CertStore {
    pub fn open(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let stamp = stamp_of(cert, key);
        let loaded = load(cert, key)?;
        Ok(Arc::new(CertStore {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(loaded)),
            stamp: Mutex::new(stamp),
        }))
    }

    /// Loads the files again; the old certificate stays when they do not load.
    pub fn reload(&self) -> Result<(), TlsError> {
        *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = stamp_of(&self.cert, &self.key);
        let fresh = Arc::new(load(&self.cert, &self.key)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// Reloads when the files changed since the last load.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let now = stamp_of(&self.cert, &self.key);
        let changed = *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) != now;
        changed.then(|| self.reload())
    }

    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// Reloads the certificate on SIGHUP and, every `every` (zero: never), when its files
/// changed; stops when `stop` turns true.
pub fn spawn_reloader(
    certs: Arc<CertStore>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hup.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<()>();
            let tick = async {
                if every.is_zero() {
                    std::future::pending::<()>().await
                } else {
                    tokio::time::sleep(every).await
                }
            };
            let outcome = tokio::select! {
                _ = stop.changed() => return,
                _ = hangup => Some(certs.reload()),
                _ = tick => certs.reload_if_changed(),
            };
            match outcome {
                Some(Ok(())) => tracing::info!(cert = %certs.cert.display(), "reloaded the TLS certificate"),
                Some(Err(e)) => tracing::error!(error = %e, "kept the previous TLS certificate"),
                None => {}
            }
        }
    })
}

/// A listener that hands out connections whose TLS handshake is complete.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        let accept_task = tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = tx.closed() => return,
                    r = tcp.accept() => match r {
                        Ok(x) => x,
                        Err(e) => {
                            // Out of file descriptors and the like: wait rather than spin.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local,
            accept_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
