//! Start-up recovery after a crash: what a killed process left half done is finished or
//! removed, so that `fsck` right after the restart finds everything consistent.
//!
//! - Blobs listed in a dead process's in-flight journal (see `crate::journal`) that no
//!   asset refers to are deleted, with their staged partial files: the originals of
//!   uploads that were never acknowledged, renditions of an interrupted import, files of
//!   a purge cut short. A listed blob that a committed row refers to is kept.
//! - Interrupted jobs go back to the queue: the embedded store does it when it opens
//!   (one process owns it), shared databases when the dead worker's lease runs out.
//! - Embedded only (one process owns the data directory): import scratch directories
//!   left in `{data-dir}/tmp` are removed.

use super::OpsResult;
use crate::blobs::BlobStore;
use crate::journal::{self, Journal};
use crate::store::MetaStore;
use std::path::Path;

#[derive(Debug, Default)]
pub struct Recovered {
    /// Journals of dead processes that were read.
    pub journals: u64,
    /// Unreferenced blobs deleted.
    pub blobs_removed: u64,
    /// Listed blobs kept because a row refers to them.
    pub blobs_kept: u64,
    /// Partial (staged) files removed.
    pub staged_removed: u64,
    /// Import scratch directories removed.
    pub temp_dirs_removed: u64,
}

/// Recovers what dead processes left in `tmp_root`. `embedded`: this process owns the
/// data directory alone, so any scratch directory older than `started` (this process's
/// start) is a leftover.
pub async fn run(
    store: &dyn MetaStore,
    blobs: &BlobStore,
    tmp_root: &Path,
    embedded: bool,
    started: std::time::SystemTime,
) -> OpsResult<Recovered> {
    let mut out = Recovered::default();
    let own = blobs.journal_path();
    let mut rd = match tokio::fs::read_dir(tmp_root).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(crate::blobs::BlobError::Io(e).into()),
    };
    let mut journals = Vec::new();
    let mut scratch = Vec::new();
    while let Some(e) = rd.next_entry().await.map_err(crate::blobs::BlobError::Io)? {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(journal::PREFIX) && name.ends_with(journal::SUFFIX) {
            if Some(e.path()) != own {
                journals.push(e.path());
            }
        } else if embedded && name.starts_with(super::import::TEMP_PREFIX) {
            let before = e.metadata().await.and_then(|m| m.modified()).is_ok_and(|t| t < started);
            if before {
                scratch.push(e.path());
            }
        }
    }
    for path in journals {
        let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_err() {
            // Its process is alive.
            continue;
        }
        out.journals += 1;
        let pending = Journal::read_pending(&file).map_err(crate::blobs::BlobError::Io)?;
        for key in pending {
            out.staged_removed += blobs.remove_staged(&key).await?;
            if store.blob_referenced(&key).await? {
                out.blobs_kept += 1;
            } else if blobs.size_of(&key).await?.is_some() {
                blobs.delete(&key).await?;
                out.blobs_removed += 1;
            }
        }
        // Removed while still locked: only now is everything it listed dealt with.
        std::fs::remove_file(&path).map_err(crate::blobs::BlobError::Io)?;
    }
    for dir in scratch {
        if tokio::fs::remove_dir_all(&dir).await.is_ok() {
            out.temp_dirs_removed += 1;
        }
    }
    Ok(out)
}
