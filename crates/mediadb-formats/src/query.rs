//! The search query model and its parser from EnterMediaDB's JSON search language
//! (wire §5.2): `{"page":"1","hitsperpage":"20","query":{"terms":[{"field":"id",
//! "operation":"matches","value":"*"}]}}`.
//!
//! Parsing produces a typed [`Query`] tree that each store compiles to its own SQL.
//! Anything the parser cannot make sense of is an [`Invalid`] naming the problem:
//! a broken search must never silently match everything.

use super::dates;
use super::fields::FieldKind;
use super::Invalid;
use chrono::{Duration, Utc};
use serde_json::{json, Map, Value};

/// The most hits one page may hold.
pub const MAX_HITS_PER_PAGE: u32 = 1000;
/// EnterMediaDB's hard default page size.
pub const DEFAULT_HITS_PER_PAGE: u32 = 15;

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    All,
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
    Cond { field: String, cond: Cond },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMode {
    /// Whole words (analysed fields) or the whole value (identifier fields), any case.
    Matches,
    /// The whole value, any case.
    Exact,
    StartsWith,
    Contains,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Text {
        mode: TextMode,
        value: String,
    },
    /// Every word or quoted phrase must occur.
    Freeform(Vec<String>),
    Exists,
    Missing,
    /// Numbers, and dates as epoch milliseconds; bounds inclusive.
    Range {
        min: Option<f64>,
        max: Option<f64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub field: String,
    pub descending: bool,
}

/// A parsed search request: the query, its order and the page wanted.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub query: Query,
    pub sort: Vec<SortKey>,
    pub page: u32,
    pub hits_per_page: u32,
    pub show_filters: bool,
    /// The terms as the client sent them, normalised, for the response's `query.terms`.
    pub echo_terms: Vec<Value>,
    /// A human-readable rendering for `query.friendly`.
    pub friendly: String,
}

/// What the parser needs to know of a field.
#[derive(Debug, Clone, Copy)]
pub struct FieldInfo {
    pub kind: FieldKind,
    pub name: &'static str,
}

pub type FieldResolver<'a> = &'a dyn Fn(&str) -> Option<FieldInfo>;

/// The resolver of asset searches: the asset fields (standard and custom) and the
/// composite full-text field `description`.
pub fn asset_field_info(field: &str) -> Option<FieldInfo> {
    match field {
        super::fields::DESCRIPTION => Some(FieldInfo {
            kind: FieldKind::Text,
            name: "Description",
        }),
        _ => super::fields::asset_field(field).map(|d| FieldInfo {
            kind: d.kind,
            name: d.name,
        }),
    }
}

