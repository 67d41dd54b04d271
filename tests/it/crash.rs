//! Crash safety, black box: the real binary serves concurrent uploads, metadata updates
//! and deletes and is killed with SIGKILL at random moments, several times, on the same
//! data directory. After each restart every acknowledged upload is there byte for byte,
//! every acknowledged delete is gone, every acknowledged update is visible, and anything
//! in flight at the kill is either wholly there or wholly absent. At the end the restart's
//! recovery has left nothing behind: `mediadb fsck --min-age-secs 0` (every unreferenced
//! or partial file counts) exits 0.
//!
//! The schedule comes from a seeded RNG; the seed is printed and `MEDIADB_CRASH_SEED`
//! replays it (the kill moments are timing-dependent, the operations are not).

use crate::binary::{login, start, terminate, Proc};
use crate::harness::fixture_bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "pw-for-crashes";
const ROUNDS: u32 = 5;
const CLIENTS: u32 = 6;

/// What one asset looks like in one possible world.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Absent,
    Live { sha: String, caption: Option<String> },
}

/// Whether what the server shows is the expected state. An expected caption of `None`
/// means "not set by us" (the import may fill it from the file's metadata).
fn shows(expected: &State, seen: &State) -> bool {
    match (expected, seen) {
        (State::Absent, State::Absent) => true,
        (State::Live { sha: a, caption: ca }, State::Live { sha: b, caption: cb }) => {
            a == b && (ca.is_none() || ca == cb)
        }
        _ => false,
    }
}

/// An asset's acknowledged state and, when a request about it was cut by the kill,
/// the state that request would have made.
#[derive(Debug, Clone)]
struct Entry {
    acked: State,
    pending: Option<State>,
    /// The bytes uploaded, to compare after the restart.
    bytes: Arc<Vec<u8>>,
}

type Model = Arc<Mutex<BTreeMap<String, Entry>>>;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn url(base: &str, path: &str) -> String {
    format!("{base}/assets/mediadb/services/{path}")
}

/// One client: uploads, updates and deletes its own assets, one request at a time, until
/// a request fails to get an answer (the server was killed).
async fn client(base: String, key: String, model: Model, seed: u64, tag: String, unexpected: Arc<Mutex<Vec<String>>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let jpeg = fixture_bytes("media/test-asset-02.jpg");
    for n in 0.. {
        let mine: Vec<(String, State)> = model
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, e)| id.starts_with(&tag) && e.pending.is_none())
            .map(|(id, e)| (id.clone(), e.acked.clone()))
            .collect();
        let live: Vec<&(String, State)> = mine.iter().filter(|(_, s)| *s != State::Absent).collect();
        let dice = rng.gen_range(0..10);
        let (id, next, request) = if dice < 4 || live.is_empty() {
            // An upload: a JPEG (imported: metadata and renditions) or opaque bytes, each
            // unique (a JPEG ignores bytes after its end).
            let id = format!("{tag}{n}");
            let mut bytes = if rng.gen_bool(0.3) { jpeg.clone() } else { Vec::new() };
            let extra = rng.gen_range(1_000..200_000);
            bytes.extend((0..extra).map(|_| rng.gen::<u8>()));
            let name = if bytes.starts_with(&[0xFF, 0xD8]) {
                "p.jpg"
            } else {
                "p.bin"
            };
            let bytes = Arc::new(bytes);
            model.lock().unwrap().insert(
                id.clone(),
                Entry {
                    acked: State::Absent,
                    pending: None,
                    bytes: bytes.clone(),
                },
            );
            let next = State::Live {
                sha: sha(&bytes),
                caption: None,
            };
            let form = reqwest::multipart::Form::new()
                .text("jsonrequest", json!({ "id": id }).to_string())
                .part("file", reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name));
            let req = http
                .post(url(&base, "module/asset/create"))
                .header("X-entermedia.key", &key)
                .multipart(form);
            (id, next, req)
        } else {
            let (id, state) = live[rng.gen_range(0..live.len())].clone();
            if dice < 8 {
                let caption = format!("caption {n} of {tag}");
                let State::Live { sha, .. } = state else { unreachable!() };
                let next = State::Live {
                    sha,
                    caption: Some(caption.clone()),
                };
                let req = http
                    .put(url(&base, &format!("module/asset/data/{id}")))
                    .header("X-entermedia.key", &key)
                    .body(json!({ "longcaption": caption }).to_string());
                (id, next, req)
            } else {
                let req = http
                    .post(url(&base, "module/asset/deleteassets"))
                    .header("X-entermedia.key", &key)
                    .body(json!({ "assetid": id }).to_string());
                (id, State::Absent, req)
            }
        };
        model.lock().unwrap().get_mut(&id).unwrap().pending = Some(next);
        match request.send().await {
            Ok(resp) if resp.status() == StatusCode::OK => {
                // Acknowledged: from now on it must hold, whatever happens.
                let mut m = model.lock().unwrap();
                let e = m.get_mut(&id).unwrap();
                e.acked = e.pending.take().unwrap();
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                if text.is_empty() {
                    // Cut mid-answer: still in flight as far as we know.
                    return;
                }
                unexpected.lock().unwrap().push(format!("{id}: {status} {text}"));
                model.lock().unwrap().get_mut(&id).unwrap().pending = None;
            }
            // No answer: the server died with the request in flight.
            Err(_) => return,
        }
    }
}

