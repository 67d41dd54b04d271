//! External tools: output parsing on captured ffprobe output (always), and real runs of
//! pdftoppm/ffmpeg/ffprobe, which skip with a printed reason when the program is missing and
//! fail instead when `MEDIADB_REQUIRE_ALL=1` (as CI sets).

use super::*;
use crate::media::render::{render_presets, standard_presets, RenderOptions};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/")).join(rel)
}

/// True when `tool` is installed; otherwise prints why the test is skipped (or fails it when
/// every tool is required).
fn have(tool: Tool) -> bool {
    if tool.find().is_some() {
        return true;
    }
    if std::env::var("MEDIADB_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!(
            "{} is required (MEDIADB_REQUIRE_ALL=1) but not on PATH: install {}",
            tool.program(),
            tool.package()
        );
    }
    eprintln!(
        "skipped: {} not installed (install {} to run this test)",
        tool.program(),
        tool.package()
    );
    false
}

/// `ffprobe -print_format json -show_format -show_streams` of a 2 s H.264/AAC test clip made by
/// ffmpeg 5.1 (unused keys removed, a creation time added).
const FFPROBE_MP4: &str = r#"{
 "streams": [
  {"index": 0, "codec_name": "h264", "codec_type": "video", "width": 320, "height": 240,
   "r_frame_rate": "25/1", "avg_frame_rate": "25/1", "duration": "2.000000",
   "disposition": {"default": 1, "attached_pic": 0}},
  {"index": 1, "codec_name": "aac", "codec_type": "audio", "r_frame_rate": "0/0",
   "avg_frame_rate": "0/0", "duration": "2.000000",
   "disposition": {"default": 1, "attached_pic": 0}}
 ],
 "format": {"filename": "t.mp4", "nb_streams": 2, "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
  "duration": "2.000000", "size": "31973", "bit_rate": "127892",
  "tags": {"creation_time": "2024-05-03T14:22:11.000000Z"}}
}"#;

/// An MP3 with cover art: the picture is a "video" stream that must not count as video.
const FFPROBE_MP3_WITH_COVER: &str = r#"{"streams": [
  {"codec_name": "mp3", "codec_type": "audio"},
  {"codec_name": "mjpeg", "codec_type": "video", "width": 600, "height": 600,
   "avg_frame_rate": "0/0", "disposition": {"attached_pic": 1}}],
 "format": {"duration": "245.3"}}"#;

#[test]
fn parses_captured_ffprobe_output() {
    let i = parse_ffprobe(FFPROBE_MP4.as_bytes()).unwrap();
    assert_eq!((i.width, i.height), (Some(320), Some(240)));
    assert_eq!(i.video_codec.as_deref(), Some("h264"));
    assert_eq!(i.audio_codec.as_deref(), Some("aac"));
    assert_eq!(i.duration, Some(2.0));
    assert_eq!(i.frame_rate, Some(25.0));
    assert_eq!(
        i.creation_date.map(|t| t.to_rfc3339()),
        Some("2024-05-03T14:22:11+00:00".into())
    );
    let f = i.to_fields();
    assert_eq!((f["framerate"].as_str(), f["length"].as_str()), (Some("25"), Some("2")));

    let i = parse_ffprobe(FFPROBE_MP3_WITH_COVER.as_bytes()).unwrap();
    assert_eq!(i.video_codec, None);
    assert_eq!(i.width, None);
    assert_eq!(i.audio_codec.as_deref(), Some("mp3"));
    assert_eq!(i.duration, Some(245.3));

    let err = parse_ffprobe(b"not json").unwrap_err();
    assert!(matches!(err, MediaError::ToolFailed { tool: "ffprobe", .. }), "{err:?}");
}

#[test]
fn which_and_missing_tools() {
    assert!(which("sh").is_some());
    assert!(which("no-such-program-mediadb").is_none());
    let err = MediaError::ToolMissing {
        tool: Tool::Pdftoppm.program(),
        package: Tool::Pdftoppm.package(),
    };
    assert_eq!(
        err.to_string(),
        "pdftoppm is not installed or not on PATH (install poppler-utils to enable this conversion)"
    );
    assert!(!err.is_input_error());
}

