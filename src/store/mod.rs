//! The store seam: one async trait that every storage engine implements.
//!
//! The domain talks to `dyn Store` only; no engine type leaves its module.
//! Engines keep what they are given: seeds arrive sealed, audit entries
//! arrive as events that the engine chains ([`crate::model::audit::Chain`]).
//!
//! What an engine owes the domain:
//! - **Compare-and-swap on a version.** Every stored token has a version;
//!   [`Store::swap`] writes a token only when the stored version is still the
//!   one the caller read, so a networked engine can implement it with one
//!   conditional statement. A lost race is [`Swap::Conflict`] with the fresh
//!   token, and the domain simply decides again.
//! - **A change and its audit entry in one durable step.** When `swap`,
//!   `insert` or `remove` return Ok with [`Commit::Durable`], the change and
//!   its audit entry survive a crash together (and, under `durability: full`,
//!   a power cut). [`Commit::Soon`] lets an engine that batches writes make a
//!   change durable a little later (a fail count); an engine may treat it as
//!   `Durable`.
//! - **Filters pushed down**: [`TokenQuery`] and [`AuditQuery`] are answered
//!   by the engine, in serial (resp. time) order, paged.
//! - **Shared state behind the seam**: challenge states and the audit chain
//!   heads live here, so a second node sees them.
//!
//! Durability, group commit and write-behind are each engine's own business.

pub mod memory;
pub mod postgres;
pub mod sled;

/// The contract suite, public so that tests/postgres can run it on a real database.
#[doc(hidden)]
pub mod contract;

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::model::audit::{AuditEntry, AuditQuery, AuditWrite, ChainReport, Pruned, Retention};
use crate::model::token::{Token, TokenState};

/// Schema version written into a new sled store and checked on open.
pub const SCHEMA_VERSION: u32 = 2;

pub use crate::config::Durability;

/// When a write must be durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Before the call returns (an accepted code, an operator's change).
    Durable,
    /// Within a short while (a fail count, a rejected request's audit entry).
    Soon,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or cannot write now (disk full, database
    /// down); retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    #[error("store schema version {found} is not supported (this build reads version {supported})")]
    Schema { found: u32, supported: u32 },
    #[error("token {0} already exists")]
    Exists(String),
    /// A compare-and-swap lost too many races in a row.
    #[error("token {0} kept changing while it was being updated; try again")]
    Conflict(String),
}

/// The result of [`Store::swap`] and [`Store::remove`].
#[derive(Debug, Clone, PartialEq)]
pub enum Swap {
    /// Written; the token as stored now (with its new version).
    Swapped(Token),
    /// The stored version was not the expected one: here is the current token.
    Conflict(Token),
    NotFound,
}

/// Filters of a token listing; all given filters must match. Answered in
/// serial order, starting after `after`, at most `limit` tokens (0: all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenQuery {
    /// A part of the serial (case-sensitive).
    pub serial_contains: Option<String>,
    pub type_id: Option<String>,
    pub owner: Option<String>,
    /// With `now` and `lockout_seconds`: the state as operators see it.
    pub state: Option<TokenState>,
    pub unassigned: bool,
    pub after: Option<String>,
    pub limit: usize,
    pub now: u64,
    pub lockout_seconds: u64,
}

impl TokenQuery {
    /// The filter every engine applies (an engine may pre-select by index).
    pub fn matches(&self, token: &Token) -> bool {
        self.serial_contains.as_ref().is_none_or(|s| token.serial.contains(s.as_str()))
            && self.type_id.as_ref().is_none_or(|t| &token.type_id == t)
            && self.owner.as_ref().is_none_or(|u| token.owner_name() == Some(u.as_str()))
            && self.state.is_none_or(|s| token.state_at(self.now, self.lockout_seconds) == s)
            && (!self.unassigned || token.owner.is_none())
            && self.after.as_ref().is_none_or(|a| token.serial.as_str() > a.as_str())
    }
}

/// Token counts for status pages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Census {
    pub total: u64,
    pub by_state: BTreeMap<String, u64>,
    pub unassigned: u64,
    /// Tokens per type id (the start-up check of undefined types).
    #[serde(skip)]
    pub by_type: BTreeMap<String, u64>,
}

impl Census {
    pub fn count(&mut self, token: &Token, now: u64, lockout_seconds: u64) {
        self.total += 1;
        if token.owner.is_none() {
            self.unassigned += 1;
        }
        *self.by_state.entry(token.state_at(now, lockout_seconds).as_str().to_string()).or_default() += 1;
        match self.by_type.get_mut(&token.type_id) {
            Some(count) => *count += 1,
            None => {
                self.by_type.insert(token.type_id.clone(), 1);
            }
        }
    }

    pub fn empty() -> Census {
        let mut census = Census::default();
        for state in [TokenState::Active, TokenState::Disabled, TokenState::Locked] {
            census.by_state.insert(state.as_str().to_string(), 0);
        }
        census
    }
}

/// A pending Access-Challenge: single use, bound to a client and a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The State attribute (random bytes).
    pub state: Vec<u8>,
    pub client: String,
    /// The user name as the NAS sent it; its answer must name the same.
    pub asked_as: String,
    /// The directory's name of the user, which owns the tokens.
    pub user: String,
    /// Unix milliseconds.
    pub expires_at_ms: u64,
    pub attempts_left: u32,
}

/// What an engine reports about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreHealth {
    /// `sled`, `memory`, `postgres`.
    pub engine: String,
    /// Bytes on disk, where the engine knows.
    pub bytes: u64,
    /// Why the store cannot write or be reached now (none: healthy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing: Option<String>,
    /// Space left for the store on its file system, and that file
    /// system's size, in bytes (engines on a local disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskSpace>,
}

