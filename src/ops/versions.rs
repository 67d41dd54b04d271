//! Versions of an asset's original (wire §7.4). Uploading again to a live asset (same
//! `id`, or the same explicit `sourcepath`) makes the new file the current original and
//! keeps every earlier one. `restore` makes an earlier version current again as a new
//! version (its bytes copied: a version's file is never shared, so purging one never
//! touches another).
//!
//! The history is the hidden key `_versions` of the asset's fields (never indexed,
//! rendered or client-writable): one entry per version, oldest first, the last being
//! the current original. Keeping it inside the asset row makes a new version one
//! version-guarded write in both engines, and a purge returns every blob to remove.

use super::assets::{CreateRequest, Created};
use super::{Ctx, OpsError, OpsResult};
use crate::blobs::{BlobError, BlobStore};
use crate::domain::asset::{apply_values, Asset, Original};
use crate::domain::fields::asset_field;
use crate::domain::{dates, filetypes, sourcepath};
use crate::store::{StoreError, StoredAsset};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub const VERSIONS_KEY: &str = "_versions";

/// Fields read from the file itself: cleared with a new version, so the import reads them
/// again from the new file (values an editor typed, like captions, stay).
const FILE_FIELDS: &[&str] = &[
    "width",
    "height",
    "imageorientation",
    "colorspace",
    "duration",
    "length",
    "framerate",
    "pages",
    "detectedfileformat",
    "videocodec",
    "audiocodec",
];

const ATTEMPTS: usize = 5;

/// One version of the original.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Version {
    pub number: u32,
    pub blob: String,
    pub filename: String,
    pub bytes: u64,
    pub md5hex: String,
    pub sha256hex: String,
    pub date: String,
    pub userid: String,
    #[serde(default)]
    pub message: String,
}

impl Version {
    fn of(number: u32, o: &Original, date: String, userid: String, message: String) -> Self {
        Version {
            number,
            blob: o.blob_key.clone(),
            filename: o.filename.clone(),
            bytes: o.size,
            md5hex: o.md5hex.clone(),
            sha256hex: o.sha256hex.clone(),
            date,
            userid,
            message,
        }
    }
    pub fn original(&self) -> Original {
        Original {
            blob_key: self.blob.clone(),
            filename: self.filename.clone(),
            size: self.bytes,
            md5hex: self.md5hex.clone(),
            sha256hex: self.sha256hex.clone(),
        }
    }
}

