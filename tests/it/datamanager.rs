//! `settings/modules` (custom modules whose tables work with the generic calls) and
//! `settings/datamanager` (tables, fields, custom asset fields set, searched and faceted
//! at once, reindex, CSV export).

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn facet(a: &Answer, field: &str) -> Value {
    a.json["filteroptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == field)
        .cloned()
        .unwrap_or(Value::Null)
}

fn ids(a: &Answer) -> Vec<String> {
    let mut v: Vec<String> = a.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_custom_module_gets_a_working_table() {
    let s = TestServer::start_with(|c| c.workers = 0).await;
    let key = s.login().await;
    let m = s
        .post("settings/modules/create", &key, r#"{"id":"project","name":"Projects"}"#)
        .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    assert_eq!(m.json["data"]["name"], "Projects");
    for (body, status) in [
        (r#"{"id":"project"}"#, StatusCode::CONFLICT),
        (r#"{"id":"asset"}"#, StatusCode::CONFLICT),
        (r#"{"id":"Bad Id"}"#, StatusCode::BAD_REQUEST),
        (r#"{"name":"no id"}"#, StatusCode::BAD_REQUEST),
    ] {
        let r = s.post("settings/modules/create", &key, body).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
    }
    // The module's table works with the generic calls.
    let c = s
        .post("module/project/create", &key, r#"{"name":"Apollo","lead":"ann"}"#)
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    let pid = c.json["response"]["id"].as_str().unwrap().to_string();
    let r = s
        .post(
            "module/project/search",
            &key,
            r#"{"query":{"terms":[{"field":"lead","operation":"matches","value":"ann"}]}}"#,
        )
        .await;
    assert_eq!(r.json["response"]["totalhits"], json!(1), "{}", r.text);
    let r = s.get(&format!("lists/data/project/{pid}"), Some(&key)).await;
    assert_eq!(r.json["data"]["name"], "Apollo");

    let t = s.post("settings/datamanager/listtables", &key, "{}").await;
    assert_eq!(t.status, StatusCode::OK);
    assert_eq!(t.json["response"]["searchtype"], "table");
    let names: Vec<&str> = t.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"asset") && names.contains(&"project"), "{names:?}");
    let f = s
        .post(
            "settings/datamanager/fields/listfields",
            &key,
            r#"{"searchtype":"project"}"#,
        )
        .await;
    let fields: Vec<&str> = f.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["id", "name", "lead"]);

    let l = s.post("settings/modules/list", &key, "{}").await;
    assert_eq!(l.json["response"]["totalhits"], "1");
    let u = s
        .call(
            reqwest::Method::PUT,
            "settings/modules/data/project",
            Some(&key),
            Some(r#"{"name":"Programs"}"#),
        )
        .await;
    assert_eq!(u.json["data"]["name"], "Programs");
    let d = s
        .call(
            reqwest::Method::DELETE,
            "settings/modules/data/project",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(
        s.get("settings/modules/data/project", Some(&key)).await.status,
        StatusCode::NOT_FOUND
    );
    // Unregistering keeps the records.
    let r = s.get(&format!("lists/data/project/{pid}"), Some(&key)).await;
    assert_eq!(r.status, StatusCode::OK);
    // Modules are the table of settings/modules only.
    let r = s.post("lists/create/module", &key, r#"{"id":"sneaky"}"#).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    s.stop().await;
}

#[tokio::test]
async fn a_custom_field_is_set_searched_and_faceted_at_once() {
    let s = TestServer::start_with(|c| c.workers = 0).await;
    let key = s.login().await;
    for id in ["p1", "p2", "p3"] {
        let r = s
            .post(
                "module/asset/create",
                &key,
                &json!({"id": id, "sourcepath": format!("p/{id}")}).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let add = s
        .post(
            "settings/datamanager/fields/addnew",
            &key,
            r#"{"searchtype":"asset","newproperty":"dmprojectcode","name":"Project Code"}"#,
        )
        .await;
    assert_eq!(add.status, StatusCode::OK, "{}", add.text);
    assert_eq!(add.json["data"]["type"], "keyword");
    let add = s
        .post(
            "settings/datamanager/fields/addnew",
            &key,
            r#"{"searchtype":"asset","newproperty":"dmrating","type":"number"}"#,
        )
        .await;
    assert_eq!(add.status, StatusCode::OK, "{}", add.text);
    for (body, status) in [
        (
            r#"{"searchtype":"asset","newproperty":"keywords"}"#,
            StatusCode::CONFLICT,
        ),
        (
            r#"{"searchtype":"asset","newproperty":"Bad-Name"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"searchtype":"asset","newproperty":"dmx","type":"hologram"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"newproperty":"dmx"}"#, StatusCode::BAD_REQUEST),
    ] {
        let r = s.post("settings/datamanager/fields/addnew", &key, body).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
    }
    let f = s
        .post(
            "settings/datamanager/fields/listfields",
            &key,
            r#"{"searchtype":"asset"}"#,
        )
        .await;
    let mine = f.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "dmprojectcode")
        .cloned()
        .unwrap();
    assert_eq!(mine["custom"], "true");
    assert_eq!(mine["name"], "Project Code");

    // Set at once by a data PUT (and on create), shown, searched, faceted.
    for (id, code, rating) in [("p1", "APOLLO-7", "4"), ("p2", "GEMINI", "2")] {
        let r = s
            .call(
                reqwest::Method::PUT,
                &format!("module/asset/data/{id}"),
                Some(&key),
                Some(&json!({"dmprojectcode": code, "dmrating": rating}).to_string()),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["data"]["dmprojectcode"], code);
    }
    let r = s
        .post(
            "module/asset/create",
            &key,
            r#"{"id":"p4","sourcepath":"p/p4","dmprojectcode":"APOLLO-7"}"#,
        )
        .await;
    assert_eq!(r.json["data"]["dmprojectcode"], "APOLLO-7", "{}", r.text);
    let g = s.get("module/asset/data/p1", Some(&key)).await;
    assert_eq!(g.json["data"]["dmrating"], "4");
    let r = s
        .post(
            "module/asset/search",
            &key,
            r#"{"query":{"terms":[{"field":"dmprojectcode","operation":"exact","value":"apollo-7"}]}}"#,
        )
        .await;
    assert_eq!(ids(&r), ["p1", "p4"], "{}", r.text);
    let r = s
        .post(
            "module/asset/search",
            &key,
            r#"{"query":{"terms":[{"field":"dmrating","operation":"greaterthannumber","value":"3"}]}}"#,
        )
        .await;
    assert_eq!(ids(&r), ["p1"], "{}", r.text);
    let all = s.post("module/asset/search", &key, r#"{"showfilters":"true"}"#).await;
    let codes = facet(&all, "dmprojectcode");
    assert_eq!(codes["name"], "Project Code", "{}", all.text);
    assert_eq!(
        codes["children"][0],
        json!({"id":"apollo-7","name":"apollo-7","count":"2"})
    );
    assert_eq!(codes["children"][1]["count"], "1");
    assert!(facet(&all, "dmrating").is_null(), "numbers are not faceted");
    let some = s
        .post(
            "module/asset/search",
            &key,
            r#"{"showfilters":"true","query":{"terms":[{"field":"id","operation":"exact","value":"p2"}]}}"#,
        )
        .await;
    assert_eq!(
        facet(&some, "dmprojectcode")["children"],
        json!([{"id":"gemini","name":"gemini","count":"1"}])
    );

    // Reindex and export.
    let r = s
        .post("settings/datamanager/table/reindex", &key, r#"{"searchtype":"asset"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["response"]["reindexed"], "4");
    let csv = s
        .client
        .get(s.url("settings/datamanager/table/export/asset.csv"))
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(&header[..2], ["id", "sourcepath"]);
    let col = header
        .iter()
        .position(|h| *h == "dmprojectcode")
        .expect("the custom column");
    let p1 = lines.iter().find(|l| l.starts_with("p1,")).unwrap();
    assert_eq!(p1.split(',').nth(col), Some("APOLLO-7"));
    assert_eq!(lines.len(), 5, "a header and four assets");
    let r = s.post("settings/datamanager/table/reindex", &key, r#"{}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Removing the field: no longer shown, written or searchable.
    let r = s
        .post(
            "settings/datamanager/fields/remove",
            &key,
            r#"{"searchtype":"asset","id":"dmprojectcode"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let g = s.get("module/asset/data/p1", Some(&key)).await;
    assert!(g.json["data"].get("dmprojectcode").is_none());
    let r = s
        .post(
            "module/asset/search",
            &key,
            r#"{"query":{"terms":[{"field":"dmprojectcode","operation":"exact","value":"gemini"}]}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for (body, status) in [
        (r#"{"searchtype":"asset","id":"dmprojectcode"}"#, StatusCode::NOT_FOUND),
        (r#"{"searchtype":"asset","id":"keywords"}"#, StatusCode::CONFLICT),
    ] {
        let r = s.post("settings/datamanager/fields/remove", &key, body).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
    }
    s.post(
        "settings/datamanager/fields/remove",
        &key,
        r#"{"searchtype":"asset","id":"dmrating"}"#,
    )
    .await;
    s.stop().await;
}
