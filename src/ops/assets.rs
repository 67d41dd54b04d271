//! Asset use cases: create (with or without an original), read, update, delete, search.

use super::{Ctx, OpsError, OpsResult};
use crate::domain::asset::{apply_values, Asset, Changes, ListItem, Original};
use crate::domain::fields::{asset_field, FieldDef};
use crate::domain::query::{self, FieldInfo, SearchRequest};
use crate::domain::{dates, filetypes, sourcepath, Invalid};
use crate::store::{Scope, SearchPage, StoreError, StoredAsset};
use serde_json::{json, Map, Value};

/// How many times an update is retried when a concurrent write got there first.
const UPDATE_ATTEMPTS: usize = 5;

pub struct CreateRequest<'a> {
    /// A client-chosen id, else one is generated.
    pub id: Option<String>,
    /// The requested source path (masks allowed), else a default.
    pub sourcepath: Option<String>,
    /// Field values from the client.
    pub values: Map<String, Value>,
    /// The uploaded original, already stored as a blob.
    pub original: Option<Original>,
    /// Other request parameters, for `${param}` masks.
    pub param: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// Whether a file sent to a live asset's id or explicit sourcepath becomes its new
    /// version (uploads) rather than a conflict (clones, which look for a free name).
    pub new_version_of_existing: bool,
}

pub struct Created {
    pub asset: Asset,
    pub changes: Changes,
}

fn resolve_field(id: &str) -> Option<FieldDef> {
    asset_field(id).copied()
}

/// What the search parser needs to know of an asset field (`description` included).
pub fn field_info(field: &str) -> Option<FieldInfo> {
    query::asset_field_info(field)
}

/// A new random id in the style of Elasticsearch's (20 URL-safe characters).
pub fn new_asset_id() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::thread_rng();
    let first = char::from(CHARS[rng.gen_range(0..52)]);
    std::iter::once(first)
        .chain((0..19).map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())])))
        .collect()
}

/// Ids appear in URLs and file names: letters, digits, `_`, `-`, `.`, at most 100.
pub fn validate_id(id: &str) -> Result<(), Invalid> {
    if id.is_empty() || id.len() > 100 {
        return Err(Invalid::new("id must be 1 to 100 characters"));
    }
    if id.starts_with('.')
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(Invalid::new(format!(
            "id \"{id}\" may hold only letters, digits, '_', '-' and '.'"
        )));
    }
    Ok(())
}

