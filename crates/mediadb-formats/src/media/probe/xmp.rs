//! XMP packets: RDF/XML read with quick-xml's namespace-aware reader into (namespace, property)
//! -> values, then the handful of properties EnterMediaDB maps to asset fields.
//!
//! Prefixes are resolved to namespace URIs, so `dc:` spelt `dcterms:` or any other prefix still
//! works. Simple values, attributes of `rdf:Description`, and `rdf:Bag`/`rdf:Seq`/`rdf:Alt` lists
//! (`xml:lang="x-default"` preferred) are read; deeper structures are flattened.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

pub const NS_RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";
pub const NS_DC: &str = "http://purl.org/dc/elements/1.1/";
pub const NS_XMP: &str = "http://ns.adobe.com/xap/1.0/";
pub const NS_EXIF: &str = "http://ns.adobe.com/exif/1.0/";
pub const NS_TIFF: &str = "http://ns.adobe.com/tiff/1.0/";
pub const NS_PHOTOSHOP: &str = "http://ns.adobe.com/photoshop/1.0/";

/// Packets above this size are not parsed (the XMP of a real file is a few KiB to a few 100 KiB).
pub const MAX_PACKET: usize = 4 << 20;
const MAX_DEPTH: usize = 64;
const MAX_VALUES: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
struct Value {
    lang: Option<String>,
    text: String,
}

/// Every property of one packet.
#[derive(Debug, Default, Clone)]
pub struct Xmp {
    props: Vec<(String, String, Vec<Value>)>,
}

impl Xmp {
    /// All values of a property, in document order.
    pub fn values(&self, ns: &str, name: &str) -> Vec<&str> {
        self.props
            .iter()
            .filter(|(n, l, _)| n == ns && l == name)
            .flat_map(|(_, _, v)| v.iter().map(|v| v.text.as_str()))
            .collect()
    }

