//! Probe results for exiftool's own sample files, compared with what `exiftool -n` reports for
//! them (values copied from exiftool 12.57; the tests do not need exiftool).

use super::*;

fn fixture(rel: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/")).join(rel)
}

fn p(rel: &str) -> MediaInfo {
    probe(&fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn kw(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn date(v: &str) -> Option<DateTime<Utc>> {
    Some(DateTime::parse_from_rfc3339(v).unwrap().with_timezone(&Utc))
}

#[test]
fn canon_jpeg() {
    let i = p("metadata/Canon.jpg");
    assert_eq!((i.width, i.height), (Some(8), Some(8)));
    assert_eq!(i.orientation, Some(1));
    assert_eq!(i.colorspace, s("RGB"));
    assert_eq!(i.creation_date, date("2003-12-04T06:46:52Z"));
    assert_eq!(i.camera_make, s("Canon"));
    assert_eq!(i.camera_model, s("Canon EOS DIGITAL REBEL"));
    assert_eq!(i.format, s("jpg"));
}

#[test]
fn exiftool_jpeg_merges_exif_iptc_and_utf16_xmp() {
    let i = p("metadata/ExifTool.jpg");
    assert_eq!((i.width, i.height), (Some(8), Some(8)));
    assert_eq!(i.creation_date, date("2001-05-19T18:36:41Z"));
    // IPTC Keywords, then XMP dc:subject
    assert_eq!(i.keywords, kw(&["jambalaya", "ExifTool", "Test", "XMP"]));
    // XMP dc:description wins over EXIF ImageDescription and IPTC Caption-Abstract
    assert_eq!(i.caption, s("UTF-16 (big-endian) encoded XMP"));
    assert_eq!(i.creator, s("Phil Harvey"));
    assert_eq!(i.copyright, s("Copyright 2004 Phil Harvey"));
    assert_eq!(i.title, s("Test IPTC picture"));
    assert_eq!(i.headline, s("No headline"));
    assert_eq!(i.city, s("Kingston"));
    assert_eq!(i.camera_make, s("FUJIFILM"));
    assert_eq!(i.camera_model, s("FinePix2400Zoom"));
    assert_eq!(i.orientation, Some(1));
}

#[test]
fn iptc_only_jpeg() {
    let i = p("metadata/IPTC.jpg");
    assert_eq!(i.keywords, kw(&["ExifTool", "Test", "IPTC"]));
    assert_eq!(i.caption, s("A witty caption"));
    assert_eq!(i.creator, s("Phil Harvey"));
    assert_eq!(i.copyright, s("Copyright 2004 Phil Harvey"));
    assert_eq!(i.title, s("Test IPTC picture"));
    assert_eq!(i.orientation, None);
    // IPTC DateCreated 2004:02:26 (no EXIF date in this file)
    assert_eq!(i.creation_date, date("2004-02-26T00:00:00Z"));
}

#[test]
fn gps_jpeg() {
    let i = p("metadata/GPS.jpg");
    assert_eq!((i.width, i.height), (Some(120), Some(80)));
    let (lat, lon) = i.gps.unwrap();
    assert!((lat - 54.9896666666667).abs() < 1e-9, "{lat}");
    assert!((lon - -1.91416666666667).abs() < 1e-9, "{lon}");
    assert_eq!(i.keywords, kw(&["Communications"]));
    assert_eq!(i.caption, s("Communications"));
    assert_eq!(i.creator, s("Ian Britton"));
    assert_eq!(i.copyright, s("ian Britton - FreeFoto.com"));
    assert_eq!(i.creation_date, date("2002-07-13T15:58:28Z"));
    assert_eq!(i.camera_model, s("FinePixS1Pro"));
    let f = i.to_fields();
    assert_eq!(f["geo_point"], "54.9896667,-1.9141667");
}

#[test]
fn google_jpeg_has_offset_time() {
    let i = p("metadata/Google.jpg");
    // DateTimeOriginal 2023:10:06 22:53:51 with OffsetTimeOriginal +02:00
    assert_eq!(i.creation_date, date("2023-10-06T20:53:51Z"));
    assert_eq!(i.to_fields()["geo_point"], "40.4000694,-3.7146472");
    assert_eq!(i.camera_make, s("Google"));
    assert_eq!(i.camera_model, s("Pixel 8 Pro"));
}

#[test]
fn nikon_blank_description_is_absent() {
    let i = p("metadata/Nikon.jpg");
    assert_eq!(i.caption, None);
    assert_eq!(i.camera_make, s("NIKON"));
    assert_eq!(i.camera_model, s("E775"));
    assert_eq!(i.creation_date, date("2001-08-01T12:57:23Z"));
}

#[test]
fn xmp_jpeg() {
    let i = p("metadata/XMP.jpg");
    assert_eq!(i.keywords, kw(&["ExifTool", "Test", "XMP"]));
    assert_eq!(i.caption, s("UTF-16 (big-endian) encoded XMP"));
    assert_eq!(i.creator, s("Phil Harvey"));
    assert_eq!(i.copyright, s("Copyright 2004 Phil Harvey"));
    assert_eq!(i.creation_date, date("2001-05-19T18:36:41Z"));
}

#[test]
fn tiff_with_iptc_tag() {
    let i = p("metadata/ExifTool.tif");
    assert_eq!((i.width, i.height), (Some(160), Some(120)));
    assert_eq!(i.colorspace, s("RGB"));
    assert_eq!(i.keywords, kw(&["exiftool", "test", "picture"]));
    assert_eq!(i.caption, s("The picture caption"));
    assert_eq!(i.creator, s("I'm the author"));
    assert_eq!(i.copyright, s("Copyright notice"));
    assert_eq!(i.camera_make, s("Canon"));
    assert_eq!(i.format, s("tif"));
}

#[test]
fn png_gif_bmp_psd() {
    let i = p("metadata/PNG.png");
    assert_eq!((i.width, i.height), (Some(16), Some(16)));
    assert_eq!(i.colorspace, s("Grayscale"));
    assert_eq!(i.creator, s("Phil Harvey"));

    let i = p("metadata/GIF.gif");
    assert_eq!((i.width, i.height), (Some(8), Some(8)));
    assert_eq!(i.title, s("GIF with XMP"));

    let i = p("metadata/BMP.bmp");
    assert_eq!((i.width, i.height), (Some(8), Some(8)));

    let i = p("metadata/Photoshop.psd");
    assert_eq!((i.width, i.height), (Some(8), Some(8)));
    assert_eq!(i.colorspace, s("RGB"));
    assert_eq!(i.caption, s("This is a teeny weeny white square"));
    assert_eq!(i.creator, s("Phil Harvey"));
    assert_eq!(i.copyright, s("Free for all"));
    assert_eq!(i.orientation, Some(1));
}

#[test]
fn svg_xmp() {
    let i = p("metadata/XMP.svg");
    assert_eq!(i.creator, s("Irving Bird, Mary Lambert"));
    assert_eq!(i.caption, s("$three $bar $thousands $dollars $from 1998 $through 2000"));
    assert_eq!(i.title, s("MyFoo Financial Report"));
}

#[test]
fn quicktime_movie() {
    let i = p("metadata/QuickTime.mov");
    assert_eq!((i.width, i.height), (Some(320), Some(240)));
    assert!((i.duration.unwrap() - 4.96666666666667).abs() < 1e-6);
    assert_eq!(i.video_codec, s("mjpeg")); // CompressorID jpeg
    assert_eq!(i.audio_codec, s("pcm_u8")); // AudioFormat raw, as ffprobe names it
    assert_eq!(i.creator, s("Phil Harvey"));
    assert_eq!(i.creation_date, date("2005-08-11T14:03:54Z"));
    let f = i.to_fields();
    assert_eq!(f["framerate"], "30");
    assert_eq!(f["length"], "4.967");
    assert_eq!(f["duration"], "4.967");
    assert_eq!(f["detectedfileformat"], "mov");
}

#[test]
fn pdf_pages() {
    assert_eq!(p("metadata/PDF.pdf").pages, Some(1));
    assert_eq!(p("media/junitsampler_tutorial.pdf").pages, Some(4));
    assert_eq!(p("media/junitsampler_tutorial.pdf").to_fields()["pages"], "4");
}

#[test]
fn camera_jpegs() {
    let i = p("media/DSC00750.jpg");
    assert_eq!((i.width, i.height), (Some(6000), Some(4000)));
    assert_eq!(i.camera_make, s("SONY"));
    assert_eq!(i.camera_model, s("SLT-A99V"));
    assert_eq!(i.creation_date, date("2017-12-19T12:43:24Z"));
    assert_eq!(i.caption, None);
    let i = p("media/DSC01154.jpg");
    assert_eq!((i.width, i.height), (Some(4000), Some(6000)));
    let i = p("media/test-asset-02.jpg");
    assert_eq!((i.width, i.height), (Some(1280), Some(1873)));
}

#[test]
fn heic_probe() {
    let tiff = [
        b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 1, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0,
    ];
    let file = bmff::tests::synthetic_heic(&tiff);
    let i = probe_reader(&mut std::io::Cursor::new(file)).unwrap();
    assert_eq!(i.format, s("heic"));
    assert_eq!((i.width, i.height, i.orientation), (Some(480), Some(640), Some(6)));
}

#[test]
fn fields_use_emdb_ids_and_strings() {
    let f = p("metadata/ExifTool.jpg").to_fields();
    assert_eq!(f["width"], "8");
    assert_eq!(f["imageorientation"], "1");
    assert_eq!(f["assetcreationdate"], "2001-05-19T18:36:41.000Z");
    assert_eq!(f["creator"], "Phil Harvey");
    assert_eq!(f["copyrightnotice"], "Copyright 2004 Phil Harvey");
    assert_eq!(f["longcaption"], "UTF-16 (big-endian) encoded XMP");
    assert_eq!(f["cameramake"], "FUJIFILM");
    assert_eq!(f["cameramodel"], "FinePix2400Zoom");
    assert_eq!(
        f["keywords"],
        serde_json::json!(["jambalaya", "ExifTool", "Test", "XMP"])
    );
    assert!(f.values().all(|v| v.is_string() || v.is_array()));
    assert!(!f.contains_key("pages"));
}

#[test]
fn unknown_and_truncated_files_are_errors_not_panics() {
    let docx = probe(&fixture("media/vm0808h_video_matrix_switch_ss_en.docx"));
    assert!(matches!(docx, Err(MediaError::Unsupported(_))), "{docx:?}");
    for rel in [
        "metadata/ExifTool.jpg",
        "metadata/PNG.png",
        "metadata/GIF.gif",
        "metadata/ExifTool.tif",
        "metadata/QuickTime.mov",
        "metadata/Photoshop.psd",
        "metadata/PDF.pdf",
    ] {
        let data = std::fs::read(fixture(rel)).unwrap();
        // every prefix, and a copy with bytes flipped, must probe to Ok or Err without panicking
        for n in (0..data.len()).step_by(97) {
            let _ = probe_reader(&mut std::io::Cursor::new(&data[..n]));
        }
        let mut flipped = data.clone();
        for (k, b) in flipped.iter_mut().enumerate().skip(20) {
            if k % 13 == 0 {
                *b ^= 0x5A;
            }
        }
        let _ = probe_reader(&mut std::io::Cursor::new(&flipped));
    }
}

#[test]
fn camera_jpeg_probe_is_fast() {
    // "well under 1 ms" in a release build; in a debug test build only guard against regressions
    // that read the whole file (which would take tens of milliseconds).
    let path = fixture("media/DSC00750.jpg");
    probe(&path).unwrap();
    let start = std::time::Instant::now();
    for _ in 0..20 {
        probe(&path).unwrap();
    }
    let each = start.elapsed() / 20;
    assert!(each < std::time::Duration::from_millis(20), "{each:?} per probe");
}

#[test]
fn helper_parsers() {
    assert_eq!(xmp_gps("54,59.38N"), Some(54.0 + 59.38 / 60.0));
    assert_eq!(xmp_gps("1,54,51W"), Some(-(1.0 + 54.0 / 60.0 + 51.0 / 3600.0)));
    assert_eq!(xmp_gps("garbage"), None);
    assert_eq!(xmp_date("2004-02-26"), date("2004-02-26T00:00:00Z"));
    assert_eq!(xmp_date("2004-02"), date("2004-02-01T00:00:00Z"));
    assert_eq!(xmp_date("2005-07-18T14:30:45-04:00"), date("2005-07-18T18:30:45Z"));
    assert_eq!(iptc_date("20040226", Some("101530+0100")), date("2004-02-26T09:15:30Z"));
    assert_eq!(number(4.9666666, 3), "4.967");
    assert_eq!(number(30.0, 3), "30");
}
