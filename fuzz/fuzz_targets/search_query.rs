//! The search language: any JSON body (read leniently, as the API does) parses to a
//! search or a clean error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediadb_formats::query;

fuzz_target!(|data: &[u8]| {
    let Ok(serde_json::Value::Object(body)) = mediadb_formats::lenient_json::parse(data) else {
        return;
    };
    if let Ok(req) = query::parse_search(&body, "asset", &query::asset_field_info) {
        let _ = query::simplify(req.query);
    }
});
