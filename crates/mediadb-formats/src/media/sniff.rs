//! What a file is, from its first bytes (never from its name, which the uploader chose).

use std::io::Read;
use std::path::Path;

use super::MediaError;

/// The container formats the media library knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    Tiff,
    Webp,
    Bmp,
    Psd,
    /// HEIF/HEIC/AVIF still images (ISO BMFF with an image brand).
    Heif,
    /// MP4, MOV, M4V, 3GP and other ISO BMFF / QuickTime movies.
    Movie,
    Pdf,
    Svg,
    Unknown,
}

impl Format {
    /// The lower-case extension EnterMediaDB uses as `detectedfileformat`.
    pub fn extension(self) -> Option<&'static str> {
        Some(match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Tiff => "tif",
            Format::Webp => "webp",
            Format::Bmp => "bmp",
            Format::Psd => "psd",
            Format::Heif => "heic",
            Format::Movie => "mp4",
            Format::Pdf => "pdf",
            Format::Svg => "svg",
            Format::Unknown => return None,
        })
    }

    /// Raster formats that [`crate::media::render`] decodes in-process.
    pub fn decodes_in_process(self) -> bool {
        matches!(
            self,
            Format::Jpeg | Format::Png | Format::Gif | Format::Tiff | Format::Webp | Format::Bmp | Format::Psd
        )
    }
}

/// How many leading bytes [`sniff_bytes`] looks at.
pub const SNIFF_LEN: usize = 512;

/// Classifies a file by its leading bytes.
pub fn sniff_bytes(head: &[u8]) -> Format {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Format::Jpeg
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Format::Png
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Format::Gif
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Format::Tiff
    } else if starts(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        Format::Webp
    } else if starts(b"BM") && head.len() >= 26 {
        Format::Bmp
    } else if starts(b"8BPS") {
        Format::Psd
    } else if head.len() >= 12 && matches!(&head[4..8], b"ftyp") {
        // ISO BMFF: the major brand (and the compatible ones) tell stills from movies.
        let box_len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let end = box_len.clamp(12, head.len());
        let brands: Vec<&[u8]> = std::iter::once(&head[8..12])
            .chain(head[16.min(end)..end].chunks_exact(4))
            .collect();
        let still = |b: &[u8]| {
            matches!(
                b,
                b"heic" | b"heix" | b"heim" | b"heis" | b"mif1" | b"msf1" | b"avif" | b"avis"
            )
        };
        if still(brands[0]) || (brands.iter().any(|b| still(b)) && !is_movie_brand(brands[0])) {
            Format::Heif
        } else {
            Format::Movie
        }
    } else if head.len() >= 8 && matches!(&head[4..8], b"moov" | b"mdat" | b"wide" | b"free" | b"skip" | b"pnot") {
        // Old QuickTime files have no ftyp box.
        Format::Movie
    } else if starts(b"%PDF-") || find(head, b"%PDF-").is_some_and(|i| i < 64) {
        Format::Pdf
    } else if looks_like_svg(head) {
        Format::Svg
    } else {
        Format::Unknown
    }
}

fn is_movie_brand(b: &[u8]) -> bool {
    matches!(
        b,
        b"isom" | b"iso2" | b"mp41" | b"mp42" | b"qt  " | b"M4V " | b"avc1" | b"3gp4" | b"3gp5"
    )
}

fn looks_like_svg(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    (t.starts_with("<?xml") || t.starts_with("<svg") || t.starts_with("<!--") || t.starts_with("<!DOCTYPE svg"))
        && text.contains("<svg")
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Classifies the file at `path` by its leading bytes.
pub fn sniff_file(path: &Path) -> Result<Format, MediaError> {
    let mut f = std::fs::File::open(path).map_err(|e| MediaError::io("open", path, e))?;
    let mut head = Vec::with_capacity(SNIFF_LEN);
    (&mut f)
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| MediaError::io("read", path, e))?;
    Ok(sniff_bytes(&head))
}