/// Parses a search body. `searchtype` names the table (`asset`), for `assetsortby`.
pub fn parse_search(
    body: &Map<String, Value>,
    searchtype: &str,
    resolve: FieldResolver,
) -> Result<SearchRequest, Invalid> {
    let dateformat = match body.get("dateformat") {
        None | Some(Value::Null) => "yyyy-MM-dd".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(Invalid::new("dateformat must be a string such as \"dd/MM/yyyy\"")),
    };
    dates::java_pattern_to_chrono(&dateformat).map_err(Invalid)?;
    let ctx = Ctx {
        resolve,
        dateformat: &dateformat,
        top: body,
    };
    let mut echo_terms = Vec::new();
    let mut friendly = Vec::new();
    let mut parts = Vec::new();

    if let Some(q) = body.get("query") {
        let q = q
            .as_object()
            .ok_or_else(|| Invalid::new("query must be an object with \"terms\""))?;
        parts.push(ctx.parse_terms_object(q, "query", &mut echo_terms, &mut friendly)?);
    }
    if let Some(oq) = body.get("orqueries") {
        let list = oq
            .as_array()
            .ok_or_else(|| Invalid::new("orqueries must be a list of {\"terms\":[...]} objects"))?;
        let mut alts = Vec::new();
        for (i, q) in list.iter().enumerate() {
            let q = q
                .as_object()
                .ok_or_else(|| Invalid::new(format!("orqueries[{i}] must be an object with \"terms\"")))?;
            alts.push(ctx.parse_terms_object(q, &format!("orqueries[{i}]"), &mut echo_terms, &mut friendly)?);
        }
        parts.push(Query::Or(alts));
    }
    let query = simplify(Query::And(parts));

    let page = match first_present(body, &["page", &format!("{searchtype}page")]) {
        None => 1,
        Some(v) => parse_u32(v, "page")?,
    };
    if page == 0 {
        return Err(Invalid::new("page starts at 1"));
    }
    let hits_per_page = match body.get("hitsperpage") {
        None | Some(Value::Null) => DEFAULT_HITS_PER_PAGE,
        Some(v) => parse_u32(v, "hitsperpage")?,
    };
    if hits_per_page == 0 || hits_per_page > MAX_HITS_PER_PAGE {
        return Err(Invalid::new(format!(
            "hitsperpage must be between 1 and {MAX_HITS_PER_PAGE}, not {hits_per_page}"
        )));
    }
    let sort = match first_present(body, &[&format!("{searchtype}sortby"), "sortby"]) {
        None => Vec::new(),
        Some(v) => parse_sort(v, resolve)?,
    };
    let show_filters = match body.get("showfilters") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        Some(_) => return Err(Invalid::new("showfilters must be \"true\" or \"false\"")),
    };
    Ok(SearchRequest {
        query,
        sort,
        page,
        hits_per_page,
        show_filters,
        echo_terms,
        friendly: if friendly.is_empty() {
            "ID:*".into()
        } else {
            friendly.join(" AND ")
        },
    })
}

struct Ctx<'a> {
    resolve: FieldResolver<'a>,
    dateformat: &'a str,
    top: &'a Map<String, Value>,
}

