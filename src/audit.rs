//! The audit log: a hash chain of entries kept in the store.
//!
//! Every admin request and every RADIUS decision becomes an [`AuditEntry`].
//! Each entry carries the SHA-256 of the previous one, so removing or editing
//! an entry in the store breaks the chain at that point, which
//! [`AuditLog::verify`] reports. Entries never hold seeds or OTPs.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{AuditRecord, StoreError, TokenStore};

/// Who did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Actor {
    /// An operator through the admin socket.
    Admin { uid: u32, user: Option<String> },
    /// A NAS through RADIUS.
    Radius { client: String, address: String },
    /// The daemon itself.
    Daemon,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Admin { uid, user: Some(name) } => write!(f, "{name}(uid {uid})"),
            Actor::Admin { uid, user: None } => write!(f, "uid {uid}"),
            Actor::Radius { client, address } => write!(f, "radius:{client}@{address}"),
            Actor::Daemon => f.write_str("radotpd"),
        }
    }
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    pub actor: Actor,
    /// `radius.auth`, `token.import`, `token.assign`, ...
    pub operation: String,
    /// The user the operation concerns, if any.
    #[serde(default)]
    pub user: Option<String>,
    /// The token the operation concerns, if any.
    #[serde(default)]
    pub serial: Option<String>,
    /// Arguments without secrets.
    #[serde(default)]
    pub details: serde_json::Value,
    /// `ok`, `accept`, `reject`, `refused`, `error`...
    pub result: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// Hex SHA-256 of the previous entry ("" for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of this entry with `hash` empty.
    pub hash: String,
}

impl AuditEntry {
    fn compute_hash(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash = String::new();
        let bytes = serde_json::to_vec(&unhashed).unwrap_or_default();
        data_encoding::HEXLOWER.encode(&Sha256::digest(&bytes))
    }
}

/// What a caller hands to [`AuditLog::append`]; the log fills sequence, time and hashes.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub operation: String,
    pub user: Option<String>,
    pub serial: Option<String>,
    pub details: serde_json::Value,
    pub result: String,
    pub reason: Option<String>,
}

/// The outcome of [`AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainReport {
    pub entries: u64,
    pub ok: bool,
    /// Sequence number of the first entry that does not verify.
    pub first_broken: Option<u64>,
    pub problem: Option<String>,
}

/// Filters for reading the log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditQuery {
    pub limit: usize,
    pub serial: Option<String>,
    pub user: Option<String>,
    /// Unix seconds.
    pub since: Option<u64>,
}

/// Appends are cheap: an entry is chained and queued in memory, and the
/// queue is written in batches by [`AuditLog::write_pending`], which the
/// group-commit thread calls before every flush (so an Accept's entry is on
/// disk with its counter) and a few times a second otherwise. Readers write
/// the queue first, so they always see every entry.
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn TokenStore>,
    /// Sequence and hash of the newest entry; the lock orders appends.
    head: Arc<Mutex<(u64, String)>>,
    pending: Arc<Mutex<Vec<AuditRecord>>>,
    /// Held while a batch is taken and written, so batches land in order.
    writer: Arc<Mutex<()>>,
}

impl AuditLog {
    pub fn open(store: Arc<dyn TokenStore>) -> Result<Self, StoreError> {
        let head = match store.last_audit()? {
            None => (0, String::new()),
            Some(record) => {
                let entry: AuditEntry = serde_json::from_slice(&record.bytes)
                    .map_err(|e| StoreError::Corrupt(format!("audit entry {}: {e}", record.seq)))?;
                (record.seq, entry.hash)
            }
        };
        Ok(AuditLog { store, head: Arc::new(Mutex::new(head)), pending: Arc::default(), writer: Arc::default() })
    }

    pub fn append(&self, actor: &Actor, now: u64, event: AuditEvent) -> Result<u64, StoreError> {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let mut entry = AuditEntry {
            seq: head.0 + 1,
            time: now,
            actor: actor.clone(),
            operation: event.operation,
            user: event.user,
            serial: event.serial,
            details: event.details,
            result: event.result,
            reason: event.reason,
            prev_hash: head.1.clone(),
            hash: String::new(),
        };
        // One serialization serves both: the hash covers the entry with an
        // empty `hash`, which is its last field, so the stored bytes are the
        // same text with the hash filled in.
        let unhashed =
            serde_json::to_vec(&entry).map_err(|e| StoreError::Corrupt(format!("cannot encode audit entry: {e}")))?;
        entry.hash = data_encoding::HEXLOWER.encode(&Sha256::digest(&unhashed));
        const EMPTY_HASH_TAIL: &[u8] = b"\"hash\":\"\"}";
        let bytes = match unhashed.strip_suffix(EMPTY_HASH_TAIL) {
            Some(head) => [head, b"\"hash\":\"", entry.hash.as_bytes(), b"\"}"].concat(),
            None => serde_json::to_vec(&entry)
                .map_err(|e| StoreError::Corrupt(format!("cannot encode audit entry: {e}")))?,
        };
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).push(AuditRecord { seq: entry.seq, bytes });
        *head = (entry.seq, entry.hash);
        Ok(head.0)
    }

    /// Writes the queued entries to the store (not yet flushed to disk).
    pub fn write_pending(&self) -> Result<(), StoreError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.append_audit_batch(&batch) {
            // Keep them for the next attempt, in front of newer ones.
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let newer = std::mem::replace(&mut *pending, batch);
            pending.extend(newer);
            return Err(e);
        }
        Ok(())
    }

    /// Newest entries first, filtered.
    pub fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.write_pending()?;
        let mut found = Vec::new();
        let mut failure = None;
        self.store.audit_newest_first(&mut |record| match serde_json::from_slice::<AuditEntry>(&record.bytes) {
            Ok(entry) => {
                if query.since.is_some_and(|since| entry.time < since) {
                    return false;
                }
                let keep = query.serial.as_ref().is_none_or(|s| entry.serial.as_ref() == Some(s))
                    && query.user.as_ref().is_none_or(|u| {
                        entry.user.as_ref() == Some(u)
                            || entry.details.get("previous_owner").and_then(|v| v.as_str()) == Some(u)
                    });
                if keep {
                    found.push(entry);
                }
                query.limit == 0 || found.len() < query.limit
            }
            Err(e) => {
                failure = Some(StoreError::Corrupt(format!("audit entry {}: {e}", record.seq)));
                false
            }
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    /// Walks the whole chain from the oldest entry and names the first broken one.
    pub fn verify(&self) -> Result<ChainReport, StoreError> {
        self.write_pending()?;
        let mut walk = ChainWalk::default();
        self.store.audit_oldest_first(&mut |record| walk.step(record.seq, &record.bytes))?;
        Ok(walk.report)
    }
}

/// Checks audit records (sequence, stored bytes), oldest first, as
/// [`AuditLog::verify`] does: for records that are not in a store, such as
/// those of a backup.
pub fn verify_chain<'a>(records: impl IntoIterator<Item = (u64, &'a [u8])>) -> ChainReport {
    let mut walk = ChainWalk::default();
    for (seq, bytes) in records {
        if !walk.step(seq, bytes) {
            break;
        }
    }
    walk.report
}

