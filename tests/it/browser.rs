//! The browser tests (tests/e2e, Playwright driving Debian's Chromium) run as part of
//! `cargo test`, against the binary cargo just built. They skip with a printed reason
//! where Node.js, the npm packages or Chromium are missing, and fail instead under
//! `MEDIADB_REQUIRE_ALL=1`.

use std::path::Path;
use std::process::Command;

fn skip_or_fail(reason: &str) {
    if std::env::var("MEDIADB_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("browser tests required but {reason}");
    }
    eprintln!("SKIPPED browser tests: {reason}");
}

#[test]
fn api_page_and_asset_browser_in_chromium() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    if Command::new("node").arg("--version").output().is_err() {
        return skip_or_fail("node is not installed");
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return skip_or_fail("tests/e2e has no node_modules (run: cd tests/e2e && npm ci)");
    }
    let chromium = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return skip_or_fail("chromium is not installed (apt-get install chromium)");
    }
    let out = Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .current_dir(&dir)
        .env("MEDIADB_BIN", env!("CARGO_BIN_EXE_mediadb"))
        .env("CHROMIUM_BIN", &chromium)
        .output()
        .expect("run node --test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(out.status.success(), "the browser tests failed (output above)");
}
