//! `module/asset/*`: create (upload), data GET/PUT/DELETE, search and deleteassets.

use super::endpoint::Access;
use super::error::{ApiError, ApiResult};
use super::render::{AssetJson, Names};
use super::session;
use super::{lenient_json, ok_body, ok_json, Call};
use crate::auth::Permission;
use crate::domain::asset::{Asset, Original};
use crate::domain::query;
use crate::ops::assets::{self as ops_assets, CreateRequest};
use crate::ops::ingest::{self, ClientStreamError};
use crate::ops::trash;
use crate::store::Scope;
use axum::body::Body;
use axum::http::header;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use base64::Engine;
use futures_util::StreamExt;
use mediadb_formats::multipart;
use serde_json::{json, Map, Value};

const CREATE: Access = Access::Requires(Permission::CreateData);

/// `{"response": ..., "data": asset}`, the asset written straight from its fields.
async fn answer_one(call: &Call, response: Value, asset: &Asset) -> Response {
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        response: Value,
        data: AssetJson<'a>,
    }
    let names = Names::for_assets(call.state.store.as_ref(), &call.catalog, &[asset]).await;
    let prefix = call.services_prefix();
    ok_body(&Answer {
        response,
        data: AssetJson::new(asset, &names, &prefix),
    })
}

/// `POST module/asset/create`: a multipart upload (metadata in `jsonrequest` or an
/// `application/json` part, the first other file part is the file) or a JSON record.
pub async fn create(call: &mut Call, body: Option<Body>) -> ApiResult<Response> {
    let mut original: Option<Original> = None;
    if let Some(body) = body {
        if let Err(e) = read_multipart(call, body, &mut original).await {
            if let Some(o) = original.take() {
                let _ = call.state.blobs.delete(&o.blob_key).await;
            }
            return Err(e);
        }
    }
    let checked = match &original {
        Some(o) => refuse_pixel_bombs(call, o).await,
        None => Ok(()),
    };
    let result = match checked {
        Ok(()) => create_record(call, original.clone()).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        if let Some(o) = original {
            let _ = call.state.blobs.delete(&o.blob_key).await;
        }
    }
    result
}

/// `importpath` (copy), `localPath` (move) or `fetchURL`, when the call names one:
/// the file stored as a new blob.
async fn server_side_source(call: &Call, moved_from: &mut Option<std::path::PathBuf>) -> ApiResult<Option<Original>> {
    let cfg = &call.state.config;
    let max = cfg.max_upload_bytes;
    let (name, stream) = if let Some(p) = call.params.get("importpath") {
        let (_, name, stream) = crate::ops::remote::local_file(&p, &cfg.import_roots).await?;
        (name, stream)
    } else if let Some(p) = call.params.get("localPath") {
        let (path, name, stream) = crate::ops::remote::local_file(&p, &cfg.import_roots).await?;
        *moved_from = Some(path);
        (name, stream)
    } else if let Some(u) = call.params.get("fetchURL").or_else(|| call.params.get("fetchurl")) {
        let timeout = std::time::Duration::from_secs(cfg.fetch_timeout_secs.max(1));
        crate::ops::remote::fetch(&u, cfg.fetch_allow_private, timeout).await?
    } else {
        return Ok(None);
    };
    let name = call.params.get("importfilename").unwrap_or(name);
    let name = clean_filename(&name)?;
    Ok(Some(ingest::receive(&call.state.blobs, &name, stream, max).await?))
}

