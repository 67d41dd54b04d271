//! The test harness: a real MediaDB server on port 0 with a temporary data directory,
//! and a small client speaking its HTTP API. With `MEDIADB_TEST_DATABASE_URL` set each
//! server gets a fresh PostgreSQL schema, with `MEDIADB_TEST_S3_ENDPOINT` a fresh bucket,
//! both dropped at `stop()`: the same tests then run on the scale-out backends.

use mediadb::app::{self, AppState};
use mediadb::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;

pub const ADMIN_PASSWORD: &str = "admin-test-password";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(name)
}

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub data_dir: PathBuf,
    /// The storage setting in use (`None`: local disk under `data_dir`).
    pub storage: Option<String>,
    pg: Option<PgSchema>,
    bucket: Option<S3Bucket>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
    pub text: String,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        // MEDIADB_LOG=debug shows the server's log in a failing test's output.
        if let Ok(filter) = std::env::var("MEDIADB_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }

        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::with_data_dir(dir.path().join("data"));
        config.admin_password = Some(ADMIN_PASSWORD.into());
        let pg = match test_database_url() {
            Some(base) => Some(PgSchema::create(&base).await),
            None => None,
        };
        config.database_url = pg.as_ref().map(|p| p.url.clone());
        let bucket = match test_s3_endpoint() {
            Some(endpoint) => Some(S3Bucket::create(&endpoint).await),
            None => None,
        };
        config.storage = bucket.as_ref().map(|b| b.storage.clone());
        tweak(&mut config);
        let data_dir = config.data_dir.clone();
        let storage = config.storage.clone();
        let state = AppState::open(config).await.expect("open state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app::serve(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        TestServer {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            state,
            data_dir,
            storage,
            pg,
            bucket,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some(pg) = self.pg.take() {
            pg.drop_schema().await;
        }
        if let Some(b) = self.bucket.take() {
            b.delete().await;
        }
    }

    /// The fresh bucket of this server, when the tests run on S3.
    pub fn s3_bucket(&self) -> Option<&S3Bucket> {
        self.bucket.as_ref()
    }

    /// Everything the metadata store holds, as bytes: the SQLite files, or every row of
    /// every table of the PostgreSQL schema as text.
    pub async fn stored_bytes(&self) -> Vec<u8> {
        match &self.pg {
            None => {
                let mut db = std::fs::read(self.data_dir.join("mediadb.sqlite")).unwrap();
                db.extend(std::fs::read(self.data_dir.join("mediadb.sqlite-wal")).unwrap_or_default());
                db
            }
            Some(pg) => pg.dump().await.into_bytes(),
        }
    }

    /// `/assets/mediadb/services/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/assets/mediadb/services/{}", self.base, path)
    }

    pub async fn login(&self) -> String {
        self.login_as("admin", ADMIN_PASSWORD).await
    }

    pub async fn login_as(&self, id: &str, password: &str) -> String {
        let a = self
            .call(
                Method::POST,
                "authentication/login",
                None,
                Some(&format!(r#"{{"id":"{id}","password":"{password}"}}"#)),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "login as {id}: {}", a.text);
        a.json["results"]["entermediakey"].as_str().expect("key").to_string()
    }

    /// Sends a request with an optional key (as `X-entermedia.key`) and a JSON body.
    pub async fn call(&self, method: Method, path: &str, key: Option<&str>, body: Option<&str>) -> Answer {
        let mut rb = self.client.request(method, self.url(path));
        if let Some(k) = key {
            rb = rb.header("X-entermedia.key", k);
        }
        if let Some(b) = body {
            rb = rb.header("Content-Type", "application/json").body(b.to_string());
        }
        answer(rb.send().await.expect("send")).await
    }

    pub async fn post(&self, path: &str, key: &str, body: &str) -> Answer {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    /// A JSON POST to another site's services (`/{site}/mediadb/services/{path}`).
    pub async fn post_site(&self, site: &str, path: &str, key: &str, body: &str) -> Answer {
        let rb = self
            .client
            .post(format!("{}/{site}/mediadb/services/{path}", self.base))
            .header("X-entermedia.key", key)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        answer(rb.send().await.expect("send")).await
    }

    /// Uploads a fixture with `jsonrequest` metadata, as the EMDB documentation does.
    pub async fn upload(&self, key: &str, fixture_name: &str, jsonrequest: &str) -> Answer {
        let filename = fixture_name.rsplit('/').next().unwrap_or(fixture_name);
        self.post_file(
            "module/asset/create",
            key,
            &[("jsonrequest", jsonrequest)],
            filename,
            fixture_bytes(fixture_name),
        )
        .await
    }

    /// POSTs multipart/form-data: the text `fields`, then `bytes` as the part `file`.
    pub async fn post_file(
        &self,
        path: &str,
        key: &str,
        fields: &[(&str, &str)],
        filename: &str,
        bytes: Vec<u8>,
    ) -> Answer {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        let form = form.part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(filename.to_string()),
        );
        let resp = self
            .client
            .post(self.url(path))
            .header("X-entermedia.key", key)
            .multipart(form)
            .send()
            .await
            .expect("send");
        answer(resp).await
    }

    pub async fn search_all(&self, key: &str) -> Answer {
        self.post(
            "module/asset/search",
            key,
            r#"{"page":"1","hitsperpage":"100","query":{"terms":[{"field":"id","operation":"matches","value":"*"}]}}"#,
        )
        .await
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Answer {
        self.call(Method::GET, path, key, None).await
    }

    /// Every file under the blob store, for checking that nothing was left behind (on
    /// S3: every object key of the bucket).
    pub fn blob_files(&self) -> Vec<PathBuf> {
        if let Some(spec) = self.storage.clone().filter(|s| s.starts_with("s3://")) {
            return s3_keys(&spec).into_iter().map(PathBuf::from).collect();
        }
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path, out);
                    } else {
                        out.push(path);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data_dir.join("blobs"), &mut out);
        out.sort();
        out
    }
}

impl Drop for TestServer {
    /// A test that ends without `stop()` (a failed assertion) still drops its schema and
    /// bucket, from a thread of its own since `Drop` cannot await.
    fn drop(&mut self) {
        let (pg, bucket) = (self.pg.take(), self.bucket.take());
        if pg.is_none() && bucket.is_none() {
            return;
        }
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                if let Some(pg) = pg {
                    pg.drop_schema().await;
                }
                if let Some(b) = bucket {
                    b.delete().await;
                }
            });
        })
        .join();
    }
}