/// What the restarted server shows of an asset.
async fn observe(http: &reqwest::Client, base: &str, key: &str, id: &str) -> State {
    let r = http
        .get(url(base, &format!("module/asset/data/{id}")))
        .header("X-entermedia.key", key)
        .send()
        .await
        .unwrap();
    if r.status() == StatusCode::NOT_FOUND {
        return State::Absent;
    }
    assert_eq!(r.status(), StatusCode::OK, "data/{id}");
    let v: Value = r.json().await.unwrap();
    let caption = v["data"]["longcaption"].as_str().map(str::to_string);
    let path = v["data"]["originalurl"]
        .as_str()
        .unwrap_or_else(|| panic!("{id} has no original: {v}"))
        .to_string();
    let r = http
        .get(url(base, &format!("module/asset/downloads/originals/{path}")))
        .header("X-entermedia.key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the original of {id}");
    State::Live {
        sha: sha(&r.bytes().await.unwrap()),
        caption,
    }
}

/// Checks every asset against the model and settles what was in flight.
async fn verify(base: &str, key: &str, model: &Model, round: u32) {
    let http = reqwest::Client::new();
    let entries: Vec<(String, Entry)> = model.lock().unwrap().clone().into_iter().collect();
    let (mut live, mut in_flight) = (0, 0);
    for (id, e) in &entries {
        let seen = observe(&http, base, key, id).await;
        if e.pending.is_some() {
            in_flight += 1;
        }
        let matched = if shows(&e.acked, &seen) {
            Some(e.acked.clone())
        } else {
            e.pending.clone().filter(|p| shows(p, &seen))
        };
        assert!(
            matched.is_some(),
            "round {round}: {id} shows {seen:?}; acknowledged {:?}, in flight {:?} (uploaded {} bytes)",
            e.acked,
            e.pending,
            e.bytes.len()
        );
        if seen != State::Absent {
            live += 1;
        }
        let mut m = model.lock().unwrap();
        let entry = m.get_mut(id).unwrap();
        entry.acked = matched.unwrap();
        entry.pending = None;
    }
    // Nothing else is visible: every hit is an asset some client created.
    let mut hits: Vec<String> = Vec::new();
    for page in 1.. {
        let r = http
            .post(url(base, "module/asset/search"))
            .header("X-entermedia.key", key)
            .body(
                json!({"page": page.to_string(), "hitsperpage": "1000",
                "query": {"terms": [{"field": "id", "operation": "matches", "value": "*"}]}})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        let page_hits = v["results"].as_array().unwrap();
        hits.extend(page_hits.iter().map(|h| h["id"].as_str().unwrap().to_string()));
        if page_hits.len() < 1000 {
            break;
        }
    }
    assert_eq!(hits.len(), live, "round {round}: search shows what data/{{id}} shows");
    let m = model.lock().unwrap();
    for id in &hits {
        assert!(
            m.get(id).is_some_and(|e| e.acked != State::Absent),
            "round {round}: {id} is visible but was never uploaded"
        );
    }
    println!(
        "round {round}: {} assets checked ({live} live, {in_flight} were in flight at the kill)",
        entries.len()
    );
}

fn live_journals(data: &Path) -> usize {
    std::fs::read_dir(data.join("tmp"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("inflight-"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let seed: u64 = std::env::var("MEDIADB_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    println!("crash test seed: {seed} (replay with MEDIADB_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let model: Model = Arc::default();
    let unexpected: Arc<Mutex<Vec<String>>> = Arc::default();
    let began = Instant::now();
    for round in 0..ROUNDS {
        let mut p: Proc = start(&data, Some(PASSWORD));
        let key = login(&p.base, PASSWORD).await;
        if round > 0 {
            verify(&p.base, &key, &model, round).await;
        }
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            clients.push(tokio::spawn(client(
                p.base.clone(),
                key.clone(),
                model.clone(),
                rng.gen(),
                format!("r{round}c{c}n"),
                unexpected.clone(),
            )));
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1_500))).await;
        p.child.kill().expect("SIGKILL");
        p.child.wait().unwrap();
        for c in clients {
            c.await.unwrap();
        }
    }
    // The last restart: everything checked once more, and its recovery leaves nothing.
    let mut p = start(&data, Some(PASSWORD));
    let key = login(&p.base, PASSWORD).await;
    verify(&p.base, &key, &model, ROUNDS).await;
    let t = Instant::now();
    while live_journals(&data) > 1 && t.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(live_journals(&data), 1, "recovery read the dead processes' journals");
    assert!(terminate(&mut p).success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mediadb"))
        .args(["fsck", "--min-age-secs", "0", "--verify-hashes"])
        .env("MEDIADB_DATA_DIR", &data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "fsck after the crashes: {text}");
    assert!(text.contains("consistent"), "{text}");
    let unexpected = unexpected.lock().unwrap();
    assert!(unexpected.is_empty(), "answers other than 200: {unexpected:?}");
    println!("{ROUNDS} kills survived in {:.1} s", began.elapsed().as_secs_f64());
}
