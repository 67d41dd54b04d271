//! ISO base media files (MP4, MOV, 3GP, HEIF/HEIC): a small box walker reading the movie header,
//! track headers and sample descriptions, or for HEIF the primary item's size and its EXIF/XMP
//! items. The `moov`/`meta` box is read into memory (bounded); media data is never read.

use std::io::{Read, Seek, SeekFrom};

use chrono::{DateTime, TimeZone, Utc};

use super::images::{read_exact_vec, truncated};
use super::Blocks;
use crate::media::MediaError;

/// A `moov` or `meta` box larger than this is not read.
const MAX_HEADER_BOX: u64 = 64 << 20;

/// One box inside an in-memory buffer.
struct Bx<'a> {
    kind: [u8; 4],
    body: &'a [u8],
}

/// Splits a buffer into its boxes; a box whose size overruns the buffer ends the walk.
fn boxes(mut data: &[u8]) -> Vec<Bx<'_>> {
    let mut out = Vec::new();
    while data.len() >= 8 && out.len() < 100_000 {
        let size32 = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as u64;
        let kind = [data[4], data[5], data[6], data[7]];
        let (header, size) = match size32 {
            0 => (8, data.len() as u64),
            1 => {
                let Some(b) = data.get(8..16) else { break };
                (16, u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
            }
            n => (8, n),
        };
        if size < header as u64 || size > data.len() as u64 {
            break;
        }
        out.push(Bx {
            kind,
            body: &data[header..size as usize],
        });
        data = &data[size as usize..];
    }
    out
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).into_iter().find(|b| &b.kind == kind).map(|b| b.body)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}
/// Reads an unsigned big-endian integer of 0, 4 or 8 bytes (iloc field sizes).
fn be_n(b: &[u8], at: usize, n: usize) -> Option<u64> {
    match n {
        0 => Some(0),
        4 => be32(b, at).map(u64::from),
        8 => be64(b, at),
        2 => be16(b, at).map(u64::from),
        _ => None,
    }
}

/// Reads the top-level boxes of the file: only `moov`, `meta` and `uuid` bodies are loaded.
/// A top-level box: its type and (loaded) body.
type TopBox = ([u8; 4], Vec<u8>);

fn top_level<R: Read + Seek>(r: &mut R) -> Result<Vec<TopBox>, MediaError> {
    let file_len = r.seek(SeekFrom::End(0)).map_err(truncated)?;
    let mut pos = 0u64;
    let mut out = Vec::new();
    while pos.saturating_add(8) <= file_len && out.len() < 64 {
        r.seek(SeekFrom::Start(pos)).map_err(truncated)?;
        let mut h = [0u8; 16];
        r.read_exact(&mut h[..8]).map_err(truncated)?;
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
        let kind = [h[4], h[5], h[6], h[7]];
        let (header, size) = match size32 {
            0 => (8, file_len - pos),
            1 => {
                r.read_exact(&mut h[8..16]).map_err(truncated)?;
                (16, u64::from_be_bytes(h[8..16].try_into().unwrap_or([0; 8])))
            }
            n => (8, n),
        };
        if size < header {
            break;
        }
        if matches!(&kind, b"moov" | b"meta" | b"uuid") && size - header <= MAX_HEADER_BOX {
            out.push((kind, read_exact_vec(r, size - header)?));
        }
        pos = pos.saturating_add(size);
    }
    Ok(out)
}

/// Seconds since 1904-01-01 (QuickTime epoch), 0 meaning unset.
fn qt_time(secs: u64) -> Option<DateTime<Utc>> {
    const EPOCH_DIFF: i64 = 2_082_844_800;
    let unix = i64::try_from(secs).ok()? - EPOCH_DIFF;
    // Some writers store Unix time; anything before 1970 or 0 is treated as unset.
    (secs != 0 && unix > 0)
        .then(|| Utc.timestamp_opt(unix, 0).single())
        .flatten()
}

