//! `mediadb bench http`: load over the real HTTP API. Preloads N synthetic assets
//! straight through the store (as `bench search` does), starts the server as a child
//! process (cold start to a healthy `/healthz` and idle memory measured), then runs each
//! operation alone and a mixed workload over C concurrent keep-alive connections for a
//! fixed time, and prints JSON: requests/s, p50/p99 per operation, errors, server RSS.
//! Before each phase it waits until the server's job queue is empty (the conversions an
//! upload phase queued run for a while after it), so a phase measures its own operation;
//! the wait is reported as the phase's `waited_for_jobs_s`.
//!
//! The load generator is a small HTTP/1.1 client of its own over plain TCP (no pooling
//! layers): on a small machine client and server share the cores, and a heavy client
//! would measure itself.

use crate::config::Config;
use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug, Clone, clap::Args)]
pub struct HttpBenchArgs {
    /// Synthetic assets loaded before the run (skipped with --url).
    #[arg(long, default_value_t = 100_000)]
    pub assets: usize,
    /// Seconds each phase runs (each operation alone, then the mix).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Target a running server (`http://127.0.0.1:8080`) instead of starting one; it
    /// must hold the assets `b00000000`.. that `--assets` names (a previous run's data
    /// directory), and --password (admin) is needed.
    #[arg(long)]
    pub url: Option<String>,
    /// The admin password of the server given with --url; without --url, the password the
    /// preloaded catalog's admin gets (random by default), for other tools to log in with.
    #[arg(long)]
    pub password: Option<String>,
    /// The server's process id with --url, for its memory figures.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Where to build the catalog (kept; a new temporary directory, removed, by default).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Phases to run, comma-separated, from: search, get, put, upload, delete, mixed.
    #[arg(long, default_value = "search,get,put,upload,delete,mixed")]
    pub phases: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Search,
    Get,
    Put,
    Upload,
    Delete,
}

impl Op {
    const ALL: [Op; 5] = [Op::Search, Op::Get, Op::Put, Op::Upload, Op::Delete];

    fn name(self) -> &'static str {
        match self {
            Op::Search => "search_top20",
            Op::Get => "get_data",
            Op::Put => "put_data",
            Op::Upload => "upload",
            Op::Delete => "deleteassets",
        }
    }

    /// The mixed workload, weighted like a DAM's day: mostly reads.
    fn pick(rng: &mut StdRng) -> Op {
        match rng.gen_range(0..100) {
            0..=29 => Op::Search,
            30..=79 => Op::Get,
            80..=89 => Op::Put,
            90..=94 => Op::Upload,
            _ => Op::Delete,
        }
    }
}

/// What the workers share: the key, the id ranges, and the stop flag.
struct Plan {
    addr: String,
    key: String,
    /// Assets `b00000000`..`b{reads}` are read and updated; the rest are deleted in turn.
    reads: usize,
    next_delete: AtomicUsize,
    assets: usize,
    uploaded: AtomicUsize,
    stop: AtomicBool,
}

#[derive(Default)]
struct Tally {
    /// Microseconds per request, per operation.
    times: [Vec<u32>; 5],
    errors: [u64; 5],
    first_errors: Vec<String>,
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(BufReader::new(s));
        }
        let Some(stream) = self.stream.as_mut() else {
            anyhow::bail!("no connection")
        };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\n{headers}\r\n",
            body.len()
        );
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
        let result = async {
            stream.get_mut().write_all(&out).await?;
            read_response(stream).await
        }
        .await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }
}

async fn read_response(r: &mut BufReader<TcpStream>) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut line = String::new();
    r.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let (mut length, mut chunked) = (0usize, false);
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            anyhow::bail!("connection closed in the headers");
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse()?;
            } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)?;
            let start = body.len();
            body.resize(start + size + 2, 0);
            r.read_exact(&mut body[start..]).await?;
            body.truncate(start + size);
            if size == 0 {
                break;
            }
        }
    } else {
        body.resize(length, 0);
        r.read_exact(&mut body).await?;
    }
    Ok((status, body))
}

const SERVICES: &str = "/assets/mediadb/services";