async fn create_record(call: &mut Call, original: Option<Original>) -> ApiResult<Response> {
    session::authorize(call, CREATE).await?;
    let mut original = original;
    let mut moved_from = None;
    // A file the server fetched or imported itself is removed here if the record fails
    // (an uploaded one is removed by `create`).
    let mut own_blob = None;
    if original.is_none() {
        original = server_side_source(call, &mut moved_from).await?;
        own_blob = original.as_ref().map(|o| o.blob_key.clone());
        if let Some(o) = &original {
            if let Err(e) = refuse_pixel_bombs(call, o).await {
                let _ = call.state.blobs.delete(&o.blob_key).await;
                return Err(e);
            }
        }
    }
    let values = call.params.merged();
    let params = call.params.clone();
    let param = move |k: &str| params.get(k);
    let req = CreateRequest {
        id: call.params.get("id"),
        sourcepath: call.params.get("sourcepath"),
        values,
        original,
        param: &param,
        new_version_of_existing: true,
    };
    let created = match ops_assets::create(&call.ops(), req).await {
        Ok(c) => c,
        Err(e) => {
            if let Some(key) = own_blob {
                let _ = call.state.blobs.delete(&key).await;
            }
            return Err(e.into());
        }
    };
    if let Some(path) = moved_from {
        crate::ops::remote::remove_source(&path).await;
    }
    call.state.wake.notify_waiters();
    let mut response = json!({"status": "ok", "id": created.asset.id});
    if !created.changes.ignored.is_empty() {
        response["ignoredfields"] = json!(created.changes.ignored);
    }
    Ok(answer_one(call, response, &created.asset).await)
}

/// The multipart reader of a `multipart/form-data` body; a 400 without a usable boundary.
pub(super) fn open_multipart(call: &Call, body: Body) -> ApiResult<multer::Multipart<'static>> {
    let ctype = call
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(ctype)
        .map_err(|e| ApiError::bad(format!("multipart/form-data without a usable boundary: {e}")))?;
    Ok(multer::Multipart::new(body.into_data_stream(), boundary))
}

async fn read_multipart(call: &mut Call, body: Body, original: &mut Option<Original>) -> ApiResult<()> {
    let mut mp = open_multipart(call, body)?;
    let limit = call.state.config.max_body_bytes;
    let broken = |e: multer::Error| ApiError::bad(format!("the multipart body is broken: {e}"));
    while let Some(mut field) = mp.next_field().await.map_err(broken)? {
        let name = field.name().unwrap_or("").to_string();
        let filename = field.file_name().map(str::to_string);
        let is_json = multipart::is_json_part(&field);
        if is_json {
            let bytes = read_small(&mut field, limit).await?;
            take_field(call, name, true, bytes)?;
        } else if let Some(fname) = filename {
            if original.is_some() {
                // Only the first file is the asset's; the rest are read and dropped.
                while field.chunk().await.map_err(broken)?.is_some() {}
                continue;
            }
            // The file is the expensive part: refuse it before storing a byte.
            session::authorize(call, CREATE).await?;
            let fname = clean_filename(&fname)?;
            let stream = field.map(|r| r.map_err(|e| ClientStreamError(e.to_string())));
            let max = call.state.config.max_upload_bytes;
            *original = Some(ingest::receive(&call.state.blobs, &fname, Box::pin(stream), max).await?);
        } else {
            let bytes = read_small(&mut field, limit).await?;
            take_field(call, name, false, bytes)?;
        }
    }
    Ok(())
}

/// A multipart part that is not the file, into the call's parameters: a JSON part
/// (`jsonrequest`) merged into the JSON body, any other as a form field.
pub(super) fn take_field(call: &mut Call, name: String, is_json: bool, bytes: Vec<u8>) -> ApiResult<()> {
    if is_json {
        let v = lenient_json::parse(&bytes).map_err(|e| ApiError::bad(format!("part \"{name}\": {e}")))?;
        let Value::Object(m) = v else {
            return Err(ApiError::bad(format!("part \"{name}\" must hold a JSON object")));
        };
        call.params.json.get_or_insert_with(Map::new).extend(m);
    } else {
        let text = String::from_utf8(bytes).map_err(|_| ApiError::bad(format!("field \"{name}\" is not UTF-8")))?;
        call.params.form.push((name, text));
    }
    Ok(())
}

