//! The embedded storage engine: sled, with every token also held in memory.
//!
//! Trees: `tokens` (serial -> token JSON), `progress` (serial -> the fields a
//! RADIUS decision changes, see [`Progress`]: they override the JSON's),
//! `audit` (big-endian sequence ->
//! entry bytes, or a chunk of consecutive entries keyed by the first one's
//! sequence: see [`AuditChunk`]), `meta` (schema version, the daemon's
//! own values such as the master key's check value).
//!
//! This engine is the only process using its store, so it keeps the whole
//! `tokens` tree in memory as well (the stored bytes, in serial order) with an
//! owner index beside it. Reads and updates work on that copy under one lock:
//! RADIUS never waits for sled. A change marks the token unjournaled and
//! dirty. The group-commit thread makes RADIUS decisions durable in the
//! journal ([`super::journal`]: the changed tokens' progress and the sealed
//! audit entries, one `write` and one `fdatasync` per group); a checkpoint
//! thread writes journaled audit entries into sled every
//! [`super::checkpoint::AUDIT_TICK`] and, every few seconds, dirty tokens
//! too, flushes sled and empties the journal file it left
//! ([`Core::checkpoint`]). Opening the store replays the journal into sled.
//! Operators' changes and imports are written to sled in one transaction
//! with their audit entries and flushed before they return.
//!
//! Every token state written (to the journal or to sled) carries a change
//! sequence taken under the lock that orders the states, so replay never
//! puts an older state over a newer one.
//!
//! Durability: sled's own flush ends with `sync_file_range`, which survives a
//! crash of the process but neither flushes the file's metadata nor the
//! disk's write cache. With [`Durability::Full`] (the default) every journal
//! write and every sled flush also runs `fdatasync`, so an answered
//! decision survives a power cut as well.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::audit_chunk::AuditChunk;
use super::journal::{Batch, Journal, Replay};
use super::mirror::{Dirty, Mirror, Packed};
use super::progress::Progress;
use super::{AuditRecord, Durability};
use crate::model::audit::Chain;
use crate::model::token::Token;
use crate::store::{SCHEMA_VERSION, StoreError, Swap};

const SCHEMA_KEY: &[u8] = b"schema_version";
/// Schema 1 kept an owner index tree on disk; schema 2 rebuilds it in memory;
/// schema 3 adds the journal and progress records of version 2.
const SCHEMA_WITH_OWNER_TREE: u32 = 1;
const SCHEMA_WITHOUT_JOURNAL: u32 = 2;
/// Most audit entries held in memory while the store cannot write them
/// (about 1 KB each).
pub(super) const MAX_UNWRITTEN_AUDIT: usize = 20_000;
/// Tokens written per sled batch by [`SledStore::write_behind`].
const WRITE_CHUNK: usize = 2000;

pub(super) struct Core {
    db: sled::Db,
    tokens: sled::Tree,
    progress: sled::Tree,
    audit: sled::Tree,
    /// Markers of inserts being written (id -> their serials), see [`Core::insert_audited`].
    imports: sled::Tree,
    /// Schema version, audit checkpoint.
    meta: sled::Tree,
    mirror: RwLock<Mirror>,
    /// Held while dirty tokens are taken and written, so writes land in order.
    writer: Mutex<()>,
    /// Held by an insert from its check of the serials to its last write.
    inserting: Mutex<()>,
    /// The audit chain's head and the entries sealed but not yet written.
    audit_queue: Mutex<AuditQueue>,
    /// Held while queued audit entries are taken and written, so they land in order.
    audit_writer: Mutex<()>,
    /// sled's log file, opened again for `fdatasync` ([`Durability::Full`]).
    log_file: std::fs::File,
    durability: Durability,
    /// The journal and the buffer its groups are built in; held from taking
    /// a group's changes to the end of its write.
    pub(super) journal: Mutex<JournalState>,
    /// The next change sequence (see the module's doc).
    change_seq: AtomicU64,
    /// Opened only to look (`--check-config`): the journal is read, never written or emptied.
    read_only: bool,
    /// Held through a checkpoint: one at a time.
    pub(super) checkpointing: Mutex<()>,
}

pub(super) struct JournalState {
    pub(super) journal: Journal,
    pub(super) batch: Batch,
}

fn io(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { .. } => StoreError::Corrupt(e.to_string()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn encode(token: &Token) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(token).map_err(|e| StoreError::Corrupt(format!("cannot encode token: {e}")))
}

fn decode(bytes: &[u8]) -> Result<Token, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("cannot decode token: {e}")))
}

