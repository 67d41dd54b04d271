//! Evaluating a [`Query`] over records held in memory: the small tables (users, groups,
//! the endpoint catalog) are searched with the same language and the same semantics
//! as the SQL the stores compile.

use super::fields::FieldKind;
use super::query::{normalize_words, Cond, Query, SearchRequest, TextMode};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// The text values of a field: strings, numbers, and the `id`s of objects and arrays.
fn values_of(record: &Map<String, Value>, field: &str) -> Vec<String> {
    fn push(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Bool(b) => out.push(b.to_string()),
            Value::Array(a) => a.iter().for_each(|x| push(x, out)),
            Value::Object(o) => match o.get("id") {
                Some(id) => push(id, out),
                None => o.values().for_each(|x| push(x, out)),
            },
            Value::Null => {}
        }
    }
    let mut out = Vec::new();
    if field == super::fields::DESCRIPTION {
        for (k, v) in record {
            if k != "id" {
                push(v, &mut out);
            }
        }
        return vec![out.join(" ")];
    }
    if let Some(v) = record.get(field) {
        push(v, &mut out);
    }
    out
}

fn wildcard(pattern: &str, text: &str) -> bool {
    // `*` matches any run; everything else literally.
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(p) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(idx) => rest = &rest[idx + p.len()..],
                None => return false,
            }
        }
    }
    true
}

fn text_matches(kind: FieldKind, mode: TextMode, value: &str, candidate: &str) -> bool {
    if matches!(kind, FieldKind::Text | FieldKind::MultiLang) {
        let hay = normalize_words(candidate);
        let needle = normalize_words(value);
        let needle = needle.trim();
        return match mode {
            TextMode::Matches => hay.contains(&format!(" {needle} ")),
            TextMode::Exact => hay.trim() == needle,
            TextMode::StartsWith => hay.contains(&format!(" {needle}")),
            TextMode::Contains => hay.contains(needle),
        };
    }
    let (v, c) = (value.to_lowercase(), candidate.to_lowercase());
    match mode {
        TextMode::Matches | TextMode::Exact => wildcard(&v, &c),
        TextMode::StartsWith => c.starts_with(&v),
        TextMode::Contains => c.contains(&v),
    }
}

pub fn matches(q: &Query, record: &Map<String, Value>, kind: &dyn Fn(&str) -> FieldKind) -> bool {
    match q {
        Query::All => true,
        Query::And(p) => p.iter().all(|x| matches(x, record, kind)),
        Query::Or(p) => p.iter().any(|x| matches(x, record, kind)),
        Query::Not(x) => !matches(x, record, kind),
        Query::Cond { field, cond } => {
            let vals = values_of(record, field);
            let k = if field == super::fields::DESCRIPTION {
                FieldKind::Text
            } else {
                kind(field)
            };
            match cond {
                Cond::Text { mode, value } => vals.iter().any(|c| text_matches(k, *mode, value, c)),
                Cond::Freeform(words) => words.iter().all(|w| {
                    vals.iter()
                        .any(|c| text_matches(FieldKind::Text, TextMode::Matches, w, c))
                }),
                Cond::Exists => !vals.is_empty(),
                Cond::Missing => vals.is_empty(),
                Cond::Range { min, max } => vals
                    .iter()
                    .filter_map(|v| numeric(k, v))
                    .any(|n| min.is_none_or(|lo| n >= lo) && max.is_none_or(|hi| n <= hi)),
            }
        }
    }
}

fn numeric(kind: FieldKind, v: &str) -> Option<f64> {
    match kind {
        FieldKind::Date => super::dates::parse_flexible(v).map(|t| t.timestamp_millis() as f64),
        _ => v.parse().ok(),
    }
}

/// Filters, sorts and pages records; returns the total and the page.
pub fn search(
    records: Vec<Map<String, Value>>,
    req: &SearchRequest,
    kind: &dyn Fn(&str) -> FieldKind,
) -> (u64, Vec<Map<String, Value>>) {
    let mut hits: Vec<Map<String, Value>> = records.into_iter().filter(|r| matches(&req.query, r, kind)).collect();
    if !req.sort.is_empty() {
        hits.sort_by(|a, b| {
            for key in &req.sort {
                let (va, vb) = (values_of(a, &key.field), values_of(b, &key.field));
                let ord = va
                    .first()
                    .map(|s| s.to_lowercase())
                    .cmp(&vb.first().map(|s| s.to_lowercase()));
                let ord = if key.descending { ord.reverse() } else { ord };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        });
    }
    let total = hits.len() as u64;
    let start = ((req.page - 1) as usize).saturating_mul(req.hits_per_page as usize);
    let page = hits.into_iter().skip(start).take(req.hits_per_page as usize).collect();
    (total, page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::query::{parse_search, FieldInfo};
    use serde_json::json;

    fn kind(f: &str) -> FieldKind {
        match f {
            "name" => FieldKind::Text,
            "size" => FieldKind::Number,
            _ => FieldKind::Keyword,
        }
    }

    #[test]
    fn same_semantics_as_the_stores() {
        let recs: Vec<Map<String, Value>> = vec![
            json!({"id":"a","name":"Big Red Bird","tags":["x","y"],"size":"10"}),
            json!({"id":"b","name":"Small cat","tags":["y"],"size":"3"}),
            json!({"id":"c","name":"red","size":"7"}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
        let resolve = |f: &str| {
            Some(FieldInfo {
                kind: kind(f),
                name: "",
            })
        };
        let run = |body: Value| {
            let req = parse_search(body.as_object().unwrap(), "t", &resolve).unwrap();
            let (n, hits) = search(recs.clone(), &req, &kind);
            (
                n,
                hits.iter()
                    .map(|h| h["id"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(run(json!({"query":{"terms":[{"field":"name","value":"red"}]}})).0, 2);
        assert_eq!(
            run(json!({"query":{"terms":[{"field":"tags","operation":"exact","value":"Y"}]}})).0,
            2
        );
        assert_eq!(
            run(json!({"query":{"terms":[{"field":"id","value":"*"}]},"sortby":"sizeDown"})).1,
            ["c", "b", "a"]
        );
        assert_eq!(
            run(json!({"query":{"terms":[{"field":"size","operation":"greaterthannumber","value":"5"}]}})).0,
            2
        );
        assert_eq!(
            run(json!({"query":{"terms":[{"field":"tags","operation":"missing"}]}})).1,
            ["c"]
        );
        assert_eq!(
            run(json!({"query":{"terms":[{"field":"description","operation":"freeform","value":"bird big"}]}})).1,
            ["a"]
        );
        assert_eq!(run(json!({"hitsperpage":2,"page":2,"sortby":"idUp"})).1, ["c"]);
        assert!(wildcard("a*c", "abbc") && !wildcard("a*c", "abb") && wildcard("*", ""));
    }
}
