//! Server configuration: flags, each with an environment variable (CONTRACT §4), and a
//! TOML file beneath them ([`layers`]).

pub mod layers;

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

    /// Largest image accepted for renditions, in pixels (width x height, from the header,
    /// before any pixel is decoded): uploads and custom thumbnails over it are refused, and
    /// files that arrive otherwise (imports, fetches) get no renditions. The decoded frame's
    /// size follows from it, so it bounds the memory one conversion may take.
    #[arg(long, env = "MEDIADB_MAX_IMAGE_PIXELS", default_value_t = crate::media::render::DEFAULT_MAX_PIXELS)]
    pub max_image_pixels: u64,

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

    // ---- Operations (#11): the file, TLS, proxies, logs, metrics ----
    /// A TOML file of settings (keys as the flags, `_` for `-`); environment variables
    /// and flags override it.
    #[arg(long = "config", env = "MEDIADB_CONFIG")]
    pub config_file: Option<PathBuf>,

    /// PEM certificate chain: with `tls_key`, the listener speaks HTTPS. Reloaded on
    /// SIGHUP and when the files change.
    #[arg(long, env = "MEDIADB_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`.
    #[arg(long, env = "MEDIADB_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Seconds between checks of the certificate files for changes (0: reload on SIGHUP only).
    #[arg(long, env = "MEDIADB_TLS_WATCH_SECS", default_value_t = 10)]
    pub tls_watch_secs: u64,

    /// A plain-HTTP address whose every request is redirected (308) to the HTTPS listener.
    #[arg(long, env = "MEDIADB_REDIRECT_LISTEN")]
    pub redirect_listen: Option<SocketAddr>,

    /// The HTTPS port clients use, for redirect URLs (default: the port of `listen`;
    /// set it when a port mapping puts the server on 443).
    #[arg(long, env = "MEDIADB_PUBLIC_HTTPS_PORT")]
    pub public_https_port: Option<u16>,

    /// Proxies (addresses or CIDR ranges, comma-separated) whose `Forwarded` /
    /// `X-Forwarded-For`/`-Proto`/`-Host` headers are believed; ignored from anyone else.
    #[arg(long, env = "MEDIADB_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_trusted_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Log format: `human` (default) or `json` (one object per line).
    #[arg(long, env = "MEDIADB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Bearer token that may read `/metrics` (administrators' keys may too).
    #[arg(long, env = "MEDIADB_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Serve `/metrics` on this separate address (without authentication) instead of the
    /// main listener.
    #[arg(long, env = "MEDIADB_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// A proxy address (`10.0.0.5`) or range (`10.0.0.0/8`, `fd00::/8`).
pub fn parse_trusted_proxy(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<std::net::IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| format!("\"{s}\" is neither an IP address nor a CIDR range"))
}

