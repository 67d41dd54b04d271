//! Categories: a tree of named paths (`Marketing/2024`) held as records of the `category`
//! table, assets joined to them by `category-exact` (the categories given) and `category`
//! (those plus every ancestor and the root `index`, kept on write so search needs no join).

use super::{OpsError, OpsResult};
use crate::domain::Invalid;
use crate::store::MetaStore;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const TABLE: &str = "category";
pub const ROOT: &str = "index";

/// The id of the category at a path: readable, and unique by a short hash of the path.
pub fn id_for(path: &str) -> String {
    let slug: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(60)
        .collect();
    let hash = hex::encode(Sha256::digest(path.as_bytes()));
    format!("{slug}_{}", &hash[..6])
}

/// Splits and cleans a category path; empty segments are dropped.
pub fn segments(path: &str) -> Result<Vec<String>, Invalid> {
    let parts: Vec<String> = path
        .split('/')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if parts.is_empty() {
        return Err(Invalid::new("categorypath is empty"));
    }
    if parts.iter().any(|p| p.chars().any(char::is_control) || p.len() > 200) {
        return Err(Invalid::new(
            "categorypath has a control character or a name over 200 bytes",
        ));
    }
    Ok(parts)
}

/// Creates the categories along `path` as needed; returns the ids from the top down.
pub async fn ensure_path(store: &dyn MetaStore, catalog: &str, path: &str) -> OpsResult<Vec<String>> {
    let parts = segments(path)?;
    let mut ids = Vec::new();
    let mut parent = ROOT.to_string();
    for i in 0..parts.len() {
        let full = parts[..=i].join("/");
        let id = id_for(&full);
        if store.get_record(catalog, TABLE, &id).await?.is_none() {
            let mut data = Map::new();
            data.insert("id".into(), json!(id));
            data.insert("name".into(), json!(parts[i]));
            data.insert("parentid".into(), json!(parent));
            data.insert("categorypath".into(), json!(full));
            store.put_record(catalog, TABLE, &id, &data).await?;
        }
        parent = id.clone();
        ids.push(id);
    }
    Ok(ids)
}

/// Turns `categorypath` (a string or a list of strings) into `category-exact` and
/// `category` values.
pub async fn assign(
    store: &dyn MetaStore,
    catalog: &str,
    categorypath: &Value,
) -> OpsResult<(Vec<String>, Vec<String>)> {
    let paths: Vec<String> = match categorypath {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Invalid::new("categorypath entries must be strings"))
            })
            .collect::<Result<_, _>>()?,
        Value::Null => Vec::new(),
        _ => {
            return Err(OpsError::Invalid(Invalid::new(
                "categorypath must be a path or a list of paths",
            )))
        }
    };
    let (mut exact, mut all) = (Vec::new(), vec![ROOT.to_string()]);
    for p in paths {
        let ids = ensure_path(store, catalog, &p).await?;
        if let Some(leaf) = ids.last() {
            if !exact.contains(leaf) {
                exact.push(leaf.clone());
            }
        }
        for id in ids {
            if !all.contains(&id) {
                all.push(id);
            }
        }
    }
    Ok((exact, all))
}

/// The tree under `root` as EnterMediaDB's `module/category/tree` renders it.
pub async fn tree(store: &dyn MetaStore, catalog: &str, root: &str) -> OpsResult<Value> {
    let req = crate::domain::query::SearchRequest {
        query: crate::domain::query::Query::All,
        sort: vec![crate::domain::query::SortKey {
            field: "name".into(),
            descending: false,
        }],
        page: 1,
        hits_per_page: u32::MAX / 2,
        show_filters: false,
        echo_terms: Vec::new(),
        friendly: String::new(),
    };
    let all = store.search_records(catalog, TABLE, &req).await?.hits;
    fn build(all: &[Map<String, Value>], id: &str, name: &str, path: &str, depth: usize) -> Value {
        let mut node = json!({"id": id, "name": name, "categorypath": path});
        if depth < 64 {
            let children: Vec<Value> = all
                .iter()
                .filter(|c| c.get("parentid").and_then(Value::as_str) == Some(id))
                .map(|c| {
                    let cid = c.get("id").and_then(Value::as_str).unwrap_or("");
                    let cname = c.get("name").and_then(Value::as_str).unwrap_or("");
                    let cpath = c.get("categorypath").and_then(Value::as_str).unwrap_or("");
                    build(all, cid, cname, cpath, depth + 1)
                })
                .collect();
            if !children.is_empty() {
                node["children"] = Value::Array(children);
            }
        }
        node
    }
    if root == ROOT {
        return Ok(build(&all, ROOT, "All", "", 0));
    }
    let node = all
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(root))
        .ok_or_else(|| OpsError::NotFound(root.to_string()))?;
    let name = node.get("name").and_then(Value::as_str).unwrap_or("");
    let path = node.get("categorypath").and_then(Value::as_str).unwrap_or("");
    Ok(build(&all, root, name, path, 0))
}

/// `category` for a set of `category-exact` ids: each with its ancestors, and the root.
pub async fn with_ancestors(store: &dyn MetaStore, catalog: &str, exact: &[String]) -> OpsResult<Vec<String>> {
    let mut all = vec![ROOT.to_string()];
    for id in exact {
        // Walk up to the root (at most 64 levels, whatever the data says), then list the
        // chain from the top down.
        let mut chain = Vec::new();
        let mut cur = Some(id.clone());
        while let Some(c) = cur.take().filter(|c| c != ROOT && chain.len() < 64) {
            cur = store
                .get_record(catalog, TABLE, &c)
                .await?
                .and_then(|r| r.get("parentid").and_then(Value::as_str).map(str::to_string));
            chain.push(c);
        }
        for c in chain.into_iter().rev() {
            if !all.contains(&c) {
                all.push(c);
            }
        }
    }
    Ok(all)
}

/// Applies `categorypath` (added to the asset's categories) and keeps `category` in step
/// with `category-exact`.
pub async fn apply(
    store: &dyn MetaStore,
    catalog: &str,
    fields: &mut Map<String, Value>,
    categorypath: Option<&Value>,
) -> OpsResult<()> {
    let mut exact: Vec<String> = fields
        .get("category-exact")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if let Some(cp) = categorypath {
        let (leaves, _) = assign(store, catalog, cp).await?;
        for l in leaves {
            if !exact.contains(&l) {
                exact.push(l);
            }
        }
    }
    if exact.is_empty() {
        fields.remove("category-exact");
        fields.remove("category");
        return Ok(());
    }
    let all = with_ancestors(store, catalog, &exact).await?;
    fields.insert("category-exact".into(), json!(exact));
    fields.insert("category".into(), json!(all));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_readable_and_distinct() {
        assert!(id_for("Marketing/2024").starts_with("Marketing_2024_"));
        assert_ne!(id_for("a/b"), id_for("a_b"));
        assert_eq!(segments(" a //b/ ").unwrap(), ["a", "b"]);
        assert!(segments("//").is_err());
    }
}
