//! The in-memory copy of the `tokens` tree, compact: each token is one
//! shared byte string ([`Packed`], about 150 bytes for a hardware token)
//! instead of a `Token` with seven heap allocations, so 100,000 tokens take
//! about 20 MB. Reads decode a token (as a clone did before); a change
//! encodes the new state. The owner index maps a keyed hash of the owner's
//! name to that owner's tokens (a collision only adds candidates, which
//! are filtered by the decoded owner).

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use crate::model::otp::HashAlg;
use crate::model::token::{Algorithm, OtpParams, Owner, Token};
use crate::store::StoreError;

/// What a token needs written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dirty {
    /// Only its progress record (a RADIUS decision).
    Progress,
    /// The whole token (or its removal).
    Whole,
}

/// A token encoded as one byte string: the serial first (for ordering and
/// look-ups without decoding), then the version, then every other field.
#[derive(Clone)]
pub(super) struct Packed(Arc<[u8]>);

impl Packed {
    pub(super) fn encode(token: &Token) -> Packed {
        // Every field named: a field added to Token does not compile here until it is encoded.
        let Token {
            serial,
            type_id,
            params: OtpParams { algorithm, digits, hash, period },
            sealed_seed,
            counter,
            last_step,
            drift,
            owner,
            disabled,
            locked,
            fail_count,
            created_at,
            last_used_at,
            locked_at,
            failed_at,
            version,
        } = token;
        let mut out = Vec::with_capacity(96 + serial.len() + type_id.len() + sealed_seed.len());
        put_bytes(&mut out, serial.as_bytes());
        out.extend_from_slice(&version.to_le_bytes());
        put_bytes(&mut out, type_id.as_bytes());
        out.push(match algorithm {
            Algorithm::Hotp => 0,
            Algorithm::Totp => 1,
        });
        out.push(*digits);
        out.push(match hash {
            HashAlg::Sha1 => 0,
            HashAlg::Sha256 => 1,
            HashAlg::Sha512 => 2,
        });
        out.extend_from_slice(&period.to_le_bytes());
        put_bytes(&mut out, sealed_seed);
        out.extend_from_slice(&counter.to_le_bytes());
        put_opt(&mut out, *last_step);
        out.extend_from_slice(&drift.to_le_bytes());
        match owner {
            None => out.push(0),
            Some(Owner { name, display_name, dn }) => {
                out.push(1);
                put_bytes(&mut out, name.as_bytes());
                put_opt_str(&mut out, display_name.as_deref());
                put_opt_str(&mut out, dn.as_deref());
            }
        }
        out.push(u8::from(*disabled) | (u8::from(*locked) << 1));
        out.extend_from_slice(&fail_count.to_le_bytes());
        out.extend_from_slice(&created_at.to_le_bytes());
        put_opt(&mut out, *last_used_at);
        put_opt(&mut out, *locked_at);
        put_opt(&mut out, *failed_at);
        Packed(out.into())
    }

    pub(super) fn serial(&self) -> &[u8] {
        let len = self.0.get(..4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        self.0.get(4..4 + len).unwrap_or_default()
    }

    pub(super) fn decode(&self) -> Result<Token, StoreError> {
        let corrupt = || StoreError::Corrupt("a token in memory is unreadable".into());
        let mut r = Reader(&self.0);
        let token = (|| {
            let serial = r.string()?;
            let version = r.u64()?;
            let type_id = r.string()?;
            let algorithm = match r.u8()? {
                0 => Algorithm::Hotp,
                1 => Algorithm::Totp,
                _ => return None,
            };
            let digits = r.u8()?;
            let hash = match r.u8()? {
                0 => HashAlg::Sha1,
                1 => HashAlg::Sha256,
                2 => HashAlg::Sha512,
                _ => return None,
            };
            let period = r.u32()?;
            let sealed_seed = r.bytes()?.to_vec();
            let counter = r.u64()?;
            let last_step = r.opt()?;
            let drift = r.u64()? as i64;
            let owner = match r.u8()? {
                0 => None,
                1 => Some(Owner { name: r.string()?, display_name: r.opt_string()?, dn: r.opt_string()? }),
                _ => return None,
            };
            let flags = r.u8()?;
            Some(Token {
                serial,
                type_id,
                params: OtpParams { algorithm, digits, hash, period },
                sealed_seed,
                counter,
                last_step,
                drift,
                owner,
                disabled: flags & 1 != 0,
                locked: flags & 2 != 0,
                fail_count: r.u32()?,
                created_at: r.u64()?,
                last_used_at: r.opt()?,
                locked_at: r.opt()?,
                failed_at: r.opt()?,
                version,
            })
        })();
        token.ok_or_else(corrupt)
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&bytes[..bytes.len().min(u32::MAX as usize)]);
}

fn put_opt(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn put_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_bytes(out, s.as_bytes());
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    fn string(&mut self) -> Option<String> {
        self.bytes().and_then(|b| String::from_utf8(b.to_vec()).ok())
    }
    fn opt(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.u64().map(Some),
            _ => None,
        }
    }
    fn opt_string(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.string().map(Some),
            _ => None,
        }
    }
}

