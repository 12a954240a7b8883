//! The token model: what a token is, its type, its state and its public view.
//!
//! Owns no storage and no I/O. Seeds appear here only sealed (see
//! [`crate::crypto`]); [`TokenView`] is what leaves the daemon, and it has no
//! seed field at all.

use serde::{Deserialize, Serialize};

use crate::model::otp::HashAlg;

/// HOTP (counter based) or TOTP (time based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Hotp,
    Totp,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Hotp => "hotp",
            Algorithm::Totp => "totp",
        }
    }
}

/// A token type as the administrator defines it in `token_types`.
///
/// Stored tokens refer to `id`; `label` is only what people see, so it can be
/// changed freely.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenType {
    pub id: String,
    pub label: String,
    pub algorithm: Algorithm,
    #[serde(default = "default_digits")]
    pub digits: u8,
    #[serde(default = "default_period")]
    pub period: u32,
    #[serde(default)]
    pub hash: HashAlg,
    /// Operators may enroll tokens of this type for a user.
    #[serde(default = "default_true")]
    pub operator_enroll: bool,
    /// Enrollment creates a fresh random secret (authenticator apps).
    #[serde(default)]
    pub generate_secret: bool,
    /// The two-OTP reset is allowed.
    #[serde(default = "default_true")]
    pub allow_reset: bool,
    /// Tokens of this type may be deleted.
    #[serde(default = "default_true")]
    pub deletable: bool,
}

fn default_digits() -> u8 {
    6
}
fn default_period() -> u32 {
    30
}
fn default_true() -> bool {
    true
}

/// OTP parameters fixed for one token (copied from its type at import, or
/// overridden by the import file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpParams {
    pub algorithm: Algorithm,
    pub digits: u8,
    pub hash: HashAlg,
    /// TOTP period in seconds (ignored for HOTP).
    pub period: u32,
}

/// The user a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub name: String,
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
}

/// A token as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub serial: String,
    pub type_id: String,
    pub params: OtpParams,
    /// The seed, sealed by [`crate::crypto::SeedCipher`] with the serial as associated data.
    #[serde(with = "hex_bytes")]
    pub sealed_seed: Vec<u8>,
    /// HOTP: the next counter value that may be accepted.
    pub counter: u64,
    /// TOTP: the last time step accepted (none before the first use).
    pub last_step: Option<u64>,
    /// TOTP: clock drift of the token in steps, learnt by a reset.
    #[serde(default)]
    pub drift: i64,
    pub owner: Option<Owner>,
    pub disabled: bool,
    pub locked: bool,
    pub fail_count: u32,
    /// Unix seconds.
    pub created_at: u64,
    pub last_used_at: Option<u64>,
    /// Unix seconds when failures locked the token; with `auth.lockout_seconds`
    /// the lock ends that long after. None while unlocked, and for tokens
    /// locked before radotp recorded the time (those wait for an operator).
    /// Absent from tokens stored by older versions, and left out when None
    /// so that backups of older versions keep their MAC (see [`crate::domain::backup::Backup`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_at: Option<u64>,
    /// Unix seconds of the last failure counted in `fail_count`; the count
    /// forgets one failure per `auth.failure_decay_seconds` since then.
    /// Left out when None, as `locked_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<u64>,
    /// The store's version of this token: each write makes it one higher, and
    /// a write is refused unless the stored version is still the one read
    /// ([`crate::store::Store::swap`]). Kept by the store, not in the token's
    /// JSON (backups and sled values are as before).
    #[serde(skip)]
    pub version: u64,
}

/// What operators see of a token's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    Active,
    Disabled,
    Locked,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Disabled => "disabled",
            TokenState::Locked => "locked",
        }
    }
}

impl Token {
    pub fn state(&self) -> TokenState {
        if self.disabled {
            TokenState::Disabled
        } else if self.locked {
            TokenState::Locked
        } else {
            TokenState::Active
        }
    }

    /// When a lock set by failures ends with `auth.lockout_seconds` (0: never).
    pub fn unlocks_at(&self, lockout_seconds: u64) -> Option<u64> {
        if lockout_seconds == 0 || !self.locked {
            return None;
        }
        self.locked_at.map(|at| at.saturating_add(lockout_seconds))
    }

    /// True for a token locked by failures whose lock has run out at `now`
    /// (it is active again; the store is updated at its next use). A
    /// disabled token stays disabled.
    pub fn lock_expired(&self, now: u64, lockout_seconds: u64) -> bool {
        self.state() == TokenState::Locked && self.unlocks_at(lockout_seconds).is_some_and(|at| now >= at)
    }

