//! `settings/users/*` and `settings/groups/*` (wire §9.6): users, their groups and keys,
//! and groups with their permissions.

use super::error::{ApiError, ApiResult};
use super::{ok_json, Call};
use crate::auth::permissions;
use crate::domain::fields::FieldKind;
use crate::domain::query::{self, FieldInfo};
use crate::domain::query_eval;
use crate::ops::users::{self, KeyPolicy};
use crate::store::{Group, User};
use axum::response::Response;
use serde_json::{json, Map, Value};

fn policy(call: &Call) -> KeyPolicy {
    KeyPolicy {
        legacy_keys: call.state.config.legacy_emdb_keys,
        legacy_secret: call.state.config.legacy_emdb_secret.clone(),
    }
}

async fn user_json(call: &Call, u: &User) -> ApiResult<Map<String, Value>> {
    let all = call.state.store.list_groups().await?;
    user_json_with(call, u, &all).await
}

/// A user as rendered, with the group table already at hand (searches read it once).
async fn user_json_with(call: &Call, u: &User, all: &[Group]) -> ApiResult<Map<String, Value>> {
    let groups = call.state.store.user_groups(&u.id).await?;
    let groups: Vec<Value> = groups
        .iter()
        .map(|g| {
            let name = all
                .iter()
                .find(|x| &x.id == g)
                .map(|x| x.name.clone())
                .unwrap_or_default();
            json!({"id": g, "name": name})
        })
        .collect();
    let v = json!({
        "id": u.id, "firstname": u.firstname, "lastname": u.lastname, "email": u.email,
        "screenname": u.screenname, "enabled": u.enabled.to_string(), "groups": groups
    });
    Ok(v.as_object().cloned().unwrap_or_default())
}

fn group_json(g: &Group) -> Map<String, Value> {
    json!({"id": g.id, "name": g.name, "permissions": g.permissions})
        .as_object()
        .cloned()
        .unwrap_or_default()
}

fn text_param(call: &Call, name: &str) -> Option<String> {
    call.params.get(name)
}

fn required(call: &Call, name: &str) -> ApiResult<String> {
    text_param(call, name).ok_or_else(|| ApiError::bad(format!("\"{name}\" is required")))
}

/// A list parameter: a JSON array, or `a|b` / `a,b` text.
fn list_param(call: &Call, name: &str) -> ApiResult<Option<Vec<String>>> {
    Ok(match call.params.get_value(name) {
        None => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Object(o) => o
                        .get("id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| ApiError::bad(format!("\"{name}\" entries need an id"))),
                    other => Err(ApiError::bad(format!(
                        "\"{name}\" entries must be strings, not {other}"
                    ))),
                })
                .collect::<ApiResult<_>>()?,
        ),
        Some(Value::String(s)) => Some(
            s.split(['|', ','])
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        Some(other) => return Err(ApiError::bad(format!("\"{name}\" must be a list, not {other}"))),
    })
}

fn bool_param(call: &Call, name: &str) -> ApiResult<Option<bool>> {
    match text_param(call, name).map(|s| s.to_ascii_lowercase()) {
        None => Ok(None),
        Some(s) if s == "true" => Ok(Some(true)),
        Some(s) if s == "false" => Ok(Some(false)),
        Some(s) => Err(ApiError::bad(format!("\"{name}\" takes true or false, not \"{s}\""))),
    }
}

fn apply_profile(call: &Call, u: &mut User) {
    for (field, slot) in [
        ("firstname", &mut u.firstname),
        ("lastname", &mut u.lastname),
        ("email", &mut u.email),
        ("screenname", &mut u.screenname),
    ] {
        if let Some(v) = call.params.get_value(field) {
            *slot = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        }
    }
}

fn is_admin(call: &Call) -> bool {
    call.caller
        .as_ref()
        .is_some_and(|c| c.has(crate::auth::Permission::ManageUsers))
}

pub async fn user_create(call: &mut Call) -> ApiResult<Response> {
    let id = required(call, "id")?;
    let password = required(call, "password")?;
    let mut user = User::new(&id, String::new());
    apply_profile(call, &mut user);
    if let Some(enabled) = bool_param(call, "enabled")? {
        user.enabled = enabled;
    }
    let mut groups = list_param(call, "groups")?.unwrap_or_default();
    if let Some(g) = text_param(call, "groupid") {
        groups.push(g);
    }
    if groups.is_empty() {
        groups.push(permissions::USERS.to_string());
    }
    let user = users::create_user(&call.ops(), user, &password, &groups, &policy(call)).await?;
    let data = user_json(call, &user).await?;
    Ok(ok_json(
        json!({"response": {"status": "ok", "id": user.id}, "data": data}),
    ))
}

async fn load_user(call: &Call, id: &str) -> ApiResult<User> {
    call.state
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::not_found(id))
}

