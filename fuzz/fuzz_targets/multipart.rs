//! The multipart reader of `module/asset/create`: the first line is the Content-Type
//! header, the rest the body. Any input gives parts or a clean error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let Ok(content_type) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let body = data.get(split + 1..).unwrap_or_default();
    let _ = futures_executor::block_on(mediadb_formats::multipart::walk(content_type, body));
});
