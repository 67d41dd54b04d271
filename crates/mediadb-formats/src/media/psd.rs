//! The composite (flattened) image a Photoshop file (PSD, or PSB for large documents)
//! carries after its layers: what renditions are made from. Layers are never rendered:
//! every Photoshop file written with "maximize compatibility" (the default) has the
//! composite, and one without it is refused rather than drawn wrongly.
//!
//! Hostile input: the size is checked against the pixel limit before any buffer exists,
//! every length is checked against what is left of it, and a row that does not unpack to
//! exactly its size is an error.

use std::io::{Read, Seek, SeekFrom};

use super::MediaError;

/// The colour of a decoded composite, 8 bits a sample, interleaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsdColor {
    /// 1 sample a pixel, 0 = black (bitmap, grayscale and duotone documents).
    Gray,
    /// 3 samples a pixel (RGB documents, and indexed ones through their palette).
    Rgb,
    /// 4 samples a pixel, 0 = no ink (Photoshop stores them the other way round).
    Cmyk,
}

impl PsdColor {
    pub fn samples(self) -> usize {
        match self {
            PsdColor::Gray => 1,
            PsdColor::Rgb => 3,
            PsdColor::Cmyk => 4,
        }
    }
}

/// A Photoshop file's composite image.
#[derive(Debug)]
pub struct Composite {
    pub width: u32,
    pub height: u32,
    pub color: PsdColor,
    /// `width * height * color.samples()` bytes, row by row.
    pub pixels: Vec<u8>,
    /// The document's ICC profile (image resource 1039), if it has one.
    pub icc: Option<Vec<u8>>,
}

/// Image resource 1039: the ICC profile.
const RESOURCE_ICC: u16 = 0x040F;

fn truncated(e: std::io::Error) -> MediaError {
    MediaError::Decode(format!("Photoshop file is truncated or unreadable: {e}"))
}

fn bad(what: &str) -> MediaError {
    MediaError::Decode(format!("Photoshop file: {what}"))
}

fn read_array<const N: usize, R: Read>(r: &mut R) -> Result<[u8; N], MediaError> {
    let mut b = [0u8; N];
    r.read_exact(&mut b).map_err(truncated)?;
    Ok(b)
}

fn read_u16<R: Read>(r: &mut R) -> Result<u16, MediaError> {
    Ok(u16::from_be_bytes(read_array(r)?))
}

fn read_u32<R: Read>(r: &mut R) -> Result<u32, MediaError> {
    Ok(u32::from_be_bytes(read_array(r)?))
}

fn read_u64<R: Read>(r: &mut R) -> Result<u64, MediaError> {
    Ok(u64::from_be_bytes(read_array(r)?))
}

/// Reads `len` bytes, refusing a length beyond the end of the stream (checked before the
/// buffer is allocated).
fn read_vec<R: Read + Seek>(r: &mut R, len: u64, end: u64) -> Result<Vec<u8>, MediaError> {
    let at = r.stream_position().map_err(truncated)?;
    if at.saturating_add(len) > end {
        return Err(bad("a section runs past the end of the file"));
    }
    let mut v = vec![0u8; len as usize];
    r.read_exact(&mut v).map_err(truncated)?;
    Ok(v)
}

fn skip<R: Read + Seek>(r: &mut R, len: u64, end: u64) -> Result<(), MediaError> {
    let at = r.stream_position().map_err(truncated)?;
    let to = at.checked_add(len).filter(|&to| to <= end);
    let to = to.ok_or_else(|| bad("a section runs past the end of the file"))?;
    r.seek(SeekFrom::Start(to)).map_err(truncated)?;
    Ok(())
}