pub async fn user_get(call: &mut Call, id: &str) -> ApiResult<Response> {
    let u = load_user(call, id).await?;
    let data = user_json(call, &u).await?;
    Ok(ok_json(json!({"response": {"status": "ok", "id": u.id}, "data": data})))
}

/// Updates a profile; a new `password` revokes every key of the user. Only user
/// managers may change `enabled` or `groups`.
pub async fn user_update(call: &mut Call, id: &str) -> ApiResult<Response> {
    let mut u = load_user(call, id).await?;
    apply_profile(call, &mut u);
    let mut disabling = false;
    if let Some(enabled) = bool_param(call, "enabled")? {
        if !is_admin(call) {
            return Err(ApiError::Forbidden(
                "only user managers may enable or disable users".into(),
            ));
        }
        disabling = u.enabled && !enabled;
        u.enabled = enabled;
    }
    let password = text_param(call, "password");
    if let Some(pw) = &password {
        users::validate_password(pw)?;
        users::set_password(&mut u, pw, &policy(call));
    }
    let groups = list_param(call, "groups")?;
    if groups.is_some() && !is_admin(call) {
        return Err(ApiError::Forbidden("only user managers may change groups".into()));
    }
    let revoked = users::update_user(&call.ops(), &u, password.is_some(), disabling).await?;
    if let Some(groups) = groups {
        let current = call.state.store.user_groups(id).await?;
        for g in &groups {
            if !current.contains(g) {
                users::set_membership(&call.ops(), id, g, true).await?;
            }
        }
        for g in &current {
            if !groups.contains(g) {
                users::set_membership(&call.ops(), id, g, false).await?;
            }
        }
    }
    let data = user_json(call, &u).await?;
    Ok(ok_json(json!({
        "response": {"status": "ok", "id": u.id, "keysrevoked": revoked.to_string()}, "data": data
    })))
}

pub async fn user_delete(call: &mut Call, id: &str) -> ApiResult<Response> {
    users::delete_user(&call.ops(), id).await?;
    Ok(ok_json(json!({"response": {"status": "ok", "id": id}})))
}

pub async fn user_group(call: &mut Call, add: bool) -> ApiResult<Response> {
    let id = required(call, "id")?;
    let group = required(call, "groupid")?;
    users::set_membership(&call.ops(), &id, &group, add).await?;
    let u = load_user(call, &id).await?;
    let data = user_json(call, &u).await?;
    Ok(ok_json(json!({"response": {"status": "ok", "id": id}, "data": data})))
}

fn user_field(f: &str) -> FieldKind {
    match f {
        "firstname" | "lastname" | "screenname" => FieldKind::Text,
        "groups" => FieldKind::MultiList("group"),
        "enabled" => FieldKind::Boolean,
        _ => FieldKind::Keyword,
    }
}

fn group_field(f: &str) -> FieldKind {
    match f {
        "name" => FieldKind::Text,
        "permissions" => FieldKind::MultiText,
        _ => FieldKind::Keyword,
    }
}

fn search_answer(searchtype: &str, req: &query::SearchRequest, total: u64, hits: Vec<Map<String, Value>>) -> Response {
    let pages = total.div_ceil(req.hits_per_page as u64);
    ok_json(json!({
        "response": {
            "status": "ok", "totalhits": total, "searchtype": searchtype, "hitsperpage": req.hits_per_page,
            "page": req.page, "pages": pages, "query": {"friendly": req.friendly, "search": req.friendly}
        },
        "results": hits
    }))
}

pub async fn user_search(call: &mut Call) -> ApiResult<Response> {
    let body = call.params.merged();
    let resolve = |f: &str| {
        Some(FieldInfo {
            kind: user_field(f),
            name: "",
        })
    };
    let req = query::parse_search(&body, "user", &resolve)?;
    let all = call.state.store.list_groups().await?;
    let mut records = Vec::new();
    for u in call.state.store.list_users().await? {
        records.push(user_json_with(call, &u, &all).await?);
    }
    let (total, hits) = query_eval::search(records, &req, &user_field);
    Ok(search_answer("user", &req, total, hits))
}

pub async fn user_keys(call: &mut Call) -> ApiResult<Response> {
    let id = required(call, "id")?;
    load_user(call, &id).await?;
    let keys = call.state.store.list_keys(&id).await?;
    let results: Vec<Value> = keys
        .iter()
        .map(|k| json!({"id": k.id, "created": k.created, "expires": k.expires, "revoked": k.revoked}))
        .collect();
    Ok(ok_json(
        json!({"response": {"status": "ok", "totalhits": results.len(), "id": id}, "results": results}),
    ))
}

