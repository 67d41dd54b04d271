//! `authentication/login`, `getkey` and `logout` (wire §4.3-§4.5).

use super::error::{ApiError, ApiResult};
use super::session::{self, clear_cookie, key_cookie};
use super::{ok_json, Call};
use crate::auth;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Exchanges an id and password (or a valid key) for a new key. `login` also sets the
/// cookie; `getkey` only answers the key.
pub async fn login(call: &mut Call, set_cookie: bool) -> ApiResult<Response> {
    let id = call
        .params
        .get("id")
        .or_else(|| call.params.get("accountname"))
        .or_else(|| call.params.get("email"))
        .map(|s| s.trim().to_string());
    let password = call.params.get("password");

    if let (Some(id), Some(_)) = (&id, &password) {
        if let Some(wait) = crate::ops::users::login_wait(call.state.store.as_ref(), id, &call.address).await? {
            let body = json!({
                "errorcode": "429",
                "response": {"status": "error", "details": format!(
                    "too many failed logins for \"{id}\" or from this address; try again in {wait} seconds"
                )},
                "results": {"status": "invalidlogin"}
            });
            let headers = [(axum::http::header::RETRY_AFTER, wait.to_string())];
            return Ok((StatusCode::TOO_MANY_REQUESTS, headers, axum::Json(body)).into_response());
        }
    }
    let user = match (&id, &password) {
        (Some(id), Some(pw)) => {
            let user = call.state.store.get_user(id).await?;
            match user {
                Some(mut u) if u.enabled && auth::verify_password(&u.password_hash, pw) => {
                    call.state.store.clear_login_failures(&u.id).await?;
                    // Keys derived the EnterMediaDB way need the password; remember
                    // the derived key's hash when that mode was switched on later.
                    let policy = crate::ops::users::KeyPolicy {
                        legacy_keys: call.state.config.legacy_emdb_keys,
                        legacy_secret: call.state.config.legacy_emdb_secret.clone(),
                    };
                    if policy.legacy_keys && u.legacy_key_hash.is_none() {
                        crate::ops::users::set_password(&mut u, pw, &policy);
                        call.state.store.update_user(&u).await?;
                    }
                    Some(u)
                }
                _ => {
                    call.state.store.record_login_failure(id, &call.address).await?;
                    None
                }
            }
        }
        (None, None) | (Some(_), None) | (None, Some(_)) => {
            // A key may stand in for the password, as in EnterMediaDB.
            let key = call
                .params
                .get("entermedia.key")
                .or_else(|| call.params.get("entermediakey"));
            match key {
                Some(k) => session::resolve_key(call, &k).await?.map(|c| c.user),
                None if id.is_none() && password.is_none() => {
                    return Err(ApiError::bad("send \"id\" and \"password\" (or an entermedia.key)"))
                }
                None => None,
            }
        }
    };
    let Some(user) = user else {
        crate::ops::audit::record(
            call.state.store.as_ref(),
            crate::ops::audit::Entry {
                catalog: &call.catalog,
                user: id.as_deref().unwrap_or(""),
                address: &call.address,
                action: "loginfailed",
                assetid: None,
                fields: Vec::new(),
                details: serde_json::Value::Null,
            },
        )
        .await;
        let body = json!({
            "errorcode": "401",
            "response": {"status": "invalidlogin", "details": "wrong user name or password"},
            "results": {"status": "invalidlogin"}
        });
        return Ok((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response());
    };

    let (key, hash) = auth::new_key(&user.id);
    let ttl = call.state.config.key_ttl_days;
    let expires =
        (ttl > 0).then(|| crate::domain::dates::format_emdb(chrono::Utc::now() + chrono::Duration::days(ttl as i64)));
    call.state.store.insert_key(&hash, &user.id, expires.as_deref()).await?;
    if set_cookie {
        let secure = call.secure_cookies();
        call.set_cookies
            .push(key_cookie(&session::cookie_name(call), &key, secure));
        call.set_cookies.push(key_cookie("entermedia.key", &key, secure));
    }
    let results = if set_cookie {
        json!({
            "id": user.id, "userid": user.id, "entermediakey": key,
            "firstname": user.firstname, "lastname": user.lastname,
            "email": user.email, "screenname": user.screenname
        })
    } else {
        json!({"entermediakey": key})
    };
    Ok(ok_json(
        json!({"response": {"status": "ok", "user": user.id}, "results": results}),
    ))
}

/// Revokes the key used for this call and clears the cookies.
pub async fn logout(call: &mut Call) -> ApiResult<Response> {
    if let Some(c) = &call.caller {
        call.state.store.revoke_key(&c.key_hash).await?;
    }
    call.set_cookies.retain(|_| false);
    call.set_cookies.push(clear_cookie(&session::cookie_name(call)));
    call.set_cookies.push(clear_cookie("entermedia.key"));
    Ok(ok_json(json!({"response": {"status": "logout"}})))
}

/// `authentication/validateuser`: whether an id and password are right, without issuing a
/// key (EMDB's flat answer). Throttled and audited like a login.
pub async fn validate_user(call: &mut Call) -> ApiResult<Response> {
    let id = call.params.get("id").or_else(|| call.params.get("accountname"));
    let password = call.params.get("password");
    let (Some(id), Some(pw)) = (id, password) else {
        return Err(ApiError::bad("send \"id\" and \"password\""));
    };
    if let Some(wait) = crate::ops::users::login_wait(call.state.store.as_ref(), &id, &call.address).await? {
        let body = json!({
            "errorcode": "429", "status": "authenticationproblem",
            "response": {"status": "error", "details": format!("too many failed logins; try again in {wait} seconds")}
        });
        let headers = [(axum::http::header::RETRY_AFTER, wait.to_string())];
        return Ok((StatusCode::TOO_MANY_REQUESTS, headers, axum::Json(body)).into_response());
    }
    let ok = match call.state.store.get_user(&id).await? {
        Some(u) => u.enabled && auth::verify_password(&u.password_hash, &pw),
        None => false,
    };
    if ok {
        call.state.store.clear_login_failures(&id).await?;
        return Ok(ok_json(json!({"status": "ok", "userid": id})));
    }
    call.state.store.record_login_failure(&id, &call.address).await?;
    let body = json!({
        "errorcode": "401", "status": "authenticationproblem", "userid": id,
        "response": {"status": "error", "details": "wrong user name or password"}
    });
    Ok((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response())
}
