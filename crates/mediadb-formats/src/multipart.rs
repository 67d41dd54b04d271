//! The reading of `multipart/form-data` bodies (`module/asset/create`,
//! `module/media/uploadcustomthumb`): form fields read to a size limit, upload file
//! names checked, and [`walk`], which reads a whole body the way an upload does (for
//! the fuzz target and tests; the server streams the file part to storage instead).

use crate::lenient_json;
use bytes::Bytes;

/// Why a small form field could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FieldError {
    #[error("the multipart body is broken: {0}")]
    Broken(#[from] multer::Error),
    #[error("a form field is larger than {0} bytes")]
    TooLarge(usize),
}

/// Reads a (non-file) form field whole, refusing one larger than `limit` bytes
/// before holding more than that.
pub async fn read_small(field: &mut multer::Field<'_>, limit: usize) -> Result<Vec<u8>, FieldError> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await? {
        if out.len() + chunk.len() > limit {
            return Err(FieldError::TooLarge(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The file name of an upload: its last path component (browsers on Windows send
/// `C:\dir\x.jpg`), not hidden, no control characters, at most 255 bytes. The error
/// is the message for the client.
pub fn clean_filename(raw: &str) -> Result<String, String> {
    let leaf = raw.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if leaf.is_empty() || leaf.starts_with('.') || leaf.chars().any(char::is_control) || leaf.len() > 255 {
        return Err(format!(
            "the uploaded file name \"{}\" is not usable",
            raw.escape_default()
        ));
    }
    Ok(leaf.to_string())
}

/// True for a part that carries a JSON request (`jsonrequest`, or a JSON media type).
pub fn is_json_part(field: &multer::Field<'_>) -> bool {
    field.name() == Some("jsonrequest")
        || field
            .content_type()
            .is_some_and(|m| m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
}

/// Walks a multipart body the way `module/asset/create` reads one (JSON parts through
/// the lenient reader, the file name check on the first file, text fields as UTF-8,
/// later files drained) and returns how many parts it saw. The body arrives in small
/// chunks so that boundaries fall across chunk edges. Every outcome is an `Ok` or a
/// clean error.
pub async fn walk(content_type: &str, body: &[u8]) -> Result<usize, String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let chunks: Vec<Result<Bytes, std::io::Error>> = body.chunks(97).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let mut mp = multer::Multipart::new(futures_util::stream::iter(chunks), boundary);
    let mut parts = 0;
    let mut file_seen = false;
    while let Some(mut field) = mp.next_field().await.map_err(|e| e.to_string())? {
        parts += 1;
        let filename = field.file_name().map(str::to_string);
        if is_json_part(&field) {
            let bytes = read_small(&mut field, 1 << 20).await.map_err(|e| e.to_string())?;
            lenient_json::parse(&bytes)?;
        } else if let Some(fname) = filename {
            if !file_seen {
                clean_filename(&fname)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_executor::block_on;

    #[test]
    fn file_names_keep_the_leaf_and_refuse_hidden_or_control() {
        assert_eq!(clean_filename("C:\\dir\\x.jpg").unwrap(), "x.jpg");
        assert_eq!(clean_filename("a/b/ c.png ").unwrap(), "c.png");
        assert!(clean_filename("dir/.hidden").is_err());
        assert!(clean_filename("a\u{7}b").is_err());
        assert!(clean_filename("x/").is_err());
        assert!(clean_filename(&"n".repeat(256)).is_err());
    }

    #[test]
    fn walk_reads_parts_and_refuses_broken_json() {
        let ct = "multipart/form-data; boundary=XX";
        let good = b"--XX\r\nContent-Disposition: form-data; name=\"jsonrequest\"\r\n\r\n{\"a\":1,}\r\n\
--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\n\r\nabc\r\n--XX--\r\n";
        assert_eq!(block_on(walk(ct, good)).unwrap(), 2);
        let bad = b"--XX\r\nContent-Disposition: form-data; name=\"jsonrequest\"\r\n\r\n{\"a\":\r\n--XX--\r\n";
        assert!(block_on(walk(ct, bad)).is_err());
        assert!(block_on(walk("text/plain", good)).is_err());
    }
}