async fn run_op(conn: &mut Conn, plan: &Plan, op: Op, rng: &mut StdRng, n: u64) -> anyhow::Result<u16> {
    let auth = format!("X-entermedia.key: {}\r\n", plan.key);
    let (status, _body) = match op {
        Op::Search => {
            let kw = crate::bench::keyword(rng.gen_range(0..300));
            let body =
                json!({"hitsperpage":"20","query":{"terms":[{"field":"keywords","operation":"matches","value":kw}]}});
            let headers = format!("{auth}Content-Type: application/json\r\n");
            conn.request(
                "POST",
                &format!("{SERVICES}/module/asset/search"),
                &headers,
                body.to_string().as_bytes(),
            )
            .await?
        }
        Op::Get => {
            let id = rng.gen_range(0..plan.reads);
            conn.request("GET", &format!("{SERVICES}/module/asset/data/b{id:08}"), &auth, b"")
                .await?
        }
        Op::Put => {
            let id = rng.gen_range(0..plan.reads);
            let body = json!({"longcaption": format!("benchmark caption {n}")});
            conn.request(
                "PUT",
                &format!("{SERVICES}/module/asset/data/b{id:08}"),
                &auth,
                body.to_string().as_bytes(),
            )
            .await?
        }
        Op::Upload => {
            let boundary = "mediadbbenchboundary";
            let data: Vec<u8> = (0..16 * 1024).map(|_| rng.gen::<u8>()).collect();
            let mut body = Vec::new();
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"jsonrequest\"\r\n\r\n{{\"keywords\":\"bench\"}}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(&data);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let headers = format!("{auth}Content-Type: multipart/form-data; boundary={boundary}\r\n");
            plan.uploaded.fetch_add(1, Ordering::Relaxed);
            conn.request("POST", &format!("{SERVICES}/module/asset/create"), &headers, &body)
                .await?
        }
        Op::Delete => {
            let i = plan.next_delete.fetch_add(1, Ordering::Relaxed);
            if i >= plan.assets {
                anyhow::bail!("no assets left to delete");
            }
            let body = json!({ "assetid": format!("b{i:08}") });
            conn.request(
                "POST",
                &format!("{SERVICES}/module/asset/deleteassets"),
                &auth,
                body.to_string().as_bytes(),
            )
            .await?
        }
    };
    Ok(status)
}

async fn worker(plan: Arc<Plan>, only: Option<Op>, seed: u64) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut conn = Conn {
        addr: plan.addr.clone(),
        stream: None,
    };
    let mut tally = Tally::default();
    let mut n = 0u64;
    while !plan.stop.load(Ordering::Relaxed) {
        let mut op = only.unwrap_or_else(|| Op::pick(&mut rng));
        // The delete range is used up: a deletes-only phase ends here (its figures are
        // over the time it ran), leaving a tenth of the range to the mix, which reads
        // instead once that is gone too.
        if op == Op::Delete {
            let next = plan.next_delete.load(Ordering::Relaxed);
            if only.is_some() && next >= plan.assets - plan.assets / 20 {
                plan.stop.store(true, Ordering::Relaxed);
                break;
            }
            if next >= plan.assets {
                op = Op::Get;
            }
        }
        let i = Op::ALL.iter().position(|o| *o == op).unwrap_or(0);
        n += 1;
        let t = Instant::now();
        let res = run_op(&mut conn, &plan, op, &mut rng, n).await;
        let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
        match res {
            Ok(s) if (200..300).contains(&s) => tally.times[i].push(us),
            other => {
                tally.errors[i] += 1;
                if tally.first_errors.len() < 3 {
                    tally.first_errors.push(format!("{}: {other:?}", op.name()));
                }
            }
        }
    }
    tally
}

fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[idx.min(sorted.len() - 1)] as f64 / 10.0).round() / 100.0
}