    /// The state at `now`: [`Token::state`], with an expired lock counted as active.
    pub fn state_at(&self, now: u64, lockout_seconds: u64) -> TokenState {
        if self.lock_expired(now, lockout_seconds) { TokenState::Active } else { self.state() }
    }

    /// Forgets failures and any lock (an operator's unlock, a new owner, the
    /// end of a lockout). An accepted code does not: see [`Token::advance_past`].
    pub fn clear_failures(&mut self) {
        self.fail_count = 0;
        self.locked = false;
        self.locked_at = None;
        self.failed_at = None;
    }

    /// The fail count at `now`: the stored count less one failure for every
    /// `decay_seconds` since the last one (0: failures are never forgotten).
    pub fn fail_count_at(&self, now: u64, decay_seconds: u64) -> u32 {
        match (decay_seconds, self.failed_at) {
            (0, _) | (_, None) => self.fail_count,
            (decay, Some(at)) => {
                let forgotten = now.saturating_sub(at) / decay;
                self.fail_count.saturating_sub(u32::try_from(forgotten).unwrap_or(u32::MAX))
            }
        }
    }

    /// Counts a failed attempt at `now` on top of the failures not yet
    /// forgotten ([`Token::fail_count_at`]); locks the token at
    /// `max_failures`. Returns true when this failure locked it.
    pub fn record_failure(&mut self, max_failures: u32, now: u64, decay_seconds: u64) -> bool {
        self.fail_count = self.fail_count_at(now, decay_seconds).saturating_add(1);
        self.failed_at = Some(now);
        self.locked = self.fail_count >= max_failures;
        self.locked_at = self.locked.then_some(now);
        self.locked
    }

    /// Moves past the moving factor `found` (a counter, or a time step)
    /// that an accepted code matched, at `now`. Refused (false) when the
    /// token has already moved past it: the code was used.
    pub fn advance_past(&mut self, found: u64, now: u64) -> bool {
        match self.params.algorithm {
            Algorithm::Hotp => {
                if self.counter > found {
                    return false;
                }
                self.counter = found + 1;
            }
            Algorithm::Totp => {
                if self.last_step.is_some_and(|s| s >= found) {
                    return false;
                }
                self.last_step = Some(found);
            }
        }
        // The fail count stays: were it reset, every login of the real user
        // would give an attacker `max_failures - 1` fresh guesses. It decays
        // with time instead (`auth.failure_decay_seconds`).
        self.last_used_at = Some(now);
        true
    }

    pub fn owner_name(&self) -> Option<&str> {
        self.owner.as_ref().map(|o| o.name.as_str())
    }

    /// The public view, with the type's label when the type is known.
    pub fn view(&self, type_label: Option<&str>) -> TokenView {
        let hotp = self.params.algorithm == Algorithm::Hotp;
        TokenView {
            serial: self.serial.clone(),
            r#type: self.type_id.clone(),
            type_label: type_label.map(str::to_string),
            algorithm: self.params.algorithm,
            digits: self.params.digits,
            hash: self.params.hash,
            period: (!hotp).then_some(self.params.period),
            user: self.owner.as_ref().map(|o| o.name.clone()),
            display_name: self.owner.as_ref().and_then(|o| o.display_name.clone()),
            user_dn: self.owner.as_ref().and_then(|o| o.dn.clone()),
            state: self.state(),
            fail_count: self.fail_count,
            counter: hotp.then_some(self.counter),
            last_step: if hotp { None } else { Some(self.last_step) },
            drift: if hotp { None } else { Some(self.drift) },
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            locked_at: if self.locked { self.locked_at } else { None },
            unlocks_at: None,
        }
    }

    /// The public view at `now` under `auth.lockout_seconds`: an expired lock
    /// shows as active (fail count 0), a running one with its end.
    pub fn view_at(&self, type_label: Option<&str>, now: u64, lockout_seconds: u64) -> TokenView {
        let mut view = self.view(type_label);
        if self.lock_expired(now, lockout_seconds) {
            view.state = TokenState::Active;
            view.fail_count = 0;
            view.locked_at = None;
        } else if self.state() == TokenState::Locked {
            view.unlocks_at = self.unlocks_at(lockout_seconds);
        }
        view
    }
}

