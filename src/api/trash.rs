//! `module/asset/trash/*` (search, restore, purge) and the status of bulk jobs.

use super::assets::{asset_ids, bulk, is_bulk, not_found_ids, search_in};
use super::error::{ApiError, ApiResult};
use super::{ok_json, Call};
use crate::ops::trash;
use crate::store::Scope;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn search(call: &mut Call) -> ApiResult<Response> {
    search_in(call, Scope::Trash).await
}

/// Brings assets back from the trash with their ids, metadata and originals.
pub async fn restore(call: &mut Call) -> ApiResult<Response> {
    if call.params.get_value("assetid").is_none() && is_bulk(call) {
        return bulk(call, trash::BULK_RESTORE).await;
    }
    let ids = asset_ids(call)?;
    let r = trash::restore(&call.ops(), &ids).await?;
    if r.restored.is_empty() {
        if let [(id, sp)] = r.conflicts.as_slice() {
            return Err(ApiError::Conflict(format!(
                "asset \"{id}\" cannot return to \"{sp}\": another asset holds that sourcepath now"
            )));
        }
        if r.conflicts.is_empty() {
            return Err(not_found_ids(r.missing));
        }
    }
    let mut response = json!({"status": "ok", "rowsedited": r.restored.len().to_string(), "restored": r.restored});
    if !r.missing.is_empty() {
        response["notfound"] = json!(r.missing);
    }
    if !r.conflicts.is_empty() {
        response["conflicts"] = r
            .conflicts
            .iter()
            .map(|(id, sp)| json!({"id": id, "sourcepath": sp}))
            .collect();
        if r.restored.is_empty() {
            response["status"] = json!("error");
            let body = json!({ "response": response });
            return Ok((axum::http::StatusCode::CONFLICT, axum::Json(body)).into_response());
        }
    }
    Ok(ok_json(json!({ "response": response })))
}

/// Removes assets and their files for good (from the trash, or live ones too).
pub async fn purge(call: &mut Call) -> ApiResult<Response> {
    if call.params.get_value("assetid").is_none() && is_bulk(call) {
        return bulk(call, trash::BULK_PURGE).await;
    }
    let ids = asset_ids(call)?;
    let (purged, missing) = trash::purge(&call.ops(), &ids).await?;
    if purged.is_empty() {
        return Err(not_found_ids(missing));
    }
    let mut response = json!({"status": "ok", "rowsedited": purged.len().to_string()});
    if !missing.is_empty() {
        response["notfound"] = json!(missing);
    }
    Ok(ok_json(json!({ "response": response })))
}

/// The state of a bulk job.
pub async fn job_status(call: &mut Call, id: &str) -> ApiResult<Response> {
    let job = call
        .state
        .store
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(id))?;
    if job.catalog != call.catalog {
        return Err(ApiError::not_found(id));
    }
    Ok(ok_json(json!({
        "response": {"status": "ok", "id": job.id},
        "data": {
            "id": job.id, "kind": job.kind, "state": job.state, "attempts": job.attempts.to_string(),
            "progress": job.progress, "result": job.result, "created": job.created, "updated": job.updated
        }
    })))
}
