//! The login cache of the LDAP engine: login look-ups that found a usable
//! account, by the name asked, for [`LOGIN_CACHE_TTL`] and at most
//! [`LOGIN_CACHE_MAX`] names (emptied when full). A refused password bind
//! forgets the entry's names at once (AD may just have locked the account).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::directory::DirectoryUser;

/// How long a login look-up that found a usable account is reused.
pub const LOGIN_CACHE_TTL: Duration = Duration::from_secs(30);
/// Most names whose login look-up is remembered; the cache is emptied when full.
pub const LOGIN_CACHE_MAX: usize = 10_000;

#[derive(Default)]
pub(super) struct LoginCache {
    entries: Mutex<HashMap<String, (Instant, DirectoryUser)>>,
}

impl LoginCache {
    /// The user found for `name` less than [`LOGIN_CACHE_TTL`] ago.
    pub(super) fn get(&self, name: &str) -> Option<DirectoryUser> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(name) {
            Some((at, user)) if at.elapsed() < LOGIN_CACHE_TTL => Some(user.clone()),
            Some(_) => {
                entries.remove(name);
                None
            }
            None => None,
        }
    }

    pub(super) fn put(&self, name: &str, user: &DirectoryUser) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= LOGIN_CACHE_MAX {
            entries.clear();
        }
        entries.insert(name.to_string(), (Instant::now(), user.clone()));
    }

    /// Forgets every name found as the entry `dn`.
    pub(super) fn forget_dn(&self, dn: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (_, user)| user.dn.as_deref() != Some(dn));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, dn: &str) -> DirectoryUser {
        DirectoryUser { name: name.into(), dn: Some(dn.into()), ..DirectoryUser::default() }
    }

    #[test]
    fn remembers_and_forgets_by_dn() {
        let cache = LoginCache::default();
        let alice = user("alice", "CN=alice,OU=Staff");
        cache.put("alice", &alice);
        cache.put("ALICE", &alice);
        cache.put("bob", &user("bob", "CN=bob,OU=Staff"));
        assert_eq!(cache.get("ALICE"), Some(alice));
        cache.forget_dn("CN=alice,OU=Staff");
        assert_eq!((cache.get("alice"), cache.get("ALICE")), (None, None));
        assert!(cache.get("bob").is_some());
        assert!(cache.get("carol").is_none());
    }

    #[test]
    fn is_bounded() {
        let cache = LoginCache::default();
        for i in 0..=LOGIN_CACHE_MAX {
            cache.put(&format!("u{i}"), &user("u", "CN=u"));
        }
        assert!(cache.entries.lock().unwrap().len() <= LOGIN_CACHE_MAX);
    }
}