impl Ctx<'_> {
    fn parse_terms_object(
        &self,
        q: &Map<String, Value>,
        at: &str,
        echo: &mut Vec<Value>,
        friendly: &mut Vec<String>,
    ) -> Result<Query, Invalid> {
        let terms = match q.get("terms") {
            None | Some(Value::Null) => return Ok(Query::All),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(Invalid::new(format!("{at}.terms must be a list"))),
        };
        let or = match q.get("querytype").or_else(|| self.top.get("querytype")) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("or") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("and") => false,
            Some(other) => {
                return Err(Invalid::new(format!(
                    "querytype must be \"and\" or \"or\", not {other}"
                )))
            }
        };
        let mut parts = Vec::new();
        for (i, t) in terms.iter().enumerate() {
            let t = t
                .as_object()
                .ok_or_else(|| Invalid::new(format!("{at}.terms[{i}] must be an object")))?;
            parts.push(self.parse_term(t, &format!("{at}.terms[{i}]"), echo, friendly)?);
        }
        Ok(if or { Query::Or(parts) } else { Query::And(parts) })
    }

    fn parse_term(
        &self,
        t: &Map<String, Value>,
        at: &str,
        echo: &mut Vec<Value>,
        friendly: &mut Vec<String>,
    ) -> Result<Query, Invalid> {
        let field = match t.get("field") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(Invalid::new(format!("{at} has no \"field\""))),
        };
        let info = (self.resolve)(&field).ok_or_else(|| Invalid::new(format!("{at}: unknown field \"{field}\"")))?;
        let op = match t.get("operation").or_else(|| t.get("operator")) {
            None | Some(Value::Null) => "matches".to_string(),
            Some(Value::String(s)) => s.to_ascii_lowercase(),
            Some(_) => return Err(Invalid::new(format!("{at}: operation must be a string"))),
        };
        let values = term_values(t, at)?;
        let get_key = |k: &str| -> Option<String> {
            t.get(k)
                .and_then(value_text)
                .or_else(|| self.top.get(&format!("{field}.{k}")).and_then(value_text))
        };

        let mut e = Map::new();
        e.insert("id".into(), json!(field));
        e.insert(
            "operation".into(),
            json!(if op == "orsgroup" { "orgroup" } else { op.as_str() }),
        );
        match values.len() {
            0 => {}
            1 => {
                e.insert("value".into(), json!(values[0]));
            }
            _ => {
                e.insert("values".into(), json!(values));
            }
        }
        for k in ["before", "after", "lowval", "highval"] {
            if let Some(v) = get_key(k) {
                e.insert(k.into(), json!(v));
            }
        }
        echo.push(Value::Object(e));
        friendly.push(format!(
            "{}:{}{}",
            if info.name.is_empty() {
                field.as_str()
            } else {
                info.name
            },
            if op == "matches" {
                String::new()
            } else {
                format!("{op} ")
            },
            if values.is_empty() {
                "*".to_string()
            } else {
                values.join("|")
            }
        ));

        let cond = |c: Cond| Query::Cond {
            field: field.clone(),
            cond: c,
        };
        let need_value = || -> Result<String, Invalid> {
            values
                .first()
                .cloned()
                .ok_or_else(|| Invalid::new(format!("{at}: operation \"{op}\" needs a value")))
        };
        let any_of = |mode: TextMode| -> Result<Query, Invalid> {
            if values.is_empty() {
                return Err(Invalid::new(format!("{at}: operation \"{op}\" needs a value")));
            }
            if values.iter().any(|v| v == "*") {
                return Ok(Query::All);
            }
            let qs: Vec<Query> = values
                .iter()
                .map(|v| self.text_or_number(&field, info.kind, mode, v, at))
                .collect::<Result<_, _>>()?;
            Ok(simplify(Query::Or(qs)))
        };
        let all_of = || -> Result<Query, Invalid> {
            let qs: Vec<Query> = values
                .iter()
                .filter(|v| *v != "*")
                .map(|v| self.text_or_number(&field, info.kind, TextMode::Matches, v, at))
                .collect::<Result<_, _>>()?;
            Ok(simplify(Query::And(qs)))
        };
        let date = |s: &str| -> Result<f64, Invalid> {
            dates::parse_with_java_pattern(s, self.dateformat)
                .map(|t| t.timestamp_millis() as f64)
                .map_err(|e| Invalid::new(format!("{at}: {e}")))
        };
        let number = |s: &str| -> Result<f64, Invalid> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| Invalid::new(format!("{at}: \"{s}\" is not a number")))
        };
        const DAY: f64 = 86_400_000.0;

        Ok(match op.as_str() {
            "matches" => any_of(TextMode::Matches)?,
            "exact" => any_of(TextMode::Exact)?,
            "startswith" => any_of(TextMode::StartsWith)?,
            "contains" => any_of(TextMode::Contains)?,
            "orsgroup" | "orgroup" => any_of(TextMode::Matches)?,
            "andgroup" => all_of()?,
            "not" | "notgroup" => {
                let inner = any_of(TextMode::Matches)?;
                if inner == Query::All {
                    return Err(Invalid::new(format!("{at}: \"{op}\" of * would exclude everything")));
                }
                Query::Not(Box::new(inner))
            }
            "freeform" => {
                let words = freeform_words(&values.join(" "));
                if words.is_empty() || words.iter().any(|w| w == "*") {
                    Query::All
                } else {
                    cond(Cond::Freeform(words))
                }
            }
            "exists" => cond(Cond::Exists),
            "missing" => cond(Cond::Missing),
            "beforedate" | "afterdate" | "before" | "after" | "betweendates" | "equals" => {
                if info.kind != FieldKind::Date {
                    return Err(Invalid::new(format!(
                        "{at}: \"{op}\" needs a date field; \"{field}\" is not one"
                    )));
                }
                let before = get_key("before");
                let after = get_key("after");
                match op.as_str() {
                    "beforedate" | "before" => {
                        let v = before.or_else(|| values.first().cloned()).ok_or_else(|| {
                            Invalid::new(format!("{at}: \"{op}\" needs a date in \"before\" or \"value\""))
                        })?;
                        cond(Cond::Range {
                            min: None,
                            max: Some(date(&v)? - 1.0),
                        })
                    }
                    "afterdate" | "after" => {
                        let v = after.or_else(|| values.first().cloned()).ok_or_else(|| {
                            Invalid::new(format!("{at}: \"{op}\" needs a date in \"after\" or \"value\""))
                        })?;
                        cond(Cond::Range {
                            min: Some(date(&v)? + 1.0),
                            max: None,
                        })
                    }
                    "betweendates" => {
                        let (Some(a), Some(b)) = (after, before) else {
                            return Err(Invalid::new(format!(
                                "{at}: betweendates needs \"after\" and \"before\" (in the term or as {field}.after / {field}.before)"
                            )));
                        };
                        let (lo, hi) = (date(&a)?, date(&b)?);
                        // EnterMediaDB extends "before" to the end of that day.
                        let hi = hi - hi.rem_euclid(DAY) + DAY - 1.0;
                        cond(Cond::Range {
                            min: Some(lo),
                            max: Some(hi),
                        })
                    }
                    _ => {
                        let d = date(&need_value()?)?;
                        let start = d - d.rem_euclid(DAY);
                        cond(Cond::Range {
                            min: Some(start),
                            max: Some(start + DAY - 1.0),
                        })
                    }
                }
            }
            o if (o.starts_with("before") || o.starts_with("after"))
                && o.trim_start_matches("before")
                    .trim_start_matches("after")
                    .parse::<u32>()
                    .is_ok() =>
            {
                if info.kind != FieldKind::Date {
                    return Err(Invalid::new(format!(
                        "{at}: \"{op}\" needs a date field; \"{field}\" is not one"
                    )));
                }
                let n: i64 = o
                    .trim_start_matches("before")
                    .trim_start_matches("after")
                    .parse()
                    .unwrap_or(0);
                let now = Utc::now();
                // A day count past chrono's range (about 262,000 years) is the caller's
                // mistake, not a panic (found by the search_query fuzz target).
                let too_far = || Invalid::new(format!("{at}: \"{op}\" reaches past the representable dates"));
                let days = Duration::try_days(n).ok_or_else(too_far)?;
                let (lo, hi) = if o.starts_with("before") {
                    (now.checked_sub_signed(days).ok_or_else(too_far)?, now)
                } else {
                    (now, now.checked_add_signed(days).ok_or_else(too_far)?)
                };
                cond(Cond::Range {
                    min: Some(lo.timestamp_millis() as f64),
                    max: Some(hi.timestamp_millis() as f64),
                })
            }
            "equaltonumber" => {
                let n = number(&need_value()?)?;
                cond(Cond::Range {
                    min: Some(n),
                    max: Some(n),
                })
            }
            "greaterthannumber" => {
                let n = number(&need_value()?)?;
                cond(Cond::Range {
                    min: Some(next_up(n)),
                    max: None,
                })
            }
            "lessthannumber" => {
                let n = number(&need_value()?)?;
                cond(Cond::Range {
                    min: None,
                    max: Some(next_down(n)),
                })
            }
            "betweennumbers" => {
                let (lo, hi) = match (get_key("lowval"), get_key("highval")) {
                    (Some(l), Some(h)) => (number(&l)?, number(&h)?),
                    _ => {
                        let v = need_value()?;
                        let (l, h) = split_range(&v).ok_or_else(|| {
                            Invalid::new(format!(
                                "{at}: betweennumbers needs \"low-high\" or lowval/highval, not \"{v}\""
                            ))
                        })?;
                        (number(l)?, number(h)?)
                    }
                };
                cond(Cond::Range {
                    min: Some(lo),
                    max: Some(hi),
                })
            }
            other if values.len() >= 2 => {
                // EnterMediaDB treats any other operation with several values as an OR group.
                let _ = other;
                any_of(TextMode::Matches)?
            }
            other => return Err(Invalid::new(format!("{at}: unknown operation \"{other}\""))),
        })
    }

    fn text_or_number(
        &self,
        field: &str,
        kind: FieldKind,
        mode: TextMode,
        v: &str,
        at: &str,
    ) -> Result<Query, Invalid> {
        let cond = if kind == FieldKind::Number && !v.contains('*') {
            let n: f64 = v
                .trim()
                .parse()
                .map_err(|_| Invalid::new(format!("{at}: field \"{field}\" holds numbers; \"{v}\" is not one")))?;
            Cond::Range {
                min: Some(n),
                max: Some(n),
            }
        } else {
            Cond::Text {
                mode,
                value: v.to_string(),
            }
        };
        Ok(Query::Cond {
            field: field.to_string(),
            cond,
        })
    }
}

