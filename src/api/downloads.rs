//! `module/asset/downloads/originals/{sourcepath}/{filename}`: the original, streamed,
//! with a strong ETag (its MD5), ranges, and caching that never outlives a delete.

use super::error::{ApiError, ApiResult};
use super::Call;
use crate::domain::asset::Asset;
use crate::ops::assets as ops_assets;
use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::ops::Range;

async fn find(call: &Call, path: &str) -> ApiResult<Asset> {
    let ctx = call.ops();
    let path = path.trim_matches('/');
    // `{sourcepath}/{filename}` first; a bare sourcepath as well.
    if let Some((sp, _file)) = path.rsplit_once('/') {
        if let Some(a) = ops_assets::get_by_sourcepath(&ctx, sp).await? {
            return Ok(a);
        }
    }
    if let Some(a) = ops_assets::get_by_sourcepath(&ctx, path).await? {
        return Ok(a);
    }
    Err(ApiError::not_found(path))
}

pub async fn original(call: &mut Call, path: &str) -> ApiResult<Response> {
    let asset = find(call, path).await?;
    let Some(mut original) = asset.original.clone() else {
        return Err(ApiError::not_found(asset.id));
    };
    // `?version=N`: an earlier (or the current) version of the original.
    if let Some(v) = call.params.get("version").filter(|v| !v.is_empty()) {
        let n: u32 = v
            .trim()
            .parse()
            .map_err(|_| ApiError::bad(format!("version must be a version number, not \"{v}\"")))?;
        original = crate::ops::versions::versions_of(&asset)
            .into_iter()
            .find(|x| x.number == n)
            .map(|x| x.original())
            .ok_or_else(|| ApiError::not_found(format!("{} version {n}", asset.id)))?;
    }
    let blob = Blob {
        key: original.blob_key.clone(),
        size: original.size,
        etag: format!("\"{}\"", original.md5hex),
        filename: original.filename.clone(),
        attachment: true,
    };
    serve(call, &blob).await
}

/// A stored rendition: `generated/{sourcepath}/{file}` (inline) and
/// `generate/{sourcepath}/{file}/{exportname}` (a download under the export name).
pub async fn rendition(call: &mut Call, path: &str, with_export_name: bool) -> ApiResult<Response> {
    let path = path.trim_matches('/');
    let (rest, export) = if with_export_name {
        path.rsplit_once('/')
            .map(|(r, e)| (r, Some(e)))
            .ok_or_else(|| ApiError::not_found(path))?
    } else {
        (path, None)
    };
    let (sp, file) = rest.rsplit_once('/').ok_or_else(|| ApiError::not_found(path))?;
    let asset = ops_assets::get_by_sourcepath(&call.ops(), sp)
        .await?
        .ok_or_else(|| ApiError::not_found(path))?;
    let r = crate::ops::import::renditions_of(&asset)
        .into_iter()
        .find(|r| r.file == file)
        .ok_or_else(|| ApiError::not_found(path))?;
    let blob = Blob {
        key: r.blob.clone(),
        size: r.bytes,
        etag: r.etag(),
        filename: export.map(str::to_string).unwrap_or_else(|| r.file.clone()),
        attachment: export.is_some(),
    };
    serve(call, &blob).await
}

/// What to stream, and how to name it.
struct Blob {
    key: String,
    size: u64,
    etag: String,
    filename: String,
    attachment: bool,
}

async fn serve(call: &Call, blob: &Blob) -> ApiResult<Response> {
    let etag = blob.etag.clone();
    let original = crate::domain::asset::Original {
        blob_key: blob.key.clone(),
        filename: blob.filename.clone(),
        size: blob.size,
        md5hex: String::new(),
        sha256hex: String::new(),
    };
    let mut base = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "private, no-cache")
        .header(header::ACCEPT_RANGES, "bytes");

    let if_none_match = call.headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return base
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(|e| ApiError::Internal(e.to_string()));
    }

    let size = original.size;
    let range_header = call.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let if_range_ok = call
        .headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let range = match range_header.filter(|_| if_range_ok) {
        None => None,
        Some(h) => match parse_range(h, size) {
            RangeAnswer::Whole => None,
            RangeAnswer::Part(r) => Some(r),
            RangeAnswer::Unsatisfiable => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                )
                    .into_response())
            }
        },
    };

    let mime = mime_guess::from_path(&original.filename).first_or_octet_stream();
    let encoded = utf8_percent_encode(&original.filename, NON_ALPHANUMERIC).to_string();
    let ascii: String = original
        .filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    base = base.header(header::CONTENT_TYPE, mime.as_ref()).header(
        header::CONTENT_DISPOSITION,
        format!(
            "{}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}",
            if blob.attachment { "attachment" } else { "inline" }
        ),
    );

    let (status, len) = match &range {
        Some(r) => {
            base = base.header(header::CONTENT_RANGE, format!("bytes {}-{}/{size}", r.start, r.end - 1));
            (StatusCode::PARTIAL_CONTENT, r.end - r.start)
        }
        None => (StatusCode::OK, size),
    };
    base = base
        .status(status)
        .header(header::CONTENT_LENGTH, HeaderValue::from(len));
    if call.method == Method::HEAD || len == 0 {
        return base.body(Body::empty()).map_err(|e| ApiError::Internal(e.to_string()));
    }
    let read = call.state.blobs.get(&original.blob_key, range).await?;
    base.body(Body::from_stream(read.stream))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

#[derive(Debug, PartialEq, Eq)]
enum RangeAnswer {
    Whole,
    Part(Range<u64>),
    Unsatisfiable,
}

/// One `bytes=` range (several ranges are answered with the whole file, as RFC 9110 allows).
fn parse_range(h: &str, size: u64) -> RangeAnswer {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return RangeAnswer::Whole;
        };
        if n == 0 {
            return RangeAnswer::Unsatisfiable;
        }
        size.saturating_sub(n)..size
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return RangeAnswer::Whole;
        };
        let end = if b.is_empty() {
            size
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => (e + 1).min(size),
                _ => return RangeAnswer::Whole,
            }
        };
        if start >= size {
            return RangeAnswer::Unsatisfiable;
        }
        start..end
    };
    if range.start >= range.end {
        RangeAnswer::Unsatisfiable
    } else {
        RangeAnswer::Part(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), RangeAnswer::Part(0..100));
        assert_eq!(parse_range("bytes=900-", 1000), RangeAnswer::Part(900..1000));
        assert_eq!(parse_range("bytes=-100", 1000), RangeAnswer::Part(900..1000));
        assert_eq!(parse_range("bytes=990-2000", 1000), RangeAnswer::Part(990..1000));
        assert_eq!(parse_range("bytes=1000-", 1000), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), RangeAnswer::Whole);
        assert_eq!(parse_range("items=0-1", 1000), RangeAnswer::Whole);
        assert_eq!(parse_range("bytes=5-1", 1000), RangeAnswer::Whole);
    }
}
