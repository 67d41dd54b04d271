//! Scale-out with real processes: two `serve --no-local-worker` and one `worker` on one
//! PostgreSQL schema and one S3 bucket; large and aborted uploads on S3; and
//! `mediadb migrate` from an embedded installation. Needs MEDIADB_TEST_DATABASE_URL and
//! MEDIADB_TEST_S3_ENDPOINT (skips without them, fails under MEDIADB_REQUIRE_ALL=1).

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One `mediadb` process; killed when dropped.
struct Proc {
    child: Child,
    /// `http://addr` for `serve`, empty for `worker`.
    base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mediadb <args>` on the schema and bucket through the standard variables
/// (`MEDIADB_DATABASE_URL`, `MEDIADB_STORAGE`, `AWS_*`), and waits for its ready line.
fn spawn(args: &[&str], pg: &PgSchema, bucket: &S3Bucket, dir: &Path, name: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_mediadb"))
        .args(args)
        .env("MEDIADB_LISTEN", "127.0.0.1:0")
        .env("MEDIADB_DATA_DIR", dir.join(name))
        .env("MEDIADB_DATABASE_URL", &pg.url)
        .env("MEDIADB_STORAGE", format!("s3://{}/media", bucket.name))
        .env("MEDIADB_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("MEDIADB_MAINTENANCE_INTERVAL_SECS", "1")
        .env("AWS_ENDPOINT_URL", &bucket.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn mediadb")
}

/// Reads the child's stdout until its ready line; returns what follows `prefix`.
fn ready(child: &mut Child, prefix: &str, dir: &Path, name: &str) -> String {
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).expect("read stdout") == 0 {
            let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            panic!("{name} exited before it was ready:\n{log}");
        }
        if let Some(rest) = line.trim().strip_prefix(prefix) {
            let rest = rest.to_string();
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while out.read_line(&mut sink).unwrap_or(0) > 0 {
                    sink.clear();
                }
            });
            return rest;
        }
    }
}

fn serve(pg: &PgSchema, bucket: &S3Bucket, dir: &Path, name: &str) -> Proc {
    let mut child = spawn(&["serve", "--no-local-worker"], pg, bucket, dir, name);
    let base = ready(&mut child, "mediadb listening on ", dir, name);
    Proc { child, base }
}

fn worker(pg: &PgSchema, bucket: &S3Bucket, dir: &Path, name: &str) -> Proc {
    let mut child = spawn(&["worker"], pg, bucket, dir, name);
    ready(&mut child, "mediadb worker running", dir, name);
    Proc {
        child,
        base: String::new(),
    }
}

fn url(base: &str, path: &str) -> String {
    format!("{base}/assets/mediadb/services/{path}")
}

async fn call(base: &str, method: reqwest::Method, path: &str, key: &str, body: Option<Value>) -> Answer {
    let mut rb = reqwest::Client::new()
        .request(method, url(base, path))
        .header("X-entermedia.key", key);
    if let Some(b) = body {
        rb = rb.header("Content-Type", "application/json").body(b.to_string());
    }
    answer(rb.send().await.expect("send")).await
}

async fn login(base: &str) -> String {
    let r = reqwest::Client::new()
        .post(url(base, "authentication/login"))
        .body(json!({"id": "admin", "password": ADMIN_PASSWORD}).to_string())
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["results"]["entermediakey"].as_str().unwrap().to_string()
}

async fn upload(base: &str, key: &str, bytes: Vec<u8>, jsonrequest: Value) -> Result<Answer, reqwest::Error> {
    let form = reqwest::multipart::Form::new()
        .text("jsonrequest", jsonrequest.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("test-asset-02.jpg"),
        );
    let r = reqwest::Client::new()
        .post(url(base, "module/asset/create"))
        .header("X-entermedia.key", key)
        .multipart(form)
        .send()
        .await?;
    Ok(answer(r).await)
}

async fn hits(base: &str, key: &str, terms: Value) -> Vec<String> {
    let a = call(
        base,
        reqwest::Method::POST,
        "module/asset/search",
        key,
        Some(json!({"hitsperpage": "1000", "query": {"terms": terms}})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let mut ids: Vec<String> = a.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// The original of an asset, downloaded through `base`.
async fn original(base: &str, key: &str, id: &str) -> Vec<u8> {
    let a = call(
        base,
        reqwest::Method::GET,
        &format!("module/asset/data/{id}"),
        key,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{id}: {}", a.text);
    let path = a.json["data"]["originalurl"].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .get(url(base, &format!("module/asset/downloads/originals/{path}")))
        .header("X-entermedia.key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "download {id}");
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn two_servers_and_a_worker_share_one_database_and_bucket() {
    if !scaleout_available("two_servers_and_a_worker_share_one_database_and_bucket") {
        return;
    }
    let pg = PgSchema::create(&test_database_url().unwrap()).await;
    let bucket = S3Bucket::create(&test_s3_endpoint().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Both servers start on the new, empty database at once: one migrates and creates
    // the admin, the other waits on the migration lock and finds it.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| serve(&pg, &bucket, d, "serve-a"));
        let b = s.spawn(|| serve(&pg, &bucket, d, "serve-b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let bytes = fixture_bytes("media/test-asset-02.jpg");

    // Upload on A; find, download and delete on B; gone on A.
    let key = login(&a.base).await;
    let r = upload(
        &a.base,
        &key,
        bytes.clone(),
        json!({"id": "x1", "sourcepath": "scale/", "keywords": ["shared"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let shared = json!([{"field": "keywords", "operation": "matches", "value": "shared"}]);
    assert_eq!(hits(&b.base, &key, shared.clone()).await, vec!["x1"]);
    assert_eq!(
        original(&b.base, &key, "x1").await,
        bytes,
        "byte-identical through the other node"
    );
    let r = call(
        &b.base,
        reqwest::Method::POST,
        "module/asset/deleteassets",
        &key,
        Some(json!({"assetid": "x1"})),
    )
    .await;
    assert_eq!(r.json["response"]["rowsedited"], "1", "{}", r.text);
    assert!(hits(&a.base, &key, shared).await.is_empty());
    let r = call(&a.base, reqwest::Method::GET, "module/asset/data/x1", &key, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A logout on A is a logout on B.
    let gone = login(&b.base).await;
    let r = reqwest::Client::new()
        .post(url(&a.base, "authentication/logout"))
        .header("X-entermedia.key", &gone)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = call(&b.base, reqwest::Method::GET, "module/asset/data/x1", &gone, None).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a revoked key is dead on every node"
    );

    // A bulk delete queued on B waits (the servers run no jobs) until a worker runs it.
    for i in 0..5 {
        let r = upload(
            &a.base,
            &key,
            bytes.clone(),
            json!({"id": format!("b{i}"), "sourcepath": format!("bulk/b{i}.jpg"), "keywords": ["bulk"]}),
        )
        .await
        .unwrap();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let bulk = json!([{"field": "keywords", "operation": "matches", "value": "bulk"}]);
    let r = call(
        &b.base,
        reqwest::Method::POST,
        "module/asset/deleteassets",
        &key,
        Some(json!({"query": {"terms": bulk}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let jobid = r.json["response"]["jobid"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let job = call(
        &a.base,
        reqwest::Method::GET,
        &format!("module/asset/jobs/{jobid}"),
        &key,
        None,
    )
    .await;
    assert_eq!(job.json["data"]["state"], "queued", "no server ran it: {}", job.text);
    assert_eq!(hits(&a.base, &key, bulk.clone()).await.len(), 5);
    let w = worker(&pg, &bucket, d, "worker");
    let mut state = Value::Null;
    for _ in 0..100 {
        let job = call(
            &a.base,
            reqwest::Method::GET,
            &format!("module/asset/jobs/{jobid}"),
            &key,
            None,
        )
        .await;
        state = job.json["data"].clone();
        if state["state"] == "done" || state["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state["state"], "done", "{state}");
    assert_eq!(state["result"]["rowsedited"], "5", "{state}");
    assert!(hits(&b.base, &key, bulk).await.is_empty());

    // SIGKILL A while uploads stream into it: every acknowledged upload is there, whole.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..6 {
        let (base, key, bytes, acked) = (a.base.clone(), key.clone(), bytes.clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            for n in 0..500 {
                let id = format!("k{c}_{n}");
                let req = json!({"id": id, "sourcepath": format!("kill/{id}.jpg"), "keywords": ["kill"]});
                match upload(&base, &key, bytes.clone(), req).await {
                    Ok(r) if r.status == StatusCode::OK => acked.lock().unwrap().push(id),
                    _ => return,
                }
            }
        }));
    }
    for _ in 0..200 {
        if acked.lock().unwrap().len() >= 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut a = a;
    a.child.kill().expect("SIGKILL");
    a.child.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 12, "uploads were acknowledged before the kill");
    let found = hits(
        &b.base,
        &key,
        json!([{"field": "keywords", "operation": "matches", "value": "kill"}]),
    )
    .await;
    for id in &acked {
        assert!(found.contains(id), "acknowledged {id} survived the kill");
    }
    // Unacknowledged uploads may or may not have landed; whatever landed is whole.
    for id in &found {
        assert_eq!(original(&b.base, &key, id).await, bytes, "{id} is whole");
    }
    drop((w, b));
    pg.drop_schema().await;
    bucket.delete().await;
}

#[tokio::test]
async fn large_uploads_go_multipart_and_aborted_ones_leave_nothing_on_s3() {
    if !scaleout_available("large_uploads_go_multipart_and_aborted_ones_leave_nothing_on_s3") {
        return;
    }
    let s = TestServer::start().await;
    let bucket = s.s3_bucket().expect("the harness made a bucket");
    let key = s.login().await;
    let before = s.blob_files();
    // 20 MiB: three parts of a multipart upload.
    let big: Vec<u8> = (0..20u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let form = reqwest::multipart::Form::new()
        .text("jsonrequest", r#"{"id":"big","sourcepath":"big/"}"#)
        .part(
            "file",
            reqwest::multipart::Part::bytes(big.clone()).file_name("big.bin"),
        );
    let r = s
        .client
        .post(s.url("module/asset/create"))
        .header("X-entermedia.key", &key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(s.blob_files().len(), before.len() + 1);
    let meta = s.get("module/asset/data/big", Some(&key)).await;
    let path = meta.json["data"]["originalurl"].as_str().unwrap().to_string();
    let got = s
        .client
        .get(s.url(&format!("module/asset/downloads/originals/{path}")))
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        got.as_ref() == big.as_slice(),
        "a multipart original reads back byte for byte"
    );
    let part = s
        .client
        .get(s.url(&format!("module/asset/downloads/originals/{path}")))
        .header("X-entermedia.key", &key)
        .header("Range", "bytes=9000000-9000099")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert!(part.bytes().await.unwrap().as_ref() == &big[9_000_000..9_000_100]);

    // A body cut off after 20 MiB: parts were sent, then the upload is aborted.
    let mut body = b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.bin\"\r\n\r\n".to_vec();
    body.extend_from_slice(&big);
    let r = s
        .client
        .post(s.url("module/asset/create"))
        .header("X-entermedia.key", &key)
        .header("Content-Type", "multipart/form-data; boundary=XYZ")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.blob_files().len(),
        before.len() + 1,
        "no object from the aborted upload"
    );
    assert_eq!(bucket.pending_uploads().await, 0, "the multipart upload was aborted");
    s.stop().await;
}

async fn audit_total(s: &TestServer, key: &str) -> Value {
    s.post("lists/search/auditlog", key, "{}").await.json["response"]["totalhits"].clone()
}

#[tokio::test]
async fn migrate_moves_an_embedded_installation_to_postgres_and_s3() {
    if !scaleout_available("migrate_moves_an_embedded_installation_to_postgres_and_s3") {
        return;
    }
    // An embedded installation with users, keys, live and trashed assets and records.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data2 = data.clone();
    // No jobs run on either side: the records compared are exactly those copied.
    let s = TestServer::start_with(move |c| {
        c.data_dir = data2;
        c.database_url = None;
        c.storage = None;
        c.workers = 0;
    })
    .await;
    let key = s.login().await;
    let user = mediadb::store::User::new("ann", mediadb::auth::hash_password("ann-pw"));
    s.state
        .store
        .create_user(&user, &[mediadb::auth::permissions::USERS])
        .await
        .unwrap();
    let ann = s.login_as("ann", "ann-pw").await;
    let files = [
        "media/test-asset-01.jpg",
        "media/test-asset-02.jpg",
        "media/DSC00750.jpg",
    ];
    for (i, f) in files.iter().enumerate() {
        let a = s
            .upload(
                &key,
                f,
                &json!({"id": format!("m{i}"), "sourcepath": "old/", "keywords": ["moved", format!("k{i}")]})
                    .to_string(),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    s.call(
        reqwest::Method::PUT,
        "module/asset/data/m0",
        Some(&key),
        Some(r#"{"longcaption":"Edited before the move"}"#),
    )
    .await;
    s.post("module/asset/deleteassets", &key, r#"{"assetid":"m2"}"#).await;
    let mut before: Vec<Value> = Vec::new();
    for id in ["m0", "m1"] {
        before.push(s.get(&format!("module/asset/data/{id}"), Some(&key)).await.json);
    }
    let trash_before = s.post("module/asset/trash/search", &key, "{}").await.json;
    let audit_before = audit_total(&s, &key).await;
    assert!(audit_before.as_u64().unwrap_or(0) > 0, "{audit_before}");
    s.stop().await;

    let pg = PgSchema::create(&test_database_url().unwrap()).await;
    let bucket = S3Bucket::create(&test_s3_endpoint().unwrap()).await;
    let out = Command::new(env!("CARGO_BIN_EXE_mediadb"))
        .args(["migrate", "--from"])
        .arg(&data)
        .args(["--to-database", &pg.url, "--to-storage", &bucket.storage])
        .output()
        .expect("run migrate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Originals and their renditions, all of them.
    let files_done = stdout.lines().find(|l| l.starts_with("files") && l.ends_with("(100%)"));
    assert!(files_done.is_some(), "{stdout}");
    let counts = files_done.unwrap().split_whitespace().nth(1).unwrap_or("");
    let (copied, total) = counts.split_once('/').unwrap_or(("", "?"));
    assert_eq!(copied, total, "{stdout}");
    assert_eq!(total, "3", "{stdout}");
    assert!(stdout.contains("assets         3/3 (100%)"), "{stdout}");

    // The same catalog, keys and people on PostgreSQL and S3.
    let (url, storage) = (pg.url.clone(), bucket.storage.clone());
    let s = TestServer::start_with(move |c| {
        c.database_url = Some(url);
        c.storage = Some(storage);
        c.workers = 0;
    })
    .await;
    assert_eq!(
        s.blob_files().len().to_string(),
        total,
        "every original and rendition arrived"
    );
    for (id, want) in ["m0", "m1"].iter().zip(&before) {
        let got = s.get(&format!("module/asset/data/{id}"), Some(&key)).await;
        assert_eq!(got.status, StatusCode::OK, "the old key still works: {}", got.text);
        assert_eq!(&got.json, want, "{id} unchanged");
    }
    assert_eq!(s.post("module/asset/trash/search", &key, "{}").await.json, trash_before);
    assert_eq!(audit_total(&s, &key).await, audit_before);
    assert_eq!(s.search_all(&ann).await.status, StatusCode::OK, "ann's key too");
    s.login_as("ann", "ann-pw").await;
    for (i, f) in files.iter().enumerate().take(2) {
        let got = s
            .client
            .get(s.url(&format!(
                "module/asset/downloads/originals/{}",
                before[i]["data"]["originalurl"].as_str().unwrap()
            )))
            .header("X-entermedia.key", &key)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(got.as_ref() == fixture_bytes(f).as_slice(), "{f} byte for byte");
    }
    // Facets of a filtered search are counted from what migrate derived (PostgreSQL's
    // packed facet rows): the two live assets tagged "moved", each with its own keyword.
    let f = s
        .post(
            "module/asset/search",
            &key,
            r#"{"showfilters":"true","query":{"terms":[{"field":"keywords","operation":"matches","value":"moved"}]}}"#,
        )
        .await;
    let keywords = f.json["filteroptions"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["id"] == "keywords"))
        .map(|o| o["children"].clone())
        .unwrap_or(Value::Null);
    assert_eq!(
        keywords,
        json!([
            {"id":"moved","name":"moved","count":"2"},
            {"id":"k0","name":"k0","count":"1"},
            {"id":"k1","name":"k1","count":"1"}
        ]),
        "{}",
        f.text
    );
    // The trashed one comes back whole, and new assets number after the copied ones.
    let r = s.post("module/asset/trash/restore", &key, r#"{"assetid":"m2"}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let a = s
        .upload(&key, "media/test-asset-02.jpg", r#"{"id":"new1","sourcepath":"new/"}"#)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(s.search_all(&key).await.json["response"]["totalhits"], json!(4));
    s.stop().await;

    // A second run refuses a target that already holds data.
    let again = Command::new(env!("CARGO_BIN_EXE_mediadb"))
        .args(["migrate", "--from"])
        .arg(&data)
        .args(["--to-database", &pg.url, "--to-storage", &bucket.storage])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds"));
    pg.drop_schema().await;
    bucket.delete().await;
}

#[tokio::test]
async fn jobs_on_postgres_are_claimed_once_and_expired_leases_move_on() {
    use mediadb::store::postgres::PostgresStore;
    use mediadb::store::MetaStore;
    if !scaleout_available("jobs_on_postgres_are_claimed_once_and_expired_leases_move_on") {
        return;
    }
    let pg = PgSchema::create(&test_database_url().unwrap()).await;
    let store = Arc::new(PostgresStore::open(&pg.url).await.unwrap());
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(store.enqueue_job("test", "assets", &json!({"n": i})).await.unwrap());
    }
    // Four claimers at once (SKIP LOCKED): every job is claimed exactly once.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = store.claim_job(&format!("w{w}"), 60).await.unwrap() {
                store
                    .finish_job(&job.id, &format!("w{w}"), true, &json!({}))
                    .await
                    .unwrap();
                mine.push(job.id);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    claimed.sort();
    ids.sort();
    assert_eq!(claimed, ids);

    // A worker that dies keeps its lease until it runs out; then another takes the job,
    // and the dead one's late finish changes nothing.
    let id = store.enqueue_job("test", "assets", &json!({})).await.unwrap();
    let job = store.claim_job("dead", 1).await.unwrap().unwrap();
    assert_eq!(job.id, id);
    assert!(store.claim_job("other", 60).await.unwrap().is_none());
    assert_eq!(store.requeue_expired_jobs().await.unwrap(), 0, "the lease still runs");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(store.requeue_expired_jobs().await.unwrap(), 1);
    let again = store.claim_job("other", 60).await.unwrap().unwrap();
    assert_eq!((again.id.as_str(), again.attempts), (id.as_str(), 2));
    store
        .finish_job(&id, "dead", false, &json!({"late": true}))
        .await
        .unwrap();
    assert_eq!(store.get_job(&id).await.unwrap().unwrap().state, "running");
    store
        .finish_job(&id, "other", true, &json!({"ok": true}))
        .await
        .unwrap();
    let done = store.get_job(&id).await.unwrap().unwrap();
    assert_eq!((done.state.as_str(), done.result), ("done", Some(json!({"ok": true}))));
    // Restarting a process (migrate again) leaves other processes' running jobs alone.
    let id = store.enqueue_job("test", "assets", &json!({})).await.unwrap();
    store.claim_job("alive", 60).await.unwrap().unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.get_job(&id).await.unwrap().unwrap().state, "running");
    drop(store);
    pg.drop_schema().await;
}

/// A custom field added on one server is usable on another within its refresh interval
/// (10 s), and its removal reaches the other as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_field_added_on_one_server_reaches_the_other() {
    if !scaleout_available("a_custom_field_added_on_one_server_reaches_the_other") {
        return;
    }
    let pg = PgSchema::create(&test_database_url().unwrap()).await;
    let bucket = S3Bucket::create(&test_s3_endpoint().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let a = serve(&pg, &bucket, dir.path(), "serve-a");
    let b = serve(&pg, &bucket, dir.path(), "serve-b");
    let key = login(&a.base).await;
    let post = reqwest::Method::POST;
    let r = call(
        &a.base,
        post.clone(),
        "module/asset/create",
        &key,
        Some(json!({"id": "cf1", "sourcepath": "cf/1"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = call(
        &a.base,
        post.clone(),
        "settings/datamanager/fields/addnew",
        &key,
        Some(json!({"searchtype": "asset", "newproperty": "sharedcode"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut written = false;
    for _ in 0..60 {
        let r = call(
            &b.base,
            reqwest::Method::PUT,
            "module/asset/data/cf1",
            &key,
            Some(json!({"sharedcode": "X1"})),
        )
        .await;
        if r.json["data"]["sharedcode"] == "X1" {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(written, "server B never learned of the field");
    let found = hits(
        &a.base,
        &key,
        json!([{"field": "sharedcode", "operation": "exact", "value": "x1"}]),
    )
    .await;
    assert_eq!(found, vec!["cf1"], "written on B, searched on A");

    let r = call(
        &a.base,
        post,
        "settings/datamanager/fields/remove",
        &key,
        Some(json!({"searchtype": "asset", "id": "sharedcode"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut forgotten = false;
    for _ in 0..60 {
        let r = call(&b.base, reqwest::Method::GET, "module/asset/data/cf1", &key, None).await;
        if r.json["data"].get("sharedcode").is_none() {
            forgotten = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(forgotten, "server B still shows the removed field");
    drop((a, b));
    pg.drop_schema().await;
    bucket.delete().await;
}
