//! Metadata of a whole file (JPEG, PNG, GIF, WebP, PSD, BMP, TIFF, MP4/MOV/HEIC, PDF,
//! with their EXIF, IPTC and XMP): any bytes give metadata or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = mediadb_formats::media::probe::probe_reader(&mut std::io::Cursor::new(data)) {
        let _ = info.to_fields();
    }
});