/// The ICC profile among the image resources, if any.
fn icc_of(resources: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0usize;
    while resources.len().saturating_sub(at) >= 12 {
        if &resources[at..at + 4] != b"8BIM" {
            return None;
        }
        let id = u16::from_be_bytes([resources[at + 4], resources[at + 5]]);
        // A Pascal string, padded to an even size with its length byte.
        let name = 1 + usize::from(resources[at + 6]);
        at += 6 + name + name % 2;
        let size_at = resources.get(at..at + 4)?;
        let size = u32::from_be_bytes(size_at.try_into().ok()?) as usize;
        at += 4;
        let data = resources.get(at..at.checked_add(size)?)?;
        if id == RESOURCE_ICC {
            return Some(data.to_vec());
        }
        at += size + size % 2;
    }
    None
}

/// Unpacks one PackBits row into `out`, which it must fill exactly.
fn unpack_bits(packed: &[u8], out: &mut [u8]) -> Result<(), MediaError> {
    let (mut i, mut o) = (0usize, 0usize);
    while i < packed.len() && o < out.len() {
        let n = packed[i] as i8;
        i += 1;
        if n >= 0 {
            let len = n as usize + 1;
            let src = packed
                .get(i..i + len)
                .ok_or_else(|| bad("a compressed row is cut short"))?;
            let dst = out
                .get_mut(o..o + len)
                .ok_or_else(|| bad("a compressed row is too long"))?;
            dst.copy_from_slice(src);
            i += len;
            o += len;
        } else if n != -128 {
            let len = 1 - n as isize;
            let len = len as usize;
            let v = *packed.get(i).ok_or_else(|| bad("a compressed row is cut short"))?;
            let dst = out
                .get_mut(o..o + len)
                .ok_or_else(|| bad("a compressed row is too long"))?;
            dst.fill(v);
            i += 1;
            o += len;
        }
    }
    if o != out.len() {
        return Err(bad("a compressed row is shorter than the image"));
    }
    Ok(())
}

