//! The synchronous store trait of the sled engine (being replaced by [`super::Store`]).
//!
//! The domain ([`crate::service`]) talks to `dyn TokenStore` only; sled types
//! never leave [`sled_store`]. Engines store what they are given: seeds arrive
//! sealed, audit entries arrive hashed. An engine's job is atomicity (compare
//! and swap on a token, owner index kept in step) and durability (`flush`).
//! An engine may keep state in memory and write it behind, as the sled
//! engine does, as long as `flush` makes everything durable.

use std::collections::HashSet;

use super::StoreError;
use crate::model::token::Token;

/// What an update closure decides for the token it is shown.
pub enum Change<T> {
    /// Write this token (in place of the one shown) and report `T`.
    Write(Box<Token>, T),
    /// Leave the token as it is and report `T`.
    Keep(T),
}

/// Result of [`TokenStore::update`].
pub enum Updated<T> {
    NotFound,
    Done(T),
}

/// One audit record as the store keeps it: a sequence number and opaque bytes.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub seq: u64,
    pub bytes: Vec<u8>,
}

pub trait TokenStore: Send + Sync {
    fn get(&self, serial: &str) -> Result<Option<Token>, StoreError>;

    /// True when a token with this serial exists (cheaper than `get`).
    fn contains(&self, serial: &str) -> Result<bool, StoreError> {
        Ok(self.get(serial)?.is_some())
    }

    /// Those of `serials` that exist. Engines may answer a large set in one
    /// ordered pass instead of one look-up each.
    fn existing(&self, serials: &[&str]) -> Result<HashSet<String>, StoreError> {
        let mut found = HashSet::new();
        for serial in serials {
            if self.contains(serial)? {
                found.insert(serial.to_string());
            }
        }
        Ok(found)
    }

    /// The tokens owned by `user`, through the owner index.
    fn tokens_of(&self, user: &str) -> Result<Vec<Token>, StoreError>;

    /// Visits every token in serial order until `visit` returns false.
    fn scan(&self, visit: &mut dyn FnMut(Token) -> bool) -> Result<(), StoreError>;

    fn count(&self) -> Result<usize, StoreError>;

    /// Inserts new tokens all together, atomically: nothing is written when
    /// any serial already exists or appears twice ([`StoreError::Exists`]).
    fn insert_all(&self, tokens: &[Token]) -> Result<(), StoreError>;

    /// Reads the token, lets `decide` choose, and writes its choice only if the
    /// token did not change in between (otherwise `decide` runs again on the
    /// fresh token). Owner changes move the owner index in the same atomic step.
    ///
    /// `seen` is the caller's copy of the token, if it has one: an engine may
    /// use it to skip the first read.
    fn update(
        &self,
        serial: &str,
        seen: Option<&Token>,
        decide: &mut dyn FnMut(&Token) -> Change<()>,
    ) -> Result<Updated<()>, StoreError>;

    /// Removes a token and its index entry; returns it.
    fn remove(&self, serial: &str) -> Result<Option<Token>, StoreError>;

    /// Appends an audit record at `seq` (which must be past the last one).
    fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;

    /// Appends several audit records at once (all or none).
    fn append_audit_batch(&self, records: &[AuditRecord]) -> Result<(), StoreError>;

    /// The newest audit record.
    fn last_audit(&self) -> Result<Option<AuditRecord>, StoreError>;

    /// Visits audit records from newest to oldest until `visit` returns false.
    fn audit_newest_first(&self, visit: &mut dyn FnMut(AuditRecord) -> bool) -> Result<(), StoreError>;

    /// Visits audit records from oldest to newest until `visit` returns false.
    fn audit_oldest_first(&self, visit: &mut dyn FnMut(AuditRecord) -> bool) -> Result<(), StoreError>;

    /// Overwrites one audit record in place. Only for tests of tamper detection.
    #[doc(hidden)]
    fn overwrite_audit_for_test(&self, record: &AuditRecord) -> Result<(), StoreError>;

    /// Makes every write so far durable (blocking).
    fn flush(&self) -> Result<(), StoreError>;

    /// Hands changes kept in memory to the storage without waiting for them
    /// to be durable. Engines that write through need not do anything; the
    /// group-commit thread calls it when idle.
    fn write_behind(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Bytes on disk, for status output.
    fn size_on_disk(&self) -> Result<u64, StoreError>;

    /// Every token and audit record at one point in time: writes wait while
    /// the snapshot is copied (reads and RADIUS checks go on).
    fn snapshot(&self) -> Result<Snapshot, StoreError>;
}

/// A point-in-time copy of the store, for backups.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub schema_version: u32,
    pub tokens: Vec<Token>,
    /// Audit entries as stored (sequence, JSON text).
    pub audit: Vec<(u64, String)>,
}

/// Runs an update whose closure reports a value through a side channel.
pub fn update_with<T>(
    store: &dyn TokenStore,
    serial: &str,
    decide: impl FnMut(&Token) -> Change<T>,
) -> Result<Updated<T>, StoreError> {
    update_seen(store, serial, None, decide)
}

/// [`update_with`] starting from the caller's copy of the token.
pub fn update_seen<T>(
    store: &dyn TokenStore,
    serial: &str,
    seen: Option<&Token>,
    mut decide: impl FnMut(&Token) -> Change<T>,
) -> Result<Updated<T>, StoreError> {
    let mut outcome: Option<T> = None;
    let updated = store.update(serial, seen, &mut |token| match decide(token) {
        Change::Write(new, value) => {
            outcome = Some(value);
            Change::Write(new, ())
        }
        Change::Keep(value) => {
            outcome = Some(value);
            Change::Keep(())
        }
    })?;
    Ok(match (updated, outcome) {
        (Updated::Done(()), Some(value)) => Updated::Done(value),
        _ => Updated::NotFound,
    })
}
