//! `media/customthumb` over HTTP: an uploaded image becomes the source of an asset's previews
//! until `removeassetimages` or the next custom thumbnail; refusals leave nothing behind.

use crate::harness::*;
use crate::media::{get_bytes, imported};
use reqwest::StatusCode;
use serde_json::Value;

async fn custom_thumb(
    s: &TestServer,
    key: Option<&str>,
    assetid: Option<&str>,
    file: Option<(&str, Vec<u8>)>,
) -> Answer {
    let mut form = reqwest::multipart::Form::new();
    if let Some(id) = assetid {
        form = form.text("assetid", id.to_string());
    }
    if let Some((name, bytes)) = file {
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
    }
    let mut rb = s.client.post(s.url("module/asset/media/customthumb")).multipart(form);
    if let Some(k) = key {
        rb = rb.header("X-entermedia.key", k);
    }
    answer(rb.send().await.unwrap()).await
}

/// The size of the asset's 200 px thumbnail and its ETag.
async fn thumb(s: &TestServer, key: &str, data: &Value) -> (u32, u32, String) {
    let url = data["downloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "thumbimage")
        .unwrap_or_else(|| panic!("no thumbnail: {data}"))["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, h, bytes) = get_bytes(s, key, &url).await;
    assert_eq!(st, StatusCode::OK);
    let img = image::load_from_memory(&bytes).unwrap();
    (img.width(), img.height(), h["etag"].to_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_image_becomes_the_preview_until_the_images_are_removed() {
    let s = TestServer::start().await;
    let key = s.login().await;
    let files_before = s.blob_files().len();
    // A portrait photo (1280x1873); the custom thumbnail is landscape (1920x1281).
    s.upload(&key, "media/test-asset-02.jpg", r#"{"id":"ct","sourcepath":"Thumbs/"}"#)
        .await;
    let d = imported(&s, &key, "ct").await;
    let (w, h, etag0) = thumb(&s, &key, &d).await;
    assert!(h == 200 && w < 200, "portrait thumbnail first: {w}x{h}");

    let r = custom_thumb(
        &s,
        Some(&key),
        Some("ct"),
        Some(("cover.jpg", fixture_bytes("media/test-asset-01.jpg"))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["response"]["status"], "ok");
    assert_eq!(r.json["results"]["asset"], "ct", "wire §7.3 shape: {}", r.text);
    let d = s.get("module/asset/data/ct", Some(&key)).await.json["data"].clone();
    assert_eq!(d["previewstatus"]["id"], "2");
    let (w, h, etag1) = thumb(&s, &key, &d).await;
    assert_eq!((w, h), (200, 133), "the thumbnail is made from the uploaded image");
    assert_ne!(etag1, etag0);
    // The original and its metadata are untouched.
    assert_eq!(d["width"], "1280");
    assert_eq!(d["height"], "1873");
    let (st, _, orig) = get_bytes(
        &s,
        &key,
        "/assets/mediadb/services/module/asset/downloads/originals/Thumbs/test-asset-02.jpg/test-asset-02.jpg",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        orig == fixture_bytes("media/test-asset-02.jpg"),
        "the original is byte for byte the upload"
    );

    // It survives a metadata edit and a new conversion run.
    s.call(
        reqwest::Method::PUT,
        "module/asset/data/ct",
        Some(&key),
        Some(r#"{"assettitle":"cover"}"#),
    )
    .await;
    let c = s
        .post("module/asset/media/convertasset", &key, r#"{"assetid":"ct"}"#)
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    let d = imported(&s, &key, "ct").await;
    assert_eq!(thumb(&s, &key, &d).await.0, 200, "still the custom thumbnail");

    // A second custom thumbnail replaces the first (whose file is removed).
    let files_with_one = s.blob_files().len();
    let r = custom_thumb(
        &s,
        Some(&key),
        Some("ct"),
        Some(("second.png", fixture_bytes("metadata/PNG.png"))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(s.blob_files().len(), files_with_one, "the old custom thumbnail is gone");

    // removeassetimages drops it: the next conversion is from the original again.
    let r = s
        .post("module/asset/media/removeassetimages", &key, r#"{"assetid":"ct"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    s.post("module/asset/media/convertasset", &key, r#"{"assetid":"ct"}"#)
        .await;
    let d = imported(&s, &key, "ct").await;
    let (w, h, _) = thumb(&s, &key, &d).await;
    assert!(h == 200 && w < 200, "back to the original: {w}x{h}");

    // Purging the asset removes every file it had.
    custom_thumb(
        &s,
        Some(&key),
        Some("ct"),
        Some(("cover.jpg", fixture_bytes("media/test-asset-01.jpg"))),
    )
    .await;
    s.post("module/asset/deleteassets", &key, r#"{"assetid":"ct"}"#).await;
    s.post("module/asset/trash/purge", &key, r#"{"assetid":"ct"}"#).await;
    assert_eq!(s.blob_files().len(), files_before, "{:?}", s.blob_files());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_thumbnails_that_cannot_be_used_are_refused_and_leave_nothing() {
    let s = TestServer::start().await;
    let key = s.login().await;
    s.upload(&key, "media/test-asset-02.jpg", r#"{"id":"keep"}"#).await;
    let d = imported(&s, &key, "keep").await;
    assert_eq!(d["previewstatus"]["id"], "2");
    let files_before = s.blob_files().len();
    // A small image for the refusals: the server may answer them before it reads the
    // body (HTTP allows it) and close; a client still writing megabytes then sees a broken
    // pipe instead of the answer.
    let small = small_jpeg();
    let jpg = || Some(("x.jpg", small.clone()));

    // Unknown and deleted assets: 404 in the EMDB shape.
    let r = custom_thumb(&s, Some(&key), Some("nosuch"), jpg()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.json["response"]["status"], "not found", "EMDB shape: {}", r.text);
    s.upload(&key, "media/test-asset-02.jpg", r#"{"id":"gone"}"#).await;
    imported(&s, &key, "gone").await;
    s.post("module/asset/deleteassets", &key, r#"{"assetid":"gone"}"#).await;
    let files_with_gone = s.blob_files().len();
    let r = custom_thumb(&s, Some(&key), Some("gone"), jpg()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(
        s.blob_files().len(),
        files_with_gone,
        "nothing kept for a deleted asset"
    );

    // Not an image, no file, no asset id, a broken image, a pixel bomb, no key: 400/401.
    let pdf = Some(("doc.pdf", fixture_bytes("media/junitsampler_tutorial.pdf")));
    let r = custom_thumb(&s, Some(&key), Some("keep"), pdf).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("JPEG, PNG"), "{}", r.text);
    let r = custom_thumb(&s, Some(&key), Some("keep"), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = custom_thumb(&s, Some(&key), None, jpg()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let mut broken = fixture_bytes("media/test-asset-01.jpg");
    broken.truncate(2000);
    broken.extend_from_slice(&[0x55; 3000]);
    let r = custom_thumb(&s, Some(&key), Some("keep"), Some(("broken.jpg", broken))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend_from_slice(&40000u32.to_be_bytes());
    png.extend_from_slice(&40000u32.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    png.extend_from_slice(&[0u8; 2000]);
    let r = custom_thumb(&s, Some(&key), Some("keep"), Some(("bomb.png", png))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("40000x40000"), "{}", r.text);
    let r = custom_thumb(&s, None, Some("keep"), jpg()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let r = s
        .post("module/asset/media/customthumb", &key, r#"{"assetid":"keep"}"#)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "JSON instead of a file: {}", r.text);

    // The asset still has previews of its original (the broken image was dropped again).
    let d = imported(&s, &key, "keep").await;
    assert_eq!(d["previewstatus"]["id"], "2", "{d}");
    let (w, h, _) = thumb(&s, &key, &d).await;
    assert!(h == 200 && w < 200, "{w}x{h}");
    for _ in 0..100 {
        if s.blob_files().len() == files_with_gone {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(s.blob_files().len(), files_with_gone, "no upload was kept");
    assert!(files_with_gone > files_before);
    s.stop().await;
}

/// A 16x16 JPEG, small enough to be sent whole before any early answer.
fn small_jpeg() -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(16, 16, image::Rgb([200, 30, 30])));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}
