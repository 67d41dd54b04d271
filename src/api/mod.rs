//! The HTTP API: the EnterMediaDB `services/...` surface, `/healthz`, and the one
//! dispatcher that decodes a call, authenticates it, checks its access, runs it, and
//! renders any error in the EnterMediaDB envelope.
//!
//! Only this layer knows the wire format.

mod assets;
mod authn;
mod clone;
mod collections;
mod cors;
mod datamanager;
mod downloads;
pub mod endpoint;
pub mod error;
mod export;
pub mod forwarded;
#[doc(hidden)]
pub mod https_redirect;
mod import_csv;
pub mod key_cache;
pub use mediadb_formats::lenient_json;
mod lists;
mod media;
pub mod metrics_page;
pub(crate) mod orders;
mod records;
pub mod render;
pub mod request;
mod session;
mod settings;
mod system;
mod trash;
mod ui;
mod versions;
mod zipstream;

use crate::app::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use endpoint::{Endpoint, RouteError};
use error::{ApiError, ApiResult};
use futures_util::FutureExt;
use request::Params;
use serde_json::{json, Value};
use session::Caller;
use std::panic::AssertUnwindSafe;

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    // With its own listener, /metrics is served there only.
    if state.config.metrics_listen.is_none() {
        router = router.route("/metrics", get(metrics_page::protected));
    }
    router.fallback(dispatch).with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

/// Whether the database and the file storage both answer, with each one's error.
pub(crate) async fn readiness(state: &AppState) -> (bool, Result<(), String>, Result<(), String>) {
    let db = state.store.ping().await.map_err(|e| e.to_string());
    let files = match state.blobs.get("readyz/probe", Some(0..1)).await {
        Ok(_) | Err(crate::blobs::BlobError::NotFound) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    (db.is_ok() && files.is_ok(), db, files)
}

/// Ready when the database and the file storage both answer.
async fn readyz(State(state): State<AppState>) -> Response {
    let (ok, db, files) = readiness(&state).await;
    let body = json!({
        "status": if ok { "ready" } else { "unavailable" },
        "database": db.err().unwrap_or_else(|| "ok".into()),
        "storage": files.err().unwrap_or_else(|| "ok".into()),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// One API call in progress.
pub struct Call {
    pub state: AppState,
    /// The site id as written in the URL (`None` for `/mediadb/...`).
    pub url_site: Option<String>,
    /// The catalog the site addresses.
    pub catalog: String,
    pub method: Method,
    pub headers: HeaderMap,
    pub params: Params,
    pub caller: Option<Caller>,
    /// Cookies to set on the response.
    pub set_cookies: Vec<String>,
    /// The client's address, as text, for the audit log.
    pub address: String,
    /// The client reached us over HTTPS (our TLS, or a trusted proxy's).
    pub https: bool,
}

impl Call {
    pub fn ops(&self) -> crate::ops::Ctx<'_> {
        crate::ops::Ctx {
            store: self.state.store.as_ref(),
            blobs: &self.state.blobs,
            catalog: &self.catalog,
            user: self.caller.as_ref().map(|c| c.user.id.as_str()).unwrap_or(""),
            address: &self.address,
        }
    }
    pub fn services_prefix(&self) -> String {
        render::services_prefix(self.url_site.as_deref())
    }
    /// Cookies carry `Secure` when the client came over HTTPS or the setting says so.
    pub fn secure_cookies(&self) -> bool {
        self.https || self.state.config.secure_cookies
    }
}

/// A JSON answer with status 200.
pub fn ok_json(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

/// A 200 with any serializable answer, written without an intermediate `Value`.
pub fn ok_body<T: serde::Serialize>(v: &T) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

/// The caller of a request, for the request log.
#[derive(Clone)]
struct LoggedUser(String);

/// A client's `X-Request-Id` when it is short and printable, else a new one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| {
            use rand::Rng;
            format!("{:016x}", rand::thread_rng().gen::<u64>())
        })
}

async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let started = std::time::Instant::now();
    let origin = req.headers().get(header::ORIGIN).cloned();
    let is_preflight = req.method() == Method::OPTIONS;
    let rid = request_id(req.headers());
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let mut route = "unknown";
    let result = AssertUnwindSafe(handle(state.clone(), req, &mut route))
        .catch_unwind()
        .await;
    let mut resp = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::Internal("a handler panicked".into()).into_response(),
    };
    cors::apply(&state.config, origin.as_ref(), is_preflight, resp.headers_mut());
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let user = resp
        .extensions()
        .get::<LoggedUser>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| "-".into());
    let seconds = started.elapsed().as_secs_f64();
    crate::metrics::request(route, resp.status().as_u16(), seconds);
    tracing::info!(
        target: "mediadb::request",
        request_id = %rid, method = %method, route = route, path = %path, status = resp.status().as_u16(),
        ms = seconds * 1000.0, user = %user,
        "request"
    );
    resp
}

