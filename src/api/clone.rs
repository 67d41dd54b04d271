//! `module/asset/clone` (wire §5.6): answers the copy as `assetdetails` does.

use super::assets::details_of;
use super::error::{ApiError, ApiResult};
use super::Call;
use crate::ops::assets as ops_assets;
use axum::response::Response;

pub async fn clone(call: &mut Call) -> ApiResult<Response> {
    let id = call
        .params
        .get("assetid")
        .or_else(|| call.params.get("id"))
        .ok_or_else(|| ApiError::bad("assetid is required, e.g. {\"assetid\":\"101\"}"))?;
    let source = ops_assets::get(&call.ops(), &id).await?;
    let copy = crate::ops::clone::clone(&call.ops(), &source).await?;
    details_of(call, &copy).await
}
