//! Upload throughput benchmark (not a test): logs in to a running server and uploads one
//! file many times from concurrent clients, each upload a new asset, and prints uploads
//! per second. Used for the scale-out figures in the README.
//!
//! Usage: `upload_bench BASE_URL ADMIN_PASSWORD FILE [UPLOADS=400] [CLIENTS=8]`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: upload_bench BASE_URL ADMIN_PASSWORD FILE [UPLOADS] [CLIENTS]");
        std::process::exit(2);
    }
    let base = format!("{}/assets/mediadb/services", args[0].trim_end_matches('/'));
    let bytes = std::fs::read(&args[2])?;
    let filename = std::path::Path::new(&args[2])
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_else(|| "file".into());
    let total: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(400);
    let clients: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(format!("{base}/authentication/login"))
        .body(serde_json::json!({"id": "admin", "password": args[1]}).to_string())
        .send()
        .await?
        .json()
        .await?;
    let key = login["results"]["entermediakey"]
        .as_str()
        .ok_or("login failed")?
        .to_string();
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, base, key, bytes, filename, run) = (
            client.clone(),
            base.clone(),
            key.clone(),
            bytes.clone(),
            filename.clone(),
            run.clone(),
        );
        let (next, failed) = (next.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return;
                }
                let form = reqwest::multipart::Form::new()
                    .text("jsonrequest", format!(r#"{{"sourcepath":"bench/{run}/{n}/"}}"#))
                    .part(
                        "file",
                        reqwest::multipart::Part::bytes(bytes.clone()).file_name(filename.clone()),
                    );
                let ok = client
                    .post(format!("{base}/module/asset/create"))
                    .header("X-entermedia.key", &key)
                    .multipart(form)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    println!(
        "{total} uploads of {} bytes, {clients} clients: {:.1} s, {:.1} uploads/s, {failed} failed",
        bytes.len(),
        secs,
        total as f64 / secs
    );
    Ok(())
}
