//! Who is calling: the key a request presents, checked against the store, and the
//! access an endpoint requires (401 without a valid key, 403 without the permission).

use super::endpoint::Access;
use super::error::{ApiError, ApiResult};
use super::request::{presented_key, KeySource};
use super::{cors, Call};
use crate::auth;
use crate::store::User;

#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub permissions: Vec<String>,
    /// The hash of the key used, for logout.
    pub key_hash: String,
    pub key: String,
}

impl Caller {
    pub fn has(&self, p: auth::Permission) -> bool {
        self.permissions.iter().any(|x| x == p.id())
    }
}

/// The cookie name of a site: `entermedia.key{site}` (`entermedia.keyassets`).
pub fn cookie_name(call: &Call) -> String {
    format!("entermedia.key{}", call.url_site.as_deref().unwrap_or(&call.catalog))
}

fn site(call: &Call) -> String {
    call.url_site.clone().unwrap_or_else(|| call.catalog.clone())
}

pub fn has_key(call: &Call) -> bool {
    let cookie_ok = cors::cookie_allowed(&call.state.config, &call.headers);
    presented_key(&call.params, &call.headers, &site(call), cookie_ok).is_some()
}

/// Checks the key a request presents and stores the caller in `call`; then enforces
/// `access`.
pub async fn authorize(call: &mut Call, access: Access) -> ApiResult<()> {
    if call.caller.is_none() {
        let cookie_ok = cors::cookie_allowed(&call.state.config, &call.headers);
        if let Some((key, source)) = presented_key(&call.params, &call.headers, &site(call), cookie_ok) {
            match resolve_key(call, &key).await? {
                Some(caller) => {
                    if source != KeySource::Cookie {
                        let secure = call.secure_cookies();
                        call.set_cookies.push(key_cookie(&cookie_name(call), &key, secure));
                    }
                    call.caller = Some(caller);
                }
                None if access == Access::Public => {}
                None => {
                    if source == KeySource::Cookie {
                        call.set_cookies.push(clear_cookie(&cookie_name(call)));
                    }
                    return Err(ApiError::Unauthorized(
                        "the entermedia.key is not valid (unknown, revoked or expired); log in again".into(),
                    ));
                }
            }
        }
    }
    match access {
        Access::Public => Ok(()),
        Access::Authenticated | Access::Requires(_) | Access::SelfOr(_) if call.caller.is_none() => Err(ApiError::Unauthorized(
            "log in first: send an entermedia.key (cookie, parameter, X-entermedia.key header, or X-token with X-tokentype: entermedia)".into(),
        )),
        // The dispatcher checks the "self" part, knowing whom the call is about.
        Access::Authenticated | Access::SelfOr(_) => Ok(()),
        Access::Requires(p) => {
            let caller = call.caller.as_ref().ok_or_else(|| ApiError::Unauthorized("log in first".into()))?;
            if caller.has(p) {
                Ok(())
            } else {
                Err(ApiError::Forbidden(format!(
                    "user \"{}\" lacks the permission {}",
                    caller.user.id,
                    p.id()
                )))
            }
        }
    }
}

/// The access check of an endpoint, including "the permission or oneself".
pub async fn authorize_endpoint(call: &mut Call, endpoint: &super::endpoint::Endpoint) -> ApiResult<()> {
    let access = endpoint.access();
    authorize(call, access).await?;
    if let Access::SelfOr(p) = access {
        let caller = call
            .caller
            .as_ref()
            .ok_or_else(|| ApiError::Unauthorized("log in first".into()))?;
        if Some(caller.user.id.as_str()) != endpoint.target_user() && !caller.has(p) {
            return Err(ApiError::Forbidden(format!(
                "user \"{}\" lacks the permission {} (needed for other users than oneself)",
                caller.user.id,
                p.id()
            )));
        }
    }
    Ok(())
}

/// The caller a key belongs to, if the key is valid now. Served from the per-process
/// cache while the store's auth epoch is unchanged (see `key_cache`).
pub async fn resolve_key(call: &Call, key: &str) -> ApiResult<Option<Caller>> {
    if auth::key_user(key).is_none() || key.len() > 512 {
        return Ok(None);
    }
    let hash = auth::key_hash(key);
    let store = &call.state.store;
    // Read before resolving: a change committed meanwhile outdates what we cache.
    let epoch = store.auth_epoch().await?;
    if let Some(caller) = call.state.keys.get(&hash, epoch) {
        if caller.key == key {
            return Ok(Some(caller));
        }
    }
    let Some(rec) = store.lookup_key(&hash).await? else {
        let caller = legacy_caller(call, key, hash).await?;
        if let Some(c) = &caller {
            call.state.keys.put(c, None, epoch);
        }
        return Ok(caller);
    };
    if rec.revoked {
        return Ok(None);
    }
    if let Some(exp) = &rec.expires {
        if exp.as_str() <= crate::domain::dates::now_emdb().as_str() {
            return Ok(None);
        }
    }
    if auth::key_user(key) != Some(rec.user_id.as_str()) {
        return Ok(None);
    }
    let Some(user) = store.get_user(&rec.user_id).await? else {
        return Ok(None);
    };
    if !user.enabled {
        return Ok(None);
    }
    let permissions = store.user_permissions(&user.id).await?;
    let caller = Caller {
        user,
        permissions,
        key_hash: hash,
        key: key.to_string(),
    };
    call.state.keys.put(&caller, rec.expires, epoch);
    Ok(Some(caller))
}

/// A key derived the EnterMediaDB way, when that opt-in mode is on.
async fn legacy_caller(call: &Call, key: &str, hash: String) -> ApiResult<Option<Caller>> {
    if !call.state.config.legacy_emdb_keys {
        return Ok(None);
    }
    let Some(user) = call.state.store.find_user_by_legacy_key(&hash).await? else {
        return Ok(None);
    };
    if !user.enabled || auth::key_user(key) != Some(user.id.as_str()) {
        return Ok(None);
    }
    let permissions = call.state.store.user_permissions(&user.id).await?;
    Ok(Some(Caller {
        user,
        permissions,
        key_hash: hash,
        key: key.to_string(),
    }))
}

pub fn key_cookie(name: &str, key: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={key}; Path=/; Max-Age=34560000; HttpOnly; SameSite=Lax{secure}")
}

pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
}