/// Revokes one key (`keyid`, as `settings/users/keys` lists it) or all of a user's keys.
pub async fn user_revoke_keys(call: &mut Call) -> ApiResult<Response> {
    let id = required(call, "id")?;
    load_user(call, &id).await?;
    let n = match text_param(call, "keyid") {
        Some(k) => {
            if !call.state.store.revoke_key_by_id(&id, &k).await? {
                return Err(ApiError::not_found(k));
            }
            1
        }
        None => call.state.store.revoke_user_keys(&id).await?,
    };
    let mut e = call.ops().audit("keyrevoke", None);
    e.details = json!({"userid": id, "count": n});
    crate::ops::audit::record(call.state.store.as_ref(), e).await;
    Ok(ok_json(
        json!({"response": {"status": "ok", "rowsedited": n.to_string()}}),
    ))
}

fn group_from_params(call: &Call, id: &str, base: Option<Group>) -> ApiResult<Group> {
    let mut g = base.unwrap_or(Group {
        id: id.to_string(),
        name: id.to_string(),
        permissions: Vec::new(),
    });
    if let Some(name) = text_param(call, "name") {
        g.name = name;
    }
    if let Some(perms) = list_param(call, "permissions")? {
        g.permissions = perms;
    }
    Ok(g)
}

pub async fn group_create(call: &mut Call) -> ApiResult<Response> {
    let id = required(call, "id")?;
    let g = group_from_params(call, &id, None)?;
    users::put_group(&call.ops(), &g, true).await?;
    Ok(ok_json(
        json!({"response": {"status": "ok", "id": g.id}, "data": group_json(&g)}),
    ))
}

pub async fn group_get(call: &mut Call, id: &str) -> ApiResult<Response> {
    let g = call
        .state
        .store
        .get_group(id)
        .await?
        .ok_or_else(|| ApiError::not_found(id))?;
    Ok(ok_json(
        json!({"response": {"status": "ok", "id": g.id}, "data": group_json(&g)}),
    ))
}

pub async fn group_update(call: &mut Call, id: &str) -> ApiResult<Response> {
    let existing = call
        .state
        .store
        .get_group(id)
        .await?
        .ok_or_else(|| ApiError::not_found(id))?;
    let g = group_from_params(call, id, Some(existing))?;
    users::put_group(&call.ops(), &g, false).await?;
    Ok(ok_json(
        json!({"response": {"status": "ok", "id": g.id}, "data": group_json(&g)}),
    ))
}

pub async fn group_delete(call: &mut Call, id: &str) -> ApiResult<Response> {
    users::delete_group(&call.ops(), id).await?;
    Ok(ok_json(json!({"response": {"status": "ok", "id": id}})))
}

pub async fn group_search(call: &mut Call) -> ApiResult<Response> {
    let body = call.params.merged();
    let resolve = |f: &str| {
        Some(FieldInfo {
            kind: group_field(f),
            name: "",
        })
    };
    let req = query::parse_search(&body, "group", &resolve)?;
    let records: Vec<Map<String, Value>> = call.state.store.list_groups().await?.iter().map(group_json).collect();
    let (total, hits) = query_eval::search(records, &req, &group_field);
    Ok(search_answer("group", &req, total, hits))
}

/// `settings/users/export/{name}.csv`: every user as CSV (`id`, the profile, `enabled`,
/// `groups` as ids joined with `|`); never a password or key.
pub async fn user_export(call: &mut Call) -> ApiResult<Response> {
    let users = call.state.store.list_users().await?;
    let mut records = Vec::with_capacity(users.len());
    for u in &users {
        let groups = call.state.store.user_groups(&u.id).await?;
        let rec = json!({
            "id": u.id, "firstname": u.firstname, "lastname": u.lastname, "email": u.email,
            "screenname": u.screenname, "enabled": u.enabled.to_string(), "groups": groups.join("|")
        });
        records.push(rec.as_object().cloned().unwrap_or_default());
    }
    super::export::csv_response("user", super::export::to_csv(&records))
}