pub async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        json,
        text,
    }
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(bytes))
}

/// `MEDIADB_TEST_DATABASE_URL`: a PostgreSQL database the tests may create schemas in.
pub fn test_database_url() -> Option<String> {
    std::env::var("MEDIADB_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// `MEDIADB_TEST_S3_ENDPOINT`: an S3-compatible endpoint the tests may create buckets on.
pub fn test_s3_endpoint() -> Option<String> {
    std::env::var("MEDIADB_TEST_S3_ENDPOINT").ok().filter(|s| !s.is_empty())
}

/// Whether PostgreSQL and S3 are both configured. If not, the test says why and skips;
/// under `MEDIADB_REQUIRE_ALL=1` (CI) it fails instead.
pub fn scaleout_available(test: &str) -> bool {
    if test_database_url().is_some() && test_s3_endpoint().is_some() {
        return true;
    }
    let why = format!("{test}: needs MEDIADB_TEST_DATABASE_URL and MEDIADB_TEST_S3_ENDPOINT");
    if std::env::var("MEDIADB_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{why} (MEDIADB_REQUIRE_ALL=1)");
    }
    eprintln!("skipped: {why}");
    false
}

fn random_suffix() -> String {
    use rand::Rng;
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

/// A fresh schema in the test database, selected for the server through the connection
/// option `search_path`.
pub struct PgSchema {
    base: String,
    pub name: String,
    /// The database URL that puts a connection in this schema.
    pub url: String,
}

impl PgSchema {
    pub async fn create(base: &str) -> Self {
        let name = format!("mediadb_test_{}", random_suffix());
        let mut conn = Self::connect(base).await;
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .expect("create schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        PgSchema {
            base: base.to_string(),
            name,
            url,
        }
    }

    async fn connect(base: &str) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(base)
            .await
            .unwrap_or_else(|e| panic!("connect to {base}: {e}"))
    }

    /// Every row of every table, as JSON lines.
    pub async fn dump(&self) -> String {
        let mut conn = Self::connect(&self.base).await;
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1")
                .bind(&self.name)
                .fetch_all(&mut conn)
                .await
                .expect("list tables");
        let mut out = String::new();
        for t in tables {
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM {}.{t} t", self.name))
                    .fetch_all(&mut conn)
                    .await
                    .expect("dump table");
            for r in rows {
                out.push_str(&r);
                out.push('\n');
            }
        }
        out
    }

    pub async fn drop_schema(self) {
        let mut conn = Self::connect(&self.base).await;
        let _ = sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&mut conn)
            .await;
    }
}

