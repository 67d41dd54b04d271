//! In-process metadata extraction: [`probe`] reads a file's technical facts and its EXIF, IPTC
//! and XMP into a [`MediaInfo`], and [`MediaInfo::to_fields`] names them as EnterMediaDB fields.
//!
//! Precedence between sources follows the `externalid` order of EnterMediaDB's field catalog
//! (wire §8): XMP first, then EXIF or IPTC as listed there; keywords are the union of IPTC
//! Keywords and XMP dc:subject. Nothing here runs a process or decodes pixels.

mod bmff;
pub mod exif;
mod images;
pub mod iptc;
mod pdf;
pub mod xmp;

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::{Map, Value};

pub use bmff::codec_name;

use super::sniff::{sniff_bytes, Format, SNIFF_LEN};
use super::MediaError;
use xmp::{NS_DC, NS_EXIF, NS_PHOTOSHOP, NS_TIFF, NS_XMP};

/// What a file says about itself. Every field is optional: absent means "the file does not say".
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MediaInfo {
    /// The sniffed container (`jpg`, `png`, `mp4`, ...), EnterMediaDB's `detectedfileformat`.
    pub format: Option<String>,
    /// Stored pixel size, as exiftool's ImageWidth/ImageHeight (not turned by the orientation).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// EXIF orientation, 1-8.
    pub orientation: Option<u16>,
    /// Colour model: `RGB`, `CMYK`, `Grayscale` or `Lab`.
    pub colorspace: Option<String>,
    pub creation_date: Option<DateTime<Utc>>,
    pub keywords: Vec<String>,
    pub title: Option<String>,
    pub headline: Option<String>,
    pub caption: Option<String>,
    pub creator: Option<String>,
    pub copyright: Option<String>,
    pub credit: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    /// Latitude and longitude in decimal degrees.
    pub gps: Option<(f64, f64)>,
    pub camera_make: Option<String>,
    pub camera_model: Option<String>,
    pub pages: Option<u32>,
    /// Seconds.
    pub duration: Option<f64>,
    pub frame_rate: Option<f64>,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
}

/// Raw blocks found by a container walker, merged into [`MediaInfo`] by [`merge`].
#[derive(Debug, Default)]
pub(crate) struct Blocks {
    pub info: MediaInfo,
    pub exif: Option<Vec<u8>>,
    pub xmp: Option<Vec<u8>>,
    pub iim: Option<Vec<u8>>,
    /// Photoshop image resources (JPEG APP13, PSD, TIFF tag 34377).
    pub irb: Vec<u8>,
    pub icc_space: Option<&'static str>,
    pub png_text: Vec<(String, String)>,
    pub container_date: Option<DateTime<Utc>>,
}

/// Reads the metadata of the file at `path`.
pub fn probe(path: &Path) -> Result<MediaInfo, MediaError> {
    let file = std::fs::File::open(path).map_err(|e| MediaError::io("open", path, e))?;
    probe_reader(&mut BufReader::with_capacity(16 << 10, file))
}

/// Reads the metadata of any seekable byte source (a file, or bytes in memory).
pub fn probe_reader<R: Read + Seek>(r: &mut R) -> Result<MediaInfo, MediaError> {
    let mut head = Vec::with_capacity(SNIFF_LEN);
    r.by_ref()
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .map_err(images::truncated)?;
    let format = sniff_bytes(&head);
    r.seek(SeekFrom::Start(0)).map_err(images::truncated)?;
    let mut b = Blocks::default();
    // Third-party parsers (kamadak-exif, quick-xml, flate2) are fuzzed, but a panic on a hostile
    // upload must still not take a worker down: it becomes a decode error.
    let walked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        walk(format, r, &mut b)?;
        Ok::<_, MediaError>(merge(b))
    }));
    let mut info = match walked {
        Ok(r) => r?,
        Err(_) => return Err(MediaError::Decode("metadata parser failed on this file".into())),
    };
    // QuickTime movies (brand `qt  `, or no ftyp at all) are `mov`, as exiftool names them.
    let quicktime = head.get(4..8) != Some(b"ftyp") || head.get(8..12) == Some(b"qt  ");
    info.format = match format {
        Format::Movie if quicktime => Some("mov".into()),
        _ => format.extension().map(str::to_string),
    };
    Ok(info)
}

fn walk<R: Read + Seek>(format: Format, r: &mut R, b: &mut Blocks) -> Result<(), MediaError> {
    match format {
        Format::Jpeg => images::jpeg(r, b),
        Format::Png => images::png(r, b),
        Format::Gif => images::gif(r, b),
        Format::Webp => images::webp(r, b),
        Format::Psd => images::psd(r, b),
        Format::Bmp => images::bmp(r, b),
        Format::Tiff => tiff(r, b),
        Format::Movie => bmff::movie(r, b),
        Format::Heif => bmff::heif(r, b),
        Format::Pdf => pdf::pdf(r, b),
        Format::Svg => {
            let mut text = Vec::new();
            r.take(MAX_SVG_SCAN).read_to_end(&mut text).map_err(images::truncated)?;
            if let Some(p) = xmp::scan_packet(&text) {
                b.xmp = Some(p.to_vec());
            }
            Ok(())
        }
        Format::Unknown => Err(MediaError::Unsupported(
            "the file's content is not a known image, video or PDF format".into(),
        )),
    }
}

