//! `system/*` (wire §9.6) beyond `systemstatus`: whether this server accepts work, the
//! software's versions, and the per-process caches dropped on demand.

use super::error::ApiResult;
use super::{ok_json, Call};
use axum::response::Response;
use serde_json::json;

/// `acceptingconnections`: EnterMediaDB's answer for load balancers, from the same check
/// as `/readyz` (the database and the file storage answer). Always 200: the answer is in
/// `accepting`, as EnterMediaDB gives it.
pub async fn accepting_connections(call: &mut Call) -> ApiResult<Response> {
    let (ok, db, files) = super::readiness(&call.state).await;
    // The answer is public: the causes go to the log, not to the caller.
    let message = match (&db, &files) {
        (Ok(()), Ok(())) => "the database and the file storage answer",
        (Err(e), _) => {
            tracing::warn!(error = %e, "not accepting connections: the database does not answer");
            "the database does not answer"
        }
        (_, Err(e)) => {
            tracing::warn!(error = %e, "not accepting connections: the file storage does not answer");
            "the file storage does not answer"
        }
    };
    Ok(ok_json(json!({
        "response": {"status": "ok", "accepting": ok.to_string(), "message": message}
    })))
}

/// `softwareversions`: this server's version and which store it runs on.
pub async fn software_versions(call: &mut Call) -> ApiResult<Response> {
    let store = if call.state.config.database_url.is_some() {
        "postgresql"
    } else {
        "sqlite"
    };
    Ok(ok_json(json!({
        "response": {"status": "ok", "totalhits": "1"},
        "results": [
            {"id": "mediadb", "name": "MediaDB", "version": env!("CARGO_PKG_VERSION"), "store": store}
        ]
    })))
}

/// `cleardatacache`: no asset, record or search result is cached, so there is no data
/// to clear; what a process does keep is dropped and read again: the callers resolved
/// from keys and the custom field definitions.
pub async fn clear_data_cache(call: &mut Call) -> ApiResult<Response> {
    let callers = call.state.keys.clear();
    crate::ops::customfields::refresh(call.state.store.as_ref()).await?;
    Ok(ok_json(json!({
        "response": {"status": "ok", "callers": callers.to_string(), "fielddefinitions": "reloaded"}
    })))
}