/// Every version of the asset's original, oldest first; an asset never uploaded again
/// has one (its original), a record without a file none.
pub fn versions_of(asset: &Asset) -> Vec<Version> {
    let stored: Vec<Version> = asset
        .fields
        .get(VERSIONS_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    if !stored.is_empty() {
        return stored;
    }
    match &asset.original {
        Some(o) => vec![first_version(asset, o)],
        None => Vec::new(),
    }
}

fn first_version(asset: &Asset, o: &Original) -> Version {
    let date = asset
        .text("assetmodificationdate")
        .or_else(|| asset.text("assetaddeddate"))
        .unwrap_or_default()
        .to_string();
    Version::of(
        1,
        o,
        date,
        asset.text("owner").unwrap_or_default().to_string(),
        String::new(),
    )
}

/// Blobs of earlier versions (not the current original), for purges and fsck.
pub fn old_version_blobs(asset: &Asset) -> Vec<String> {
    let current = asset.original.as_ref().map(|o| o.blob_key.as_str());
    versions_of(asset)
        .into_iter()
        .map(|v| v.blob)
        .filter(|b| Some(b.as_str()) != current)
        .collect()
}

/// The live asset a create with a file goes to as a new version: the one with the
/// requested `id`, else the one at the requested (explicit) `sourcepath`.
pub async fn existing_target(ctx: &Ctx<'_>, req: &CreateRequest<'_>) -> OpsResult<Option<String>> {
    let Some(o) = &req.original else {
        return Ok(None);
    };
    if let Some(id) = &req.id {
        return Ok(ctx.store.get_asset(ctx.catalog, id).await?.map(|s| s.asset.id));
    }
    let Some(sp) = &req.sourcepath else {
        return Ok(None);
    };
    let path = sourcepath::resolve(
        sp,
        &sourcepath::MaskContext {
            filename: Some(&o.filename),
            user: ctx.user,
            param: req.param,
        },
    )?;
    Ok(ctx
        .store
        .get_asset_by_sourcepath(ctx.catalog, &path)
        .await?
        .map(|s| s.asset.id))
}

/// Makes `original` the current original of asset `id`, keeping the previous one as a
/// version, applying `values` as an update would, and queueing the import (renditions
/// for the new file). `NotFound` if the asset is not live.
pub async fn add(
    ctx: &Ctx<'_>,
    id: &str,
    original: Original,
    values: &Map<String, Value>,
    message: &str,
) -> OpsResult<Created> {
    let resolve = |f: &str| asset_field(f).copied();
    for _ in 0..ATTEMPTS {
        let Some(StoredAsset { mut asset, version }) = ctx.store.get_asset(ctx.catalog, id).await? else {
            return Err(OpsError::NotFound(id.to_string()));
        };
        let mut list = versions_of(&asset);
        let number = list.last().map(|v| v.number + 1).unwrap_or(1);
        let now = dates::now_emdb();
        list.push(Version::of(
            number,
            &original,
            now.clone(),
            ctx.user.to_string(),
            message.to_string(),
        ));
        let old_filename = asset.original.as_ref().map(|o| o.filename.clone());
        if old_filename.is_some() && asset.text("name") == old_filename.as_deref() {
            asset.set("name", original.filename.clone());
        }
        for f in FILE_FIELDS {
            asset.fields.remove(*f);
        }
        asset.fields.remove(super::import::ROTATION_KEY);
        let ext = filetypes::extension_of(&original.filename).unwrap_or_default();
        if ext.is_empty() {
            asset.fields.remove("fileformat");
        } else {
            asset.set("fileformat", ext.clone());
        }
        asset.set("assettype", filetypes::asset_type(&ext));
        asset.set("filesize", original.size.to_string());
        asset.set("md5hex", original.md5hex.clone());
        asset.set("sha256hex", original.sha256hex.clone());
        asset.set("primaryfile", original.filename.clone());
        asset.set("assetmodificationdate", now.clone());
        asset.set("recordmodificationdate", now);
        asset.set("importstatus", "created");
        asset.set("previewstatus", "0");
        asset.fields.remove("importerror");
        let mut changes = apply_values(&mut asset.fields, values, &resolve)?;
        // `message` is the version's, not an ignored field.
        changes.ignored.retain(|k| k != "message");
        super::categories::apply(ctx.store, ctx.catalog, &mut asset.fields, values.get("categorypath")).await?;
        asset.fields.insert(VERSIONS_KEY.into(), json!(list));
        asset.original = Some(original.clone());
        let mut entry = ctx.audit("newversion", Some(id));
        entry.details = json!({"version": number, "filename": original.filename});
        let audit = super::audit::prepare(entry);
        match ctx
            .store
            .update_asset(ctx.catalog, &asset, version, &changes.list_items, Some(&audit))
            .await
        {
            Ok(()) => {
                super::import::enqueue(ctx.store, ctx.catalog, id).await?;
                return Ok(Created { asset, changes });
            }
            Err(StoreError::Stale) => continue,
            Err(StoreError::NotFound) => return Err(OpsError::NotFound(id.to_string())),
            Err(e) => return Err(e.into()),
        }
    }
    Err(OpsError::Conflict(format!(
        "asset \"{id}\" is being changed by others; try again"
    )))
}

/// Makes version `number` current again, as a new version holding a copy of its file.
/// Restoring the current version changes nothing.
pub async fn restore(ctx: &Ctx<'_>, id: &str, number: u32) -> OpsResult<Asset> {
    let asset = super::assets::get(ctx, id).await?;
    let list = versions_of(&asset);
    let Some(v) = list.iter().find(|v| v.number == number) else {
        return Err(OpsError::NotFound(format!("{id} version {number}")));
    };
    if list.last().map(|l| l.number) == Some(number) {
        return Ok(asset);
    }
    let copy = copy_blob(ctx.blobs, &v.original()).await?;
    let key = copy.blob_key.clone();
    match add(ctx, id, copy, &Map::new(), &format!("restored version {number}")).await {
        Ok(c) => Ok(c.asset),
        Err(e) => {
            let _ = ctx.blobs.delete(&key).await;
            Err(e)
        }
    }
}

/// A file's bytes into a new blob, streamed (same bytes, same hashes).
pub async fn copy_blob(blobs: &BlobStore, o: &Original) -> OpsResult<Original> {
    let mut read = blobs.get(&o.blob_key, None).await?;
    let mut upload = blobs.begin(BlobStore::new_key("originals"));
    while let Some(chunk) = read.stream.next().await {
        let written = match chunk {
            Ok(c) => upload.write(&c).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            upload.abort().await;
            return Err(e.into());
        }
    }
    let key = upload.finish().await.map_err(|e: BlobError| OpsError::Blob(e))?;
    Ok(Original {
        blob_key: key,
        ..o.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset_with(original: Option<Original>) -> Asset {
        let mut fields = Map::new();
        fields.insert("owner".into(), json!("admin"));
        fields.insert("assetaddeddate".into(), json!("2024-01-01T00:00:00.000Z"));
        Asset {
            id: "a".into(),
            sourcepath: "x/a.jpg".into(),
            fields,
            original,
        }
    }

    fn original(key: &str) -> Original {
        Original {
            blob_key: key.into(),
            filename: "a.jpg".into(),
            size: 3,
            md5hex: "m".into(),
            sha256hex: "s".into(),
        }
    }

    #[test]
    fn an_asset_never_uploaded_again_has_its_original_as_version_one() {
        let a = asset_with(Some(original("originals/1")));
        let v = versions_of(&a);
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].number, v[0].blob.as_str(), v[0].userid.as_str()),
            (1, "originals/1", "admin")
        );
        assert!(old_version_blobs(&a).is_empty());
        assert!(versions_of(&asset_with(None)).is_empty());
    }

    #[test]
    fn old_blobs_exclude_the_current_original() {
        let mut a = asset_with(Some(original("originals/2")));
        let list = vec![
            Version::of(1, &original("originals/1"), "d".into(), "u".into(), String::new()),
            Version::of(2, &original("originals/2"), "d".into(), "u".into(), String::new()),
        ];
        a.fields.insert(VERSIONS_KEY.into(), json!(list));
        assert_eq!(old_version_blobs(&a), ["originals/1"]);
    }
}
