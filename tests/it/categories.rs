//! Categories: categorypath on create and update, category-exact and the computed
//! category in hits, searchable; the tree; deleting a category deletes no asset.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|x| x["id"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn categorypath_tree_and_search() {
    let s = TestServer::start().await;
    let key = s.login().await;
    let a = s
        .post(
            "module/asset/create",
            &key,
            r#"{"id":"c1","sourcepath":"x/c1","categorypath":"Marketing/2024"}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let exact = &a.json["data"]["category-exact"];
    assert_eq!(exact.as_array().unwrap().len(), 1);
    assert_eq!(exact[0]["name"], "2024");
    let all = ids(&a.json["data"]["category"]);
    assert_eq!(all.len(), 3, "index, Marketing, 2024: {all:?}");
    assert_eq!(a.json["data"]["category"][0], json!({"id":"index","name":"All"}));
    let marketing = all[1].clone();
    s.post(
        "module/asset/create",
        &key,
        r#"{"id":"c2","sourcepath":"x/c2","categorypath":["Marketing/2025","Sales"]}"#,
    )
    .await;
    s.post("module/asset/create", &key, r#"{"id":"c3","sourcepath":"x/c3"}"#)
        .await;
    // Search by a parent category finds the assets of its children.
    let r = s
        .post(
            "module/asset/search",
            &key,
            &json!({"query":{"terms":[{"field":"category","operation":"exact","value":marketing}]}}).to_string(),
        )
        .await;
    assert_eq!(r.json["response"]["totalhits"], json!(2), "{}", r.text);
    let r = s
        .post(
            "module/asset/search",
            &key,
            &json!({"query":{"terms":[{"field":"category-exact","operation":"exact","value":marketing}]}}).to_string(),
        )
        .await;
    assert_eq!(r.json["response"]["totalhits"], json!(0));
    // The tree, raw as EMDB's.
    let t = s.post("module/category/tree", &key, r#"{"categoryid":"index"}"#).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert_eq!(t.json["id"], "index");
    assert_eq!(t.json["name"], "All");
    let top: Vec<&str> = t.json["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(top, ["Marketing", "Sales"]);
    let years: Vec<&str> = t.json["children"][0]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["categorypath"].as_str().unwrap())
        .collect();
    assert_eq!(years, ["Marketing/2024", "Marketing/2025"]);
    // Categories are a table like any other; an update may add one.
    let u = s
        .call(
            Method::PUT,
            "module/asset/data/c3",
            Some(&key),
            Some(r#"{"categorypath":"Sales"}"#),
        )
        .await;
    assert_eq!(
        ids(&u.json["data"]["category-exact"]),
        ids(&s.get("module/asset/data/c2", Some(&key)).await.json["data"]["category-exact"])[1..].to_vec()
    );
    let c = s
        .post(
            "module/category/search",
            &key,
            r#"{"query":{"terms":[{"field":"name","value":"sales"}]}}"#,
        )
        .await;
    assert_eq!(c.json["response"]["totalhits"], json!(1));
    // Deleting a category deletes no asset.
    let del = s
        .call(
            Method::DELETE,
            &format!("module/category/data/{marketing}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::OK, "{}", del.text);
    assert_eq!(s.search_all(&key).await.json["response"]["totalhits"], json!(3));
    s.stop().await;
}
