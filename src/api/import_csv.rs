//! `settings/datamanager/table/import` (EMDB's `table/import/import`): a CSV file, as
//! `table/export/{searchtype}.csv` writes it, read back into a table. The round trip an
//! administrator makes in a spreadsheet: export, edit, import. `settings/users/import`
//! does the same for users (see [`import_users`]).
//!
//! Assets are updated by `id` through the same path as a metadata edit (validation,
//! audit entry, reindex), only where a value changed; the read-only columns an export
//! holds (`sourcepath`, file facts, statuses) are skipped. Records of a generic table are
//! created or updated by `id`. Each row stands alone: a bad row is reported with its
//! number and the rest go on. A header naming no field refuses the whole file first.

use super::assets::{open_multipart, read_small, take_field};
use super::endpoint::Access;
use super::error::{ApiError, ApiResult};
use super::{ok_json, session, Call};
use crate::auth::Permission;
use crate::ops::OpsError;
use axum::body::Body;
use axum::response::Response;
use mediadb_formats::multipart;
use serde_json::{json, Map, Value};

/// The largest CSV file read (it is held in memory while the rows are applied).
const MAX_CSV_BYTES: usize = 64 << 20;

/// `searchtype` (a form field, `jsonrequest` or the query string) and one CSV file.
pub async fn import(call: &mut Call, body: Option<Body>) -> ApiResult<Response> {
    let Some(body) = body else {
        return Err(ApiError::bad(
            "table/import takes multipart/form-data: the field searchtype and a CSV file, as table/export writes it",
        ));
    };
    let csv = read_upload(call, body, Access::Requires(Permission::ManageList)).await?;
    let table = call
        .params
        .get("searchtype")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad("searchtype is required, e.g. searchtype=asset"))?;
    let csv = csv.ok_or_else(|| ApiError::bad("table/import needs a CSV file in the multipart body"))?;
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(csv.as_slice());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ApiError::bad(format!("the CSV header cannot be read: {e}")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let Some(id_col) = header.iter().position(|h| h == "id") else {
        return Err(ApiError::bad(
            "the CSV file needs an id column (as table/export writes it)",
        ));
    };
    if table == "asset" {
        let unknown: Vec<&str> = header
            .iter()
            .map(String::as_str)
            .filter(|h| *h != "sourcepath" && crate::domain::fields::asset_field(h).is_none())
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::bad(format!(
                "no asset field is named {}; nothing was imported (add custom fields with fields/addnew first)",
                unknown.join(", ")
            )));
        }
    } else {
        super::records::writable(&table)?;
        if matches!(
            table.as_str(),
            "endpoint" | "docsection" | "convertpreset" | "user" | "group"
        ) {
            return Err(ApiError::bad(format!("the \"{table}\" table cannot be imported here")));
        }
    }
    let mut report = Report::default();
    for (n, row) in reader.records().enumerate() {
        // Row 1 is the header.
        let line = n + 2;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                report.error(line, "", format!("cannot be read: {e}"));
                continue;
            }
        };
        report.rows += 1;
        let id = row.get(id_col).unwrap_or("").trim().to_string();
        let values: Map<String, Value> = header
            .iter()
            .zip(row.iter())
            .filter(|(h, _)| h.as_str() != "id" && h.as_str() != "sourcepath")
            .map(|(h, v)| (h.clone(), cell_value(v)))
            .collect();
        if table == "asset" {
            import_asset(call, &mut report, line, &id, &values).await?;
        } else {
            import_record(call, &table, &mut report, line, id, values).await?;
        }
    }
    Ok(ok_json(json!({
        "response": {
            "status": "ok", "searchtype": table, "rows": report.rows.to_string(),
            "rowsedited": report.edited.to_string(), "created": report.created.to_string(),
            "unchanged": report.unchanged.to_string(), "notfound": report.notfound,
            "errors": report.errors,
        }
    })))
}

#[derive(Default)]
struct Report {
    rows: usize,
    edited: usize,
    created: usize,
    unchanged: usize,
    notfound: Vec<String>,
    errors: Vec<Value>,
}

impl Report {
    fn error(&mut self, row: usize, id: &str, error: String) {
        self.errors.push(json!({"row": row, "id": id, "error": error}));
    }
}

