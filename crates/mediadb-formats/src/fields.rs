//! The asset field catalog: which fields exist, what kind each is, and the names of
//! the values of the fixed lists (import status, preview status, ...).
//!
//! EnterMediaDB defines fields per catalog in XML (`fields/asset/dam.xml`); MediaDB
//! ships the standard set here. The kind decides how a value is validated on write,
//! indexed for search and rendered on the wire.

/// How a field's values are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text, matched case-insensitively word by word.
    Text,
    /// An identifier-like string matched exactly (case-insensitively).
    Keyword,
    /// A single value from a list table, rendered as `{"id","name"}`.
    List(&'static str),
    /// Several free values, rendered as an array of `{"id"}` objects.
    MultiText,
    /// Several values from a list table, rendered as an array of `{"id","name"}`.
    MultiList(&'static str),
    /// A whole or decimal number, rendered as a string.
    Number,
    /// `true` / `false`, rendered as a string.
    Boolean,
    /// A point in time, rendered in EnterMediaDB's date format.
    Date,
    /// Text per language, rendered as `{"en":"...","fr":"..."}`.
    MultiLang,
}

impl FieldKind {
    pub fn is_multi(self) -> bool {
        matches!(self, FieldKind::MultiText | FieldKind::MultiList(_))
    }
    pub fn list_table(self) -> Option<&'static str> {
        match self {
            FieldKind::List(t) | FieldKind::MultiList(t) => Some(t),
            _ => None,
        }
    }
    /// Whether values are compared as numbers (dates as epoch milliseconds).
    pub fn is_numeric(self) -> bool {
        matches!(self, FieldKind::Number | FieldKind::Date)
    }
}

/// One field definition.
#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    pub id: &'static str,
    pub name: &'static str,
    pub kind: FieldKind,
    /// Set by the server only; a client write is ignored.
    pub readonly: bool,
    /// Part of the composite full-text field `description`.
    pub fulltext: bool,
}

const fn f(id: &'static str, name: &'static str, kind: FieldKind) -> FieldDef {
    FieldDef {
        id,
        name,
        kind,
        readonly: false,
        fulltext: false,
    }
}
const fn ro(id: &'static str, name: &'static str, kind: FieldKind) -> FieldDef {
    FieldDef {
        id,
        name,
        kind,
        readonly: true,
        fulltext: false,
    }
}
const fn ft(id: &'static str, name: &'static str, kind: FieldKind) -> FieldDef {
    FieldDef {
        id,
        name,
        kind,
        readonly: false,
        fulltext: true,
    }
}

use FieldKind::*;

/// The standard asset fields, in the order EnterMediaDB renders them.
pub static ASSET_FIELDS: &[FieldDef] = &[
    ro("id", "ID", Keyword),
    ft("name", "Name", Text),
    ro("sourcepath", "Source Path", Keyword),
    f("category-exact", "Category", MultiList("category")),
    ro("category", "Categories (with ancestors)", MultiList("category")),
    ro("isfolder", "Is Folder", Boolean),
    ro("primaryfile", "Primary File", Keyword),
    f("assettype", "Asset Type", List("assettype")),
    ro("fileformat", "File Format", List("fileformat")),
    f("detectedfileformat", "Detected File Format", Keyword),
    ro("filesize", "File Size", Number),
    f("width", "Width", Number),
    f("height", "Height", Number),
    f("pages", "Pages", Number),
    f("length", "Length", Number),
    f("duration", "Duration", Number),
    f("framerate", "Frame Rate", Number),
    f("videocodec", "Video Codec", Keyword),
    f("audiocodec", "Audio Codec", Keyword),
    f("colorspace", "Color Space", Keyword),
    f("colortype", "Color Type", Keyword),
    f("imageorientation", "Image Orientation", List("imageorientation")),
    f("assetcreationdate", "Creation Date", Date),
    f("assetmodificationdate", "Modification Date", Date),
    ro("assetaddeddate", "Added Date", Date),
    ro("recordmodificationdate", "Record Modification Date", Date),
    f("owner", "Owner", List("user")),
    f("importstatus", "Import Status", List("assetimportstatus")),
    f("previewstatus", "Preview Status", List("assetpreviewstatus")),
    f("editstatus", "Edit Status", List("asseteditstatus")),
    ft("keywords", "Keywords", MultiText),
    ft("assettitle", "Title", Text),
    ft("headline", "Headline", MultiLang),
    ft("alternatetext", "Alternate Text", MultiLang),
    ft("longcaption", "Long Caption", Text),
    ft("creator", "Creator", Text),
    ft("copyrightnotice", "Copyright Notice", Text),
    f("copyrightstatus", "Copyright Status", Keyword),
    ft("rightsusageterms", "Rights Usage Terms", Text),
    ft("instructions", "Instructions", Text),
    ft("credit", "Credit", MultiLang),
    ro("md5hex", "MD5", Keyword),
    ro("sha256hex", "SHA-256", Keyword),
    f("geo_point", "Location (GPS)", Keyword),
    ft("location", "Location", Text),
    ft("region", "Region", Text),
    ft("country", "Country", Text),
    ft("state", "State", Text),
    f("language", "Language", Keyword),
    f("purpose", "Purpose", MultiList("purpose")),
    f("libraries", "Libraries", MultiList("library")),
    f("cameramake", "Camera Make", Keyword),
    f("cameramodel", "Camera Model", Keyword),
    f("parentid", "Parent", Keyword),
    f("duplicate", "Duplicate", Boolean),
    f("islocked", "Locked", Boolean),
    f("lockedby", "Locked By", Keyword),
    ro("datatype", "Data Type", List("datatype")),
    ro("assetviews", "Views", Number),
    ro("importerror", "Import Error", Text),
    ro("deletedby", "Deleted By", List("user")),
    ro("deleteddate", "Deleted Date", Date),
];

