//! Many files as one streamed ZIP download (a collection's assets, an order).
//!
//! Entries are stored (media is compressed already) and written with data descriptors,
//! so nothing is buffered or sought: a writer task copies each blob chunk by chunk into
//! a bounded pipe that the response body reads. Memory stays constant whatever the
//! number and size of the files; ZIP64 records are written when the archive needs them.
//! A failure after the first byte cannot change the status any more, so it aborts the
//! body: the client sees a broken transfer, never a short archive that looks whole.

use super::error::{ApiError, ApiResult};
use crate::blobs::BlobStore;
use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipEntryBuilder};
use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use futures_lite::io::AsyncWriteExt;
use futures_util::StreamExt;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::collections::HashSet;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite as _;
use tokio_util::io::ReaderStream;

/// How much of the archive may wait between the writer task and the client.
const PIPE_BYTES: usize = 256 * 1024;

/// One file of the archive.
#[derive(Debug, Clone)]
pub struct ZipItem {
    /// The name inside the archive (made unique by [`unique_names`]).
    pub name: String,
    pub blob_key: String,
}

/// Gives every item a distinct name: a repeated `photo.jpg` becomes `photo-2.jpg`, ...
pub fn unique_names(items: &mut [ZipItem]) {
    let mut taken: HashSet<String> = HashSet::new();
    for item in items.iter_mut() {
        let clean: String = item
            .name
            .chars()
            .map(|c| {
                if c == '/' || c == '\\' || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let clean = if clean.is_empty() || clean == "." || clean == ".." {
            "file".to_string()
        } else {
            clean
        };
        let mut name = clean.clone();
        let mut n = 2;
        while !taken.insert(name.to_lowercase()) {
            name = match clean.rsplit_once('.') {
                Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{n}.{ext}"),
                _ => format!("{clean}-{n}"),
            };
            n += 1;
        }
        item.name = name;
    }
}

/// The response: `application/zip`, attachment named `filename`, streamed.
pub fn response(blobs: BlobStore, mut items: Vec<ZipItem>, filename: &str) -> ApiResult<Response> {
    unique_names(&mut items);
    let (pipe_in, pipe_out) = tokio::io::duplex(PIPE_BYTES);
    let task = tokio::spawn(write_archive(blobs, items, pipe_in));
    // After the archive's last byte, the writer's outcome: an error ends the body with
    // an error (the connection is cut) instead of a clean end.
    let outcome = futures_util::stream::once(async move {
        match task.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Err(e)),
            Err(e) => Some(Err(std::io::Error::other(e.to_string()))),
        }
    })
    .filter_map(|r| async move { r });
    let body = Body::from_stream(ReaderStream::new(pipe_out).chain(outcome));
    let encoded = utf8_percent_encode(filename, NON_ALPHANUMERIC).to_string();
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/zip")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"),
        )
        .header(header::CACHE_CONTROL, "private, no-cache")
        .body(body)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn write_archive(blobs: BlobStore, items: Vec<ZipItem>, pipe: tokio::io::DuplexStream) -> std::io::Result<()> {
    let zip_err = |e: async_zip::error::ZipError| std::io::Error::other(e.to_string());
    let mut zip = ZipFileWriter::new(PipeWriter(pipe));
    for item in items {
        let mut read = blobs
            .get(&item.blob_key, None)
            .await
            .map_err(|e| std::io::Error::other(format!("{}: {e}", item.name)))?;
        let entry = ZipEntryBuilder::new(item.name.clone().into(), Compression::Stored).unix_permissions(0o644);
        let mut w = zip.write_entry_stream(entry).await.map_err(zip_err)?;
        while let Some(chunk) = read.stream.next().await {
            let chunk = chunk.map_err(|e| std::io::Error::other(format!("{}: {e}", item.name)))?;
            w.write_all(&chunk).await?;
        }
        w.close().await.map_err(zip_err)?;
    }
    let mut pipe = zip.close().await.map_err(zip_err)?;
    pipe.close().await
}

/// The pipe's tokio writer seen through the `futures` write trait that `async_zip` uses
/// (its own adapter would add `tokio-util`'s `compat` feature to the whole build).
struct PipeWriter(tokio::io::DuplexStream);

impl futures_lite::io::AsyncWrite for PipeWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str) -> ZipItem {
        ZipItem {
            name: name.into(),
            blob_key: String::new(),
        }
    }

    #[test]
    fn names_are_made_unique_and_flat() {
        let mut items = vec![
            item("a.jpg"),
            item("A.jpg"),
            item("a.jpg"),
            item("../x"),
            item(""),
            item("noext"),
            item("noext"),
        ];
        unique_names(&mut items);
        let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            ["a.jpg", "A-2.jpg", "a-3.jpg", ".._x", "file", "noext", "noext-2"]
        );
    }
}