/// Office documents LibreOffice converts, by content: OOXML and OpenDocument (ZIP containers
/// named by their parts), and the older OLE2 compound files (`.doc`, `.xls`, `.ppt`). Returns
/// the usual extension, or `None` for anything else.
pub fn sniff_office(path: &Path) -> Result<Option<&'static str>, MediaError> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| MediaError::io("open", path, e))?;
    let mut head = [0u8; 8];
    let n = f.read(&mut head).map_err(|e| MediaError::io("read", path, e))?;
    if n == 8 && head == [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1] {
        return Ok(Some("doc"));
    }
    if !head.starts_with(b"PK\x03\x04") {
        return Ok(None);
    }
    // Part names are in the central directory at the end (and in the local headers, where
    // ODF's uncompressed `mimetype` comes first): look at both ends, never the whole file.
    let mut start = Vec::with_capacity(4096);
    f.seek(SeekFrom::Start(0))
        .map_err(|e| MediaError::io("read", path, e))?;
    (&mut f)
        .take(4096)
        .read_to_end(&mut start)
        .map_err(|e| MediaError::io("read", path, e))?;
    let len = f.metadata().map_err(|e| MediaError::io("read", path, e))?.len();
    let mut tail = Vec::with_capacity(64 << 10);
    f.seek(SeekFrom::Start(len.saturating_sub(64 << 10)))
        .map_err(|e| MediaError::io("read", path, e))?;
    f.read_to_end(&mut tail).map_err(|e| MediaError::io("read", path, e))?;
    Ok(office_kind(&start, &tail))
}

fn office_kind(start: &[u8], tail: &[u8]) -> Option<&'static str> {
    let has = |name: &[u8]| find(tail, name).is_some() || find(start, name).is_some();
    if has(b"mimetypeapplication/vnd.oasis.opendocument.") {
        return Some(match () {
            _ if has(b"opendocument.spreadsheet") => "ods",
            _ if has(b"opendocument.presentation") => "odp",
            _ => "odt",
        });
    }
    if !has(b"[Content_Types].xml") {
        return None;
    }
    if has(b"word/document.xml") {
        Some("docx")
    } else if has(b"xl/workbook.xml") {
        Some("xlsx")
    } else if has(b"ppt/presentation.xml") {
        Some("pptx")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/")).join(rel)
    }

    #[test]
    fn sniffs_fixture_formats() {
        let cases = [
            ("metadata/Canon.jpg", Format::Jpeg),
            ("metadata/PNG.png", Format::Png),
            ("metadata/GIF.gif", Format::Gif),
            ("metadata/ExifTool.tif", Format::Tiff),
            ("metadata/BMP.bmp", Format::Bmp),
            ("metadata/Photoshop.psd", Format::Psd),
            ("metadata/QuickTime.mov", Format::Movie),
            ("metadata/PDF.pdf", Format::Pdf),
            ("metadata/XMP.svg", Format::Svg),
            ("media/junitsampler_tutorial.pdf", Format::Pdf),
            ("media/vm0808h_video_matrix_switch_ss_en.docx", Format::Unknown),
        ];
        for (rel, want) in cases {
            assert_eq!(sniff_file(&fixture(rel)).unwrap(), want, "{rel}");
        }
    }

    #[test]
    fn sniffs_office_documents() {
        let docx = fixture("media/vm0808h_video_matrix_switch_ss_en.docx");
        assert_eq!(sniff_office(&docx).unwrap(), Some("docx"));
        assert_eq!(sniff_office(&fixture("metadata/PDF.pdf")).unwrap(), None);
        assert_eq!(
            office_kind(b"PK\x03\x04 mimetypeapplication/vnd.oasis.opendocument.text", b""),
            Some("odt")
        );
        assert_eq!(office_kind(b"", b"[Content_Types].xml xl/workbook.xml"), Some("xlsx"));
        // A plain ZIP is no document.
        assert_eq!(office_kind(b"", b"readme.txt"), None);
    }

    #[test]
    fn sniffs_bmff_brands() {
        let mut heic = vec![0, 0, 0, 24];
        heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
        assert_eq!(sniff_bytes(&heic), Format::Heif);
        let mut mp4 = vec![0, 0, 0, 24];
        mp4.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2");
        assert_eq!(sniff_bytes(&mp4), Format::Movie);
        let mut webp = b"RIFF\0\0\0\0WEBPVP8 ".to_vec();
        webp.extend_from_slice(&[0; 8]);
        assert_eq!(sniff_bytes(&webp), Format::Webp);
        assert_eq!(sniff_bytes(b""), Format::Unknown);
        assert_eq!(sniff_bytes(&[0, 0, 0, 4, b'f', b't', b'y', b'p']), Format::Unknown);
    }
}