pub(super) async fn read_small(field: &mut multer::Field<'_>, limit: usize) -> ApiResult<Vec<u8>> {
    multipart::read_small(field, limit).await.map_err(|e| match e {
        multipart::FieldError::Broken(_) => ApiError::bad(e.to_string()),
        multipart::FieldError::TooLarge(_) => ApiError::PayloadTooLarge(e.to_string()),
    })
}

/// The file name of an upload (see [`multipart::clean_filename`]); a 400 when unusable.
pub(super) fn clean_filename(raw: &str) -> ApiResult<String> {
    multipart::clean_filename(raw).map_err(ApiError::bad)
}

/// The id of a `data/{id}` call: the `id` parameter when present (EnterMediaDB's
/// `data/index.html` form), else the path segment.
fn data_id(call: &Call, path_id: &str) -> String {
    call.params.get("id").unwrap_or_else(|| path_id.to_string())
}

pub async fn get(call: &mut Call, path_id: &str) -> ApiResult<Response> {
    let id = data_id(call, path_id);
    let asset = ops_assets::get(&call.ops(), &id).await?;
    Ok(answer_one(call, json!({"status": "ok", "id": asset.id}), &asset).await)
}

pub async fn update(call: &mut Call, path_id: &str) -> ApiResult<Response> {
    let id = data_id(call, path_id);
    let values = call.params.merged();
    if values
        .keys()
        .all(|k| k == "id" || k == "entermedia.key" || k == "entermediakey")
    {
        return Err(ApiError::bad(
            "nothing to update: send the field values as JSON, e.g. {\"longcaption\":\"...\"}",
        ));
    }
    let (asset, changes) = ops_assets::update(&call.ops(), &id, &values).await?;
    let mut response = json!({"status": "ok", "id": asset.id});
    if !changes.ignored.is_empty() {
        response["ignoredfields"] = json!(changes.ignored);
    }
    Ok(answer_one(call, response, &asset).await)
}

