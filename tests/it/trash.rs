//! Deletion that can be undone: the trash, restore, purge, retention, bulk jobs, the
//! guard against mass loss, the audit log, and no resurrection under races.

use crate::harness::*;
use mediadb::auth::{self, permissions};
use mediadb::store::User;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn wait_job(s: &TestServer, key: &str, jobid: &str) -> Value {
    for _ in 0..1200 {
        let a = s.get(&format!("module/asset/jobs/{jobid}"), Some(key)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        let state = a.json["data"]["state"].as_str().unwrap_or("").to_string();
        if state == "done" || state == "failed" {
            return a.json["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {jobid} did not finish");
}

#[tokio::test]
async fn delete_restore_purge_round_trip() {
    let s = TestServer::start().await;
    let key = s.login().await;
    let bytes = fixture_bytes("media/test-asset-01.jpg");
    let a = s
        .upload(
            &key,
            "media/test-asset-01.jpg",
            r#"{"id":"t1","sourcepath":"Trash/one.jpg","keywords":["keep"],"longcaption":"precious"}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let before = a.json["data"].clone();
    let del = s.post("module/asset/deleteassets", &key, r#"{"assetid":"t1"}"#).await;
    assert_eq!(del.json["response"]["rowsedited"], "1");

    // In the trash, with who deleted it and when; not among the live assets.
    let t = s
        .post(
            "module/asset/trash/search",
            &key,
            r#"{"query":{"terms":[{"field":"id","operation":"matches","value":"*"}]}}"#,
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert_eq!(t.json["response"]["totalhits"], json!(1));
    assert_eq!(t.json["results"][0]["deletedby"]["id"], "admin");
    assert!(t.json["results"][0]["deleteddate"].as_str().unwrap().ends_with('Z'));
    assert_eq!(s.search_all(&key).await.json["response"]["totalhits"], json!(0));

    // Restore: same id, metadata and original, byte for byte.
    let r = s.post("module/asset/trash/restore", &key, r#"{"assetid":"t1"}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["response"]["rowsedited"], "1");
    let g = s.get("module/asset/data/t1", Some(&key)).await;
    assert_eq!(g.status, StatusCode::OK);
    for f in [
        "sourcepath",
        "keywords",
        "longcaption",
        "md5hex",
        "filesize",
        "assetaddeddate",
    ] {
        assert_eq!(g.json["data"][f], before[f], "{f}");
    }
    let url = format!(
        "{}/assets/mediadb/services/module/asset/downloads/originals/Trash/one.jpg/one.jpg",
        s.base
    );
    let resp = s
        .client
        .get(&url)
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let again = s.post("module/asset/trash/restore", &key, r#"{"assetid":"t1"}"#).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "not in the trash any more");

    // A restore into a sourcepath that was taken meanwhile is a clear 409.
    s.post("module/asset/deleteassets", &key, r#"{"assetid":"t1"}"#).await;
    let other = s
        .upload(
            &key,
            "media/test-asset-02.jpg",
            r#"{"id":"t2","sourcepath":"Trash/one.jpg"}"#,
        )
        .await;
    assert_eq!(other.status, StatusCode::OK);
    let r = s.post("module/asset/trash/restore", &key, r#"{"assetid":"t1"}"#).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.json["response"]["details"]
        .as_str()
        .unwrap()
        .contains("Trash/one.jpg"));

    // Purge: gone for good, file included.
    let files = s.blob_files().len();
    let p = s.post("module/asset/trash/purge", &key, r#"{"assetid":"t1"}"#).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert_eq!(s.blob_files().len(), files - 1);
    let t = s.post("module/asset/trash/search", &key, "{}").await;
    assert_eq!(t.json["response"]["totalhits"], json!(0));
    assert_eq!(
        s.post("module/asset/trash/restore", &key, r#"{"assetid":"t1"}"#)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test]
async fn the_trash_empties_itself_after_the_retention() {
    let s = TestServer::start_with(|c| {
        c.trash_retention_days = 0.0;
        c.maintenance_interval_secs = 1;
    })
    .await;
    let key = s.login().await;
    let files = s.blob_files().len();
    s.upload(&key, "media/test-asset-02.jpg", r#"{"id":"old"}"#).await;
    s.post("module/asset/deleteassets", &key, r#"{"assetid":"old"}"#).await;
    // The sweep removes the record, then the file, then writes the audit entry.
    for _ in 0..100 {
        let t = s.post("module/asset/trash/search", &key, "{}").await;
        let audit = s
            .post(
                "lists/search/auditlog",
                &key,
                r#"{"query":{"terms":[{"field":"action","operation":"exact","value":"purge"}]}}"#,
            )
            .await;
        if t.json["response"]["totalhits"] == json!(0)
            && audit.json["response"]["totalhits"] == json!(1)
            && s.blob_files().len() == files
        {
            assert_eq!(audit.json["results"][0]["assetid"], "old");
            s.stop().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the expired asset was not purged");
}

#[tokio::test]
async fn bulk_delete_and_restore_by_query_with_a_guard() {
    let s = TestServer::start_with(|c| c.bulk_confirm_min = 10).await;
    let key = s.login().await;
    for i in 0..30 {
        s.post(
            "module/asset/create",
            &key,
            &format!(r#"{{"id":"b{i}","sourcepath":"bulk/b{i}","keywords":["bulk"]}}"#),
        )
        .await;
    }
    for i in 0..5 {
        s.post(
            "module/asset/create",
            &key,
            &format!(r#"{{"id":"k{i}","sourcepath":"keep/k{i}","keywords":["keep"]}}"#),
        )
        .await;
    }
    let q = r#""query":{"terms":[{"field":"keywords","operation":"matches","value":"bulk"}]}"#;
    // 30 of 35 is a large share of more than 10: it needs a confirmation, and says so.
    let r = s.post("module/asset/deleteassets", &key, &format!("{{{q}}}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.json["response"]["details"].as_str().unwrap().contains("confirm"));
    assert_eq!(
        s.search_all(&key).await.json["response"]["totalhits"],
        json!(35),
        "nothing was deleted"
    );
    let r = s
        .post(
            "module/asset/deleteassets",
            &key,
            &format!(r#"{{{q},"confirm":"true"}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.json["response"]["totalhits"], "30");
    let job = wait_job(&s, &key, r.json["response"]["jobid"].as_str().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["result"]["rowsedited"], "30");
    let live = s.search_all(&key).await;
    assert_eq!(live.json["response"]["totalhits"], json!(5));

    // Restore them all by the same query over the trash; no confirmation needed.
    let r = s.post("module/asset/trash/restore", &key, &format!("{{{q}}}")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let job = wait_job(&s, &key, r.json["response"]["jobid"].as_str().unwrap()).await;
    assert_eq!(job["result"]["rowsedited"], "30", "{job}");
    assert_eq!(s.search_all(&key).await.json["response"]["totalhits"], json!(35));

    // Small bulks never ask; a hitsessionid names the search.
    let sr = s
        .post(
            "module/asset/search",
            &key,
            r#"{"query":{"terms":[{"field":"keywords","value":"keep"}]}}"#,
        )
        .await;
    let sid = sr.json["response"]["hitsessionid"].as_str().unwrap();
    let r = s
        .post(
            "module/asset/deleteassets",
            &key,
            &json!({"hitssessionid": sid}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let job = wait_job(&s, &key, r.json["response"]["jobid"].as_str().unwrap()).await;
    assert_eq!(job["result"]["rowsedited"], "5");
    assert_eq!(s.search_all(&key).await.json["response"]["totalhits"], json!(30));
    s.stop().await;
}

#[tokio::test]
async fn the_audit_log_records_who_did_what() {
    let s = TestServer::start().await;
    let key = s.login().await;
    s.post(
        "module/asset/create",
        &key,
        r#"{"id":"au1","sourcepath":"a/1","longcaption":"first"}"#,
    )
    .await;
    s.call(
        Method::PUT,
        "module/asset/data/au1",
        Some(&key),
        Some(r#"{"longcaption":"second"}"#),
    )
    .await;
    s.post("module/asset/deleteassets", &key, r#"{"assetid":"au1"}"#).await;
    s.post("module/asset/trash/restore", &key, r#"{"assetid":"au1"}"#).await;
    s.call(
        Method::POST,
        "authentication/login",
        None,
        Some(r#"{"id":"admin","password":"wrong"}"#),
    )
    .await;

    let all = s
        .post(
            "lists/search/auditlog",
            &key,
            r#"{"hitsperpage":"100","query":{"terms":[{"field":"assetid","operation":"exact","value":"au1"}]}}"#,
        )
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    let actions: Vec<&str> = all.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["create", "update", "delete", "restore"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let update = all.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "update")
        .unwrap();
    assert_eq!(update["user"], "admin");
    assert_eq!(update["address"], "127.0.0.1");
    assert_eq!(update["details"]["longcaption"], json!({"old":"first","new":"second"}));
    assert!(update["date"].as_str().unwrap().ends_with('Z'));
    let failed = s
        .post(
            "lists/search/auditlog",
            &key,
            r#"{"query":{"terms":[{"field":"action","operation":"exact","value":"loginfailed"}]}}"#,
        )
        .await;
    assert_eq!(failed.json["response"]["totalhits"], json!(1));
    assert_eq!(failed.json["results"][0]["user"], "admin");
    // The log survives a purge of the asset.
    s.post("module/asset/trash/purge", &key, r#"{"assetid":"au1"}"#).await;
    let again = s
        .post(
            "lists/search/auditlog",
            &key,
            r#"{"query":{"terms":[{"field":"assetid","operation":"exact","value":"au1"}]}}"#,
        )
        .await;
    assert!(again.json["response"]["totalhits"].as_u64().unwrap() >= 5);
    // A delete that found nothing is not logged as one (the entries are written with the
    // trash move, for the assets it moved).
    s.post("module/asset/deleteassets", &key, r#"{"assetid":"nosuch"}"#)
        .await;
    let none = s
        .post(
            "lists/search/auditlog",
            &key,
            r#"{"query":{"terms":[{"field":"assetid","operation":"exact","value":"nosuch"}]}}"#,
        )
        .await;
    assert_eq!(none.json["response"]["totalhits"], json!(0), "{}", none.text);
    s.stop().await;
}

#[tokio::test]
async fn only_trash_managers_see_the_trash_and_the_audit_log() {
    let s = TestServer::start().await;
    let key = s.login().await;
    let user = User::new("plain", auth::hash_password("plain-pw"));
    s.state.store.create_user(&user, &[permissions::USERS]).await.unwrap();
    let pkey = s.login_as("plain", "plain-pw").await;
    s.post("module/asset/create", &key, r#"{"id":"x1","sourcepath":"x/1"}"#)
        .await;
    s.post("module/asset/deleteassets", &key, r#"{"assetid":"x1"}"#).await;
    for path in [
        "module/asset/trash/search",
        "module/asset/trash/restore",
        "module/asset/trash/purge",
        "lists/search/auditlog",
    ] {
        let a = s.post(path, &pkey, r#"{"assetid":"x1"}"#).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.text);
    }
    assert_eq!(
        s.post("module/asset/trash/search", &key, "{}").await.json["response"]["totalhits"],
        json!(1)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_updates_never_resurrect_a_deleted_asset() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let key = s.login().await;
    for round in 0..5 {
        let id = format!("race{round}");
        s.post(
            "module/asset/create",
            &key,
            &format!(r#"{{"id":"{id}","sourcepath":"race/{id}"}}"#),
        )
        .await;
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (s, key, id) = (s.clone(), key.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                if i == 8 {
                    let a = s
                        .post("module/asset/deleteassets", &key, &format!(r#"{{"assetid":"{id}"}}"#))
                        .await;
                    assert_eq!(a.status, StatusCode::OK);
                    return (i, None);
                }
                let a = s
                    .call(
                        Method::PUT,
                        &format!("module/asset/data/{id}"),
                        Some(&key),
                        Some(&format!(r#"{{"longcaption":"v{i}"}}"#)),
                    )
                    .await;
                assert!(
                    a.status == StatusCode::OK || a.status == StatusCode::NOT_FOUND || a.status == StatusCode::CONFLICT,
                    "{}",
                    a.text
                );
                (i, Some(a.status))
            }));
        }
        let mut refused = Vec::new();
        for t in tasks {
            let (i, st) = t.await.unwrap();
            if st == Some(StatusCode::NOT_FOUND) {
                refused.push(format!("v{i}"));
            }
        }
        // Deleted for everyone; nothing written after the delete.
        assert_eq!(
            s.get(&format!("module/asset/data/{id}"), Some(&key)).await.status,
            StatusCode::NOT_FOUND
        );
        let r = s
            .post("module/asset/trash/restore", &key, &format!(r#"{{"assetid":"{id}"}}"#))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let g = s.get(&format!("module/asset/data/{id}"), Some(&key)).await;
        let caption = g.json["data"]["longcaption"].as_str().unwrap_or("").to_string();
        assert!(
            !refused.contains(&caption),
            "an update that answered 404 was written: {caption}"
        );
    }
}

/// Deletes that arrive together are run as one write by the embedded store; each asset
/// must still be deleted once, answered to exactly one caller, logged once, and gone
/// from searches, facets and counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deletes_take_each_asset_once() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let key = s.login().await;
    for i in 0..30 {
        let a = s
            .post(
                "module/asset/create",
                &key,
                &format!(r#"{{"id":"cd{i}","sourcepath":"cd/{i}","keywords":["burst","k{i}"]}}"#),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    // 90 callers: each asset alone twice, and in overlapping pairs once, plus an unknown id.
    let mut bodies = Vec::new();
    for i in 0..30 {
        bodies.push(format!(r#"{{"assetid": "cd{i}",}}"#));
        bodies.push(format!(r#"{{"assetid":["cd{i}","cd{}","nosuch{i}"]}}"#, (i + 1) % 30));
        bodies.push(format!(r#"{{"assetid":"cd{i}"}}"#));
    }
    let mut tasks = Vec::new();
    for body in bodies {
        let (s, key) = (s.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let a = s.post("module/asset/deleteassets", &key, &body).await;
            match a.status {
                StatusCode::OK => a.json["response"]["rowsedited"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
                StatusCode::NOT_FOUND => 0,
                other => panic!("{other}: {}", a.text),
            }
        }));
    }
    let mut edited = 0;
    for t in tasks {
        edited += t.await.unwrap();
    }
    assert_eq!(edited, 30, "every asset answered as deleted to exactly one caller");
    let found = s
        .post(
            "module/asset/search",
            &key,
            r#"{"showfilters":"true","query":{"terms":[{"field":"keywords","operation":"matches","value":"burst"}]}}"#,
        )
        .await;
    assert_eq!(found.json["response"]["totalhits"], json!(0), "{}", found.text);
    let all = s
        .post(
            "module/asset/search",
            &key,
            r#"{"showfilters":"true","query":{"terms":[{"field":"id","operation":"matches","value":"*"}]}}"#,
        )
        .await;
    assert_eq!(all.json["response"]["totalhits"], json!(0), "{}", all.text);
    assert!(
        !all.text.contains("burst"),
        "a facet still counts deleted assets: {}",
        all.text
    );
    let trash = s
        .post("module/asset/trash/search", &key, r#"{"hitsperpage":"100"}"#)
        .await;
    assert_eq!(trash.json["response"]["totalhits"], json!(30), "{}", trash.text);
    let log = s
        .post(
            "lists/search/auditlog",
            &key,
            r#"{"hitsperpage":"100","query":{"terms":[{"field":"action","operation":"exact","value":"delete"}]}}"#,
        )
        .await;
    assert_eq!(log.json["response"]["totalhits"], json!(30), "{}", log.text);
    let mut logged: Vec<String> = log.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["assetid"].as_str().unwrap().to_string())
        .collect();
    logged.sort();
    logged.dedup();
    assert_eq!(logged.len(), 30, "one entry per asset: {logged:?}");
}
