//! Lenient JSON: what EnterMediaDB clients send, read the way a person means it.
//!
//! The EnterMediaDB documentation prints bodies such as `{"assetid": "101",}`; its own
//! reader accepts them. We accept trailing commas and `//` or `/* */` comments, and
//! nothing else: a body that is still not JSON is an error, never silently ignored.

use serde_json::Value;

/// Parses `input` as JSON after removing comments and trailing commas outside strings.
pub fn parse(input: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(input).map_err(|e| format!("body is not UTF-8 ({e})"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let cleaned = clean(text);
    serde_json::from_str(&cleaned).map_err(|e| format!("body is not valid JSON: {e}"))
}

/// Blanks out comments and trailing commas, keeping every other byte (and so the line
/// and column numbers of serde's error messages) where it was.
fn clean(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut in_string = false;
    // Index in `out` of a comma that may turn out to be trailing.
    let mut pending_comma: Option<usize> = None;
    // The last byte outside whitespace and comments: a comma after `{`, `[`, `,` or
    // `:` is not a trailing comma but an error, left for serde to report.
    let mut last_sig = b' ';
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            if b == b'\\' && i + 1 < bytes.len() {
                out.push(bytes[i + 1]);
                i += 2;
                continue;
            }
            if b == b'"' {
                in_string = false;
                last_sig = b'"';
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                pending_comma = None;
                out.push(b);
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                out.extend_from_slice(b"  ");
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    out.push(if bytes[i] == b'\n' { b'\n' } else { b' ' });
                    i += 1;
                }
                if i < bytes.len() {
                    out.extend_from_slice(b"  ");
                    i += 2;
                }
            }
            b',' => {
                pending_comma = (!matches!(last_sig, b'{' | b'[' | b',' | b':')).then_some(out.len());
                last_sig = b;
                out.push(b);
                i += 1;
            }
            b'}' | b']' => {
                if let Some(at) = pending_comma.take() {
                    out[at] = b' ';
                }
                last_sig = b;
                out.push(b);
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {
                out.push(b);
                i += 1;
            }
            _ => {
                pending_comma = None;
                last_sig = b;
                out.push(b);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were replaced by ASCII bytes, so this stays valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn the_documented_delete_body() {
        assert_eq!(parse(br#"{"assetid": "101",}"#).unwrap(), json!({"assetid":"101"}));
    }

    #[test]
    fn comments_and_nested_trailing_commas() {
        let v = parse(b"{ // who\n \"a\": [1, 2,], /* x, } */ \"b\": {\"c\": \"//not a comment,}\",},\n}").unwrap();
        assert_eq!(v, json!({"a":[1,2],"b":{"c":"//not a comment,}"}}));
        assert_eq!(
            parse("\u{feff}{\"a\":\"\\\"}\",}".as_bytes()).unwrap(),
            json!({"a":"\"}"})
        );
    }

    #[test]
    fn still_refuses_what_is_not_json() {
        for bad in [
            &b"{\"assetid\": 101"[..],
            b"{,}",
            b"[1,,2]",
            b"{'a':1}",
            b"assetid=101",
            b"",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}") {
            let _ = parse(s.as_bytes());
        }

        #[test]
        fn accepts_all_strict_json(v in arb_json()) {
            let text = serde_json::to_string(&v).unwrap();
            prop_assert_eq!(parse(text.as_bytes()).unwrap(), v);
        }

        #[test]
        fn trailing_commas_are_harmless(v in arb_json()) {
            let text = serde_json::to_string_pretty(&v).unwrap();
            let with_commas = text.replace("\n}", ",\n}").replace("\n]", ",\n]");
            prop_assert_eq!(parse(with_commas.as_bytes()).unwrap(), v);
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[^\\x00]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z,/*]{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
