//! `lists/export/{table}` and `module/{module}/export`: a table's matches as CSV
//! (RFC 4180), one row per record, a header of every field met, in order of appearance.
//! Generic tables from the store; the endpoint catalog and the presets from memory; users
//! and groups as their settings calls show them (users never with a secret).

use super::error::{ApiError, ApiResult};
use super::Call;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

pub async fn csv(call: &mut Call, table: &str) -> ApiResult<Response> {
    let memory = match table {
        "asset" => {
            return Err(ApiError::bad(
                "assets are exported by settings/datamanager/table/export/asset.csv",
            ))
        }
        "user" => return super::settings::user_export(call).await,
        "group" => {
            let groups: Vec<Map<String, Value>> = call
                .state
                .store
                .list_groups()
                .await?
                .into_iter()
                .map(|g| {
                    let mut m = Map::new();
                    m.insert("id".into(), Value::String(g.id));
                    m.insert("name".into(), Value::String(g.name));
                    m.insert("permissions".into(), Value::String(g.permissions.join("|")));
                    m
                })
                .collect();
            return csv_response(table, to_csv(&groups));
        }
        "endpoint" => Some(super::ui::endpoints().clone()),
        "docsection" => Some(super::ui::docsections().clone()),
        "convertpreset" => Some(super::media::presets()),
        _ => None,
    };
    if let Some(records) = memory {
        let matching = super::ui::all_matching(call, table, records)?;
        return csv_response(table, to_csv(&matching));
    }
    let body = call.params.merged();
    let records = crate::ops::tables::all_records(call.state.store.as_ref(), &call.catalog, table, &body).await?;
    csv_response(table, to_csv(&records))
}

/// A CSV answer, as a download named `{name}.csv`.
pub fn csv_response(name: &str, text: String) -> ApiResult<Response> {
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
            (header::CACHE_CONTROL, "private, no-cache".to_string()),
        ],
        text,
    )
        .into_response())
}

/// The records as CSV: the columns are every field met, `id` first.
pub fn to_csv(records: &[Map<String, Value>]) -> String {
    let mut columns: Vec<String> = vec!["id".into()];
    for r in records {
        for k in r.keys() {
            if !columns.iter().any(|c| c == k) {
                columns.push(k.clone());
            }
        }
    }
    let mut out = String::new();
    push_row(&mut out, columns.iter().map(String::as_str));
    for r in records {
        let cells: Vec<String> = columns.iter().map(|c| cell(r.get(c))).collect();
        push_row(&mut out, cells.iter().map(String::as_str));
    }
    out
}

/// One value as text: several values joined with `|` (EnterMediaDB's multi-value form),
/// a list value by its id.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items.iter().map(|i| cell(Some(i))).collect::<Vec<_>>().join("|"),
        Some(Value::Object(o)) => match o.get("id") {
            Some(id) => cell(Some(id)),
            None => Value::Object(o.clone()).to_string(),
        },
        Some(other) => other.to_string(),
    }
}

pub fn push_row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>) {
    for (i, c) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        // A cell a spreadsheet would run as a formula is kept as text.
        let guarded = if c.starts_with(['=', '+', '-', '@']) {
            format!("'{c}")
        } else {
            c.to_string()
        };
        if guarded.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&guarded.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&guarded);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_joins_and_guards() {
        let recs: Vec<Map<String, Value>> = vec![
            json!({"id": "a", "name": "Sales, \"EU\""}).as_object().unwrap().clone(),
            json!({"id": "b", "tags": ["x", "y"], "kind": {"id": "k1", "name": "K"}, "f": "=1+1"})
                .as_object()
                .unwrap()
                .clone(),
        ];
        assert_eq!(
            to_csv(&recs),
            "id,name,tags,kind,f\r\na,\"Sales, \"\"EU\"\"\",,,\r\nb,,x|y,k1,'=1+1\r\n"
        );
    }
}