/// How much of an SVG (text) file is searched for an XMP packet.
const MAX_SVG_SCAN: u64 = 16 << 20;

/// TIFF: the file is itself an EXIF structure; IFD0 also carries XMP, IPTC and Photoshop tags.
fn tiff<R: Read + Seek>(r: &mut R, b: &mut Blocks) -> Result<(), MediaError> {
    // IFDs are usually near the start but libtiff may write them at the end; reading up to
    // 64 MiB covers real files without letting a huge TIFF fill memory.
    let mut data = Vec::new();
    r.take(64 << 20).read_to_end(&mut data).map_err(images::truncated)?;
    let e = exif::parse(&data).ok_or_else(|| MediaError::Decode("unreadable TIFF directory".into()))?;
    b.info.width = e.width.filter(|&v| v > 0);
    b.info.height = e.height.filter(|&v| v > 0);
    b.info.colorspace = match (e.photometric, e.samples_per_pixel) {
        (Some(0 | 1), _) => Some("Grayscale".into()),
        (Some(2 | 6), _) => Some("RGB".into()),
        (Some(3), _) => Some("RGB".into()),
        (Some(5), Some(4) | None) => Some("CMYK".into()),
        (Some(8), _) => Some("Lab".into()),
        _ => None,
    };
    b.xmp = e.xmp.clone();
    b.iim = e.iptc.clone();
    if let Some(irb) = &e.photoshop {
        b.irb = irb.clone();
    }
    b.icc_space = e.icc.as_deref().and_then(images::icc_space);
    b.exif = Some(data);
    Ok(())
}

/// First non-empty value.
fn first(values: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    values.into_iter().flatten().find(|v| !v.trim().is_empty())
}

/// Combines container facts with EXIF, IPTC and XMP in EnterMediaDB's precedence.
fn merge(mut b: Blocks) -> MediaInfo {
    let e = b.exif.as_deref().and_then(exif::parse).unwrap_or_default();
    if b.iim.is_none() {
        b.iim = iptc::iptc_from_irb(&b.irb);
    }
    if b.xmp.is_none() || b.exif.is_none() {
        // PSD keeps XMP and EXIF among its image resources.
        for (id, body) in iptc::irb_blocks(&b.irb) {
            match id {
                iptc::IRB_XMP if b.xmp.is_none() => b.xmp = Some(body.to_vec()),
                _ => {}
            }
        }
    }
    let e = if e == exif::Exif::default() {
        iptc::irb_blocks(&b.irb)
            .into_iter()
            .find(|(id, _)| *id == iptc::IRB_EXIF)
            .and_then(|(_, body)| exif::parse(body))
            .unwrap_or(e)
    } else {
        e
    };
    let i = b.iim.as_deref().map(iptc::parse_iim).unwrap_or_default();
    let x = b.xmp.as_deref().map(xmp::parse).unwrap_or_default();
    let xt = |ns: &str, name: &str| x.text(ns, name).map(str::to_string);
    let png = |key: &str| {
        b.png_text
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim().to_string())
    };

    let mut info = b.info;
    info.orientation = e.orientation.or_else(|| {
        xt(NS_TIFF, "Orientation")
            .and_then(|o| o.parse().ok())
            .filter(|o| (1..=8).contains(o))
    });
    if info.colorspace.is_none() {
        info.colorspace = b.icc_space.map(str::to_string);
    }
    info.creation_date = e
        .date_original
        .or_else(|| xt(NS_EXIF, "DateTimeOriginal").and_then(|s| xmp_date(&s)))
        .or(e.date_digitized)
        .or_else(|| xt(NS_XMP, "CreateDate").and_then(|s| xmp_date(&s)))
        .or_else(|| xt(NS_PHOTOSHOP, "DateCreated").and_then(|s| xmp_date(&s)))
        .or_else(|| iptc_date(i.date_created.as_deref()?, i.time_created.as_deref()))
        .or(b.container_date);

    let mut keywords = i.keywords.clone();
    for k in x.values(NS_DC, "subject") {
        // Some writers put a comma-separated list in one value (exiftool splits them too).
        for k in k.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            if !keywords.iter().any(|have| have == k) {
                keywords.push(k.to_string());
            }
        }
    }
    info.keywords = keywords;
    let creators = x.values(NS_DC, "creator");
    info.creator = first([
        (!creators.is_empty()).then(|| creators.join(", ")),
        i.by_line.clone(),
        e.artist.clone(),
        png("Author"),
    ]);
    info.caption = first([
        xt(NS_DC, "description"),
        e.description.clone(),
        i.caption.clone(),
        png("Description"),
    ]);
    info.copyright = first([
        xt(NS_DC, "rights"),
        i.copyright.clone(),
        e.copyright.clone(),
        png("Copyright"),
    ]);
    info.title = first([xt(NS_DC, "title"), i.object_name.clone(), png("Title")]);
    info.headline = first([xt(NS_PHOTOSHOP, "Headline"), i.headline.clone()]);
    info.credit = first([xt(NS_PHOTOSHOP, "Credit"), i.credit.clone()]);
    info.city = first([xt(NS_PHOTOSHOP, "City"), i.city.clone()]);
    info.state = first([xt(NS_PHOTOSHOP, "State"), i.state.clone()]);
    info.country = first([xt(NS_PHOTOSHOP, "Country"), i.country.clone()]);
    info.camera_make = first([e.make.clone(), xt(NS_TIFF, "Make")]);
    info.camera_model = first([e.model.clone(), xt(NS_TIFF, "Model")]);
    info.gps = e.gps.or_else(|| {
        let lat = xmp_gps(&xt(NS_EXIF, "GPSLatitude")?)?;
        let lon = xmp_gps(&xt(NS_EXIF, "GPSLongitude")?)?;
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)).then_some((lat, lon))
    });
    info
}

