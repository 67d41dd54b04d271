//! A table of hostile requests: each gets its 4xx in the EMDB error shape, the server
//! stays healthy, and neither the catalog nor the data directory changes.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::Path;

fn files_under(dir: &Path) -> Vec<String> {
    fn walk(p: &Path, base: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    out.push(path.strip_prefix(base).unwrap_or(&path).display().to_string());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    // The database's own files change size as it works; what matters is that no other
    // file appears inside (or outside) the data directory.
    out.retain(|f| !f.starts_with("mediadb.sqlite"));
    out.sort();
    out
}

#[tokio::test]
async fn hostile_requests_change_nothing() {
    // No jobs: the data directory changes only by what the requests do.
    let s = TestServer::start_with(|c| {
        c.max_body_bytes = 256 * 1024;
        c.workers = 0;
    })
    .await;
    let key = s.login().await;
    let a = s
        .upload(
            &key,
            "media/test-asset-02.jpg",
            r#"{"id":"101","sourcepath":"safe/keep.jpg"}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let before_catalog = s.search_all(&key).await.json["results"].clone();
    let before_files = files_under(&s.data_dir);
    let parent_before = files_under(s.data_dir.parent().unwrap());
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let big = format!(r#"{{"assetid":"101","pad":"{}"}}"#, "x".repeat(300 * 1024));
    let evil_field = r#"{"query":{"terms":[{"field":"name'; DROP TABLE assets; --","value":"x"}]}}"#;
    let evil_value = r#"{"query":{"terms":[{"field":"name","value":"x' OR '1'='1"}]}}"#;
    type Case<'a> = (&'a str, Method, &'a str, Option<&'a str>, &'a [u8], StatusCode);
    let json = Some("application/json");
    let cases: Vec<Case> = vec![
        (
            "traversal in sourcepath",
            Method::POST,
            "module/asset/create",
            json,
            br#"{"sourcepath":"../../../etc/passwd"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "absolute sourcepath with dots",
            Method::POST,
            "module/asset/create",
            json,
            br#"{"sourcepath":"/../x"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "NUL in sourcepath",
            Method::POST,
            "module/asset/create",
            json,
            b"{\"sourcepath\":\"a\\u0000b\"}",
            StatusCode::BAD_REQUEST,
        ),
        (
            "backslashes",
            Method::POST,
            "module/asset/create",
            json,
            br#"{"sourcepath":"..\\..\\win.ini"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "importpath",
            Method::POST,
            "module/asset/create",
            json,
            br#"{"importpath":"/etc/passwd","sourcepath":"x"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "localPath",
            Method::POST,
            "module/asset/create",
            json,
            br#"{"localPath":"/etc/shadow","sourcepath":"x"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "fetchURL to metadata",
            Method::POST,
            "module/asset/create",
            json,
            br#"{"fetchURL":"http://169.254.169.254/latest","sourcepath":"x"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "hostile id",
            Method::POST,
            "module/asset/create",
            json,
            br#"{"id":"../../x","sourcepath":"x"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "deep nesting",
            Method::POST,
            "module/asset/search",
            json,
            deep.as_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "body too large",
            Method::POST,
            "module/asset/deleteassets",
            json,
            big.as_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "invalid UTF-8",
            Method::POST,
            "module/asset/deleteassets",
            json,
            b"{\"assetid\":\"\xff\xfe\"}",
            StatusCode::BAD_REQUEST,
        ),
        (
            "SQL in a field name",
            Method::POST,
            "module/asset/search",
            json,
            evil_field.as_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "hitsperpage cap",
            Method::POST,
            "module/asset/search",
            json,
            br#"{"hitsperpage":"100000000"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "negative page",
            Method::POST,
            "module/asset/search",
            json,
            br#"{"page":"-1"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "broken delete",
            Method::POST,
            "module/asset/deleteassets",
            json,
            br#"{"assetid": "101""#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "object as id",
            Method::POST,
            "module/asset/deleteassets",
            json,
            br#"{"assetid":{"$ne":""}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "encoded traversal download",
            Method::GET,
            "module/asset/downloads/originals/..%2F..%2F..%2Fetc%2Fpasswd/passwd",
            None,
            b"",
            StatusCode::NOT_FOUND,
        ),
        (
            "encoded traversal rendition",
            Method::GET,
            "module/asset/generated/%2e%2e/%2e%2e/etc/passwd",
            None,
            b"",
            StatusCode::NOT_FOUND,
        ),
        (
            "invalid UTF-8 in the path",
            Method::GET,
            "module/asset/data/%ff%fe",
            None,
            b"",
            StatusCode::BAD_REQUEST,
        ),
        (
            "NUL in the path",
            Method::GET,
            "module/asset/data/1%00",
            None,
            b"",
            StatusCode::NOT_FOUND,
        ),
        (
            "unknown content type",
            Method::POST,
            "module/asset/deleteassets",
            Some("application/x-evil"),
            b"assetid=101",
            StatusCode::BAD_REQUEST,
        ),
        (
            "multipart without boundary",
            Method::POST,
            "module/asset/create",
            Some("multipart/form-data"),
            b"--x--",
            StatusCode::BAD_REQUEST,
        ),
        (
            "rotate by a fraction",
            Method::POST,
            "module/asset/media/rotateasset",
            json,
            br#"{"assetid":"101","rotate":"33"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown permission",
            Method::POST,
            "settings/groups/create",
            json,
            br#"{"id":"g","permissions":["root"]}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "weak password",
            Method::POST,
            "settings/users/create",
            json,
            br#"{"id":"weak","password":"1"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "user id with md542",
            Method::POST,
            "settings/users/create",
            json,
            br#"{"id":"evilmd542x","password":"long-enough"}"#,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (what, method, path, ctype, body, want) in cases {
        let mut rb = s
            .client
            .request(method.clone(), s.url(path))
            .header("X-entermedia.key", &key);
        if let Some(ct) = ctype {
            rb = rb.header("Content-Type", ct);
        }
        let a = answer(rb.body(body.to_vec()).send().await.unwrap()).await;
        assert_eq!(a.status, want, "{what}: {}", a.text);
        let resp = &a.json["response"];
        assert!(resp.is_object(), "{what}: the EMDB envelope: {}", a.text);
        if want == StatusCode::NOT_FOUND {
            // An unknown record ("not found") or, where the client normalised the path
            // away, an unknown endpoint ("error").
            assert!(resp["status"] == "not found" || resp["status"] == "error", "{what}");
        } else {
            assert_eq!(resp["status"], "error", "{what}");
            assert!(!resp["details"].as_str().unwrap_or("").is_empty(), "{what}: details");
        }
        let h = s.client.get(format!("{}/healthz", s.base)).send().await.unwrap();
        assert_eq!(h.status(), StatusCode::OK, "healthy after {what}");
    }
    // SQL-ish text in a value is only a value: bound, never spliced.
    let a = s.post("module/asset/search", &key, evil_value).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["response"]["totalhits"], json!(0));
    assert_eq!(
        s.search_all(&key).await.json["results"],
        before_catalog,
        "the catalog is unchanged"
    );
    assert_eq!(files_under(&s.data_dir), before_files, "no file appeared or vanished");
    let parent_after = files_under(s.data_dir.parent().unwrap());
    assert_eq!(parent_after, parent_before, "nothing landed outside the data directory");
    let d = s.get("module/asset/data/101", Some(&key)).await;
    assert_eq!(d.json["data"]["sourcepath"], json!("safe/keep.jpg"));
    s.stop().await;
}
