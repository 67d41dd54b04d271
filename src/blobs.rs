//! Originals and renditions as blobs behind `object_store`: the local disk (embedded) or
//! any S3-compatible store (`s3://bucket/prefix`, scale-out). Keys are random
//! (`originals/<blobid>`), never derived from source paths, so client input never names
//! a file-system path.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, MultipartUpload, ObjectStore, PutPayload};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinSet;

/// Bytes buffered before a blob becomes a multipart upload, and the size of each part
/// (S3 wants at least 5 MiB per part and at most 10,000 parts: 8 MiB parts reach 78 GiB,
/// above the default upload limit).
const PART_BYTES: usize = 8 << 20;
/// Parts of one upload sent at the same time: bounds memory to a few parts per upload.
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob not found")]
    NotFound,
    #[error("storage error: {0}")]
    Store(#[from] object_store::Error),
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad storage setting: {0}")]
    Config(String),
}

pub type BlobResult<T> = Result<T, BlobError>;

#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Set for local disk, where a finished upload is also fsynced.
    local_root: Option<PathBuf>,
    /// Blobs being written and not yet referred to by a committed row (set by the
    /// processes that write: `serve` and `worker`), for crash recovery.
    journal: Arc<std::sync::OnceLock<crate::journal::Journal>>,
}

/// A blob being written. Dropped without [`BlobUpload::finish`], nothing remains.
pub struct BlobUpload {
    key: String,
    writer: Option<Writer>,
    blobs: BlobStore,
}

/// Buffers a blob in memory up to [`PART_BYTES`]; past that it becomes a multipart
/// upload whose handle we keep, so that every failure path can abort it (a multipart
/// upload neither completed nor aborted keeps its parts, invisible but billed).
struct Writer {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    buf: Vec<u8>,
    multipart: Option<Box<dyn MultipartUpload>>,
    /// Parts being sent, as tasks: they travel while the next part is received.
    inflight: JoinSet<object_store::Result<()>>,
}

/// A blob's bytes, possibly a range of them.
pub struct BlobRead {
    pub stream: BoxStream<'static, BlobResult<Bytes>>,
    /// The bytes served.
    pub range: Range<u64>,
    /// The whole blob's size.
    pub size: u64,
}

impl BlobStore {
    /// Opens the storage a setting names: `s3://bucket/prefix` (S3-compatible, see
    /// [`BlobStore::s3`]) or a local directory.
    pub fn open(spec: &str) -> BlobResult<Self> {
        if spec.starts_with("s3://") {
            Self::s3(spec)
        } else {
            Self::local(PathBuf::from(spec.strip_prefix("file://").unwrap_or(spec)))
        }
    }

