//! An LDAP user's groups and template attributes, for authorization rules
//! and `allowed_groups`.
//!
//! With `group_membership: memberOf` (and no nesting) the groups come with
//! the user's entry, at no extra cost; otherwise one search under `base_dn`
//! finds the groups whose `member` / `uniqueMember` lists the user (with
//! the Active Directory in-chain rule when `nested_groups` is on). That
//! answer is cached for a minute, at most [`MAX_CACHED_USERS`] users, so a
//! login costs at most one extra directory request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ldap3::SearchEntry;

use super::{IN_CHAIN, escape_filter_value};
use crate::config::GroupMembership;

/// How long a user's groups are reused.
pub const GROUPS_TTL: Duration = Duration::from_secs(60);
/// Most users whose groups are cached; the cache empties when full.
pub const MAX_CACHED_USERS: usize = 10_000;

/// What the authorization rules need from the directory.
#[derive(Default)]
pub struct AuthzLookup {
    /// Read the user's groups at every look-up.
    pub want_groups: bool,
    /// Attributes the reply templates read (`{ldap:NAME}`).
    pub attributes: Vec<String>,
    cache: Mutex<HashMap<String, (Instant, Vec<String>)>>,
}

impl AuthzLookup {
    pub fn new(want_groups: bool, attributes: Vec<String>) -> Self {
        AuthzLookup { want_groups, attributes, cache: Mutex::new(HashMap::new()) }
    }

    pub fn cached(&self, dn: &str) -> Option<Vec<String>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(&dn.to_ascii_lowercase()).filter(|(at, _)| at.elapsed() < GROUPS_TTL).map(|(_, g)| g.clone())
    }

    pub fn remember(&self, dn: &str, groups: &[String]) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_USERS {
            cache.retain(|_, (at, _)| at.elapsed() < GROUPS_TTL);
            if cache.len() >= MAX_CACHED_USERS {
                cache.clear();
            }
        }
        cache.insert(dn.to_ascii_lowercase(), (Instant::now(), groups.to_vec()));
    }
}

/// Whether the groups are in the user's own entry (`memberOf`, not nested).
pub fn groups_in_entry(membership: GroupMembership, nested: bool) -> bool {
    membership == GroupMembership::MemberOf && !nested
}

/// The filter that finds the groups listing `user_dn`.
pub fn groups_filter(membership: GroupMembership, nested: bool, user_dn: &str) -> String {
    let attribute = match membership {
        GroupMembership::UniqueMember => "uniqueMember",
        GroupMembership::Member | GroupMembership::MemberOf => "member",
    };
    let attribute = if nested { format!("{attribute}:{IN_CHAIN}:") } else { attribute.to_string() };
    format!("({attribute}={})", escape_filter_value(user_dn))
}

/// The values of `attribute` in `entry` (names compared without case).
pub fn values<'a>(entry: &'a SearchEntry, attribute: &str) -> &'a [String] {
    entry
        .attrs
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(attribute))
        .map(|(_, values)| values.as_slice())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_filter_follows_the_membership_rule() {
        let dn = "uid=a(1),dc=x";
        assert_eq!(groups_filter(GroupMembership::Member, false, dn), "(member=uid=a\\281\\29,dc=x)");
        assert_eq!(groups_filter(GroupMembership::UniqueMember, false, dn), "(uniqueMember=uid=a\\281\\29,dc=x)");
        assert!(groups_filter(GroupMembership::MemberOf, true, dn).starts_with("(member:1.2.840.113556.1.4.1941:="));
        assert!(groups_in_entry(GroupMembership::MemberOf, false));
        assert!(!groups_in_entry(GroupMembership::Member, false));
    }

    #[test]
    fn the_cache_is_bounded() {
        let lookup = AuthzLookup::new(true, Vec::new());
        lookup.remember("UID=A", &["cn=g".to_string()]);
        assert_eq!(lookup.cached("uid=a"), Some(vec!["cn=g".to_string()]));
        for i in 0..MAX_CACHED_USERS + 1 {
            lookup.remember(&format!("uid={i}"), &[]);
        }
        assert!(lookup.cache.lock().unwrap().len() <= MAX_CACHED_USERS);
    }
}
