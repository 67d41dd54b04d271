//! An asset record and the rules for writing its fields (EnterMediaDB's
//! `populateJsonData`, wire §6.3).
//!
//! Field values are held normalised in a JSON map: a string for a single value, an
//! array of strings for a multi-value field, an object `lang -> text` for a
//! multi-language field. Dates are stored already in the wire format (RFC 3339, UTC).

use super::dates;
use super::fields::{FieldDef, FieldKind};
use super::Invalid;
use serde_json::{Map, Value};

/// Metadata of an asset's original file. The blob key is random, never derived from
/// the source path, so renaming or replacing needs no file-system move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    pub blob_key: String,
    pub filename: String,
    pub size: u64,
    pub md5hex: String,
    pub sha256hex: String,
}

/// One asset, as the store holds it.
#[derive(Debug, Clone)]
pub struct Asset {
    pub id: String,
    pub sourcepath: String,
    pub fields: Map<String, Value>,
    pub original: Option<Original>,
}

impl Asset {
    pub fn text(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }
    pub fn set(&mut self, field: &str, value: impl Into<String>) {
        self.fields.insert(field.to_string(), Value::String(value.into()));
    }
}

/// A list value named by a client (`{"id":"sales","name":"Sales Channel"}`), to be
/// remembered in its list table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    pub table: String,
    pub id: String,
    pub name: String,
}

/// What a write did: the fields changed (with old and new values), list values
/// named, and keys that are not fields (EnterMediaDB ignores those; we report them).
#[derive(Debug, Default)]
pub struct Changes {
    pub changed: Vec<(String, Option<Value>, Option<Value>)>,
    pub list_items: Vec<ListItem>,
    pub ignored: Vec<String>,
}

/// Request keys that steer the call rather than name a field.
pub const CONTROL_KEYS: &[&str] = &[
    "id",
    "assetid",
    "sourcepath",
    "entermedia.key",
    "entermediakey",
    "jsonrequest",
    "categorypath",
    "catalogid",
    "field",
    "importpath",
    "fetchURL",
    "localPath",
    "fetchurl",
    "importfilename",
];

/// Applies client-supplied values to `fields` following wire §6.3. `resolve` gives the
/// definition of a field id (unknown fields are ignored and reported, as EnterMediaDB
/// ignores them). A value that cannot be read for its field's kind is an error naming
/// the field, and nothing is applied.
pub fn apply_values(
    fields: &mut Map<String, Value>,
    input: &Map<String, Value>,
    resolve: &dyn Fn(&str) -> Option<FieldDef>,
) -> Result<Changes, Invalid> {
    let mut changes = Changes::default();
    let mut staged = fields.clone();
    for (key, raw) in input {
        if CONTROL_KEYS.contains(&key.as_str()) {
            continue;
        }
        let (field_id, lang) = match key.split_once('.') {
            Some((f, l)) if !l.is_empty() => (f, Some(l)),
            _ => (key.as_str(), None),
        };
        let Some(def) = resolve(field_id) else {
            changes.ignored.push(key.clone());
            continue;
        };
        if def.readonly {
            changes.ignored.push(key.clone());
            continue;
        }
        let new = match (def.kind, lang) {
            (FieldKind::MultiLang, Some(lang)) => {
                let mut map = staged
                    .get(field_id)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                match scalar_text(raw, field_id)? {
                    Some(s) => {
                        map.insert(lang.to_string(), Value::String(s));
                    }
                    None => {
                        map.remove(lang);
                    }
                }
                (!map.is_empty()).then_some(Value::Object(map))
            }
            (_, Some(_)) => {
                changes.ignored.push(key.clone());
                continue;
            }
            (kind, None) => normalize_value(kind, field_id, raw, &mut changes.list_items)?,
        };
        let old = staged.get(field_id).cloned();
        if old != new {
            match &new {
                Some(v) => staged.insert(field_id.to_string(), v.clone()),
                None => staged.remove(field_id),
            };
            changes.changed.push((field_id.to_string(), old, new));
        }
    }
    *fields = staged;
    Ok(changes)
}