/// The codec name (as ffprobe spells it) of a sample-entry four-character code.
pub fn codec_name(fourcc: &[u8; 4]) -> String {
    match fourcc {
        b"avc1" | b"avc3" => "h264",
        b"hvc1" | b"hev1" => "hevc",
        b"mp4v" => "mpeg4",
        b"jpeg" | b"mjpa" | b"mjpb" => "mjpeg",
        b"av01" => "av1",
        b"vp08" => "vp8",
        b"vp09" => "vp9",
        b"apch" | b"apcn" | b"apcs" | b"apco" | b"ap4h" | b"ap4x" => "prores",
        b"s263" | b"h263" => "h263",
        b"mp4a" => "aac",
        b"ac-3" => "ac3",
        b"ec-3" => "eac3",
        b"Opus" => "opus",
        b"fLaC" => "flac",
        b".mp3" => "mp3",
        b"alac" => "alac",
        b"samr" => "amr_nb",
        b"raw " => "pcm_u8",
        b"twos" => "pcm_s16be",
        b"sowt" => "pcm_s16le",
        b"in24" => "pcm_s24be",
        b"in32" => "pcm_s32be",
        b"fl32" => "pcm_f32be",
        b"fl64" => "pcm_f64be",
        b"lpcm" => "pcm",
        other => return String::from_utf8_lossy(other).trim().to_string(),
    }
    .to_string()
}

/// MP4/MOV: duration, picture size, frame rate, codecs, creation date and XMP.
pub(super) fn movie<R: Read + Seek>(r: &mut R, b: &mut Blocks) -> Result<(), MediaError> {
    let tops = top_level(r)?;
    let Some((_, moov)) = tops.iter().find(|(k, _)| k == b"moov") else {
        return Err(MediaError::Decode("movie without a moov box".into()));
    };
    if let Some(mvhd) = child(moov, b"mvhd") {
        let v1 = mvhd.first() == Some(&1);
        let (created, scale, dur) = if v1 {
            (be64(mvhd, 4), be32(mvhd, 20), be64(mvhd, 24))
        } else {
            (
                be32(mvhd, 4).map(u64::from),
                be32(mvhd, 12),
                be32(mvhd, 16).map(u64::from),
            )
        };
        if let (Some(scale), Some(dur)) = (scale.filter(|&s| s > 0), dur) {
            if dur != u64::from(u32::MAX) && dur != u64::MAX {
                b.info.duration = Some(dur as f64 / f64::from(scale));
            }
        }
        b.container_date = created.and_then(qt_time);
    }
    for trak in boxes(moov).into_iter().filter(|x| &x.kind == b"trak") {
        track(trak.body, b);
    }
    // XMP: QuickTime puts it in udta/XMP_, MP4 in a uuid box (at the top or in moov).
    const XMP_UUID: [u8; 16] = [
        0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC,
    ];
    let xmp = child(moov, b"udta")
        .and_then(|u| child(u, b"XMP_"))
        .map(<[u8]>::to_vec)
        .or_else(|| {
            tops.iter()
                .filter(|(k, _)| k == b"uuid")
                .map(|(_, body)| body.as_slice())
                .chain(boxes(moov).into_iter().filter(|x| &x.kind == b"uuid").map(|x| x.body))
                .find(|body| body.starts_with(&XMP_UUID))
                .map(|body| body[16..].to_vec())
        });
    if xmp.is_some() {
        b.xmp = xmp;
    }
    Ok(())
}