pub async fn create(ctx: &Ctx<'_>, req: CreateRequest<'_>) -> OpsResult<Created> {
    // A file sent to a live asset (its id, or its explicit sourcepath) is a new version.
    let target = match req.new_version_of_existing {
        true => super::versions::existing_target(ctx, &req).await?,
        false => None,
    };
    if let (Some(target), Some(original)) = (target, &req.original) {
        let message = req.values.get("message").and_then(Value::as_str).unwrap_or_default();
        return super::versions::add(ctx, &target, original.clone(), &req.values, message).await;
    }
    let id = match req.id {
        Some(id) => {
            validate_id(&id)?;
            if ctx.store.asset_id_taken(ctx.catalog, &id).await? {
                return Err(OpsError::Conflict(format!(
                    "asset id \"{id}\" is taken (by a live asset or one in the trash)"
                )));
            }
            id
        }
        None => new_asset_id(),
    };
    let filename = req.original.as_ref().map(|o| o.filename.clone());
    let explicit_path = req.sourcepath.is_some();
    let path = match &req.sourcepath {
        Some(sp) => sourcepath::resolve(
            sp,
            &sourcepath::MaskContext {
                filename: filename.as_deref(),
                user: ctx.user,
                param: req.param,
            },
        )?,
        None => sourcepath::default_for(ctx.user, filename.as_deref(), &id)?,
    };

    let now = dates::now_emdb();
    let mut fields = Map::new();
    let mut set = |k: &str, v: String| {
        fields.insert(k.to_string(), Value::String(v));
    };
    let leaf = path.rsplit('/').next().unwrap_or(&path).to_string();
    set("name", filename.clone().unwrap_or_else(|| leaf.clone()));
    set("owner", ctx.user.to_string());
    set("assetaddeddate", now.clone());
    set("recordmodificationdate", now.clone());
    set("editstatus", "1".into());
    set("datatype", "original".into());
    set("isfolder", "false".into());
    if let Some(o) = &req.original {
        let ext = filetypes::extension_of(&o.filename).unwrap_or_default();
        if !ext.is_empty() {
            set("fileformat", ext.clone());
        }
        set("assettype", filetypes::asset_type(&ext).into());
        set("filesize", o.size.to_string());
        set("md5hex", o.md5hex.clone());
        set("sha256hex", o.sha256hex.clone());
        set("assetmodificationdate", now.clone());
        set("primaryfile", o.filename.clone());
        // The import job reads the metadata and makes the renditions (wire §8).
        set("importstatus", "created".into());
        set("previewstatus", "0".into());
    } else {
        set("importstatus", "complete".into());
        set("previewstatus", "0".into());
    }
    let changes = apply_values(&mut fields, &req.values, &resolve_field)?;
    super::categories::apply(ctx.store, ctx.catalog, &mut fields, req.values.get("categorypath")).await?;

    let mut asset = Asset {
        id,
        sourcepath: path,
        fields,
        original: req.original,
    };
    // A default path that is taken gets a numbered twin (`photo-2.jpg`, the lowest number
    // free); an explicit one is the client's choice and a clash is reported.
    let base = asset.sourcepath.clone();
    // The number this upload holds while its insert runs (see `free_twin`).
    let mut held: Option<HeldTwin> = None;
    // A default path already taken (the same file name again) goes to its twin at once,
    // found by readers, rather than after a failed insert in the writer.
    if !explicit_path
        && ctx
            .store
            .get_asset_by_sourcepath(ctx.catalog, &asset.sourcepath)
            .await?
            .is_some()
    {
        let twin = free_twin(ctx, &base).await?;
        asset.sourcepath = twin.path.clone();
        held = Some(twin);
    }
    for _ in 0..TWIN_ATTEMPTS {
        match insert_new(ctx, &asset, &changes.list_items).await {
            Ok(()) => {
                if let Some(o) = &asset.original {
                    ctx.blobs.settle(&o.blob_key);
                }
                super::audit::record(ctx.store, ctx.audit("create", Some(&asset.id))).await;
                return Ok(Created { asset, changes });
            }
            Err(StoreError::Conflict(m)) if !explicit_path && m.contains("sourcepath") => {
                let twin = free_twin(ctx, &base).await?;
                asset.sourcepath = twin.path.clone();
                held = Some(twin);
            }
            Err(StoreError::Conflict(m)) if m.contains("sourcepath") => {
                let holder = ctx
                    .store
                    .get_asset_by_sourcepath(ctx.catalog, &asset.sourcepath)
                    .await?
                    .map(|s| s.asset.id)
                    .unwrap_or_default();
                return Err(OpsError::Conflict(format!(
                    "sourcepath \"{}\" is taken by asset \"{holder}\"",
                    asset.sourcepath
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    drop(held);
    Err(OpsError::Conflict(format!(
        "no free sourcepath near \"{base}\" (other uploads kept taking them)"
    )))
}

/// Inserts a new asset; with an original, its import job is queued in the row's
/// transaction: a crash cannot leave an acknowledged upload that never gets its
/// metadata and renditions.
async fn insert_new(ctx: &Ctx<'_>, asset: &Asset, items: &[ListItem]) -> Result<(), StoreError> {
    if asset.original.is_some() {
        let payload = super::import::payload(&asset.id);
        ctx.store
            .insert_asset_with_job(ctx.catalog, asset, items, super::import::IMPORT, &payload)
            .await
            .map(|_| ())
    } else {
        ctx.store.insert_asset(ctx.catalog, asset, items).await
    }
}

/// Inserts of a numbered twin tried before giving up (each after another server took
/// the number picked).
const TWIN_ATTEMPTS: usize = 10;

/// Twin paths picked by this process's uploads whose inserts have not ended: uploads of
/// one name at once pick different numbers (instead of all the same one, then retrying
/// in turn), and still commit together.
static PICKED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// A twin path, held in `PICKED` (as `{catalog}\n{path}`) until dropped.
struct HeldTwin {
    path: String,
    key: String,
}

impl Drop for HeldTwin {
    fn drop(&mut self) {
        let mut picked = PICKED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = picked.iter().position(|p| *p == self.key) {
            picked.swap_remove(i);
        }
    }
}

/// The lowest-numbered twin of a taken path that no live asset holds and no upload of
/// this process is inserting, from one read of the twins there are (trying `-2`, `-3`,
/// ... one insert each made the n-th upload of a name cost n writes). Another server
/// may pick the same number: its insert then fails and the upload picks again.
async fn free_twin(ctx: &Ctx<'_>, base: &str) -> OpsResult<HeldTwin> {
    let (prefix, ext) = twin_parts(base);
    let taken: std::collections::HashSet<u64> = ctx
        .store
        .live_sourcepaths_numbered(ctx.catalog, &prefix)
        .await?
        .iter()
        .filter_map(|p| {
            p.strip_prefix(prefix.as_str())?
                .strip_suffix(ext.as_str())?
                .parse()
                .ok()
        })
        .collect();
    let mut picked = PICKED.lock().unwrap_or_else(|e| e.into_inner());
    let (path, key) = (2u64..)
        .filter(|n| !taken.contains(n))
        .map(|n| {
            let path = format!("{prefix}{n}{ext}");
            let key = format!("{}\n{path}", ctx.catalog);
            (path, key)
        })
        .find(|(_, key)| !picked.contains(key))
        .unwrap_or_default();
    picked.push(key.clone());
    Ok(HeldTwin { path, key })
}

/// A path's twins are `{prefix}{n}{ext}`: `a/photo.jpg` gives `("a/photo-", ".jpg")`.
fn twin_parts(path: &str) -> (String, String) {
    let (dir, leaf) = match path.rsplit_once('/') {
        Some((d, l)) => (format!("{d}/"), l),
        None => (String::new(), path),
    };
    match leaf.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (format!("{dir}{stem}-"), format!(".{ext}")),
        _ => (format!("{dir}{leaf}-"), String::new()),
    }
}

pub async fn get(ctx: &Ctx<'_>, id: &str) -> OpsResult<Asset> {
    match ctx.store.get_asset(ctx.catalog, id).await? {
        Some(s) => Ok(s.asset),
        None => Err(OpsError::NotFound(id.to_string())),
    }
}

pub async fn get_by_sourcepath(ctx: &Ctx<'_>, sourcepath: &str) -> OpsResult<Option<Asset>> {
    Ok(ctx
        .store
        .get_asset_by_sourcepath(ctx.catalog, sourcepath)
        .await?
        .map(|s| s.asset))
}

/// Applies field values to a live asset. A deleted asset is `NotFound` and nothing is
/// written, whatever the timing: the store's write is conditional on the asset being
/// live and unchanged since it was read.
pub async fn update(ctx: &Ctx<'_>, id: &str, values: &Map<String, Value>) -> OpsResult<(Asset, Changes)> {
    for _ in 0..UPDATE_ATTEMPTS {
        let Some(StoredAsset { mut asset, version }) = ctx.store.get_asset(ctx.catalog, id).await? else {
            return Err(OpsError::NotFound(id.to_string()));
        };
        let mut changes = apply_values(&mut asset.fields, values, &resolve_field)?;
        let before = asset.fields.get("category").cloned();
        super::categories::apply(ctx.store, ctx.catalog, &mut asset.fields, values.get("categorypath")).await?;
        if asset.fields.get("category") != before.as_ref() {
            changes
                .changed
                .push(("category".into(), before, asset.fields.get("category").cloned()));
        }
        if changes.changed.is_empty() {
            return Ok((asset, changes));
        }
        asset.set("recordmodificationdate", dates::now_emdb());
        let mut entry = ctx.audit("update", Some(id));
        entry.fields = changes.changed.iter().map(|(f, _, _)| f.clone()).collect();
        entry.details = Value::Object(
            changes
                .changed
                .iter()
                .map(|(f, old, new)| (f.clone(), json!({"old": old, "new": new})))
                .collect(),
        );
        let audit = super::audit::prepare(entry);
        match ctx
            .store
            .update_asset(ctx.catalog, &asset, version, &changes.list_items, Some(&audit))
            .await
        {
            Ok(()) => return Ok((asset, changes)),
            Err(StoreError::Stale) => continue,
            Err(StoreError::NotFound) => return Err(OpsError::NotFound(id.to_string())),
            Err(e) => return Err(e.into()),
        }
    }
    Err(OpsError::Conflict(format!(
        "asset \"{id}\" is being changed by others; try again"
    )))
}

pub struct Deleted {
    pub deleted: Vec<String>,
    pub missing: Vec<String>,
}

/// Deletes assets at once for everyone: they move to the trash (kept for restore),
/// or with `purge_original` are removed with their original.
pub async fn delete(ctx: &Ctx<'_>, ids: &[String], purge_original: bool) -> OpsResult<Deleted> {
    let mut unique: Vec<String> = Vec::new();
    for id in ids {
        if !unique.contains(id) {
            unique.push(id.clone());
        }
    }
    let audit: Vec<_> = unique
        .iter()
        .map(|id| super::audit::prepare(ctx.audit("delete", Some(id))))
        .collect();
    let deleted = ctx.store.trash_assets(ctx.catalog, &unique, ctx.user, &audit).await?;
    let missing = unique.iter().filter(|i| !deleted.contains(i)).cloned().collect();
    if purge_original {
        super::trash::purge(ctx, &deleted).await?;
    }
    Ok(Deleted { deleted, missing })
}

pub async fn search(ctx: &Ctx<'_>, req: &SearchRequest, scope: Scope) -> OpsResult<SearchPage<Asset>> {
    Ok(ctx.store.search_assets(ctx.catalog, req, scope).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_numbered_paths() {
        assert_eq!(new_asset_id().len(), 20);
        assert!(validate_id("101").is_ok());
        assert!(validate_id("AXLIZAeT6Khr_XFrhdhk").is_ok());
        assert!(validate_id("../x").is_err());
        assert!(validate_id("a b").is_err());
        assert_eq!(twin_parts("a/b/photo.jpg"), ("a/b/photo-".into(), ".jpg".into()));
        assert_eq!(twin_parts("noext"), ("noext-".into(), String::new()));
        assert_eq!(twin_parts("a/.hidden"), ("a/.hidden-".into(), String::new()));
    }
}