fn split_range(v: &str) -> Option<(&str, &str)> {
    // "low-high", where low may itself be negative.
    let idx = v.char_indices().skip(1).find(|&(_, c)| c == '-')?.0;
    Some((&v[..idx], &v[idx + 1..]))
}

fn next_up(n: f64) -> f64 {
    n + f64::EPSILON.max(n.abs() * f64::EPSILON)
}
fn next_down(n: f64) -> f64 {
    n - f64::EPSILON.max(n.abs() * f64::EPSILON)
}

fn term_values(t: &Map<String, Value>, at: &str) -> Result<Vec<String>, Invalid> {
    let mut out = Vec::new();
    if let Some(v) = t.get("values") {
        match v {
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    out.push(
                        value_text(x)
                            .ok_or_else(|| Invalid::new(format!("{at}.values[{i}] must be a string or a number")))?,
                    );
                }
            }
            Value::Null => {}
            other => out.push(value_text(other).ok_or_else(|| Invalid::new(format!("{at}.values must be a list")))?),
        }
    }
    match t.get("value") {
        None | Some(Value::Null) => {}
        Some(v) => {
            let s = value_text(v).ok_or_else(|| Invalid::new(format!("{at}.value must be a string or a number")))?;
            out.extend(s.split('|').filter(|p| !p.is_empty()).map(str::to_string));
        }
    }
    Ok(out)
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_u32(v: &Value, name: &str) -> Result<u32, Invalid> {
    let s = value_text(v).ok_or_else(|| Invalid::new(format!("{name} must be a number")))?;
    s.trim()
        .parse::<u32>()
        .map_err(|_| Invalid::new(format!("{name} must be a whole number, not \"{s}\"")))
}