fn track(trak: &[u8], b: &mut Blocks) {
    let Some(mdia) = child(trak, b"mdia") else {
        return;
    };
    let handler = child(mdia, b"hdlr").and_then(|h| h.get(8..12));
    let (scale, dur) = match child(mdia, b"mdhd") {
        Some(m) if m.first() == Some(&1) => (be32(m, 20), be64(m, 24)),
        Some(m) => (be32(m, 12), be32(m, 16).map(u64::from)),
        None => (None, None),
    };
    let stbl = child(mdia, b"minf").and_then(|m| child(m, b"stbl"));
    let entry = stbl.and_then(|s| child(s, b"stsd")).and_then(|stsd| {
        // full box header (4) + entry count (4), then the first sample entry box
        let first = boxes(stsd.get(8..)?).into_iter().next()?;
        Some((first.kind, first.body))
    });
    match handler {
        Some(b"vide") if b.info.video_codec.is_none() => {
            if let Some((kind, body)) = entry {
                b.info.video_codec = Some(codec_name(&kind));
                // VisualSampleEntry: 6 reserved + 2 index + 16 predefined, then width, height.
                let w = be16(body, 24).map(u32::from).filter(|&v| v > 0);
                let h = be16(body, 26).map(u32::from).filter(|&v| v > 0);
                if w.is_some() && h.is_some() {
                    b.info.width = w;
                    b.info.height = h;
                }
            }
            if b.info.width.is_none() {
                // Fall back to the track header's presentation size (16.16 fixed point).
                if let Some(tkhd) = child(trak, b"tkhd") {
                    let at = if tkhd.first() == Some(&1) { 88 } else { 76 };
                    b.info.width = be32(tkhd, at).map(|v| v >> 16).filter(|&v| v > 0);
                    b.info.height = be32(tkhd, at + 4).map(|v| v >> 16).filter(|&v| v > 0);
                }
            }
            // Frame rate: samples over the media duration, from the time-to-sample table.
            let frames: u64 = stbl
                .and_then(|s| child(s, b"stts"))
                .map(|stts| {
                    let n = be32(stts, 4).unwrap_or(0).min(1_000_000) as usize;
                    (0..n).filter_map(|i| be32(stts, 8 + i * 8).map(u64::from)).sum()
                })
                .unwrap_or(0);
            if let (Some(scale), Some(dur)) = (scale.filter(|&s| s > 0), dur.filter(|&d| d > 0)) {
                if frames > 0 {
                    b.info.frame_rate = Some(frames as f64 * f64::from(scale) / dur as f64);
                }
            }
        }
        Some(b"soun") if b.info.audio_codec.is_none() => {
            if let Some((kind, _)) = entry {
                b.info.audio_codec = Some(codec_name(&kind));
            }
        }
        _ => {}
    }
}

/// HEIF/HEIC/AVIF: the primary item's `ispe` size (turned by `irot`), and its EXIF and XMP items.
pub(super) fn heif<R: Read + Seek>(r: &mut R, b: &mut Blocks) -> Result<(), MediaError> {
    let tops = top_level(r)?;
    let Some((_, meta)) = tops.iter().find(|(k, _)| k == b"meta") else {
        return Err(MediaError::Decode("HEIF without a meta box".into()));
    };
    let meta = meta.get(4..).unwrap_or(&[]); // full box
    let primary = child(meta, b"pitm").and_then(|p| {
        if p.first() == Some(&0) {
            be16(p, 4).map(u32::from)
        } else {
            be32(p, 4)
        }
    });
    // Item infos: id -> (type, content type)
    let mut items: Vec<(u32, [u8; 4], String)> = Vec::new();
    if let Some(iinf) = child(meta, b"iinf") {
        let skip = if iinf.first() == Some(&0) { 6 } else { 8 };
        for infe in boxes(iinf.get(skip..).unwrap_or(&[]))
            .into_iter()
            .filter(|x| &x.kind == b"infe")
        {
            let body = infe.body;
            let version = body.first().copied().unwrap_or(0);
            let (id, at) = match version {
                2 => (be16(body, 4).map(u32::from), 8),
                3 => (be32(body, 4), 10),
                _ => continue,
            };
            let (Some(id), Some(kind)) = (id, body.get(at..at + 4)) else {
                continue;
            };
            let kind: [u8; 4] = kind.try_into().unwrap_or([0; 4]);
            // name\0 then (for mime items) content_type\0
            let rest = body.get(at + 4..).unwrap_or(&[]);
            let name_end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
            let ct_bytes = rest.get(name_end + 1..).unwrap_or(&[]);
            let ct_end = ct_bytes.iter().position(|&c| c == 0).unwrap_or(ct_bytes.len());
            let content_type = String::from_utf8_lossy(&ct_bytes[..ct_end]).into_owned();
            items.push((id, kind, content_type));
        }
    }
    let locations = child(meta, b"iloc").map(iloc).unwrap_or_default();

    // Properties: ispe (size) and irot (rotation) associated with the primary item.
    if let (Some(primary), Some(iprp)) = (primary, child(meta, b"iprp")) {
        let props: Vec<Bx> = child(iprp, b"ipco").map(boxes).unwrap_or_default();
        let assoc = child(iprp, b"ipma").map(|m| ipma(m, primary)).unwrap_or_default();
        let mut size = None;
        let mut quarter_turns = 0;
        for index in assoc {
            let Some(p) = index.checked_sub(1).and_then(|i| props.get(i as usize)) else {
                continue;
            };
            match &p.kind {
                b"ispe" => size = be32(p.body, 4).zip(be32(p.body, 8)),
                b"irot" => quarter_turns = p.body.first().copied().unwrap_or(0) & 3,
                _ => {}
            }
        }
        if let Some((w, h)) = size.filter(|&(w, h)| w > 0 && h > 0) {
            let (w, h) = if quarter_turns % 2 == 1 { (h, w) } else { (w, h) };
            b.info.width = Some(w);
            b.info.height = Some(h);
        }
    }
    b.info.colorspace = Some("RGB".into());
    for (id, kind, content_type) in &items {
        let is_exif = kind == b"Exif";
        let is_xmp = kind == b"mime" && content_type == "application/rdf+xml";
        if !is_exif && !is_xmp {
            continue;
        }
        let Some((offset, len)) = locations.iter().find(|l| l.0 == *id).map(|l| (l.1, l.2)) else {
            continue;
        };
        if len > 16 << 20 {
            continue;
        }
        r.seek(SeekFrom::Start(offset)).map_err(truncated)?;
        let data = read_exact_vec(r, len)?;
        if is_exif {
            // A 4-byte offset to the TIFF header precedes the EXIF payload.
            let skip = be32(&data, 0).unwrap_or(0) as usize;
            if let Some(tiff) = data.get(4 + skip..) {
                b.exif.get_or_insert_with(|| tiff.to_vec());
            }
        } else {
            b.xmp.get_or_insert(data);
        }
    }
    Ok(())
}

