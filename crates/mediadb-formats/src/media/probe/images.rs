//! Container walkers for still images (JPEG, PNG, GIF, WebP, PSD, BMP): dimensions, colour model,
//! and the raw EXIF / XMP / IPTC blocks. Each reads only headers and metadata segments, with every
//! length bounded, and never decodes pixels.

use std::io::{Read, Seek, SeekFrom};

use super::Blocks;
use crate::media::MediaError;

/// Upper bound for one metadata block we keep in memory.
const MAX_BLOCK: u64 = 16 << 20;

pub(super) fn read_exact_vec<R: Read>(r: &mut R, len: u64) -> Result<Vec<u8>, MediaError> {
    if len > MAX_BLOCK {
        return Err(MediaError::Decode(format!(
            "metadata block of {len} bytes is too large"
        )));
    }
    let mut buf = Vec::with_capacity(len as usize);
    r.take(len).read_to_end(&mut buf).map_err(truncated)?;
    if buf.len() as u64 != len {
        return Err(MediaError::Decode("file is truncated".into()));
    }
    Ok(buf)
}

pub(super) fn truncated(e: std::io::Error) -> MediaError {
    MediaError::Decode(format!("file is truncated or unreadable: {e}"))
}

fn u16be(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32be(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u16le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u24le(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
}

/// The colour space named in an ICC profile header.
pub(super) fn icc_space(icc: &[u8]) -> Option<&'static str> {
    Some(match icc.get(16..20)? {
        b"RGB " => "RGB",
        b"CMYK" => "CMYK",
        b"GRAY" => "Grayscale",
        b"Lab " => "Lab",
        _ => return None,
    })
}

/// JPEG: markers up to the first scan.
pub(super) fn jpeg<R: Read + Seek>(r: &mut R, b: &mut Blocks) -> Result<(), MediaError> {
    let mut two = [0u8; 2];
    r.read_exact(&mut two).map_err(truncated)?;
    let mut components = None;
    // A JPEG has a few dozen markers before its scan; the cap bounds a hostile stream of them.
    for _ in 0..10_000 {
        let mut byte = [0u8; 1];
        // Find the next marker, skipping fill bytes.
        loop {
            if r.read(&mut byte).map_err(truncated)? == 0 {
                return finish_jpeg(b, components);
            }
            if byte[0] == 0xFF {
                break;
            }
        }
        let mut marker = 0xFF;
        while marker == 0xFF {
            if r.read(&mut byte).map_err(truncated)? == 0 {
                return finish_jpeg(b, components);
            }
            marker = byte[0];
        }
        match marker {
            0xD8 | 0x01 | 0xD0..=0xD7 | 0x00 => continue,
            0xD9 | 0xDA => break,
            _ => {}
        }
        r.read_exact(&mut two).map_err(truncated)?;
        let len = u16::from_be_bytes(two) as u64;
        if len < 2 {
            return Err(MediaError::Decode("JPEG segment with a bad length".into()));
        }
        let len = len - 2;
        let wanted = matches!(marker, 0xE1 | 0xED | 0xE2)
            || matches!(marker, 0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC));
        if !wanted {
            r.seek(SeekFrom::Current(len as i64)).map_err(truncated)?;
            continue;
        }
        let seg = read_exact_vec(r, len)?;
        match marker {
            0xE1 if seg.starts_with(b"Exif\0\0") && b.exif.is_none() => {
                b.exif = Some(seg[6..].to_vec());
            }
            0xE1 if seg.starts_with(b"http://ns.adobe.com/xap/1.0/\0") && b.xmp.is_none() => {
                b.xmp = Some(seg[29..].to_vec());
            }
            // Large resource sections are split over several APP13 segments.
            0xED if seg.starts_with(b"Photoshop 3.0\0") && b.irb.len() < MAX_BLOCK as usize => {
                b.irb.extend_from_slice(&seg[14..]);
            }
            0xE2 if seg.starts_with(b"ICC_PROFILE\0") && seg.get(12) == Some(&1) => {
                b.icc_space = icc_space(&seg[14..]);
            }
            0xC0..=0xCF => {
                let h = u16be(&seg, 1).unwrap_or(0);
                let w = u16be(&seg, 3).unwrap_or(0);
                if w > 0 && h > 0 && b.info.width.is_none() {
                    b.info.width = Some(w.into());
                    b.info.height = Some(h.into());
                }
                components = seg.get(5).copied();
            }
            _ => {}
        }
    }
    finish_jpeg(b, components)
}

