//! `mediadb fsck`: finds what disagrees between the database and the files, repairs what
//! is safe, and exits 0 only when all is consistent.

use crate::harness::*;
use mediadb::ops::fsck;
use reqwest::StatusCode;
use std::process::Command;
use std::time::{Duration, SystemTime};

#[tokio::test]
async fn fsck_finds_and_repairs() {
    let s = TestServer::start_with(|c| c.workers = 0).await;
    if s.storage.is_some() {
        eprintln!("SKIPPED fsck test: it edits files of the local storage directly");
        return;
    }
    let key = s.login().await;
    for (id, f) in [("f1", "media/test-asset-01.jpg"), ("f2", "media/test-asset-02.jpg")] {
        let a = s.upload(&key, f, &format!(r#"{{"id":"{id}"}}"#)).await;
        assert_eq!(a.status, StatusCode::OK);
    }
    s.post("module/asset/deleteassets", &key, r#"{"assetid":"f2"}"#).await;
    let sites = vec!["assets".to_string()];
    let tmp = s.data_dir.join("tmp");
    let clean = fsck::run(s.state.store.as_ref(), &s.state.blobs, &sites, &tmp, false, true)
        .await
        .unwrap();
    assert!(clean.consistent(), "{:?}", clean.problems);
    assert_eq!((clean.assets, clean.files), (2, 2));

    // An old file nobody references, a fresh one (an upload in flight), a damaged original.
    let blobs = s.data_dir.join("blobs");
    let old = blobs.join("originals/0000000000000000000000000000dead");
    std::fs::write(&old, b"orphan").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    std::fs::write(blobs.join("originals/0000000000000000000000000000beef"), b"in flight").unwrap();
    let originals: Vec<_> = s
        .blob_files()
        .into_iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            !name.ends_with("dead") && !name.ends_with("beef")
        })
        .collect();
    let victim = &originals[0];
    let len = std::fs::metadata(victim).unwrap().len() as usize;
    std::fs::write(victim, vec![0u8; len]).unwrap();

    let r = fsck::run(s.state.store.as_ref(), &s.state.blobs, &sites, &tmp, false, false)
        .await
        .unwrap();
    assert_eq!(
        r.problems.len(),
        1,
        "without hash checks only the orphan shows: {:?}",
        r.problems
    );
    assert!(r.problems[0].contains("dead"));
    let r = fsck::run(s.state.store.as_ref(), &s.state.blobs, &sites, &tmp, true, true)
        .await
        .unwrap();
    assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
    assert!(r.problems.iter().any(|p| p.contains("SHA-256")));
    assert_eq!(r.unrepairable, 1);
    assert!(blobs
        .join("lost+found/originals/0000000000000000000000000000dead")
        .exists());
    assert!(
        blobs.join("originals/0000000000000000000000000000beef").exists(),
        "young files are left alone"
    );
    let data_dir = s.data_dir.clone();

    // The command (beside the running server): exit status 1 while a damaged original remains.
    let out = Command::new(env!("CARGO_BIN_EXE_mediadb"))
        .args(["fsck", "--verify-hashes", "--data-dir"])
        .arg(&data_dir)
        .env_remove("MEDIADB_DATABASE_URL")
        .env_remove("MEDIADB_STORAGE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("SHA-256") && stdout.contains("1 problem(s) remain"),
        "{stdout}"
    );
    s.stop().await;
}