/// `iloc`: item id -> (file offset, length) of single-extent items stored in the file.
fn iloc(body: &[u8]) -> Vec<(u32, u64, u64)> {
    let mut out = Vec::new();
    let version = body.first().copied().unwrap_or(0);
    let (Some(&s1), Some(&s2)) = (body.get(4), body.get(5)) else {
        return out;
    };
    let offset_size = (s1 >> 4) as usize;
    let length_size = (s1 & 15) as usize;
    let base_offset_size = (s2 >> 4) as usize;
    let index_size = if version >= 1 { (s2 & 15) as usize } else { 0 };
    let mut at = 6;
    let count = if version < 2 {
        let c = be16(body, at).map(u32::from);
        at += 2;
        c
    } else {
        let c = be32(body, at);
        at += 4;
        c
    };
    for _ in 0..count.unwrap_or(0).min(10_000) {
        let id = if version < 2 {
            let v = be16(body, at).map(u32::from);
            at += 2;
            v
        } else {
            let v = be32(body, at);
            at += 4;
            v
        };
        let method = if version >= 1 {
            let m = be16(body, at).map(|v| v & 15);
            at += 2;
            m
        } else {
            Some(0)
        };
        at += 2; // data_reference_index
        let base = be_n(body, at, base_offset_size);
        at += base_offset_size;
        let extents = be16(body, at);
        at += 2;
        let (Some(id), Some(method), Some(base), Some(extents)) = (id, method, base, extents) else {
            break;
        };
        let mut first = None;
        for _ in 0..extents {
            at += index_size;
            let off = be_n(body, at, offset_size);
            at += offset_size;
            let len = be_n(body, at, length_size);
            at += length_size;
            if first.is_none() {
                first = off.zip(len);
            }
        }
        if at > body.len() {
            break;
        }
        // Only file-offset items (method 0) with one extent are read.
        if let (0, 1, Some((off, len))) = (method, extents, first) {
            out.push((id, base.saturating_add(off), len));
        }
    }
    out
}

