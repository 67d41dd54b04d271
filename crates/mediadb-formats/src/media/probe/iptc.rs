//! IPTC IIM (the "IPTC-NAA" record block) and the Photoshop image-resource blocks that carry it.
//!
//! No maintained crate reads IIM, so this is a small, bounded parser: every length is checked
//! against the bytes that remain, and a malformed block ends parsing instead of panicking.

/// The descriptive datasets of IIM record 2 that map to EnterMediaDB fields.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Iptc {
    pub object_name: Option<String>,
    pub keywords: Vec<String>,
    pub by_line: Option<String>,
    pub caption: Option<String>,
    pub headline: Option<String>,
    pub copyright: Option<String>,
    pub credit: Option<String>,
    /// `DateCreated` (CCYYMMDD) and `TimeCreated` (HHMMSS±HHMM), raw.
    pub date_created: Option<String>,
    pub time_created: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
}

/// Photoshop image resource ids we use.
pub const IRB_IPTC: u16 = 0x0404;
pub const IRB_ICC: u16 = 0x040F;
pub const IRB_EXIF: u16 = 0x0422;
pub const IRB_XMP: u16 = 0x0424;

/// Walks a Photoshop image-resource section ("8BIM" blocks) and returns `(id, data)` pairs.
pub fn irb_blocks(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    // A resource section holds at most a few hundred blocks; the cap bounds hostile input.
    while out.len() < 4096 && data.len() >= 12 {
        if !matches!(&data[..4], b"8BIM" | b"PHUT" | b"DCSR" | b"AgHg" | b"MeSa") {
            break;
        }
        let id = u16::from_be_bytes([data[4], data[5]]);
        // Pascal name, padded so that length byte + name is even.
        let name_len = data[6] as usize;
        let name_total = (1 + name_len + 1) & !1;
        let size_at = 6 + name_total;
        let Some(size_bytes) = data.get(size_at..size_at + 4) else {
            break;
        };
        let size = u32::from_be_bytes([size_bytes[0], size_bytes[1], size_bytes[2], size_bytes[3]]) as usize;
        let start = size_at + 4;
        let Some(body) = start.checked_add(size).and_then(|end| data.get(start..end)) else {
            break;
        };
        out.push((id, body));
        let next = start + size + (size & 1);
        data = data.get(next..).unwrap_or(&[]);
    }
    out
}

/// Concatenated IPTC IIM data of every IPTC resource in a Photoshop resource section.
pub fn iptc_from_irb(irb: &[u8]) -> Option<Vec<u8>> {
    let mut iim = Vec::new();
    for (id, body) in irb_blocks(irb) {
        if id == IRB_IPTC {
            iim.extend_from_slice(body);
        }
    }
    (!iim.is_empty()).then_some(iim)
}

/// Parses IIM datasets. Unknown datasets are skipped; a truncated dataset ends parsing.
pub fn parse_iim(mut data: &[u8]) -> Iptc {
    let mut iptc = Iptc::default();
    let mut utf8 = false;
    // Each dataset header is 5 bytes, so the loop runs at most len/5 times.
    while data.len() >= 5 {
        if data[0] != 0x1C {
            // Some writers pad the block; anything else is not IIM.
            if data[0] == 0 {
                data = &data[1..];
                continue;
            }
            break;
        }
        let record = data[1];
        let dataset = data[2];
        let len_word = u16::from_be_bytes([data[3], data[4]]);
        let (len, header) = if len_word & 0x8000 != 0 {
            // Extended dataset: the low 15 bits give how many bytes hold the length.
            let n = (len_word & 0x7FFF) as usize;
            if n == 0 || n > 4 || data.len() < 5 + n {
                break;
            }
            let mut len = 0usize;
            for &b in &data[5..5 + n] {
                len = (len << 8) | b as usize;
            }
            (len, 5 + n)
        } else {
            (len_word as usize, 5)
        };
        let Some(value) = header.checked_add(len).and_then(|end| data.get(header..end)) else {
            break;
        };
        data = &data[header + len..];
        match (record, dataset) {
            // CodedCharacterSet "ESC % G" announces UTF-8.
            (1, 90) => utf8 = value == b"\x1b%G",
            (2, _) => {
                let text = decode_text(value, utf8);
                let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
                if text.is_empty() {
                    continue;
                }
                let text = text.to_string();
                match dataset {
                    5 => iptc.object_name.get_or_insert(text),
                    25 => {
                        if !iptc.keywords.contains(&text) && iptc.keywords.len() < 1000 {
                            iptc.keywords.push(text);
                        }
                        continue;
                    }
                    55 => iptc.date_created.get_or_insert(text),
                    60 => iptc.time_created.get_or_insert(text),
                    80 => iptc.by_line.get_or_insert(text),
                    90 => iptc.city.get_or_insert(text),
                    95 => iptc.state.get_or_insert(text),
                    101 => iptc.country.get_or_insert(text),
                    105 => iptc.headline.get_or_insert(text),
                    110 => iptc.credit.get_or_insert(text),
                    116 => iptc.copyright.get_or_insert(text),
                    120 => iptc.caption.get_or_insert(text),
                    _ => continue,
                };
            }
            _ => {}
        }
    }
    iptc
}