/// How long an open waits for the file lock of a handle that is being
/// dropped (sled's flusher thread lets go of it a moment after the last
/// handle): a restart, a restore right after a stop, a test reopening.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens sled at `path`, waiting up to [`LOCK_WAIT`] for the file lock; a
/// lock still held after that (another radotpd on the same directory) is an
/// error that says so.
fn open_db(path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let config = sled::Config::new().path(path).cache_capacity(cache_bytes).flush_every_ms(Some(500));
        match config.open() {
            Ok(db) => return Ok(db),
            // sled reports a held lock as an Io error of kind Other whose
            // text names the lock.
            Err(sled::Error::Io(e)) if is_lock_held(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(sled::Error::Io(e)) if is_lock_held(&e) => {
                return Err(StoreError::Unavailable(format!(
                    "{} is in use by another process (is another radotpd running on it?)",
                    path.display()
                )));
            }
            Err(e) => return Err(io(e)),
        }
    }
}

fn is_lock_held(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

/// Audit entries sealed onto the chain and not yet in sled.
pub(super) struct AuditQueue {
    pub(super) chain: Chain,
    pub(super) pending: Vec<AuditRecord>,
    /// How many of `pending` (from the front) are in the journal.
    pub(super) journaled: usize,
    /// The engine is being replaced ([`Core::take_unwritten_audit`]): nothing
    /// more is sealed or journaled by it.
    pub(super) closed: bool,
}

impl AuditQueue {
    /// Takes the first `count` entries (written to sled).
    fn drain_front(&mut self, count: usize) {
        let count = count.min(self.pending.len());
        self.pending.drain(..count);
        self.journaled = self.journaled.saturating_sub(count);
    }
}

impl Core {
    /// Opens (or creates) the store at `path` with [`Durability::Full`].
    /// `cache_bytes` bounds sled's page cache. A store of an older schema is
    /// migrated.
    pub(super) fn open(path: &Path, cache_bytes: u64, node: Option<String>) -> Result<Self, StoreError> {
        Self::open_with(path, cache_bytes, true, node)
    }

    /// Opens the store to look at it (`--check-config`): an older schema is
    /// read as it is and left so, so that checking a configuration with a
    /// newer radotpd never makes the store unreadable for the installed one.
    pub(super) fn open_to_check(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        Self::open_with(path, cache_bytes, false, None)
    }

    fn open_with(path: &Path, cache_bytes: u64, migrate: bool, node: Option<String>) -> Result<Self, StoreError> {
        super::private::prepare_dir(path)?;
        let db = open_db(path, cache_bytes)?;
        super::private::narrow_contents(path);
        let meta = db.open_tree("meta").map_err(io)?;
        match meta.get(SCHEMA_KEY).map_err(io)? {
            None => {
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes()).map_err(io)?;
                db.flush().map_err(io)?;
            }
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt("schema version is unreadable".into()))?;
                let older = found == SCHEMA_WITH_OWNER_TREE || found == SCHEMA_WITHOUT_JOURNAL;
                if older && !migrate {
                    // Readable as it is: the owner tree is simply not used,
                    // progress records of version 1 are read as they are.
                } else if older {
                    if found == SCHEMA_WITH_OWNER_TREE {
                        // The owner index now lives in memory only.
                        db.drop_tree("owners").map_err(io)?;
                    }
                    meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes()).map_err(io)?;
                    db.flush().map_err(io)?;
                } else if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema { found, supported: SCHEMA_VERSION });
                }
            }
        }
        let tokens = db.open_tree("tokens").map_err(io)?;
        let progress = db.open_tree("progress").map_err(io)?;
        let imports = db.open_tree("imports").map_err(io)?;
        if migrate {
            let undone = Self::undo_interrupted_inserts(&imports, &tokens, &progress)?;
            if undone > 0 {
                db.flush().map_err(io)?;
                tracing::warn!(
                    tokens = undone,
                    "an import cut short by a crash was taken back: none of its tokens are kept"
                );
            }
        }
        let audit = db.open_tree("audit").map_err(io)?;
        let log_path = path.join("db");
        let log_file = std::fs::File::open(&log_path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", log_path.display())))?;
        let mut replay = Replay::read(path)?;
        if migrate {
            Self::replay_journal(&tokens, &progress, &audit, &mut replay)?;
            db.flush().map_err(io)?;
            log_file.sync_data().map_err(|e| StoreError::Unavailable(format!("fdatasync of the store: {e}")))?;
        }
        let mut mirror = Mirror::default();
        let mut max_seq = replay.max_seq;
        for entry in tokens.iter() {
            let (key, bytes) = entry.map_err(io)?;
            let mut token = decode(&bytes)?;
            if token.serial.as_bytes() != key.as_ref() {
                return Err(StoreError::Corrupt(format!("token {} is stored under another serial", token.serial)));
            }
            let mut stored_seq = 0;
            if let Some(record) = progress.get(&key).map_err(io)? {
                let stamped = Progress::decode(&record, token.failed_at).ok_or_else(|| {
                    StoreError::Corrupt(format!("progress record of token {} is unreadable", token.serial))
                })?;
                stamped.progress.apply(&mut token);
                stored_seq = stamped.seq;
                max_seq = max_seq.max(stamped.seq);
            }
            if !migrate {
                // Looking only: what the journal holds is shown, not written.
                Self::replayed_in_memory(&mut token, stored_seq, &replay)?;
            }
            token.version = 1;
            mirror.put(&token, false);
        }
        if migrate {
            // Records of tokens that are gone (a removal cut short by a crash).
            for entry in progress.iter() {
                let (key, _) = entry.map_err(io)?;
                if !tokens.contains_key(&key).map_err(io)? {
                    progress.remove(key).map_err(io)?;
                }
            }
        }
        let mut journal = Journal::open(path)?;
        if migrate {
            // Everything the journal held is in sled now, durably.
            journal.empty(0)?;
            journal.empty(1)?;
        }
        let chain = match audit.last().map_err(io)? {
            None => Chain { node, ..Chain::default() },
            Some((key, value)) => match AuditChunk::decode(&key, &value)?.pop() {
                None => Chain { node, ..Chain::default() },
                Some(record) => Chain::after_stored(node, record.seq, &record.bytes).map_err(StoreError::Corrupt)?,
            },
        };
        Ok(Core {
            tokens,
            progress,
            audit,
            imports,
            meta,
            db,
            mirror: RwLock::new(mirror),
            writer: Mutex::new(()),
            inserting: Mutex::new(()),
            audit_queue: Mutex::new(AuditQueue { chain, pending: Vec::new(), journaled: 0, closed: false }),
            audit_writer: Mutex::new(()),
            log_file,
            durability: Durability::Full,
            journal: Mutex::new(JournalState { journal, batch: Batch::default() }),
            change_seq: AtomicU64::new(max_seq + 1),
            read_only: !migrate,
            checkpointing: Mutex::new(()),
        })
    }

    /// A new change sequence; taken under the mirror's lock, so a later
    /// sequence always goes with a state at least as new.
    fn next_seq(&self) -> u64 {
        self.change_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Chooses what a flush guarantees.
    pub(super) fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    fn read(&self) -> RwLockReadGuard<'_, Mirror> {
        self.mirror.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Mirror> {
        self.mirror.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `changes` to sled: a token (`Some`) or its removal (`None`).
    ///
    /// Four batches: removed tokens, whole tokens, progress records (of
    /// every changed token, stamped with the change's sequence), then the
    /// progress records of removed tokens. A crash between two of them
    /// leaves states the journal still holds (it is emptied only after the
    /// sled flush that follows): a whole token written before its newer
    /// progress record is put right by replay, since the record sled has is
    /// older than the journal's; a progress record never lands before the
    /// token's JSON it belongs to.
    fn apply_changes(&self, changes: &[Pending]) -> Result<(), StoreError> {
        let mut removed = sled::Batch::default();
        let mut progress = sled::Batch::default();
        let mut whole = sled::Batch::default();
        let mut progress_removed = sled::Batch::default();
        for (serial, change, seq) in changes {
            match change {
                Some((packed, dirty)) => {
                    let token = &packed.decode()?;
                    progress.insert(serial.as_bytes(), Progress::of(token).encode(*seq));
                    if *dirty == Dirty::Whole {
                        whole.insert(serial.as_bytes(), encode(token)?);
                    }
                }
                None => {
                    removed.remove(serial.as_bytes());
                    progress_removed.remove(serial.as_bytes());
                }
            }
        }
        self.tokens.apply_batch(removed).map_err(io)?;
        self.tokens.apply_batch(whole).map_err(io)?;
        self.progress.apply_batch(progress).map_err(io)?;
        self.progress.apply_batch(progress_removed).map_err(io)
    }
}

impl Core {
    pub(super) fn get(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        self.read().get(serial)
    }

    pub(super) fn existing(&self, serials: &[String]) -> HashSet<String> {
        let mirror = self.read();
        serials.iter().filter(|s| mirror.contains(s)).cloned().collect()
    }

    pub(super) fn tokens_of(&self, user: &str) -> Result<Vec<Token>, StoreError> {
        let candidates = self.read().candidates_of(user);
        let mut found = Vec::with_capacity(candidates.len());
        for packed in candidates {
            let token = packed.decode()?;
            if token.owner_name() == Some(user) {
                found.push(token);
            }
        }
        found.sort_by(|a, b| a.serial.cmp(&b.serial));
        Ok(found)
    }

    /// The tokens (shared, encoded: decode them one at a time), in serial order.
    pub(super) fn all(&self) -> Vec<Packed> {
        self.read().snapshot()
    }

    pub(super) fn count(&self) -> usize {
        self.read().len()
    }

    /// Writes `token` if the stored version is still `token.version`
    /// (in memory; written behind). The lock is held from the check to the
    /// write, and the owner index moves in the same step.
    /// On success, also returns the token as it was, for [`Core::undo_swap`].
    pub(super) fn swap(&self, token: &Token) -> Result<(Swap, Option<Arc<Token>>), StoreError> {
        let mut mirror = self.write();
        let Some(old) = mirror.get(&token.serial)? else { return Ok((Swap::NotFound, None)) };
        if old.version != token.version {
            return Ok((Swap::Conflict(old), None));
        }
        let new = Token { version: old.version + 1, ..token.clone() };
        Self::replace(&mut mirror, &old, &new);
        Ok((Swap::Swapped(new), Some(Arc::new(old))))
    }

    /// Puts `previous` back in place of `written` if nothing changed the
    /// token since (a write that could not be made durable).
    pub(super) fn undo_swap(&self, written: &Token, previous: &Token) {
        let mut mirror = self.write();
        let Ok(Some(current)) = mirror.get(&written.serial) else { return };
        if current.version == written.version {
            let back = Token { version: written.version + 1, ..previous.clone() };
            Self::replace(&mut mirror, &current, &back);
        }
    }

    fn replace(mirror: &mut Mirror, old: &Token, new: &Token) {
        let dirty = if Progress::is_all_that_changed(old, new) { Dirty::Progress } else { Dirty::Whole };
        mirror.replace(old, new, dirty);
    }

    /// Removes the token if its version is `expected_version`.
    pub(super) fn remove(&self, serial: &str, expected_version: u64) -> Result<Swap, StoreError> {
        let mut mirror = self.write();
        let Some(current) = mirror.get(serial)? else { return Ok(Swap::NotFound) };
        if current.version != expected_version {
            return Ok(Swap::Conflict(current));
        }
        mirror.remove(&current);
        Ok(Swap::Swapped(current))
    }

    /// Puts back a token whose removal could not be made durable.
    pub(super) fn undo_remove(&self, removed: &Token) {
        let mut mirror = self.write();
        if !mirror.contains(&removed.serial) {
            mirror.put(&Token { version: removed.version + 1, ..removed.clone() }, true);
        }
    }
}

impl Core {
    pub(super) fn write_behind(&self) -> Result<(), StoreError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let changes: Vec<Pending> = {
            let mut mirror = self.write();
            let dirty = std::mem::take(&mut mirror.dirty);
            dirty
                .into_iter()
                .map(|(serial, dirty)| {
                    let token = mirror.packed(&serial).map(|t| (t, dirty));
                    (serial, token, self.next_seq())
                })
                .collect()
        };
        for (done, chunk) in changes.chunks(WRITE_CHUNK).enumerate() {
            if let Err(e) = self.apply_changes(chunk) {
                // Whatever was not written is dirty again (and written with its newest value).
                let mut mirror = self.write();
                for (serial, _, _) in &changes[done * WRITE_CHUNK..] {
                    mirror.mark(serial, Dirty::Whole);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Flushes sled and, with [`Durability::Full`], its log file's data.
    pub(super) fn flush_sled(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(io)?;
        if self.durability == Durability::Full {
            self.log_file.sync_data().map_err(|e| StoreError::Unavailable(format!("fdatasync of the store: {e}")))?;
        }
        Ok(())
    }

    /// A value of [`crate::store::Store::get_meta`], kept in the `meta` tree
    /// beside the schema version (under `daemon/NAME`, so no name collides).
    pub(super) fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let meta = self.db.open_tree("meta").map_err(io)?;
        Ok(meta.get(format!("daemon/{name}")).map_err(io)?.map(|v| v.to_vec()))
    }

    /// Sets a value of [`crate::store::Store::put_meta`], durable on return.
    pub(super) fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let meta = self.db.open_tree("meta").map_err(io)?;
        meta.insert(format!("daemon/{name}"), value).map_err(io)?;
        self.flush()
    }

    pub(super) fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(io)
    }
}

/// A token to write behind with how much of it changed, or `None` for a
/// removal, and the change sequence of that state.
type Pending = (Box<str>, Option<(Packed, Dirty)>, u64);

#[path = "atomic.rs"]
mod atomic;
#[path = "audit_log.rs"]
mod audit_log;
#[path = "checkpoint.rs"]
pub(super) mod checkpoint;
#[cfg(test)]
#[path = "journal_tests.rs"]
mod journal_tests;
#[path = "retention.rs"]
mod retention;
#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
