//! The import pipeline over HTTP: metadata into fields, renditions in `downloads[]` and
//! the `generated/` URLs, rotate, conversions, hostile images, and nothing for the dead.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) fn require_tool(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("MEDIADB_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("{tool} is required (MEDIADB_REQUIRE_ALL=1) but not installed");
        }
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

/// Polls an asset until its import has ended.
pub(crate) async fn imported(s: &TestServer, key: &str, id: &str) -> Value {
    for _ in 0..1200 {
        let a = s.get(&format!("module/asset/data/{id}"), Some(key)).await;
        let st = a.json["data"]["importstatus"]["id"].as_str().unwrap_or("").to_string();
        let ps = a.json["data"]["previewstatus"]["id"].as_str().unwrap_or("").to_string();
        if (st == "complete" || st == "error") && ps != "converting" && ps != "0" {
            return a.json["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the import of {id} did not end");
}

pub(crate) async fn get_bytes(
    s: &TestServer,
    key: &str,
    url: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let r = s
        .client
        .get(format!("{}{url}", s.base))
        .header("X-entermedia.key", key)
        .send()
        .await
        .unwrap();
    let (st, h) = (r.status(), r.headers().clone());
    (st, h, r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_gets_metadata_and_renditions() {
    let s = TestServer::start().await;
    let key = s.login().await;
    let files_before = s.blob_files().len();
    let a = s
        .upload(
            &key,
            "media/DSC00750.jpg",
            r#"{"id":"p1","sourcepath":"Photos/","longcaption":"mine"}"#,
        )
        .await;
    assert_eq!(a.json["data"]["importstatus"]["id"], "created");
    let d = imported(&s, &key, "p1").await;
    assert_eq!(d["importstatus"]["id"], "complete", "{d}");
    assert_eq!(d["previewstatus"]["id"], "2");
    assert_eq!(d["longcaption"], "mine", "the uploader's value wins");
    assert!(d["width"].as_str().unwrap().parse::<u32>().unwrap() > 1000, "{d}");
    assert!(d["cameramake"].is_string(), "camera make read from EXIF: {d}");
    let downloads = d["downloads"].as_array().unwrap();
    let ids: Vec<&str> = downloads.iter().map(|x| x["id"].as_str().unwrap()).collect();
    for p in ["thumbimage", "mediumimage", "largeimage", "imagecrop", "webpthumbimage"] {
        assert!(ids.contains(&p), "{p} in {ids:?}");
    }
    let thumb = downloads.iter().find(|x| x["id"] == "thumbimage").unwrap();
    assert_eq!(
        thumb["url"],
        "/assets/mediadb/services/module/asset/generated/Photos/DSC00750.jpg/image200x200.jpg"
    );
    assert_eq!(
        thumb["download"],
        "/assets/mediadb/services/module/asset/generate/Photos/DSC00750.jpg/image200x200.jpg/DSC00750T.jpg"
    );
    let (st, h, bytes) = get_bytes(&s, &key, thumb["url"].as_str().unwrap()).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(h["cache-control"], "private, no-cache");
    let img = image::load_from_memory(&bytes).unwrap();
    assert!(img.width() <= 200 && img.height() <= 200 && img.width().max(img.height()) == 200);
    let (st, h, _) = get_bytes(&s, &key, thumb["download"].as_str().unwrap()).await;
    assert_eq!(st, StatusCode::OK);
    assert!(h["content-disposition"].to_str().unwrap().starts_with("attachment"));

    // The conversions list and the preset table.
    let l = s
        .post("module/asset/media/listconversions", &key, r#"{"assetid":"p1"}"#)
        .await;
    assert_eq!(l.status, StatusCode::OK, "{}", l.text);
    assert!(l.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["iscomplete"] == "true"));
    let p = s.post("lists/search/convertpreset", &key, "{}").await;
    assert_eq!(p.json["response"]["totalhits"], json!(8));

    // Rotate: the new size is answered and the thumbnail changes (a new ETag).
    let old_etag = h_etag(&s, &key, thumb["url"].as_str().unwrap()).await;
    let (w0, h0) = (
        d["width"].as_str().unwrap().to_string(),
        d["height"].as_str().unwrap().to_string(),
    );
    let r = s
        .post(
            "module/asset/media/rotateasset",
            &key,
            r#"{"assetid":"p1","rotate":"90"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["response"]["width"].to_string(), h0.to_string(), "{}", r.text);
    assert_eq!(r.json["response"]["height"].to_string(), w0.to_string());
    assert_ne!(h_etag(&s, &key, thumb["url"].as_str().unwrap()).await, old_etag);
    assert_eq!(
        s.post(
            "module/asset/media/rotateasset",
            &key,
            r#"{"assetid":"p1","rotate":"45"}"#
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );

    // A metadata edit keeps the renditions.
    s.call(
        reqwest::Method::PUT,
        "module/asset/data/p1",
        Some(&key),
        Some(r#"{"assettitle":"x"}"#),
    )
    .await;
    let g = s.get("module/asset/data/p1", Some(&key)).await;
    assert_eq!(g.json["data"]["downloads"].as_array().unwrap().len(), downloads.len());

    // Remove the images; convert them again.
    let r = s
        .post("module/asset/media/removeassetimages", &key, r#"{"assetid":"p1"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        get_bytes(&s, &key, thumb["url"].as_str().unwrap()).await.0,
        StatusCode::NOT_FOUND
    );
    let c = s
        .post(
            "module/asset/media/convertasset",
            &key,
            r#"{"assetid":"p1","presetid":"largeimage"}"#,
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert!(c.json["results"]["path"]
        .as_str()
        .unwrap()
        .ends_with("image3000x3000.jpg/DSC00750L.jpg"));
    let d = imported(&s, &key, "p1").await;
    assert!(!d["downloads"].as_array().unwrap().is_empty());

    // After a delete: renditions, conversions and rotation are all 404.
    s.post("module/asset/deleteassets", &key, r#"{"assetid":"p1"}"#).await;
    let (st, h, _) = get_bytes(&s, &key, thumb["url"].as_str().unwrap()).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(h["cache-control"], "no-store");
    for path in [
        "module/asset/media/convertasset",
        "module/asset/media/rotateasset",
        "module/asset/media/listconversions",
        "module/asset/media/removeassetimages",
    ] {
        assert_eq!(
            s.post(path, &key, r#"{"assetid":"p1"}"#).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // Purging removes the original and every rendition.
    assert!(s.blob_files().len() > files_before + 1);
    assert_eq!(
        s.post("module/asset/trash/purge", &key, r#"{"assetid":"p1"}"#)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(s.blob_files().len(), files_before, "{:?}", s.blob_files());
    s.stop().await;
}

async fn h_etag(s: &TestServer, key: &str, url: &str) -> String {
    get_bytes(s, key, url).await.1["etag"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_unsupported_files_end_honestly() {
    let s = TestServer::start().await;
    let key = s.login().await;
    // A 40000x40000 PNG header: refused before decoding, with a readable reason.
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend_from_slice(&40000u32.to_be_bytes());
    png.extend_from_slice(&40000u32.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    png.extend_from_slice(&[0u8; 2000]);
    let form = reqwest::multipart::Form::new()
        .text("jsonrequest", r#"{"id":"bomb"}"#)
        .part("file", reqwest::multipart::Part::bytes(png).file_name("bomb.png"));
    let r = s
        .client
        .post(s.url("module/asset/create"))
        .header("X-entermedia.key", &key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let a = answer(r).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(
        a.json["response"]["details"].as_str().unwrap().contains("40000x40000"),
        "{}",
        a.text
    );
    assert_eq!(
        s.get("module/asset/data/bomb", Some(&key)).await.status,
        StatusCode::NOT_FOUND
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(s.blob_files().is_empty(), "nothing stored: {:?}", s.blob_files());
    // A file with no renditions (plain text): the type's icon, not an error.
    let r = s
        .post_file(
            "module/asset/create",
            &key,
            &[("jsonrequest", r#"{"id":"doc"}"#)],
            "notes.txt",
            b"minutes of the meeting\n".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let d = imported(&s, &key, "doc").await;
    assert_eq!(d["importstatus"]["id"], "complete");
    assert_eq!(d["previewstatus"]["id"], "mime");
    // The server still answers.
    assert_eq!(s.search_all(&key).await.status, StatusCode::OK);
    s.stop().await;
}

/// `max_image_pixels` (flag, env, TOML) moves the limit: with it between the sizes of two
/// photos, the smaller one is imported with renditions and the larger one refused at upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pixel_limit_is_configurable() {
    // test-asset-02.jpg is 1280x1873 (2,397,440 pixels), test-asset-01.jpg 1920x1281 (2,459,520).
    let s = TestServer::start_with(|c| c.max_image_pixels = 2_400_000).await;
    let key = s.login().await;
    let a = s.upload(&key, "media/test-asset-02.jpg", r#"{"id":"under"}"#).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let d = imported(&s, &key, "under").await;
    assert_eq!(d["importstatus"]["id"], "complete", "{d}");
    assert_eq!(d["previewstatus"]["id"], "2", "{d}");
    let a = s.upload(&key, "media/test-asset-01.jpg", r#"{"id":"over"}"#).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    let details = a.json["response"]["details"].as_str().unwrap_or_default();
    assert!(
        details.contains("1920x1281") && details.contains("limit of 2400000"),
        "{}",
        a.text
    );
    assert_eq!(
        s.get("module/asset/data/over", Some(&key)).await.status,
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_gets_a_first_page_preview() {
    if !require_tool("pdftoppm") {
        return;
    }
    let s = TestServer::start().await;
    let key = s.login().await;
    s.upload(&key, "media/junitsampler_tutorial.pdf", r#"{"id":"pdf"}"#)
        .await;
    let d = imported(&s, &key, "pdf").await;
    assert_eq!(d["previewstatus"]["id"], "2", "{d}");
    assert!(d["pages"].as_str().unwrap().parse::<u32>().unwrap() >= 1);
    let thumb = d["downloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "thumbimage")
        .cloned()
        .unwrap();
    assert_eq!(
        get_bytes(&s, &key, thumb["url"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversion_finishing_after_a_delete_recreates_nothing() {
    let s = TestServer::start().await;
    let key = s.login().await;
    let files_before = s.blob_files().len();
    for i in 0..4 {
        s.upload(&key, "media/DSC01154.jpg", &format!(r#"{{"id":"gone{i}"}}"#))
            .await;
        // Delete while the import is (likely) running, and purge the original.
        s.post(
            "module/asset/deleteassets",
            &key,
            &format!(r#"{{"assetid":"gone{i}","deleteoriginal":"true"}}"#),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..1200 {
        if s.blob_files().len() == files_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        s.blob_files().len(),
        files_before,
        "renditions of deleted assets are not kept"
    );
    assert_eq!(s.search_all(&key).await.json["response"]["totalhits"], json!(0));
    assert_eq!(
        s.post("module/asset/trash/search", &key, "{}").await.json["response"]["totalhits"],
        json!(0)
    );
    s.stop().await;
}
