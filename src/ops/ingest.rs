//! Receiving an original: streamed into a new blob with bounded memory, hashed (MD5
//! for EnterMediaDB's `md5hex`, SHA-256 for integrity) in the same pass. Nothing is
//! left behind when the stream fails or exceeds the size limit.

use super::{OpsError, OpsResult};
use crate::blobs::{BlobError, BlobStore};
use crate::domain::asset::Original;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use md5::{Digest, Md5};
use sha2::Sha256;

/// A failure of the client's side of an upload (a broken multipart body), told apart
/// from storage failures.
#[derive(Debug)]
pub struct ClientStreamError(pub String);

pub async fn receive<S>(blobs: &BlobStore, filename: &str, mut stream: S, max_bytes: u64) -> OpsResult<Original>
where
    S: Stream<Item = Result<Bytes, ClientStreamError>> + Unpin,
{
    let mut upload = blobs.begin(BlobStore::new_key("originals"));
    let mut md5 = Md5::new();
    let mut sha = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(ClientStreamError(msg)) => {
                upload.abort().await;
                return Err(OpsError::Invalid(crate::domain::Invalid::new(format!(
                    "the upload could not be read: {msg}"
                ))));
            }
        };
        size += chunk.len() as u64;
        if size > max_bytes {
            upload.abort().await;
            return Err(OpsError::TooLarge(format!(
                "the file is larger than the limit of {max_bytes} bytes"
            )));
        }
        md5.update(&chunk);
        sha.update(&chunk);
        if let Err(e) = upload.write(&chunk).await {
            upload.abort().await;
            return Err(e.into());
        }
    }
    let key = upload.finish().await.map_err(|e: BlobError| OpsError::Blob(e))?;
    crate::metrics::upload(size);
    Ok(Original {
        blob_key: key,
        filename: filename.to_string(),
        size,
        md5hex: hex::encode(md5.finalize()),
        sha256hex: hex::encode(sha.finalize()),
    })
}
