//! `module/asset/clone` (wire §5.6): a new asset with the source's metadata and a copy
//! of its original, under the source's path with `_2` (`_3`, ...) added to the name.
//! The copy is a new blob (deleting either asset never touches the other's file); its
//! renditions are made by the usual import job.

use super::assets::{self, CreateRequest};
use super::{Ctx, OpsError, OpsResult};
use crate::domain::asset::Asset;
use serde_json::{Map, Value};

/// Fields the new asset gets from the server, not from its source.
const NOT_COPIED: &[&str] = &[
    "owner",
    "assetaddeddate",
    "recordmodificationdate",
    "assetmodificationdate",
    "importstatus",
    "previewstatus",
    "importerror",
    "category",
];

/// How many `_N` names are tried before giving up.
const MAX_TWINS: u32 = 1000;

pub async fn clone(ctx: &Ctx<'_>, source: &Asset) -> OpsResult<Asset> {
    let values: Map<String, Value> = source
        .fields
        .iter()
        .filter(|(k, _)| !k.starts_with('_') && !NOT_COPIED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let no_params = |_: &str| -> Option<String> { None };
    let original = match &source.original {
        Some(o) => Some(super::versions::copy_blob(ctx.blobs, o).await?),
        None => None,
    };
    let mut outcome = Err(OpsError::Conflict(format!(
        "no free name near \"{}\" for the copy",
        source.sourcepath
    )));
    for n in 2..=MAX_TWINS {
        let req = CreateRequest {
            id: None,
            sourcepath: Some(twin_path(&source.sourcepath, n)),
            values: values.clone(),
            original: original.clone(),
            param: &no_params,
            new_version_of_existing: false,
        };
        match assets::create(ctx, req).await {
            Ok(created) => return Ok(created.asset),
            Err(OpsError::Conflict(m)) if m.contains("sourcepath") => continue,
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    // No asset holds the copy: it goes.
    if let Some(o) = original {
        let _ = ctx.blobs.delete(&o.blob_key).await;
    }
    outcome
}

/// `Clients/Demo/photo.jpg` → `Clients/Demo/photo_2.jpg`.
pub fn twin_path(path: &str, n: u32) -> String {
    let (dir, leaf) = match path.rsplit_once('/') {
        Some((d, l)) => (format!("{d}/"), l),
        None => (String::new(), path),
    };
    match leaf.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{dir}{stem}_{n}.{ext}"),
        _ => format!("{dir}{leaf}_{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::twin_path;

    #[test]
    fn twins() {
        assert_eq!(twin_path("Clients/Demo/photo.jpg", 2), "Clients/Demo/photo_2.jpg");
        assert_eq!(twin_path("record-101", 3), "record-101_3");
        assert_eq!(twin_path("a/.hidden", 2), "a/.hidden_2");
    }
}