/// `ipma`: the property indices (1-based) associated with `item`.
fn ipma(body: &[u8], item: u32) -> Vec<u16> {
    let version = body.first().copied().unwrap_or(0);
    let large_index = body.get(3).is_some_and(|f| f & 1 == 1);
    let mut at = 4;
    let count = be32(body, at).unwrap_or(0).min(100_000);
    at += 4;
    for _ in 0..count {
        let id = if version < 1 {
            let v = be16(body, at).map(u32::from);
            at += 2;
            v
        } else {
            let v = be32(body, at);
            at += 4;
            v
        };
        let Some(n) = body.get(at).copied() else { break };
        at += 1;
        let mut props = Vec::new();
        for _ in 0..n {
            let v = if large_index {
                let v = be16(body, at).map(|v| v & 0x7FFF);
                at += 2;
                v
            } else {
                let v = body.get(at).map(|v| u16::from(v & 0x7F));
                at += 1;
                v
            };
            props.extend(v);
        }
        if id == Some(item) {
            return props;
        }
        if id.is_none() || at > body.len() {
            break;
        }
    }
    Vec::new()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    /// A minimal HEIF file: a 640x480 primary item rotated a quarter turn, with an EXIF item.
    pub(crate) fn synthetic_heic(exif_tiff: &[u8]) -> Vec<u8> {
        let mut ftyp = b"heic\0\0\0\0mif1heic".to_vec();
        ftyp.truncate(16);
        let ftyp = bx(b"ftyp", &ftyp);
        let hdlr = bx(b"hdlr", b"\0\0\0\0\0\0\0\0pict\0\0\0\0\0\0\0\0\0\0\0\0\0");
        let pitm = bx(b"pitm", &[0, 0, 0, 0, 0, 1]);
        let infe1 = bx(b"infe", b"\x02\0\0\0\0\x01\0\0hvc1\0");
        let infe2 = bx(b"infe", b"\x02\0\0\0\0\x02\0\0Exif\0");
        let mut iinf = vec![0, 0, 0, 0, 0, 2];
        iinf.extend(infe1);
        iinf.extend(infe2);
        let iinf = bx(b"iinf", &iinf);
        let ispe = bx(b"ispe", &[0, 0, 0, 0, 0, 0, 2, 128, 0, 0, 1, 224]);
        let irot = bx(b"irot", &[1]);
        let mut ipco = ispe;
        ipco.extend(irot);
        let ipco = bx(b"ipco", &ipco);
        let ipma = bx(b"ipma", &[0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 0x81, 0x02]);
        let mut iprp = ipco;
        iprp.extend(ipma);
        let iprp = bx(b"iprp", &iprp);
        let mut payload = vec![0, 0, 0, 6];
        payload.extend_from_slice(b"Exif\0\0");
        payload.extend_from_slice(exif_tiff);
        // iloc v0: offset_size 4, length_size 4, no base offset; one item with one extent whose
        // offset (patched below) points into the mdat box.
        let mut meta_body = vec![0, 0, 0, 0];
        for part in [&hdlr, &pitm, &iinf, &iprp] {
            meta_body.extend_from_slice(part);
        }
        let mut iloc = vec![0, 0, 0, 0, 0x44, 0x00, 0, 1, 0, 2, 0, 0, 0, 1];
        iloc.extend_from_slice(&0u32.to_be_bytes());
        iloc.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        meta_body.extend(bx(b"iloc", &iloc));
        let mut file = ftyp;
        file.extend(bx(b"meta", &meta_body));
        let data_offset = (file.len() + 8) as u32;
        let at = file.len() - 8;
        file[at..at + 4].copy_from_slice(&data_offset.to_be_bytes());
        file.extend(bx(b"mdat", &payload));
        file
    }

    #[test]
    fn reads_synthetic_heic() {
        // EXIF with Make "Apple" and orientation 6, big-endian.
        let exif = [
            b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 2, 1, 0x0F, 0, 2, 0, 0, 0, 6, 0, 0, 0, 38, 1, 0x12, 0, 3, 0, 0, 0, 1, 0,
            6, 0, 0, 0, 0, 0, 0, b'A', b'p', b'p', b'l', b'e', 0,
        ];
        let file = synthetic_heic(&exif);
        let mut b = Blocks::default();
        heif(&mut std::io::Cursor::new(&file), &mut b).unwrap();
        assert_eq!((b.info.width, b.info.height), (Some(480), Some(640)));
        let e = super::super::exif::parse(b.exif.as_deref().unwrap()).unwrap();
        assert_eq!(e.make.as_deref(), Some("Apple"));
        assert_eq!(e.orientation, Some(6));
    }

    #[test]
    fn hostile_boxes_never_panic() {
        let file = synthetic_heic(&[b'M', b'M', 0, 42, 0, 0, 0, 8]);
        for n in 0..file.len() {
            let mut b = Blocks::default();
            let _ = heif(&mut std::io::Cursor::new(&file[..n]), &mut b);
            let _ = movie(&mut std::io::Cursor::new(&file[..n]), &mut b);
        }
        let mut huge = bx(b"moov", &[]);
        huge[..4].copy_from_slice(&1u32.to_be_bytes());
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        let mut b = Blocks::default();
        assert!(movie(&mut std::io::Cursor::new(&huge), &mut b).is_err());
        assert!(boxes(&[0, 0, 0, 9, b'a', b'b', b'c', b'd']).is_empty());
    }
}
