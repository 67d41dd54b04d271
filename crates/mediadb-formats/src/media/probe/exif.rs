//! EXIF (a TIFF structure) read with kamadak-exif into the values EnterMediaDB maps. Also used
//! for whole TIFF files, whose first IFD is the image's own directory.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use exif::{Context, Field, In, Tag, Value};

/// TIFF tags that carry other metadata blocks inside a TIFF file's first IFD.
const TAG_XMP: u16 = 700;
const TAG_IPTC: u16 = 33723;
const TAG_PHOTOSHOP: u16 = 34377;
const TAG_ICC: u16 = 34675;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Exif {
    pub orientation: Option<u16>,
    pub date_original: Option<DateTime<Utc>>,
    pub date_digitized: Option<DateTime<Utc>>,
    pub description: Option<String>,
    pub artist: Option<String>,
    pub copyright: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub gps: Option<(f64, f64)>,
    /// IFD0 ImageWidth/ImageLength (meaningful for TIFF files).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// IFD0 PhotometricInterpretation (TIFF files).
    pub photometric: Option<u16>,
    pub samples_per_pixel: Option<u16>,
    /// Embedded blocks of a TIFF file.
    pub xmp: Option<Vec<u8>>,
    pub iptc: Option<Vec<u8>>,
    pub photoshop: Option<Vec<u8>>,
    pub icc: Option<Vec<u8>>,
}

/// Parses TIFF-structured bytes (an EXIF block without its `Exif\0\0` prefix, or a TIFF file).
pub fn parse(tiff: &[u8]) -> Option<Exif> {
    let tiff = tiff.strip_prefix(b"Exif\0\0").unwrap_or(tiff);
    let mut reader = exif::Reader::new();
    // Keep whatever parses: camera EXIF is often slightly broken (bad offsets in maker notes).
    reader.continue_on_error(true);
    let parsed = match reader.read_raw(tiff.to_vec()) {
        Ok(e) => e,
        Err(exif::Error::PartialResult(p)) => p.into_inner().0,
        Err(_) => return None,
    };
    let little_endian = parsed.little_endian();
    let get = |tag: Tag| parsed.get_field(tag, In::PRIMARY);
    let text = |tag: Tag| get(tag).and_then(ascii);
    let uint = |tag: Tag| get(tag).and_then(|f| f.value.get_uint(0));

    let offset = |tag: Tag| text(tag).and_then(|s| parse_offset(&s));
    let date = |tag: Tag, offset_tag: Tag| text(tag).and_then(|s| exif_date(&s, offset(offset_tag)));
    let raw = |number: u16| get(Tag(Context::Tiff, number)).and_then(|f| raw_bytes(&f.value, little_endian));
    Some(Exif {
        orientation: uint(Tag::Orientation).filter(|o| (1..=8).contains(o)).map(|o| o as u16),
        date_original: date(Tag::DateTimeOriginal, Tag::OffsetTimeOriginal),
        date_digitized: date(Tag::DateTimeDigitized, Tag::OffsetTimeDigitized),
        description: text(Tag::ImageDescription),
        artist: text(Tag::Artist),
        copyright: text(Tag::Copyright),
        make: text(Tag::Make),
        model: text(Tag::Model),
        gps: gps(&parsed),
        width: uint(Tag::ImageWidth),
        height: uint(Tag::ImageLength),
        photometric: uint(Tag::PhotometricInterpretation).map(|v| v as u16),
        samples_per_pixel: uint(Tag::SamplesPerPixel).map(|v| v as u16),
        xmp: raw(TAG_XMP),
        iptc: raw(TAG_IPTC),
        photoshop: raw(TAG_PHOTOSHOP),
        icc: raw(TAG_ICC),
    })
}

/// Only the orientation (1-8) of an EXIF block; what the renderer needs.
pub fn orientation(tiff: &[u8]) -> Option<u16> {
    parse(tiff).and_then(|e| e.orientation)
}

/// First ASCII value, trimmed; blank strings (cameras pad with spaces or NULs) are absent.
fn ascii(f: &Field) -> Option<String> {
    let Value::Ascii(ref parts) = f.value else {
        return None;
    };
    let bytes = parts.iter().find(|p| !p.is_empty())?;
    let s = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    };
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

/// The bytes of a value stored as BYTE, UNDEFINED or (IPTC in TIFF, by old convention) LONG.
fn raw_bytes(v: &Value, little_endian: bool) -> Option<Vec<u8>> {
    let out = match v {
        Value::Byte(b) => b.clone(),
        Value::Undefined(b, _) => b.clone(),
        Value::Ascii(parts) => parts.concat(),
        Value::Long(longs) => longs
            .iter()
            .flat_map(|l| {
                if little_endian {
                    l.to_le_bytes()
                } else {
                    l.to_be_bytes()
                }
            })
            .collect(),
        _ => return None,
    };
    (!out.is_empty()).then_some(out)
}

pub fn parse_offset(s: &str) -> Option<FixedOffset> {
    let s = s.trim();
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let secs = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
    FixedOffset::east_opt(sign * secs)
}

/// `YYYY:MM:DD HH:MM:SS` (EXIF) in the given offset, or read as UTC when the file does not say
/// (most cameras record local time without a zone).
pub fn exif_date(s: &str, offset: Option<FixedOffset>) -> Option<DateTime<Utc>> {
    let s = s.trim().trim_end_matches('\0');
    let naive = ["%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())?;
    match offset {
        Some(o) => o.from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc)),
        None => Some(Utc.from_utc_datetime(&naive)),
    }
}

fn gps(e: &exif::Exif) -> Option<(f64, f64)> {
    let coord = |tag: Tag, ref_tag: Tag, negative: u8| -> Option<f64> {
        let f = e.get_field(tag, In::PRIMARY)?;
        let Value::Rational(ref r) = f.value else {
            return None;
        };
        let part = |i: usize| r.get(i).filter(|v| v.denom != 0).map(|v| v.num as f64 / v.denom as f64);
        let v = part(0)? + part(1).unwrap_or(0.0) / 60.0 + part(2).unwrap_or(0.0) / 3600.0;
        let sign = match e.get_field(ref_tag, In::PRIMARY).map(|f| &f.value) {
            Some(Value::Ascii(parts)) if parts.first().and_then(|p| p.first()) == Some(&negative) => -1.0,
            _ => 1.0,
        };
        Some(sign * v)
    };
    let lat = coord(Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S')?;
    let lon = coord(Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W')?;
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)).then_some((lat, lon))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_with_and_without_offset() {
        let t = exif_date("2001:05:19 18:36:41", None).unwrap();
        assert_eq!(t.to_rfc3339(), "2001-05-19T18:36:41+00:00");
        let t = exif_date("2023:10:06 22:53:51", parse_offset("+02:00")).unwrap();
        assert_eq!(t.to_rfc3339(), "2023-10-06T20:53:51+00:00");
        assert_eq!(exif_date("0000:00:00 00:00:00", None), None);
        assert_eq!(exif_date("    :  :     :  :  ", None), None);
    }

    #[test]
    fn garbage_is_not_exif() {
        assert_eq!(parse(b""), None);
        let bad_offset = parse(b"II*\0\xff\xff\xff\xff");
        assert!(bad_offset.is_none_or(|e| e == Exif::default()));
        let mut hostile = b"MM\0*\0\0\0\x08\xff\xff".to_vec();
        hostile.extend_from_slice(&[0xAB; 64]);
        let _ = parse(&hostile);
    }
}
