//! The real `mediadb` binary: start-up on port 0, the bootstrap admin, and a graceful
//! SIGTERM that lets an in-flight upload finish.

use crate::harness::*;
use reqwest::StatusCode;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Proc {
    pub child: Child,
    pub base: String,
    pub lines: Vec<String>,
}

pub fn start(data: &Path, admin_password: Option<&str>) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mediadb"));
    cmd.arg("serve")
        .env("MEDIADB_LISTEN", "127.0.0.1:0")
        .env("MEDIADB_DATA_DIR", data)
        .env_remove("MEDIADB_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(p) = admin_password {
        cmd.env("MEDIADB_ADMIN_PASSWORD", p);
    }
    let mut p = Proc {
        child: cmd.spawn().expect("spawn mediadb"),
        base: String::new(),
        lines: Vec::new(),
    };
    let mut out = BufReader::new(p.child.stdout.take().expect("stdout"));
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).expect("read stdout") == 0 {
            panic!("mediadb exited before listening: {:?}", p.lines);
        }
        let line = line.trim().to_string();
        if let Some(url) = line.strip_prefix("mediadb listening on ") {
            p.base = url.to_string();
            p.lines.push(line);
            return p;
        }
        p.lines.push(line);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn terminate(p: &mut Proc) -> std::process::ExitStatus {
    let _ = Command::new("kill").arg("-TERM").arg(p.child.id().to_string()).status();
    // Workers finish the job in hand first (a 24-megapixel import in a debug build on a
    // loaded 2-core machine can take well over 10 s).
    for _ in 0..900 {
        if let Some(st) = p.child.try_wait().expect("wait") {
            return st;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = p.child.kill();
    panic!("mediadb did not stop within 45 s of SIGTERM");
}

pub async fn login(base: &str, password: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/assets/mediadb/services/authentication/login"))
        .body(format!(r#"{{"id":"admin","password":"{password}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    v["results"]["entermediakey"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_admin_password_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut p = start(&data, None);
    let pw_line = p
        .lines
        .iter()
        .find(|l| l.contains("password"))
        .cloned()
        .expect("password printed");
    let password = pw_line.rsplit(' ').next().unwrap().to_string();
    assert!(password.len() >= 16);
    let r = reqwest::get(format!("{}/healthz", p.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    login(&p.base, &password).await;
    assert!(terminate(&mut p).success());
    let mut p = start(&data, None);
    assert!(
        !p.lines.iter().any(|l| l.contains("password")),
        "printed only on the first start"
    );
    login(&p.base, &password).await;
    assert!(terminate(&mut p).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_upload_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut p = start(&data, Some("pw-for-sigterm"));
    let key = login(&p.base, "pw-for-sigterm").await;
    let bytes = fixture_bytes("media/DSC00750.jpg");
    let chunks: Vec<Vec<u8>> = bytes.chunks(128 * 1024).map(|c| c.to_vec()).collect();
    let slow = futures_util::stream::iter(chunks).then(|c| async move {
        tokio::time::sleep(Duration::from_millis(40)).await;
        Ok::<_, std::io::Error>(c)
    });
    let part = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(slow)).file_name("DSC00750.jpg");
    let form = reqwest::multipart::Form::new()
        .text("jsonrequest", r#"{"id":"inflight"}"#)
        .part("file", part);
    let url = format!("{}/assets/mediadb/services/module/asset/create", p.base);
    let upload = tokio::spawn(
        reqwest::Client::new()
            .post(url)
            .header("X-entermedia.key", key)
            .multipart(form)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    let pid = p.child.id();
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let resp = upload.await.unwrap().expect("the in-flight upload is answered");
    assert_eq!(resp.status(), StatusCode::OK);
    let st = terminate(&mut p);
    assert!(st.success(), "exit status {st:?}");

    let mut p = start(&data, None);
    let key = login(&p.base, "pw-for-sigterm").await;
    let r = reqwest::Client::new()
        .get(format!("{}/assets/mediadb/services/module/asset/data/inflight", p.base))
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let sp = v["data"]["originalurl"].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .get(format!(
            "{}/assets/mediadb/services/module/asset/downloads/originals/{sp}",
            p.base
        ))
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        bytes.as_slice(),
        "byte-identical after restart"
    );
    assert!(terminate(&mut p).success());
}

use futures_util::StreamExt;