/// A cell as the export wrote it: the `'` that kept a formula from running is taken off,
/// and a multi-language value (written as its JSON object) is read back as one.
fn cell_value(cell: &str) -> Value {
    let text = match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => cell,
    };
    if text.starts_with('{') {
        if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) {
            return Value::Object(o);
        }
    }
    Value::String(text.to_string())
}

async fn import_asset(
    call: &Call,
    report: &mut Report,
    line: usize,
    id: &str,
    values: &Map<String, Value>,
) -> ApiResult<()> {
    if id.is_empty() {
        report.error(line, id, "no id: assets are imported by id".into());
        return Ok(());
    }
    match crate::ops::assets::update(&call.ops(), id, values).await {
        Ok((_, changes)) if changes.changed.is_empty() => report.unchanged += 1,
        Ok(_) => report.edited += 1,
        Err(OpsError::NotFound(_)) => report.notfound.push(id.to_string()),
        Err(OpsError::Invalid(e)) => report.error(line, id, e.to_string()),
        Err(OpsError::Conflict(e)) => report.error(line, id, e),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

async fn import_record(
    call: &Call,
    table: &str,
    report: &mut Report,
    line: usize,
    id: String,
    values: Map<String, Value>,
) -> ApiResult<()> {
    let store = call.state.store.as_ref();
    let id = if id.is_empty() {
        crate::ops::assets::new_asset_id()
    } else {
        if let Err(e) = crate::ops::assets::validate_id(&id) {
            report.error(line, &id, e.to_string());
            return Ok(());
        }
        id
    };
    let existing = store.get_record(&call.catalog, table, &id).await?;
    let mut rec = existing.clone().unwrap_or_default();
    rec.insert("id".into(), json!(id));
    for (k, v) in values {
        match v {
            Value::String(s) if s.is_empty() => {
                rec.remove(&k);
            }
            v => {
                rec.insert(k, v);
            }
        }
    }
    if existing.as_ref() == Some(&rec) {
        report.unchanged += 1;
        return Ok(());
    }
    store.put_record(&call.catalog, table, &id, &rec).await?;
    if existing.is_some() {
        report.edited += 1;
    } else {
        report.created += 1;
    }
    Ok(())
}

/// The form fields into the call's parameters, the CSV file into memory. The caller is
/// authorised before a byte of the file is read (its key may come in a form field).
pub(super) async fn read_upload(call: &mut Call, body: Body, access: Access) -> ApiResult<Option<Vec<u8>>> {
    let mut mp = open_multipart(call, body)?;
    let limit = call.state.config.max_body_bytes;
    let broken = |e: multer::Error| ApiError::bad(format!("the multipart body is broken: {e}"));
    let mut file = None;
    while let Some(mut field) = mp.next_field().await.map_err(broken)? {
        let name = field.name().unwrap_or("").to_string();
        let is_json = multipart::is_json_part(&field);
        if field.file_name().is_some() && !is_json {
            if file.is_some() {
                // Only the first file is read; the rest are drained.
                while field.chunk().await.map_err(broken)?.is_some() {}
                continue;
            }
            session::authorize(call, access).await?;
            file = Some(read_small(&mut field, MAX_CSV_BYTES).await?);
        } else {
            let bytes = read_small(&mut field, limit).await?;
            take_field(call, name, is_json, bytes)?;
        }
    }
    session::authorize(call, access).await?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_back_what_the_export_wrote() {
        // The export's formula guard comes off; a plain leading quote stays.
        assert_eq!(cell_value("'=1+1"), json!("=1+1"));
        assert_eq!(cell_value("'-5"), json!("-5"));
        assert_eq!(cell_value("'quoted'"), json!("'quoted'"));
        // A multi-language value is its JSON object again; other braces are text.
        assert_eq!(
            cell_value(r#"{"en":"Hi","fr":"Salut"}"#),
            json!({"en": "Hi", "fr": "Salut"})
        );
        assert_eq!(cell_value("{not json"), json!("{not json"));
        assert_eq!(cell_value(""), json!(""));
        assert_eq!(cell_value("a|b"), json!("a|b"));
    }
}
