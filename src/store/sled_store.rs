//! The embedded storage engine: sled, with every token also held in memory.
//!
//! Trees: `tokens` (serial -> token JSON), `progress` (serial -> the fields a
//! RADIUS decision changes, see [`Progress`]: they override the JSON's),
//! `audit` (big-endian sequence ->
//! entry bytes, or a chunk of consecutive entries keyed by the first one's
//! sequence: see [`AuditChunk`]), `meta` (schema version).
//!
//! This engine is the only process using its store, so it keeps the whole
//! `tokens` tree in memory as well (the stored bytes, in serial order) with an
//! owner index beside it. Reads and updates work on that copy under one lock:
//! RADIUS never waits for sled. A change marks the token dirty; dirty tokens
//! are written to sled as one batch by [`SledStore::write_behind`], which
//! [`TokenStore::flush`] runs first, so whatever a caller made durable with
//! `flush` is on disk with it. The group-commit thread calls `write_behind`
//! on its idle ticks too, so changes nobody waits for (a fail count) reach
//! sled within a few hundred milliseconds.
//!
//! Durability: sled's own flush ends with `sync_file_range`, which survives a
//! crash of the process but neither flushes the file's metadata nor the
//! disk's write cache. With [`Durability::Full`] (the default) every flush
//! also runs `fdatasync` on sled's log file, so a flushed counter survives a
//! power cut as well.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{AuditRecord, Change, Durability, SCHEMA_VERSION, Snapshot, StoreError, TokenStore, Updated};
use crate::model::token::Token;

const SCHEMA_KEY: &[u8] = b"schema_version";
/// Schema 1 kept an owner index tree on disk; schema 2 rebuilds it in memory.
const SCHEMA_WITH_OWNER_TREE: u32 = 1;
/// Tokens written per sled batch by [`SledStore::write_behind`].
const WRITE_CHUNK: usize = 2000;

/// The in-memory copy of the `tokens` tree.
#[derive(Default)]
struct Mirror {
    /// Serial -> the token (as it is, or will be, stored in sled).
    tokens: BTreeMap<Box<str>, Arc<Token>>,
    /// User -> serials of the tokens the user owns.
    owners: HashMap<Box<str>, Vec<Box<str>>>,
    /// Serials changed or removed since they were last written to sled,
    /// and how much of them changed.
    dirty: HashMap<Box<str>, Dirty>,
}

/// What a token needs written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dirty {
    /// Only its [`Progress`] (a RADIUS decision).
    Progress,
    /// The whole token (or its removal).
    Whole,
}

impl Mirror {
    fn mark(&mut self, serial: &str, dirty: Dirty) {
        let entry = self.dirty.entry(serial.into()).or_insert(dirty);
        if dirty == Dirty::Whole {
            *entry = Dirty::Whole;
        }
    }
}

impl Mirror {
    /// Adds a token; `dirty` when sled does not have it yet.
    fn put(&mut self, token: Arc<Token>, dirty: bool) {
        if let Some(name) = token.owner_name() {
            self.owners.entry(name.into()).or_default().push(token.serial.as_str().into());
        }
        if dirty {
            self.mark(&token.serial, Dirty::Whole);
        }
        self.tokens.insert(token.serial.as_str().into(), token);
    }

    fn forget_owner(&mut self, name: &str, serial: &str) {
        if let Some(serials) = self.owners.get_mut(name) {
            serials.retain(|s| &**s != serial);
            if serials.is_empty() {
                self.owners.remove(name);
            }
        }
    }
}

pub struct SledStore {
    db: sled::Db,
    tokens: sled::Tree,
    progress: sled::Tree,
    audit: sled::Tree,
    mirror: RwLock<Mirror>,
    /// Held while dirty tokens are taken and written, so writes land in order.
    writer: Mutex<()>,
    /// Held by an insert from its check of the serials to its last write.
    inserting: Mutex<()>,
    /// Audit appends share it; a snapshot takes it alone, so it sees one instant.
    write_gate: RwLock<()>,
    /// sled's log file, opened again for `fdatasync` ([`Durability::Full`]).
    log_file: std::fs::File,
    durability: Durability,
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

impl SledStore {
    /// Opens (or creates) the store at `path` with [`Durability::Full`].
    /// `cache_bytes` bounds sled's page cache. A store of an older schema is
    /// migrated.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        Self::open_with(path, cache_bytes, true)
    }

    /// Opens the store to look at it (`--check-config`): an older schema is
    /// read as it is and left so, so that checking a configuration with a
    /// newer radotpd never makes the store unreadable for the installed one.
    pub fn open_to_check(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        Self::open_with(path, cache_bytes, false)
    }

