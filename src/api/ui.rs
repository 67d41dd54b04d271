//! The pages built into the binary: the API UI at `/{site}/mediadb/docs/` and the asset
//! browser at `/{site}/mediadb/`, plus the endpoint catalog they read (served as the
//! `endpoint` and `docsection` tables). Sources in `ui/`; no build step.

use super::error::{ApiError, ApiResult};
use super::{ok_json, Call};
use crate::domain::fields::FieldKind;
use crate::domain::query::{self, FieldInfo};
use crate::domain::query_eval;
use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A page or asset by its path under `/{site}/mediadb/`, or `None`.
fn asset(rest: &str) -> Option<(&'static str, &'static str)> {
    const HTML: &str = "text/html; charset=utf-8";
    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";
    Some(match rest {
        "" | "index.html" => (include_str!("../../ui/browser/index.html"), HTML),
        "app.js" => (include_str!("../../ui/browser/app.js"), JS),
        "style.css" => (include_str!("../../ui/browser/style.css"), CSS),
        "docs/" | "docs/index.html" => (include_str!("../../ui/docs/index.html"), HTML),
        "docs/app.js" => (include_str!("../../ui/docs/app.js"), JS),
        "docs/style.css" => (include_str!("../../ui/docs/style.css"), CSS),
        _ => return None,
    })
}

/// Serves a page, or redirects `docs` to `docs/`; `None` when `rest` names no page.
pub fn page(full_path: &str, rest: &str) -> Option<Response> {
    if rest == "docs" {
        return Some(redirect(&format!("{full_path}/")));
    }
    let (body, ctype) = asset(rest)?;
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, ctype)
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("content-security-policy", CSP)
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    Some(resp)
}

pub fn redirect(to: &str) -> Response {
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, to.to_string())]).into_response()
}

fn parse_list(text: &str) -> Vec<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items.into_iter().filter_map(|v| v.as_object().cloned()).collect(),
        _ => Vec::new(),
    }
}

/// The endpoint catalog, as EnterMediaDB's `endpoint` table renders it: `httpmethod` and
/// `docsection` as `{"id","name"}` objects.
pub fn endpoints() -> &'static Vec<Map<String, Value>> {
    static CATALOG: OnceLock<Vec<Map<String, Value>>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let sections = docsections();
        parse_list(include_str!("../../ui/catalog/endpoints.json"))
            .into_iter()
            .map(|mut e| {
                if let Some(Value::String(m)) = e.get("httpmethod").cloned() {
                    e.insert("httpmethod".into(), json!({"id": m, "name": m}));
                }
                if let Some(Value::String(d)) = e.get("docsection").cloned() {
                    let name = sections
                        .iter()
                        .find(|s| s.get("id").and_then(Value::as_str) == Some(d.as_str()))
                        .and_then(|s| s.get("name").cloned())
                        .unwrap_or(json!(""));
                    e.insert("docsection".into(), json!({"id": d, "name": name}));
                }
                e
            })
            .collect()
    })
}

pub fn docsections() -> &'static Vec<Map<String, Value>> {
    static SECTIONS: OnceLock<Vec<Map<String, Value>>> = OnceLock::new();
    SECTIONS.get_or_init(|| parse_list(include_str!("../../ui/catalog/docsections.json")))
}

/// Whether a table is the built-in catalog (served from the binary, readable by anyone).
pub fn is_catalog(searchtype: &str) -> bool {
    matches!(searchtype, "endpoint" | "docsection")
}

fn catalog_field(f: &str) -> FieldKind {
    match f {
        "name" | "description" | "samplerequest" | "url" => FieldKind::Text,
        "httpmethod" | "docsection" => FieldKind::List("catalog"),
        _ => FieldKind::Keyword,
    }
}

/// `lists/search/endpoint` and `lists/search/docsection` with the search language.
pub async fn search_catalog(call: &mut Call, searchtype: &str) -> ApiResult<Response> {
    let records = match searchtype {
        "endpoint" => endpoints().clone(),
        "docsection" => docsections().clone(),
        other => return Err(ApiError::not_found(other)),
    };
    search_records(call, searchtype, records).await
}

/// What the search language selected from records held in memory.
struct Evaluated {
    req: query::SearchRequest,
    total: u64,
    /// The page of matches.
    hits: Vec<Map<String, Value>>,
}

/// The search language of `body` over records held in memory.
fn evaluate(body: Map<String, Value>, searchtype: &str, records: Vec<Map<String, Value>>) -> ApiResult<Evaluated> {
    let resolve = |f: &str| {
        Some(FieldInfo {
            kind: catalog_field(f),
            name: "",
        })
    };
    let req = query::parse_search(&body, searchtype, &resolve)?;
    let (total, hits) = query_eval::search(records, &req, &catalog_field);
    Ok(Evaluated { req, total, hits })
}

/// Every record of an in-memory table the call's search language selects (for
/// `lists/export`: paging ignored).
pub fn all_matching(
    call: &Call,
    searchtype: &str,
    records: Vec<Map<String, Value>>,
) -> ApiResult<Vec<Map<String, Value>>> {
    let mut body = call.params.merged();
    body.insert("page".into(), json!("1"));
    body.insert("hitsperpage".into(), json!(records.len().max(1).to_string()));
    Ok(evaluate(body, searchtype, records)?.hits)
}

/// The search language over a built-in table held in memory.
pub async fn search_records(
    call: &mut Call,
    searchtype: &str,
    records: Vec<Map<String, Value>>,
) -> ApiResult<Response> {
    let mut body = call.params.merged();
    if !body.contains_key("hitsperpage") {
        body.insert("hitsperpage".into(), json!("1000"));
    }
    let Evaluated { req, total, hits } = evaluate(body, searchtype, records)?;
    let pages = total.div_ceil(req.hits_per_page as u64);
    Ok(ok_json(json!({
        "response": {
            "status": "ok", "totalhits": total, "searchtype": searchtype, "hitsperpage": req.hits_per_page,
            "page": req.page, "pages": pages, "query": {"friendly": req.friendly, "search": req.friendly}
        },
        "results": hits
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_is_large_and_well_formed() {
        let e = endpoints();
        assert!(e.len() >= 30, "{} endpoints", e.len());
        for rec in e {
            for k in [
                "id",
                "name",
                "url",
                "httpmethod",
                "docsection",
                "samplerequest",
                "description",
            ] {
                assert!(rec.contains_key(k), "{k} missing in {rec:?}");
            }
        }
        let delete = e
            .iter()
            .find(|r| r["name"] == "Delete Asset")
            .expect("Files -> Delete Asset");
        assert_eq!(delete["samplerequest"], "{\"assetid\": \"101\",}");
        assert_eq!(delete["docsection"]["name"], "Files");
        assert!(docsections().len() >= 9);
    }
}