/// Decodes the composite image of the Photoshop file in `r` (from its first byte),
/// refusing one of more than `max_pixels` pixels before reading its pixels.
pub fn decode_composite<R: Read + Seek>(r: &mut R, max_pixels: u64) -> Result<Composite, MediaError> {
    let end = r.seek(SeekFrom::End(0)).map_err(truncated)?;
    r.seek(SeekFrom::Start(0)).map_err(truncated)?;
    let head: [u8; 26] = read_array(r)?;
    if &head[..4] != b"8BPS" {
        return Err(bad("no 8BPS signature"));
    }
    let large = match u16::from_be_bytes([head[4], head[5]]) {
        1 => false,
        2 => true,
        v => return Err(bad(&format!("unknown version {v}"))),
    };
    let channels = usize::from(u16::from_be_bytes([head[12], head[13]]));
    let height = u32::from_be_bytes([head[14], head[15], head[16], head[17]]);
    let width = u32::from_be_bytes([head[18], head[19], head[20], head[21]]);
    let depth = u16::from_be_bytes([head[22], head[23]]);
    let mode = u16::from_be_bytes([head[24], head[25]]);
    if width == 0 || height == 0 || channels == 0 {
        return Err(bad("the image has no pixels"));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(MediaError::TooManyPixels {
            width: width.into(),
            height: height.into(),
            limit: max_pixels,
        });
    }
    let (color, used) = match mode {
        0 => (PsdColor::Gray, 1),
        1 | 8 => (PsdColor::Gray, 1),
        2 => (PsdColor::Rgb, 1),
        3 => (PsdColor::Rgb, 3),
        4 => (PsdColor::Cmyk, 4),
        7 => return Err(MediaError::Unsupported("multichannel Photoshop documents".into())),
        9 => return Err(MediaError::Unsupported("Lab Photoshop documents".into())),
        m => return Err(bad(&format!("unknown colour mode {m}"))),
    };
    if channels < used {
        return Err(bad("fewer channels than the colour mode needs"));
    }
    match (mode, depth) {
        (0, 1) | (2, 8) => {}
        (1 | 3 | 4 | 8, 8 | 16) => {}
        (_, 32) => return Err(MediaError::Unsupported("32-bit Photoshop documents".into())),
        (m, d) => return Err(bad(&format!("a depth of {d} bits in colour mode {m}"))),
    }
    let palette_len = u64::from(read_u32(r)?);
    let palette = if mode == 2 {
        let p = read_vec(r, palette_len, end)?;
        if p.len() < 768 {
            return Err(bad("an indexed document without its 256-colour table"));
        }
        p
    } else {
        skip(r, palette_len, end)?;
        Vec::new()
    };
    let resources_len = u64::from(read_u32(r)?);
    let icc = icc_of(&read_vec(r, resources_len, end)?);
    let layers_len = if large { read_u64(r)? } else { u64::from(read_u32(r)?) };
    skip(r, layers_len, end)?;

    let compression = read_u16(r)?;
    let row_bytes = (width as usize * usize::from(depth)).div_ceil(8);
    let rows = height as usize;
    // One plane a used channel, at the document's depth.
    let mut planes = vec![0u8; row_bytes * rows * used];
    match compression {
        0 => {
            let at = r.stream_position().map_err(truncated)?;
            if at.saturating_add(planes.len() as u64) > end {
                return Err(bad("the image data is cut short"));
            }
            r.read_exact(&mut planes).map_err(truncated)?;
        }
        1 => {
            // The packed size of every row of every channel, then the rows.
            let count_size: u64 = if large { 4 } else { 2 };
            let counts_len = count_size * (channels * rows) as u64;
            let counts = read_vec(r, counts_len, end)?;
            let count = |i: usize| -> usize {
                if large {
                    u32::from_be_bytes(counts[i * 4..i * 4 + 4].try_into().expect("4 bytes")) as usize
                } else {
                    usize::from(u16::from_be_bytes([counts[i * 2], counts[i * 2 + 1]]))
                }
            };
            // No valid row packs to more than this (a header byte per 128 literal bytes).
            let max_packed = row_bytes + row_bytes.div_ceil(128) + 1;
            let mut packed = Vec::with_capacity(max_packed);
            for (i, row) in planes.chunks_exact_mut(row_bytes).enumerate() {
                let n = count(i);
                if n > max_packed {
                    return Err(bad("a compressed row is longer than any row can be"));
                }
                packed.resize(n, 0);
                r.read_exact(&mut packed).map_err(truncated)?;
                unpack_bits(&packed, row)?;
            }
        }
        2 | 3 => {
            return Err(MediaError::Unsupported(
                "Photoshop composites compressed with ZIP".into(),
            ))
        }
        c => return Err(bad(&format!("unknown compression {c}"))),
    }

    let width_px = width as usize;
    let plane_len = row_bytes * rows;
    let mut pixels = Vec::with_capacity(width_px * rows * color.samples());
    for y in 0..rows {
        let row = |plane: usize| &planes[plane * plane_len + y * row_bytes..][..row_bytes];
        match depth {
            // Bitmap: a set bit is black.
            1 => pixels.extend((0..width_px).map(|x| if row(0)[x / 8] & (0x80 >> (x % 8)) != 0 { 0 } else { 255 })),
            _ if mode == 2 => {
                for &i in row(0) {
                    let i = usize::from(i);
                    pixels.extend_from_slice(&[palette[i], palette[256 + i], palette[512 + i]]);
                }
            }
            _ => {
                // 16-bit samples are big-endian: their high byte is the 8-bit value.
                let step = usize::from(depth / 8);
                let planes: Vec<&[u8]> = (0..used).map(row).collect();
                let invert = if color == PsdColor::Cmyk { 255 } else { 0 };
                for x in 0..width_px {
                    for p in &planes {
                        pixels.push(invert ^ p[x * step]);
                    }
                }
            }
        }
    }
    Ok(Composite {
        width,
        height,
        color,
        pixels,
        icc,
    })
}

#[cfg(test)]
mod tests;
