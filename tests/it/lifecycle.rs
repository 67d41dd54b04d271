//! The asset lifecycle of the EnterMediaDB documentation: log in, upload, find, read,
//! edit, download, delete, and everything gone afterwards.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const PHOTO: &str = "media/DSC00750.jpg";

fn is_emdb_date(s: &str) -> bool {
    // yyyy-MM-dd'T'HH:mm:ss.SSSZ
    s.len() == 24 && s.as_bytes()[10] == b'T' && s.ends_with('Z') && s.as_bytes()[19] == b'.'
}

#[tokio::test]
async fn upload_find_edit_download_delete() {
    // No import job runs here, so the record stays exactly as created.
    let s = TestServer::start_with(|c| c.workers = 0).await;
    let key = s.login().await;
    let original = fixture_bytes(PHOTO);

    // Upload, as the EMDB documentation's curl example does.
    let a = s
        .upload(
            &key,
            PHOTO,
            r#"{"sourcepath":"Clients/TK2/2020-6/","keywords":["bird"],"id":"101"}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["response"], json!({"status":"ok","id":"101"}));
    assert!(a.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let d = &a.json["data"];
    assert_eq!(d["id"], "101");
    assert_eq!(d["name"], "DSC00750.jpg");
    assert_eq!(d["sourcepath"], "Clients/TK2/2020-6/DSC00750.jpg");
    assert_eq!(d["fileformat"], json!({"id":"jpg","name":"JPG"}));
    assert_eq!(d["assettype"], json!({"id":"photo","name":"Photo"}));
    assert_eq!(d["filesize"], json!(original.len().to_string()));
    assert_eq!(d["md5hex"], json!(md5_hex(&original)));
    assert_eq!(d["owner"]["id"], "admin");
    assert_eq!(d["keywords"], json!([{"id":"bird"}]));
    assert_eq!(d["editstatus"], json!({"id":"1","name":"Pending"}));
    assert!(d["importstatus"]["id"].is_string());
    assert!(d["previewstatus"]["id"].is_string());
    assert!(
        is_emdb_date(d["assetaddeddate"].as_str().unwrap()),
        "{}",
        d["assetaddeddate"]
    );
    assert_eq!(d["mediarendertype"], "image");
    assert_eq!(d["originalurl"], "Clients/TK2/2020-6/DSC00750.jpg/DSC00750.jpg");
    assert_eq!(d["downloads"], json!([]));

    // Find it.
    let r = s.search_all(&key).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["response"]["totalhits"], json!(1));
    assert_eq!(r.json["response"]["hitsperpage"], json!(100));
    assert_eq!(r.json["response"]["page"], json!(1));
    assert_eq!(r.json["response"]["pages"], json!(1));
    assert_eq!(r.json["response"]["searchtype"], "asset");
    assert_eq!(
        r.json["response"]["query"]["terms"],
        json!([{"id":"id","operation":"matches","value":"*"}])
    );
    assert_eq!(r.json["results"][0], *d);
    for (field, op, value, hits) in [
        ("keywords", "matches", "bird", 1),
        ("keywords", "matches", "BIRD", 1),
        ("keywords", "exact", "cat", 0),
        ("name", "matches", "dsc00750", 1),
        ("id", "exact", "101", 1),
        ("fileformat", "matches", "jpg", 1),
    ] {
        let body = json!({"query":{"terms":[{"field":field,"operator":op,"value":value}]}}).to_string();
        let r = s.post("module/asset/search", &key, &body).await;
        assert_eq!(
            r.json["response"]["totalhits"],
            json!(hits),
            "{field} {op} {value}: {}",
            r.text
        );
    }

    // Read and edit it.
    let g = s.get("module/asset/data/101", Some(&key)).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.json["response"], json!({"status":"ok","id":"101"}));
    assert_eq!(g.json["data"], *d);
    let u = s
        .call(
            Method::PUT,
            "module/asset/data/101",
            Some(&key),
            Some(r#"{"longcaption":"A bird on a wire","keywords":"animals|bird","purpose":{"id":"sales","name":"Sales Channel"},"editstatus":6,"headline.fr":"Oiseau",}"#),
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.text);
    assert_eq!(u.json["data"]["longcaption"], "A bird on a wire");
    assert_eq!(u.json["data"]["keywords"], json!([{"id":"animals"},{"id":"bird"}]));
    assert_eq!(
        u.json["data"]["purpose"],
        json!([{"id":"sales","name":"Sales Channel"}])
    );
    assert_eq!(u.json["data"]["editstatus"], json!({"id":"6","name":"Approved"}));
    assert_eq!(u.json["data"]["headline"], json!({"fr":"Oiseau"}));
    // EnterMediaDB's `data/index.html` form, with the id in the body.
    let u = s
        .call(
            Method::PUT,
            "module/asset/data/index.html",
            Some(&key),
            Some(r#"{"id":"101","assettitle":"Wire"}"#),
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.text);
    assert_eq!(u.json["data"]["assettitle"], "Wire");
    let r = s
        .post(
            "module/asset/search",
            &key,
            r#"{"query":{"terms":[{"field":"description","operation":"freeform","value":"wire animals"}]}}"#,
        )
        .await;
    assert_eq!(
        r.json["response"]["totalhits"],
        json!(1),
        "an edit is visible to the next search"
    );

    // Download it: whole, a range, revalidation.
    let url = format!(
        "{}/assets/mediadb/services/module/asset/downloads/originals/Clients/TK2/2020-6/DSC00750.jpg/DSC00750.jpg",
        s.base
    );
    let resp = s
        .client
        .get(&url)
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", md5_hex(&original)));
    assert_eq!(resp.headers()["cache-control"], "private, no-cache");
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("DSC00750.jpg"));
    assert_eq!(resp.bytes().await.unwrap().as_ref(), original.as_slice());
    let resp = s
        .client
        .get(&url)
        .header("X-entermedia.key", &key)
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes 100-199/{}", original.len()).as_str()
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &original[100..200]);
    let resp = s
        .client
        .get(&url)
        .header("X-entermedia.key", &key)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    let resp = s
        .client
        .get(format!("{url}?entermedia.key={key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "a key in the query string works for downloads"
    );

    // Delete it with the documentation's body, trailing comma and all.
    let del = s
        .post("module/asset/deleteassets", &key, r#"{"assetid": "101",}"#)
        .await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(del.text, r#"{"response":{"status":"ok","rowsedited":"1"}}"#);

    // Gone from everything, at once.
    assert_eq!(s.search_all(&key).await.json["response"]["totalhits"], json!(0));
    let g = s.get("module/asset/data/101", Some(&key)).await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
    assert_eq!(g.json["response"]["status"], "not found");
    let resp = s
        .client
        .get(&url)
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let u = s
        .call(
            Method::PUT,
            "module/asset/data/101",
            Some(&key),
            Some(r#"{"longcaption":"zombie"}"#),
        )
        .await;
    assert_eq!(
        u.status,
        StatusCode::NOT_FOUND,
        "an update after the delete must not resurrect it"
    );
    let again = s.post("module/asset/deleteassets", &key, r#"{"assetid": "101"}"#).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.json["response"]["rowsedited"], "0");
    assert_eq!(s.search_all(&key).await.json["response"]["totalhits"], json!(0));
    s.stop().await;
}

#[tokio::test]
async fn multipart_variants_and_json_records() {
    let s = TestServer::start().await;
    let key = s.login().await;

    // Metadata in an application/json part, as `-F "json=@source.json;type=application/json"`,
    // placed after the file, and a file field with another name.
    let form = reqwest::multipart::Form::new()
        .part(
            "upload",
            reqwest::multipart::Part::bytes(fixture_bytes("media/test-asset-02.jpg")).file_name("test-asset-02.jpg"),
        )
        .part(
            "json",
            reqwest::multipart::Part::bytes(
                br#"{"sourcepath":"Docs/${filename}","longcaption":"from json part",}"#.to_vec(),
            )
            .file_name("source.json")
            .mime_str("application/json")
            .unwrap(),
        );
    let r = s
        .client
        .post(s.url("module/asset/create.json"))
        .header("X-entermedia.key", &key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let a = answer(r).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["data"]["sourcepath"], "Docs/test-asset-02.jpg");
    assert_eq!(a.json["data"]["longcaption"], "from json part");

    // No sourcepath: a default under the user's name; the same name again gets a twin.
    let a1 = s.upload(&key, "media/test-asset-01.jpg", "{}").await;
    let a2 = s.upload(&key, "media/test-asset-01.jpg", "{}").await;
    let p1 = a1.json["data"]["sourcepath"].as_str().unwrap().to_string();
    let p2 = a2.json["data"]["sourcepath"].as_str().unwrap().to_string();
    assert!(p1.starts_with("admin/") && p1.ends_with("/test-asset-01.jpg"), "{p1}");
    assert!(p2.ends_with("/test-asset-01-2.jpg"), "{p2}");
    assert_ne!(a1.json["data"]["id"], a2.json["data"]["id"]);
    assert_eq!(a1.json["data"]["id"].as_str().unwrap().len(), 20);

    // A document and a PDF get their types.
    let doc = s
        .upload(
            &key,
            "media/vm0808h_video_matrix_switch_ss_en.docx",
            r#"{"sourcepath":"Docs/"}"#,
        )
        .await;
    assert_eq!(doc.json["data"]["assettype"]["id"], "document");
    let pdf = s
        .upload(&key, "media/junitsampler_tutorial.pdf", r#"{"sourcepath":"Docs/"}"#)
        .await;
    assert_eq!(pdf.json["data"]["mediarendertype"], "document");

    // A record without a file, from a JSON body.
    let j = s
        .post(
            "module/asset/create",
            &key,
            r#"{"id":"rec1","sourcepath":"Records/one","longcaption":"no file"}"#,
        )
        .await;
    assert_eq!(j.status, StatusCode::OK, "{}", j.text);
    assert_eq!(j.json["response"], json!({"status":"ok","id":"rec1"}));
    assert!(j.json["data"].get("originalurl").is_none());
    assert_eq!(s.search_all(&key).await.json["response"]["totalhits"], json!(6));

    // Both URL forms address the same catalog.
    let r = s
        .client
        .get(format!("{}/mediadb/services/module/asset/data/rec1", s.base))
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    s.stop().await;
}

/// Uploads of one file name without a sourcepath get the default path, then its twins
/// `-2`, `-3`, ... : each number once, even when the uploads arrive at once, and a number
/// freed by a delete is taken again first.
#[tokio::test]
async fn twins_of_a_default_path_are_numbered_once_each() {
    let s = TestServer::start().await;
    let key = s.login().await;
    let first = s.upload(&key, "media/test-asset-02.jpg", "{}").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let base = first.json["data"]["sourcepath"].as_str().unwrap().to_string();
    let stem = base.strip_suffix(".jpg").unwrap().to_string();
    let uploads = (0..12).map(|_| s.upload(&key, "media/test-asset-02.jpg", "{}"));
    let mut paths: Vec<String> = futures_util::future::join_all(uploads)
        .await
        .into_iter()
        .map(|a| {
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            a.json["data"]["sourcepath"].as_str().unwrap().to_string()
        })
        .collect();
    paths.sort();
    let mut want: Vec<String> = (2..=13).map(|n| format!("{stem}-{n}.jpg")).collect();
    want.sort();
    assert_eq!(paths, want);
    // -5 is deleted: the next upload of the name takes it again, the one after -14.
    let r = s
        .post(
            "module/asset/search",
            &key,
            &json!({"query":{"terms":[{"field":"sourcepath","operation":"exact","value":format!("{stem}-5.jpg")}]}})
                .to_string(),
        )
        .await;
    assert_eq!(r.json["response"]["totalhits"], json!(1), "{}", r.text);
    let id = r.json["results"][0]["id"].as_str().unwrap().to_string();
    let r = s
        .post("module/asset/deleteassets", &key, &json!({"assetid": id}).to_string())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for want in ["-5.jpg", "-14.jpg"] {
        let a = s.upload(&key, "media/test-asset-02.jpg", "{}").await;
        assert_eq!(a.json["data"]["sourcepath"], format!("{stem}{want}"), "{}", a.text);
    }
    s.stop().await;
}

#[tokio::test]
async fn deleteassets_takes_lists_and_names_the_missing() {
    let s = TestServer::start().await;
    let key = s.login().await;
    for id in ["a1", "a2", "a3"] {
        let r = s
            .post(
                "module/asset/create",
                &key,
                &format!(r#"{{"id":"{id}","sourcepath":"x/{id}"}}"#),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = s
        .post(
            "module/asset/deleteassets",
            &key,
            r#"{"assetid":["a1","a2","nope","a1"]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["response"]["rowsedited"], "2");
    assert_eq!(r.json["response"]["notfound"], json!(["nope"]));
    let r = s.search_all(&key).await;
    assert_eq!(r.json["response"]["totalhits"], json!(1));
    assert_eq!(r.json["results"][0]["id"], "a3");
    // DELETE data/{id} works too.
    let r = s.call(Method::DELETE, "module/asset/data/a3", Some(&key), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["response"], json!({"status":"ok","id":"a3"}));
    let r = s.call(Method::DELETE, "module/asset/data/a3", Some(&key), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test]
async fn deleteoriginal_purges_the_file() {
    let s = TestServer::start().await;
    let key = s.login().await;
    let before = s.blob_files().len();
    let a = s.upload(&key, "media/test-asset-02.jpg", r#"{"id":"p1"}"#).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(s.blob_files().len(), before + 1);
    let r = s
        .post(
            "module/asset/deleteassets",
            &key,
            r#"{"assetid":"p1","deleteoriginal":"true"}"#,
        )
        .await;
    assert_eq!(r.json["response"]["rowsedited"], "1", "{}", r.text);
    assert_eq!(s.blob_files().len(), before, "the original is removed at once");
    // The id is free again after a purge.
    let a = s.upload(&key, "media/test-asset-02.jpg", r#"{"id":"p1"}"#).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    s.stop().await;
}

#[tokio::test]
async fn paging_and_hitsessionid() {
    let s = TestServer::start().await;
    let key = s.login().await;
    for i in 0..7 {
        s.post(
            "module/asset/create",
            &key,
            &format!(r#"{{"id":"r{i}","sourcepath":"p/r{i}","longcaption":"item {i}"}}"#),
        )
        .await;
    }
    let r = s
        .post("module/asset/search", &key, r#"{"page":"2","hitsperpage":3,"sortby":"idUp","query":{"terms":[{"field":"id","operation":"matches","value":"*"}]}}"#)
        .await;
    assert_eq!(r.json["response"]["totalhits"], json!(7));
    assert_eq!(r.json["response"]["pages"], json!(3));
    let ids: Vec<&str> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r3", "r4", "r5"]);
    // The hitsessionid pages the same search again, on any server.
    let sid = r.json["response"]["hitsessionid"].as_str().unwrap().to_string();
    let r = s
        .post(
            "module/asset/search",
            &key,
            &json!({"hitssessionid": sid, "page": "3"}).to_string(),
        )
        .await;
    let ids: Vec<&str> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r6"]);
    // `next` and `previous` continue from the page the id was answered for.
    let sid = r.json["response"]["hitsessionid"].as_str().unwrap().to_string();
    let r = s
        .post(
            "module/asset/search",
            &key,
            &json!({"hitssessionid": sid, "page": "previous"}).to_string(),
        )
        .await;
    assert_eq!(r.json["response"]["page"], json!(2), "{}", r.text);
    let sid = r.json["response"]["hitsessionid"].as_str().unwrap().to_string();
    let r = s
        .post(
            "module/asset/search",
            &key,
            &json!({"hitssessionid": sid, "page": "next"}).to_string(),
        )
        .await;
    assert_eq!(r.json["response"]["page"], json!(3));
    let r = s.post("module/asset/search", &key, r#"{"page":"next"}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    s.stop().await;
}
