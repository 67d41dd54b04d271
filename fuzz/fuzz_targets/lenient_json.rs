//! The lenient JSON reader (trailing commas, comments): any bytes give a value or an
//! error, never a panic; what it accepts as strict JSON it reads as serde_json does.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lenient = mediadb_formats::lenient_json::parse(data);
    if let Ok(strict) = serde_json::from_slice::<serde_json::Value>(data) {
        assert_eq!(lenient.as_ref().ok(), Some(&strict), "strict JSON read differently");
    }
});
