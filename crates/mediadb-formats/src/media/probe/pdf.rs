//! PDF: the page count and an XMP packet, by a bounded scan rather than a full PDF parser.
//!
//! The page count is the largest `/Count` of a `/Type /Pages` dictionary (the page tree's root
//! counts every page). PDF 1.5+ may hide those dictionaries in compressed object streams, so
//! `/Type /ObjStm` streams are inflated (bounded) and scanned too.

use std::io::{Read, Seek, SeekFrom};

use super::images::truncated;
use super::Blocks;
use crate::media::sniff::find;
use crate::media::MediaError;

/// PDFs larger than this are scanned in their first and last halves of it only (the page tree
/// root of a large PDF is usually near one end), so memory stays bounded.
const MAX_SCAN: u64 = 64 << 20;
/// Total inflated bytes of object streams scanned (a zip-bomb bound).
const MAX_INFLATED: u64 = 64 << 20;

pub(super) fn pdf<R: Read + Seek>(r: &mut R, b: &mut Blocks) -> Result<(), MediaError> {
    pdf_scan(r, b, MAX_SCAN)
}

fn pdf_scan<R: Read + Seek>(r: &mut R, b: &mut Blocks, max_scan: u64) -> Result<(), MediaError> {
    let len = r.seek(SeekFrom::End(0)).map_err(truncated)?;
    r.seek(SeekFrom::Start(0)).map_err(truncated)?;
    let mut data = Vec::new();
    if len <= max_scan {
        r.read_to_end(&mut data).map_err(truncated)?;
    } else {
        let half = max_scan / 2;
        r.by_ref().take(half).read_to_end(&mut data).map_err(truncated)?;
        r.seek(SeekFrom::End(-(half as i64))).map_err(truncated)?;
        r.read_to_end(&mut data).map_err(truncated)?;
    }
    let mut pages = max_pages_count(&data);
    let mut budget = MAX_INFLATED;
    for stream in object_streams(&data) {
        if budget == 0 {
            break;
        }
        let mut out = Vec::new();
        let read = flate2::read::ZlibDecoder::new(stream)
            .take(budget)
            .read_to_end(&mut out);
        if read.is_err() && out.is_empty() {
            continue;
        }
        budget = budget.saturating_sub(out.len() as u64);
        pages = pages.max(max_pages_count(&out));
    }
    if pages > 0 {
        b.info.pages = Some(pages);
    }
    if let Some(packet) = super::xmp::scan_packet(&data) {
        b.xmp = Some(packet.to_vec());
    }
    Ok(())
}

fn is_delim(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'/' | b'<' | b'>' | b'[' | b']' | b'(' | b')' | b'%')
}

