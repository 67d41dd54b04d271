//! CORS without ambient authority (CONTRACT §2): any origin may call with a key in a
//! header or parameter; credentials (cookies) are allowed only for configured origins.

use crate::config::Config;
use axum::http::{header, HeaderMap, HeaderValue};

const ALLOW_HEADERS: &str = "x-csrf-token,x-file-name,x-file-size,x-requested-with,cache-control,authorization,origin,content-type,accept,x-email,x-token,x-tokentype,x-entermedia.key,x-request-id,range,if-none-match";
const ALLOW_METHODS: &str = "DELETE, HEAD, GET, OPTIONS, POST, PUT, PATCH";

pub fn origin_allowed(config: &Config, origin: &str) -> bool {
    config
        .cors_origins
        .iter()
        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// Whether a request may authenticate with its cookie: no `Origin` (not a cross-site
/// browser request), the server's own origin, or a configured one.
pub fn cookie_allowed(config: &Config, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if origin_allowed(config, origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let bare = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
    !host.is_empty() && bare.eq_ignore_ascii_case(host)
}

pub fn apply(config: &Config, origin: Option<&HeaderValue>, preflight: bool, headers: &mut HeaderMap) {
    let Some(origin) = origin else { return };
    let credentialed = origin.to_str().map(|o| origin_allowed(config, o)).unwrap_or(false);
    if credentialed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    } else {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("etag, content-disposition, content-range, content-length"),
    );
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("3600"));
    }
}