/// IIM text is UTF-8 when announced, else (as exiftool assumes) Latin-1 unless it happens to be
/// valid UTF-8, which is what most modern writers produce without saying so.
fn decode_text(value: &[u8], utf8: bool) -> String {
    match std::str::from_utf8(value) {
        Ok(s) => s.to_string(),
        Err(_) if utf8 => String::from_utf8_lossy(value).into_owned(),
        Err(_) => value.iter().map(|&b| b as char).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(record: u8, dataset: u8, value: &[u8]) -> Vec<u8> {
        let mut v = vec![0x1C, record, dataset];
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
        v.extend_from_slice(value);
        v
    }

    fn irb(id: u16, body: &[u8]) -> Vec<u8> {
        let mut v = b"8BIM".to_vec();
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&[0, 0]); // empty Pascal name, padded to even
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        if body.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    #[test]
    fn parses_record_two() {
        let mut iim = dataset(1, 90, b"\x1b%G");
        iim.extend(dataset(2, 0, &[0, 4]));
        iim.extend(dataset(2, 25, b"bird"));
        iim.extend(dataset(2, 25, "caf\u{e9}".as_bytes()));
        iim.extend(dataset(2, 25, b"bird"));
        iim.extend(dataset(2, 80, b"Phil Harvey"));
        iim.extend(dataset(2, 120, b"A witty caption  "));
        iim.extend(dataset(2, 116, b"(c) me"));
        iim.extend(dataset(2, 105, b""));
        let got = parse_iim(&iim);
        assert_eq!(got.keywords, vec!["bird".to_string(), "café".to_string()]);
        assert_eq!(got.by_line.as_deref(), Some("Phil Harvey"));
        assert_eq!(got.caption.as_deref(), Some("A witty caption"));
        assert_eq!(got.copyright.as_deref(), Some("(c) me"));
        assert_eq!(got.headline, None);
    }

    #[test]
    fn latin1_without_charset() {
        let got = parse_iim(&dataset(2, 80, b"Ren\xe9"));
        assert_eq!(got.by_line.as_deref(), Some("René"));
    }

    #[test]
    fn extended_length_dataset() {
        let caption = vec![b'x'; 40000];
        let mut iim = vec![0x1C, 2, 120, 0x80, 0x04];
        iim.extend_from_slice(&(caption.len() as u32).to_be_bytes());
        iim.extend_from_slice(&caption);
        assert_eq!(parse_iim(&iim).caption.map(|c| c.len()), Some(40000));
    }

    #[test]
    fn truncated_and_hostile_input_never_panics() {
        let mut iim = dataset(2, 25, b"ok");
        iim.extend_from_slice(&[0x1C, 2, 120, 0xFF, 0xFF]); // length runs past the end
        assert_eq!(parse_iim(&iim).keywords, vec!["ok".to_string()]);
        assert_eq!(parse_iim(&[0x1C, 2, 120, 0x80, 0x09, 1, 2, 3]), Iptc::default());
        assert_eq!(parse_iim(&[0x1C, 2, 120, 0x80, 0x00]), Iptc::default());
        // every prefix of a valid block parses without panicking
        let full = dataset(2, 120, b"caption");
        for n in 0..full.len() {
            let _ = parse_iim(&full[..n]);
        }
    }

    #[test]
    fn walks_photoshop_resources() {
        let iim = dataset(2, 25, b"kw");
        let mut section = irb(0x03ED, &[1, 2, 3]); // odd-length block gets padded
        section.extend(irb(IRB_IPTC, &iim));
        let blocks = irb_blocks(&section);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0], (0x03ED, &[1u8, 2, 3][..]));
        let got = parse_iim(&iptc_from_irb(&section).unwrap());
        assert_eq!(got.keywords, vec!["kw".to_string()]);
        // a size that overruns the section stops the walk
        let mut bad = irb(IRB_IPTC, &iim);
        bad[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(irb_blocks(&bad).is_empty());
        for n in 0..section.len() {
            let _ = irb_blocks(&section[..n]);
        }
    }
}
