//! What kind of media a file is, from its extension: EnterMediaDB's `fileformat`
//! (lower-case extension), `assettype` and `mediarendertype`.

/// The lower-case extension of a file name, if it has one.
pub fn extension_of(filename: &str) -> Option<String> {
    let base = filename.rsplit('/').next().unwrap_or(filename);
    let (stem, ext) = base.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() || ext.len() > 10 {
        return None;
    }
    Some(ext.to_ascii_lowercase())
}

/// `mediarendertype` of a file format: image, video, audio, document or default.
pub fn render_type(fileformat: &str) -> &'static str {
    match fileformat {
        "jpg" | "jpeg" | "png" | "gif" | "tif" | "tiff" | "webp" | "heic" | "heif" | "bmp" | "psd" | "svg" | "avif"
        | "cr2" | "nef" | "dng" | "arw" | "eps" | "ai" => "image",
        "mp4" | "mov" | "m4v" | "avi" | "mkv" | "webm" | "mpg" | "mpeg" | "wmv" | "flv" | "3gp" | "mts" => "video",
        "mp3" | "wav" | "aac" | "flac" | "ogg" | "oga" | "m4a" | "aif" | "aiff" | "wma" => "audio",
        "pdf" | "doc" | "docx" | "xls" | "xlsx" | "ppt" | "pptx" | "odt" | "ods" | "odp" | "rtf" | "txt" | "csv"
        | "indd" | "pages" | "key" | "numbers" => "document",
        _ => "default",
    }
}

/// The `assettype` a new asset of this format gets.
pub fn asset_type(fileformat: &str) -> &'static str {
    match render_type(fileformat) {
        "image" if matches!(fileformat, "svg" | "eps" | "ai" | "psd") => "graphic",
        "image" => "photo",
        "video" => "video",
        "audio" => "audio",
        "document" => "document",
        _ => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_common_formats() {
        assert_eq!(extension_of("a/b/DSC00750.JPG").as_deref(), Some("jpg"));
        assert_eq!(extension_of(".hidden"), None);
        assert_eq!(extension_of("noext"), None);
        assert_eq!(asset_type("jpg"), "photo");
        assert_eq!(asset_type("mov"), "video");
        assert_eq!(asset_type("docx"), "document");
        assert_eq!(asset_type("mp3"), "audio");
        assert_eq!(asset_type("xyz"), "none");
        assert_eq!(render_type("pdf"), "document");
    }
}
