//! `lists/search/{searchtype}`: the search language over generic tables (list values,
//! the audit log). The EMDB `lists` envelope differs from `module` searches: its `query`
//! is `{"friendly","search"}`.

use super::error::ApiResult;
use super::{ok_json, Call};
use crate::domain::fields::record_field_kind;
use crate::domain::query::{self, FieldInfo};
use axum::response::Response;
use serde_json::{json, Value};

pub async fn search(call: &mut Call, searchtype: &str) -> ApiResult<Response> {
    let body = call.params.merged();
    let resolve = |f: &str| -> Option<FieldInfo> {
        Some(FieldInfo {
            kind: record_field_kind(searchtype, f),
            name: "",
        })
    };
    let req = query::parse_search(&body, searchtype, &resolve)?;
    let page = call.state.store.search_records(&call.catalog, searchtype, &req).await?;
    let pages = page.total.div_ceil(req.hits_per_page as u64);
    let results: Vec<Value> = page.hits.into_iter().map(Value::Object).collect();
    Ok(ok_json(json!({
        "response": {
            "status": "ok",
            "totalhits": page.total,
            "searchtype": searchtype,
            "hitsperpage": req.hits_per_page,
            "page": req.page,
            "pages": pages,
            "query": {"friendly": req.friendly, "search": req.friendly}
        },
        "results": results
    })))
}