/// `settings/users/import` (EMDB's `import/import`): a CSV of users, as the export writes
/// it, plus a `password` column. A new user needs a password (and gets `users` when no
/// group is named); an existing one gets the columns the file has: a non-empty
/// `password` replaces theirs (revoking their keys), a non-empty `groups` replaces their
/// memberships. Row by row, with a report as `table/import`'s.
pub async fn user_import(call: &mut Call, body: Option<axum::body::Body>) -> ApiResult<Response> {
    let Some(body) = body else {
        return Err(ApiError::bad(
            "users/import takes multipart/form-data: a CSV file with an id column (and password for new users)",
        ));
    };
    let access = super::endpoint::Access::Requires(crate::auth::Permission::ManageUsers);
    let csv = super::import_csv::read_upload(call, body, access)
        .await?
        .ok_or_else(|| ApiError::bad("users/import needs a CSV file in the multipart body"))?;
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_slice());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ApiError::bad(format!("the CSV header cannot be read: {e}")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    const COLUMNS: [&str; 8] = [
        "id",
        "firstname",
        "lastname",
        "email",
        "screenname",
        "enabled",
        "groups",
        "password",
    ];
    if !header.iter().any(|h| h == "id") {
        return Err(ApiError::bad("the CSV file needs an id column"));
    }
    let unknown: Vec<&str> = header
        .iter()
        .map(String::as_str)
        .filter(|h| !COLUMNS.contains(h))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::bad(format!(
            "unknown column(s) {}; a user file has {}",
            unknown.join(", "),
            COLUMNS.join(", ")
        )));
    }
    let (mut rows, mut created, mut edited, mut unchanged) = (0usize, 0usize, 0usize, 0usize);
    let mut errors = Vec::new();
    for (n, row) in reader.records().enumerate() {
        let line = n + 2;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                errors.push(json!({"row": line, "id": "", "error": format!("cannot be read: {e}")}));
                continue;
            }
        };
        rows += 1;
        let cell = |name: &str| -> Option<String> {
            header
                .iter()
                .position(|h| h == name)
                .and_then(|i| row.get(i))
                .map(|v| v.trim().to_string())
        };
        let id = cell("id").unwrap_or_default();
        match import_user_row(call, &id, &cell).await {
            Ok(UserRow::Created) => created += 1,
            Ok(UserRow::Edited) => edited += 1,
            Ok(UserRow::Unchanged) => unchanged += 1,
            Err(ApiError::Internal(e)) => return Err(ApiError::Internal(e)),
            Err(e) => errors.push(json!({"row": line, "id": id, "error": e.to_string()})),
        }
    }
    Ok(ok_json(json!({
        "response": {
            "status": "ok", "searchtype": "user", "rows": rows.to_string(),
            "created": created.to_string(), "rowsedited": edited.to_string(),
            "unchanged": unchanged.to_string(), "errors": errors,
        }
    })))
}

enum UserRow {
    Created,
    Edited,
    Unchanged,
}

async fn import_user_row(call: &Call, id: &str, cell: &(dyn Fn(&str) -> Option<String> + Sync)) -> ApiResult<UserRow> {
    if id.is_empty() {
        return Err(ApiError::bad("no id"));
    }
    let enabled = match cell("enabled").map(|s| s.to_ascii_lowercase()) {
        None => None,
        Some(s) if s.is_empty() => None,
        Some(s) if s == "true" => Some(true),
        Some(s) if s == "false" => Some(false),
        Some(s) => return Err(ApiError::bad(format!("enabled takes true or false, not \"{s}\""))),
    };
    let groups: Option<Vec<String>> = cell("groups").filter(|g| !g.is_empty()).map(|g| {
        g.split(['|', ','])
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    });
    let password = cell("password").filter(|p| !p.is_empty());
    let profile = |u: &mut User| -> bool {
        let mut changed = false;
        for (field, slot) in [
            ("firstname", &mut u.firstname),
            ("lastname", &mut u.lastname),
            ("email", &mut u.email),
            ("screenname", &mut u.screenname),
        ] {
            if let Some(v) = cell(field) {
                if *slot != v {
                    *slot = v;
                    changed = true;
                }
            }
        }
        changed
    };
    let Some(mut u) = call.state.store.get_user(id).await? else {
        let password = password.ok_or_else(|| ApiError::bad("a new user needs a password"))?;
        let mut user = User::new(id, String::new());
        profile(&mut user);
        if let Some(e) = enabled {
            user.enabled = e;
        }
        let groups = groups.unwrap_or_else(|| vec![permissions::USERS.to_string()]);
        users::create_user(&call.ops(), user, &password, &groups, &policy(call)).await?;
        return Ok(UserRow::Created);
    };
    let mut changed = profile(&mut u);
    let mut disabling = false;
    if let Some(e) = enabled {
        if u.enabled != e {
            disabling = u.enabled && !e;
            u.enabled = e;
            changed = true;
        }
    }
    if let Some(pw) = &password {
        users::validate_password(pw)?;
        users::set_password(&mut u, pw, &policy(call));
        changed = true;
    }
    if changed {
        users::update_user(&call.ops(), &u, password.is_some(), disabling).await?;
    }
    if let Some(groups) = groups {
        let current = call.state.store.user_groups(id).await?;
        for g in &groups {
            if !current.contains(g) {
                users::set_membership(&call.ops(), id, g, true).await?;
                changed = true;
            }
        }
        for g in &current {
            if !groups.contains(g) {
                users::set_membership(&call.ops(), id, g, false).await?;
                changed = true;
            }
        }
    }
    Ok(if changed { UserRow::Edited } else { UserRow::Unchanged })
}
