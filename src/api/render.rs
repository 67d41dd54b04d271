//! Assets on the wire (wire §6): every value a string, list fields as `{"id","name"}`,
//! multi-value fields as arrays, plus `mediarendertype`, `originalurl` and `downloads`.

use crate::domain::asset::Asset;
use crate::domain::fields::{self, FieldKind, ASSET_FIELDS};
use crate::domain::filetypes;
use crate::store::MetaStore;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;
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
    /// Names by list table, then value id.
    map: HashMap<&'static str, HashMap<String, String>>,
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
                        names.map.entry("user").or_default().insert(id, u.display_name());
                    }
                }
            } else if let Ok(found) = store.record_names(catalog, table, &ids).await {
                for (id, name) in found {
                    names.map.entry(table).or_default().insert(id, name);
                }
            }
        }
        names
    }

    /// The display name of a list value, if it has one.
    pub fn name(&self, table: &str, id: &str) -> Option<Cow<'_, str>> {
        if table == "fileformat" {
            return Some(Cow::Owned(id.to_ascii_uppercase()));
        }
        fields::list_value_name(table, id)
            .map(Cow::Borrowed)
            .or_else(|| self.map.get(table)?.get(id).map(|n| Cow::Borrowed(n.as_str())))
    }
}

/// URL prefix of the services of a site: `/assets/mediadb/services` or `/mediadb/services`.
pub fn services_prefix(site: Option<&str>) -> String {
    match site {
        Some(s) => format!("/{s}/mediadb/services"),
        None => "/mediadb/services".to_string(),
    }
}

/// The asset as a search hit or `data` object, serialized straight from the stored
/// fields: a page of hits is written without building a `Value` tree per asset.
pub struct AssetJson<'a> {
    asset: &'a Asset,
    names: &'a Names,
    prefix: &'a str,
}

impl<'a> AssetJson<'a> {
    pub fn new(asset: &'a Asset, names: &'a Names, prefix: &'a str) -> Self {
        Self { asset, names, prefix }
    }
}

impl Serialize for AssetJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (a, names) = (self.asset, self.names);
        let mut out = s.serialize_map(None)?;
        out.serialize_entry("id", &a.id)?;
        for def in ASSET_FIELDS {
            match def.id {
                "id" => continue,
                "sourcepath" => {
                    out.serialize_entry("sourcepath", &a.sourcepath)?;
                    continue;
                }
                _ => {}
            }
            if let Some(v) = a.fields.get(def.id) {
                out.serialize_entry(def.id, &Rendered(def.kind, v, names))?;
            }
        }
        // Custom fields (settings/datamanager) after the standard ones.
        for def in fields::custom::all() {
            if let Some(v) = a.fields.get(def.id) {
                out.serialize_entry(def.id, &Rendered(def.kind, v, names))?;
            }
        }
        let ext = a.text("fileformat").unwrap_or("");
        let render_type = if a.original.is_some() {
            filetypes::render_type(ext)
        } else {
            "none"
        };
        out.serialize_entry("mediarendertype", render_type)?;
        if let Some(o) = &a.original {
            out.serialize_entry("originalurl", &escape_path(&format!("{}/{}", a.sourcepath, o.filename)))?;
        }
        out.serialize_entry("downloads", &Downloads(self))?;
        out.end()
    }
}

/// `downloads`: `url` is the stored rendition (never generates); `download` the same
/// with the export file name, as EnterMediaDB's `generate/` links.
struct Downloads<'a, 'b>(&'b AssetJson<'a>);

impl Serialize for Downloads<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (a, prefix) = (self.0.asset, self.0.prefix);
        let renditions = crate::ops::import::renditions_of(a);
        let sp = escape_path(&a.sourcepath);
        let mut list = s.serialize_seq(Some(renditions.len()))?;
        for r in &renditions {
            let export = escape_path(&crate::ops::import::export_name(a, &r.preset, &r.file));
            list.serialize_element(&DownloadLink {
                name: &r.name,
                id: &r.preset,
                url: format!("{prefix}/module/asset/generated/{sp}/{}", r.file),
                download: format!("{prefix}/module/asset/generate/{sp}/{}/{export}", r.file),
            })?;
        }
        list.end()
    }
}

#[derive(Serialize)]
struct DownloadLink<'a> {
    name: &'a str,
    id: &'a str,
    url: String,
    download: String,
}

/// One stored value as the wire shows it: list values as `{"id","name"}`, multi-valued
/// text as `[{"id"}]`, anything else as stored.
struct Rendered<'a>(FieldKind, &'a Value, &'a Names);

impl Serialize for Rendered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Rendered(kind, v, names) = *self;
        match (kind, v) {
            (FieldKind::List(table), Value::String(id)) => ListValue(table, id, names).serialize(s),
            (FieldKind::MultiList(table), Value::Array(ids)) => s.collect_seq(
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(|id| ListValue(table, id, names)),
            ),
            (FieldKind::MultiText, Value::Array(ids)) => {
                s.collect_seq(ids.iter().filter_map(Value::as_str).map(|id| IdOnly { id }))
            }
            (_, other) => other.serialize(s),
        }
    }
}

#[derive(Serialize)]
struct IdOnly<'a> {
    id: &'a str,
}

/// `{"id","name"}`, or `{"id"}` when the value has no known name.
struct ListValue<'a>(&'a str, &'a str, &'a Names);

impl Serialize for ListValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ListValue(table, id, names) = *self;
        let name = names.name(table, id);
        let mut m = s.serialize_map(Some(if name.is_some() { 2 } else { 1 }))?;
        m.serialize_entry("id", id)?;
        if let Some(name) = name {
            m.serialize_entry("name", &name)?;
        }
        m.end()
    }
}