impl Borrow<[u8]> for Packed {
    fn borrow(&self) -> &[u8] {
        self.serial()
    }
}

impl PartialEq for Packed {
    fn eq(&self, other: &Self) -> bool {
        self.serial() == other.serial()
    }
}

impl Eq for Packed {}

impl PartialOrd for Packed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Packed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.serial().cmp(other.serial())
    }
}

/// The tokens in memory, the owner index, and what awaits writing.
#[derive(Default)]
pub(super) struct Mirror {
    /// Every token, in serial order.
    tokens: BTreeSet<Packed>,
    /// Keyed hash of an owner's name -> the tokens of that owner (and of
    /// any other owner whose name has the same hash).
    owners: HashMap<u64, Vec<Packed>>,
    hasher: RandomState,
    /// Serials changed or removed since they were last written to sled,
    /// and how much of them changed.
    pub(super) dirty: HashMap<Box<str>, Dirty>,
    /// The same since they were last written to the journal.
    pub(super) unjournaled: HashMap<Box<str>, Dirty>,
}

impl Mirror {
    pub(super) fn mark(&mut self, serial: &str, dirty: Dirty) {
        for set in [&mut self.dirty, &mut self.unjournaled] {
            match set.get_mut(serial) {
                Some(entry) if dirty == Dirty::Whole => *entry = Dirty::Whole,
                Some(_) => {}
                None => {
                    set.insert(serial.into(), dirty);
                }
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        self.tokens.len()
    }

    pub(super) fn contains(&self, serial: &str) -> bool {
        self.tokens.contains(serial.as_bytes())
    }

    pub(super) fn packed(&self, serial: &str) -> Option<Packed> {
        self.tokens.get(serial.as_bytes()).cloned()
    }

    pub(super) fn get(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        self.tokens.get(serial.as_bytes()).map(Packed::decode).transpose()
    }

    /// Every token, shared (decode them after letting the lock go).
    pub(super) fn snapshot(&self) -> Vec<Packed> {
        self.tokens.iter().cloned().collect()
    }

    /// The tokens that may belong to `user` (decode, then compare the owner).
    pub(super) fn candidates_of(&self, user: &str) -> Vec<Packed> {
        self.owners.get(&self.hasher.hash_one(user)).cloned().unwrap_or_default()
    }

    /// Adds (or puts back) a token; `dirty` when sled does not have it yet.
    pub(super) fn put(&mut self, token: &Token, dirty: bool) {
        self.put_packed(Packed::encode(token), token.owner_name(), dirty);
    }

    /// [`Mirror::put`] of a token already encoded, owned by `owner`.
    pub(super) fn put_packed(&mut self, packed: Packed, owner: Option<&str>, dirty: bool) {
        if let Some(name) = owner {
            self.owners.entry(self.hasher.hash_one(name)).or_default().push(packed.clone());
        }
        if dirty {
            self.mark(&String::from_utf8_lossy(packed.serial()), Dirty::Whole);
        }
        self.tokens.replace(packed);
    }

    /// Replaces `old` by `new` (same serial) and marks what changed.
    pub(super) fn replace(&mut self, old: &Token, new: &Token, dirty: Dirty) {
        let packed = Packed::encode(new);
        match (old.owner_name(), new.owner_name()) {
            // The same owner (a RADIUS decision): the index entry is updated in place.
            (Some(before), Some(after)) if before == after => {
                let key = self.hasher.hash_one(after);
                if let Some(slot) = self
                    .owners
                    .get_mut(&key)
                    .and_then(|tokens| tokens.iter_mut().find(|t| t.serial() == new.serial.as_bytes()))
                {
                    *slot = packed.clone();
                }
            }
            (before, after) => {
                if let Some(name) = before {
                    self.forget_owner(name, new.serial.as_bytes());
                }
                if let Some(name) = after {
                    self.owners.entry(self.hasher.hash_one(name)).or_default().push(packed.clone());
                }
            }
        }
        self.tokens.replace(packed);
        self.mark(&new.serial, dirty);
    }

    /// Takes `token` out (its removal is to be written).
    pub(super) fn remove(&mut self, token: &Token) {
        self.tokens.remove(token.serial.as_bytes());
        if let Some(name) = token.owner_name() {
            self.forget_owner(name, token.serial.as_bytes());
        }
        self.mark(&token.serial, Dirty::Whole);
    }

    fn forget_owner(&mut self, name: &str, serial: &[u8]) {
        let key = self.hasher.hash_one(name);
        if let Some(tokens) = self.owners.get_mut(&key) {
            tokens.retain(|t| t.serial() != serial);
            if tokens.is_empty() {
                self.owners.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Token {
        Token {
            serial: "HW0001".into(),
            type_id: "hw-totp".into(),
            params: OtpParams { algorithm: Algorithm::Totp, digits: 8, hash: HashAlg::Sha512, period: 60 },
            sealed_seed: (0..60).collect(),
            counter: u64::MAX,
            last_step: Some(12),
            drift: -3,
            owner: Some(Owner {
                name: "alice".into(),
                display_name: Some("Alice Ä".into()),
                dn: Some("uid=alice".into()),
            }),
            disabled: true,
            locked: true,
            fail_count: 7,
            created_at: 1_700_000_000,
            last_used_at: Some(1),
            locked_at: Some(2),
            failed_at: Some(3),
            version: 42,
        }
    }

    #[test]
    fn a_token_round_trips_with_every_field() {
        let token = full();
        assert_eq!(Packed::encode(&token).decode().unwrap(), token);
        let bare = Token {
            owner: Some(Owner { name: "bob".into(), display_name: None, dn: None }),
            last_step: None,
            last_used_at: None,
            locked_at: None,
            failed_at: None,
            disabled: false,
            ..full()
        };
        assert_eq!(Packed::encode(&bare).decode().unwrap(), bare);
        let unowned =
            Token { owner: None, params: OtpParams { algorithm: Algorithm::Hotp, ..full().params }, ..full() };
        let packed = Packed::encode(&unowned);
        assert_eq!(packed.decode().unwrap(), unowned);
        assert_eq!(packed.serial(), b"HW0001");
        assert!(packed.0.len() < 200, "{} bytes", packed.0.len());
    }

    #[test]
    fn a_cut_or_damaged_encoding_is_an_error_not_a_panic() {
        let bytes = Packed::encode(&full()).0.to_vec();
        for cut in 0..bytes.len() {
            assert!(Packed(bytes[..cut].into()).decode().is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        let algorithm_at = 4 + 6 + 8 + 4 + 7;
        bad[algorithm_at] = 9;
        assert!(Packed(bad.into()).decode().is_err());
    }

    #[test]
    fn the_owner_index_follows_changes() {
        let mut mirror = Mirror::default();
        let alice = full();
        mirror.put(&alice, false);
        let mut other = Token { serial: "HW0002".into(), ..full() };
        mirror.put(&other, false);
        let serials = |m: &Mirror, user: &str| -> Vec<String> {
            let mut found: Vec<String> = m
                .candidates_of(user)
                .iter()
                .map(|p| p.decode().unwrap())
                .filter(|t| t.owner_name() == Some(user))
                .map(|t| t.serial)
                .collect();
            found.sort();
            found
        };
        assert_eq!(serials(&mirror, "alice"), ["HW0001", "HW0002"]);
        // A decision (same owner): the index gives the new state.
        let used = Token { counter: 5, ..other.clone() };
        mirror.replace(&other, &used, Dirty::Progress);
        let counters: Vec<u64> = mirror.candidates_of("alice").iter().map(|p| p.decode().unwrap().counter).collect();
        assert!(counters.contains(&5) && counters.len() == 2, "{counters:?}");
        other = used;
        let moved = Token { owner: Some(Owner { name: "bob".into(), display_name: None, dn: None }), ..other.clone() };
        mirror.replace(&other, &moved, Dirty::Whole);
        assert_eq!(serials(&mirror, "alice"), ["HW0001"]);
        assert_eq!(serials(&mirror, "bob"), ["HW0002"]);
        assert_eq!(mirror.dirty.get("HW0002"), Some(&Dirty::Whole));
        other = moved;
        mirror.remove(&other);
        assert!(serials(&mirror, "bob").is_empty() && !mirror.contains("HW0002"));
        assert_eq!(mirror.len(), 1);
        assert_eq!(mirror.get("HW0001").unwrap().unwrap(), alice);
    }
}
