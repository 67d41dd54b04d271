//! Callers resolved from keys, kept per process so that a request costs one cheap read
//! (the store's `auth_epoch`) instead of three queries (key, user, permissions).
//!
//! Correctness rests on the epoch: every change a caller depends on (a key revoked, a
//! user changed or deleted, a membership or a group changed) moves it in the same
//! database, and an entry is used only while the epoch it was resolved under is still
//! current. So a logout on any node is a logout on every node at once, with no delay.
//! Expiry is checked on every hit.

use super::session::Caller;
use std::collections::HashMap;
use std::sync::Mutex;

/// Past this many entries the cache starts over (keys are many only under attack or
/// with very many clients; a miss costs three queries, nothing more).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct KeyCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    epoch: i64,
    entries: HashMap<String, Entry>,
}

struct Entry {
    caller: Caller,
    /// The key's expiry (an EMDB date), if any.
    expires: Option<String>,
}

impl KeyCache {
    /// The caller of a key hash resolved under `epoch`, if still valid.
    pub fn get(&self, hash: &str, epoch: i64) -> Option<Caller> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.epoch != epoch {
            inner.entries.clear();
            inner.epoch = epoch;
            return None;
        }
        let entry = inner.entries.get(hash)?;
        if let Some(exp) = &entry.expires {
            if exp.as_str() <= crate::domain::dates::now_emdb().as_str() {
                inner.entries.remove(hash);
                return None;
            }
        }
        Some(entry.caller.clone())
    }

    /// Forgets every caller (`system/cleardatacache`); each is resolved again from the
    /// database on its next request. Answers how many there were.
    pub fn clear(&self) -> usize {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let n = inner.entries.len();
        inner.entries.clear();
        n
    }

    /// Remembers a caller resolved under `epoch` (read before resolving, so a change
    /// committed meanwhile makes the entry stale at once).
    pub fn put(&self, caller: &Caller, expires: Option<String>, epoch: i64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.epoch != epoch {
            if epoch < inner.epoch {
                return;
            }
            inner.entries.clear();
            inner.epoch = epoch;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.clear();
        }
        inner.entries.insert(
            caller.key_hash.clone(),
            Entry {
                caller: caller.clone(),
                expires,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::User;

    fn caller(hash: &str) -> Caller {
        Caller {
            user: User::new("u", String::new()),
            permissions: vec!["view".into()],
            key_hash: hash.into(),
            key: "umd542x".into(),
        }
    }

    #[test]
    fn an_entry_lives_only_while_its_epoch_is_current() {
        let c = KeyCache::default();
        c.put(&caller("h"), None, 3);
        assert!(c.get("h", 3).is_some());
        assert!(c.get("other", 3).is_none());
        // A revocation anywhere moved the epoch: resolved again.
        assert!(c.get("h", 4).is_none());
        assert!(c.get("h", 4).is_none());
        // An entry resolved under an older epoch is not kept.
        c.put(&caller("h"), None, 3);
        assert!(c.get("h", 4).is_none());
    }

    #[test]
    fn expired_keys_are_not_served() {
        let c = KeyCache::default();
        c.put(&caller("h"), Some("2000-01-01T00:00:00.000Z".into()), 1);
        assert!(c.get("h", 1).is_none());
        c.put(&caller("h"), Some("2999-01-01T00:00:00.000Z".into()), 1);
        assert!(c.get("h", 1).is_some());
    }
}