/// The field definition for `id` (standard or custom), or `None` for a field the
/// catalog does not define.
pub fn asset_field(id: &str) -> Option<&'static FieldDef> {
    ASSET_FIELDS.iter().find(|d| d.id == id).or_else(|| custom::get(id))
}

/// The kind of a field of a generic table (list values, the audit log, custom tables).
/// Fields not declared here are free text.
pub fn record_field_kind(searchtype: &str, field: &str) -> FieldKind {
    match (searchtype, field) {
        (_, "id") => Keyword,
        ("auditlog", "date") => Date,
        ("auditlog", "user" | "action" | "assetid" | "address" | "searchtype") => Keyword,
        ("auditlog", "fields") => MultiText,
        ("orderitem", "userid" | "assetid") => Keyword,
        ("orderitem", "date") => Date,
        _ => Text,
    }
}

/// The composite full-text field: searching it searches every `fulltext` field.
pub const DESCRIPTION: &str = "description";

/// Display names of the fixed list values, as EnterMediaDB's catalog lists spell them.
pub fn list_value_name(table: &str, id: &str) -> Option<&'static str> {
    let name = match (table, id) {
        ("assetimportstatus", "needsmetadata") => "Pending Metadata",
        ("assetimportstatus", "created") => "Created",
        ("assetimportstatus", "modified") => "Modified",
        ("assetimportstatus", "uploading") => "Uploading",
        ("assetimportstatus", "uploaded") => "Uploaded",
        ("assetimportstatus", "imported") => "Imported",
        ("assetimportstatus", "reimported") => "Re-Imported",
        ("assetimportstatus", "complete") => "Complete",
        ("assetimportstatus", "error") => "Error",
        ("assetimportstatus", "invalidformat") => "Invalid Format",
        ("assetpreviewstatus", "0") => "Unknown",
        ("assetpreviewstatus", "1") => "Exif Stub",
        ("assetpreviewstatus", "mime") => "Mime Type Icon",
        ("assetpreviewstatus", "exif") => "Exif Thumbnail",
        ("assetpreviewstatus", "converting") => "Converting",
        ("assetpreviewstatus", "2") => "Conversions Complete",
        ("assetpreviewstatus", "3") => "Error",
        ("assetpreviewstatus", "generated") => "Generated",
        ("asseteditstatus", "1") => "Pending",
        ("asseteditstatus", "6") => "Approved",
        ("asseteditstatus", "recording") => "Recording",
        ("asseteditstatus", "rejected") => "Rejected",
        ("asseteditstatus", "7") => "Deleted",
        ("assettype", "photo") => "Photo",
        ("assettype", "video") => "Video",
        ("assettype", "audio") => "Audio",
        ("assettype", "document") => "Document",
        ("assettype", "graphic") => "Graphic",
        ("assettype", "none") => "Other",
        ("imageorientation", "1") => "Normal",
        ("imageorientation", "3") => "Rotated 180",
        ("imageorientation", "6") => "Rotated 90 CW",
        ("imageorientation", "8") => "Rotated 90 CCW",
        ("datatype", "original") => "Original",
        ("category", "index") => "All",
        _ => return None,
    };
    Some(name)
}

/// Custom asset fields an administrator added (`settings/datamanager/fields/addnew`):
/// a process-wide registry the field lookups above consult after the standard set.
/// Definitions live in the store; `ops::customfields` loads them into this registry at
/// start, after each change and periodically (other processes' changes). Definitions
/// are leaked once per distinct (id, name, kind): a handful of small values for the
/// life of the process, so `&'static` lookups stay as cheap as for standard fields.
pub mod custom {
    use super::{FieldDef, FieldKind};
    use std::collections::HashMap;
    use std::sync::RwLock;

    static REGISTRY: RwLock<Option<HashMap<String, &'static FieldDef>>> = RwLock::new(None);