/// Free and total bytes of a file system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpace {
    pub free: u64,
    pub total: u64,
}

impl DiskSpace {
    /// Of the file system holding `path` (space an unprivileged process may use).
    pub fn of(path: &std::path::Path) -> Option<DiskSpace> {
        let stat = nix::sys::statvfs::statvfs(path).ok()?;
        let block = stat.fragment_size() as u64;
        Some(DiskSpace { free: stat.blocks_available() as u64 * block, total: stat.blocks() as u64 * block })
    }

    /// Little room left: under 10 % of the file system or under 256 MiB.
    pub fn is_low(&self) -> bool {
        self.free < (256 << 20) || self.free.saturating_mul(10) < self.total
    }
}

/// Receives a store's content one item at a time ([`Store::export`]).
pub trait ExportSink: Send {
    fn token(&mut self, token: Token) -> Result<(), StoreError>;
    /// One audit entry as stored (its JSON text), oldest first per chain.
    fn audit(&mut self, seq: u64, text: String) -> Result<(), StoreError>;
}

#[async_trait::async_trait]
pub trait Store: Send + Sync {
    // ------------------------------------------------------------ tokens

    async fn get(&self, serial: &str) -> Result<Option<Token>, StoreError>;

    /// The tokens owned by `user`, in serial order.
    async fn tokens_of(&self, user: &str) -> Result<Vec<Token>, StoreError>;

    /// Tokens matching `query`, in serial order (see [`TokenQuery`]).
    async fn find(&self, query: &TokenQuery) -> Result<Vec<Token>, StoreError>;

    /// Counts of tokens by state at `now`.
    async fn census(&self, now: u64, lockout_seconds: u64) -> Result<Census, StoreError>;

    /// Those of `serials` that exist.
    async fn existing(&self, serials: &[String]) -> Result<HashSet<String>, StoreError>;

    /// Inserts new tokens and their audit entries all together (durable on
    /// return): nothing is written when any serial exists already or
    /// appears twice ([`StoreError::Exists`]).
    async fn insert(&self, tokens: Vec<Token>, audit: Vec<AuditWrite>) -> Result<(), StoreError>;

    /// Writes `token` in place of the stored token with the same serial if
    /// the stored version is still `token.version`, with its audit entry.
    /// Owner changes move the owner index in the same step.
    async fn swap(&self, token: &Token, audit: Option<AuditWrite>, commit: Commit) -> Result<Swap, StoreError>;

    /// Removes the token if its stored version is `expected_version`.
    async fn remove(&self, serial: &str, expected_version: u64, audit: AuditWrite) -> Result<Swap, StoreError>;

    // ------------------------------------------------------------- audit

    /// Appends audit entries that go with no token change.
    async fn record(&self, audit: Vec<AuditWrite>, commit: Commit) -> Result<(), StoreError>;

    /// Entries matching `query`, newest first.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;

    /// Walks every chain from its oldest entry; one report per chain.
    async fn verify_audit(&self) -> Result<Vec<ChainReport>, StoreError>;

    // -------------------------------------------------------- challenges

    /// Keeps a challenge; false when `max_pending` unexpired ones are kept already.
    async fn put_challenge(&self, challenge: Challenge, now_ms: u64, max_pending: usize) -> Result<bool, StoreError>;

    /// Removes and returns the challenge with this State: it is single use,
    /// whatever follows.
    async fn take_challenge(&self, state: &[u8]) -> Result<Option<Challenge>, StoreError>;

    /// Challenges kept (expired ones may be counted until they are swept).
    async fn pending_challenges(&self) -> Result<u64, StoreError>;

    // -------------------------------------------------- store metadata

    /// A small value the daemon keeps about the store itself under `name`
    /// (the master key's check value, the audit head's anchor); None when
    /// never set. Names are short ASCII words; values a few dozen bytes.
    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Sets the value under `name`, replacing any, durable on return
    /// together with every write made before the call (the audit anchor
    /// names the newest entry [`Store::audit`] returned, which must then
    /// survive a crash as the anchor does). Such values are not tokens or
    /// audit entries: [`Store::is_empty`] ignores
    /// them and [`Store::export`] does not carry them.
    async fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError>;

    // ------------------------------------------------------- whole store

    /// True when the store holds no token and no audit entry.
    async fn is_empty(&self) -> Result<bool, StoreError>;

    /// Hands every token, then every audit entry, to `sink`, without
    /// stopping writes for the whole time.
    async fn export(&self, sink: &mut dyn ExportSink) -> Result<(), StoreError>;

    /// Writes audit entries exactly as a backup carries them (a restore).
    /// Entries that start after 1 (a pruned log) leave the checkpoint their
    /// first entry implies.
    async fn restore_audit(&self, entries: Vec<(u64, String)>) -> Result<(), StoreError>;

    /// Removes the oldest audit entries that `rule` does not keep (by age
    /// against `now`, by count), in steps, leaving a [`Checkpoint`] so that
    /// what remains still verifies. Never removes the newest entry.
    ///
    /// The default keeps everything: for an engine whose audit is bounded
    /// elsewhere (a database with its own retention job).
    ///
    /// [`Checkpoint`]: crate::model::audit::Checkpoint
    async fn prune_audit(&self, rule: Retention, now: u64) -> Result<Pruned, StoreError> {
        let _ = (rule, now);
        Ok(Pruned::default())
    }

    async fn health(&self) -> StoreHealth;

    /// Makes every write so far durable (shutdown).
    async fn flush(&self) -> Result<(), StoreError>;
}
