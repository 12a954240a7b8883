//! The audit log: a hash chain of entries kept in the store.
//!
//! Every admin request and every RADIUS decision becomes an [`AuditEntry`].
//! Each entry carries the SHA-256 of the previous one, so removing or editing
//! an entry in the store breaks the chain at that point, which
//! [`AuditLog::verify`] reports. Entries never hold seeds or OTPs.

use std::sync::{Arc, Mutex};

pub use crate::model::audit::*;
use crate::store::{AuditRecord, StoreError, TokenStore};

/// Appends are cheap: an entry is chained and queued in memory, and the
/// queue is written in batches by [`AuditLog::write_pending`], which the
/// group-commit thread calls before every flush (so an Accept's entry is on
/// disk with its counter) and a few times a second otherwise. Readers write
/// the queue first, so they always see every entry.
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn TokenStore>,
    /// Sequence and hash of the newest entry; the lock orders appends.
    head: Arc<Mutex<Chain>>,
    pending: Arc<Mutex<Vec<AuditRecord>>>,
    /// Held while a batch is taken and written, so batches land in order.
    writer: Arc<Mutex<()>>,
}

impl AuditLog {
    pub fn open(store: Arc<dyn TokenStore>) -> Result<Self, StoreError> {
        let head = match store.last_audit()? {
            None => Chain::default(),
            Some(record) => Chain::after_stored(None, record.seq, &record.bytes).map_err(StoreError::Corrupt)?,
        };
        Ok(AuditLog { store, head: Arc::new(Mutex::new(head)), pending: Arc::default(), writer: Arc::default() })
    }

    pub fn append(&self, actor: &Actor, now: u64, event: AuditEvent) -> Result<u64, StoreError> {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let (seq, bytes) = head.seal(AuditWrite::new(actor, now, event)).map_err(StoreError::Corrupt)?;
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).push(AuditRecord { seq, bytes });
        Ok(seq)
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
