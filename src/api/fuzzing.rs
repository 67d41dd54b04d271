//! Entry points for the fuzz targets in `fuzz/` (not part of the server's API): the
//! multipart reader's parsing and checks on arbitrary bytes, without a server.

use super::assets::{clean_filename, read_small};
use super::lenient_json;
use bytes::Bytes;

/// Walks a multipart body the way `module/asset/create` reads one (JSON parts through
/// the lenient reader, the file name checks, text fields as UTF-8, later files drained)
/// and returns how many parts it saw. Every outcome must be an `Ok` or a clean error.
pub async fn multipart(content_type: &str, body: &[u8]) -> Result<usize, String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let chunks: Vec<Result<Bytes, std::io::Error>> = body.chunks(97).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let mut mp = multer::Multipart::new(futures_util::stream::iter(chunks), boundary);
    let mut parts = 0;
    let mut file_seen = false;
    while let Some(mut field) = mp.next_field().await.map_err(|e| e.to_string())? {
        parts += 1;
        let name = field.name().unwrap_or("").to_string();
        let filename = field.file_name().map(str::to_string);
        let is_json = field
            .content_type()
            .is_some_and(|m| m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"));
        if name == "jsonrequest" || is_json {
            let bytes = read_small(&mut field, 1 << 20).await.map_err(|e| e.to_string())?;
            lenient_json::parse(&bytes)?;
        } else if let Some(fname) = filename {
            if !file_seen {
                clean_filename(&fname).map_err(|e| e.to_string())?;
                file_seen = true;
            }
            while field.chunk().await.map_err(|e| e.to_string())?.is_some() {}
        } else {
            let bytes = read_small(&mut field, 1 << 20).await.map_err(|e| e.to_string())?;
            String::from_utf8(bytes).map_err(|e| e.to_string())?;
        }
    }
    Ok(parts)
}