fn first_present<'a>(body: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| body.get(*k).filter(|v| !v.is_null()))
}

fn parse_sort(v: &Value, resolve: FieldResolver) -> Result<Vec<SortKey>, Invalid> {
    let items: Vec<String> = match v {
        Value::String(s) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Value::Array(a) => a
            .iter()
            .map(|x| value_text(x).ok_or_else(|| Invalid::new("sortby entries must be strings")))
            .collect::<Result<_, _>>()?,
        _ => return Err(Invalid::new("sortby must be a string such as \"assetaddeddateDown\"")),
    };
    items
        .into_iter()
        .map(|s| {
            let (field, descending) = if let Some(f) = s.strip_suffix("Down") {
                (f, true)
            } else if let Some(f) = s.strip_suffix("Up") {
                (f, false)
            } else {
                (s.as_str(), false)
            };
            if resolve(field).is_none() {
                return Err(Invalid::new(format!("sortby: unknown field \"{field}\"")));
            }
            Ok(SortKey {
                field: field.to_string(),
                descending,
            })
        })
        .collect()
}

/// Lower-case words separated and surrounded by single spaces, so that
/// `LIKE '% word %'` finds a whole word and `LIKE '% wor%'` a word prefix.
pub fn normalize_words(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(' ');
    for word in s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        out.push_str(&word.to_lowercase());
        out.push(' ');
    }
    out
}

