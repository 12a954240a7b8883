//! Whether a directory account may log in, from the attributes of its
//! entry: Active Directory's `userAccountControl`,
//! `msDS-User-Account-Control-Computed`, `accountExpires` and `pwdLastSet`,
//! and OpenLDAP ppolicy's `pwdAccountLockedTime`. Pure: the caller reads
//! the entry ([`STATE_ATTRIBUTES`]) and gives the time.
//!
//! An attribute the server does not have is simply absent, so the same
//! rules serve every kind of directory.

use std::collections::HashMap;

/// The attributes read from a user's entry at login (a base search: AD
/// builds `msDS-User-Account-Control-Computed` only for those).
pub const STATE_ATTRIBUTES: [&str; 5] = [
    "userAccountControl",
    "msDS-User-Account-Control-Computed",
    "accountExpires",
    "pwdLastSet",
    "pwdAccountLockedTime",
];

/// `userAccountControl` ACCOUNTDISABLE.
const UF_ACCOUNTDISABLE: u64 = 0x2;
/// `msDS-User-Account-Control-Computed` LOCKOUT.
const UF_LOCKOUT: u64 = 0x10;
/// `msDS-User-Account-Control-Computed` PASSWORD_EXPIRED.
const UF_PASSWORD_EXPIRED: u64 = 0x80_0000;
/// `accountExpires` value meaning "never" (besides 0).
const NEVER: i64 = i64::MAX;
/// Seconds from 1601-01-01 (Windows FILETIME epoch) to 1970-01-01.
const FILETIME_UNIX_OFFSET: i64 = 11_644_473_600;

/// Why an account cannot log in; [`Unusable::as_str`] is what logs and
/// audit entries say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// AD: `userAccountControl` has the ACCOUNTDISABLE bit (bind code 533).
    Disabled,
    /// AD: locked out after failed passwords (775); OpenLDAP ppolicy:
    /// `pwdAccountLockedTime` is set.
    Locked,
    /// AD: `accountExpires` has passed (701).
    Expired,
    /// AD: the password is older than the domain's maximum age (532).
    PasswordExpired,
    /// AD: "user must change password at next logon", `pwdLastSet: 0` (773).
    MustChangePassword,
}

impl Unusable {
    pub fn as_str(self) -> &'static str {
        match self {
            Unusable::Disabled => "disabled",
            Unusable::Locked => "locked",
            Unusable::Expired => "expired",
            Unusable::PasswordExpired => "password expired",
            Unusable::MustChangePassword => "must change password",
        }
    }
}

/// The first reason, if any, why the entry with `attrs` cannot log in at
/// `now_unix` (seconds since 1970). Attribute names are compared without
/// regard to case; values that do not parse are ignored.
pub fn unusable(attrs: &HashMap<String, Vec<String>>, now_unix: i64) -> Option<Unusable> {
    let first = |name: &str| {
        attrs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, values)| values.first())
            .map(|v| v.trim())
    };
    let flags = |name: &str| first(name).and_then(|v| v.parse::<i64>().ok()).map(|v| v as u64).unwrap_or(0);
    if flags("userAccountControl") & UF_ACCOUNTDISABLE != 0 {
        return Some(Unusable::Disabled);
    }
    let computed = flags("msDS-User-Account-Control-Computed");
    if computed & UF_LOCKOUT != 0 || first("pwdAccountLockedTime").is_some() {
        return Some(Unusable::Locked);
    }
    if let Some(expires) = first("accountExpires").and_then(|v| v.parse::<i64>().ok()) {
        if expires != 0 && expires != NEVER && expires / 10_000_000 - FILETIME_UNIX_OFFSET <= now_unix {
            return Some(Unusable::Expired);
        }
    }
    if first("pwdLastSet") == Some("0") {
        return Some(Unusable::MustChangePassword);
    }
    if computed & UF_PASSWORD_EXPIRED != 0 {
        return Some(Unusable::PasswordExpired);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect()
    }

    const NOW: i64 = 1_800_000_000;

    /// `accountExpires` for a Unix time.
    fn filetime(unix: i64) -> String {
        ((unix + FILETIME_UNIX_OFFSET) * 10_000_000).to_string()
    }

    #[test]
    fn an_ordinary_account_is_usable() {
        let ad = entry(&[
            ("userAccountControl", "512"),
            ("msDS-User-Account-Control-Computed", "0"),
            ("accountExpires", "9223372036854775807"),
            ("pwdLastSet", "133000000000000000"),
        ]);
        assert_eq!(unusable(&ad, NOW), None);
        assert_eq!(unusable(&entry(&[("accountExpires", "0")]), NOW), None);
        assert_eq!(unusable(&HashMap::new(), NOW), None, "OpenLDAP without ppolicy");
    }

    #[test]
    fn each_ad_state_is_recognised() {
        assert_eq!(unusable(&entry(&[("userAccountControl", "514")]), NOW), Some(Unusable::Disabled));
        assert_eq!(unusable(&entry(&[("useraccountcontrol", "66050")]), NOW), Some(Unusable::Disabled));
        let locked = entry(&[("userAccountControl", "512"), ("msDS-User-Account-Control-Computed", "16")]);
        assert_eq!(unusable(&locked, NOW), Some(Unusable::Locked));
        let expired = entry(&[("accountExpires", &filetime(NOW - 60))]);
        assert_eq!(unusable(&expired, NOW), Some(Unusable::Expired));
        let later = entry(&[("accountExpires", &filetime(NOW + 86_400))]);
        assert_eq!(unusable(&later, NOW), None);
        assert_eq!(unusable(&entry(&[("pwdLastSet", "0")]), NOW), Some(Unusable::MustChangePassword));
        let old = entry(&[("msDS-User-Account-Control-Computed", "8388608")]);
        assert_eq!(unusable(&old, NOW), Some(Unusable::PasswordExpired));
    }

    #[test]
    fn a_ppolicy_lock_is_recognised() {
        assert_eq!(unusable(&entry(&[("pwdAccountLockedTime", "000001010000Z")]), NOW), Some(Unusable::Locked));
    }

    #[test]
    fn values_that_do_not_parse_are_ignored() {
        let odd = entry(&[("userAccountControl", "x"), ("accountExpires", "soon")]);
        assert_eq!(unusable(&odd, NOW), None);
    }
}