    /// An S3-compatible bucket, `s3://bucket/prefix`. Endpoint, region and credentials
    /// come from the standard `AWS_*` variables (`AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`,
    /// ...); `?key=value` parameters (the same keys, e.g. `aws_endpoint`) override them,
    /// so one process can reach several stores.
    pub fn s3(spec: &str) -> BlobResult<Self> {
        let url = url::Url::parse(spec).map_err(|e| BlobError::Config(format!("{spec}: {e}")))?;
        let bucket = url
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| BlobError::Config(format!("{spec}: no bucket")))?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in url.query_pairs() {
            let key: AmazonS3ConfigKey = k
                .to_ascii_lowercase()
                .parse()
                .map_err(|e| BlobError::Config(format!("{spec}: {e}")))?;
            builder = builder.with_config(key, v);
        }
        let s3: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
        let prefix = url.path().trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            s3
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        Ok(BlobStore {
            store,
            local_root: None,
            journal: Arc::default(),
        })
    }

    pub fn local(root: PathBuf) -> BlobResult<Self> {
        std::fs::create_dir_all(&root)?;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(BlobStore {
            store: Arc::new(store),
            local_root: Some(root),
            journal: Arc::default(),
        })
    }

    /// Starts noting the blobs this process writes in a journal in `dir` (once per
    /// process; later calls keep the first journal).
    pub fn start_journal(&self, dir: &std::path::Path) -> std::io::Result<()> {
        if self.journal.get().is_none() {
            let _ = self.journal.set(crate::journal::Journal::create(dir)?);
        }
        Ok(())
    }

    /// The journal this process writes, if any (recovery leaves it alone).
    pub fn journal_path(&self) -> Option<PathBuf> {
        self.journal.get().map(|j| j.path().to_path_buf())
    }

    /// Notes a blob that a row change is about to stop referring to: if the process
    /// dies after that change commits and before the blob is deleted, recovery deletes it.
    pub fn note_pending(&self, key: &str) {
        if let Some(j) = self.journal.get() {
            j.add(key);
        }
    }

    /// Says that a blob is now referred to by a committed row: a crash from here on
    /// must keep it.
    pub fn settle(&self, key: &str) {
        if let Some(j) = self.journal.get() {
            j.settle(key);
        }
    }

    /// The partial files of local writes (`<key>#<n>`, hidden from `list`) and their
    /// ages in seconds: a write in progress, or one a killed process left.
    pub fn staged_files(&self) -> Vec<(PathBuf, i64)> {
        fn walk(p: &std::path::Path, out: &mut Vec<(PathBuf, i64)>) {
            let Ok(rd) = std::fs::read_dir(p) else { return };
            for e in rd.flatten() {
                let path = e.path();
                match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&path, out),
                    Ok(_) if e.file_name().to_string_lossy().contains('#') => {
                        let age = e
                            .metadata()
                            .and_then(|m| m.modified())
                            .ok()
                            .and_then(|t| t.elapsed().ok())
                            .map_or(0, |d| d.as_secs() as i64);
                        out.push((path, age));
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        if let Some(root) = &self.local_root {
            walk(root, &mut out);
        }
        out
    }

    /// Removes the partial files a local write of `key` may have left (object_store
    /// stages writes as `<key>#<n>` and renames them into place).
    pub async fn remove_staged(&self, key: &str) -> BlobResult<u64> {
        let Some(root) = &self.local_root else {
            return Ok(0);
        };
        let path = root.join(key);
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(0);
        };
        let prefix = format!("{}#", name.to_string_lossy());
        let mut removed = 0;
        let mut rd = match tokio::fs::read_dir(dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        while let Some(e) = rd.next_entry().await? {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                tokio::fs::remove_file(e.path()).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A new random key under `prefix` (`originals`, `renditions`).
    pub fn new_key(prefix: &str) -> String {
        use rand::Rng;
        let id: u128 = rand::thread_rng().gen();
        format!("{prefix}/{id:032x}")
    }

    pub fn begin(&self, key: String) -> BlobUpload {
        if let Some(j) = self.journal.get() {
            j.add(&key);
        }
        let writer = Writer {
            store: self.store.clone(),
            path: ObjectPath::from(key.as_str()),
            buf: Vec::new(),
            multipart: None,
            inflight: JoinSet::new(),
        };
        BlobUpload {
            key,
            writer: Some(writer),
            blobs: self.clone(),
        }
    }

    pub async fn get(&self, key: &str, range: Option<Range<u64>>) -> BlobResult<BlobRead> {
        let opts = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let res = match self.store.get_opts(&ObjectPath::from(key), opts).await {
            Err(object_store::Error::NotFound { .. }) => return Err(BlobError::NotFound),
            r => r?,
        };
        let size = res.meta.size;
        let range = res.range.clone();
        let stream = res.into_stream().map(|r| r.map_err(BlobError::from)).boxed();
        Ok(BlobRead { stream, range, size })
    }

    /// Every key in the store (for migrations and checks; not for request paths).
    pub async fn list_keys(&self) -> BlobResult<Vec<String>> {
        let mut keys: Vec<String> = self
            .store
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await?;
        keys.sort();
        Ok(keys)
    }

    /// The size of a blob, `None` when it does not exist.
    pub async fn size_of(&self, key: &str) -> BlobResult<Option<u64>> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every blob under `prefix`: key, size, and age in seconds.
    pub async fn list(&self, prefix: &str) -> BlobResult<Vec<(String, u64, i64)>> {
        let now = chrono::Utc::now();
        let p = ObjectPath::from(prefix);
        let mut out = Vec::new();
        let mut stream = self.store.list(Some(&p));
        while let Some(meta) = stream.next().await {
            let meta = meta?;
            out.push((
                meta.location.to_string(),
                meta.size,
                (now - meta.last_modified).num_seconds(),
            ));
        }
        Ok(out)
    }

    /// Moves a blob to another key (copy, then delete on object stores).
    pub async fn rename(&self, from: &str, to: &str) -> BlobResult<()> {
        self.store
            .rename(&ObjectPath::from(from), &ObjectPath::from(to))
            .await?;
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> BlobResult<()> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                self.settle(key);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Makes a finished local blob durable: the file and its directory entry.
    async fn sync_local(&self, key: &str) -> BlobResult<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let path = root.join(key);
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::File::open(&path)?.sync_all()?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(())
    }
}

impl BlobUpload {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub async fn write(&mut self, chunk: &[u8]) -> BlobResult<()> {
        if let Some(w) = self.writer.as_mut() {
            w.write(chunk).await?;
        }
        Ok(())
    }

    /// Completes the upload and makes it durable.
    pub async fn finish(mut self) -> BlobResult<String> {
        if let Some(w) = self.writer.take() {
            if let Err(e) = w.finish().await {
                let _ = self.blobs.delete(&self.key).await;
                return Err(e);
            }
        }
        if let Err(e) = self.blobs.sync_local(&self.key).await {
            let _ = self.blobs.delete(&self.key).await;
            return Err(e);
        }
        Ok(self.key.clone())
    }

    /// Abandons the upload, removing whatever was written.
    pub async fn abort(mut self) {
        if let Some(w) = self.writer.take() {
            w.abort().await;
        }
        let _ = self.blobs.delete(&self.key).await;
    }
}

impl Drop for BlobUpload {
    fn drop(&mut self) {
        // A request cancelled mid-upload drops us: clean up in the background.
        if let Some(w) = self.writer.take() {
            let blobs = self.blobs.clone();
            let key = self.key.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    w.abort().await;
                    let _ = blobs.delete(&key).await;
                });
            }
        }
    }
}

