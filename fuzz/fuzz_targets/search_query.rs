//! The search language: any JSON body (read leniently, as the API does) parses to a
//! search or a clean error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(serde_json::Value::Object(body)) = mediadb::api::lenient_json::parse(data) else {
        return;
    };
    if let Ok(req) = mediadb::domain::query::parse_search(&body, "asset", &mediadb::ops::assets::field_info) {
        let _ = mediadb::domain::query::simplify(req.query);
    }
});
