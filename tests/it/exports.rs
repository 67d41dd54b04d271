//! Generic tables as CSV (`lists/export`, `module/{m}/export`), `searchorcreate`, and
//! `module/asset/clone`.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn lists_export_as_csv_and_searchorcreate_finds_or_makes() {
    let s = TestServer::start_with(|c| c.workers = 0).await;
    let key = s.login().await;
    for body in [
        r#"{"id":"sales","name":"Sales, EU"}"#,
        r#"{"id":"press","name":"Press \"Release\"","tags":["a","b"]}"#,
        r#"{"id":"evil","name":"=HYPERLINK(1)"}"#,
    ] {
        let r = s.post("lists/create/purpose", &key, body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = s
        .client
        .post(s.url("lists/export/purpose"))
        .header("X-entermedia.key", &key)
        .json(&json!({"query": {"terms": [{"field": "id", "operation": "matches", "value": "*"}]}, "sortby": "idUp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines[0], "id,name,tags");
    assert_eq!(lines[1], "evil,'=HYPERLINK(1),", "formulas are kept as text");
    assert_eq!(lines[2], r#"press,"Press ""Release""",a|b"#);
    assert_eq!(lines[3], r#"sales,"Sales, EU","#);
    assert_eq!(lines.len(), 5, "three rows and the final line end");

    // A search narrows the export; the module form answers the same.
    let r = s
        .client
        .post(s.url("module/purpose/export"))
        .header("X-entermedia.key", &key)
        .json(&json!({"query": {"terms": [{"field": "id", "operation": "exact", "value": "sales"}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "id,name\r\nsales,\"Sales, EU\"\r\n");
    // Tables that are not generic, and bad searches, are 400s.
    let r = s.post("lists/export/asset", &key, "{}").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = s
        .post(
            "lists/export/purpose",
            &key,
            r#"{"query":{"terms":[{"field":"id","operation":"nonsense","value":"x"}]}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // searchorcreate: found by name (nothing new), else created.
    let r = s
        .post("module/purpose/searchorcreate", &key, r#"{"name":"Sales, EU"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["response"]["id"], "sales");
    assert_eq!(r.json["response"]["created"], "false");
    let r = s
        .post(
            "module/purpose/searchorcreate",
            &key,
            r#"{"name":"Sales EU","note":"new"}"#,
        )
        .await;
    assert_eq!(r.json["response"]["created"], "true", "a near name is another record");
    let new_id = r.json["response"]["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, "sales");
    assert_eq!(r.json["data"]["note"], "new");
    let again = s
        .post("module/purpose/searchorcreate", &key, r#"{"name":"Sales EU"}"#)
        .await;
    assert_eq!(again.json["response"]["id"], new_id.as_str());
    let r = s.post("module/purpose/searchorcreate", &key, r#"{"note":"x"}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = s.post("module/auditlog/searchorcreate", &key, r#"{"name":"x"}"#).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "server-kept tables stay read-only");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_copies_the_asset_and_its_original() {
    let s = TestServer::start().await;
    let key = s.login().await;
    let a = s
        .upload(
            &key,
            "media/test-asset-02.jpg",
            r#"{"id":"src","sourcepath":"Clones/photo.jpg","keywords":["bird"],"longcaption":"A bird","categorypath":"Nature/Birds"}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let c = s.post("module/asset/clone", &key, r#"{"assetid":"src"}"#).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    let id = c.json["response"]["id"].as_str().unwrap().to_string();
    assert_ne!(id, "src");
    assert_eq!(c.json["data"]["sourcepath"], "Clones/photo_2.jpg");
    assert!(c.json["original"]
        .as_str()
        .unwrap()
        .ends_with("Clones/photo_2.jpg/test-asset-02.jpg"));
    let d = crate::zips::imported(&s, &key, &id).await;
    assert_eq!(d["keywords"], json!([{"id": "bird"}]));
    assert_eq!(d["longcaption"], "A bird");
    assert_eq!(d["importstatus"]["id"], "complete");
    assert!(d["downloads"].as_array().unwrap().len() >= 4, "renditions of its own");
    let cats: Vec<String> = d["category-exact"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(cats[0].starts_with("Nature_Birds_"), "{cats:?}");

    // The copy's original is its own file: byte-identical, and it outlives the source.
    s.post(
        "module/asset/deleteassets",
        &key,
        r#"{"assetid":"src","deleteoriginal":"true"}"#,
    )
    .await;
    let r = s
        .client
        .get(s.url("module/asset/downloads/originals/Clones/photo_2.jpg/test-asset-02.jpg"))
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.bytes().await.unwrap().to_vec(),
        fixture_bytes("media/test-asset-02.jpg")
    );

    // A second clone of the copy takes the next free name; unknown ids are 404s.
    let c2 = s
        .post("module/asset/clone", &key, &json!({"assetid": id}).to_string())
        .await;
    assert_eq!(c2.json["data"]["sourcepath"], "Clones/photo_2_2.jpg");
    let c3 = s
        .post("module/asset/clone", &key, &json!({"assetid": id}).to_string())
        .await;
    assert_eq!(c3.json["data"]["sourcepath"], "Clones/photo_2_3.jpg");
    let r = s.post("module/asset/clone", &key, r#"{"assetid":"src"}"#).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = s.post("module/asset/clone", &key, "{}").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A record without a file clones too.
    s.post(
        "module/asset/create",
        &key,
        r#"{"id":"rec","sourcepath":"Clones/record","assettitle":"T"}"#,
    )
    .await;
    let r = s.post("module/asset/clone", &key, r#"{"assetid":"rec"}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["data"]["sourcepath"], "Clones/record_2");
    assert_eq!(r.json["data"]["assettitle"], "T");
    s.stop().await;
}

/// The tables kept in memory and the users and groups export too: the catalog narrowed by
/// the search language, users and groups only for user managers, never a secret.
#[tokio::test]
async fn memory_tables_users_and_groups_export_as_csv() {
    let s = TestServer::start_with(|c| c.workers = 0).await;
    let key = s.login().await;
    let export = |path: &'static str, key: String, body: serde_json::Value| {
        let s = &s;
        async move {
            let r = s
                .client
                .post(s.url(path))
                .header("X-entermedia.key", &key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (st, csv) = export(
        "lists/export/endpoint",
        key.clone(),
        json!({"query": {"terms": [{"field": "id", "operation": "exact", "value": "deleteasset"}]}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{csv}");
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 2, "the header and Delete Asset: {csv}");
    assert!(lines[0].starts_with("id,"), "{csv}");
    assert!(lines[1].starts_with("deleteasset,"), "{csv}");
    let (st, csv) = export("lists/export/convertpreset", key.clone(), json!({})).await;
    assert_eq!(st, StatusCode::OK);
    assert!(csv.contains("\r\nthumbimage,"), "{csv}");
    let (st, csv) = export("lists/export/docsection", key.clone(), json!({})).await;
    assert_eq!(st, StatusCode::OK);
    assert!(csv.lines().count() > 3, "{csv}");
    let (st, csv) = export("lists/export/group", key.clone(), json!({})).await;
    assert_eq!(st, StatusCode::OK);
    assert!(csv.starts_with("id,name,permissions\r\n"), "{csv}");
    assert!(csv.contains("\r\nadministrators,"), "{csv}");
    let (st, csv) = export("lists/export/user", key.clone(), json!({})).await;
    assert_eq!(st, StatusCode::OK);
    assert!(csv.contains("\r\nadmin,"), "{csv}");
    assert!(!csv.contains("argon2"), "{csv}");
    // Users and groups are for user managers only.
    let u = s
        .post(
            "settings/users/create",
            &key,
            r#"{"id":"reader","password":"reader-password"}"#,
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.text);
    let reader = s.login_as("reader", "reader-password").await;
    for path in ["lists/export/user", "lists/export/group"] {
        let (st, body) = export(path, reader.clone(), json!({})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    let (st, _) = export("lists/export/endpoint", reader, json!({})).await;
    assert_eq!(st, StatusCode::OK);
    s.stop().await;
}
