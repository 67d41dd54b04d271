//! The import pipeline (wire §8) as an idempotent job: read the original's metadata into
//! the fields the uploader left empty, render the presets, and record both on the asset
//! with the store's version guard, so a job for a deleted asset writes nothing and a
//! finishing conversion can never resurrect it.

use super::jobs::JobEnv;
use super::{OpsError, OpsResult};
use crate::domain::asset::Asset;
use crate::media::{self, MediaError, Preset, RenderOptions, Rotation};
use crate::store::{Job, StoreError};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

pub const IMPORT: &str = "import";

/// Where an asset keeps its renditions (not a field: never written by clients, never
/// indexed, untouched by metadata edits).
pub const RENDITIONS_KEY: &str = "_renditions";
/// Quarter turns applied on top of the EXIF orientation (`rotateasset`), in degrees.
pub const ROTATION_KEY: &str = "_rotation";

/// One stored rendition of an asset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredRendition {
    pub preset: String,
    pub name: String,
    /// The preset's `generatedoutputfile` (`image200x200.jpg`).
    pub file: String,
    pub blob: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

impl StoredRendition {
    /// A strong ETag: the blob key is new whenever the rendition is regenerated.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.blob.rsplit('/').next().unwrap_or(&self.blob))
    }
}

/// Where an asset keeps an uploaded custom thumbnail (`media/customthumb`): the image its
/// renditions are made from instead of the original, until `removeassetimages` or the next
/// custom thumbnail.
pub const CUSTOM_THUMB_KEY: &str = "_customthumb";

/// The source image of an asset's previews, uploaded with `media/customthumb`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CustomThumb {
    pub blob: String,
    pub filename: String,
    pub bytes: u64,
}