    pub fn get(id: &str) -> Option<&'static FieldDef> {
        REGISTRY.read().ok()?.as_ref()?.get(id).copied()
    }

    /// Every registered custom field, by id.
    pub fn all() -> Vec<&'static FieldDef> {
        let mut v: Vec<&'static FieldDef> = REGISTRY
            .read()
            .map(|r| r.as_ref().map(|m| m.values().copied().collect()).unwrap_or_default())
            .unwrap_or_default();
        v.sort_by_key(|d| d.id);
        v
    }

    fn leak(s: &str) -> &'static str {
        Box::leak(s.to_string().into_boxed_str())
    }

    /// Registers (or redefines) a field; a standard field id is refused by the caller.
    pub fn register(id: &str, name: &str, kind: FieldKind) {
        let Ok(mut guard) = REGISTRY.write() else { return };
        let map = guard.get_or_insert_with(HashMap::new);
        if let Some(d) = map.get(id) {
            if d.name == name && d.kind == kind {
                return;
            }
        }
        let kind = match kind {
            FieldKind::List(t) => FieldKind::List(leak(t)),
            FieldKind::MultiList(t) => FieldKind::MultiList(leak(t)),
            k => k,
        };
        let def: &'static FieldDef = Box::leak(Box::new(FieldDef {
            id: leak(id),
            name: leak(name),
            kind,
            readonly: false,
            fulltext: false,
        }));
        map.insert(id.to_string(), def);
    }

    pub fn unregister(id: &str) {
        if let Ok(mut guard) = REGISTRY.write() {
            if let Some(m) = guard.as_mut() {
                m.remove(id);
            }
        }
    }

    /// The kind named by a field type of `fields/addnew` (EnterMediaDB's type names);
    /// `list` names its list table (the field id when absent).
    pub fn kind_of(type_name: &str, list: &str) -> Option<FieldKind> {
        // List tables are named for the process's life (see `register`); only a list
        // type needs one.
        let table = || -> &'static str {
            match super::ASSET_FIELDS
                .iter()
                .find_map(|d| d.kind.list_table().filter(|t| *t == list))
            {
                Some(t) => t,
                None => leak(list),
            }
        };
        Some(match type_name {
            "" | "keyword" | "string" => FieldKind::Keyword,
            "text" | "textarea" => FieldKind::Text,
            "number" | "double" | "long" | "integer" => FieldKind::Number,
            "date" => FieldKind::Date,
            "boolean" => FieldKind::Boolean,
            "list" => FieldKind::List(table()),
            "multiselect" | "multilist" => FieldKind::MultiList(table()),
            "tags" | "multitext" => FieldKind::MultiText,
            _ => return None,
        })
    }

    /// The type name of a kind, as `kind_of` reads it.
    pub fn type_name(kind: FieldKind) -> &'static str {
        match kind {
            FieldKind::Keyword => "keyword",
            FieldKind::Text => "text",
            FieldKind::Number => "number",
            FieldKind::Date => "date",
            FieldKind::Boolean => "boolean",
            FieldKind::List(_) => "list",
            FieldKind::MultiList(_) => "multiselect",
            FieldKind::MultiText => "tags",
            FieldKind::MultiLang => "multilanguage",
        }
    }

    /// Whether `showfilters` counts the field: values that are names, not prose.
    pub fn faceted(kind: FieldKind) -> bool {
        matches!(
            kind,
            FieldKind::Keyword
                | FieldKind::Boolean
                | FieldKind::List(_)
                | FieldKind::MultiList(_)
                | FieldKind::MultiText
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn types_map_to_kinds_and_back() {
            for t in [
                "keyword",
                "text",
                "number",
                "date",
                "boolean",
                "list",
                "multiselect",
                "tags",
            ] {
                let k = kind_of(t, "things").unwrap();
                assert_eq!(type_name(k), t);
            }
            assert_eq!(kind_of("", "x"), Some(FieldKind::Keyword));
            assert_eq!(kind_of("list", "purpose"), Some(FieldKind::List("purpose")));
            assert!(kind_of("hologram", "x").is_none());
            assert!(faceted(FieldKind::Keyword) && !faceted(FieldKind::Text) && !faceted(FieldKind::Number));
        }

        #[test]
        fn registered_fields_are_found_until_unregistered() {
            register("unittestfield", "Unit Test", FieldKind::Number);
            let d = super::super::asset_field("unittestfield").unwrap();
            assert_eq!((d.name, d.kind, d.readonly), ("Unit Test", FieldKind::Number, false));
            register("unittestfield", "Renamed", FieldKind::Keyword);
            assert_eq!(get("unittestfield").unwrap().name, "Renamed");
            unregister("unittestfield");
            assert!(super::super::asset_field("unittestfield").is_none());
        }
    }
}