/// A fresh bucket on the test S3 endpoint (created with a plain PUT, which a local mock
/// server accepts unsigned), reached through `s3://bucket/prefix?aws_endpoint=...`.
pub struct S3Bucket {
    pub endpoint: String,
    pub name: String,
    pub storage: String,
}

impl S3Bucket {
    pub async fn create(endpoint: &str) -> Self {
        let name = format!("mediadb-test-{}", random_suffix());
        let r = reqwest::Client::new()
            .put(format!("{}/{name}", endpoint.trim_end_matches('/')))
            .send()
            .await
            .unwrap_or_else(|e| panic!("S3 endpoint {endpoint}: {e}"));
        assert!(r.status().is_success(), "create bucket {name}: {}", r.status());
        let storage = format!("s3://{name}/t?{}", s3_options(endpoint));
        S3Bucket {
            endpoint: endpoint.to_string(),
            name,
            storage,
        }
    }

    /// Multipart uploads begun and neither completed nor aborted.
    pub async fn pending_uploads(&self) -> usize {
        let body = reqwest::Client::new()
            .get(format!("{}/{}?uploads", self.endpoint.trim_end_matches('/'), self.name))
            .send()
            .await
            .expect("list uploads")
            .text()
            .await
            .unwrap_or_default();
        body.matches("<UploadId>").count()
    }

    pub async fn delete(self) {
        if let Ok(store) =
            mediadb::blobs::BlobStore::open(&format!("s3://{}?{}", self.name, s3_options(&self.endpoint)))
        {
            for key in store.list_keys().await.unwrap_or_default() {
                let _ = store.delete(&key).await;
            }
        }
        let _ = reqwest::Client::new()
            .delete(format!("{}/{}", self.endpoint.trim_end_matches('/'), self.name))
            .send()
            .await;
    }
}

/// Storage URL parameters for the test endpoint: plain HTTP, and credentials unless the
/// environment has some (a local mock accepts any).
pub fn s3_options(endpoint: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("aws_endpoint", endpoint)
        .append_pair("aws_allow_http", "true");
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        q.append_pair("aws_access_key_id", "test")
            .append_pair("aws_secret_access_key", "test")
            .append_pair("aws_region", "us-east-1");
    }
    q.finish()
}

/// The keys of an S3 storage, listed from a thread of its own so that the synchronous
/// `blob_files` works inside any test runtime.
fn s3_keys(spec: &str) -> Vec<String> {
    let spec = spec.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let store = mediadb::blobs::BlobStore::open(&spec).expect("open storage");
            store.list_keys().await.expect("list keys")
        })
    })
    .join()
    .expect("list thread")
}