    fn open_with(path: &Path, cache_bytes: u64, migrate: bool) -> Result<Self, StoreError> {
        let db =
            sled::Config::new().path(path).cache_capacity(cache_bytes).flush_every_ms(Some(500)).open().map_err(io)?;
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
                if found == SCHEMA_WITH_OWNER_TREE && !migrate {
                    // Readable as it is: the owner tree is simply not used.
                } else if found == SCHEMA_WITH_OWNER_TREE {
                    // The owner index now lives in memory only.
                    db.drop_tree("owners").map_err(io)?;
                    meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes()).map_err(io)?;
                    db.flush().map_err(io)?;
                } else if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema { found, supported: SCHEMA_VERSION });
                }
            }
        }
        let tokens = db.open_tree("tokens").map_err(io)?;
        let progress = db.open_tree("progress").map_err(io)?;
        let mut progress_of = HashMap::new();
        for entry in progress.iter() {
            let (key, bytes) = entry.map_err(io)?;
            let serial = String::from_utf8_lossy(&key).into_owned();
            let decoded = Progress::decode(&bytes)
                .ok_or_else(|| StoreError::Corrupt(format!("progress record of token {serial} is unreadable")))?;
            progress_of.insert(key, decoded);
        }
        let mut mirror = Mirror::default();
        for entry in tokens.iter() {
            let (key, bytes) = entry.map_err(io)?;
            let mut token = decode(&bytes)?;
            if token.serial.as_bytes() != key.as_ref() {
                return Err(StoreError::Corrupt(format!("token {} is stored under another serial", token.serial)));
            }
            if let Some(newer) = progress_of.remove(&key) {
                newer.apply(&mut token);
            }
            mirror.put(Arc::new(token), false);
        }
        // Records of tokens that are gone (a removal cut short by a crash).
        for orphan in progress_of.into_keys() {
            progress.remove(orphan).map_err(io)?;
        }
        let log_path = path.join("db");
        let log_file = std::fs::File::open(&log_path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", log_path.display())))?;
        Ok(SledStore {
            tokens,
            progress,
            audit: db.open_tree("audit").map_err(io)?,
            db,
            mirror: RwLock::new(mirror),
            writer: Mutex::new(()),
            inserting: Mutex::new(()),
            write_gate: RwLock::new(()),
            log_file,
            durability: Durability::Full,
        })
    }

    /// Chooses what a flush guarantees.
    pub fn with_durability(mut self, durability: Durability) -> Self {
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
    /// Four batches, in an order that leaves a usable store wherever a
    /// crash cuts it short (sled recovers its log in order): removed tokens
    /// first, then progress records (of every changed token), then whole
    /// tokens, then the progress records of removed tokens. A progress
    /// record never goes back, and a removed token never comes back with
    /// older progress.
    fn apply_changes(&self, changes: &[Pending]) -> Result<(), StoreError> {
        let mut removed = sled::Batch::default();
        let mut progress = sled::Batch::default();
        let mut whole = sled::Batch::default();
        let mut progress_removed = sled::Batch::default();
        for (serial, change) in changes {
            match change {
                Some((token, dirty)) => {
                    progress.insert(serial.as_bytes(), Progress::of(token).encode());
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
        self.progress.apply_batch(progress).map_err(io)?;
        self.tokens.apply_batch(whole).map_err(io)?;
        self.progress.apply_batch(progress_removed).map_err(io)
    }

    fn writing(&self) -> RwLockReadGuard<'_, ()> {
        self.write_gate.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl TokenStore for SledStore {
    fn get(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        let token = self.read().tokens.get(serial).cloned();
        Ok(token.map(|t| Token::clone(&t)))
    }

    fn contains(&self, serial: &str) -> Result<bool, StoreError> {
        Ok(self.read().tokens.contains_key(serial))
    }

    fn existing(&self, serials: &[&str]) -> Result<HashSet<String>, StoreError> {
        let mirror = self.read();
        Ok(serials.iter().filter(|s| mirror.tokens.contains_key(**s)).map(|s| s.to_string()).collect())
    }

    fn tokens_of(&self, user: &str) -> Result<Vec<Token>, StoreError> {
        let stored: Vec<Arc<Token>> = {
            let mirror = self.read();
            let Some(serials) = mirror.owners.get(user) else { return Ok(Vec::new()) };
            serials.iter().filter_map(|s| mirror.tokens.get(s).cloned()).collect()
        };
        let mut found: Vec<Token> = stored.iter().map(|t| Token::clone(t)).collect();
        found.sort_by(|a, b| a.serial.cmp(&b.serial));
        Ok(found)
    }

    fn scan(&self, visit: &mut dyn FnMut(Token) -> bool) -> Result<(), StoreError> {
        // Copy the references, then decode without holding the lock.
        let stored: Vec<Arc<Token>> = self.read().tokens.values().cloned().collect();
        for token in stored {
            if !visit(Token::clone(&token)) {
                break;
            }
        }
        Ok(())
    }

    fn count(&self) -> Result<usize, StoreError> {
        Ok(self.read().tokens.len())
    }

    fn insert_all(&self, tokens: &[Token]) -> Result<(), StoreError> {
        let mut serials = HashSet::with_capacity(tokens.len());
        for token in tokens {
            if !serials.insert(token.serial.as_str()) {
                return Err(StoreError::Exists(token.serial.clone()));
            }
        }
        // One insert at a time: no serial can appear between this check and the put.
        let _inserting = self.inserting.lock().unwrap_or_else(|p| p.into_inner());
        // A large insert (an import) is written to sled here, by the caller's
        // thread, before its tokens become visible: the flush thread, which
        // the Accepts wait for, never carries an import. Not when one of the
        // serials still has a removal to be written behind: that write must
        // see the new token (inserts are serialised, so no such removal can
        // come after this check).
        let written_here = {
            let mirror = self.read();
            if let Some(serial) = serials.iter().filter(|s| mirror.tokens.contains_key(**s)).min() {
                return Err(StoreError::Exists(serial.to_string()));
            }
            tokens.len() > WRITE_CHUNK && !serials.iter().any(|s| mirror.dirty.contains_key(*s))
        };
        let added: Vec<Arc<Token>> = tokens.iter().map(|t| Arc::new(t.clone())).collect();
        if written_here {
            for (done, chunk) in added.chunks(WRITE_CHUNK).enumerate() {
                let changes: Vec<Pending> =
                    chunk.iter().map(|t| (t.serial.as_str().into(), Some((t.clone(), Dirty::Whole)))).collect();
                if let Err(e) = self.apply_changes(&changes) {
                    // All or nothing: take back the chunks already written.
                    let mut undo = sled::Batch::default();
                    for token in &tokens[..done * WRITE_CHUNK] {
                        undo.remove(token.serial.as_bytes());
                    }
                    let _ = self.tokens.apply_batch(undo.clone());
                    let _ = self.progress.apply_batch(undo);
                    return Err(e);
                }
            }
        }
        // Made visible a chunk at a time, so RADIUS never waits for the whole
        // file (the tokens are new: nobody looks for them yet).
        for chunk in added.chunks(WRITE_CHUNK) {
            let mut mirror = self.write();
            for token in chunk {
                mirror.put(token.clone(), !written_here);
            }
        }
        Ok(())
    }

    fn update(
        &self,
        serial: &str,
        _seen: Option<&Token>,
        decide: &mut dyn FnMut(&Token) -> Change<()>,
    ) -> Result<Updated<()>, StoreError> {
        // The lock is held from the read to the write: no other change can
        // come in between, so `decide` runs exactly once.
        let mut mirror = self.write();
        let Some(old) = mirror.tokens.get(serial).cloned() else { return Ok(Updated::NotFound) };
        let new = match decide(&old) {
            Change::Keep(()) => return Ok(Updated::Done(())),
            Change::Write(new, ()) => new,
        };
        if new.serial != old.serial {
            return Err(StoreError::Corrupt("an update may not change the serial".into()));
        }
        if new.owner != old.owner {
            if let Some(name) = old.owner_name() {
                mirror.forget_owner(name, serial);
            }
            if let Some(name) = new.owner_name() {
                mirror.owners.entry(name.into()).or_default().push(serial.into());
            }
        }
        let dirty = if Progress::is_all_that_changed(&old, &new) { Dirty::Progress } else { Dirty::Whole };
        mirror.tokens.insert(serial.into(), Arc::from(new));
        mirror.mark(serial, dirty);
        Ok(Updated::Done(()))
    }

    fn remove(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        let mut mirror = self.write();
        let Some(token) = mirror.tokens.remove(serial) else { return Ok(None) };
        if let Some(name) = token.owner_name() {
            mirror.forget_owner(name, serial);
        }
        mirror.mark(serial, Dirty::Whole);
        Ok(Some(Token::clone(&token)))
    }

    fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let _writing = self.writing();
        self.audit.insert(record.seq.to_be_bytes(), record.bytes.as_slice()).map_err(io)?;
        Ok(())
    }

    fn append_audit_batch(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let _writing = self.writing();
        // A few large values cost sled much less than many small ones.
        let mut batch = sled::Batch::default();
        let mut rest = records;
        while let Some(first) = rest.first() {
            let (chunk, taken) = AuditChunk::encode(rest);
            batch.insert(&first.seq.to_be_bytes(), chunk);
            rest = &rest[taken..];
        }
        self.audit.apply_batch(batch).map_err(io)
    }

    fn last_audit(&self) -> Result<Option<AuditRecord>, StoreError> {
        match self.audit.last().map_err(io)? {
            None => Ok(None),
            Some((key, value)) => Ok(AuditChunk::decode(&key, &value)?.pop()),
        }
    }

    fn audit_newest_first(&self, visit: &mut dyn FnMut(AuditRecord) -> bool) -> Result<(), StoreError> {
        for entry in self.audit.iter().rev() {
            let (key, value) = entry.map_err(io)?;
            for record in AuditChunk::decode(&key, &value)?.into_iter().rev() {
                if !visit(record) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn audit_oldest_first(&self, visit: &mut dyn FnMut(AuditRecord) -> bool) -> Result<(), StoreError> {
        for entry in self.audit.iter() {
            let (key, value) = entry.map_err(io)?;
            for record in AuditChunk::decode(&key, &value)? {
                if !visit(record) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn overwrite_audit_for_test(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let _writing = self.writing();
        let Some((key, value)) = self.audit.range(..=record.seq.to_be_bytes()).next_back().transpose().map_err(io)?
        else {
            return self.append_audit(record);
        };
        let mut records = AuditChunk::decode(&key, &value)?;
        match records.iter_mut().find(|r| r.seq == record.seq) {
            Some(stored) => stored.bytes = record.bytes.clone(),
            None => return self.append_audit(record),
        }
        let (chunk, _) = AuditChunk::encode(&records);
        self.audit.insert(key, chunk).map_err(io)?;
        Ok(())
    }

    fn write_behind(&self) -> Result<(), StoreError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let changes: Vec<Pending> = {
            let mut mirror = self.write();
            let dirty = std::mem::take(&mut mirror.dirty);
            dirty
                .into_iter()
                .map(|(serial, dirty)| {
                    let token = mirror.tokens.get(&serial).map(|t| (t.clone(), dirty));
                    (serial, token)
                })
                .collect()
        };
        for (done, chunk) in changes.chunks(WRITE_CHUNK).enumerate() {
            if let Err(e) = self.apply_changes(chunk) {
                // Whatever was not written is dirty again (and written with its newest value).
                let mut mirror = self.write();
                for (serial, _) in &changes[done * WRITE_CHUNK..] {
                    mirror.mark(serial, Dirty::Whole);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.write_behind()?;
        self.db.flush().map_err(io)?;
        if self.durability == Durability::Full {
            self.log_file.sync_data().map_err(|e| StoreError::Unavailable(format!("fdatasync of the store: {e}")))?;
        }
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(io)
    }

    fn snapshot(&self) -> Result<Snapshot, StoreError> {
        // Copy the references under the gate and the mirror's lock; decode after.
        let (token_values, audit_values) = {
            let _alone = self.write_gate.write().unwrap_or_else(|p| p.into_inner());
            let mirror = self.read();
            let tokens: Vec<Arc<Token>> = mirror.tokens.values().cloned().collect();
            let audit = self.audit.iter().collect::<Result<Vec<_>, _>>().map_err(io)?;
            (tokens, audit)
        };
        let tokens = token_values.iter().map(|t| Token::clone(t)).collect();
        let mut audit = Vec::with_capacity(audit_values.len());
        for (key, value) in audit_values {
            for record in AuditChunk::decode(&key, &value)? {
                let text = String::from_utf8(record.bytes)
                    .map_err(|_| StoreError::Corrupt(format!("audit entry {} is not UTF-8", record.seq)))?;
                audit.push((record.seq, text));
            }
        }
        Ok(Snapshot { schema_version: SCHEMA_VERSION, tokens, audit })
    }
}

/// A token to write behind with how much of it changed, or `None` for a removal.
type Pending = (Box<str>, Option<(Arc<Token>, Dirty)>);

/// The fields of a token that RADIUS decisions change, written on their own
/// (41 bytes instead of the whole token's JSON) when nothing else changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress {
    counter: u64,
    last_step: Option<u64>,
    fail_count: u32,
    locked: bool,
    locked_at: Option<u64>,
    last_used_at: Option<u64>,
}

impl Progress {
    const VERSION: u8 = 1;
    const LEN: usize = 41;

    fn of(token: &Token) -> Self {
        Progress {
            counter: token.counter,
            last_step: token.last_step,
            fail_count: token.fail_count,
            locked: token.locked,
            locked_at: token.locked_at,
            last_used_at: token.last_used_at,
        }
    }

    fn apply(self, token: &mut Token) {
        token.counter = self.counter;
        token.last_step = self.last_step;
        token.fail_count = self.fail_count;
        token.locked = self.locked;
        token.locked_at = self.locked_at;
        token.last_used_at = self.last_used_at;
    }

    /// True when `new` is `old` with other progress: any other field that
    /// changed (including one added to [`Token`] later) needs a whole write.
    fn is_all_that_changed(old: &Token, new: &Token) -> bool {
        let mut probe = old.clone();
        Progress::of(new).apply(&mut probe);
        probe == *new
    }

    fn encode(self) -> Vec<u8> {
        fn optional(out: &mut Vec<u8>, value: Option<u64>) {
            out.push(u8::from(value.is_some()));
            out.extend_from_slice(&value.unwrap_or(0).to_be_bytes());
        }
        let mut out = Vec::with_capacity(Self::LEN);
        out.push(Self::VERSION);
        out.extend_from_slice(&self.counter.to_be_bytes());
        optional(&mut out, self.last_step);
        out.extend_from_slice(&self.fail_count.to_be_bytes());
        out.push(u8::from(self.locked));
        optional(&mut out, self.locked_at);
        optional(&mut out, self.last_used_at);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().ok()?;
        if bytes[0] != Self::VERSION {
            return None;
        }
        let u64_at = |at: usize| bytes[at..at + 8].try_into().ok().map(u64::from_be_bytes);
        let optional = |at: usize| match bytes[at] {
            0 => Some(None),
            1 => u64_at(at + 1).map(Some),
            _ => None,
        };
        Some(Progress {
            counter: u64_at(1)?,
            last_step: optional(9)?,
            fail_count: u32::from_be_bytes(bytes[18..22].try_into().ok()?),
            locked: match bytes[22] {
                0 => false,
                1 => true,
                _ => return None,
            },
            locked_at: optional(23)?,
            last_used_at: optional(32)?,
        })
    }
}

fn seq_of(key: &[u8]) -> u64 {
    <[u8; 8]>::try_from(key).map(u64::from_be_bytes).unwrap_or(0)
}

/// Consecutive audit entries stored as one value.
///
/// An audit value is either one entry's JSON (it starts with `{`), keyed by
/// its sequence, or a chunk: the byte [`AuditChunk::MAGIC`], then for each
/// entry its sequence (u64) and length (u32), big-endian, and its bytes;
/// keyed by the first entry's sequence.
///
/// Chunks are small (4 KiB): sled keeps up to 17 values in a leaf and writes
/// a leaf larger than a quarter of its 512 KiB segment as a separate blob
/// file, which larger chunks made happen on every audit write.
struct AuditChunk;

impl AuditChunk {
    const MAGIC: u8 = 0;
    const MAX_BYTES: usize = 4 * 1024;

    /// Encodes the first records (at least one) that fit in a chunk; returns the chunk and how many it holds.
    fn encode(records: &[AuditRecord]) -> (Vec<u8>, usize) {
        let mut chunk = vec![Self::MAGIC];
        let mut taken = 0;
        for record in records {
            if taken > 0 && chunk.len() + 12 + record.bytes.len() > Self::MAX_BYTES {
                break;
            }
            chunk.extend_from_slice(&record.seq.to_be_bytes());
            chunk.extend_from_slice(&(record.bytes.len() as u32).to_be_bytes());
            chunk.extend_from_slice(&record.bytes);
            taken += 1;
        }
        (chunk, taken)
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<Vec<AuditRecord>, StoreError> {
        let Some((&Self::MAGIC, mut rest)) = value.split_first() else {
            return Ok(vec![AuditRecord { seq: seq_of(key), bytes: value.to_vec() }]);
        };
        let corrupt = || StoreError::Corrupt(format!("audit chunk {} is truncated", seq_of(key)));
        let mut records = Vec::new();
        while !rest.is_empty() {
            let (seq, after) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
            let (len, after) = after.split_first_chunk::<4>().ok_or_else(corrupt)?;
            let len = u32::from_be_bytes(*len) as usize;
            let bytes = after.get(..len).ok_or_else(corrupt)?;
            records.push(AuditRecord { seq: u64::from_be_bytes(*seq), bytes: bytes.to_vec() });
            rest = &after[len..];
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::otp::HashAlg;
    use crate::model::token::{Algorithm, OtpParams, Owner};

    fn token(serial: &str, owner: Option<&str>) -> Token {
        Token {
            serial: serial.into(),
            type_id: "hw-hotp".into(),
            params: OtpParams { algorithm: Algorithm::Hotp, digits: 6, hash: HashAlg::Sha1, period: 30 },
            sealed_seed: vec![1, 2, 3],
            counter: 0,
            last_step: None,
            drift: 0,
            owner: owner.map(|n| Owner { name: n.into(), display_name: None, dn: None }),
            disabled: false,
            locked: false,
            fail_count: 0,
            created_at: 0,
            last_used_at: None,
            locked_at: None,
            version: 0,
        }
    }

    /// sled's background flusher holds the database (and its file lock) for
    /// a moment after the last handle is dropped: wait for it, as a restart would.
    fn reopen(path: &Path) -> SledStore {
        for _ in 0..100 {
            match SledStore::open(path, 1 << 20) {
                Ok(store) => return store,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        SledStore::open(path, 1 << 20).expect("reopen the store")
    }

    #[test]
    fn owner_index_follows_updates_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            store.insert_all(&[token("A", Some("alice")), token("B", None)]).unwrap();
            assert!(
                matches!(store.insert_all(&[token("C", None), token("A", None)]), Err(StoreError::Exists(s)) if s == "A")
            );
            assert!(store.get("C").unwrap().is_none(), "a failed batch writes nothing");
            store
                .update("A", None, &mut |t| {
                    let mut n = t.clone();
                    n.owner = Some(Owner { name: "bob".into(), display_name: None, dn: None });
                    Change::Write(Box::new(n), ())
                })
                .unwrap();
            assert!(store.tokens_of("alice").unwrap().is_empty());
            assert_eq!(store.tokens_of("bob").unwrap().len(), 1);
            store.flush().unwrap();
        }
        let store = reopen(dir.path());
        assert_eq!(store.tokens_of("bob").unwrap()[0].serial, "A");
        assert_eq!(store.count().unwrap(), 2);
        store.remove("A").unwrap();
        assert!(store.tokens_of("bob").unwrap().is_empty());
    }

    #[test]
    fn a_stale_copy_costs_a_retry_never_a_lost_update() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        store.insert_all(&[token("A", Some("alice"))]).unwrap();
        let stale = store.get("A").unwrap().unwrap();
        let bump = |t: &Token| {
            let mut n = t.clone();
            n.counter += 1;
            Change::Write(Box::new(n), ())
        };
        store.update("A", Some(&stale), &mut |t| bump(t)).unwrap();
        // `stale` no longer matches the store: the update must read afresh.
        store.update("A", Some(&stale), &mut |t| bump(t)).unwrap();
        assert_eq!(store.get("A").unwrap().unwrap().counter, 2);
    }

    #[test]
    fn large_batches_are_all_or_nothing_and_existing_finds_serials() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let batch: Vec<Token> =
            (0..2000).map(|i| token(&format!("B{i:05}"), (i % 2 == 0).then_some("alice"))).collect();
        store.insert_all(&batch).unwrap();
        assert_eq!(store.count().unwrap(), 2000);
        assert_eq!(store.tokens_of("alice").unwrap().len(), 1000);
        // One serial of a second batch exists: nothing of it is written.
        let mut second: Vec<Token> = (0..1500).map(|i| token(&format!("C{i:05}"), Some("bob"))).collect();
        second.push(token("B01999", None));
        assert!(matches!(store.insert_all(&second), Err(StoreError::Exists(s)) if s == "B01999"));
        assert_eq!(store.count().unwrap(), 2000);
        assert!(store.tokens_of("bob").unwrap().is_empty());
        // A serial twice in one batch.
        let twice: Vec<Token> = (0..300).map(|i| token(&format!("D{:05}", i % 299), None)).collect();
        assert!(matches!(store.insert_all(&twice), Err(StoreError::Exists(_))));
        assert_eq!(store.count().unwrap(), 2000);
        // Existing: small sets by look-up, large ones by one ordered pass.
        let wanted: Vec<String> = ["A", "B00000", "B01999", "B02000", "C00000"].map(String::from).to_vec();
        let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
        assert_eq!(store.existing(&refs).unwrap(), ["B00000", "B01999"].map(String::from).into());
        let many: Vec<String> = (0..3000).map(|i| format!("B{:05}", i * 2)).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let found = store.existing(&refs).unwrap();
        assert_eq!(found.len(), 1000);
        assert!(found.contains("B01998") && !found.contains("B02000"));
        // A few serials spread over a larger range: the pass stops early, the rest is looked up.
        let filler: Vec<Token> = (0..3000).map(|i| token(&format!("M{i:05}"), None)).collect();
        store.insert_all(&filler).unwrap();
        let mut spread: Vec<String> = (0..300).map(|i| format!("A{i:05}")).collect();
        spread.extend(["B00001", "M02999", "Z"].map(String::from));
        let refs: Vec<&str> = spread.iter().map(String::as_str).collect();
        assert_eq!(store.existing(&refs).unwrap(), ["B00001", "M02999"].map(String::from).into());
    }

    #[test]
    fn user_prefix_does_not_leak_into_longer_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        store.insert_all(&[token("A", Some("al")), token("B", Some("alice"))]).unwrap();
        assert_eq!(store.tokens_of("al").unwrap().len(), 1);
    }

    #[test]
    fn changes_held_in_memory_reach_disk_with_flush_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            store.insert_all(&[token("A", Some("alice")), token("B", Some("bob")), token("C", None)]).unwrap();
            store.flush().unwrap();
            // Changed in memory only, then made durable by one flush.
            store
                .update("A", None, &mut |t| {
                    let mut n = t.clone();
                    n.counter = 7;
                    n.owner = Some(Owner { name: "carol".into(), display_name: None, dn: None });
                    Change::Write(Box::new(n), ())
                })
                .unwrap();
            store.remove("B").unwrap();
            assert_eq!(store.tokens_of("carol").unwrap()[0].counter, 7, "reads see the change at once");
            assert!(store.tokens_of("alice").unwrap().is_empty());
            assert!(store.get("B").unwrap().is_none());
            store.flush().unwrap();
        }
        let store = reopen(dir.path());
        assert_eq!(store.count().unwrap(), 2);
        assert_eq!(store.tokens_of("carol").unwrap()[0].counter, 7);
        assert!(store.tokens_of("alice").unwrap().is_empty());
        assert!(store.tokens_of("bob").unwrap().is_empty() && store.get("B").unwrap().is_none());
    }

    #[test]
    fn concurrent_updates_are_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path(), 1 << 20).unwrap());
        store.insert_all(&[token("A", Some("alice"))]).unwrap();
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        store
                            .update("A", None, &mut |t| {
                                let mut n = t.clone();
                                n.counter += 1;
                                Change::Write(Box::new(n), ())
                            })
                            .unwrap();
                        let _ = store.write_behind();
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(store.get("A").unwrap().unwrap().counter, 1000);
        store.flush().unwrap();
        let stored = Progress::decode(&store.progress.get("A").unwrap().unwrap()).unwrap();
        assert_eq!(stored.counter, 1000, "sled has the last value");
    }

    #[test]
    fn a_schema_1_store_loses_its_owner_tree_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            // What schema 1 wrote: tokens, an owner index tree, version 1.
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            db.open_tree("meta").unwrap().insert(SCHEMA_KEY, &1u32.to_be_bytes()).unwrap();
            let t = token("A", Some("alice"));
            db.open_tree("tokens").unwrap().insert("A", encode(&t).unwrap()).unwrap();
            db.open_tree("owners").unwrap().insert(b"alice\0A", &[]).unwrap();
            db.flush().unwrap();
        }
        {
            // Checking a configuration reads the old store and leaves it as it is.
            let checked = SledStore::open_to_check(dir.path(), 1 << 20).unwrap();
            assert_eq!(checked.tokens_of("alice").unwrap()[0].serial, "A");
            assert!(checked.db.tree_names().iter().any(|n| n.as_ref() == b"owners"));
            let version = checked.db.open_tree("meta").unwrap().get(SCHEMA_KEY).unwrap().unwrap();
            assert_eq!(version.as_ref(), &1u32.to_be_bytes());
        }
        {
            let store = reopen(dir.path());
            assert_eq!(store.tokens_of("alice").unwrap()[0].serial, "A");
            assert!(!store.db.tree_names().iter().any(|n| n.as_ref() == b"owners"));
            let version = store.db.open_tree("meta").unwrap().get(SCHEMA_KEY).unwrap().unwrap();
            assert_eq!(version.as_ref(), &SCHEMA_VERSION.to_be_bytes());
            store.db.open_tree("meta").unwrap().insert(SCHEMA_KEY, &(SCHEMA_VERSION + 1).to_be_bytes()).unwrap();
            store.flush().unwrap();
        }
        let mut refused = None;
        for _ in 0..100 {
            match SledStore::open(dir.path(), 1 << 20) {
                Err(StoreError::Schema { found, .. }) => {
                    refused = Some(found);
                    break;
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        assert_eq!(refused, Some(SCHEMA_VERSION + 1));
    }

    #[test]
    fn audit_entries_written_in_chunks_read_back_in_order_with_single_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let entry = |seq: u64| AuditRecord {
            seq,
            bytes: format!("{{\"seq\":{seq},\"pad\":\"{}\"}}", "x".repeat(900)).into_bytes(),
        };
        store.append_audit(&entry(1)).unwrap();
        // 200 entries of ~1 KB: many 4 KiB chunks.
        store.append_audit_batch(&(2..=201).map(entry).collect::<Vec<_>>()).unwrap();
        store.append_audit_batch(&[entry(202)]).unwrap();
        assert!(store.audit.len() >= 4, "several chunks and the single entry: {}", store.audit.len());
        let mut oldest = Vec::new();
        store
            .audit_oldest_first(&mut |r| {
                assert_eq!(r.bytes, entry(r.seq).bytes);
                oldest.push(r.seq);
                true
            })
            .unwrap();
        assert_eq!(oldest, (1..=202).collect::<Vec<_>>());
        let mut newest = Vec::new();
        store
            .audit_newest_first(&mut |r| {
                newest.push(r.seq);
                newest.len() < 150
            })
            .unwrap();
        assert_eq!(newest, (53..=202).rev().collect::<Vec<_>>());
        assert_eq!(store.last_audit().unwrap().unwrap().seq, 202);
        // An entry inside a chunk can be overwritten (tamper tests), and only it changes.
        store.overwrite_audit_for_test(&AuditRecord { seq: 100, bytes: b"{\"edited\":1}".to_vec() }).unwrap();
        let snapshot = store.snapshot().unwrap();
        assert_eq!(snapshot.audit.len(), 202);
        assert_eq!(snapshot.audit[99], (100, "{\"edited\":1}".to_string()));
        assert_eq!(snapshot.audit[100].1.as_bytes(), entry(101).bytes.as_slice());
        // A damaged chunk is reported, not misread.
        let (key, value) = store.audit.iter().nth(1).unwrap().unwrap();
        store.audit.insert(key, &value[..value.len() - 3]).unwrap();
        assert!(matches!(store.audit_oldest_first(&mut |_| true), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn a_large_insert_is_written_by_the_caller_and_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        store.insert_all(&[token("X00042", None)]).unwrap();
        let many: Vec<Token> = (0..5000).map(|i| token(&format!("X{i:05}"), Some("alice"))).collect();
        assert!(matches!(store.insert_all(&many), Err(StoreError::Exists(s)) if s == "X00042"));
        assert_eq!((store.count().unwrap(), store.tokens.len()), (1, 0), "nothing of it, in memory or in sled");
        let many: Vec<Token> = (0..5000).map(|i| token(&format!("Y{i:05}"), Some("alice"))).collect();
        store.insert_all(&many).unwrap();
        // In sled already (not left to the flush thread), and nothing dirty.
        assert_eq!(store.tokens.len(), 5000);
        assert!(store.read().dirty.keys().all(|s| s.starts_with('X')));
        assert_eq!(store.tokens_of("alice").unwrap().len(), 5000);
    }

    #[test]
    fn a_decision_writes_only_the_progress_record_and_it_wins_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            store.insert_all(&[token("A", Some("alice")), token("B", Some("bob"))]).unwrap();
            store.flush().unwrap();
            let stored_json = store.tokens.get("A").unwrap().unwrap();
            let advance = |t: &Token| {
                let mut n = t.clone();
                n.counter += 5;
                n.fail_count = 0;
                n.last_used_at = Some(1_700_000_000);
                Change::Write(Box::new(n), ())
            };
            store.update("A", None, &mut |t| advance(t)).unwrap();
            assert_eq!(store.read().dirty.get("A"), Some(&Dirty::Progress));
            store.flush().unwrap();
            assert_eq!(store.tokens.get("A").unwrap().unwrap(), stored_json, "the token's JSON is not rewritten");
            assert!(store.progress.get("A").unwrap().is_some());
            // Anything else that changes is a whole write.
            store
                .update("B", None, &mut |t| {
                    let mut n = t.clone();
                    n.disabled = true;
                    n.counter = 9;
                    Change::Write(Box::new(n), ())
                })
                .unwrap();
            assert_eq!(store.read().dirty.get("B"), Some(&Dirty::Whole));
            store.flush().unwrap();
            assert_eq!(decode(&store.tokens.get("B").unwrap().unwrap()).unwrap().counter, 9);
            // A removal takes the progress record with it.
            store.remove("A").unwrap();
            store.insert_all(&[token("C", None)]).unwrap();
            store.flush().unwrap();
            assert!(store.progress.get("A").unwrap().is_none());
            // An orphan record (a removal cut short) is dropped at the next open.
            store.progress.insert("GONE", Progress::of(&token("GONE", None)).encode()).unwrap();
            store.flush().unwrap();
        }
        let store = reopen(dir.path());
        assert!(store.get("A").unwrap().is_none());
        let b = store.get("B").unwrap().unwrap();
        assert!(b.disabled && b.counter == 9);
        assert!(store.progress.get("GONE").unwrap().is_none());
        // The progress record overrides an older whole token.
        store.progress.insert("C", Progress { counter: 77, ..Progress::of(&token("C", None)) }.encode()).unwrap();
        store.flush().unwrap();
        drop(store);
        let store = reopen(dir.path());
        assert_eq!(store.get("C").unwrap().unwrap().counter, 77);
    }

    #[test]
    fn progress_records_round_trip_and_refuse_garbage() {
        let full = Progress {
            counter: u64::MAX,
            last_step: Some(123),
            fail_count: 7,
            locked: true,
            locked_at: Some(9),
            last_used_at: None,
        };
        for progress in [full, Progress::of(&token("A", None))] {
            let bytes = progress.encode();
            assert_eq!(bytes.len(), Progress::LEN);
            assert_eq!(Progress::decode(&bytes), Some(progress));
        }
        let mut bad = full.encode();
        bad[22] = 2;
        assert_eq!(Progress::decode(&bad), None);
        assert_eq!(Progress::decode(&full.encode()[..40]), None);
        let mut version = full.encode();
        version[0] = 9;
        assert_eq!(Progress::decode(&version), None);
        // An owner change is never "progress only".
        let old = token("A", Some("alice"));
        let mut moved = old.clone();
        moved.owner = None;
        assert!(!Progress::is_all_that_changed(&old, &moved));
        let mut used = old.clone();
        used.counter = 3;
        used.locked_at = Some(1);
        assert!(Progress::is_all_that_changed(&old, &used));
    }
}
