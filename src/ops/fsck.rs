//! `mediadb fsck`: checks that the database and the file storage agree. Every asset (live
//! or trashed) has its original with the recorded size (and, with `verify`, SHA-256) and its
//! renditions; no file is unreferenced; no job is stuck in a lease; no import left temporary
//! files. `repair` does only what is safe: unreferenced files go to `lost+found/`, stuck jobs
//! back to the queue, stale temporary directories away.

use super::import::renditions_of;
use super::OpsResult;
use crate::blobs::BlobStore;
use crate::domain::query::{Query, SearchRequest};
use crate::store::{MetaStore, Scope};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Files younger than this are not called orphans: an upload writes its file before
/// its row, and a running server may be mid-upload.
const ORPHAN_MIN_AGE_SECS: i64 = 15 * 60;
const LOST_AND_FOUND: &str = "lost+found";

#[derive(Debug, Default)]
pub struct Report {
    pub assets: u64,
    pub files: u64,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
    /// What `repair` did, one line each.
    pub repaired: Vec<String>,
    /// Problems `repair` cannot fix (a missing or damaged original).
    pub unrepairable: u64,
}

impl Report {
    pub fn consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

fn all() -> SearchRequest {
    SearchRequest {
        query: Query::All,
        sort: Vec::new(),
        page: 1,
        hits_per_page: 1,
        show_filters: false,
        echo_terms: Vec::new(),
        friendly: String::new(),
    }
}

async fn sha256_of(blobs: &BlobStore, key: &str) -> OpsResult<String> {
    let mut read = blobs.get(key, None).await?;
    let mut h = Sha256::new();
    while let Some(chunk) = read.stream.next().await {
        h.update(&chunk?);
    }
    Ok(hex::encode(h.finalize()))
}

pub async fn run(
    store: &dyn MetaStore,
    blobs: &BlobStore,
    catalogs: &[String],
    tmp_root: &std::path::Path,
    repair: bool,
    verify: bool,
) -> OpsResult<Report> {
    let opts = Options {
        repair,
        verify,
        min_age_secs: ORPHAN_MIN_AGE_SECS,
    };
    run_with(store, blobs, catalogs, tmp_root, &opts).await
}

/// How `fsck` runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub repair: bool,
    /// Also read every original and compare its SHA-256.
    pub verify: bool,
    /// Unreferenced files and scratch directories younger than this are not reported
    /// (a running server may be mid-upload). 0 when nothing else runs: everything counts.
    pub min_age_secs: i64,
}

pub async fn run_with(
    store: &dyn MetaStore,
    blobs: &BlobStore,
    catalogs: &[String],
    tmp_root: &std::path::Path,
    opts: &Options,
) -> OpsResult<Report> {
    let progress = crate::progress::Progress::hidden();
    run_with_progress(store, blobs, catalogs, tmp_root, opts, &progress).await
}

/// [`run_with`], reporting each asset checked to `progress`.
pub async fn run_with_progress(
    store: &dyn MetaStore,
    blobs: &BlobStore,
    catalogs: &[String],
    tmp_root: &std::path::Path,
    opts: &Options,
    progress: &crate::progress::Progress,
) -> OpsResult<Report> {
    let (repair, verify, min_age) = (opts.repair, opts.verify, opts.min_age_secs);
    let mut report = Report::default();
    let files: HashMap<String, u64> = blobs
        .list("")
        .await?
        .into_iter()
        .filter(|(k, _, _)| !k.starts_with(LOST_AND_FOUND))
        .map(|(k, size, _)| (k, size))
        .collect();
    report.files = files.len() as u64;
    let mut referenced: HashMap<String, ()> = HashMap::new();
    let mut listed = 0u64;
    for catalog in catalogs {
        for scope in [Scope::Live, Scope::Trash] {
            let ids = store.search_asset_ids(catalog, &all(), scope).await?;
            listed += ids.len() as u64;
            progress.set_total(listed);
            for id in ids {
                progress.add(1);
                let Some(stored) = store.get_asset_in(catalog, &id, scope).await? else {
                    continue;
                };
                report.assets += 1;
                let asset = stored.asset;
                if let Some(o) = &asset.original {
                    referenced.insert(o.blob_key.clone(), ());
                    match files.get(&o.blob_key) {
                        None => {
                            report
                                .problems
                                .push(format!("{catalog}/{id}: the original {} is missing", o.blob_key));
                            report.unrepairable += 1;
                        }
                        Some(size) if *size != o.size => {
                            report.problems.push(format!(
                                "{catalog}/{id}: the original {} has {size} bytes, the record says {}",
                                o.blob_key, o.size
                            ));
                            report.unrepairable += 1;
                        }
                        Some(_) if verify && !o.sha256hex.is_empty() => {
                            let got = sha256_of(blobs, &o.blob_key).await?;
                            if got != o.sha256hex {
                                report.problems.push(format!(
                                    "{catalog}/{id}: the original {} does not match its SHA-256",
                                    o.blob_key
                                ));
                                report.unrepairable += 1;
                            }
                        }
                        Some(_) => {}
                    }
                }
                // Earlier versions of the original are kept files, never orphans.
                for key in super::versions::old_version_blobs(&asset) {
                    if !files.contains_key(&key) {
                        report
                            .problems
                            .push(format!("{catalog}/{id}: an earlier version {key} is missing"));
                        report.unrepairable += 1;
                    }
                    referenced.insert(key, ());
                }
                if let Some(t) = super::import::custom_thumb_of(&asset) {
                    referenced.insert(t.blob, ());
                }
                for r in renditions_of(&asset) {
                    referenced.insert(r.blob.clone(), ());
                    if !files.contains_key(&r.blob) {
                        // Renditions can be made again: re-queue the import.
                        report
                            .problems
                            .push(format!("{catalog}/{id}: rendition {} ({}) is missing", r.file, r.blob));
                        if repair {
                            super::import::enqueue(store, catalog, &id).await?;
                            report
                                .repaired
                                .push(format!("{catalog}/{id}: its renditions will be made again"));
                        }
                    }
                }
            }
        }
    }
    for (key, _size, age) in blobs.list("").await? {
        if key.starts_with(LOST_AND_FOUND) || referenced.contains_key(&key) || age < min_age {
            continue;
        }
        report.problems.push(format!("{key} belongs to no asset"));
        if repair {
            let to = format!("{LOST_AND_FOUND}/{key}");
            blobs.rename(&key, &to).await?;
            report.repaired.push(format!("moved {key} to {to}"));
        }
    }
    for (path, age) in blobs.staged_files() {
        if age < min_age {
            continue;
        }
        report
            .problems
            .push(format!("a partial file of an unfinished write {}", path.display()));
        if repair && std::fs::remove_file(&path).is_ok() {
            report.repaired.push(format!("removed {}", path.display()));
        }
    }
    let stuck = store.expired_job_count().await?;
    if stuck > 0 {
        report
            .problems
            .push(format!("{stuck} job(s) hold a lease that ran out"));
        if repair {
            let n = store.requeue_expired_jobs().await?;
            report.repaired.push(format!("returned {n} job(s) to the queue"));
        }
    }
    if let Ok(rd) = std::fs::read_dir(tmp_root) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|d| d.as_secs() as i64 >= min_age);
            if name.starts_with("mediadb-import-") && old {
                report
                    .problems
                    .push(format!("a leftover temporary directory {}", e.path().display()));
                if repair && std::fs::remove_dir_all(e.path()).is_ok() {
                    report.repaired.push(format!("removed {}", e.path().display()));
                }
            }
        }
    }
    Ok(report)
}
