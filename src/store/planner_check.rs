//! The search planner's shortcuts (index-only totals, maintained word and value counts,
//! unions, probes, packed facets) must answer exactly what the in-memory evaluator does,
//! after every kind of write. One scenario for every backend: random assets are
//! bulk-loaded and inserted, updated, trashed, restored and purged, then searched with
//! every driver shape and page read, live and in the trash. Each backend's test module
//! runs it on a store of its own and adds checks of its own bookkeeping.

use crate::domain::asset::Asset;
use crate::domain::fields::FieldKind;
use crate::domain::query::{self, Query};
use crate::domain::query_eval;
use crate::ops::assets::field_info;
use crate::store::{field_kind, MetaStore, Scope};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

const CAPTION: &[&str] = &["harbor", "sunset", "river", "bridge", "forest", "night"];

fn asset(i: usize, rng: &mut StdRng) -> Asset {
    let mut f = Map::new();
    let pick = |rng: &mut StdRng| CAPTION[rng.gen_range(0..CAPTION.len())];
    f.insert("name".into(), json!(format!("{} {}", pick(rng), pick(rng))));
    f.insert(
        "longcaption".into(),
        json!(format!("{} {} {}", pick(rng), pick(rng), pick(rng))),
    );
    if rng.gen_bool(0.9) {
        f.insert(
            "assettype".into(),
            json!(["photo", "video", "document"][rng.gen_range(0..3)]),
        );
    }
    let kws: Vec<Value> = (0..rng.gen_range(0..4))
        .map(|_| json!(format!("kw{}", rng.gen_range(0..8))))
        .collect();
    if !kws.is_empty() {
        f.insert("keywords".into(), Value::Array(kws));
    }
    let day = rng.gen_range(1..=28);
    f.insert(
        "assetaddeddate".into(),
        json!(format!("2020-02-{day:02}T10:00:00.000Z")),
    );
    f.insert("width".into(), json!(rng.gen_range(100..5000).to_string()));
    Asset {
        id: format!("a{i:04}"),
        sourcepath: format!("t/{i}.jpg"),
        fields: f,
        original: None,
    }
}