pub fn wants(call: &Call, name: &str) -> bool {
    call.params.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

pub async fn delete_one(call: &mut Call, path_id: &str) -> ApiResult<Response> {
    let id = data_id(call, path_id);
    let done = ops_assets::delete(&call.ops(), std::slice::from_ref(&id), wants(call, "deleteoriginal")).await?;
    if done.deleted.is_empty() {
        return Err(ApiError::not_found(id));
    }
    Ok(ok_json(json!({"response": {"status": "ok", "id": id}})))
}

/// `POST module/asset/deleteassets` `{"assetid":"101"}` or `{"assetid":["101","102"]}`;
/// with a `query` or `hitssessionid` instead, every match, as a job.
pub async fn delete_assets(call: &mut Call) -> ApiResult<Response> {
    if call.params.get_value("assetid").is_none() && is_bulk(call) {
        return bulk(call, trash::BULK_DELETE).await;
    }
    let ids = asset_ids(call)?;
    let done = ops_assets::delete(&call.ops(), &ids, wants(call, "deleteoriginal")).await?;
    if done.deleted.is_empty() {
        return Err(not_found_ids(done.missing));
    }
    let mut response = json!({"status": "ok", "rowsedited": done.deleted.len().to_string()});
    if !done.missing.is_empty() {
        response["notfound"] = json!(done.missing);
    }
    Ok(ok_json(json!({ "response": response })))
}

/// 404 for a call none of whose ids exist, naming them.
pub fn not_found_ids(missing: Vec<String>) -> ApiError {
    ApiError::NotFound {
        id: missing.join(","),
        extra: vec![("rowsedited", json!("0")), ("notfound", json!(missing))],
    }
}

/// Whether a call names its assets by a search (a query or a `hitssessionid`).
pub fn is_bulk(call: &Call) -> bool {
    [
        "query",
        "orqueries",
        "hitssessionid",
        "assethitssessionid",
        "hitsessionid",
    ]
    .iter()
    .any(|k| call.params.get_value(k).is_some())
}

/// Starts a bulk operation over every asset a search matches; answers 202 with the job.
pub async fn bulk(call: &mut Call, kind: &str) -> ApiResult<Response> {
    let body = search_body(call)?;
    let guard = trash::Guard {
        min_count: call.state.config.bulk_confirm_min,
        share: call.state.config.bulk_confirm_share,
    };
    let (jobid, matched) = trash::enqueue_bulk(&call.ops(), kind, &body, wants(call, "confirm"), guard).await?;
    call.state.wake.notify_waiters();
    let status_url = format!("{}/module/asset/jobs/{jobid}", call.services_prefix());
    let body = json!({"response": {
        "status": "queued", "jobid": jobid, "totalhits": matched.to_string(), "statusurl": status_url
    }});
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// The `assetid` parameter: one id, or a list of them.
pub fn asset_ids(call: &Call) -> ApiResult<Vec<String>> {
    let ids: Vec<String> = match call.params.get_value("assetid") {
        None => {
            return Err(ApiError::bad(
                "assetid is required, e.g. {\"assetid\":\"101\"} or {\"assetid\":[\"101\",\"102\"]}",
            ))
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(ApiError::bad(format!("assetid entries must be ids, not {other}"))),
            })
            .collect::<ApiResult<_>>()?,
        Some(Value::String(s)) => vec![s],
        Some(Value::Number(n)) => vec![n.to_string()],
        Some(other) => {
            return Err(ApiError::bad(format!(
                "assetid must be an id or a list of ids, not {other}"
            )))
        }
    };
    if ids.is_empty() {
        return Err(ApiError::bad("assetid lists no asset"));
    }
    Ok(ids)
}

const SESSION_KEYS: &[&str] = &["hitssessionid", "assethitssessionid", "hitsessionid"];
/// The key never travels in a session id; the page does, for `next` and `previous`.
const NOT_IN_SESSION: &[&str] = &["entermedia.key", "entermediakey"];

/// A `hitsessionid` names a search by encoding it, so any server can page it again
/// without shared session state.
pub fn encode_session(body: &Map<String, Value>) -> String {
    let kept: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| !SESSION_KEYS.contains(&k.as_str()) && !NOT_IN_SESSION.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    format!(
        "hits{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Value::Object(kept).to_string())
    )
}

fn decode_session(id: &str) -> ApiResult<Map<String, Value>> {
    let bad = || {
        ApiError::bad(format!(
            "hitssessionid \"{id}\" names no search; search again without it"
        ))
    };
    let raw = id.strip_prefix("hits").ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| bad())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad()),
    }
}

/// `POST module/asset/search` with the search language of wire §5.2.
pub async fn search(call: &mut Call) -> ApiResult<Response> {
    search_in(call, Scope::Live).await
}

/// The search body of a call, with a `hitsessionid` expanded into the search it names.
pub fn search_body(call: &Call) -> ApiResult<Map<String, Value>> {
    let mut body = call.params.merged();
    if !body.contains_key("query") && !body.contains_key("orqueries") {
        if let Some(sid) = SESSION_KEYS
            .iter()
            .find_map(|k| body.get(*k).and_then(Value::as_str).map(str::to_string))
        {
            let mut stored = decode_session(&sid)?;
            let current = stored
                .get("page")
                .or_else(|| stored.get("assetpage"))
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or_else(|| v.as_u64().map(|n| n.to_string()))
                })
                .and_then(|p| p.parse::<u32>().ok())
                .unwrap_or(1);
            stored.remove("assetpage");
            for k in ["page", "assetpage", "hitsperpage"] {
                if let Some(v) = body.get(k) {
                    let v = match v.as_str() {
                        Some("next") => json!((current + 1).to_string()),
                        Some("previous") => json!(current.saturating_sub(1).max(1).to_string()),
                        _ => v.clone(),
                    };
                    stored.insert(if k == "assetpage" { "page".into() } else { k.to_string() }, v);
                }
            }
            body = stored;
        }
    }
    if let Some(p @ ("next" | "previous")) = body.get("page").and_then(Value::as_str) {
        return Err(ApiError::bad(format!(
            "page \"{p}\" needs the hitssessionid of the answer it continues"
        )));
    }
    Ok(body)
}

