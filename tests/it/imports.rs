//! Server-side imports: importpath / localPath only under configured roots, fetchURL only
//! to public addresses unless configured; refusals store nothing.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn import_roots_bound_local_files() {
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let rp = root.path().to_path_buf();
    let bytes = fixture_bytes("media/test-asset-02.jpg");
    std::fs::write(rp.join("in.jpg"), &bytes).unwrap();
    std::fs::write(rp.join("move.jpg"), &bytes).unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"secret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), rp.join("link.txt")).unwrap();

    // Without roots, nothing is imported.
    let s = TestServer::start().await;
    let key = s.login().await;
    let body = json!({"importpath": rp.join("in.jpg"), "sourcepath": "imp/"}).to_string();
    let a = s.post("module/asset/create", &key, &body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json["response"]["details"]
        .as_str()
        .unwrap()
        .contains("--import-roots"));
    s.stop().await;

    let s = TestServer::start_with(|c| c.import_roots = vec![rp.clone()]).await;
    let key = s.login().await;
    let a = s
        .post(
            "module/asset/create",
            &key,
            &json!({"importpath": rp.join("in.jpg"), "sourcepath": "imp/", "id": "i1"}).to_string(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["data"]["md5hex"], json!(md5_hex(&bytes)));
    assert_eq!(a.json["data"]["sourcepath"], "imp/in.jpg");
    assert!(rp.join("in.jpg").exists(), "importpath copies");
    let a = s
        .post(
            "module/asset/create",
            &key,
            &json!({"localPath": rp.join("move.jpg"), "sourcepath": "imp/"}).to_string(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(!rp.join("move.jpg").exists(), "localPath moves");
    let files = s.blob_files();
    for (what, path) in [
        ("outside", outside.path().join("secret.txt")),
        ("symlink out", rp.join("link.txt")),
        (
            "traversal",
            rp.join("../")
                .join(outside.path().file_name().unwrap())
                .join("secret.txt"),
        ),
        ("the root itself", rp.clone()),
        ("missing", rp.join("nothing.jpg")),
    ] {
        let a = s
            .post(
                "module/asset/create",
                &key,
                &json!({"importpath": path, "sourcepath": "imp/"}).to_string(),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{what}: {}", a.text);
    }
    assert_eq!(s.blob_files().len(), files.len(), "refusals store nothing");
    assert!(outside.path().join("secret.txt").exists());
    s.stop().await;
}

async fn file_server(bytes: Vec<u8>) -> String {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/pics/photo.jpg", get(move || async move { bytes.clone() }))
        .route(
            "/moved",
            get(|| async { axum::response::Redirect::temporary("/pics/photo.jpg") }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn fetch_url_only_to_public_addresses_unless_configured() {
    let bytes = fixture_bytes("media/test-asset-01.jpg");
    let origin = file_server(bytes.clone()).await;
    let s = TestServer::start().await;
    let key = s.login().await;
    for url in [
        format!("{origin}/pics/photo.jpg"),
        "http://169.254.169.254/latest/meta-data".into(),
        "http://[::1]/x".into(),
        "file:///etc/passwd".into(),
        "ftp://example.com/x".into(),
    ] {
        let a = s
            .post("module/asset/create", &key, &json!({"fetchURL": url}).to_string())
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{url}: {}", a.text);
    }
    assert!(s.blob_files().is_empty());
    s.stop().await;

    let s = TestServer::start_with(|c| c.fetch_allow_private = true).await;
    let key = s.login().await;
    let a = s
        .post(
            "module/asset/create",
            &key,
            &json!({"fetchURL": format!("{origin}/pics/photo.jpg"), "sourcepath": "web/"}).to_string(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["data"]["sourcepath"], "web/photo.jpg");
    assert_eq!(a.json["data"]["md5hex"], json!(md5_hex(&bytes)));
    // Redirects are not followed (they could lead anywhere), and errors are named.
    let a = s
        .post(
            "module/asset/create",
            &key,
            &json!({"fetchurl": format!("{origin}/moved")}).to_string(),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = s
        .post(
            "module/asset/create",
            &key,
            &json!({"fetchURL": format!("{origin}/nothing")}).to_string(),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json["response"]["details"].as_str().unwrap().contains("404"));
    s.stop().await;
}
