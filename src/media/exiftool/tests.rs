//! exiftool: output mapping on captured output (always), and the long-lived process itself,
//! which skips with a printed reason when exiftool is missing and fails instead when
//! `MEDIADB_REQUIRE_ALL=1` (as CI sets).

use super::*;

fn fixture(rel: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/")).join(rel)
}

fn have_exiftool() -> bool {
    match ExifTool::status() {
        Ok(_) => true,
        Err(e) if std::env::var("MEDIADB_REQUIRE_ALL").as_deref() == Ok("1") => {
            panic!("exiftool is required (MEDIADB_REQUIRE_ALL=1): {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// `exiftool -json -n -fast2` of the docx fixture (exiftool 12.57, with Archive::Zip; the
/// ZIP and file system tags cut).
const DOCX: &str = r#"[{
  "SourceFile": "/x/vm0808h_video_matrix_switch_ss_en.docx",
  "FileType": "DOCX", "FileTypeExtension": "DOCX",
  "MIMEType": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  "Created": "2014:03:10 00:00:00Z", "Template": "Normal_Wordconv.dotm",
  "Application": "Microsoft Office Outlook", "AppVersion": 12.0000,
  "Title": "vm0808h_video_matrix_switch_ss_en.indd",
  "CreateDate": "2014:07:03 05:40:37Z", "ModifyDate": "2014:07:03 05:40:37Z"
}]"#;

#[test]
fn maps_captured_output_into_the_standard_fields() {
    let i = parse_json(DOCX.as_bytes()).unwrap();
    assert_eq!(i.format.as_deref(), Some("docx"));
    assert_eq!(i.title.as_deref(), Some("vm0808h_video_matrix_switch_ss_en.indd"));
    // wire §8 maps assetcreationdate from CreateDate: it wins over the document's Created.
    assert_eq!(
        i.creation_date.map(|t| t.to_rfc3339()),
        Some("2014-07-03T05:40:37+00:00".into())
    );
    let f = i.to_fields();
    assert_eq!(f["assettitle"], "vm0808h_video_matrix_switch_ss_en.indd");
    assert_eq!(f["detectedfileformat"], "docx");

    let photo = r#"[{"FileTypeExtension":"CR3","ImageWidth":6000,"ImageHeight":4000,"Orientation":6,
        "Make":"Canon","Model":"EOS R5","DateTimeOriginal":"2023:10:06 22:53:51.25+02:00",
        "GPSLatitude":48.8583,"GPSLongitude":-2.2945,"Subject":["Paris","tower"],"Keywords":"tower, night",
        "Creator":["Ann","Bo"],"Rights":"(c) Ann","Description":"Eiffel","Duration":12.5,"PageCount":3}]"#;
    let i = parse_json(photo.as_bytes()).unwrap();
    assert_eq!((i.width, i.height, i.orientation), (Some(6000), Some(4000), Some(6)));
    assert_eq!(i.camera_make.as_deref(), Some("Canon"));
    assert_eq!(
        i.creation_date.map(|t| t.to_rfc3339()),
        Some("2023-10-06T20:53:51+00:00".into())
    );
    assert_eq!(i.gps, Some((48.8583, -2.2945)));
    assert_eq!(i.keywords, vec!["Paris", "tower", "night"]);
    assert_eq!(i.creator.as_deref(), Some("Ann, Bo"));
    assert_eq!(
        (i.copyright.as_deref(), i.caption.as_deref()),
        (Some("(c) Ann"), Some("Eiffel"))
    );
    assert_eq!((i.duration, i.pages), (Some(12.5), Some(3)));

    assert!(matches!(parse_json(b"[]"), Err(MediaError::ToolFailed { .. })));
    assert!(matches!(parse_json(b"oops"), Err(MediaError::ToolFailed { .. })));
}

#[test]
fn one_long_lived_process_answers_many_files_and_is_restarted_when_it_dies() {
    if !have_exiftool() {
        return;
    }
    let client = ExifTool::new(EXIFTOOL_TIMEOUT);
    let docx = fixture("media/vm0808h_video_matrix_switch_ss_en.docx");
    let i = client.read(&docx).unwrap();
    assert_eq!(i.format.as_deref(), Some("docx"));
    let pid = client.pid().expect("a process runs");
    let canon = client.read(&fixture("metadata/Canon.jpg")).unwrap();
    assert_eq!(canon.camera_make.as_deref(), Some("Canon"));
    assert_eq!(client.pid(), Some(pid), "the same process answered both files");

    // A path exiftool cannot read is an answer, not a dead process.
    let missing = client.read(Path::new("/nonexistent/file.docx"));
    assert!(missing.is_err());
    assert_eq!(client.pid(), Some(pid));

    // Killed from outside: the next request starts a new process and still answers.
    // SAFETY: signals our own child process.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(100));
    let again = client.read(&docx).unwrap();
    assert_eq!(again.title, i.title);
    assert_ne!(client.pid(), Some(pid));
}

#[test]
#[cfg(target_os = "linux")]
fn the_process_survives_the_thread_that_started_it() {
    if !have_exiftool() {
        return;
    }
    // Started from a short-lived thread: exiftool survives that thread's end (it is tied to
    // the spawner thread, which lives as long as the process).
    let client = std::sync::Arc::new(ExifTool::new(EXIFTOOL_TIMEOUT));
    let c = std::sync::Arc::clone(&client);
    std::thread::spawn(move || c.read(&fixture("metadata/Canon.jpg")).unwrap())
        .join()
        .unwrap();
    let pid = client.pid().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    client.read(&fixture("metadata/GPS.jpg")).unwrap();
    assert_eq!(client.pid(), Some(pid), "still the same process");
}

#[test]
fn a_request_that_takes_too_long_is_stopped() {
    if !have_exiftool() {
        return;
    }
    let slow = ExifTool::new(Duration::ZERO);
    let err = slow.read(&fixture("metadata/Canon.jpg")).unwrap_err();
    assert!(err.to_string().contains("no answer within"), "{err}");
    assert_eq!(slow.pid(), None, "the process was stopped");
}

#[test]
fn its_absence_is_a_clear_status() {
    if Tool::Exiftool.find().is_some() {
        // Installed: the status names the program.
        assert!(ExifTool::status().unwrap().ends_with("exiftool"));
    } else {
        let err = ExifTool::status().unwrap_err();
        assert!(err.to_string().contains("libimage-exiftool-perl"), "{err}");
    }
}
