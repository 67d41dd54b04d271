//! Running it in production (#11): HTTPS with a generated certificate and its reload,
//! the HTTP→HTTPS redirect, forwarded headers from trusted and untrusted peers, the
//! layered configuration and `config check`, `/metrics`, and `mediadb import`.

use crate::harness::*;
use mediadb::app::{self, AppState, ExtraListeners};
use mediadb::config::Config;
use reqwest::StatusCode;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A self-signed certificate for `localhost`: (certificate PEM, key PEM).
fn certificate() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    (c.cert.pem(), c.signing_key.serialize_pem())
}

fn write_pair(dir: &Path, pair: &(String, String)) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    // Write to the side and rename, as certificate tools do, so a reload never reads half.
    std::fs::write(dir.join("cert.tmp"), &pair.0).unwrap();
    std::fs::write(dir.join("key.tmp"), &pair.1).unwrap();
    std::fs::rename(dir.join("cert.tmp"), &cert).unwrap();
    std::fs::rename(dir.join("key.tmp"), &key).unwrap();
    (cert, key)
}

/// A client that trusts only `cert_pem` and reaches `localhost` at `addr`.
fn https_client(cert_pem: &str, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn addr_of(base: &str) -> SocketAddr {
    base.rsplit('/').next().unwrap().parse().unwrap()
}

/// Polls until `client` gets an answer from `url` (a reloaded certificate), up to 15 s.
async fn until_trusted(client: &reqwest::Client, url: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if client.get(url).send().await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test]
async fn https_serves_the_api_and_reloads_a_changed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = certificate();
    let (cert, key) = write_pair(dir.path(), &first);
    let (c2, k2) = (cert.clone(), key.clone());
    let s = TestServer::start_with(move |c| {
        c.tls_cert = Some(c2);
        c.tls_key = Some(k2);
        c.tls_watch_secs = 1;
    })
    .await;
    let addr = addr_of(&s.base);
    let port = addr.port();
    let client = https_client(&first.0, addr);
    let status = format!("https://localhost:{port}/assets/mediadb/services/system/systemstatus");

    let r = client.get(&status).send().await.expect("HTTPS answers");
    assert_eq!(r.status(), StatusCode::OK);
    // Over HTTPS the session cookie is Secure without --secure-cookies.
    let r = client
        .post(format!(
            "https://localhost:{port}/assets/mediadb/services/authentication/login"
        ))
        .body(format!(r#"{{"id":"admin","password":"{ADMIN_PASSWORD}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        !cookies.is_empty() && cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );

    // Plain HTTP on the TLS port gets no API answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/assets/mediadb/services/system/systemstatus"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != StatusCode::OK);

    // A new pair on disk is picked up (file watch), without a restart.
    let second = certificate();
    write_pair(dir.path(), &second);
    let new_client = https_client(&second.0, addr);
    assert!(
        until_trusted(&new_client, &status).await,
        "the new certificate was not served"
    );
    let old = https_client(&first.0, addr).get(&status).send().await;
    assert!(old.is_err(), "the old certificate is still served");

    // A broken file keeps the certificate in use.
    std::fs::write(&cert, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = new_client.get(&status).send().await.expect("still serving");
    assert_eq!(r.status(), StatusCode::OK);
    s.stop().await;
}

/// A server with the redirect and metrics listeners, started in-process.
struct Extra {
    https: SocketAddr,
    redirect: SocketAddr,
    metrics: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start_with_extra_listeners(pair: &(String, String)) -> Extra {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), pair);
    let mut config = Config::with_data_dir(dir.path().join("data"));
    config.admin_password = Some(ADMIN_PASSWORD.into());
    config.tls_cert = Some(cert);
    config.tls_key = Some(key);
    config.redirect_listen = Some("127.0.0.1:0".parse().unwrap());
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let state = AppState::open(config).await.expect("open");
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (https, r, m) = (
        main.local_addr().unwrap(),
        redirect.local_addr().unwrap(),
        metrics.local_addr().unwrap(),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let extra = ExtraListeners {
        redirect: Some(redirect),
        metrics: Some(metrics),
    };
    let task = tokio::spawn(app::serve_all(state, main, extra, async move {
        let _ = rx.await;
    }));
    Extra {
        https,
        redirect: r,
        metrics: m,
        stop: tx,
        task,
        _dir: dir,
    }
}

#[tokio::test]
async fn plain_http_is_redirected_to_https_with_308_keeping_path_and_query() {
    let pair = certificate();
    let x = start_with_extra_listeners(&pair).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let path = "/assets/mediadb/services/system/systemstatus?a=1&b=two%20words";
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let r = plain
            .request(method.clone(), format!("http://{}{path}", x.redirect))
            .header("host", format!("localhost:{}", x.redirect.port()))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT, "{method}");
        let to = r.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(to, format!("https://localhost:{}{path}", x.https.port()));
        // Following it reaches the API over HTTPS.
        let r = https_client(&pair.0, x.https).get(&to).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // No Host, no redirect.
    let r = plain
        .get(format!("http://{}/", x.redirect))
        .header("host", "bad host")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // /metrics lives on its own listener, open there and absent from the main one.
    let r = plain.get(format!("http://{}/metrics", x.metrics)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("mediadb_http_requests_total"));
    let r = https_client(&pair.0, x.https)
        .get(format!("https://localhost:{}/metrics", x.https.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let _ = x.stop.send(());
    let _ = x.task.await;
}

/// Fails a login with forwarded headers; the audit log's address for it and the
/// cookies of a good login with the same headers.
async fn forwarded_view(s: &TestServer, headers: &[(&str, &str)]) -> (String, bool) {
    let login = s.url("authentication/login");
    let mut rb = s.client.post(&login).body(r#"{"id":"admin","password":"wrong"}"#);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    assert_eq!(rb.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let mut rb = s
        .client
        .post(&login)
        .body(format!(r#"{{"id":"admin","password":"{ADMIN_PASSWORD}"}}"#));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let secure = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|v| v.to_str().unwrap().contains("; Secure"));
    let key = s.login().await;
    let a = s
        .post(
            "lists/search/auditlog",
            &key,
            r#"{"hitsperpage":"100","query":{"terms":[{"field":"action","operation":"matches","value":"loginfailed"}]}}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let hits = a.json["results"].as_array().cloned().unwrap_or_default();
    let last = hits
        .iter()
        .filter(|h| h["action"] == "loginfailed")
        .max_by_key(|h| h["id"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no failed login audited: {}", a.text));
    (last["address"].as_str().unwrap_or("").to_string(), secure)
}

#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let spoof: &[(&str, &str)] = &[
        ("x-forwarded-for", "198.51.100.66, 203.0.113.50"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "media.example.com"),
    ];
    // The test client is on 127.0.0.1: trusted here...
    let s = TestServer::start_with(|c| {
        c.trusted_proxies = vec![mediadb::config::parse_trusted_proxy("127.0.0.0/8").unwrap()]
    })
    .await;
    let (address, secure) = forwarded_view(&s, spoof).await;
    assert_eq!(address, "203.0.113.50", "the rightmost untrusted hop is the client");
    assert!(
        secure,
        "X-Forwarded-Proto: https from a trusted proxy makes cookies Secure"
    );
    let rfc: &[(&str, &str)] = &[("forwarded", r#"for="[2001:db8::7]:4711";proto=https"#)];
    let (address, secure) = forwarded_view(&s, rfc).await;
    assert_eq!(address, "2001:db8::7");
    assert!(secure);
    let (address, secure) = forwarded_view(&s, &[]).await;
    assert_eq!(address, "127.0.0.1");
    assert!(!secure);
    s.stop().await;

    // ...and not here: the same headers change nothing.
    let s = TestServer::start_with(|c| {
        c.trusted_proxies = vec![mediadb::config::parse_trusted_proxy("10.0.0.0/8").unwrap()]
    })
    .await;
    let (address, secure) = forwarded_view(&s, spoof).await;
    assert_eq!(address, "127.0.0.1");
    assert!(!secure);
    let (address, _) = forwarded_view(&s, rfc).await;
    assert_eq!(address, "127.0.0.1");
    s.stop().await;
}

fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok()))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_uploads_and_jobs_and_need_a_token_or_an_admin() {
    const TOKEN: &str = "metrics-token-for-the-tests";
    let s = TestServer::start_with(|c| c.metrics_token = Some(TOKEN.into())).await;
    let url = format!("{}/metrics", s.base);
    let scrape = || async {
        let r = s.client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        r.text().await.unwrap()
    };
    let status_series = r#"mediadb_http_requests_total{route="SystemStatus",status="200"}"#;
    let before = scrape().await;
    for _ in 0..3 {
        assert_eq!(s.get("system/systemstatus", None).await.status, StatusCode::OK);
    }
    let key = s.login().await;
    let up = s.upload(&key, "media/test-asset-02.jpg", "{}").await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.text);
    let after = scrape().await;
    assert!(
        metric(&after, status_series) - metric(&before, status_series) >= 3.0,
        "{after}"
    );
    assert!(
        after
            .lines()
            .any(|l| l.starts_with("mediadb_http_request_duration_seconds_bucket{")
                && l.contains(r#"route="SystemStatus""#)),
        "{after}"
    );
    assert!(metric(&after, "mediadb_uploads_total") >= metric(&before, "mediadb_uploads_total") + 1.0);
    assert!(metric(&after, "mediadb_upload_bytes_total") > 0.0);
    assert!(
        metric(&after, r#"mediadb_db_pool_connections{state="max"}"#) >= 1.0,
        "{after}"
    );
    assert!(
        after.contains(r#"mediadb_jobs{kind="import",state="queued"}"#),
        "{after}"
    );
    // The import job finishes and is timed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = scrape().await;
        if page.contains(r#"mediadb_job_duration_seconds_count{kind="import",outcome="ok"}"#) {
            break;
        }
        assert!(Instant::now() < deadline, "no import job timed: {page}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Without the token: 401; a wrong token: 401; an administrator's key: 200.
    let r = s.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = s
        .client
        .get(&url)
        .bearer_auth("metrics-token-for-the-tests-x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .client
        .get(&url)
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A user who is not an administrator: 403.
    let made = s
        .post(
            "settings/users/create",
            &key,
            r#"{"id":"viewer","password":"viewer-password-1","firstname":"V"}"#,
        )
        .await;
    assert!(made.status.is_success(), "{}", made.text);
    let viewer = s.login_as("viewer", "viewer-password-1").await;
    let r = s
        .client
        .get(&url)
        .header("X-entermedia.key", &viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    s.stop().await;
}

fn mediadb() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mediadb"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MEDIADB_") && !k.starts_with("MEDIADB_TEST") && k != "MEDIADB_REQUIRE_ALL" {
            cmd.env_remove(k);
        }
    }
    cmd
}

#[test]
fn config_layers_file_environment_and_flags_and_check_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mediadb.toml");
    std::fs::write(
        &file,
        r#"
listen = "127.0.0.1:0"
workers = 5
key_ttl_days = 9
sites = ["assets", "archive"]
trusted_proxies = ["10.0.0.0/8", "192.168.1.1"]
metrics_token = "very-secret-metrics-token"
admin_password = "very-secret-password"
log_format = "json"
"#,
    )
    .unwrap();
    let out = mediadb()
        .args(["config", "check", "--workers", "3"])
        .env("MEDIADB_CONFIG", &file)
        .env("MEDIADB_KEY_TTL_DAYS", "4")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "workers = 3  # flag",
        "key_ttl_days = 4  # environment",
        "listen = \"127.0.0.1:0\"  # file",
        "sites = [\"assets\", \"archive\"]  # file",
        "trusted_proxies = [\"10.0.0.0/8\", \"192.168.1.1\"]  # file",
        "# metrics_token = <redacted>  # file",
        "log_format = \"json\"  # file",
        "max_body_bytes = 16777216  # default",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    assert!(!stdout.contains("very-secret"), "a secret was printed:\n{stdout}");
    // The printed configuration is itself a valid file.
    let again = dir.path().join("again.toml");
    std::fs::write(&again, stdout.as_bytes()).unwrap();
    let out = mediadb()
        .args(["config", "check", "--config"])
        .arg(&again)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The committed example is valid as it stands.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let out = mediadb()
        .args(["config", "check", "--config"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Bad values and contradictions are refused, naming the key, by check and by serve.
    for (text, key) in [
        ("listen = \"nowhere\"\n", "`listen`"),
        ("workers = \"many\"\n", "`workers`"),
        ("no_such_setting = 1\n", "`no_such_setting`"),
        ("trusted_proxies = [\"10.0.0.0/33\"]\n", "`trusted_proxies`"),
        ("tls_cert = \"/nonexistent/cert.pem\"\n", "`tls_key`"),
        ("bulk_confirm_share = 1.5\n", "`bulk_confirm_share`"),
    ] {
        std::fs::write(&file, text).unwrap();
        for sub in [&["config", "check"][..], &["serve"][..]] {
            let out = mediadb()
                .args(sub)
                .arg("--config")
                .arg(&file)
                .env("MEDIADB_DATA_DIR", dir.path().join("data"))
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{sub:?} accepted {text}");
            assert!(stderr.contains(key), "{sub:?} {text}: {stderr}");
        }
    }
}

#[test]
fn sighup_reloads_the_certificate_of_the_running_binary() {
    let dir = tempfile::tempdir().unwrap();
    let first = certificate();
    let (cert, key) = write_pair(dir.path(), &first);
    let mut child = mediadb()
        .arg("serve")
        .env("MEDIADB_LISTEN", "127.0.0.1:0")
        .env("MEDIADB_DATA_DIR", dir.path().join("data"))
        .env("MEDIADB_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("MEDIADB_TLS_CERT", &cert)
        .env("MEDIADB_TLS_KEY", &key)
        // No file watching: only the signal can reload.
        .env("MEDIADB_TLS_WATCH_SECS", "0")
        .env("MEDIADB_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut base = String::new();
    for _ in 0..20 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(u) = line.trim().strip_prefix("mediadb listening on ") {
            base = u.to_string();
            break;
        }
    }
    assert!(base.starts_with("https://"), "{base}");
    let addr: SocketAddr = base.trim_start_matches("https://").parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("https://localhost:{}/healthz", addr.port());
        let r = https_client(&first.0, addr).get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let second = certificate();
        write_pair(dir.path(), &second);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            https_client(&second.0, addr).get(&url).send().await.is_err(),
            "reloaded without a signal"
        );
        let _ = Command::new("kill").arg("-HUP").arg(child.id().to_string()).status();
        assert!(
            until_trusted(&https_client(&second.0, addr), &url).await,
            "SIGHUP did not reload"
        );
    });
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
}

fn copy_fixture(name: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(fixture(name), to).unwrap();
}

#[tokio::test]
async fn import_brings_in_a_folder_tree_reports_duplicates_and_resumes() {
    let s = TestServer::start().await;
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    copy_fixture("media/test-asset-02.jpg", &root.join("shoot/day 1/photo.jpg"));
    copy_fixture("media/test-asset-01.jpg", &root.join("shoot/logo.jpg"));
    copy_fixture("media/test-asset-02.jpg", &root.join("copies/photo-again.jpg"));
    std::fs::write(root.join(".DS_Store"), b"junk").unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = mediadb();
        cmd.arg("import")
            .arg(root)
            .args(extra)
            .env("MEDIADB_DATA_DIR", &s.data_dir)
            .env("MEDIADB_ADMIN_PASSWORD", ADMIN_PASSWORD);
        if let Some(db) = &s.state.config.database_url {
            cmd.env("MEDIADB_DATABASE_URL", db);
        }
        if let Some(st) = &s.storage {
            cmd.env("MEDIADB_STORAGE", st);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let first = run(&[]);
    assert!(
        first.contains("imported 2 of 3 files") && first.contains("0 already in the catalog, 1 duplicates"),
        "{first}"
    );
    // Sorted walk: copies/ comes first, so the later shoot/ photo is the duplicate.
    assert!(
        first.contains("duplicate: shoot/day 1/photo.jpg = copies/photo-again.jpg"),
        "{first}"
    );
    assert!(first.contains("files          3/3 (100%)"), "progress lines: {first}");

    // A rerun after new files arrived imports only those.
    copy_fixture(
        "media/vm0808h_video_matrix_switch_ss_en.docx",
        &root.join("shoot/new.docx"),
    );
    let second = run(&[]);
    assert!(
        second.contains("imported 1 of 4 files") && second.contains("2 already in the catalog, 1 duplicates"),
        "{second}"
    );

    // The assets are the server's, with their sourcepaths, and the server's workers make
    // their renditions (the upload pipeline's job).
    let key = s.login().await;
    let all = s.search_all(&key).await;
    let mut paths: Vec<String> = all.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["sourcepath"].as_str().unwrap_or("").to_string())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["copies/photo-again.jpg", "shoot/logo.jpg", "shoot/new.docx"],
        "{}",
        all.text
    );
    let id = all.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["sourcepath"] == "shoot/logo.jpg")
        .map(|a| a["id"].as_str().unwrap().to_string())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        s.state.wake.notify_waiters();
        let a = s.get(&format!("module/asset/data/{id}"), Some(&key)).await;
        let st: &Value = &a.json["data"]["importstatus"]["id"];
        if st == "complete" {
            break;
        }
        assert!(Instant::now() < deadline, "not imported: {}", a.text);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    s.stop().await;
}

/// The `system/*` and `test/*` calls monitoring and installers make: hello world and
/// accepting connections without a key, versions with one, and the caches dropped by
/// an administrator without logging anyone out.
#[tokio::test]
async fn system_calls_answer_as_entermediadb_does() {
    let s = TestServer::start_with(|c| c.workers = 0).await;
    let hello = s.get("test/helloworld", None).await;
    assert_eq!(hello.status, StatusCode::OK, "{}", hello.text);
    assert_eq!(hello.json["response"]["message"], "Hello World !");
    let acc = s.get("system/acceptingconnections", None).await;
    assert_eq!(acc.status, StatusCode::OK, "{}", acc.text);
    assert_eq!(acc.json["response"]["accepting"], "true", "{}", acc.text);
    assert_eq!(
        s.get("system/softwareversions", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let key = s.login().await;
    let v = s.get("system/softwareversions", Some(&key)).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text);
    assert_eq!(v.json["results"][0]["version"], env!("CARGO_PKG_VERSION"));
    let c = s.post("system/cleardatacache", &key, "{}").await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert!(
        c.json["response"]["callers"].as_str().unwrap().parse::<u64>().unwrap() >= 1,
        "{}",
        c.text
    );
    // The key still works: its caller is read again from the database.
    assert_eq!(s.search_all(&key).await.status, StatusCode::OK);
    let u = s
        .post(
            "settings/users/create",
            &key,
            r#"{"id":"plain","password":"plain-password"}"#,
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.text);
    let plain = s.login_as("plain", "plain-password").await;
    assert_eq!(
        s.post("system/cleardatacache", &plain, "{}").await.status,
        StatusCode::FORBIDDEN
    );
    // EnterMediaDB's other name for the basket list.
    let b = s.post("module/order/basketlist", &plain, "{}").await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    assert_eq!(b.json["response"]["totalhits"], "0");
    s.stop().await;
}
