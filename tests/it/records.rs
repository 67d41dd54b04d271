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
