//! Assets on the wire (wire §6): every value a string, list fields as `{"id","name"}`,
//! multi-value fields as arrays, plus `mediarendertype`, `originalurl` and `downloads`.

use crate::domain::asset::Asset;
use crate::domain::fields::{self, FieldKind, ASSET_FIELDS};
use crate::domain::filetypes;
use crate::store::MetaStore;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Characters escaped in a URL path segment (`/` is kept between segments).
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

pub fn escape_path(path: &str) -> String {
    utf8_percent_encode(path, PATH_SEGMENT).to_string()
}

/// Display names for the list values a set of assets refers to, looked up once.
#[derive(Default)]
pub struct Names {
    map: HashMap<(String, String), String>,
}

impl Names {
    pub async fn for_assets(store: &dyn MetaStore, catalog: &str, assets: &[&Asset]) -> Self {
        let mut wanted: Vec<(&'static str, String)> = Vec::new();
        let custom = fields::custom::all();
        for a in assets {
            for def in ASSET_FIELDS.iter().chain(custom.iter().copied()) {
                let Some(table) = def.kind.list_table() else { continue };
                match a.fields.get(def.id) {
                    Some(Value::String(s)) => wanted.push((table, s.clone())),
                    Some(Value::Array(v)) => {
                        wanted.extend(v.iter().filter_map(Value::as_str).map(|id| (table, id.to_string())))
                    }
                    _ => {}
                }
            }
        }
        Self::lookup(store, catalog, wanted).await
    }

    /// Looks up the names of list values (`(table, id)` pairs) that are not fixed.
    pub async fn lookup(store: &dyn MetaStore, catalog: &str, pairs: Vec<(&'static str, String)>) -> Self {
        let mut wanted: HashMap<&'static str, Vec<String>> = HashMap::new();
        for (table, id) in pairs {
            if fields::list_value_name(table, &id).is_none() && table != "fileformat" {
                let list = wanted.entry(table).or_default();
                if !list.contains(&id) {
                    list.push(id);
                }
            }
        }
        let mut names = Names::default();
        for (table, ids) in wanted {
            if table == "user" {
                for id in ids {
                    if let Ok(Some(u)) = store.get_user(&id).await {
                        names.map.insert(("user".into(), id), u.display_name());
                    }
                }
            } else if let Ok(found) = store.record_names(catalog, table, &ids).await {
                for (id, name) in found {
                    names.map.insert((table.to_string(), id), name);
                }
            }
        }
        names
    }

    /// The display name of a list value, if it has one.
    pub fn name(&self, table: &str, id: &str) -> Option<String> {
        if table == "fileformat" {
            return Some(id.to_ascii_uppercase());
        }
        fields::list_value_name(table, id)
            .map(str::to_string)
            .or_else(|| self.map.get(&(table.to_string(), id.to_string())).cloned())
    }

    fn list_object(&self, table: &str, id: &str) -> Value {
        match self.name(table, id) {
            Some(name) => json!({"id": id, "name": name}),
            None => json!({"id": id}),
        }
    }
}

/// URL prefix of the services of a site: `/assets/mediadb/services` or `/mediadb/services`.
pub fn services_prefix(site: Option<&str>) -> String {
    match site {
        Some(s) => format!("/{s}/mediadb/services"),
        None => "/mediadb/services".to_string(),
    }
}

/// The asset as a search hit or `data` object.
pub fn asset_json(a: &Asset, names: &Names, prefix: &str) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(a.id));
    for def in ASSET_FIELDS {
        match def.id {
            "id" => continue,
            "sourcepath" => {
                out.insert("sourcepath".into(), json!(a.sourcepath));
                continue;
            }
            _ => {}
        }
        if let Some(v) = a.fields.get(def.id) {
            out.insert(def.id.into(), render_value(def.kind, v, names));
        }
    }
    // Custom fields (settings/datamanager) after the standard ones.
    for def in fields::custom::all() {
        if let Some(v) = a.fields.get(def.id) {
            out.insert(def.id.into(), render_value(def.kind, v, names));
        }
    }
    let ext = a.text("fileformat").unwrap_or("");
    out.insert(
        "mediarendertype".into(),
        json!(if a.original.is_some() {
            filetypes::render_type(ext)
        } else {
            "none"
        }),
    );
    if let Some(o) = &a.original {
        out.insert(
            "originalurl".into(),
            json!(escape_path(&format!("{}/{}", a.sourcepath, o.filename))),
        );
    }
    // `url`: the stored rendition (never generates); `download`: the same with the
    // export file name, as EnterMediaDB's `generate/` links.
    let sp = escape_path(&a.sourcepath);
    let downloads: Vec<Value> = crate::ops::import::renditions_of(a)
        .iter()
        .map(|r| {
            let export = escape_path(&crate::ops::import::export_name(a, &r.preset, &r.file));
            json!({
                "name": r.name, "id": r.preset,
                "url": format!("{prefix}/module/asset/generated/{sp}/{}", r.file),
                "download": format!("{prefix}/module/asset/generate/{sp}/{}/{export}", r.file),
            })
        })
        .collect();
    out.insert("downloads".into(), Value::Array(downloads));
    Value::Object(out)
}

fn render_value(kind: FieldKind, v: &Value, names: &Names) -> Value {
    match (kind, v) {
        (FieldKind::List(table), Value::String(id)) => names.list_object(table, id),
        (FieldKind::MultiList(table), Value::Array(ids)) => Value::Array(
            ids.iter()
                .filter_map(Value::as_str)
                .map(|id| names.list_object(table, id))
                .collect(),
        ),
        (FieldKind::MultiText, Value::Array(ids)) => Value::Array(
            ids.iter()
                .filter_map(Value::as_str)
                .map(|id| json!({"id": id}))
                .collect(),
        ),
        (_, other) => other.clone(),
    }
}