/// Runs the scenario on an empty, migrated store. `other_catalog` adds a second catalog
/// holding copies of some assets (whose words and values must never be counted here).
pub async fn writes_then_searches(store: &dyn MetaStore, other_catalog: bool) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut assets: Vec<Asset> = (0..400).map(|i| asset(i, &mut rng)).collect();
    store.bulk_load_begin().await.unwrap();
    store.insert_assets_bulk("assets", &assets[..300]).await.unwrap();
    store.bulk_load_end().await.unwrap();
    for a in &assets[300..] {
        store.insert_asset("assets", a, &[]).await.unwrap();
    }
    if other_catalog {
        // Another catalog with the same words and values: never counted here.
        store.insert_assets_bulk("other", &assets[..50]).await.unwrap();
    }
    // Updates change words and values (the text of every tenth asset).
    for i in (0..400).step_by(10) {
        let mut a = assets[i].clone();
        a.fields
            .insert("longcaption".into(), json!(format!("harbor moonrise {i}")));
        a.fields.insert("keywords".into(), json!(["kw9", "kw1"]));
        store.update_asset("assets", &a, 1, &[], None).await.unwrap();
        assets[i] = a;
    }
    // Updates of a number only: text, facets and other values stay as they were.
    for i in (13..400).step_by(13).filter(|i| i % 10 != 0) {
        let mut a = assets[i].clone();
        a.fields.insert("width".into(), json!("4950"));
        store.update_asset("assets", &a, 1, &[], None).await.unwrap();
        assets[i] = a;
    }
    let trashed: Vec<String> = assets.iter().step_by(7).map(|a| a.id.clone()).collect();
    store.trash_assets("assets", &trashed, "admin", &[]).await.unwrap();
    store.restore_assets("assets", &trashed[..3]).await.unwrap();
    // Purged: one live, one from the trash.
    store.purge_asset("assets", &assets[401 % 400].id).await.unwrap();
    store.purge_asset("assets", &trashed[5]).await.unwrap();
    let mut gone: Vec<&String> = trashed[3..].iter().collect();
    gone.push(&assets[1].id);
    let kind = |f: &str| field_kind(f).unwrap_or(FieldKind::Keyword);

    let bodies = [
        json!({"field":"keywords","operation":"matches","value":"kw3"}),
        json!({"field":"keywords","operation":"orsgroup","values":["kw1","kw2","kw7"]}),
        // Repeated values (also differing in case), a value no asset has, and a
        // single-valued field, whose values' assets are disjoint.
        json!({"field":"keywords","operation":"orsgroup","values":["kw1","KW1","kw2","nothere","kw1"]}),
        json!({"field":"keywords","operation":"orsgroup","values":["kw0","kw1","kw2","kw3","kw4","kw5","kw6","kw7","kw9"]}),
        json!({"field":"assettype","operation":"orsgroup","values":["photo","document","photo"]}),
        json!({"field":"keywords","operation":"matches","value":"kw4|kw5"}),
        json!({"field":"keywords","operation":"startswith","value":"kw"}),
        json!({"field":"keywords","operation":"contains","value":"w5"}),
        json!({"field":"assettype","operation":"matches","value":"photo"}),
        json!({"field":"assettype","operation":"matches","value":"photo|video"}),
        json!({"field":"assettype","operation":"exists"}),
        json!({"field":"assettype","operation":"missing"}),
        json!({"field":"assetaddeddate","operation":"betweendates","after":"2020-02-02","before":"2020-02-27"}),
        json!({"field":"assetaddeddate","operation":"afterdate","value":"2020-02-25"}),
        json!({"field":"width","operation":"greaterthannumber","value":"4900"}),
        json!({"field":"description","operation":"freeform","value":"harbor"}),
        json!({"field":"description","operation":"freeform","value":"Moonrise"}),
        json!({"field":"description","operation":"freeform","value":"nowhere"}),
        json!({"field":"description","operation":"matches","value":"river"}),
        json!({"field":"description","operation":"freeform","value":"harbor night"}),
        json!({"field":"description","operation":"startswith","value":"sun"}),
        json!({"field":"longcaption","operation":"matches","value":"river"}),
        json!({"field":"name","operation":"freeform","value":"forest"}),
    ];
    for term in bodies {
        for (page, per) in [(1, 20), (3, 7), (1, 1000), (40, 5)] {
            let body =
                json!({"page": page.to_string(), "hitsperpage": per.to_string(), "query": {"terms": [term.clone()]}});
            let req = query::parse_search(body.as_object().unwrap(), "asset", &field_info).unwrap();
            let got = store.search_assets("assets", &req, Scope::Live).await.unwrap();
            let mut want: Vec<&Asset> = assets
                .iter()
                .filter(|a| !gone.contains(&&a.id))
                .filter(|a| {
                    let mut rec = a.fields.clone();
                    rec.insert("sourcepath".into(), json!(a.sourcepath));
                    query_eval::matches(&req.query, &rec, &kind)
                })
                .collect();
            assert_eq!(got.total, want.len() as u64, "total of {term}");
            // Newest first (seq order: the order of insertion), then the page.
            want.reverse();
            let want_ids: Vec<&str> = want
                .iter()
                .skip(((page - 1) * per) as usize)
                .take(per as usize)
                .map(|a| a.id.as_str())
                .collect();
            let got_ids: Vec<&str> = got.hits.iter().map(|a| a.id.as_str()).collect();
            assert_eq!(got_ids, want_ids, "page {page}x{per} of {term}");
            // Sorted by a field: the driver only counts; the page is read in that order.
            let sorted = json!({"page": "1", "hitsperpage": "1000", "sortby": "assetaddeddateUp", "query": {"terms": [term.clone()]}});
            let sreq = query::parse_search(sorted.as_object().unwrap(), "asset", &field_info).unwrap();
            let sgot = store.search_assets("assets", &sreq, Scope::Live).await.unwrap();
            assert_eq!(sgot.total, want.len() as u64, "sorted total of {term}");
            let mut sids: Vec<&str> = sgot.hits.iter().map(|a| a.id.as_str()).collect();
            let mut all_ids: Vec<&str> = want.iter().map(|a| a.id.as_str()).collect();
            sids.sort();
            all_ids.sort();
            assert_eq!(sids, all_ids, "sorted hits of {term}");
            if req.query != Query::All {
                let facets = store.facet_counts("assets", &req, &["assettype"], 10).await.unwrap();
                let photos = want
                    .iter()
                    .filter(|a| a.fields.get("assettype") == Some(&json!("photo")))
                    .count();
                let counted = facets[0]
                    .1
                    .iter()
                    .find(|(v, _)| v == "photo")
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                assert_eq!(counted, photos as u64, "photo facet of {term}");
                // A multi-valued field, every value: each matching asset counts each of
                // its keywords once.
                let facets = store.facet_counts("assets", &req, &["keywords"], 100).await.unwrap();
                let mut expected = std::collections::BTreeMap::<String, u64>::new();
                for a in &want {
                    let mut kws: Vec<&str> = a
                        .fields
                        .get("keywords")
                        .and_then(Value::as_array)
                        .map(|k| k.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    kws.sort();
                    kws.dedup();
                    for k in kws {
                        *expected.entry(k.to_string()).or_default() += 1;
                    }
                }
                let got: std::collections::BTreeMap<String, u64> = facets[0].1.iter().cloned().collect();
                assert_eq!(got, expected, "keyword facets of {term}");
            }
        }
        // The trash: its own value rows, never the live ones.
        let body = json!({"hitsperpage": "1000", "query": {"terms": [term.clone()]}});
        let req = query::parse_search(body.as_object().unwrap(), "asset", &field_info).unwrap();
        let got = store.search_assets("assets", &req, Scope::Trash).await.unwrap();
        let want = assets
            .iter()
            .filter(|a| gone.contains(&&a.id) && a.id != assets[1].id && a.id != trashed[5])
            .filter(|a| {
                let mut rec = a.fields.clone();
                rec.insert("sourcepath".into(), json!(a.sourcepath));
                query_eval::matches(&req.query, &rec, &kind)
            })
            .count();
        assert_eq!(got.total, want as u64, "trash total of {term}");
        assert_eq!(got.hits.len(), want, "trash hits of {term}");
    }
    // The whole scope newest first, live and in the trash: by date (set on create and
    // read-only, so every asset has one; updates above rewrote the rows), ties newest
    // first; every page.
    for scope in [Scope::Live, Scope::Trash] {
        let mut want: Vec<(usize, &Asset)> = assets
            .iter()
            .enumerate()
            .filter(|(_, a)| match scope {
                Scope::Live => !gone.contains(&&a.id),
                Scope::Trash => gone.contains(&&a.id) && a.id != assets[1].id && a.id != trashed[5],
            })
            .collect();
        let date = |a: &Asset| a.fields["assetaddeddate"].as_str().unwrap().to_string();
        want.sort_by(|(i, a), (j, b)| date(b).cmp(&date(a)).then(j.cmp(i)));
        let want: Vec<&str> = want.iter().map(|(_, a)| a.id.as_str()).collect();
        for (page, per) in [(1, 20), (3, 7), (1, 1000), (17, 20), (60, 5)] {
            let body = json!({"page": page.to_string(), "hitsperpage": per.to_string(), "sortby": "assetaddeddateDown",
                              "query": {"terms": [{"field": "id", "operation": "matches", "value": "*"}]}});
            let req = query::parse_search(body.as_object().unwrap(), "asset", &field_info).unwrap();
            let got = store.search_assets("assets", &req, scope).await.unwrap();
            let got: Vec<&str> = got.hits.iter().map(|a| a.id.as_str()).collect();
            let page_of: Vec<&str> = want.iter().skip((page - 1) * per).take(per).copied().collect();
            assert_eq!(got, page_of, "newest first, page {page}x{per}, {scope:?}");
        }
    }
    assert_eq!(
        store.count_assets("assets", Scope::Live).await.unwrap(),
        400 - gone.len() as u64
    );
    assert_eq!(
        store.count_assets("assets", Scope::Trash).await.unwrap(),
        gone.len() as u64 - 2
    );
}