async fn phase(plan: &Arc<Plan>, only: Option<Op>, secs: u64, connections: usize) -> Value {
    plan.stop.store(false, Ordering::Relaxed);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|c| tokio::spawn(worker(plan.clone(), only, c as u64 * 7919 + secs)))
        .collect();
    // Until the time is up, or a worker ended the phase early (nothing left to delete).
    let until = started + Duration::from_secs(secs);
    while Instant::now() < until && !plan.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    plan.stop.store(true, Ordering::Relaxed);
    let mut all = Tally::default();
    for t in tasks {
        if let Ok(mut t) = t.await {
            for i in 0..5 {
                all.times[i].append(&mut t.times[i]);
                all.errors[i] += t.errors[i];
            }
            all.first_errors.extend(t.first_errors.into_iter().take(3));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut ops = Map::new();
    let (mut total, mut errors) = (0usize, 0u64);
    for (i, op) in Op::ALL.iter().enumerate() {
        let times = &mut all.times[i];
        if times.is_empty() && all.errors[i] == 0 {
            continue;
        }
        times.sort_unstable();
        total += times.len();
        errors += all.errors[i];
        ops.insert(
            op.name().into(),
            json!({
                "requests": times.len(),
                "requests_per_s": (times.len() as f64 / elapsed).round(),
                "p50_ms": percentile_ms(times, 0.5),
                "p99_ms": percentile_ms(times, 0.99),
                "errors": all.errors[i],
            }),
        );
    }
    all.first_errors.truncate(5);
    json!({
        "seconds": (elapsed * 10.0).round() / 10.0,
        "requests_per_s": (total as f64 / elapsed).round(),
        "errors": errors,
        "first_errors": all.first_errors,
        "operations": ops,
    })
}

/// Resident and peak memory of a process, in MB, from /proc.
fn rss_mb(pid: u32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| (kb / 102.4).round() / 10.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn login(addr: &str, password: &str) -> anyhow::Result<String> {
    let mut conn = Conn {
        addr: addr.to_string(),
        stream: None,
    };
    let body = json!({"id": "admin", "password": password}).to_string();
    let (status, body) = conn
        .request(
            "POST",
            &format!("{SERVICES}/authentication/login"),
            "Content-Type: application/json\r\n",
            body.as_bytes(),
        )
        .await?;
    anyhow::ensure!(status == 200, "login answered {status}");
    let v: Value = serde_json::from_slice(&body)?;
    v["results"]["entermediakey"]
        .as_str()
        .map(str::to_string)
        .context("no entermediakey in the login answer")
}

/// A server started by the benchmark; killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

/// Starts `mediadb serve` on the data directory; returns it, its address and the time
/// from spawn to the first healthy answer.
async fn start_server(dir: &std::path::Path, password: &str) -> anyhow::Result<(Child, String, f64)> {
    use std::io::BufRead;
    let started = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("serve")
        .env("MEDIADB_DATA_DIR", dir)
        .env("MEDIADB_LISTEN", "127.0.0.1:0")
        .env("MEDIADB_ADMIN_PASSWORD", password)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let child = Child(child);
    let addr = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        for line in std::io::BufReader::new(stdout).lines() {
            if let Some(url) = line?.strip_prefix("mediadb listening on http://") {
                return Ok(url.to_string());
            }
        }
        anyhow::bail!("the server exited before listening")
    })
    .await??;
    let mut conn = Conn {
        addr: addr.clone(),
        stream: None,
    };
    loop {
        if let Ok((200, _)) = conn.request("GET", "/healthz", "", b"").await {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "not healthy after 30 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok((child, addr, started.elapsed().as_secs_f64() * 1000.0))
}

pub async fn http(args: HttpBenchArgs) -> anyhow::Result<Value> {
    let mut phases = Vec::new();
    for p in args.phases.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        phases.push(match p {
            "search" => Some(Op::Search),
            "get" => Some(Op::Get),
            "put" => Some(Op::Put),
            "upload" => Some(Op::Upload),
            "delete" => Some(Op::Delete),
            "mixed" => None,
            other => anyhow::bail!("unknown phase {other}"),
        });
    }
    let tmp = crate::bench::tempdir_path();
    let dir = args.data_dir.clone().unwrap_or_else(|| tmp.clone());
    let mut out = Map::new();
    let (server, addr, password) = match &args.url {
        Some(url) => {
            let addr = url.trim_end_matches('/').trim_start_matches("http://").to_string();
            (None, addr, args.password.clone().context("--url needs --password")?)
        }
        None => {
            let password = args.password.clone().unwrap_or_else(crate::auth::random_password);
            let load = preload(&dir, args.assets, &password).await?;
            out.insert("load_seconds".into(), json!(load));
            let (child, addr, cold) = start_server(&dir, &password).await?;
            out.insert("cold_start_to_healthy_ms".into(), json!((cold * 10.0).round() / 10.0));
            (Some(child), addr, password)
        }
    };
    let pid = server.as_ref().map(|c| c.0.id()).or(args.pid);
    let key = login(&addr, &password).await?;
    if let Some(pid) = pid {
        // Idle: after start-up and one login, before any load.
        tokio::time::sleep(Duration::from_secs(1)).await;
        out.insert("server_idle_rss_mb".into(), json!(rss_mb(pid).0));
    }
    let plan = Arc::new(Plan {
        addr,
        key,
        reads: (args.assets / 2).max(1),
        next_delete: AtomicUsize::new(args.assets / 2),
        assets: args.assets,
        uploaded: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let mut results = Map::new();
    for only in phases {
        let name = only.map_or("mixed", Op::name);
        let waited = jobs_done(&plan).await?;
        eprintln!("phase {name}: {} s over {} connections", args.seconds, args.connections);
        let mut r = phase(&plan, only, args.seconds, args.connections).await;
        r["waited_for_jobs_s"] = json!((waited * 10.0).round() / 10.0);
        results.insert(name.into(), r);
    }
    out.insert("assets".into(), json!(args.assets));
    out.insert("connections".into(), json!(args.connections));
    out.insert("seconds_per_phase".into(), json!(args.seconds));
    out.insert("phases".into(), Value::Object(results));
    out.insert("uploads_sent".into(), json!(plan.uploaded.load(Ordering::Relaxed)));
    if let Some(pid) = pid {
        let (rss, peak) = rss_mb(pid);
        out.insert("server_rss_mb".into(), json!(rss));
        out.insert("server_peak_rss_mb".into(), json!(peak));
    }
    out.insert(
        "cores".into(),
        json!(std::thread::available_parallelism().map_or(0, |n| n.get())),
    );
    drop(server);
    if args.data_dir.is_none() && args.url.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(Value::Object(out))
}

/// Waits until the server has no job queued or running (its `/metrics` gauges); answers
/// the seconds waited.
async fn jobs_done(plan: &Plan) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut conn = Conn {
        addr: plan.addr.clone(),
        stream: None,
    };
    let path = format!("/metrics?entermedia.key={}", plan.key);
    loop {
        let (status, body) = conn.request("GET", &path, "", b"").await?;
        anyhow::ensure!(status == 200, "GET /metrics answered {status}");
        if jobs_waiting(&String::from_utf8_lossy(&body)) == 0 {
            return Ok(started.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "the server's jobs were not done after 900 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The jobs queued or running, from the Prometheus page's `mediadb_jobs` gauges.
fn jobs_waiting(page: &str) -> u64 {
    page.lines()
        .filter(|l| l.starts_with("mediadb_jobs{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Loads the synthetic catalog through the store (the server is not running yet).
async fn preload(dir: &std::path::Path, assets: usize, password: &str) -> anyhow::Result<f64> {
    let mut config = Config::with_data_dir(dir.to_path_buf());
    config.workers = 0;
    config.admin_password = Some(password.to_string());
    let state = crate::app::AppState::open(config).await?;
    let store = state.store.clone();
    let started = Instant::now();
    let existing = store.count_assets("assets", crate::store::Scope::Live).await? as usize;
    anyhow::ensure!(
        existing == 0 || existing >= assets,
        "{} holds {existing} assets; use a new data directory",
        dir.display()
    );
    let mut rng = StdRng::seed_from_u64(42);
    let now = chrono::Utc::now().timestamp_millis();
    let span = 10 * 365 * 86_400_000i64;
    let mut batch = Vec::with_capacity(5000);
    // As `bench search` loads: the value indexes are dropped and rebuilt once at the end;
    // a catalog already loaded (a rerun on the same directory) keeps them as they are.
    let loading = existing < assets;
    if loading {
        store.bulk_load_begin().await?;
    }
    for i in existing..assets {
        batch.push(crate::bench::synthetic(i, &mut rng, now - span, span));
        if batch.len() == 5000 {
            store.insert_assets_bulk("assets", &batch).await?;
            batch.clear();
            eprint!("\rloaded {}/{assets}", i + 1);
        }
    }
    if !batch.is_empty() {
        store.insert_assets_bulk("assets", &batch).await?;
    }
    if loading {
        store.bulk_load_end().await?;
    }
    // The admin's password may differ from an earlier run on this directory.
    let mut admin = store.get_user("admin").await?.context("no admin user")?;
    let policy = crate::ops::users::KeyPolicy {
        legacy_keys: false,
        legacy_secret: String::new(),
    };
    crate::ops::users::set_password(&mut admin, password, &policy);
    store.update_user(&admin).await?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!("\rloaded {assets} assets in {secs:.1} s");
    Ok((secs * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn jobs_waiting_sums_the_job_gauges_only() {
        let page = "# HELP mediadb_jobs Background jobs\n\
            mediadb_jobs{kind=\"import\",state=\"queued\"} 3\n\
            mediadb_jobs{kind=\"import\",state=\"running\"} 2\n\
            mediadb_job_duration_seconds_count{kind=\"import\"} 40\n\
            mediadb_jobs{kind=\"bulkdelete\",state=\"queued\"} 0\n";
        assert_eq!(super::jobs_waiting(page), 5);
        assert_eq!(
            super::jobs_waiting("mediadb_jobs{kind=\"import\",state=\"queued\"} 0\n"),
            0
        );
    }
}
