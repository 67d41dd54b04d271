//! Server configuration: flags, each with an environment variable (CONTRACT §4).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "MEDIADB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database and the stored files.
    #[arg(long, env = "MEDIADB_DATA_DIR", default_value = "./mediadb-data")]
    pub data_dir: PathBuf,

    /// PostgreSQL for metadata, search and jobs (`postgres://user@host/db`), shared by
    /// any number of processes; unset: SQLite in the data directory.
    #[arg(long, env = "MEDIADB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where files go: `s3://bucket/prefix` (S3-compatible, with the standard `AWS_*`
    /// variables) or a directory; unset: `blobs/` in the data directory.
    #[arg(long, env = "MEDIADB_STORAGE")]
    pub storage: Option<String>,

    /// Password of the `admin` user created on a new data directory (random if unset).
    #[arg(long, env = "MEDIADB_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Site ids served as `/{siteid}/mediadb/...`, comma-separated; the first is also
    /// served as `/mediadb/...`. Each site is its own catalog.
    #[arg(long, env = "MEDIADB_SITES", value_delimiter = ',', default_value = "assets")]
    pub sites: Vec<String>,

    /// Origins (e.g. `https://app.example.com`) whose cross-origin requests may
    /// authenticate with the `entermedia.key` cookie. Comma-separated.
    #[arg(long, env = "MEDIADB_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Days after which a new key expires (0 = never, as EnterMediaDB keys).
    #[arg(long, env = "MEDIADB_KEY_TTL_DAYS", default_value_t = 0)]
    pub key_ttl_days: u64,

    /// Largest accepted upload, in bytes.
    #[arg(long, env = "MEDIADB_MAX_UPLOAD_BYTES", default_value_t = 64 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Largest accepted JSON or form body, in bytes.
    #[arg(long, env = "MEDIADB_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Days a deleted asset stays restorable in the trash before it is purged
    /// (fractions allowed; negative keeps the trash forever).
    #[arg(
        long,
        env = "MEDIADB_TRASH_RETENTION_DAYS",
        default_value_t = 30.0,
        allow_negative_numbers = true
    )]
    pub trash_retention_days: f64,

    /// Seconds between maintenance rounds (trash retention, expired job leases).
    #[arg(long, env = "MEDIADB_MAINTENANCE_INTERVAL_SECS", default_value_t = 60)]
    pub maintenance_interval_secs: u64,

    /// Background job workers in this process (0: this process runs no jobs).
    #[arg(long, env = "MEDIADB_WORKERS", default_value_t = 2)]
    pub workers: usize,

    /// A bulk delete or purge of more than this many assets...
    #[arg(long, env = "MEDIADB_BULK_CONFIRM_MIN", default_value_t = 1000)]
    pub bulk_confirm_min: u64,

    /// ...that is also more than this share of the catalog needs "confirm":"true".
    #[arg(long, env = "MEDIADB_BULK_CONFIRM_SHARE", default_value_t = 0.10)]
    pub bulk_confirm_share: f64,

    /// Also accept keys derived the EnterMediaDB way from passwords (for a migrated
    /// installation's clients). Off by default: such keys cannot be revoked by logout.
    #[arg(long, env = "MEDIADB_LEGACY_EMDB_KEYS", default_value_t = false)]
    pub legacy_emdb_keys: bool,

    /// The secret of the legacy key derivation (EnterMediaDB's `userpassword` /
    /// `autologincookiekey`; its built-in default otherwise).
    #[arg(long, env = "MEDIADB_LEGACY_EMDB_SECRET", hide_env_values = true, default_value = crate::auth::EMDB_DEFAULT_SECRET)]
    pub legacy_emdb_secret: String,

    /// Directories from which `importpath` (copy) and `localPath` (move) may take files on
    /// the server, comma-separated. None by default: server-side imports are refused.
    #[arg(long, env = "MEDIADB_IMPORT_ROOTS", value_delimiter = ',')]
    pub import_roots: Vec<std::path::PathBuf>,

    /// Let `fetchURL` reach loopback, private, link-local and other internal addresses
    /// (off: only public addresses, so the server cannot be aimed at its own network).
    #[arg(long, env = "MEDIADB_FETCH_ALLOW_PRIVATE", default_value_t = false)]
    pub fetch_allow_private: bool,

    /// Seconds a `fetchURL` download may take.
    #[arg(long, env = "MEDIADB_FETCH_TIMEOUT_SECS", default_value_t = 120)]
    pub fetch_timeout_secs: u64,

    /// Mark cookies `Secure` (set when clients reach the server over HTTPS).
    #[arg(long, env = "MEDIADB_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,
}

impl Config {
    /// A configuration with every default, for tests and embedding.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url: None,
            storage: None,
            admin_password: None,
            sites: vec!["assets".into()],
            cors_origins: Vec::new(),
            key_ttl_days: 0,
            max_upload_bytes: 64 * 1024 * 1024 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            trash_retention_days: 30.0,
            maintenance_interval_secs: 60,
            workers: 2,
            bulk_confirm_min: 1000,
            bulk_confirm_share: 0.10,
            legacy_emdb_keys: false,
            legacy_emdb_secret: crate::auth::EMDB_DEFAULT_SECRET.to_string(),
            secure_cookies: false,
            import_roots: Vec::new(),
            fetch_allow_private: false,
            fetch_timeout_secs: 120,
        }
    }

    /// The catalog a site id addresses; `None` for an unknown site.
    pub fn catalog_for_site(&self, site: Option<&str>) -> Option<&str> {
        match site {
            None => self.sites.first().map(String::as_str),
            Some(s) => self.sites.iter().find(|x| *x == s).map(String::as_str),
        }
    }
}
