//! Versions of an original (wire §7.4): uploading again to an asset keeps the previous
//! file; getrevisions, restoreversion, `?version=N` downloads, renditions made for the
//! current file, purge removes every version, fsck counts none as an orphan.

use crate::harness::*;
use crate::zips::imported;
use reqwest::StatusCode;
use serde_json::Value;

async fn download(s: &TestServer, key: &str, path: &str) -> (StatusCode, Vec<u8>) {
    let r = s
        .client
        .get(s.url(path))
        .header("X-entermedia.key", key)
        .send()
        .await
        .unwrap();
    (r.status(), r.bytes().await.unwrap().to_vec())
}

fn numbers(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["number"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploading_again_keeps_versions() {
    let s = TestServer::start().await;
    let key = s.login().await;
    let one = fixture_bytes("media/test-asset-01.jpg");
    let two = fixture_bytes("media/test-asset-02.jpg");
    let a = s
        .upload(
            &key,
            "media/test-asset-01.jpg",
            r#"{"id":"v1","sourcepath":"v/photo.jpg","longcaption":"Kept"}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let first = imported(&s, &key, "v1").await;
    let thumb_url = "module/asset/generated/v/photo.jpg/image200x200.jpg";
    let (_, thumb1) = download(&s, &key, thumb_url).await;
    let r = s
        .post("module/asset/versions/getrevisions", &key, r#"{"assetid":"v1"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(numbers(&r.json), ["1"]);
    assert_eq!(r.json["response"]["searchtype"], "revision");

    // Same id: a new version; metadata kept, renditions made again for the new file.
    let a = s
        .upload(&key, "media/test-asset-02.jpg", r#"{"id":"v1","message":"retouched"}"#)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["response"]["id"], "v1");
    let second = imported(&s, &key, "v1").await;
    assert_eq!(second["longcaption"], "Kept");
    assert_eq!(second["md5hex"], md5_hex(&two).as_str());
    assert_eq!(first["width"], "1920");
    assert_eq!(second["width"], "1280", "the size is read from the new file");
    assert_eq!(second["previewstatus"]["id"], "2", "renditions made for the new file");
    let (st, thumb2) = download(&s, &key, thumb_url).await;
    assert_eq!(st, StatusCode::OK);
    assert!(thumb2.starts_with(&[0xFF, 0xD8]), "a JPEG thumbnail");
    assert_ne!(thumb1, thumb2, "the thumbnail shows the new file");

    // Same explicit sourcepath: a third version.
    let a = s
        .upload(&key, "media/test-asset-01.jpg", r#"{"sourcepath":"v/photo.jpg"}"#)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["response"]["id"], "v1");
    imported(&s, &key, "v1").await;
    let r = s
        .post("module/asset/versions/getrevisions", &key, r#"{"assetid":"v1"}"#)
        .await;
    assert_eq!(numbers(&r.json), ["3", "2", "1"], "newest first");
    assert_eq!(r.json["response"]["totalhits"], "3");
    let v2 = &r.json["results"][1];
    assert_eq!(v2["message"], "retouched");
    assert_eq!(v2["userid"], "admin");
    assert_eq!(v2["bytes"], two.len().to_string());
    assert_eq!(v2["current"], "false");
    assert_eq!(r.json["results"][0]["current"], "true");

    // Every version downloads by number; the plain URL is the current one.
    let base = "module/asset/downloads/originals/v/photo.jpg/test-asset-01.jpg";
    assert_eq!(download(&s, &key, base).await.1, one);
    assert_eq!(download(&s, &key, &format!("{base}?version=1")).await.1, one);
    assert_eq!(download(&s, &key, &format!("{base}?version=2")).await.1, two);
    assert_eq!(
        download(&s, &key, &format!("{base}?version=9")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        download(&s, &key, &format!("{base}?version=x")).await.0,
        StatusCode::BAD_REQUEST
    );

    // Restore version 2: it becomes version 4, the current file.
    let r = s
        .post(
            "module/asset/versions/restoreversion",
            &key,
            r#"{"assetid":"v1","version":"2"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(numbers(&r.json), ["4", "3", "2", "1"]);
    assert_eq!(r.json["results"][0]["message"], "restored version 2");
    let d = imported(&s, &key, "v1").await;
    assert_eq!(d["md5hex"], md5_hex(&two).as_str());
    let (_, now) = download(
        &s,
        &key,
        "module/asset/downloads/originals/v/photo.jpg/test-asset-02.jpg",
    )
    .await;
    assert_eq!(now, two);
    for (body, status) in [
        (r#"{"assetid":"v1","version":"7"}"#, StatusCode::NOT_FOUND),
        (r#"{"assetid":"v1"}"#, StatusCode::BAD_REQUEST),
        (r#"{"assetid":"nope","version":"1"}"#, StatusCode::NOT_FOUND),
    ] {
        let r = s.post("module/asset/versions/restoreversion", &key, body).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
    }

    // A record without a file under a taken id stays a conflict.
    let r = s.post("module/asset/create", &key, r#"{"id":"v1"}"#).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // fsck: versions are kept files, not orphans (files are aged past the orphan age). The
    // import removes the replaced renditions just after it records the new ones: wait for
    // four originals and one set of eight renditions.
    for _ in 0..400 {
        if s.blob_files().len() == 4 + 8 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        s.blob_files().len(),
        12,
        "four versions and eight renditions are stored"
    );
    if s.storage.is_none() {
        for f in s.blob_files() {
            std::fs::File::options()
                .write(true)
                .open(&f)
                .unwrap()
                .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
                .unwrap();
        }
    }
    let files_before = s.blob_files().len();
    let sites = vec!["assets".to_string()];
    let report = mediadb::ops::fsck::run(
        s.state.store.as_ref(),
        &s.state.blobs,
        &sites,
        &s.data_dir.join("tmp"),
        false,
        true,
    )
    .await
    .unwrap();
    assert!(report.consistent(), "{:?}", report.problems);

    // Purge: every version's file goes with the asset.
    let r = s
        .post(
            "module/asset/deleteassets",
            &key,
            r#"{"assetid":"v1","deleteoriginal":"true"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(files_before, 12);
    assert!(
        s.blob_files().is_empty(),
        "every version and rendition removed: {:?}",
        s.blob_files()
    );
    s.stop().await;
}
