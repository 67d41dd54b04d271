//! `mediadb import DIR`: a folder tree into the catalog, through the same path as an
//! upload (streamed into a blob with its hashes, then `assets::create`, which queues the
//! metadata and renditions job). Each file's sourcepath is its path relative to DIR, so
//! a second run skips what the first brought in (resumable after an interruption), and
//! a file whose SHA-256 is already in the catalog is reported, not stored twice.

use super::assets::{self, CreateRequest};
use super::ingest::{self, ClientStreamError};
use super::{Ctx, OpsError};
use crate::progress::Progress;
use futures_util::StreamExt;
use serde_json::Map;
use std::path::{Path, PathBuf};

pub struct Options {
    /// Put before every relative path (`imports/2024`); empty for none.
    pub prefix: String,
    /// Also store files whose content is already in the catalog.
    pub allow_duplicates: bool,
    pub max_bytes: u64,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub files: u64,
    pub imported: u64,
    pub bytes: u64,
    /// Sourcepaths already in the catalog (an earlier run).
    pub already: u64,
    /// `(sourcepath, the sourcepath holding the same content)`.
    pub duplicates: Vec<(String, String)>,
    /// `(relative path, why)`.
    pub failed: Vec<(String, String)>,
}

/// Regular files under `root`, sorted, with their `/`-separated relative paths; hidden
/// files and directories (`.DS_Store`, `.git`) and symbolic links are left out.
pub fn walk(root: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let kind = e.file_type()?;
            if kind.is_dir() {
                stack.push(e.path());
            } else if kind.is_file() {
                let rel = e.path().strip_prefix(root).unwrap_or(&e.path()).to_path_buf();
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push((e.path(), rel.join("/")));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

fn sourcepath_for(prefix: &str, rel: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        rel.to_string()
    } else {
        format!("{prefix}/{rel}")
    }
}

pub async fn run(ctx: &Ctx<'_>, root: &Path, opts: &Options, progress: &Progress) -> std::io::Result<Summary> {
    let files = walk(root)?;
    let mut s = Summary {
        files: files.len() as u64,
        ..Summary::default()
    };
    progress.set_total(s.files);
    for (path, rel) in files {
        progress.message(&rel);
        let sourcepath = sourcepath_for(&opts.prefix, &rel);
        match import_one(ctx, &path, &sourcepath, opts).await {
            Ok(Outcome::Imported(bytes)) => {
                s.imported += 1;
                s.bytes += bytes;
            }
            Ok(Outcome::Already) => s.already += 1,
            Ok(Outcome::Duplicate(of)) => s.duplicates.push((sourcepath, of)),
            Err(why) => s.failed.push((rel, why)),
        }
        progress.add(1);
    }
    progress.finish();
    Ok(s)
}

enum Outcome {
    Imported(u64),
    Already,
    Duplicate(String),
}

async fn import_one(ctx: &Ctx<'_>, path: &Path, sourcepath: &str, opts: &Options) -> Result<Outcome, String> {
    if ctx
        .store
        .get_asset_by_sourcepath(ctx.catalog, sourcepath)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(Outcome::Already);
    }
    let file = tokio::fs::File::open(path).await.map_err(|e| e.to_string())?;
    let stream = tokio_util::io::ReaderStream::new(file).map(|r| r.map_err(|e| ClientStreamError(e.to_string())));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let original = ingest::receive(ctx.blobs, &name, stream, opts.max_bytes)
        .await
        .map_err(|e| e.to_string())?;
    let discard = |key: String| async move {
        let _ = ctx.blobs.delete(&key).await;
    };
    if !opts.allow_duplicates {
        let twin = ctx.store.find_asset_by_sha256(ctx.catalog, &original.sha256hex).await;
        match twin {
            Ok(Some((_, of))) => {
                discard(original.blob_key.clone()).await;
                return Ok(Outcome::Duplicate(of));
            }
            Ok(None) => {}
            Err(e) => {
                discard(original.blob_key.clone()).await;
                return Err(e.to_string());
            }
        }
    }
    let (key, size) = (original.blob_key.clone(), original.size);
    let no_params = |_: &str| None;
    let req = CreateRequest {
        id: None,
        sourcepath: Some(sourcepath.to_string()),
        values: Map::new(),
        original: Some(original),
        param: &no_params,
        // A rerun skips what is in; it never turns a file into a new version.
        new_version_of_existing: false,
    };
    match assets::create(ctx, req).await {
        Ok(_) => Ok(Outcome::Imported(size)),
        // Another import took the path meanwhile.
        Err(OpsError::Conflict(m)) if m.contains("sourcepath") => {
            discard(key).await;
            Ok(Outcome::Already)
        }
        Err(e) => {
            discard(key).await;
            Err(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sorted_relative_paths_without_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        for f in ["a.jpg", "b/c/d.png", "b/x.pdf", ".DS_Store", ".git/config"] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let rels: Vec<String> = walk(root).unwrap().into_iter().map(|(_, r)| r).collect();
        assert_eq!(rels, ["a.jpg", "b/c/d.png", "b/x.pdf"]);
        assert_eq!(sourcepath_for("/imports/2024/", "a.jpg"), "imports/2024/a.jpg");
        assert_eq!(sourcepath_for("", "b/x.pdf"), "b/x.pdf");
    }
}
