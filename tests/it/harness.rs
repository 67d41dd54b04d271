//! The test harness: a real MediaDB server on port 0 with a temporary data directory,
//! and a small client speaking its HTTP API.

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
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::with_data_dir(dir.path().join("data"));
        config.admin_password = Some(ADMIN_PASSWORD.into());
        tweak(&mut config);
        let data_dir = config.data_dir.clone();
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

    /// Uploads a fixture with `jsonrequest` metadata, as the EMDB documentation does.
    pub async fn upload(&self, key: &str, fixture_name: &str, jsonrequest: &str) -> Answer {
        let bytes = fixture_bytes(fixture_name);
        let filename = fixture_name.rsplit('/').next().unwrap_or(fixture_name).to_string();
        let form = reqwest::multipart::Form::new()
            .text("jsonrequest", jsonrequest.to_string())
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name(filename));
        let resp = self
            .client
            .post(self.url("module/asset/create"))
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

    /// Every file under the blob store, for checking that nothing was left behind.
    pub fn blob_files(&self) -> Vec<PathBuf> {
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