fn finish_jpeg(b: &mut Blocks, components: Option<u8>) -> Result<(), MediaError> {
    if b.info.width.is_none() {
        return Err(MediaError::Decode("JPEG without a frame header".into()));
    }
    // Four components are CMYK, stored plain or as YCCK (Adobe transform 2): both are CMYK images.
    b.info.colorspace = match components {
        Some(1) => Some("Grayscale".into()),
        Some(3) => Some("RGB".into()),
        Some(4) => Some("CMYK".into()),
        _ => None,
    };
    Ok(())
}

/// PNG: IHDR and the metadata chunks (eXIf, iTXt XMP, text keywords, iCCP).
pub(super) fn png<R: Read + Seek>(r: &mut R, b: &mut Blocks) -> Result<(), MediaError> {
    r.seek(SeekFrom::Start(8)).map_err(truncated)?;
    let mut head = [0u8; 8];
    // Large PNGs have thousands of IDAT chunks, which are skipped with a seek each.
    for _ in 0..1_000_000 {
        if r.read_exact(&mut head).is_err() {
            break;
        }
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as u64;
        let kind = [head[4], head[5], head[6], head[7]];
        let wanted = matches!(&kind, b"IHDR" | b"eXIf" | b"iTXt" | b"tEXt" | b"zTXt") && len <= MAX_BLOCK;
        if !wanted {
            if &kind == b"IEND" {
                break;
            }
            if &kind == b"iCCP" && b.icc_space.is_none() {
                b.icc_space = Some("ICC");
            }
            r.seek(SeekFrom::Current(len as i64 + 4)).map_err(truncated)?;
            continue;
        }
        let data = read_exact_vec(r, len)?;
        r.seek(SeekFrom::Current(4)).map_err(truncated)?; // CRC
        match &kind {
            b"IHDR" => {
                b.info.width = u32be(&data, 0).filter(|&w| w > 0);
                b.info.height = u32be(&data, 4).filter(|&h| h > 0);
                b.info.colorspace = match data.get(9) {
                    Some(0 | 4) => Some("Grayscale".into()),
                    Some(2 | 3 | 6) => Some("RGB".into()),
                    _ => None,
                };
            }
            b"eXIf" if b.exif.is_none() => b.exif = Some(data),
            b"tEXt" | b"zTXt" | b"iTXt" => {
                if let Some((key, value)) = png_text(&kind, &data) {
                    if key == "XML:com.adobe.xmp" {
                        b.xmp.get_or_insert_with(|| value.into_bytes());
                    } else {
                        b.png_text.push((key, value));
                    }
                }
            }
            _ => {}
        }
    }
    if b.info.width.is_none() {
        return Err(MediaError::Decode("PNG without an IHDR chunk".into()));
    }
    if b.icc_space == Some("ICC") {
        b.icc_space = None;
    }
    Ok(())
}

/// Keyword and text of a PNG text chunk (compressed ones inflated, bounded).
fn png_text(kind: &[u8; 4], data: &[u8]) -> Option<(String, String)> {
    let nul = data.iter().position(|&c| c == 0)?;
    let key: String = data[..nul].iter().map(|&c| c as char).collect();
    let rest = &data[nul + 1..];
    let latin1 = |b: &[u8]| b.iter().map(|&c| c as char).collect::<String>();
    let text = match kind {
        b"tEXt" => latin1(rest),
        b"zTXt" => latin1(&inflate(rest.get(1..)?)?),
        _ => {
            // iTXt: compression flag, method, language tag\0, translated keyword\0, text
            let compressed = *rest.first()? == 1;
            let after = rest.get(2..)?;
            let lang_end = after.iter().position(|&c| c == 0)?;
            let after = &after[lang_end + 1..];
            let tk_end = after.iter().position(|&c| c == 0)?;
            let body = &after[tk_end + 1..];
            let body = if compressed { inflate(body)? } else { body.to_vec() };
            String::from_utf8_lossy(&body).into_owned()
        }
    };
    Some((key, text))
}