fn skip_ws(d: &[u8], mut i: usize) -> usize {
    while i < d.len() && d[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The largest `/Count n` of any `/Type /Pages` dictionary in `d`.
fn max_pages_count(d: &[u8]) -> u32 {
    let mut best = 0;
    let mut from = 0;
    while let Some(rel) = find(&d[from..], b"/Type") {
        let at = from + rel;
        from = at + 5;
        let v = skip_ws(d, from);
        if !d[v..].starts_with(b"/Pages") || d.get(v + 6).is_some_and(|&c| !is_delim(c)) {
            continue;
        }
        let Some((start, end)) = enclosing_dict(d, at) else {
            continue;
        };
        if let Some(n) = top_level_int(&d[start..end], b"/Count") {
            best = best.max(n);
        }
    }
    best
}

/// The `<<`..`>>` dictionary enclosing position `at` (nested dictionaries respected).
fn enclosing_dict(d: &[u8], at: usize) -> Option<(usize, usize)> {
    // Walk back to the unmatched `<<`, at most 64 KiB.
    let mut depth = 0i32;
    let mut i = at;
    let floor = at.saturating_sub(64 << 10);
    let start = loop {
        if i < floor + 1 {
            return None;
        }
        i -= 1;
        if d[i] == b'>' && i > 0 && d[i - 1] == b'>' {
            depth += 1;
            i -= 1;
        } else if d[i] == b'<' && i > 0 && d[i - 1] == b'<' {
            if depth == 0 {
                break i - 1;
            }
            depth -= 1;
            i -= 1;
        }
    };
    let mut depth = 0i32;
    let mut j = start;
    let ceil = (start + (64 << 10)).min(d.len());
    while j + 1 < ceil {
        if d[j] == b'<' && d[j + 1] == b'<' {
            depth += 1;
            j += 2;
        } else if d[j] == b'>' && d[j + 1] == b'>' {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return Some((start, j));
            }
        } else {
            j += 1;
        }
    }
    None
}

/// An integer value of `key` at nesting level 1 of a dictionary.
fn top_level_int(dict: &[u8], key: &[u8]) -> Option<u32> {
    let mut depth = 0;
    let mut i = 0;
    while i + 1 < dict.len() {
        if dict[i] == b'<' && dict[i + 1] == b'<' {
            depth += 1;
            i += 2;
            continue;
        }
        if dict[i] == b'>' && dict[i + 1] == b'>' {
            depth -= 1;
            i += 2;
            continue;
        }
        if depth == 1 && dict[i..].starts_with(key) && dict.get(i + key.len()).is_some_and(|&c| is_delim(c)) {
            let v = skip_ws(dict, i + key.len());
            let digits: Vec<u8> = dict[v..].iter().copied().take_while(u8::is_ascii_digit).collect();
            // A reference (`/Count 12 0 R`) is not a count.
            let after = skip_ws(dict, v + digits.len());
            if !digits.is_empty() && !dict[after..].starts_with(b"0 R") && digits.len() < 10 {
                return std::str::from_utf8(&digits).ok()?.parse().ok();
            }
        }
        i += 1;
    }
    None
}

/// Bodies of `/Type /ObjStm` streams (compressed object streams).
fn object_streams(d: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = find(&d[from..], b"/ObjStm") {
        let at = from + rel;
        from = at + 7;
        let Some((_, dict_end)) = enclosing_dict(d, at) else {
            continue;
        };
        let s = skip_ws(d, dict_end);
        if !d[s..].starts_with(b"stream") {
            continue;
        }
        let mut body = s + 6;
        if d.get(body) == Some(&b'\r') {
            body += 1;
        }
        if d.get(body) == Some(&b'\n') {
            body += 1;
        }
        let Some(end) = find(&d[body..], b"endstream") else {
            continue;
        };
        out.push(&d[body..body + end]);
        if out.len() >= 10_000 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn counts_page_tree_root() {
        let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
            2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R] /Count 7 >> endobj\n\
            3 0 obj << /Type/Pages/Parent 2 0 R/Count 3/Resources << /Font << /Count 99 >> >> >> endobj\n\
            5 0 obj << /Type /Page /Parent 3 0 R >> endobj\n";
        assert_eq!(max_pages_count(pdf), 7);
        assert_eq!(max_pages_count(b"<< /Type /PagesX /Count 5 >>"), 0);
        assert_eq!(max_pages_count(b"<< /Type /Pages /Count 5 0 R >>"), 0);
    }

    #[test]
    fn finds_counts_in_object_streams() {
        let inner = b"2 0 << /Type /Pages /Kids [] /Count 12 >>";
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(inner).unwrap();
        let z = z.finish().unwrap();
        let mut pdf = b"%PDF-1.5\n9 0 obj << /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode >>\nstream\r\n".to_vec();
        pdf.extend_from_slice(&z);
        pdf.extend_from_slice(b"\nendstream endobj\n%%EOF");
        let mut b = Blocks::default();
        super::pdf(&mut std::io::Cursor::new(&pdf), &mut b).unwrap();
        assert_eq!(b.info.pages, Some(12));
    }

    #[test]
    fn large_files_are_scanned_at_both_ends() {
        let mut pdf = b"%PDF-1.4\n".to_vec();
        pdf.extend(std::iter::repeat_n(b' ', 10_000));
        pdf.extend_from_slice(b"2 0 obj << /Type /Pages /Count 9 >> endobj %%EOF");
        let mut b = Blocks::default();
        pdf_scan(&mut std::io::Cursor::new(&pdf), &mut b, 1000).unwrap();
        assert_eq!(b.info.pages, Some(9));
        // a count in the unscanned middle is not found (and nothing is read there)
        let mut middle = b"%PDF-1.4\n".to_vec();
        middle.extend(std::iter::repeat_n(b' ', 5_000));
        middle.extend_from_slice(b"<< /Type /Pages /Count 9 >>");
        middle.extend(std::iter::repeat_n(b' ', 5_000));
        let mut b = Blocks::default();
        pdf_scan(&mut std::io::Cursor::new(&middle), &mut b, 1000).unwrap();
        assert_eq!(b.info.pages, None);
    }

    #[test]
    fn hostile_scans_terminate() {
        let mut b = Blocks::default();
        let evil = b"<<<<<</Type /Pages /Count 99999999999 >>>>>> /ObjStm stream endstream /Type".repeat(3);
        super::pdf(&mut std::io::Cursor::new(&evil), &mut b).unwrap();
        let _ = max_pages_count(b"/Type");
        let _ = max_pages_count(b"/Type /Pages");
        let _ = enclosing_dict(b"<", 0);
    }
}
