//! `settings/modules` (custom modules whose tables work with the generic calls) and
//! `settings/datamanager` (tables, fields, custom asset fields set, searched and faceted
//! at once, reindex, CSV export and import).

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

async fn import_csv(s: &TestServer, key: &str, searchtype: &str, csv: String) -> Answer {
    s.post_file(
        "settings/datamanager/table/import",
        key,
        &[("searchtype", searchtype)],
        "edited.csv",
        csv.into_bytes(),
    )
    .await
}

/// Export, edit in a "spreadsheet", import: only the changed asset is written, and
/// searchable at once; bad rows are reported and the rest go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_csv_edited_and_imported_updates_what_changed() {
    let s = TestServer::start().await;
    let key = s.login().await;
    for (id, title) in [("c1", "First"), ("c2", "Second, with a comma")] {
        let r = s
            .post(
                "module/asset/create",
                &key,
                &json!({"id": id, "sourcepath": format!("csv/{id}"), "assettitle": title, "keywords": ["a", "b"]})
                    .to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let text = s
        .client
        .get(s.url("settings/datamanager/table/export/asset.csv"))
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Edit with a real CSV reader and writer, as a spreadsheet would.
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 2);
    let c1 = rows.iter_mut().find(|r| r[0] == "c1").unwrap();
    c1[col("assettitle")] = "First, edited".into();
    c1[col("keywords")] = "a|c".into();
    let mut gone = rows[0].clone();
    gone[0] = "gone".into();
    let mut bad = rows.iter().find(|r| r[0] == "c2").unwrap().clone();
    bad[col("pages")] = "many".into();
    rows.push(gone);
    rows.push(bad);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).unwrap();
    for r in &rows {
        w.write_record(r).unwrap();
    }
    let edited = String::from_utf8(w.into_inner().unwrap()).unwrap();

    let r = import_csv(&s, &key, "asset", edited).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let resp = &r.json["response"];
    assert_eq!(
        (&resp["rows"], &resp["rowsedited"], &resp["unchanged"]),
        (&json!("4"), &json!("1"), &json!("1")),
        "{}",
        r.text
    );
    assert_eq!(resp["notfound"], json!(["gone"]));
    assert_eq!(resp["errors"][0]["row"], 5, "{}", r.text);
    assert_eq!(resp["errors"][0]["id"], "c2");
    assert!(
        resp["errors"][0]["error"].as_str().unwrap().contains("pages"),
        "{}",
        r.text
    );
    let c1 = s.get("module/asset/data/c1", Some(&key)).await;
    assert_eq!(c1.json["data"]["assettitle"], "First, edited");
    let kw: Vec<&str> = c1.json["data"]["keywords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().or(k.as_str()).unwrap())
        .collect();
    assert_eq!(kw, ["a", "c"]);
    let c2 = s.get("module/asset/data/c2", Some(&key)).await;
    assert_eq!(c2.json["data"]["assettitle"], "Second, with a comma");
    // Searchable at once under the new title.
    let found = s
        .post(
            "module/asset/search",
            &key,
            r#"{"query":{"terms":[{"field":"assettitle","operation":"matches","value":"edited"}]}}"#,
        )
        .await;
    assert_eq!(ids(&found), ["c1"]);

    // A column that names no field refuses the file; nothing is written.
    let r = import_csv(
        &s,
        &key,
        "asset",
        "id,assettitle,nosuchfield\r\nc2,Changed,x\r\n".into(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("nosuchfield"), "{}", r.text);
    assert_eq!(
        s.get("module/asset/data/c2", Some(&key)).await.json["data"]["assettitle"],
        "Second, with a comma"
    );
    let r = import_csv(&s, &key, "asset", "assettitle\r\nx\r\n".into()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "no id column: {}", r.text);

    // A generic table: created, then updated (an empty cell removes the field).
    let r = import_csv(&s, &key, "purpose", "id,name,note\r\nads,Advertising,first\r\n".into()).await;
    assert_eq!(r.json["response"]["created"], "1", "{}", r.text);
    let r = import_csv(&s, &key, "purpose", "id,name,note\r\nads,Ads,\r\n".into()).await;
    assert_eq!(r.json["response"]["rowsedited"], "1", "{}", r.text);
    let p = s.get("lists/data/purpose/ads", Some(&key)).await;
    assert_eq!(p.json["data"]["name"], "Ads", "{}", p.text);
    assert!(p.json["data"].get("note").is_none(), "{}", p.text);
    // Tables the server keeps are refused; so is a caller who may not manage lists.
    let r = import_csv(&s, &key, "auditlog", "id,action\r\nx,forged\r\n".into()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let u = s
        .post(
            "settings/users/create",
            &key,
            r#"{"id":"clerk","password":"clerk-password"}"#,
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.text);
    let clerk = s.login_as("clerk", "clerk-password").await;
    let r = import_csv(&s, &clerk, "purpose", "id,name\r\nads,Hijacked\r\n".into()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(
        s.get("lists/data/purpose/ads", Some(&key)).await.json["data"]["name"],
        "Ads"
    );
    s.stop().await;
}

/// `addtable` and `deletetable` (records and all); `fields/save` renames a custom field
/// and, given a new type, reindexes so searches follow it; `reload`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_are_added_and_deleted_and_custom_fields_redefined() {
    let s = TestServer::start().await;
    let key = s.login().await;
    let r = s
        .post(
            "settings/datamanager/addtable",
            &key,
            r#"{"tablename":"vendors","name":"Vendors"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for (body, status) in [
        (r#"{"tablename":"vendors"}"#, StatusCode::CONFLICT),
        (r#"{"tablename":"asset"}"#, StatusCode::CONFLICT),
        (r#"{"tablename":"Bad Name"}"#, StatusCode::BAD_REQUEST),
        (r#"{}"#, StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(
            s.post("settings/datamanager/addtable", &key, body).await.status,
            status,
            "{body}"
        );
    }
    let listed = |a: &Answer| {
        a.json["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == "vendors")
            .cloned()
    };
    let t = s.post("settings/datamanager/listtables", &key, "{}").await;
    assert_eq!(
        listed(&t),
        Some(json!({"id": "vendors", "name": "Vendors", "module": "false"}))
    );
    for id in ["v1", "v2"] {
        let r = s
            .post(
                "lists/create/vendors",
                &key,
                &json!({"id": id, "name": "Acme"}).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let d = s
        .post(
            "settings/datamanager/table/deletetable",
            &key,
            r#"{"searchtype":"vendors"}"#,
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    assert_eq!(d.json["response"]["rowsdeleted"], "2");
    assert_eq!(
        s.get("lists/data/vendors/v1", Some(&key)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        listed(&s.post("settings/datamanager/listtables", &key, "{}").await),
        None
    );
    for (body, status) in [
        (r#"{"searchtype":"vendors"}"#, StatusCode::NOT_FOUND),
        (r#"{"searchtype":"asset"}"#, StatusCode::CONFLICT),
        (r#"{"searchtype":"category"}"#, StatusCode::CONFLICT),
    ] {
        assert_eq!(
            s.post("settings/datamanager/table/deletetable", &key, body)
                .await
                .status,
            status,
            "{body}"
        );
    }
    // The registry itself is not writable through the generic calls.
    let r = s.post("lists/create/customtable", &key, r#"{"id":"forged"}"#).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    // fields/save: renamed, then retyped (text -> number) with a reindex.
    let r = s
        .post(
            "settings/datamanager/fields/addnew",
            &key,
            r#"{"searchtype":"asset","newproperty":"dmsavestage","name":"Stage","type":"text"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // f2's value will not fit the new type: kept, not indexed, and no failure.
    for body in [
        r#"{"id":"f1","sourcepath":"fs/f1","dmsavestage":"42"}"#,
        r#"{"id":"f2","sourcepath":"fs/f2","dmsavestage":"later"}"#,
    ] {
        let r = s.post("module/asset/create", &key, body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let over_40 = r#"{"query":{"terms":[{"field":"dmsavestage","operation":"greaterthannumber","value":"40"}]}}"#;
    // As text, the value has no number to compare.
    let before = s.post("module/asset/search", &key, over_40).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    assert!(ids(&before).is_empty(), "{}", before.text);
    let r = s
        .post(
            "settings/datamanager/fields/save",
            &key,
            r#"{"searchtype":"asset","id":"dmsavestage","name":"Stage number"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            &r.json["data"]["name"],
            &r.json["data"]["type"],
            &r.json["response"]["reindexed"]
        ),
        (&json!("Stage number"), &json!("text"), &json!("0"))
    );
    let r = s
        .post(
            "settings/datamanager/fields/save",
            &key,
            r#"{"searchtype":"asset","id":"dmsavestage","type":"number"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["data"]["name"], "Stage number", "the name kept");
    assert_eq!(r.json["response"]["reindexed"], "2", "{}", r.text);
    let found = s.post("module/asset/search", &key, over_40).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(ids(&found), ["f1"]);
    let f2 = s.get("module/asset/data/f2", Some(&key)).await;
    assert_eq!(f2.json["data"]["dmsavestage"], "later", "{}", f2.text);
    for (body, status) in [
        (
            r#"{"searchtype":"asset","id":"keywords","name":"Tags"}"#,
            StatusCode::CONFLICT,
        ),
        (
            r#"{"searchtype":"asset","id":"nosuchfield","name":"X"}"#,
            StatusCode::NOT_FOUND,
        ),
        (r#"{"searchtype":"purpose","id":"name"}"#, StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(
            s.post("settings/datamanager/fields/save", &key, body).await.status,
            status,
            "{body}"
        );
    }
    let r = s.post("settings/datamanager/reload", &key, "{}").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Custom fields are server-wide: leave none behind for other tests.
    let r = s
        .post(
            "settings/datamanager/fields/remove",
            &key,
            r#"{"searchtype":"asset","id":"dmsavestage"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    s.stop().await;
}
