//! Every refusal: no key, a bad key, a broken body, an unknown id, a hostile path, a
//! missing permission. Each answers in the EMDB shape with an honest status, and each
//! leaves what is stored untouched.

use crate::harness::*;
use mediadb::api::endpoint::{decode, Access, Endpoint};
use mediadb::auth::{self, permissions};
use mediadb::store::User;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn one_asset(s: &TestServer, key: &str) {
    let a = s
        .upload(
            key,
            "media/test-asset-02.jpg",
            r#"{"id":"101","sourcepath":"keep/me.jpg"}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

async fn still_there(s: &TestServer, key: &str) {
    let g = s.get("module/asset/data/101", Some(key)).await;
    assert_eq!(g.status, StatusCode::OK, "asset 101 must survive: {}", g.text);
}

#[tokio::test]
async fn every_protected_endpoint_needs_a_key() {
    let s = TestServer::start().await;
    let key = s.login().await;
    one_asset(&s, &key).await;
    for (method, path) in Endpoint::samples() {
        let e = decode(&method, path).unwrap();
        let a = s.call(method.clone(), path, None, Some(r#"{"assetid":"101"}"#)).await;
        if e.access() == Access::Public {
            assert_ne!(a.status, StatusCode::UNAUTHORIZED, "{path} is public");
            continue;
        }
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}: {}", a.text);
        assert_eq!(a.json["errorcode"], "401");
        assert_eq!(a.json["response"]["status"], "error");
        assert!(a.json["response"]["details"]
            .as_str()
            .unwrap()
            .contains("entermedia.key"));
        let bad = s
            .call(
                method.clone(),
                path,
                Some("adminmd542deadbeef"),
                Some(r#"{"assetid":"101"}"#),
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNAUTHORIZED, "bad key on {path}");
    }
    still_there(&s, &key).await;
    s.stop().await;
}

#[tokio::test]
async fn broken_bodies_are_400_and_delete_nothing() {
    let s = TestServer::start().await;
    let key = s.login().await;
    one_asset(&s, &key).await;
    for body in [
        r#"{"assetid": "101""#,
        r#"{"assetid": 101,,}"#,
        "assetid 101",
        r#"["101"]"#,
        "{}",
        r#"{"assetid":{"id":"101"}}"#,
    ] {
        let a = s.post("module/asset/deleteassets", &key, body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text);
        assert_eq!(a.json["response"]["status"], "error");
        assert!(!a.json["response"]["details"].as_str().unwrap().is_empty());
    }
    // A broken search never means "everything".
    let a = s
        .post(
            "module/asset/search",
            &key,
            r#"{"query":{"terms":[{"field":"id","value":"*"}}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json.get("results").is_none());
    for (body, needle) in [
        (
            r#"{"query":{"terms":[{"field":"nosuchfield","value":"x"}]}}"#,
            "unknown field",
        ),
        (
            r#"{"query":{"terms":[{"field":"name","operation":"fuzzy","value":"x"}]}}"#,
            "unknown operation",
        ),
        (r#"{"hitsperpage":"5000"}"#, "hitsperpage"),
        (
            r#"{"query":{"terms":[{"field":"assetaddeddate","operation":"beforedate","value":"31/31/2020"}]}}"#,
            "date",
        ),
        // Found by the search_query fuzz target: a day count past chrono's range was a
        // panic (a 500) instead of a refusal.
        (
            r#"{"query":{"terms":[{"field":"assetmodificationdate","operation":"after203407439"}]}}"#,
            "representable",
        ),
    ] {
        let a = s.post("module/asset/search", &key, body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            a.json["response"]["details"].as_str().unwrap().contains(needle),
            "{body}: {}",
            a.text
        );
    }
    // A broken update changes nothing.
    let a = s
        .call(
            Method::PUT,
            "module/asset/data/101",
            Some(&key),
            Some(r#"{"longcaption":"x","width":"wide"}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let g = s.get("module/asset/data/101", Some(&key)).await;
    assert!(g.json["data"].get("longcaption").is_none());
    let a = s.call(Method::PUT, "module/asset/data/101", Some(&key), Some("")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    still_there(&s, &key).await;
    s.stop().await;
}

#[tokio::test]
async fn unknown_ids_and_paths() {
    let s = TestServer::start().await;
    let key = s.login().await;
    one_asset(&s, &key).await;
    let a = s.post("module/asset/deleteassets", &key, r#"{"assetid":"999"}"#).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.json["response"]["status"], "not found");
    assert_eq!(a.json["response"]["rowsedited"], "0");
    let a = s.get("module/asset/data/999", Some(&key)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.json["response"], json!({"status":"not found","id":"999"}));
    let a = s
        .call(
            Method::PUT,
            "module/asset/data/999",
            Some(&key),
            Some(r#"{"longcaption":"x"}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.search_all(&key).await.json["response"]["totalhits"],
        json!(1),
        "nothing was created"
    );
    let a = s.get("module/asset/nosuchthing", Some(&key)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.json["response"]["status"], "error");
    let a = s.get("module/asset/deleteassets", Some(&key)).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = s
        .client
        .get(format!("{}/othersite/mediadb/services/system/systemstatus", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "an unconfigured site");
    let r = s
        .client
        .get(format!(
            "{}/assets/mediadb/services/module/asset/downloads/originals/keep/nothing.jpg/nothing.jpg",
            s.base
        ))
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    still_there(&s, &key).await;
    s.stop().await;
}

#[tokio::test]
async fn hostile_paths_ids_and_sizes() {
    let s = TestServer::start_with(|c| c.max_body_bytes = 64 * 1024).await;
    let key = s.login().await;
    one_asset(&s, &key).await;
    let blobs_before = s.blob_files();
    for sp in ["../../etc/passwd", "a/../../b", "a\\b\\c.jpg", "./x", "a/\u{0}/b"] {
        let a = s
            .upload(&key, "media/test-asset-02.jpg", &json!({"sourcepath": sp}).to_string())
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{sp:?}: {}", a.text);
        assert!(a.json["response"]["details"].as_str().unwrap().contains("sourcepath"));
    }
    for id in ["../x", "a b", "x/y", ".hidden"] {
        let a = s
            .post(
                "module/asset/create",
                &key,
                &json!({"id": id, "sourcepath": "ok/path"}).to_string(),
            )
            .await;
        assert!(
            a.status == StatusCode::BAD_REQUEST,
            "id {id:?}: {} {}",
            a.status,
            a.text
        );
    }
    // A record (no file) under a taken id or explicit sourcepath is a conflict, and nothing
    // is left behind (a file sent there is a new version: tests/it/versions.rs).
    let a = s.post("module/asset/create", &key, r#"{"id":"101"}"#).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    let a = s
        .post("module/asset/create", &key, r#"{"sourcepath":"keep/me.jpg"}"#)
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert!(a.json["response"]["details"].as_str().unwrap().contains("101"));
    // Bodies over the limit.
    let big = format!(r#"{{"assetid":"101","pad":"{}"}}"#, "x".repeat(100 * 1024));
    let a = s.post("module/asset/deleteassets", &key, &big).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.blob_files(), blobs_before, "refused uploads leave no file");
    // A truncated multipart body.
    let r = s
        .client
        .post(s.url("module/asset/create"))
        .header("X-entermedia.key", &key)
        .header("Content-Type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\npartial bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(s.blob_files(), blobs_before, "an aborted upload leaves no file");
    assert_eq!(s.search_all(&key).await.json["response"]["totalhits"], json!(1));
    still_there(&s, &key).await;
    s.stop().await;
}

#[tokio::test]
async fn a_user_without_the_permission_gets_403_and_changes_nothing() {
    let s = TestServer::start().await;
    let key = s.login().await;
    one_asset(&s, &key).await;
    let user = User::new("editor", auth::hash_password("editor-pw"));
    s.state.store.create_user(&user, &[permissions::USERS]).await.unwrap();
    let ekey = s.login_as("editor", "editor-pw").await;
    // Ordinary users may search and read...
    assert_eq!(s.search_all(&ekey).await.json["response"]["totalhits"], json!(1));
    assert_eq!(s.get("module/asset/data/101", Some(&ekey)).await.status, StatusCode::OK);
    // ...but not delete.
    let a = s.post("module/asset/deleteassets", &ekey, r#"{"assetid":"101"}"#).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(a.json["errorcode"], "403");
    assert!(a.json["response"]["details"]
        .as_str()
        .unwrap()
        .contains("api-delete-data"));
    let a = s.call(Method::DELETE, "module/asset/data/101", Some(&ekey), None).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    still_there(&s, &key).await;
    s.stop().await;
}