/// One walk along the chain.
struct ChainWalk {
    report: ChainReport,
    previous_hash: String,
    expected_seq: u64,
}

impl Default for ChainWalk {
    fn default() -> Self {
        ChainWalk {
            report: ChainReport { entries: 0, ok: true, first_broken: None, problem: None },
            previous_hash: String::new(),
            expected_seq: 1,
        }
    }
}

impl ChainWalk {
    /// Checks the next record; false once the chain is broken.
    fn step(&mut self, seq: u64, bytes: &[u8]) -> bool {
        self.report.entries += 1;
        let expected_seq = self.expected_seq;
        let problem = match serde_json::from_slice::<AuditEntry>(bytes) {
            Err(e) => Some(format!("unreadable: {e}")),
            Ok(entry) if entry.seq != seq || seq != expected_seq => {
                Some(format!("sequence gap: expected {expected_seq}, found {seq}"))
            }
            Ok(entry) if entry.prev_hash != self.previous_hash => {
                Some("does not link to the previous entry (an entry was removed or changed)".into())
            }
            Ok(entry) if entry.compute_hash() != entry.hash => {
                Some("content does not match its hash (the entry was modified)".into())
            }
            Ok(entry) => {
                self.previous_hash = entry.hash;
                None
            }
        };
        self.expected_seq = seq + 1;
        if let Some(problem) = problem {
            self.report.ok = false;
            self.report.first_broken = Some(seq);
            self.report.problem = Some(problem);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled_store::SledStore;

    fn event(n: u32) -> AuditEvent {
        AuditEvent { operation: format!("op{n}"), result: "ok".into(), ..AuditEvent::default() }
    }

    #[test]
    fn queued_entries_reach_the_store_in_order_and_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn TokenStore> = Arc::new(SledStore::open(dir.path(), 1 << 20).unwrap());
        let log = AuditLog::open(store.clone()).unwrap();
        for n in 0..5 {
            log.append(&Actor::Daemon, 100 + u64::from(n), event(n)).unwrap();
        }
        assert!(store.last_audit().unwrap().is_none(), "queued, not yet written");
        let entries = log.query(&AuditQuery { limit: 0, ..AuditQuery::default() }).unwrap();
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 4, 3, 2, 1], "readers see every entry");
        log.append(&Actor::Daemon, 200, event(9)).unwrap();
        let report = log.verify().unwrap();
        assert!(report.ok && report.entries == 6, "{report:?}");
        // The stored bytes are exactly the entry's JSON.
        let last = store.last_audit().unwrap().unwrap();
        let entry: AuditEntry = serde_json::from_slice(&last.bytes).unwrap();
        assert_eq!(serde_json::to_vec(&entry).unwrap(), last.bytes);
        assert_eq!(entry.hash, entry.compute_hash());
        // A reopened log continues the chain.
        let reopened = AuditLog::open(store).unwrap();
        reopened.append(&Actor::Daemon, 300, event(10)).unwrap();
        assert!(reopened.verify().unwrap().ok);
    }

    #[test]
    fn records_outside_a_store_verify_the_same_way() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn TokenStore> = Arc::new(SledStore::open(dir.path(), 1 << 20).unwrap());
        let log = AuditLog::open(store.clone()).unwrap();
        for n in 0..4 {
            log.append(&Actor::Daemon, 100 + u64::from(n), event(n)).unwrap();
        }
        log.write_pending().unwrap();
        let mut records = Vec::new();
        store
            .audit_oldest_first(&mut |r| {
                records.push((r.seq, String::from_utf8(r.bytes).unwrap()));
                true
            })
            .unwrap();
        let check = |records: &[(u64, String)]| verify_chain(records.iter().map(|(seq, t)| (*seq, t.as_bytes())));
        assert_eq!(check(&records), log.verify().unwrap());
        assert!(check(&records).ok && check(&records).entries == 4);
        let mut edited = records.clone();
        edited[1].1 = edited[1].1.replace("op1", "op7");
        let report = check(&edited);
        assert_eq!((report.ok, report.first_broken), (false, Some(2)), "{report:?}");
        let mut removed = records.clone();
        removed.remove(2);
        assert_eq!(check(&removed).first_broken, Some(4));
    }
}