/// Splits a freeform text into lower-case words and quoted phrases.
pub fn freeform_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            let phrase = r[..end].trim().to_lowercase();
            if !phrase.is_empty() {
                out.push(phrase);
            }
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(|c: char| c.is_whitespace() || c == '"').unwrap_or(rest.len());
            let word = rest[..end].to_lowercase();
            let word = word.trim_matches(|c: char| c == '+' || c == ',');
            if !word.is_empty() && !matches!(word, "and" | "or") {
                out.push(word.to_string());
            }
            rest = &rest[end..];
        }
    }
    out
}

/// Flattens nested ANDs and ORs and removes redundant `All`s.
pub fn simplify(q: Query) -> Query {
    match q {
        Query::And(parts) => {
            let mut out = Vec::new();
            for p in parts.into_iter().map(simplify) {
                match p {
                    Query::All => {}
                    Query::And(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => Query::All,
                1 => out.pop().unwrap_or(Query::All),
                _ => Query::And(out),
            }
        }
        Query::Or(parts) => {
            let mut out = Vec::new();
            for p in parts.into_iter().map(simplify) {
                match p {
                    Query::All => return Query::All,
                    Query::Or(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => Query::All,
                1 => out.pop().unwrap_or(Query::All),
                _ => Query::Or(out),
            }
        }
        Query::Not(inner) => Query::Not(Box::new(simplify(*inner))),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::asset_field;
    use proptest::prelude::*;

    fn resolve(f: &str) -> Option<FieldInfo> {
        match f {
            "description" => Some(FieldInfo {
                kind: FieldKind::Text,
                name: "Description",
            }),
            _ => asset_field(f).map(|d| FieldInfo {
                kind: d.kind,
                name: d.name,
            }),
        }
    }

    fn parse(v: Value) -> Result<SearchRequest, Invalid> {
        parse_search(v.as_object().unwrap(), "asset", &resolve)
    }

    /// Regression (search_query fuzz target, fuzz/corpus/search_query/after-overflow): a
    /// relative date operation with a day count past chrono's range panicked on
    /// `DateTime + TimeDelta`; it is a clean error now, and ordinary counts still work.
    #[test]
    fn relative_days_past_the_date_range_are_invalid_not_a_panic() {
        for op in ["after203407439", "before4294967295"] {
            let e = parse(json!({"query":{"terms":[{"field":"assetmodificationdate","operation":op}]}})).unwrap_err();
            assert!(e.0.contains("representable"), "{op}: {e}");
        }
        let r = parse(json!({"query":{"terms":[{"field":"assetmodificationdate","operation":"before30"}]}})).unwrap();
        let Query::Cond {
            cond: Cond::Range {
                min: Some(lo),
                max: Some(hi),
            },
            ..
        } = r.query
        else {
            panic!("{:?}", r.query)
        };
        assert_eq!(hi - lo, 30.0 * 86_400_000.0);
    }

    #[test]
    fn the_documented_all_query() {
        let r = parse(
            json!({"page":"1","hitsperpage":"20","query":{"terms":[{"field":"id","operation":"matches","value":"*"}]}}),
        )
        .unwrap();
        assert_eq!(r.query, Query::All);
        assert_eq!((r.page, r.hits_per_page), (1, 20));
        assert_eq!(r.echo_terms, vec![json!({"id":"id","operation":"matches","value":"*"})]);
        assert_eq!(r.friendly, "ID:*");
    }

    #[test]
    fn numbers_or_strings_operator_or_operation() {
        let r = parse(json!({"page":2,"hitsperpage":5,"query":{"terms":[{"field":"keywords","operator":"orsgroup","values":["bird","cat"]}]}})).unwrap();
        assert_eq!((r.page, r.hits_per_page), (2, 5));
        assert!(matches!(r.query, Query::Or(ref v) if v.len() == 2));
        let r = parse(json!({"query":{"terms":[{"field":"name","value":"a|b"}]}})).unwrap();
        assert!(matches!(r.query, Query::Or(ref v) if v.len() == 2));
    }

    #[test]
    fn dates_with_dateformat_and_top_level_bounds() {
        let r = parse(json!({"dateformat":"dd/MM/yyyy","query":{"terms":[{"field":"assetaddeddate","operation":"betweendates","after":"01/01/2015","before":"01/01/2025"}]}})).unwrap();
        let Query::Cond {
            cond: Cond::Range {
                min: Some(lo),
                max: Some(hi),
            },
            ..
        } = r.query
        else {
            panic!("{:?}", r.query)
        };
        assert_eq!(lo, 1420070400000.0);
        assert_eq!(hi, 1735776000000.0 - 1.0);
        let r = parse(json!({"assetaddeddate.after":"2015-01-01","assetaddeddate.before":"2016-01-01","query":{"terms":[{"field":"assetaddeddate","operation":"betweendates"}]}})).unwrap();
        assert!(matches!(
            r.query,
            Query::Cond {
                cond: Cond::Range { .. },
                ..
            }
        ));
    }

    #[test]
    fn nonsense_is_refused_by_name() {
        for (body, needle) in [
            (
                json!({"query":{"terms":[{"field":"nosuch","value":"x"}]}}),
                "unknown field",
            ),
            (
                json!({"query":{"terms":[{"field":"name","operation":"frobnicate","value":"x"}]}}),
                "unknown operation",
            ),
            (
                json!({"query":{"terms":[{"field":"assetaddeddate","operation":"beforedate","value":"soon"}]}}),
                "cannot read date",
            ),
            (
                json!({"query":{"terms":[{"field":"width","operation":"greaterthannumber","value":"wide"}]}}),
                "not a number",
            ),
            (json!({"hitsperpage":"100000"}), "hitsperpage"),
            (json!({"page":"0"}), "page"),
            (json!({"query":"all"}), "query must be"),
            (json!({"sortby":"nosuchUp"}), "sortby"),
            (
                json!({"query":{"terms":[{"field":"name","operation":"matches"}]}}),
                "needs a value",
            ),
        ] {
            let e = parse(body.clone()).unwrap_err();
            assert!(e.0.contains(needle), "{body} -> {e}");
        }
    }

    #[test]
    fn sorting_and_freeform() {
        let r = parse(json!({"assetsortby":"assetaddeddateDown","query":{"terms":[{"field":"description","operation":"freeform","value":"red \"big bird\""}]}})).unwrap();
        assert_eq!(
            r.sort,
            vec![SortKey {
                field: "assetaddeddate".into(),
                descending: true
            }]
        );
        assert_eq!(
            r.query,
            Query::Cond {
                field: "description".into(),
                cond: Cond::Freeform(vec!["red".into(), "big bird".into()])
            }
        );
    }

    proptest! {
        #[test]
        fn arbitrary_json_never_panics(s in "\\PC{0,200}") {
            if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&s) {
                let _ = parse_search(&m, "asset", &resolve);
            }
        }

        #[test]
        fn arbitrary_terms_never_panic(field in "[a-z_-]{0,12}", op in "[a-zA-Z0-9]{0,14}", value in "\\PC{0,20}", vals in proptest::collection::vec("\\PC{0,8}", 0..4)) {
            let body = json!({"query":{"terms":[{"field":field,"operation":op,"value":value,"values":vals,"after":value,"before":value}]}});
            let _ = parse(body);
        }
    }
}