#[test]
fn temp_files_are_removed_unless_kept() {
    let dir = tempfile::tempdir().unwrap();
    let t = TempFile::new(dir.path(), "png");
    std::fs::write(t.path(), b"x").unwrap();
    let path = t.path().to_path_buf();
    drop(t);
    assert!(!path.exists());
}

#[test]
fn pdf_first_page_preview() {
    if !have(Tool::Pdftoppm) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("page.png");
    pdf_first_page(&fixture("media/junitsampler_tutorial.pdf"), &out, 300).unwrap();
    let img = image::open(&out).unwrap();
    assert_eq!(img.width().max(img.height()), 300);
    // and through render_presets, as the import pipeline calls it
    let presets = standard_presets();
    let r = render_presets(
        &fixture("media/junitsampler_tutorial.pdf"),
        &presets[1..4],
        dir.path(),
        &RenderOptions::default(),
    )
    .unwrap();
    let thumb = &r.renditions[1];
    assert_eq!(thumb.width.max(thumb.height), 200);
    assert!(thumb.height > thumb.width, "a portrait page: {thumb:?}");
    // the temporary page image is gone
    assert!(std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().starts_with(".mediadb")));
    // a broken PDF is a tool failure with poppler's message, not a panic
    let bad = dir.path().join("bad.pdf");
    std::fs::write(&bad, b"%PDF-1.4\nnot really").unwrap();
    let err = pdf_first_page(&bad, &out, 200).unwrap_err();
    assert!(
        matches!(err, MediaError::ToolFailed { tool: "pdftoppm", .. }),
        "{err:?}"
    );
}

/// A 2 s 320x240 25 fps H.264 + AAC clip made with ffmpeg (libx264 when built in, else MPEG-4).
fn make_clip(dir: &Path) -> Option<PathBuf> {
    let out = dir.join("clip.mp4");
    let ffmpeg = Tool::Ffmpeg.find()?;
    for codec in ["libx264", "mpeg4"] {
        let ok = Command::new(&ffmpeg)
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=2"])
            .args(["-c:v", codec, "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
            .arg(&out)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(out);
        }
    }
    None
}

#[test]
fn video_probe_poster_and_renditions() {
    if !have(Tool::Ffmpeg) || !have(Tool::Ffprobe) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path()).expect("ffmpeg can make a test clip");
    // in-process probe and ffprobe agree
    let mine = crate::media::probe(&clip).unwrap();
    let theirs = ffprobe(&clip).unwrap();
    assert_eq!((mine.width, mine.height), (Some(320), Some(240)));
    assert_eq!((theirs.width, theirs.height), (Some(320), Some(240)));
    assert_eq!(mine.video_codec, theirs.video_codec);
    assert_eq!(mine.audio_codec.as_deref(), Some("aac"));
    assert_eq!(theirs.audio_codec.as_deref(), Some("aac"));
    assert!((mine.frame_rate.unwrap() - 25.0).abs() < 0.01, "{mine:?}");
    assert!((mine.duration.unwrap() - 2.0).abs() < 0.1, "{mine:?}");
    assert!((theirs.duration.unwrap() - 2.0).abs() < 0.1, "{theirs:?}");

    let poster = dir.path().join("poster.png");
    video_poster(&clip, &poster).unwrap();
    let img = image::open(&poster).unwrap();
    assert_eq!((img.width(), img.height()), (320, 240));

    let presets = standard_presets();
    let r = render_presets(&clip, &presets[1..4], dir.path(), &RenderOptions::default()).unwrap();
    assert_eq!((r.renditions[1].width, r.renditions[1].height), (200, 150));

    // QuickTime.mov has headers but no frames: a readable failure
    let err = video_poster(&fixture("metadata/QuickTime.mov"), &poster.with_file_name("none.png")).unwrap_err();
    assert!(matches!(err, MediaError::ToolFailed { tool: "ffmpeg", .. }), "{err:?}");
}

