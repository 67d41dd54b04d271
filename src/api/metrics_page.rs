//! `/metrics` in the Prometheus text format. On the main listener it needs the
//! `metrics_token` as a bearer token or an administrator's key; on its own listener
//! (`metrics_listen`, meant for a private address) it is open.

use super::error::ApiError;
use super::request::{presented_key, Params};
use super::{session, Call};
use crate::app::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The page on the main listener.
pub async fn protected(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    match allowed(&state, &parts).await {
        Ok(()) => page(&state).await,
        Err(e) => {
            let mut resp = e.into_response();
            if resp.status() == StatusCode::UNAUTHORIZED {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            }
            resp
        }
    }
}

/// The page on the separate metrics listener.
pub async fn open(State(state): State<AppState>) -> Response {
    page(&state).await
}

async fn page(state: &AppState) -> Response {
    let body = crate::metrics::render(state.store.as_ref()).await;
    (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares without leaking, through timing, how much of the token was right.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn allowed(state: &AppState, req: &axum::http::request::Parts) -> Result<(), ApiError> {
    if let (Some(token), Some(given)) = (&state.config.metrics_token, bearer(&req.headers)) {
        if same_secret(token, given) {
            return Ok(());
        }
        return Err(ApiError::Unauthorized(
            "the bearer token is not the metrics token".into(),
        ));
    }
    let params = Params::from_query(req.uri.query()).unwrap_or_default();
    let catalog = state.config.sites.first().cloned().unwrap_or_default();
    // Cookies are not accepted: a page that only machines read needs no browser session.
    let Some((key, _)) = presented_key(&params, &req.headers, &catalog, false) else {
        return Err(ApiError::Unauthorized(
            "send the metrics token (Authorization: Bearer ...) or an administrator's entermedia.key".into(),
        ));
    };
    let call = Call {
        state: state.clone(),
        url_site: None,
        catalog,
        method: req.method.clone(),
        headers: req.headers.clone(),
        params,
        caller: None,
        set_cookies: Vec::new(),
        address: String::new(),
        https: false,
    };
    let Some(caller) = session::resolve_key(&call, &key).await? else {
        return Err(ApiError::Unauthorized("the entermedia.key is not valid".into()));
    };
    let groups = state.store.user_groups(&caller.user.id).await?;
    if groups.iter().any(|g| g == crate::auth::permissions::ADMINISTRATORS) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "user \"{}\" is not an administrator",
            caller.user.id
        )))
    }
}