impl Writer {
    async fn write(&mut self, mut chunk: &[u8]) -> BlobResult<()> {
        while !chunk.is_empty() {
            let take = chunk.len().min(PART_BYTES - self.buf.len());
            self.buf.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.buf.len() == PART_BYTES {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    /// Sends the buffer as the next part, starting the multipart upload if needed and
    /// waiting while too many parts are in flight.
    async fn send_part(&mut self) -> BlobResult<()> {
        if self.multipart.is_none() {
            self.multipart = Some(self.store.put_multipart(&self.path).await?);
        }
        while self.inflight.len() >= PARTS_IN_FLIGHT {
            self.join_one().await?;
        }
        let part = PutPayload::from(std::mem::take(&mut self.buf));
        if let Some(m) = self.multipart.as_mut() {
            self.inflight.spawn(m.put_part(part));
        }
        Ok(())
    }

    /// Waits for one part in flight; false when none is.
    async fn join_one(&mut self) -> BlobResult<bool> {
        match self.inflight.join_next().await {
            None => Ok(false),
            Some(Ok(r)) => r.map(|_| true).map_err(BlobError::from),
            Some(Err(e)) => Err(BlobError::Io(std::io::Error::other(e))),
        }
    }

    /// Writes what is left and completes the blob; on failure nothing remains.
    async fn finish(mut self) -> BlobResult<()> {
        let result = async {
            if self.multipart.is_none() {
                // Small blobs are one atomic PUT.
                let body = PutPayload::from(std::mem::take(&mut self.buf));
                self.store.put(&self.path, body).await?;
                return Ok(());
            }
            if !self.buf.is_empty() {
                self.send_part().await?;
            }
            while self.join_one().await? {}
            if let Some(m) = self.multipart.as_mut() {
                m.complete().await?;
            }
            self.multipart = None;
            Ok::<(), BlobError>(())
        }
        .await;
        if result.is_err() {
            self.abort().await;
        }
        result
    }

    /// Abandons the blob: in-flight parts are dropped and the multipart upload (if any)
    /// is aborted, which frees its parts.
    async fn abort(mut self) {
        // Parts still travelling are stopped (and waited for) before the abort, which
        // must come after the last part to free them all.
        self.inflight.abort_all();
        while self.inflight.join_next().await.is_some() {}
        if let Some(mut m) = self.multipart.take() {
            if let Err(e) = m.abort().await {
                tracing::warn!(path = %self.path, error = %e, "could not abort a multipart upload");
            }
        }
    }
}
