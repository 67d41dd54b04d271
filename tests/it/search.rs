//! The search language end to end: operators, dates, numbers, sorting, facets, and
//! consistency with writes.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn seed(s: &TestServer, key: &str) {
    let records = [
        json!({"id":"s1","sourcepath":"p/s1","name":"Red bird on a wire","keywords":["bird","red"],"assettype":"photo","width":"4000","assetcreationdate":"2015-03-01","editstatus":"6","longcaption":"A small bird"}),
        json!({"id":"s2","sourcepath":"p/s2","name":"Blue bird","keywords":["bird","blue"],"assettype":"photo","width":"800","assetcreationdate":"2019-07-15"}),
        json!({"id":"s3","sourcepath":"p/s3","name":"Cat portrait","keywords":["cat"],"assettype":"video","width":"1920","assetcreationdate":"2021-12-31"}),
        json!({"id":"s4","sourcepath":"p/s4","name":"Annual report","assettype":"document","longcaption":"Quarterly numbers, \"big bird\" edition"}),
    ];
    for r in records {
        let a = s.post("module/asset/create", key, &r.to_string()).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
}

async fn ids(s: &TestServer, key: &str, body: Value) -> Vec<String> {
    let a = s.post("module/asset/search", key, &body.to_string()).await;
    assert_eq!(a.status, StatusCode::OK, "{body}: {}", a.text);
    let mut v: Vec<String> = a.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn q(terms: Value) -> Value {
    json!({"hitsperpage":"100","query":{"terms": terms}})
}

#[tokio::test]
async fn operators_of_the_emdb_language() {
    let s = TestServer::start().await;
    let key = s.login().await;
    seed(&s, &key).await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            q(json!([{"field":"keywords","operation":"matches","value":"bird"}])),
            vec!["s1", "s2"],
        ),
        (
            q(json!([{"field":"keywords","operation":"orsgroup","values":["red","cat"]}])),
            vec!["s1", "s3"],
        ),
        (
            q(json!([{"field":"keywords","operation":"andgroup","values":["bird","blue"]}])),
            vec!["s2"],
        ),
        (
            q(json!([{"field":"keywords","operation":"notgroup","values":["bird"]}])),
            vec!["s3", "s4"],
        ),
        (
            q(json!([{"field":"keywords","operation":"not","value":"cat"}])),
            vec!["s1", "s2", "s4"],
        ),
        (q(json!([{"field":"keywords","operation":"missing"}])), vec!["s4"]),
        (
            q(json!([{"field":"longcaption","operation":"exists"}])),
            vec!["s1", "s4"],
        ),
        (
            q(json!([{"field":"name","operation":"startswith","value":"blu"}])),
            vec!["s2"],
        ),
        (
            q(json!([{"field":"name","operation":"contains","value":"ortra"}])),
            vec!["s3"],
        ),
        (
            q(json!([{"field":"name","operation":"exact","value":"blue bird"}])),
            vec!["s2"],
        ),
        (
            q(json!([{"field":"name","operation":"matches","value":"BIRD"}])),
            vec!["s1", "s2"],
        ),
        (
            q(json!([{"field":"description","operation":"freeform","value":"\"big bird\""}])),
            vec!["s4"],
        ),
        (
            q(json!([{"field":"description","operation":"freeform","value":"bird small"}])),
            vec!["s1"],
        ),
        (
            q(json!([{"field":"description","operation":"matches","value":"quarterly"}])),
            vec!["s4"],
        ),
        (
            q(json!([{"field":"description","operation":"startswith","value":"quart"}])),
            vec!["s4"],
        ),
        (
            q(json!([{"field":"assettype","operation":"matches","value":"photo|video"}])),
            vec!["s1", "s2", "s3"],
        ),
        (
            q(json!([{"field":"width","operation":"greaterthannumber","value":"1000"}])),
            vec!["s1", "s3"],
        ),
        (
            q(json!([{"field":"width","operation":"lessthannumber","value":1920}])),
            vec!["s2"],
        ),
        (
            q(json!([{"field":"width","operation":"betweennumbers","value":"800-1920"}])),
            vec!["s2", "s3"],
        ),
        (
            q(json!([{"field":"width","operation":"betweennumbers","lowval":"1000","highval":"5000"}])),
            vec!["s1", "s3"],
        ),
        (
            q(json!([{"field":"width","operation":"equaltonumber","value":"800"}])),
            vec!["s2"],
        ),
        (
            q(json!([{"field":"assetcreationdate","operation":"beforedate","value":"2019-07-15"}])),
            vec!["s1"],
        ),
        (
            q(json!([{"field":"assetcreationdate","operation":"afterdate","value":"2019-07-15"}])),
            vec!["s3"],
        ),
        (
            q(
                json!([{"field":"assetcreationdate","operation":"betweendates","after":"2015-01-01","before":"2019-07-15"}]),
            ),
            vec!["s1", "s2"],
        ),
        (
            q(json!([{"field":"assetcreationdate","operation":"equals","value":"2021-12-31"}])),
            vec!["s3"],
        ),
        (
            q(json!([{"field":"assetaddeddate","operation":"before7"}])),
            vec!["s1", "s2", "s3", "s4"],
        ),
        (q(json!([{"field":"assetaddeddate","operation":"after7"}])), vec![]),
        (
            json!({"dateformat":"dd/MM/yyyy","query":{"terms":[{"field":"assetcreationdate","operation":"betweendates","after":"01/01/2019","before":"31/12/2021"}]}}),
            vec!["s2", "s3"],
        ),
        (
            json!({"assetcreationdate.after":"2020-01-01","assetcreationdate.before":"2022-01-01","query":{"terms":[{"field":"assetcreationdate","operation":"betweendates"}]}}),
            vec!["s3"],
        ),
        (
            json!({"querytype":"or","query":{"terms":[{"field":"keywords","value":"cat"},{"field":"assettype","value":"document"}]}}),
            vec!["s3", "s4"],
        ),
        (
            json!({"orqueries":[{"terms":[{"field":"keywords","value":"red"}]},{"terms":[{"field":"id","value":"s4"}]}]}),
            vec!["s1", "s4"],
        ),
        (
            q(json!([{"field":"id","operation":"matches","value":"*"},{"field":"editstatus","value":"6"}])),
            vec!["s1"],
        ),
    ];
    for (body, want) in cases {
        assert_eq!(ids(&s, &key, body.clone()).await, want, "{body}");
    }
    s.stop().await;
}