/// Reads one client value into the stored form for a field of `kind`; `None` clears it.
pub fn normalize_value(
    kind: FieldKind,
    field: &str,
    raw: &Value,
    list_items: &mut Vec<ListItem>,
) -> Result<Option<Value>, Invalid> {
    match kind {
        FieldKind::MultiText | FieldKind::MultiList(_) => {
            let items: Vec<Value> = match raw {
                Value::Null => return Ok(None),
                Value::Array(a) => a.clone(),
                Value::String(s) if s.is_empty() => return Ok(None),
                // `a|b|c` is EnterMediaDB's way of writing several values in one string.
                Value::String(s) => s.split('|').map(|p| Value::String(p.to_string())).collect(),
                other => vec![other.clone()],
            };
            let mut out: Vec<Value> = Vec::new();
            for item in &items {
                if let Some(id) = list_id(kind, field, item, list_items)? {
                    let v = Value::String(id);
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
            }
            Ok((!out.is_empty()).then_some(Value::Array(out)))
        }
        FieldKind::List(_) => Ok(list_id(kind, field, raw, list_items)?.map(Value::String)),
        FieldKind::MultiLang => match raw {
            Value::Object(map) => {
                let mut out = Map::new();
                for (lang, v) in map {
                    if let Some(s) = scalar_text(v, field)? {
                        out.insert(lang.clone(), Value::String(s));
                    }
                }
                Ok((!out.is_empty()).then_some(Value::Object(out)))
            }
            other => Ok(scalar_text(other, field)?.map(|s| {
                let mut m = Map::new();
                m.insert("en".into(), Value::String(s));
                Value::Object(m)
            })),
        },
        FieldKind::Number => {
            let Some(s) = scalar_text(raw, field)? else {
                return Ok(None);
            };
            let n: f64 = s
                .trim()
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| Invalid::new(format!("field \"{field}\" takes a number, not \"{s}\"")))?;
            Ok(Some(Value::String(number_text(n))))
        }
        FieldKind::Boolean => {
            let Some(s) = scalar_text(raw, field)? else {
                return Ok(None);
            };
            match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(Some(Value::String("true".into()))),
                "false" | "0" | "no" | "off" => Ok(Some(Value::String("false".into()))),
                _ => Err(Invalid::new(format!(
                    "field \"{field}\" takes true or false, not \"{s}\""
                ))),
            }
        }
        FieldKind::Date => {
            let Some(s) = scalar_text(raw, field)? else {
                return Ok(None);
            };
            let t = dates::parse_flexible(&s).ok_or_else(|| {
                Invalid::new(format!(
                    "field \"{field}\" takes a date (yyyy-MM-dd or ISO 8601), not \"{s}\""
                ))
            })?;
            Ok(Some(Value::String(dates::format_emdb(t))))
        }
        FieldKind::Text | FieldKind::Keyword => Ok(scalar_text(raw, field)?.map(Value::String)),
    }
}

/// A whole number without a fraction, else the shortest decimal.
pub fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn scalar_text(raw: &Value, field: &str) -> Result<Option<String>, Invalid> {
    match raw {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Object(o) => match o.get("id") {
            Some(v) => scalar_text(v, field),
            None => Err(Invalid::new(format!(
                "field \"{field}\" takes a value, not an object without \"id\""
            ))),
        },
        Value::Array(_) => Err(Invalid::new(format!("field \"{field}\" takes one value, not a list"))),
    }
}

fn list_id(
    kind: FieldKind,
    field: &str,
    raw: &Value,
    list_items: &mut Vec<ListItem>,
) -> Result<Option<String>, Invalid> {
    if let (Value::Object(o), Some(table)) = (raw, kind.list_table()) {
        let id = scalar_text(o.get("id").unwrap_or(&Value::Null), field)?;
        if let (Some(id), Some(Value::String(name))) = (&id, o.get("name")) {
            list_items.push(ListItem {
                table: table.to_string(),
                id: id.clone(),
                name: name.clone(),
            });
        }
        return Ok(id);
    }
    scalar_text(raw, field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fields::asset_field;
    use serde_json::json;

    fn apply(fields: &mut Map<String, Value>, v: Value) -> Result<Changes, Invalid> {
        apply_values(fields, v.as_object().unwrap(), &|f| asset_field(f).copied())
    }

    #[test]
    fn writes_follow_the_emdb_rules() {
        let mut m = Map::new();
        let c = apply(
            &mut m,
            json!({"name":"x","keywords":"a|b|a","purpose":{"id":"sales","name":"Sales Channel"},
                   "editstatus":6,"headline":"Hi","headline.fr":"Salut","width":"4000.0",
                   "nosuchfield":"1","filesize":"1","assetcreationdate":"2020-01-02"}),
        )
        .unwrap();
        assert_eq!(m["name"], json!("x"));
        assert_eq!(m["keywords"], json!(["a", "b"]));
        assert_eq!(m["purpose"], json!(["sales"]));
        assert_eq!(m["editstatus"], json!("6"));
        assert_eq!(m["headline"], json!({"en":"Hi","fr":"Salut"}));
        assert_eq!(m["width"], json!("4000"));
        assert_eq!(m["assetcreationdate"], json!("2020-01-02T00:00:00.000Z"));
        assert!(!m.contains_key("filesize"));
        assert_eq!(c.ignored, vec!["nosuchfield", "filesize"]);
        assert_eq!(c.list_items[0].name, "Sales Channel");
    }

    #[test]
    fn empty_clears_and_bad_values_change_nothing() {
        let mut m = Map::new();
        apply(&mut m, json!({"longcaption":"x","keywords":["a"]})).unwrap();
        apply(&mut m, json!({"longcaption":"","keywords":[]})).unwrap();
        assert!(m.is_empty());
        apply(&mut m, json!({"longcaption":"keep"})).unwrap();
        assert!(apply(&mut m, json!({"longcaption":"new","width":"wide"})).is_err());
        assert!(apply(&mut m, json!({"assetcreationdate":"someday"})).is_err());
        assert!(apply(&mut m, json!({"islocked":"maybe"})).is_err());
        assert_eq!(m["longcaption"], json!("keep"));
        assert!(!m.contains_key("width"));
    }
}
