//! Originals and renditions as blobs behind `object_store` (local disk now, any
//! S3-compatible store later). Keys are random (`originals/<blobid>`), never derived
//! from source paths, so client input never names a file-system path.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob not found")]
    NotFound,
    #[error("storage error: {0}")]
    Store(#[from] object_store::Error),
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
}

pub type BlobResult<T> = Result<T, BlobError>;

#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Set for local disk, where a finished upload is also fsynced.
    local_root: Option<PathBuf>,
}

/// A blob being written. Dropped without [`BlobUpload::finish`], nothing remains.
pub struct BlobUpload {
    key: String,
    writer: Option<BufWriter>,
    blobs: BlobStore,
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
    pub fn local(root: PathBuf) -> BlobResult<Self> {
        std::fs::create_dir_all(&root)?;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(BlobStore {
            store: Arc::new(store),
            local_root: Some(root),
        })
    }

    /// A new random key under `prefix` (`originals`, `renditions`).
    pub fn new_key(prefix: &str) -> String {
        use rand::Rng;
        let id: u128 = rand::thread_rng().gen();
        format!("{prefix}/{id:032x}")
    }

    pub fn begin(&self, key: String) -> BlobUpload {
        let writer = BufWriter::with_capacity(self.store.clone(), ObjectPath::from(key.as_str()), 8 << 20);
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

    pub async fn delete(&self, key: &str) -> BlobResult<()> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
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
            w.write_all(chunk).await?;
        }
        Ok(())
    }

    /// Completes the upload and makes it durable.
    pub async fn finish(mut self) -> BlobResult<String> {
        if let Some(mut w) = self.writer.take() {
            if let Err(e) = w.shutdown().await {
                let _ = w.abort().await;
                let _ = self.blobs.delete(&self.key).await;
                return Err(e.into());
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
        if let Some(mut w) = self.writer.take() {
            let _ = w.abort().await;
        }
        let _ = self.blobs.delete(&self.key).await;
    }
}

impl Drop for BlobUpload {
    fn drop(&mut self) {
        // A request cancelled mid-upload drops us: clean up in the background.
        if let Some(mut w) = self.writer.take() {
            let blobs = self.blobs.clone();
            let key = self.key.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = w.abort().await;
                    let _ = blobs.delete(&key).await;
                });
            }
        }
    }
}