pub fn custom_thumb_of(asset: &Asset) -> Option<CustomThumb> {
    asset
        .fields
        .get(CUSTOM_THUMB_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// Every blob an asset owns besides its original: renditions and a custom thumbnail.
pub fn derived_blobs_of(asset: &Asset) -> Vec<String> {
    let mut out: Vec<String> = renditions_of(asset).into_iter().map(|r| r.blob).collect();
    out.extend(custom_thumb_of(asset).map(|t| t.blob));
    out
}

pub fn renditions_of(asset: &Asset) -> Vec<StoredRendition> {
    asset
        .fields
        .get(RENDITIONS_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

pub fn rotation_of(asset: &Asset) -> i64 {
    asset
        .fields
        .get(ROTATION_KEY)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The presets made on import: EnterMediaDB's stock set and their WebP twins.
pub fn presets() -> Vec<Preset> {
    media::standard_presets()
}

/// A rendition's export file name, as EnterMediaDB's `fileexportformat` builds it.
/// `preset` is the preset id, `file` its `generatedoutputfile`.
pub fn export_name(asset: &Asset, preset: &str, file: &str) -> String {
    let name = asset.text("name").unwrap_or(&asset.id);
    let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name);
    let ext = file.rsplit('.').next().unwrap_or("jpg");
    let suffix = match preset.trim_start_matches("webp") {
        "thumbimage" => "T",
        "mediumimage" => "M",
        "largeimage" => "L",
        "imagecrop" => "C",
        _ => "",
    };
    format!("{stem}{suffix}.{ext}")
}

/// The payload of an asset's import job.
pub fn payload(assetid: &str) -> Value {
    json!({"assetid": assetid})
}

pub async fn enqueue(env_store: &dyn crate::store::MetaStore, catalog: &str, assetid: &str) -> OpsResult<String> {
    Ok(env_store.enqueue_job(IMPORT, catalog, &payload(assetid)).await?)
}

/// The name prefix of an import's scratch directory under `{data-dir}/tmp`.
pub const TEMP_PREFIX: &str = "mediadb-import-";

struct TempDir(PathBuf);

impl TempDir {
    fn new(root: &Path) -> std::io::Result<Self> {
        use rand::Rng;
        let r: u64 = rand::thread_rng().gen();
        let p = root.join(format!("{TEMP_PREFIX}{r:016x}"));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn fetch_original(env: &JobEnv, asset: &Asset, dir: &Path) -> OpsResult<Option<PathBuf>> {
    let Some(o) = &asset.original else { return Ok(None) };
    Ok(Some(fetch_blob(env, &o.blob_key, &o.filename, "original", dir).await?))
}

/// Copies a blob into `dir` as `{stem}.{extension of filename}`.
async fn fetch_blob(env: &JobEnv, key: &str, filename: &str, stem: &str, dir: &Path) -> OpsResult<PathBuf> {
    let ext = crate::domain::filetypes::extension_of(filename).unwrap_or_else(|| "bin".into());
    let path = dir.join(format!("{stem}.{ext}"));
    let read = env.blobs.get(key, None).await?;
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(crate::blobs::BlobError::Io)?;
    let mut stream = read.stream;
    while let Some(chunk) = stream.next().await {
        let chunk: Bytes = chunk?;
        file.write_all(&chunk).await.map_err(crate::blobs::BlobError::Io)?;
    }
    file.flush().await.map_err(crate::blobs::BlobError::Io)?;
    Ok(path)
}

/// What probing and rendering produced, before it is written to the asset.
struct Outcome {
    metadata: Map<String, Value>,
    renditions: Vec<StoredRendition>,
    previewstatus: &'static str,
    importstatus: &'static str,
    error: Option<String>,
    shown: Option<(u32, u32)>,
}

/// The file's metadata as fields: the in-process readers first; exiftool (one long-lived
/// process, when installed) only for files they do not read.
fn read_metadata(path: &Path) -> Map<String, Value> {
    match media::probe(path) {
        Ok(info) => info.to_fields(),
        Err(e) => match media::exiftool::ExifTool::global().read(path) {
            Ok(info) => info.to_fields(),
            Err(MediaError::ToolMissing { .. }) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    tracing::info!(
                        "exiftool is not installed: files the built-in readers do not know ({e}) get no \
                         metadata; install libimage-exiftool-perl to read them"
                    )
                });
                Map::new()
            }
            Err(x) => {
                tracing::warn!(file = %path.display(), error = %x, "exiftool could not read the file");
                Map::new()
            }
        },
    }
}

/// Probes `path` and renders the presets from it (or from `thumb_source`, an uploaded custom
/// thumbnail); stores the renditions as new blobs.
async fn process(
    env: &JobEnv,
    path: PathBuf,
    thumb_source: Option<PathBuf>,
    dir: PathBuf,
    rotation: i64,
) -> OpsResult<Outcome> {
    let presets = presets();
    let rotate = Rotation::from_degrees(rotation).unwrap_or_default();
    let out_dir = dir.join("out");
    let max_pixels = env.max_image_pixels;
    let (metadata, rendered) = tokio::task::spawn_blocking(move || {
        let metadata = read_metadata(&path);
        let opts = RenderOptions {
            rotate,
            max_pixels,
            ..RenderOptions::default()
        };
        let source = thumb_source.as_deref().unwrap_or(&path);
        (metadata, media::render_presets(source, &presets, &out_dir, &opts))
    })
    .await
    .map_err(|e| OpsError::Invalid(crate::domain::Invalid::new(format!("the conversion crashed: {e}"))))?;
    let mut out = Outcome {
        metadata,
        renditions: Vec::new(),
        previewstatus: "2",
        importstatus: "complete",
        error: None,
        shown: None,
    };
    match rendered {
        Ok(r) => {
            out.shown = Some((r.width, r.height));
            let all = self::presets();
            for rend in r.renditions {
                let key = crate::blobs::BlobStore::new_key("renditions");
                let mut up = env.blobs.begin(key);
                let bytes = tokio::fs::read(&rend.path).await.map_err(crate::blobs::BlobError::Io)?;
                up.write(&bytes).await?;
                let blob = up.finish().await?;
                let preset = all.iter().find(|p| p.id == rend.preset_id);
                out.renditions.push(StoredRendition {
                    name: preset.map(|p| p.name.clone()).unwrap_or_default(),
                    file: preset.map(|p| p.output_file.clone()).unwrap_or_default(),
                    preset: rend.preset_id,
                    blob,
                    width: rend.width,
                    height: rend.height,
                    bytes: rend.bytes,
                });
            }
        }
        // No preset applies (a format without renditions, or a tool that is not
        // installed): clients show the type's icon.
        Err(e @ (MediaError::Unsupported(_) | MediaError::ToolMissing { .. })) => {
            crate::metrics::conversion_failure("unsupported");
            out.previewstatus = "mime";
            out.error = Some(e.to_string());
        }
        Err(e) if e.is_input_error() => {
            crate::metrics::conversion_failure("input");
            out.previewstatus = "3";
            out.importstatus = "error";
            out.error = Some(e.to_string());
        }
        Err(e) => {
            crate::metrics::conversion_failure("internal");
            return Err(OpsError::Invalid(crate::domain::Invalid::new(format!(
                "conversion failed: {e}"
            ))));
        }
    }
    Ok(out)
}

/// Runs the import of one asset. Returns the new shown size (for `rotateasset`).
pub async fn import_asset(env: &JobEnv, catalog: &str, assetid: &str) -> OpsResult<Option<(u32, u32)>> {
    let Some(stored) = env.store.get_asset(catalog, assetid).await? else {
        return Err(OpsError::NotFound(assetid.to_string()));
    };
    mark(env, catalog, assetid, "converting").await?;
    let dir = TempDir::new(&env.tmp_root).map_err(crate::blobs::BlobError::Io)?;
    let Some(path) = fetch_original(env, &stored.asset, &dir.0).await? else {
        return Ok(None);
    };
    let thumb = custom_thumb_of(&stored.asset);
    let thumb_source = match &thumb {
        Some(t) => Some(fetch_blob(env, &t.blob, &t.filename, "customthumb", &dir.0).await?),
        None => None,
    };
    let out = process(env, path, thumb_source, dir.0.clone(), rotation_of(&stored.asset)).await?;
    let new_blobs: Vec<String> = out.renditions.iter().map(|r| r.blob.clone()).collect();
    let rendered_from = stored.asset.original.as_ref().map(|o| o.blob_key.clone());
    for _ in 0..5 {
        let Some(s) = env.store.get_asset(catalog, assetid).await? else {
            discard(env, &new_blobs).await;
            return Err(OpsError::NotFound(assetid.to_string()));
        };
        let mut asset = s.asset;
        // A new version arrived meanwhile: its own import job records its file; what was
        // read from the previous file must not land on it.
        if asset.original.as_ref().map(|o| &o.blob_key) != rendered_from.as_ref() {
            discard(env, &new_blobs).await;
            return Ok(None);
        }
        if custom_thumb_of(&asset) != thumb {
            // The preview source changed while this ran (a new custom thumbnail, or
            // removeassetimages): these renditions are stale; the newer run writes its own.
            discard(env, &new_blobs).await;
            return Ok(out.shown);
        }
        let old = renditions_of(&asset);
        for (k, v) in &out.metadata {
            // What the uploader (or an earlier edit) set wins over the file's metadata.
            if crate::domain::fields::asset_field(k).is_some() && !asset.fields.contains_key(k) {
                asset.fields.insert(k.clone(), v.clone());
            }
        }
        asset.fields.insert(
            RENDITIONS_KEY.into(),
            serde_json::to_value(&out.renditions).unwrap_or(Value::Null),
        );
        asset.set("previewstatus", out.previewstatus);
        asset.set("importstatus", out.importstatus);
        match &out.error {
            Some(e) => asset.set("importerror", e.clone()),
            None => {
                asset.fields.remove("importerror");
            }
        }
        let keep: Vec<&String> = new_blobs.iter().collect();
        let stale: Vec<String> = old.into_iter().map(|r| r.blob).filter(|b| !keep.contains(&b)).collect();
        // Journalled before the write that drops them: a crash after it cannot orphan them.
        stale.iter().for_each(|b| env.blobs.note_pending(b));
        match env.store.update_asset(catalog, &asset, s.version, &[], None).await {
            Ok(()) => {
                new_blobs.iter().for_each(|b| env.blobs.settle(b));
                discard(env, &stale).await;
                return Ok(out.shown);
            }
            Err(StoreError::Stale) => continue,
            Err(StoreError::NotFound) => {
                discard(env, &new_blobs).await;
                return Err(OpsError::NotFound(assetid.to_string()));
            }
            Err(e) => {
                discard(env, &new_blobs).await;
                return Err(e.into());
            }
        }
    }
    discard(env, &new_blobs).await;
    Err(OpsError::Conflict(format!(
        "asset \"{assetid}\" kept changing during its import; it will be retried"
    )))
}

async fn discard(env: &JobEnv, blobs: &[String]) {
    for b in blobs {
        if let Err(e) = env.blobs.delete(b).await {
            tracing::warn!(blob = %b, error = %e, "could not remove a rendition");
        }
    }
}

/// Sets `previewstatus` (and `importstatus` imported) while the job runs.
async fn mark(env: &JobEnv, catalog: &str, assetid: &str, previewstatus: &str) -> OpsResult<()> {
    for _ in 0..5 {
        let Some(s) = env.store.get_asset(catalog, assetid).await? else {
            return Err(OpsError::NotFound(assetid.to_string()));
        };
        let mut a = s.asset;
        a.set("previewstatus", previewstatus);
        if a.text("importstatus") == Some("created") {
            a.set("importstatus", "imported");
        }
        match env.store.update_asset(catalog, &a, s.version, &[], None).await {
            Ok(()) => return Ok(()),
            Err(StoreError::Stale) => continue,
            Err(StoreError::NotFound) => return Err(OpsError::NotFound(assetid.to_string())),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Removes an asset's renditions (`removeassetimages`).
pub async fn remove_renditions(env: &JobEnv, catalog: &str, assetid: &str) -> OpsResult<()> {
    for _ in 0..5 {
        let Some(s) = env.store.get_asset(catalog, assetid).await? else {
            return Err(OpsError::NotFound(assetid.to_string()));
        };
        let mut a = s.asset;
        let old = derived_blobs_of(&a);
        a.fields.remove(RENDITIONS_KEY);
        a.fields.remove(CUSTOM_THUMB_KEY);
        a.set("previewstatus", "0");
        old.iter().for_each(|b| env.blobs.note_pending(b));
        match env.store.update_asset(catalog, &a, s.version, &[], None).await {
            Ok(()) => {
                discard(env, &old).await;
                return Ok(());
            }
            Err(StoreError::Stale) => continue,
            Err(StoreError::NotFound) => return Err(OpsError::NotFound(assetid.to_string())),
            Err(e) => return Err(e.into()),
        }
    }
    Err(OpsError::Conflict(format!(
        "asset \"{assetid}\" is being changed by others; try again"
    )))
}

/// Makes `thumb` (an uploaded image, already stored as a blob) the source of the asset's
/// previews and renders them at once (`media/customthumb`). A rotation of the old previews
/// does not apply to the new image; an earlier custom thumbnail is removed. On any error the
/// caller still owns `thumb.blob`.
pub async fn set_custom_thumb(env: &JobEnv, catalog: &str, assetid: &str, thumb: CustomThumb) -> OpsResult<()> {
    let mut replaced = None;
    for attempt in 0..5 {
        let Some(s) = env.store.get_asset(catalog, assetid).await? else {
            return Err(OpsError::NotFound(assetid.to_string()));
        };
        let mut a = s.asset;
        replaced = custom_thumb_of(&a).map(|t| t.blob);
        a.fields.insert(
            CUSTOM_THUMB_KEY.into(),
            serde_json::to_value(&thumb).unwrap_or(Value::Null),
        );
        a.fields.remove(ROTATION_KEY);
        match env.store.update_asset(catalog, &a, s.version, &[], None).await {
            Ok(()) => break,
            Err(StoreError::Stale) if attempt < 4 => continue,
            Err(StoreError::Stale) => {
                return Err(OpsError::Conflict(format!(
                    "asset \"{assetid}\" is being changed by others; try again"
                )))
            }
            Err(StoreError::NotFound) => return Err(OpsError::NotFound(assetid.to_string())),
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(old) = replaced.filter(|b| *b != thumb.blob) {
        discard(env, &[old]).await;
    }
    import_asset(env, catalog, assetid).await?;
    Ok(())
}

/// Adds a quarter-turn rotation and re-renders at once; the new shown size.
pub async fn rotate(env: &JobEnv, catalog: &str, assetid: &str, degrees: i64) -> OpsResult<(u32, u32)> {
    for _ in 0..5 {
        let Some(s) = env.store.get_asset(catalog, assetid).await? else {
            return Err(OpsError::NotFound(assetid.to_string()));
        };
        let mut a = s.asset;
        let total = (rotation_of(&a) + degrees).rem_euclid(360);
        a.set(ROTATION_KEY, total.to_string());
        match env.store.update_asset(catalog, &a, s.version, &[], None).await {
            Ok(()) => break,
            Err(StoreError::Stale) => continue,
            Err(StoreError::NotFound) => return Err(OpsError::NotFound(assetid.to_string())),
            Err(e) => return Err(e.into()),
        }
    }
    let shown = import_asset(env, catalog, assetid).await?;
    shown.ok_or_else(|| {
        OpsError::Invalid(crate::domain::Invalid::new(format!(
            "asset \"{assetid}\" has no image to rotate"
        )))
    })
}

/// The job: a deleted asset is nothing to do, not a failure.
pub async fn run(env: &JobEnv, job: &Job) -> OpsResult<Value> {
    let id = job
        .payload
        .get("assetid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match import_asset(env, &job.catalog, &id).await {
        Ok(_) => Ok(json!({"assetid": id})),
        Err(OpsError::NotFound(_)) => Ok(json!({"assetid": id, "skipped": "the asset is deleted"})),
        Err(e) => Err(e),
    }
}

/// A job that will not run again: an import leaves its asset in `error` with the reason,
/// never stuck in `converting`. Other kinds have nothing to mark.
pub async fn give_up(env: &JobEnv, job: &Job, reason: &str) {
    if job.kind != IMPORT {
        return;
    }
    let Some(id) = job.payload.get("assetid").and_then(Value::as_str) else {
        return;
    };
    for _ in 0..5 {
        let Ok(Some(s)) = env.store.get_asset(&job.catalog, id).await else {
            return;
        };
        let mut a = s.asset;
        a.set("importstatus", "error");
        a.set("previewstatus", "3");
        a.set("importerror", reason.to_string());
        match env.store.update_asset(&job.catalog, &a, s.version, &[], None).await {
            Err(StoreError::Stale) => continue,
            Err(e @ StoreError::Backend(_)) => {
                tracing::error!(asset = %id, error = %e, "could not mark a failed import");
                return;
            }
            _ => return,
        }
    }
}
