//! Generic tables: lists/{create,search,data}/{table} and module/{module}/* for
//! collections and any custom module, with EMDB's envelope differences.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn lists_and_modules_over_any_table() {
    let s = TestServer::start().await;
    let key = s.login().await;
    // lists/create answers without a status, as EMDB's does.
    let c = s
        .post(
            "lists/create/purpose",
            &key,
            r#"{"id":"sales","name":"Sales Channel",}"#,
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.json["response"], json!({"id":"sales"}));
    assert_eq!(c.json["data"], json!({"id":"sales","name":"Sales Channel"}));
    assert_eq!(
        s.post("lists/create/purpose", &key, r#"{"id":"sales"}"#).await.status,
        StatusCode::CONFLICT
    );
    s.post("lists/create/purpose", &key, r#"{"id":"press","name":"Press Release"}"#)
        .await;
    let r = s
        .post(
            "lists/search/purpose",
            &key,
            r#"{"query":{"terms":[{"field":"name","operation":"matches","value":"sales"}]}}"#,
        )
        .await;
    assert_eq!(r.json["response"]["totalhits"], json!(1), "{}", r.text);
    assert_eq!(r.json["response"]["searchtype"], "purpose");
    let u = s
        .call(
            Method::PUT,
            "lists/data/purpose/sales",
            Some(&key),
            Some(r#"{"name":"Sales"}"#),
        )
        .await;
    assert_eq!(u.json["data"]["name"], "Sales");
    let g = s.get("lists/data/purpose/sales.json", Some(&key)).await;
    assert_eq!(
        g.json,
        json!({"response":{"status":"ok","id":"sales"},"data":{"id":"sales","name":"Sales"}})
    );
    // An asset naming a list value uses the same table.
    s.post(
        "module/asset/create",
        &key,
        r#"{"id":"a1","sourcepath":"x/a1","purpose":["press"]}"#,
    )
    .await;
    let a = s.get("module/asset/data/a1", Some(&key)).await;
    assert_eq!(
        a.json["data"]["purpose"],
        json!([{"id":"press","name":"Press Release"}])
    );
    let d = s
        .call(Method::DELETE, "lists/data/purpose/sales", Some(&key), None)
        .await;
    assert_eq!(d.json["response"], json!({"status":"ok","id":"sales"}));
    assert_eq!(
        s.get("lists/data/purpose/sales", Some(&key)).await.status,
        StatusCode::NOT_FOUND
    );

    // A module: collections.
    let c = s
        .post("module/librarycollection/create", &key, r#"{"name":"My Collection"}"#)
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.json["response"]["status"], "ok");
    let id = c.json["response"]["id"].as_str().unwrap().to_string();
    let r = s
        .post(
            "module/librarycollection/search",
            &key,
            r#"{"query":{"terms":[{"field":"name","value":"collection"}]}}"#,
        )
        .await;
    assert_eq!(r.json["response"]["totalhits"], json!(1));
    let d = s
        .call(
            Method::DELETE,
            &format!("module/librarycollection/data/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(d.json["response"]["deleted"], "true");

    // Tables the server keeps are read-only; the audit log is for user managers.
    for path in [
        "lists/create/endpoint",
        "lists/create/auditlog",
        "module/convertpreset/create",
    ] {
        assert_eq!(
            s.post(path, &key, r#"{"id":"x"}"#).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    s.post(
        "settings/users/create",
        &key,
        r#"{"id":"plain","password":"plain-pass"}"#,
    )
    .await;
    let pk = s.login_as("plain", "plain-pass").await;
    let any_audit = s.post("lists/search/auditlog", &key, "{}").await;
    let aid = any_audit.json["results"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.get(&format!("lists/data/auditlog/{aid}"), Some(&pk)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get(&format!("lists/data/auditlog/{aid}"), Some(&key)).await.status,
        StatusCode::OK
    );
    // Plain users may read lists but not delete from them.
    assert_eq!(s.post("lists/search/purpose", &pk, "{}").await.status, StatusCode::OK);
    assert_eq!(
        s.call(Method::DELETE, "lists/data/purpose/press", Some(&pk), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assetdetails_and_validateuser() {
    let s = TestServer::start().await;
    let key = s.login().await;
    s.upload(
        &key,
        "media/test-asset-02.jpg",
        r#"{"id":"101","sourcepath":"d/","assettitle":"T"}"#,
    )
    .await;
    let mut d = json!(null);
    for _ in 0..1200 {
        d = s
            .post("module/asset/assetdetails", &key, r#"{"assetid":"101"}"#)
            .await
            .json;
        if d["thumb"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(d["response"], json!({"status":"ok","id":"101"}));
    assert_eq!(d["data"]["assettitle"], "T");
    assert!(d["data"].get("md5hex").is_none(), "only the details view's fields");
    assert!(
        d["thumb"]
            .as_str()
            .unwrap()
            .ends_with("/generated/d/test-asset-02.jpg/image200x200.jpg"),
        "{d}"
    );
    assert!(d["preview"].as_str().unwrap().ends_with("image3000x3000.jpg"));
    assert_eq!(
        d["original"],
        "/assets/mediadb/services/module/asset/downloads/originals/d/test-asset-02.jpg/test-asset-02.jpg"
    );
    let by_path = s
        .post(
            "module/asset/assetdetails",
            &key,
            r#"{"sourcepath":"d/test-asset-02.jpg"}"#,
        )
        .await;
    assert_eq!(by_path.json["response"]["id"], "101");
    assert_eq!(
        s.post("module/asset/assetdetails", &key, r#"{"assetid":"nope"}"#)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let ok = s
        .call(
            Method::POST,
            "authentication/validateuser",
            None,
            Some(&format!(r#"{{"id":"admin","password":"{ADMIN_PASSWORD}"}}"#)),
        )
        .await;
    assert_eq!(ok.json, json!({"status":"ok","userid":"admin"}));
    let bad = s
        .call(
            Method::POST,
            "authentication/validateuser",
            None,
            Some(r#"{"id":"admin","password":"x"}"#),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.json["status"], "authenticationproblem");
    s.stop().await;
}