pub async fn search_in(call: &mut Call, scope: Scope) -> ApiResult<Response> {
    let body = search_body(call)?;
    let req = query::parse_search(&body, "asset", &ops_assets::field_info)?;
    let page = ops_assets::search(&call.ops(), &req, scope).await?;
    let refs: Vec<&Asset> = page.hits.iter().collect();
    let names = Names::for_assets(call.state.store.as_ref(), &call.catalog, &refs).await;
    let prefix = call.services_prefix();
    let filteroptions = if req.show_filters && scope == Scope::Live {
        Some(filter_options(call, &req).await?)
    } else {
        None
    };
    let pages = page.total.div_ceil(req.hits_per_page as u64);
    Ok(ok_body(&HitsAnswer {
        response: json!({
            "status": "ok",
            "totalhits": page.total,
            "searchtype": "asset",
            "hitsperpage": req.hits_per_page,
            "page": req.page,
            "pages": pages,
            "hitsessionid": encode_session(&body),
            "query": {"friendly": req.friendly, "terms": req.echo_terms}
        }),
        results: page.hits.iter().map(|a| AssetJson::new(a, &names, &prefix)).collect(),
        filteroptions,
    }))
}

/// A page of asset hits: the response envelope, the hits written straight from their
/// fields, and the facets when asked for.
#[derive(serde::Serialize)]
pub struct HitsAnswer<'a> {
    pub response: Value,
    pub results: Vec<AssetJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filteroptions: Option<Value>,
}

/// The fields `showfilters` counts, as EnterMediaDB's default filters.
const FACET_FIELDS: &[&str] = &[
    "assettype",
    "fileformat",
    "keywords",
    "category-exact",
    "editstatus",
    "owner",
];
const FACET_VALUES: u32 = 50;

/// `filteroptions`: per facet field, its values among the matches with counts (as strings).
async fn filter_options(call: &Call, req: &query::SearchRequest) -> ApiResult<Value> {
    let mut counts = call
        .state
        .store
        .facet_counts(&call.catalog, req, FACET_FIELDS, FACET_VALUES)
        .await?;
    // Custom fields have no maintained counts: a query other than `All` (the same
    // matches) makes every store count them over the matching assets.
    let custom: Vec<&str> = crate::domain::fields::custom::all()
        .into_iter()
        .filter(|d| crate::domain::fields::custom::faceted(d.kind))
        .map(|d| d.id)
        .collect();
    if !custom.is_empty() {
        let mut over_matches = req.clone();
        if over_matches.query == query::Query::All {
            over_matches.query = query::Query::And(vec![query::Query::All]);
        }
        counts.extend(
            call.state
                .store
                .facet_counts(&call.catalog, &over_matches, &custom, FACET_VALUES)
                .await?,
        );
    }
    let mut pairs = Vec::new();
    for (field, values) in &counts {
        if let Some(table) = crate::domain::fields::asset_field(field).and_then(|d| d.kind.list_table()) {
            pairs.extend(values.iter().map(|(v, _)| (table, v.clone())));
        }
    }
    let names = Names::lookup(call.state.store.as_ref(), &call.catalog, pairs).await;
    let out: Vec<Value> = counts
        .into_iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(field, values)| {
            let def = crate::domain::fields::asset_field(&field);
            let table = def.and_then(|d| d.kind.list_table());
            let children: Vec<Value> = values
                .into_iter()
                .map(|(v, n)| {
                    let name = table
                        .and_then(|t| names.name(t, &v))
                        .map(|n| n.into_owned())
                        .unwrap_or_else(|| v.clone());
                    json!({"id": v, "name": name, "count": n.to_string()})
                })
                .collect();
            json!({"id": field, "name": def.map(|d| d.name).unwrap_or(""), "children": children})
        })
        .collect();
    Ok(Value::Array(out))
}

