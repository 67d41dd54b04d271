//! The optional external tools over HTTP: office documents through LibreOffice, HEIC through
//! libheif's heif-convert, SVG through librsvg's rsvg-convert (beside the Photoshop and BMP
//! files decoded in-process), and metadata of formats the built-in readers do not know
//! through exiftool. Each test skips with a printed reason when its tool is missing and fails when
//! `MEDIADB_REQUIRE_ALL=1` (as CI sets).

use crate::harness::*;
use crate::media::{get_bytes, imported, require_tool};
use reqwest::StatusCode;
use serde_json::Value;

fn thumb_url(d: &Value) -> String {
    d["downloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "thumbimage")
        .unwrap_or_else(|| panic!("no thumbnail: {d}"))["url"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_document_gets_a_first_page_preview() {
    if !require_tool("soffice") || !require_tool("pdftoppm") {
        return;
    }
    let s = TestServer::start().await;
    let key = s.login().await;
    s.upload(&key, "media/vm0808h_video_matrix_switch_ss_en.docx", r#"{"id":"doc"}"#)
        .await;
    let d = imported(&s, &key, "doc").await;
    assert_eq!(d["importstatus"]["id"], "complete", "{d}");
    assert_eq!(d["previewstatus"]["id"], "2", "{d}");
    let (st, h, bytes) = get_bytes(&s, &key, &thumb_url(&d)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], "image/jpeg");
    let img = image::load_from_memory(&bytes).unwrap();
    // A portrait page (A4 or Letter), 200 px high.
    assert_eq!(img.height(), 200, "{}x{}", img.width(), img.height());
    assert!(
        img.width() > 120 && img.width() < 170,
        "{}x{}",
        img.width(),
        img.height()
    );
    // A page is mostly white paper.
    let grey = img.to_luma8();
    let mean = grey.pixels().map(|p| u64::from(p.0[0])).sum::<u64>() / u64::from(grey.width() * grey.height());
    assert!(mean > 150, "mean brightness {mean}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heic_photo_gets_previews() {
    if !require_tool("heif-convert") || !require_tool("heif-enc") {
        return;
    }
    // No HEIC fixture ships with the project: make one from a JPEG fixture with libheif.
    let dir = tempfile::tempdir().unwrap();
    let heic = dir.path().join("photo.heic");
    let ok = std::process::Command::new("heif-enc")
        .arg("-q")
        .arg("60")
        .arg("-o")
        .arg(&heic)
        .arg(fixture("media/test-asset-01.jpg"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let s = TestServer::start().await;
    let key = s.login().await;
    let form = reqwest::multipart::Form::new()
        .text("jsonrequest", r#"{"id":"heic"}"#)
        .part(
            "file",
            reqwest::multipart::Part::bytes(std::fs::read(&heic).unwrap()).file_name("photo.heic"),
        );
    let r = s
        .client
        .post(s.url("module/asset/create"))
        .header("X-entermedia.key", &key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let d = imported(&s, &key, "heic").await;
    assert_eq!(d["previewstatus"]["id"], "2", "{d}");
    assert_eq!(
        (d["width"].as_str(), d["height"].as_str()),
        (Some("1920"), Some("1281")),
        "{d}"
    );
    let (st, _, bytes) = get_bytes(&s, &key, &thumb_url(&d)).await;
    assert_eq!(st, StatusCode::OK);
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (200, 133));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photoshop_bmp_and_svg_files_get_previews() {
    let s = TestServer::start().await;
    let key = s.login().await;
    // Decoded in-process: exiftool's 8x8 samples.
    for (fixture, id, format) in [
        ("metadata/Photoshop.psd", "psd", "psd"),
        ("metadata/BMP.bmp", "bmp", "bmp"),
    ] {
        s.upload(&key, fixture, &format!(r#"{{"id":"{id}"}}"#)).await;
        let d = imported(&s, &key, id).await;
        assert_eq!(d["previewstatus"]["id"], "2", "{d}");
        assert_eq!(d["detectedfileformat"], format, "{d}");
        let (st, h, bytes) = get_bytes(&s, &key, &thumb_url(&d)).await;
        assert_eq!(st, StatusCode::OK, "{id}");
        assert_eq!(h["content-type"], "image/jpeg");
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (8, 8), "{id}");
    }
    if require_tool("rsvg-convert") {
        // A drawing 2:1, left half red: drawn at the preset's size, not scaled up.
        let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 20"><rect width="20" height="20" fill="#f00"/><rect x="20" width="20" height="20" fill="#00f"/></svg>"##;
        let r = s
            .post_file(
                "module/asset/create",
                &key,
                &[("jsonrequest", r#"{"id":"svg"}"#)],
                "halves.svg",
                svg.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let d = imported(&s, &key, "svg").await;
        assert_eq!(d["previewstatus"]["id"], "2", "{d}");
        let (st, _, bytes) = get_bytes(&s, &key, &thumb_url(&d)).await;
        assert_eq!(st, StatusCode::OK);
        let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (200, 100));
        let p = img.get_pixel(50, 50).0;
        assert!(p[0] > 200 && p[1] < 60 && p[2] < 60, "{p:?}");
        // exiftool's sample SVG is not well-formed: the asset stays, its preview an error
        // with the reason, and the server goes on.
        s.upload(&key, "metadata/XMP.svg", r#"{"id":"badsvg"}"#).await;
        let d = imported(&s, &key, "badsvg").await;
        assert_eq!(d["previewstatus"]["id"], "3", "{d}");
        assert!(d["importerror"].as_str().unwrap_or_default().contains("SVG"), "{d}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exiftool_reads_formats_the_built_in_readers_do_not_and_keeps_the_uploaders_values() {
    if !require_tool("exiftool") {
        return;
    }
    let s = TestServer::start().await;
    let key = s.login().await;
    // The built-in readers do not read Word documents; exiftool (with Archive::Zip) does.
    s.upload(&key, "media/vm0808h_video_matrix_switch_ss_en.docx", r#"{"id":"d1"}"#)
        .await;
    s.upload(
        &key,
        "media/vm0808h_video_matrix_switch_ss_en.docx",
        r#"{"id":"d2","sourcepath":"two/","assettitle":"Mine"}"#,
    )
    .await;
    let d1 = imported(&s, &key, "d1").await;
    assert_eq!(d1["assettitle"], "vm0808h_video_matrix_switch_ss_en.indd", "{d1}");
    assert_eq!(d1["detectedfileformat"], "docx", "{d1}");
    assert!(
        d1["assetcreationdate"].as_str().unwrap_or("").starts_with("2014-07-03"),
        "{d1}"
    );
    let d2 = imported(&s, &key, "d2").await;
    assert_eq!(d2["assettitle"], "Mine", "the uploader's value wins: {d2}");
    assert!(d2["assetcreationdate"].is_string(), "{d2}");
    s.stop().await;
}