/// XMP dates: ISO 8601 with optional time, seconds, fraction and zone.
fn xmp_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%M:%S%.f%:z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d"))
        .ok()?;
    Some(Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)))
}

/// IPTC `DateCreated` (CCYYMMDD) with the optional `TimeCreated` (HHMMSS±HHMM).
fn iptc_date(date: &str, time: Option<&str>) -> Option<DateTime<Utc>> {
    let d = NaiveDate::parse_from_str(date.trim(), "%Y%m%d").ok()?;
    let t = time.and_then(|t| {
        let t = t.trim();
        let hms = NaiveTime::parse_from_str(t.get(..6)?, "%H%M%S").ok()?;
        let naive = d.and_time(hms);
        match t.get(6..) {
            Some(z) if z.len() == 5 => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let h: i32 = z.get(1..3)?.parse().ok()?;
                let m: i32 = z.get(3..5)?.parse().ok()?;
                let off = chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60))?;
                off.from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
            }
            _ => Some(Utc.from_utc_datetime(&naive)),
        }
    });
    t.or_else(|| Some(Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))))
}

/// XMP GPS coordinates: `DDD,MM.mmmmK` or `DDD,MM,SSK` with K one of N/S/E/W.
fn xmp_gps(s: &str) -> Option<f64> {
    let s = s.trim();
    let dir = s.chars().last()?;
    let sign = match dir.to_ascii_uppercase() {
        'N' | 'E' => 1.0,
        'S' | 'W' => -1.0,
        _ => return s.parse().ok(),
    };
    let body = &s[..s.len() - 1];
    let parts: Vec<f64> = body.split(',').map(|p| p.trim().parse().ok()).collect::<Option<_>>()?;
    let v = match parts.as_slice() {
        [d] => *d,
        [d, m] => d + m / 60.0,
        [d, m, sec] => d + m / 60.0 + sec / 3600.0,
        _ => return None,
    };
    v.is_finite().then_some(sign * v)
}

/// A number as EnterMediaDB writes it: no exponent, at most `decimals` digits, no trailing zeros.
fn number(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

impl MediaInfo {
    /// EnterMediaDB field id -> value: strings, and an array of strings for `keywords`. Only
    /// what the file says is present; the caller keeps values the uploader set.
    pub fn to_fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                m.insert(k.to_string(), Value::String(v));
            }
        };
        put("detectedfileformat", self.format.clone());
        put("width", self.width.map(|v| v.to_string()));
        put("height", self.height.map(|v| v.to_string()));
        put("imageorientation", self.orientation.map(|v| v.to_string()));
        put("colorspace", self.colorspace.clone());
        put(
            "assetcreationdate",
            self.creation_date
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        );
        put("assettitle", self.title.clone());
        put("headline", self.headline.clone());
        put("longcaption", self.caption.clone());
        put("creator", self.creator.clone());
        put("copyrightnotice", self.copyright.clone());
        put("credit", self.credit.clone());
        put("city", self.city.clone());
        put("state", self.state.clone());
        put("country", self.country.clone());
        put(
            "geo_point",
            self.gps
                .map(|(lat, lon)| format!("{},{}", number(lat, 7), number(lon, 7))),
        );
        put("cameramake", self.camera_make.clone());
        put("cameramodel", self.camera_model.clone());
        put("pages", self.pages.map(|v| v.to_string()));
        put("length", self.duration.map(|v| number(v, 3)));
        put("duration", self.duration.map(|v| number(v, 3)));
        // wire §8: VideoFrameRate -> framerate, rounded.
        put("framerate", self.frame_rate.map(|v| number(v.round(), 0)));
        put("videocodec", self.video_codec.clone());
        put("audiocodec", self.audio_codec.clone());
        if !self.keywords.is_empty() {
            m.insert(
                "keywords".into(),
                Value::Array(self.keywords.iter().cloned().map(Value::String).collect()),
            );
        }
        m
    }
}

#[cfg(test)]
mod tests;
