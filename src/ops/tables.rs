//! Reading a whole generic table (or every match of a search over it), page by page.

use super::OpsResult;
use crate::domain::fields::record_field_kind;
use crate::domain::query::{self, FieldInfo};
use crate::store::MetaStore;
use serde_json::{json, Map, Value};

/// Records read per store query.
const PAGE: u32 = 1000;

/// Every record of `table` that the search `body` matches (paging in `body` ignored).
pub async fn all_records(
    store: &dyn MetaStore,
    catalog: &str,
    table: &str,
    body: &Map<String, Value>,
) -> OpsResult<Vec<Map<String, Value>>> {
    let resolve = |f: &str| -> Option<FieldInfo> {
        Some(FieldInfo {
            kind: record_field_kind(table, f),
            name: "",
        })
    };
    let mut body = body.clone();
    let mut out = Vec::new();
    for page in 1.. {
        body.insert("page".into(), json!(page.to_string()));
        body.insert("hitsperpage".into(), json!(PAGE.to_string()));
        let req = query::parse_search(&body, table, &resolve)?;
        let found = store.search_records(catalog, table, &req).await?;
        let got = found.hits.len();
        out.extend(found.hits);
        if got < PAGE as usize || out.len() as u64 >= found.total {
            break;
        }
    }
    Ok(out)
}
