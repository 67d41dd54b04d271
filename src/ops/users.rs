//! Users, groups and their permissions; passwords, keys and login throttling.

use super::{audit, Ctx, OpsError, OpsResult};
use crate::auth::{self, permissions, Permission};
use crate::domain::Invalid;
use crate::store::{Group, MetaStore, User};
use serde_json::json;

/// Settings that change how passwords and keys behave.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    /// Accept EnterMediaDB-derived keys (`userid + "md542" + md5(secret + password)`).
    pub legacy_keys: bool,
    pub legacy_secret: String,
}

/// User ids appear in keys and URLs: letters, digits, `_`, `-`, `.`, `@`, at most 100.
pub fn validate_user_id(id: &str) -> Result<(), Invalid> {
    if id.is_empty() || id.len() > 100 || id.contains("md542") {
        return Err(Invalid::new(
            "a user id is 1 to 100 characters and may not contain \"md542\"",
        ));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
    {
        return Err(Invalid::new(format!(
            "user id \"{id}\" may hold only letters, digits, '_', '-', '.' and '@'"
        )));
    }
    Ok(())
}

pub fn validate_password(pw: &str) -> Result<(), Invalid> {
    if pw.chars().count() < 8 || pw.len() > 1024 {
        return Err(Invalid::new("a password needs 8 to 1024 characters"));
    }
    Ok(())
}

/// Sets a new password: a fresh argon2id hash, the legacy key if that mode is on.
pub fn set_password(user: &mut User, password: &str, policy: &KeyPolicy) {
    user.password_hash = auth::hash_password(password);
    user.legacy_key_hash = policy
        .legacy_keys
        .then(|| auth::key_hash(&auth::legacy_emdb_key(&user.id, &policy.legacy_secret, password)));
}

pub fn validate_permissions(perms: &[String]) -> Result<(), Invalid> {
    for p in perms {
        if !Permission::ALL.iter().any(|x| x.id() == p) {
            let known: Vec<&str> = Permission::ALL.iter().map(|x| x.id()).collect();
            return Err(Invalid::new(format!(
                "unknown permission \"{p}\"; known: {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

pub async fn create_user(
    ctx: &Ctx<'_>,
    mut user: User,
    password: &str,
    groups: &[String],
    policy: &KeyPolicy,
) -> OpsResult<User> {
    validate_user_id(&user.id)?;
    validate_password(password)?;
    for g in groups {
        if ctx.store.get_group(g).await?.is_none() {
            return Err(Invalid::new(format!("no group \"{g}\"")).into());
        }
    }
    set_password(&mut user, password, policy);
    let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    ctx.store.create_user(&user, &refs).await?;
    let mut e = ctx.audit("usercreate", None);
    e.details = json!({"userid": user.id, "groups": groups});
    audit::record(ctx.store, e).await;
    Ok(user)
}

/// How many enabled users hold the administrators group.
async fn enabled_admins(store: &dyn MetaStore) -> OpsResult<Vec<String>> {
    let mut out = Vec::new();
    for u in store.list_users().await? {
        if u.enabled
            && store
                .user_groups(&u.id)
                .await?
                .iter()
                .any(|g| g == permissions::ADMINISTRATORS)
        {
            out.push(u.id);
        }
    }
    Ok(out)
}

/// Refuses a change that would leave no enabled administrator.
pub async fn guard_last_admin(store: &dyn MetaStore, user_id: &str) -> OpsResult<()> {
    let admins = enabled_admins(store).await?;
    if admins.len() == 1 && admins[0] == user_id {
        return Err(OpsError::Conflict(format!(
            "\"{user_id}\" is the last enabled administrator; make another one first"
        )));
    }
    Ok(())
}

/// Saves a user; a password change revokes every key of the user.
pub async fn update_user(ctx: &Ctx<'_>, user: &User, password_changed: bool, disabling: bool) -> OpsResult<u64> {
    if disabling {
        guard_last_admin(ctx.store, &user.id).await?;
    }
    ctx.store.update_user(user).await.map_err(|e| match e {
        crate::store::StoreError::NotFound => OpsError::NotFound(user.id.clone()),
        e => e.into(),
    })?;
    let revoked = if password_changed || disabling {
        ctx.store.revoke_user_keys(&user.id).await?
    } else {
        0
    };
    let mut e = ctx.audit(
        if password_changed {
            "passwordchange"
        } else {
            "userupdate"
        },
        None,
    );
    e.details = json!({"userid": user.id, "keysrevoked": revoked});
    audit::record(ctx.store, e).await;
    Ok(revoked)
}

pub async fn delete_user(ctx: &Ctx<'_>, id: &str) -> OpsResult<()> {
    guard_last_admin(ctx.store, id).await?;
    if !ctx.store.delete_user(id).await? {
        return Err(OpsError::NotFound(id.to_string()));
    }
    let mut e = ctx.audit("userdelete", None);
    e.details = json!({"userid": id});
    audit::record(ctx.store, e).await;
    Ok(())
}

pub async fn set_membership(ctx: &Ctx<'_>, user_id: &str, group_id: &str, member: bool) -> OpsResult<bool> {
    if ctx.store.get_user(user_id).await?.is_none() {
        return Err(OpsError::NotFound(user_id.to_string()));
    }
    if ctx.store.get_group(group_id).await?.is_none() {
        return Err(OpsError::NotFound(group_id.to_string()));
    }
    if !member && group_id == permissions::ADMINISTRATORS {
        guard_last_admin(ctx.store, user_id).await?;
    }
    let changed = ctx.store.set_user_group(user_id, group_id, member).await?;
    let mut e = ctx.audit(if member { "groupadd" } else { "groupremove" }, None);
    e.details = json!({"userid": user_id, "groupid": group_id});
    audit::record(ctx.store, e).await;
    Ok(changed)
}

pub async fn put_group(ctx: &Ctx<'_>, group: &Group, creating: bool) -> OpsResult<()> {
    validate_user_id(&group.id).map_err(|_| Invalid::new(format!("group id \"{}\" is not usable", group.id)))?;
    validate_permissions(&group.permissions)?;
    let existing = ctx.store.get_group(&group.id).await?;
    match (&existing, creating) {
        (Some(_), true) => return Err(OpsError::Conflict(format!("group \"{}\" exists", group.id))),
        (None, false) => return Err(OpsError::NotFound(group.id.clone())),
        _ => {}
    }
    if group.id == permissions::ADMINISTRATORS && !creating {
        let all: Vec<String> = Permission::ALL.iter().map(|p| p.id().to_string()).collect();
        if group.permissions != all {
            return Err(OpsError::Conflict(
                "the administrators group always holds every permission".into(),
            ));
        }
    }
    ctx.store.put_group(group).await?;
    let mut e = ctx.audit("permissionchange", None);
    e.details = json!({"groupid": group.id, "old": existing.map(|g| g.permissions), "new": group.permissions});
    audit::record(ctx.store, e).await;
    Ok(())
}

pub async fn delete_group(ctx: &Ctx<'_>, id: &str) -> OpsResult<()> {
    if id == permissions::ADMINISTRATORS {
        return Err(OpsError::Conflict("the administrators group cannot be deleted".into()));
    }
    if !ctx.store.delete_group(id).await? {
        return Err(OpsError::NotFound(id.to_string()));
    }
    let mut e = ctx.audit("permissionchange", None);
    e.details = json!({"groupid": id, "deleted": true});
    audit::record(ctx.store, e).await;
    Ok(())
}

/// Login throttling: a user's failures in the last 15 minutes beyond 5 make them wait
/// (30 s, doubling, at most 15 min after the last failure); an address with 20
/// failures in 5 minutes waits a minute.
pub async fn login_wait(store: &dyn MetaStore, user_id: &str, address: &str) -> OpsResult<Option<u64>> {
    let now = chrono::Utc::now();
    let since = |mins: i64| crate::domain::dates::format_emdb(now - chrono::Duration::minutes(mins));
    let remaining = |last: Option<String>, wait_secs: i64| -> Option<u64> {
        let last = crate::domain::dates::parse_flexible(&last?)?;
        let until = last + chrono::Duration::seconds(wait_secs);
        (until > now).then(|| (until - now).num_seconds().max(1) as u64)
    };
    let (n, last) = store.login_failures_for_user(user_id, &since(15)).await?;
    if n >= 5 {
        let wait = (30i64 << (n - 5).min(5)).min(900);
        if let Some(r) = remaining(last, wait) {
            return Ok(Some(r));
        }
    }
    if !address.is_empty() {
        let (n, last) = store.login_failures_from(address, &since(5)).await?;
        if n >= 20 {
            if let Some(r) = remaining(last, 60) {
                return Ok(Some(r));
            }
        }
    }
    Ok(None)
}