/// How much of an upload's head is read to learn an image's size.
const HEADER_BYTES: u64 = 256 * 1024;

/// A decompression bomb (an image whose header announces more pixels than the limit) is
/// refused at upload with a 400, before a record exists; the file is removed by the caller.
async fn refuse_pixel_bombs(call: &Call, o: &Original) -> ApiResult<()> {
    let read = call
        .state
        .blobs
        .get(&o.blob_key, Some(0..o.size.min(HEADER_BYTES)))
        .await?;
    let mut head = Vec::new();
    let mut stream = read.stream;
    while let Some(chunk) = stream.next().await {
        head.extend_from_slice(&chunk?);
    }
    let info = tokio::task::spawn_blocking(move || crate::media::probe::probe_reader(&mut std::io::Cursor::new(head)))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Ok(crate::media::MediaInfo {
        width: Some(w),
        height: Some(h),
        ..
    }) = info
    {
        let limit = call.state.config.max_image_pixels;
        if w as u64 * h as u64 > limit {
            return Err(ApiError::bad(format!(
                "the image is {w}x{h} pixels, more than the limit of {limit}; nothing was stored"
            )));
        }
    }
    Ok(())
}

/// The fields `assetdetails` answers (EMDB's `restassetdetails` view).
const DETAIL_FIELDS: &[&str] = &[
    "id",
    "sourcepath",
    "assettitle",
    "longcaption",
    "importstatus",
    "previewstatus",
    "editstatus",
    "name",
    "height",
    "width",
    "colortype",
    "assetcreationdate",
    "assetmodificationdate",
    "language",
    "purpose",
    "datatype",
    "imageorientation",
    "length",
    "framerate",
    "keywords",
    "fileformat",
    "assettype",
];

/// `module/asset/assetdetails` `{"assetid":"101"}` (or `sourcepath`): the asset's main fields
/// and its thumbnail, preview and original URLs.
pub async fn details(call: &mut Call) -> ApiResult<Response> {
    let asset = match (
        call.params.get("assetid").or_else(|| call.params.get("id")),
        call.params.get("sourcepath"),
    ) {
        (Some(id), _) => ops_assets::get(&call.ops(), &id).await?,
        (None, Some(sp)) => ops_assets::get_by_sourcepath(&call.ops(), &sp)
            .await?
            .ok_or_else(|| ApiError::not_found(sp))?,
        (None, None) => {
            return Err(ApiError::bad(
                "assetid (or sourcepath) is required, e.g. {\"assetid\":\"101\"}",
            ))
        }
    };
    details_of(call, &asset).await
}

/// One asset in the `assetdetails` shape (also the answer of `clone`).
pub async fn details_of(call: &Call, asset: &Asset) -> ApiResult<Response> {
    let names = Names::for_assets(call.state.store.as_ref(), &call.catalog, &[asset]).await;
    let full = serde_json::to_value(AssetJson::new(asset, &names, &call.services_prefix()))
        .map_err(|e| ApiError::Internal(format!("rendering asset {}: {e}", asset.id)))?;
    let data: Map<String, Value> = DETAIL_FIELDS
        .iter()
        .filter_map(|f| full.get(*f).map(|v| (f.to_string(), v.clone())))
        .collect();
    let link = |preset: &str| {
        full["downloads"]
            .as_array()
            .and_then(|d| d.iter().find(|x| x["id"] == preset))
            .and_then(|x| x["url"].as_str())
            .map(str::to_string)
    };
    let original = full["originalurl"]
        .as_str()
        .map(|u| format!("{}/module/asset/downloads/originals/{u}", call.services_prefix()));
    Ok(ok_json(json!({
        "response": {"status": "ok", "id": asset.id},
        "data": data,
        "thumb": link("thumbimage"),
        "preview": link("largeimage"),
        "original": original,
    })))
}