/// The name of an endpoint for metrics and logs: its variant, without the arguments
/// (a bounded set of labels, interned once each).
fn route_name(e: &Endpoint) -> &'static str {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let debug = format!("{e:?}");
    let name = debug.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or("");
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    let names = names.get_or_insert_with(HashSet::new);
    match names.get(name) {
        Some(n) => n,
        None => {
            let n: &'static str = Box::leak(name.to_string().into_boxed_str());
            names.insert(n);
            n
        }
    }
}

async fn handle(state: AppState, req: Request, route: &mut &'static str) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let raw_path = parts.uri.path().to_string();
    let Some(sp) = request::split_site_path(&raw_path) else {
        // `/{site}/mediadb` and `/mediadb`: the browser page lives under the slash form.
        if raw_path.ends_with("/mediadb") && request::split_site_path(&format!("{raw_path}/")).is_some() {
            *route = "ui";
            return Ok(ui::redirect(&format!("{raw_path}/")));
        }
        return Err(ApiError::NoSuchEndpoint(raw_path.clone()));
    };
    let catalog = state
        .config
        .catalog_for_site(sp.site)
        .ok_or_else(|| ApiError::NoSuchEndpoint(format!("{raw_path} (no site \"{}\")", sp.site.unwrap_or(""))))?
        .to_string();
    let Some(rest) = sp.rest.strip_prefix("services/") else {
        if parts.method == Method::GET || parts.method == Method::HEAD {
            if let Some(page) = ui::page(&raw_path, sp.rest) {
                *route = "ui";
                return Ok(page);
            }
        }
        return Err(ApiError::NoSuchEndpoint(raw_path.clone()));
    };
    let rest = request::decode_path(rest)?;
    if parts.method == Method::OPTIONS {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let endpoint = endpoint::decode(&parts.method, &rest).map_err(|e| match e {
        RouteError::NotFound => ApiError::NoSuchEndpoint(raw_path.clone()),
        RouteError::Method(allowed) => {
            ApiError::MethodNotAllowed(format!("{} is not allowed here; use {allowed}", parts.method))
        }
    })?;
    *route = route_name(&endpoint);

    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let config = &state.config;
    let client = forwarded::client(peer, &parts.headers, &config.trusted_proxies, config.tls_enabled());
    let mut call = Call {
        address: client.address(),
        https: client.https,
        url_site: sp.site.map(str::to_string),
        catalog,
        method: parts.method.clone(),
        params: Params::from_query(parts.uri.query())?,
        headers: parts.headers,
        caller: None,
        set_cookies: Vec::new(),
        state,
    };

    let is_multipart = call
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("multipart/form-data"));
    let mut stream_body = None;
    if endpoint.streams_body() && is_multipart {
        stream_body = Some(body);
    } else {
        let limit = call.state.config.max_body_bytes;
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(format!("the request body is larger than {limit} bytes")))?;
        request::read_body(&mut call.params, &call.headers, &bytes)?;
    }

    // A multipart upload may carry its key in a form field, read by the handler
    // before the file; everything else is authorised here, before any work.
    if stream_body.is_none() || session::has_key(&call) {
        session::authorize_endpoint(&mut call, &endpoint).await?;
    }

    let mut resp = run(&mut call, endpoint, stream_body).await?;
    if let Some(c) = &call.caller {
        resp.extensions_mut().insert(LoggedUser(c.user.id.clone()));
    }
    for c in &call.set_cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