/// zlib inflate, refusing output beyond the block limit (a zip bomb in a text chunk).
pub(super) fn inflate(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(MAX_BLOCK)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// GIF: logical screen size and an XMP application extension.
pub(super) fn gif<R: Read + Seek>(r: &mut R, b: &mut Blocks) -> Result<(), MediaError> {
    let mut head = [0u8; 13];
    r.read_exact(&mut head).map_err(truncated)?;
    b.info.width = u16le(&head, 6).filter(|&w| w > 0).map(u32::from);
    b.info.height = u16le(&head, 8).filter(|&h| h > 0).map(u32::from);
    b.info.colorspace = Some("RGB".into());
    if head[10] & 0x80 != 0 {
        let table = 3u64 << ((head[10] & 7) + 1);
        r.seek(SeekFrom::Current(table as i64)).map_err(truncated)?;
    }
    // Walk blocks until the first image: metadata extensions precede it in practice.
    for _ in 0..10_000 {
        let mut intro = [0u8; 1];
        if r.read_exact(&mut intro).is_err() {
            break;
        }
        match intro[0] {
            0x21 => {
                let mut label = [0u8; 1];
                r.read_exact(&mut label).map_err(truncated)?;
                if label[0] == 0xFF {
                    let mut size = [0u8; 1];
                    r.read_exact(&mut size).map_err(truncated)?;
                    let app = read_exact_vec(r, size[0] as u64)?;
                    if app == b"XMP DataXMP" {
                        // The packet is stored raw; its "magic trailer" makes the sub-block
                        // walk end cleanly, so the raw bytes are the sub-blocks with their
                        // length bytes included.
                        let raw = gif_sub_blocks(r, true)?;
                        if let Some(p) = super::xmp::scan_packet(&raw) {
                            b.xmp.get_or_insert_with(|| p.to_vec());
                        }
                        continue;
                    }
                }
                gif_sub_blocks(r, false)?;
            }
            _ => break, // image descriptor or trailer
        }
    }
    Ok(())
}

fn gif_sub_blocks<R: Read + Seek>(r: &mut R, keep: bool) -> Result<Vec<u8>, MediaError> {
    let mut out = Vec::new();
    loop {
        let mut len = [0u8; 1];
        r.read_exact(&mut len).map_err(truncated)?;
        if len[0] == 0 {
            return Ok(out);
        }
        if keep && out.len() < super::xmp::MAX_PACKET {
            out.push(len[0]);
            out.extend(read_exact_vec(r, len[0] as u64)?);
        } else {
            r.seek(SeekFrom::Current(len[0] as i64)).map_err(truncated)?;
        }
    }
}

/// WebP: RIFF chunks VP8X/VP8/VP8L for the size, EXIF, XMP and ICCP.
pub(super) fn webp<R: Read + Seek>(r: &mut R, b: &mut Blocks) -> Result<(), MediaError> {
    r.seek(SeekFrom::Start(12)).map_err(truncated)?;
    let mut head = [0u8; 8];
    for _ in 0..10_000 {
        if r.read_exact(&mut head).is_err() {
            break;
        }
        let kind = [head[0], head[1], head[2], head[3]];
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as u64;
        let padded = len + (len & 1);
        let wanted = matches!(&kind, b"VP8X" | b"VP8 " | b"VP8L" | b"EXIF" | b"XMP " | b"ICCP");
        if !wanted || len > MAX_BLOCK {
            r.seek(SeekFrom::Current(padded as i64)).map_err(truncated)?;
            continue;
        }
        // Only the first bytes of the bitstream chunks are needed.
        let take = if matches!(&kind, b"VP8 " | b"VP8L") {
            len.min(16)
        } else {
            len
        };
        let data = read_exact_vec(r, take)?;
        r.seek(SeekFrom::Current((padded - take) as i64)).map_err(truncated)?;
        let size = match &kind {
            b"VP8X" => Some((u24le(&data, 4).map(|w| w + 1), u24le(&data, 7).map(|h| h + 1))),
            b"VP8 " if data.get(3..6) == Some(&[0x9D, 0x01, 0x2A]) => Some((
                u16le(&data, 6).map(|w| u32::from(w & 0x3FFF)),
                u16le(&data, 8).map(|h| u32::from(h & 0x3FFF)),
            )),
            b"VP8L" if data.first() == Some(&0x2F) => {
                let bits = u32::from_le_bytes(data.get(1..5).and_then(|s| s.try_into().ok()).unwrap_or([0; 4]));
                Some((Some((bits & 0x3FFF) + 1), Some(((bits >> 14) & 0x3FFF) + 1)))
            }
            b"EXIF" => {
                b.exif.get_or_insert(data);
                None
            }
            b"XMP " => {
                b.xmp.get_or_insert(data);
                None
            }
            b"ICCP" => {
                b.icc_space = icc_space(&data);
                None
            }
            _ => None,
        };
        if let Some((Some(w), Some(h))) = size {
            if b.info.width.is_none() && w > 0 && h > 0 {
                b.info.width = Some(w);
                b.info.height = Some(h);
            }
        }
    }
    if b.info.width.is_none() {
        return Err(MediaError::Decode("WebP without a bitstream header".into()));
    }
    b.info.colorspace.get_or_insert_with(|| "RGB".into());
    Ok(())
}

/// Photoshop PSD/PSB: header, then the image-resource section (IPTC, EXIF, XMP, ICC inside).
pub(super) fn psd<R: Read + Seek>(r: &mut R, b: &mut Blocks) -> Result<(), MediaError> {
    let mut head = [0u8; 26];
    r.read_exact(&mut head).map_err(truncated)?;
    b.info.height = u32be(&head, 14).filter(|&v| v > 0);
    b.info.width = u32be(&head, 18).filter(|&v| v > 0);
    b.info.colorspace = match u16be(&head, 24) {
        Some(0..=2 | 8) => Some("Grayscale".into()),
        Some(3) => Some("RGB".into()),
        Some(4) => Some("CMYK".into()),
        Some(9) => Some("Lab".into()),
        _ => None,
    };
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(truncated)?;
    r.seek(SeekFrom::Current(u32::from_be_bytes(len) as i64))
        .map_err(truncated)?;
    r.read_exact(&mut len).map_err(truncated)?;
    let section_len = u64::from(u32::from_be_bytes(len));
    // A resource section beyond the block limit (huge embedded thumbnails) is skipped, not
    // fatal; so is one cut short (an upload's size check reads only the file's start): the
    // size is known from the header.
    if section_len <= MAX_BLOCK {
        b.irb = read_exact_vec(r, section_len).unwrap_or_default();
    }
    Ok(())
}

/// BMP: the info header's size.
pub(super) fn bmp<R: Read + Seek>(r: &mut R, b: &mut Blocks) -> Result<(), MediaError> {
    let mut head = [0u8; 26];
    r.read_exact(&mut head).map_err(truncated)?;
    let header_size = u32::from_le_bytes([head[14], head[15], head[16], head[17]]);
    let (w, h) = if header_size == 12 {
        (u16le(&head, 18).map(i64::from), u16le(&head, 20).map(i64::from))
    } else {
        let w = i32::from_le_bytes([head[18], head[19], head[20], head[21]]);
        let h = i32::from_le_bytes([head[22], head[23], head[24], head[25]]);
        (Some(i64::from(w)), Some(i64::from(h)))
    };
    // A negative height means the rows are stored top-down.
    b.info.width = w
        .map(|v| v.unsigned_abs())
        .and_then(|v| u32::try_from(v).ok())
        .filter(|&v| v > 0);
    b.info.height = h
        .map(|v| v.unsigned_abs())
        .and_then(|v| u32::try_from(v).ok())
        .filter(|&v| v > 0);
    b.info.colorspace = Some("RGB".into());
    Ok(())
}
