//! A Photoshop file's composite image: any bytes give a whole image or an error, never a
//! panic, and never a buffer beyond the pixel limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limit = 1 << 16;
    if let Ok(c) = mediadb_formats::media::psd::decode_composite(&mut std::io::Cursor::new(data), limit) {
        assert!(u64::from(c.width) * u64::from(c.height) <= limit);
        assert_eq!(c.pixels.len(), c.width as usize * c.height as usize * c.color.samples());
    }
});
