//! Collections: a root category per collection; addassets / removeassets; searchassets
//! within, answering EMDB's `hitssessionid`.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn collections_hold_assets() {
    let s = TestServer::start_with(|c| c.workers = 0).await;
    let key = s.login().await;
    let c = s
        .post("module/librarycollection/create", &key, r#"{"name":"Spring Campaign"}"#)
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    let cid = c.json["response"]["id"].as_str().unwrap().to_string();
    assert!(c.json["data"]["rootcategory"]
        .as_str()
        .unwrap()
        .starts_with("Collections_Spring_Campaign_"));
    for id in ["k1", "k2", "k3"] {
        s.post(
            "module/asset/create",
            &key,
            &format!(r#"{{"id":"{id}","sourcepath":"c/{id}","keywords":["{id}"]}}"#),
        )
        .await;
    }
    let add = s
        .post(
            "module/librarycollection/addassets",
            &key,
            &json!({"collectionid": cid, "assetid": ["k1", "k2", "nope"]}).to_string(),
        )
        .await;
    assert_eq!(add.status, StatusCode::OK, "{}", add.text);
    assert_eq!(add.json["response"]["rowsedited"], "2");
    assert_eq!(add.json["response"]["notfound"], json!(["nope"]));
    let r = s
        .post(
            "module/librarycollection/searchassets",
            &key,
            &json!({"collectionid": cid}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["response"]["totalhits"], json!(2));
    assert!(r.json["response"]["hitssessionid"].is_string(), "EMDB's spelling here");
    let r = s
        .post(
            "module/librarycollection/searchassets",
            &key,
            &json!({"collectionid": cid, "query": {"terms": [{"field": "keywords", "value": "k2"}]}}).to_string(),
        )
        .await;
    assert_eq!(r.json["response"]["totalhits"], json!(1));
    let rm = s
        .post(
            "module/librarycollection/removeassets",
            &key,
            &json!({"collectionid": cid, "assetid": "k1"}).to_string(),
        )
        .await;
    assert_eq!(rm.json["response"]["rowsedited"], "1");
    let r = s
        .post(
            "module/librarycollection/searchassets",
            &key,
            &json!({"collectionid": cid}).to_string(),
        )
        .await;
    assert_eq!(r.json["response"]["totalhits"], json!(1));
    assert_eq!(r.json["results"][0]["id"], "k2");
    assert_eq!(
        s.post(
            "module/librarycollection/searchassets",
            &key,
            r#"{"collectionid":"none"}"#
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.post("module/librarycollection/addassets", &key, r#"{"assetid":"k1"}"#)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    s.stop().await;
}