#[tokio::test]
async fn sorting_and_the_echoed_query() {
    let s = TestServer::start().await;
    let key = s.login().await;
    seed(&s, &key).await;
    let order = |a: &crate::harness::Answer| -> Vec<String> {
        a.json["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect()
    };
    let a = s
        .post(
            "module/asset/search",
            &key,
            r#"{"sortby":"widthDown","query":{"terms":[{"field":"width","operation":"exists"}]}}"#,
        )
        .await;
    assert_eq!(order(&a), ["s1", "s3", "s2"]);
    let a = s.post("module/asset/search", &key, r#"{"assetsortby":"assetcreationdateUp","query":{"terms":[{"field":"assetcreationdate","operation":"exists"}]}}"#).await;
    assert_eq!(order(&a), ["s1", "s2", "s3"]);
    let a = s
        .post("module/asset/search", &key, r#"{"sortby":["assettypeUp","nameDown"]}"#)
        .await;
    assert_eq!(order(&a), ["s4", "s1", "s2", "s3"]);
    let a = s
        .post(
            "module/asset/search",
            &key,
            r#"{"query":{"terms":[{"field":"keywords","operation":"orsgroup","values":["red","cat"]}]}}"#,
        )
        .await;
    assert_eq!(
        a.json["response"]["query"]["terms"],
        json!([{"id":"keywords","operation":"orgroup","values":["red","cat"]}])
    );
    assert!(a.json["response"]["query"]["friendly"]
        .as_str()
        .unwrap()
        .contains("Keywords"));
    s.stop().await;
}

#[tokio::test]
async fn facets_count_what_matches_and_follow_deletes() {
    let s = TestServer::start().await;
    let key = s.login().await;
    seed(&s, &key).await;
    let facet = |a: &crate::harness::Answer, field: &str| -> Value {
        a.json["filteroptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == field)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let all = s.post("module/asset/search", &key, r#"{"showfilters":"true"}"#).await;
    let types = facet(&all, "assettype");
    assert_eq!(types["name"], "Asset Type");
    assert_eq!(types["children"][0], json!({"id":"photo","name":"Photo","count":"2"}));
    assert_eq!(
        facet(&all, "keywords")["children"][0],
        json!({"id":"bird","name":"bird","count":"2"})
    );
    assert_eq!(facet(&all, "owner")["children"][0]["count"], "4");
    // Filtered: only what the query selects.
    let f = s
        .post(
            "module/asset/search",
            &key,
            r#"{"showfilters":true,"query":{"terms":[{"field":"keywords","value":"bird"}]}}"#,
        )
        .await;
    assert_eq!(
        facet(&f, "assettype")["children"],
        json!([{"id":"photo","name":"Photo","count":"2"}])
    );
    // A delete leaves the counts at once; a restore brings it back.
    s.post("module/asset/deleteassets", &key, r#"{"assetid":"s2"}"#).await;
    let all = s.post("module/asset/search", &key, r#"{"showfilters":"true"}"#).await;
    assert_eq!(facet(&all, "assettype")["children"][0]["count"], "1");
    assert_eq!(all.json["response"]["totalhits"], json!(3));
    s.post("module/asset/trash/restore", &key, r#"{"assetid":"s2"}"#).await;
    // An edit moves the counts too.
    s.call(
        Method::PUT,
        "module/asset/data/s3",
        Some(&key),
        Some(r#"{"assettype":"photo"}"#),
    )
    .await;
    let all = s.post("module/asset/search", &key, r#"{"showfilters":"true"}"#).await;
    assert_eq!(
        facet(&all, "assettype")["children"][0],
        json!({"id":"photo","name":"Photo","count":"3"})
    );
    // Purging a live asset outright keeps the counts right.
    s.post("module/asset/trash/purge", &key, r#"{"assetid":"s1"}"#).await;
    let all = s.post("module/asset/search", &key, r#"{"showfilters":"true"}"#).await;
    assert_eq!(facet(&all, "assettype")["children"][0]["count"], "2");
    assert!(all.json.get("filteroptions").is_some());
    let none = s.post("module/asset/search", &key, "{}").await;
    assert!(none.json.get("filteroptions").is_none());
    s.stop().await;
}

/// Pages of a date sort cross from the assets holding a date to those without one
/// (PostgreSQL reads them in two steps), and the full-text index follows deletes.
#[tokio::test]
async fn date_pages_and_words_follow_writes() {
    let s = TestServer::start().await;
    let key = s.login().await;
    for i in 0..7 {
        let body = json!({"id":format!("d{i}"),"sourcepath":format!("d/{i}"),"name":format!("Zebra crossing {i}"),
            "assetcreationdate":format!("201{i}-05-01")});
        let a = s.post("module/asset/create", &key, &body.to_string()).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    for i in 0..5 {
        let body = json!({"id":format!("u{i}"),"sourcepath":format!("u/{i}"),"name":format!("Undated lion {i}")});
        let a = s.post("module/asset/create", &key, &body.to_string()).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    let page = |n: u32| {
        json!({"hitsperpage":"5","page":n.to_string(),"sortby":"assetcreationdateDown",
               "query":{"terms":[{"field":"id","operation":"matches","value":"*"}]}})
    };
    let order = |a: &crate::harness::Answer| -> Vec<String> {
        a.json["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut seen = Vec::new();
    for n in 1..=3 {
        let a = s.post("module/asset/search", &key, &page(n).to_string()).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.json["response"]["totalhits"], json!(12));
        seen.extend(order(&a));
    }
    assert_eq!(
        seen,
        ["d6", "d5", "d4", "d3", "d2", "d1", "d0", "u4", "u3", "u2", "u1", "u0"]
    );
    let up = json!({"hitsperpage":"4","page":"2","sortby":"assetcreationdateUp"});
    let a = s.post("module/asset/search", &key, &up.to_string()).await;
    assert_eq!(order(&a), ["d4", "d5", "d6", "u4"]);

    let words = |op: &str, value: &str| json!({"hitsperpage":"100","query":{"terms":[{"field":"description","operation":op,"value":value}]}});
    assert_eq!(ids(&s, &key, words("freeform", "zebra")).await.len(), 7);
    assert_eq!(ids(&s, &key, words("startswith", "zeb")).await.len(), 7);
    assert_eq!(ids(&s, &key, words("contains", "ebr")).await.len(), 7);
    assert_eq!(
        ids(&s, &key, words("freeform", "\"zebra crossing\" lion")).await.len(),
        0
    );
    assert_eq!(ids(&s, &key, words("matches", "crossing 3")).await, ["d3"]);
    assert!(ids(&s, &key, words("freeform", "zeb")).await.is_empty());
    s.post("module/asset/deleteassets", &key, r#"{"assetid":"d3"}"#).await;
    let a = s
        .post("module/asset/search", &key, &words("freeform", "zebra").to_string())
        .await;
    assert_eq!(a.json["response"]["totalhits"], json!(6));
    assert!(ids(&s, &key, words("matches", "crossing 3")).await.is_empty());
    s.post("module/asset/trash/restore", &key, r#"{"assetid":"d3"}"#).await;
    assert_eq!(ids(&s, &key, words("matches", "crossing 3")).await, ["d3"]);
    s.stop().await;
}

#[tokio::test]
async fn every_search_stays_in_its_catalog() {
    let s = TestServer::start_with(|c| c.sites = vec!["assets".into(), "other".into()]).await;
    let key = s.login().await;
    for (site, id) in [("assets", "c1"), ("other", "c2"), ("other", "c3")] {
        let body = json!({"id": id, "sourcepath": format!("p/{id}"), "name": "zebra crossing",
            "keywords": ["zebra"], "longcaption": "stripes"});
        let a = s.post_site(site, "module/asset/create", &key, &body.to_string()).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    let shapes = [
        json!({"field": "description", "operation": "freeform", "value": "zebra"}),
        json!({"field": "description", "operation": "freeform", "value": "zebra stripes"}),
        json!({"field": "keywords", "operation": "matches", "value": "zebra"}),
        json!({"field": "keywords", "operation": "orsgroup", "value": "zebra|horse"}),
        json!({"field": "name", "operation": "startswith", "value": "zeb"}),
    ];
    for term in shapes {
        for (site, want) in [("assets", vec!["c1"]), ("other", vec!["c2", "c3"])] {
            let body = json!({"hitsperpage": "100", "query": {"terms": [term]}});
            let a = s.post_site(site, "module/asset/search", &key, &body.to_string()).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            let mut got: Vec<&str> = a.json["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_str().unwrap())
                .collect();
            got.sort();
            assert_eq!(got, want, "{site}: {term}");
            assert_eq!(a.json["response"]["totalhits"], json!(want.len()), "{site}: {term}");
        }
    }
}
