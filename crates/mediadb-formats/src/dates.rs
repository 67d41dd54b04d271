//! Dates as EnterMediaDB writes and reads them.
//!
//! Stored and rendered as `yyyy-MM-dd'T'HH:mm:ss.SSSXXX` in UTC (`Z`), which is also
//! RFC 3339, so stored values sort and compare as text and need no conversion on output.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Renders a time the way EnterMediaDB does (`2024-05-03T14:22:11.000Z`).
pub fn format_emdb(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub fn now_emdb() -> String {
    format_emdb(Utc::now())
}

/// Reads a date written in any of the forms clients send: RFC 3339, `yyyy-MM-ddTHH:mm:ss`,
/// `yyyy-MM-dd HH:mm:ss`, `yyyy-MM-dd`, `MM/dd/yyyy`, or epoch milliseconds.
pub fn parse_flexible(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y:%m:%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    for fmt in ["%Y-%m-%d", "%m/%d/%Y", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?));
        }
    }
    if s.len() >= 9 && s.bytes().all(|b| b.is_ascii_digit()) {
        let ms: i64 = s.parse().ok()?;
        return Utc.timestamp_millis_opt(ms).single();
    }
    None
}

/// Translates a Java `SimpleDateFormat` pattern (what EnterMediaDB clients send as
/// `dateformat`) into a chrono format string. Unsupported letters are an error.
pub fn java_pattern_to_chrono(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal; '' is a literal quote.
            i += 1;
            if i < chars.len() && chars[i] == '\'' {
                out.push('\'');
                i += 1;
                continue;
            }
            while i < chars.len() && chars[i] != '\'' {
                push_literal(&mut out, chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            push_literal(&mut out, c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let spec = match (c, n) {
            ('y', 2) => "%y",
            ('y', _) => "%Y",
            ('M', 1 | 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', _) => "%d",
            ('H', _) => "%H",
            ('h', _) => "%I",
            ('m', _) => "%M",
            ('s', _) => "%S",
            ('S', _) => "%3f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('Z', _) => "%z",
            ('X', _) => "%:z",
            _ => return Err(format!("unsupported letter '{c}' in dateformat \"{pattern}\"")),
        };
        out.push_str(spec);
        i += n;
    }
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

/// Parses `value` with a Java `SimpleDateFormat` pattern (default `yyyy-MM-dd`), falling
/// back to the flexible forms, so `2024-01-31` works whatever the pattern says.
pub fn parse_with_java_pattern(value: &str, pattern: &str) -> Result<DateTime<Utc>, String> {
    let fmt = java_pattern_to_chrono(pattern)?;
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_str(v, &fmt) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(v, &fmt) {
        return Ok(Utc.from_utc_datetime(&t));
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, &fmt) {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    parse_flexible(v).ok_or_else(|| format!("cannot read date \"{value}\" with dateformat \"{pattern}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_emdb() {
        let t = Utc.with_ymd_and_hms(2024, 5, 3, 14, 22, 11).unwrap();
        assert_eq!(format_emdb(t), "2024-05-03T14:22:11.000Z");
    }

    #[test]
    fn reads_the_forms_clients_send() {
        let want = Utc.with_ymd_and_hms(2024, 5, 3, 0, 0, 0).unwrap();
        for s in [
            "2024-05-03",
            "05/03/2024",
            "2024-05-03T00:00:00",
            "2024-05-03T00:00:00.000Z",
            "2024-05-03T02:00:00+02:00",
        ] {
            assert_eq!(parse_flexible(s), Some(want), "{s}");
        }
        assert_eq!(parse_flexible("1714694400000"), Some(want));
        assert_eq!(parse_flexible("yesterday"), None);
        assert_eq!(parse_flexible(""), None);
    }

    #[test]
    fn java_patterns() {
        assert_eq!(java_pattern_to_chrono("dd/MM/yyyy").unwrap(), "%d/%m/%Y");
        assert_eq!(
            java_pattern_to_chrono("yyyy-MM-dd'T'HH:mm:ss").unwrap(),
            "%Y-%m-%dT%H:%M:%S"
        );
        assert!(java_pattern_to_chrono("yyyy-QQ").is_err());
        let t = parse_with_java_pattern("31/01/2015", "dd/MM/yyyy").unwrap();
        assert_eq!(format_emdb(t), "2015-01-31T00:00:00.000Z");
        assert!(parse_with_java_pattern("31/31/2015", "dd/MM/yyyy").is_err());
    }
}