#[test]
fn runaway_tools_are_stopped() {
    if !have(Tool::Ffmpeg) {
        return;
    }
    // an endless encode to nowhere, stopped by a short timeout
    let args: Vec<&std::ffi::OsStr> = ["-nostdin", "-re", "-f", "lavfi", "-i", "testsrc", "-f", "null", "-"]
        .iter()
        .map(|s| s.as_ref())
        .collect();
    let start = Instant::now();
    let err = run(Tool::Ffmpeg, &args, Duration::from_millis(500)).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[test]
fn office_documents_become_pdf_and_a_slow_conversion_is_stopped() {
    if !have(Tool::Soffice) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let docx = fixture("media/vm0808h_video_matrix_switch_ss_en.docx");
    // Stopped at once: the timeout kills LibreOffice's whole process group.
    let err = office_to_pdf_with_timeout(&docx, &dir.path().join("slow.pdf"), Duration::from_millis(1)).unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    let pdf = dir.path().join("doc.pdf");
    office_to_pdf(&docx, &pdf).unwrap();
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    // Only the PDF is left: the private profile and output directories are removed.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("doc.pdf")]);
}

#[test]
fn heic_is_decoded_through_heif_convert() {
    if !have(Tool::HeifConvert) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let heic = dir.path().join("x.heic");
    let made = std::process::Command::new("heif-enc")
        .arg("-q")
        .arg("50")
        .arg("-o")
        .arg(&heic)
        .arg(fixture("media/test-asset-02.jpg"))
        .output()
        .expect("heif-enc (libheif-examples) runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let out = render_presets(&heic, &standard_presets(), dir.path(), &RenderOptions::default()).unwrap();
    assert_eq!((out.width, out.height), (1280, 1873));
    let thumb = out.renditions.iter().find(|r| r.preset_id == "thumbimage").unwrap();
    assert_eq!((thumb.width, thumb.height), (137, 200));
}

#[test]
fn svg_is_drawn_at_the_largest_presets_size_and_cannot_read_other_files() {
    if !have(Tool::RsvgConvert) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A photo beside the SVG, referenced by an absolute and by a relative path over the
    // drawing: neither may be drawn (the SVG is drawn from a directory of its own).
    let photo = dir.path().join("secret.jpg");
    std::fs::copy(fixture("media/test-asset-02.jpg"), &photo).unwrap();
    let svg = dir.path().join("halves.svg");
    std::fs::write(
        &svg,
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 200 100">
  <rect width="100" height="100" fill="#ff0000"/><rect x="100" width="100" height="100" fill="#0000ff"/>
  <image xlink:href="file://{}" width="200" height="100" preserveAspectRatio="none"/>
  <image xlink:href="secret.jpg" width="200" height="100" preserveAspectRatio="none"/>
</svg>"##,
            photo.display()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = render_presets(&svg, &standard_presets(), &out_dir, &RenderOptions::default()).unwrap();
    // Drawn into the largest preset's box (3000 x 3000), the shape kept.
    assert_eq!((out.width, out.height), (3000, 1500));
    let thumb = out.renditions.iter().find(|r| r.preset_id == "thumbimage").unwrap();
    assert_eq!((thumb.width, thumb.height), (200, 100));
    let img = image::open(&thumb.path).unwrap().to_rgb8();
    let (left, right) = (img.get_pixel(40, 50).0, img.get_pixel(160, 50).0);
    assert!(
        left[0] > 200 && left[1] < 60 && left[2] < 60,
        "left {left:?}: the photo was drawn"
    );
    assert!(
        right[0] < 60 && right[1] < 60 && right[2] > 200,
        "right {right:?}: the photo was drawn"
    );
    // Only the renditions are left: the SVG's own directory and the drawing are removed.
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 8);

    // exiftool's sample SVG is not well-formed XML (an undeclared namespace prefix): the
    // file's fault, said as such.
    let bad = render_presets(
        &fixture("metadata/XMP.svg"),
        &standard_presets(),
        &dir.path().join("bad"),
        &RenderOptions::default(),
    );
    assert!(
        matches!(&bad, Err(MediaError::Decode(m)) if m.contains("SVG")),
        "{bad:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path().join("bad")).unwrap().count(), 0);
}