    /// One text value: the `x-default` alternative if there is one, else the first value.
    pub fn text(&self, ns: &str, name: &str) -> Option<&str> {
        let all: Vec<&Value> = self
            .props
            .iter()
            .filter(|(n, l, _)| n == ns && l == name)
            .flat_map(|(_, _, v)| v.iter())
            .collect();
        all.iter()
            .find(|v| v.lang.as_deref() == Some("x-default"))
            .or_else(|| all.first())
            .map(|v| v.text.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.props.is_empty()
    }
}

/// Turns the packet bytes into text: XMP may be UTF-8, UTF-16 or (rarely) UTF-32, with or
/// without a byte-order mark (exiftool's sample `XMP.jpg` is UTF-16BE).
pub fn decode_packet(bytes: &[u8]) -> String {
    let utf16 = |be: bool, b: &[u8]| {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| {
                if be {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8_lossy(rest).into_owned(),
        [0xFE, 0xFF, rest @ ..] => utf16(true, rest),
        [0xFF, 0xFE, rest @ ..] => utf16(false, rest),
        [0, b'<', ..] => utf16(true, bytes),
        [b'<', 0, ..] => utf16(false, bytes),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

struct Frame {
    is_rdf_description: bool,
    is_li: bool,
    /// Index in `props` of the property this element belongs to.
    prop: Option<usize>,
    lang: Option<String>,
}

/// Parses a packet. Malformed XML ends parsing; what was read until then is kept.
pub fn parse(bytes: &[u8]) -> Xmp {
    let mut xmp = Xmp::default();
    if bytes.len() > MAX_PACKET {
        return xmp;
    }
    let text = decode_packet(bytes);
    let mut reader = NsReader::from_str(&text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut buf = String::new();
    let mut count = 0usize;

    // A syntax error ends the loop; what was read until then is kept.
    while let Ok((ns, event)) = reader.read_resolved_event() {
        let ns = match ns {
            ResolveResult::Bound(n) => Some(n.as_ref().to_string()),
            _ => None,
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name().as_ref().to_string();
                let is_rdf = ns.as_deref() == Some(NS_RDF);
                let parent_is_node = stack.last().is_some_and(|f| f.is_rdf_description);
                let mut frame = Frame {
                    is_rdf_description: is_rdf && local == "Description",
                    is_li: is_rdf && local == "li",
                    prop: stack.last().and_then(|f| f.prop),
                    lang: stack.last().and_then(|f| f.lang.clone()),
                };
                if !is_rdf && parent_is_node {
                    // A property element: a child of rdf:Description.
                    if let Some(ns) = ns.clone() {
                        xmp.props.push((ns, local.clone(), Vec::new()));
                        frame.prop = Some(xmp.props.len() - 1);
                    }
                }
                for attr in e.attributes().with_checks(false).flatten() {
                    let (ans, alocal) = reader.resolver().resolve_attribute(attr.key);
                    let ans = match ans {
                        ResolveResult::Bound(n) => n.as_ref().to_string(),
                        _ => continue,
                    };
                    let alocal = alocal.as_ref().to_string();
                    let Ok(value) = attr.normalized_value(XmlVersion::Implicit1_0) else {
                        continue;
                    };
                    if ans == NS_XML && alocal == "lang" {
                        frame.lang = Some(value.into_owned());
                    } else if ans == NS_RDF && alocal == "parseType" && value == "Resource" {
                        // The property element itself holds properties.
                        frame.is_rdf_description = true;
                    } else if frame.is_rdf_description && ans != NS_RDF && ans != NS_XML && count < MAX_VALUES {
                        // Shorthand: `<rdf:Description tiff:Make="Canon">`.
                        count += 1;
                        let text = value.trim().to_string();
                        if !text.is_empty() {
                            xmp.props.push((ans, alocal, vec![Value { lang: None, text }]));
                        }
                    }
                }
                if !empty {
                    if stack.len() >= MAX_DEPTH {
                        break;
                    }
                    stack.push(frame);
                    buf.clear();
                }
            }
            Event::Text(t) => buf.push_str(&t.xml10_content()),
            Event::CData(t) => buf.push_str(&t.into_inner()),
            Event::GeneralRef(r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    buf.push(c);
                } else {
                    let name: &str = r.as_ref();
                    if let Some(s) = quick_xml::escape::resolve_predefined_entity(name) {
                        buf.push_str(s);
                    }
                }
            }
            Event::End(_) => {
                let Some(frame) = stack.pop() else { break };
                let text = buf.trim();
                // A value is the text of an rdf:li or the direct text of a property element.
                let holds_value = frame.is_li || !frame.is_rdf_description;
                if holds_value && !text.is_empty() && count < MAX_VALUES {
                    if let Some(p) = frame.prop {
                        count += 1;
                        xmp.props[p].2.push(Value {
                            lang: frame.lang.clone(),
                            text: text.to_string(),
                        });
                    }
                }
                buf.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    xmp
}

/// Finds an XMP packet inside arbitrary bytes (exiftool's "scan for XMP"): from `<x:xmpmeta`
/// (or `<rdf:RDF`) to its closing tag. Used for PDF, SVG and other text-bearing containers.
pub fn scan_packet(hay: &[u8]) -> Option<&[u8]> {
    let find = super::super::sniff::find;
    for (open, close) in [
        (&b"<x:xmpmeta"[..], &b"</x:xmpmeta>"[..]),
        (b"<x:xapmeta", b"</x:xapmeta>"),
        (b"<rdf:RDF", b"</rdf:RDF>"),
    ] {
        if let Some(start) = find(hay, open) {
            let rest = &hay[start..];
            if let Some(end) = find(rest, close) {
                return Some(&rest[..end + close.len()]);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xpacket begin='' id='W5M0MpCehiHzreSzNTczkc9d'?>
<x:xmpmeta xmlns:x='adobe:ns:meta/'>
<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>
 <rdf:Description rdf:about='' xmlns:d='http://purl.org/dc/elements/1.1/'
   xmlns:tiff='http://ns.adobe.com/tiff/1.0/' tiff:Make='Canon'>
  <d:creator><rdf:Seq><rdf:li>Irving Bird</rdf:li><rdf:li>Mary Lambert</rdf:li></rdf:Seq></d:creator>
  <d:description><rdf:Alt>
    <rdf:li xml:lang="fr">Une l&#233;gende</rdf:li>
    <rdf:li xml:lang="x-default">A caption &amp; more</rdf:li>
  </rdf:Alt></d:description>
  <d:subject><rdf:Bag><rdf:li>one</rdf:li><rdf:li><![CDATA[two]]></rdf:li></rdf:Bag></d:subject>
  <tiff:Model>EOS</tiff:Model>
 </rdf:Description>
</rdf:RDF></x:xmpmeta>"#;

    #[test]
    fn reads_lists_alternatives_and_attributes() {
        let x = parse(SAMPLE.as_bytes());
        assert_eq!(x.values(NS_DC, "creator"), vec!["Irving Bird", "Mary Lambert"]);
        assert_eq!(x.text(NS_DC, "description"), Some("A caption & more"));
        assert_eq!(x.values(NS_DC, "description")[0], "Une légende");
        assert_eq!(x.values(NS_DC, "subject"), vec!["one", "two"]);
        assert_eq!(x.text(NS_TIFF, "Make"), Some("Canon"));
        assert_eq!(x.text(NS_TIFF, "Model"), Some("EOS"));
        assert_eq!(x.text(NS_DC, "title"), None);
    }

    #[test]
    fn decodes_utf16_packets() {
        let utf16be: Vec<u8> = SAMPLE.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        let x = parse(&utf16be);
        assert_eq!(x.values(NS_DC, "subject"), vec!["one", "two"]);
        let mut utf16le = vec![0xFF, 0xFE];
        utf16le.extend(SAMPLE.encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert_eq!(parse(&utf16le).text(NS_TIFF, "Model"), Some("EOS"));
    }

    #[test]
    fn broken_xml_keeps_what_was_read() {
        let cut = &SAMPLE[..SAMPLE.find("<d:subject>").unwrap() + 20];
        let x = parse(cut.as_bytes());
        assert_eq!(x.values(NS_DC, "creator").len(), 2);
        for n in (0..SAMPLE.len()).step_by(7) {
            let _ = parse(&SAMPLE.as_bytes()[..n]);
        }
        let deep = "<a>".repeat(10_000);
        assert!(parse(deep.as_bytes()).is_empty());
    }

    #[test]
    fn scans_for_packets() {
        let mut hay = b"%PDF-1.4 junk ".to_vec();
        hay.extend_from_slice(SAMPLE.as_bytes());
        hay.extend_from_slice(b" more junk");
        let p = scan_packet(&hay).unwrap();
        assert!(p.starts_with(b"<x:xmpmeta") && p.ends_with(b"</x:xmpmeta>"));
        assert_eq!(scan_packet(b"no packet here"), None);
    }
}