async fn run(call: &mut Call, endpoint: Endpoint, stream_body: Option<Body>) -> ApiResult<Response> {
    match endpoint {
        Endpoint::Login => authn::login(call, true).await,
        Endpoint::GetKey => authn::login(call, false).await,
        Endpoint::Logout => authn::logout(call).await,
        Endpoint::SystemStatus => Ok(ok_json(json!({"response": {"status": "ok"}}))),
        Endpoint::HelloWorld => Ok(ok_json(
            json!({"response": {"status": "ok", "message": "Hello World !"}}),
        )),
        Endpoint::AcceptingConnections => system::accepting_connections(call).await,
        Endpoint::SoftwareVersions => system::software_versions(call).await,
        Endpoint::ClearDataCache => system::clear_data_cache(call).await,
        Endpoint::AssetCreate => assets::create(call, stream_body).await,
        Endpoint::AssetGet(id) => assets::get(call, &id).await,
        Endpoint::AssetUpdate(id) => assets::update(call, &id).await,
        Endpoint::AssetDelete(id) => assets::delete_one(call, &id).await,
        Endpoint::AssetSearch => assets::search(call).await,
        Endpoint::DeleteAssets => assets::delete_assets(call).await,
        Endpoint::DownloadOriginal(path) => downloads::original(call, &path).await,
        Endpoint::TrashSearch => trash::search(call).await,
        Endpoint::TrashRestore => trash::restore(call).await,
        Endpoint::TrashPurge => trash::purge(call).await,
        Endpoint::JobStatus(id) => trash::job_status(call, &id).await,
        Endpoint::ListSearch(t) if ui::is_catalog(&t) => ui::search_catalog(call, &t).await,
        Endpoint::ListSearch(t) if t == "convertpreset" => ui::search_records(call, &t, media::presets()).await,
        Endpoint::ListSearch(t) => lists::search(call, &t).await,
        Endpoint::UserCreate => settings::user_create(call).await,
        Endpoint::UserSearch => settings::user_search(call).await,
        Endpoint::UserGet(id) => settings::user_get(call, &id).await,
        Endpoint::UserUpdate(id) => settings::user_update(call, &id).await,
        Endpoint::UserDelete(id) => settings::user_delete(call, &id).await,
        Endpoint::UserGroup { add } => settings::user_group(call, add).await,
        Endpoint::UserKeys => settings::user_keys(call).await,
        Endpoint::UserRevokeKeys => settings::user_revoke_keys(call).await,
        Endpoint::GroupCreate => settings::group_create(call).await,
        Endpoint::GroupSearch => settings::group_search(call).await,
        Endpoint::GroupGet(id) => settings::group_get(call, &id).await,
        Endpoint::GroupUpdate(id) => settings::group_update(call, &id).await,
        Endpoint::GroupDelete(id) => settings::group_delete(call, &id).await,
        Endpoint::Generated(path) => downloads::rendition(call, &path, false).await,
        Endpoint::Generate(path) => downloads::rendition(call, &path, true).await,
        Endpoint::ConvertAsset => media::convert(call).await,
        Endpoint::CustomThumb => media::custom_thumb(call, stream_body).await,
        Endpoint::DmImport => import_csv::import(call, stream_body).await,
        Endpoint::UserExport => settings::user_export(call).await,
        Endpoint::DmAddTable => datamanager::add_table(call).await,
        Endpoint::DmDeleteTable => datamanager::delete_table(call).await,
        Endpoint::DmSaveField => datamanager::save_field(call).await,
        Endpoint::DmReload => datamanager::reload(call).await,
        Endpoint::UserImport => settings::user_import(call, stream_body).await,
        Endpoint::ListConversions => media::list(call).await,
        Endpoint::RemoveAssetImages => media::remove_images(call).await,
        Endpoint::RotateAsset => media::rotate(call).await,
        Endpoint::AssetDetails => assets::details(call).await,
        Endpoint::ValidateUser => authn::validate_user(call).await,
        Endpoint::CollectionAssets { add } => collections::membership(call, add).await,
        Endpoint::CollectionSearchAssets => collections::search_assets(call).await,
        Endpoint::CollectionDownload => collections::download_zip(call).await,
        Endpoint::RecordExport(t) => export::csv(call, &t).await,
        Endpoint::RecordSearchOrCreate(t) => records::search_or_create(call, &t).await,
        Endpoint::AssetClone => clone::clone(call).await,
        Endpoint::Basket { add } => orders::basket(call, add).await,
        Endpoint::OrderItems => orders::list(call).await,
        Endpoint::OrderDownload => orders::download(call).await,
        Endpoint::OpenOrders => orders::open_orders(call).await,
        Endpoint::RecentOrderItems => orders::recent_items(call).await,
        Endpoint::OrderDetails => orders::order_details(call).await,
        Endpoint::Revisions => versions::get_revisions(call).await,
        Endpoint::RestoreVersion => versions::restore_version(call).await,
        Endpoint::ModuleCreate => datamanager::module_create(call).await,
        Endpoint::ModuleList => datamanager::module_list(call).await,
        Endpoint::ModuleGet(id) => datamanager::module_get(call, &id).await,
        Endpoint::ModuleUpdate(id) => datamanager::module_update(call, &id).await,
        Endpoint::ModuleDelete(id) => datamanager::module_delete(call, &id).await,
        Endpoint::DmListTables => datamanager::list_tables(call).await,
        Endpoint::DmListFields => datamanager::list_fields(call).await,
        Endpoint::DmAddField => datamanager::add_field(call).await,
        Endpoint::DmRemoveField => datamanager::remove_field(call).await,
        Endpoint::DmReindex => datamanager::reindex(call).await,
        Endpoint::DmExport(t) => datamanager::export_table(call, &t).await,
        Endpoint::CategoryTree => {
            let root = call.params.get("categoryid").unwrap_or_else(|| "index".into());
            let tree = crate::ops::categories::tree(call.state.store.as_ref(), &call.catalog, &root).await?;
            Ok(ok_json(tree))
        }
        Endpoint::RecordCreate { table, module } => records::create(call, &table, module).await,
        Endpoint::RecordGet { table, id } => records::get(call, &table, &id).await,
        Endpoint::RecordUpdate { table, id, module } => records::update(call, &table, &id, module).await,
        Endpoint::RecordDelete { table, id, module } => records::delete(call, &table, &id, module).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_are_variant_names() {
        for (method, path) in Endpoint::samples() {
            let e = endpoint::decode(&method, path).unwrap();
            let name = route_name(&e);
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
                "{path}: {name}"
            );
            assert!(std::ptr::eq(name, route_name(&e)), "interned once");
        }
        assert_eq!(route_name(&Endpoint::AssetGet("x".into())), "AssetGet");
    }
}