/// A setting that cannot work, named as in the configuration file.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: `{key}`: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        message: message.into(),
    }
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
            max_image_pixels: crate::media::render::DEFAULT_MAX_PIXELS,
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
            config_file: None,
            tls_cert: None,
            tls_key: None,
            tls_watch_secs: 10,
            redirect_listen: None,
            public_https_port: None,
            trusted_proxies: Vec::new(),
            log_format: LogFormat::Human,
            metrics_token: None,
            metrics_listen: None,
        }
    }

    /// The listener speaks HTTPS.
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// Checks what the types alone do not: settings that contradict each other or
    /// cannot work. Start-up stops on the first one, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(invalid("tls_key", "tls_cert is set: set tls_key too")),
            (None, Some(_)) => return Err(invalid("tls_cert", "tls_key is set: set tls_cert too")),
            _ => {}
        }
        if self.redirect_listen.is_some() && !self.tls_enabled() {
            return Err(invalid(
                "redirect_listen",
                "redirects to HTTPS need tls_cert and tls_key",
            ));
        }
        if self.redirect_listen.is_some_and(|r| r == self.listen && r.port() != 0) {
            return Err(invalid("redirect_listen", "must differ from listen"));
        }
        if self.metrics_listen.is_some_and(|m| m == self.listen && m.port() != 0) {
            return Err(invalid("metrics_listen", "must differ from listen"));
        }
        if let Some(t) = &self.metrics_token {
            if t.len() < 16 {
                return Err(invalid("metrics_token", "use at least 16 characters"));
            }
        }
        if self.sites.is_empty() {
            return Err(invalid("sites", "name at least one site"));
        }
        for site in &self.sites {
            if site.is_empty() || !site.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(invalid(
                    "sites",
                    format!("\"{site}\": use letters, digits, '_' and '-'"),
                ));
            }
        }
        if let Some(url) = self.database_url.as_deref().filter(|u| !u.is_empty()) {
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                return Err(invalid("database_url", "must be a postgres:// URL"));
            }
        }
        for o in &self.cors_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                return Err(invalid(
                    "cors_origins",
                    format!("\"{o}\" is not an origin like https://app.example.com"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.bulk_confirm_share) {
            return Err(invalid("bulk_confirm_share", "must be between 0 and 1"));
        }
        if !self.trash_retention_days.is_finite() {
            return Err(invalid("trash_retention_days", "must be a number of days"));
        }
        if self.max_image_pixels == 0 {
            return Err(invalid("max_image_pixels", "must be at least 1"));
        }
        if self.max_body_bytes == 0 || self.max_upload_bytes == 0 {
            let key = if self.max_body_bytes == 0 {
                "max_body_bytes"
            } else {
                "max_upload_bytes"
            };
            return Err(invalid(key, "must be more than 0"));
        }
        Ok(())
    }

    /// The catalog a site id addresses; `None` for an unknown site.
    pub fn catalog_for_site(&self, site: Option<&str>) -> Option<&str> {
        match site {
            None => self.sites.first().map(String::as_str),
            Some(s) => self.sites.iter().find(|x| *x == s).map(String::as_str),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    const EXAMPLE: &str = include_str!("../config/example.toml");

    /// `serve`'s settings: the configuration and the one flag of its own.
    #[derive(Parser, Debug)]
    struct Serve {
        #[command(flatten)]
        config: Config,
        #[arg(long, env = "MEDIADB_NO_LOCAL_WORKER", default_value_t = false)]
        no_local_worker: bool,
    }

    #[test]
    fn example_toml_names_every_key_with_its_environment_variable() {
        let table: toml::Table = EXAMPLE.parse().expect("example.toml parses");
        for arg in Serve::command().get_arguments() {
            let id = arg.get_id().as_str();
            if arg.get_long().is_none() || id == "config_file" || id == "help" {
                continue;
            }
            let commented = EXAMPLE.lines().any(|l| l.starts_with(&format!("# {id} = ")));
            assert!(
                table.contains_key(id) || commented,
                "config/example.toml lacks the key `{id}`"
            );
            let env = arg.get_env().expect("every setting has an environment variable");
            assert!(
                EXAMPLE.contains(&*env.to_string_lossy()),
                "config/example.toml does not name {} for `{id}`",
                env.to_string_lossy()
            );
        }
    }

    #[test]
    fn example_toml_holds_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("example.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let layered = layers::parse::<Serve>(vec!["t".into(), "--config".into(), path.clone().into()])
            .unwrap_or_else(|e| panic!("{e:?}"));
        let defaults = Serve::try_parse_from(["t"]).unwrap();
        let mut from_file = layered.cli.config.clone();
        from_file.config_file = None;
        assert_eq!(format!("{from_file:?}"), format!("{:?}", defaults.config));
        assert!(!layered.from_file.is_empty());
    }

    #[test]
    fn file_values_lose_to_flags_and_bad_ones_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "workers = 7\nkey_ttl_days = 3\nsites = [\"a\", \"b\"]\nfetch_allow_private = true\nmax_image_pixels = 5000\n",
        )
        .unwrap();
        let argv = |extra: &[&str]| {
            let mut v: Vec<std::ffi::OsString> = vec!["t".into(), "--config".into(), path.clone().into()];
            v.extend(extra.iter().map(|s| s.into()));
            v
        };
        let l = layers::parse::<Serve>(argv(&["--workers", "3"])).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(l.cli.config.workers, 3, "the flag wins");
        assert_eq!(l.cli.config.key_ttl_days, 3);
        assert_eq!(l.cli.config.sites, ["a", "b"]);
        assert!(l.cli.config.fetch_allow_private);
        assert_eq!(l.cli.config.max_image_pixels, 5000, "the pixel limit from the file");
        let shown = layers::render(&l);
        assert!(shown.contains("workers = 3  # flag"), "{shown}");
        assert!(shown.contains("key_ttl_days = 3  # file"), "{shown}");

        std::fs::write(&path, "listen = \"nowhere\"\n").unwrap();
        match layers::parse::<Serve>(argv(&[])) {
            Err(layers::LayerError::Config(m)) => assert!(m.contains("key `listen`"), "{m}"),
            other => panic!("{:?}", other.err()),
        }
        std::fs::write(&path, "lisen = \"127.0.0.1:1\"\n").unwrap();
        match layers::parse::<Serve>(argv(&[])) {
            Err(layers::LayerError::Config(m)) => assert!(m.contains("unknown key `lisen`"), "{m}"),
            other => panic!("{:?}", other.err()),
        }
        std::fs::write(&path, "workers = [1]\n").unwrap();
        match layers::parse::<Serve>(argv(&[])) {
            Err(layers::LayerError::Config(m)) => assert!(m.contains("key `workers`"), "{m}"),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn contradictions_name_their_key() {
        let mut c = Config::with_data_dir("/tmp/x".into());
        assert!(c.validate().is_ok());
        c.tls_cert = Some("/c.pem".into());
        assert_eq!(c.validate().unwrap_err().key, "tls_key");
        c.tls_cert = None;
        c.redirect_listen = Some("127.0.0.1:80".parse().unwrap());
        assert_eq!(c.validate().unwrap_err().key, "redirect_listen");
        c.redirect_listen = None;
        c.bulk_confirm_share = 2.0;
        assert_eq!(c.validate().unwrap_err().key, "bulk_confirm_share");
        c.bulk_confirm_share = 0.1;
        c.max_image_pixels = 0;
        assert_eq!(c.validate().unwrap_err().key, "max_image_pixels");
    }
}
