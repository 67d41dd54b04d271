//! The API layer's error, and the one place that renders EnterMediaDB's error
//! envelope with an honest HTTP status (CONTRACT §2).

use crate::blobs::BlobError;
use crate::domain::Invalid;
use crate::ops::OpsError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials, or credentials that are not (or no longer) valid.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that lack the permission.
    #[error("{0}")]
    Forbidden(String),
    /// Unknown record; `extra` carries endpoint-specific response keys (`rowsedited`).
    #[error("not found: {id}")]
    NotFound {
        id: String,
        extra: Vec<(&'static str, Value)>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("unknown endpoint {0}")]
    NoSuchEndpoint(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A failure of ours. Logged with its cause; the client is told only that it happened.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn not_found(id: impl Into<String>) -> Self {
        ApiError::NotFound {
            id: id.into(),
            extra: Vec::new(),
        }
    }
    pub fn bad(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } | ApiError::NoSuchEndpoint(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body, in the envelope EnterMediaDB clients read.
    pub fn body(&self) -> Value {
        let status = self.status();
        match self {
            ApiError::NotFound { id, extra } => {
                let mut resp = serde_json::Map::new();
                resp.insert("status".into(), json!("not found"));
                resp.insert("id".into(), json!(id));
                for (k, v) in extra {
                    resp.insert((*k).into(), v.clone());
                }
                json!({ "response": resp })
            }
            ApiError::Internal(_) => json!({
                "errorcode": "500",
                "response": {"status": "error", "details": "internal error; the server log has the cause"}
            }),
            other => json!({
                "errorcode": status.as_u16().to_string(),
                "response": {"status": "error", "details": other.to_string()}
            }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(cause = %cause, "request failed");
        }
        let status = self.status();
        let mut resp = (status, axum::Json(self.body())).into_response();
        if matches!(self, ApiError::NotFound { .. }) {
            // A deleted asset must not linger in any cache.
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        resp
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::BadRequest(e.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(""),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Stale => ApiError::Conflict("the record changed concurrently; try again".into()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::NotFound => ApiError::not_found(""),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::Invalid(i) => i.into(),
            OpsError::NotFound(id) => ApiError::not_found(id),
            OpsError::Conflict(m) => ApiError::Conflict(m),
            OpsError::TooLarge(m) => ApiError::PayloadTooLarge(m),
            OpsError::Store(s) => s.into(),
            OpsError::Blob(b) => b.into(),
        }
    }
}