/// The token as the admin protocol shows it: never the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenView {
    pub serial: String,
    pub r#type: String,
    #[serde(default)]
    pub type_label: Option<String>,
    pub algorithm: Algorithm,
    pub digits: u8,
    pub hash: HashAlg,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u32>,
    pub user: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_dn: Option<String>,
    pub state: TokenState,
    pub fail_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<u64>,
    /// TOTP only: `null` until the first accepted code; absent for HOTP.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present_even_if_null")]
    pub last_step: Option<Option<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<i64>,
    pub created_at: u64,
    pub last_used_at: Option<u64>,
    /// Unix seconds when failures locked the token (absent when not locked,
    /// or locked before radotp recorded the time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_at: Option<u64>,
    /// Unix seconds when the lock ends by itself (`auth.lockout_seconds`);
    /// absent when it lasts until an operator unlocks the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlocks_at: Option<u64>,
}

/// Keeps `"field": null` apart from an absent field (serde folds both into `None`).
fn present_even_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

/// Serial numbers: printable, no spaces or control characters, at most 64 bytes.
pub fn valid_serial(serial: &str) -> bool {
    !serial.is_empty() && serial.len() <= 64 && serial.bytes().all(|b| b.is_ascii_graphic() && b != b',' && b != b'"')
}

/// User names as the store keeps them: 1..=256 bytes, no control characters.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 256 && !name.chars().any(char::is_control)
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::HEXLOWER.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        data_encoding::HEXLOWER_PERMISSIVE.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token as radotp stored it before `locked_at` existed.
    const STORED_BEFORE_LOCKED_AT: &str = r#"{"serial":"HW1","type_id":"hw-hotp","params":{"algorithm":"hotp","digits":6,"hash":"sha1","period":30},"sealed_seed":"01ff","counter":3,"last_step":null,"drift":0,"owner":{"name":"alice","display_name":null},"disabled":false,"locked":true,"fail_count":10,"created_at":5,"last_used_at":null}"#;

    #[test]
    fn tokens_stored_before_locked_at_read_and_write_back_unchanged() {
        let token: Token = serde_json::from_str(STORED_BEFORE_LOCKED_AT).unwrap();
        assert_eq!(token.locked_at, None);
        // Byte for byte: backups made before the field keep their MAC.
        assert_eq!(serde_json::to_string(&token).unwrap(), STORED_BEFORE_LOCKED_AT);
        // Such a lock has no known start: it waits for an operator, whatever lockout_seconds says.
        assert_eq!(token.unlocks_at(600), None);
        assert!(!token.lock_expired(u64::MAX, 600));
        assert_eq!(token.state_at(u64::MAX, 600), TokenState::Locked);
    }

    #[test]
    fn a_lock_with_its_start_ends_after_lockout_seconds_only() {
        let mut token: Token = serde_json::from_str(STORED_BEFORE_LOCKED_AT).unwrap();
        token.locked_at = Some(1000);
        assert!(serde_json::to_string(&token).unwrap().contains(r#""locked_at":1000"#));
        assert_eq!(token.unlocks_at(0), None, "0: until an operator unlocks");
        assert_eq!(token.state_at(u64::MAX, 0), TokenState::Locked);
        assert_eq!(token.unlocks_at(600), Some(1600));
        assert_eq!(token.state_at(1599, 600), TokenState::Locked);
        assert_eq!(token.state_at(1600, 600), TokenState::Active);
        assert_eq!(token.unlocks_at(u64::MAX), Some(u64::MAX), "no overflow");

        let view = token.view_at(None, 1599, 600);
        assert_eq!(
            (view.state, view.fail_count, view.locked_at, view.unlocks_at),
            (TokenState::Locked, 10, Some(1000), Some(1600))
        );
        let view = token.view_at(None, 1600, 600);
        assert_eq!((view.state, view.fail_count, view.locked_at, view.unlocks_at), (TokenState::Active, 0, None, None));
        let json = serde_json::to_value(token.view_at(None, 1599, 600)).unwrap();
        assert_eq!((json["locked_at"].as_u64(), json["unlocks_at"].as_u64()), (Some(1000), Some(1600)));
        let json = serde_json::to_value(token.view_at(None, 1600, 600)).unwrap();
        assert!(json.get("locked_at").is_none() && json.get("unlocks_at").is_none(), "{json}");

        // An operator's disable is not a lock that ends.
        token.disabled = true;
        assert_eq!(token.state_at(u64::MAX, 600), TokenState::Disabled);
        assert_eq!(token.view_at(None, 1599, 600).unlocks_at, None);
    }
}
