//! The audit log of the sled engine: entries sealed onto the chain and
//! queued, written into the `audit` tree in deflated chunks, read back in
//! either order, and carried over when the store is reopened.

use super::{AuditChunk, AuditRecord, Core, MAX_UNWRITTEN_AUDIT, io};
use crate::model::audit::{AuditWrite, Chain, ChainWalk};
use crate::store::StoreError;

impl Core {
    /// Seals audit entries onto the chain and queues them for the next write.
    /// A queue that cannot be written (the store is failing) stops at
    /// [`MAX_UNWRITTEN_AUDIT`]: the entries are refused rather than held.
    pub(in crate::store::sled) fn seal(&self, writes: Vec<AuditWrite>) -> Result<(), StoreError> {
        let mut queue = self.audit_queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.closed {
            return Err(StoreError::Unavailable("the store is being reopened".into()));
        }
        if queue.pending.len() + writes.len() > MAX_UNWRITTEN_AUDIT {
            return Err(StoreError::Unavailable(format!(
                "{} audit entries wait to be written: the store is not writing",
                queue.pending.len()
            )));
        }
        for write in writes {
            let (seq, bytes) = queue.chain.seal(write).map_err(StoreError::Corrupt)?;
            queue.pending.push(AuditRecord { seq, bytes });
        }
        Ok(())
    }

    /// Closes this engine (the store is being reopened after a failure) and
    /// takes the entries sealed but not journaled. From now on it seals and
    /// journals nothing, so no decision still using it is answered; the
    /// entries it journaled are replayed by the next open, in order before
    /// the ones taken here.
    pub(in crate::store::sled) fn take_unwritten_audit(&self) -> Vec<AuditRecord> {
        // No journal write is under way while it closes.
        let _journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let mut queue = self.audit_queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.closed = true;
        let journaled = queue.journaled.min(queue.pending.len());
        queue.pending.split_off(journaled)
    }

    /// Queues entries an engine that is gone sealed but did not write: those
    /// that follow this store's last entry are kept (and the chain goes on
    /// after them); any before it were written; any after a gap cannot be
    /// chained. Returns (kept, dropped).
    pub(in crate::store::sled) fn requeue_audit(
        &self,
        records: Vec<AuditRecord>,
    ) -> Result<(usize, usize), StoreError> {
        let last = self.last_audit()?.map_or(0, |r| r.seq);
        let mut queue = self.audit_queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut kept: Vec<AuditRecord> = Vec::new();
        let mut dropped = 0;
        for record in records.into_iter().filter(|r| r.seq > last) {
            let expected = kept.last().map_or(last + 1, |r| r.seq + 1);
            if record.seq == expected && kept.len() < MAX_UNWRITTEN_AUDIT {
                kept.push(record);
            } else {
                dropped += 1;
            }
        }
        if let Some(newest) = kept.last() {
            let node = queue.chain.node.clone();
            queue.chain = Chain::after_stored(node, newest.seq, &newest.bytes).map_err(StoreError::Corrupt)?;
        }
        let count = kept.len();
        queue.pending = kept;
        queue.journaled = 0;
        Ok((count, dropped))
    }

    /// Audit entries restored from a backup, as they are; the chain goes on after the last.
    pub(in crate::store::sled) fn restore_audit(&self, entries: Vec<(u64, String)>) -> Result<(), StoreError> {
        self.write_pending_audit()?;
        let mut queue = self.audit_queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seq, text)) = entries.last() {
            let node = queue.chain.node.clone();
            queue.chain = Chain::after_stored(node, *seq, text.as_bytes()).map_err(StoreError::Corrupt)?;
        }
        if self.audit.is_empty() {
            if let Some(checkpoint) =
                entries.first().and_then(|(seq, text)| ChainWalk::implied_by(*seq, text.as_bytes()))
            {
                self.set_audit_checkpoint(&checkpoint)?;
            }
        }
        let records: Vec<AuditRecord> =
            entries.into_iter().map(|(seq, text)| AuditRecord { seq, bytes: text.into_bytes() }).collect();
        drop(queue);
        for chunk in records.chunks(10_000) {
            self.append_audit_batch(chunk)?;
        }
        self.flush_sled()
    }

    pub(in crate::store::sled) fn append_audit_batch(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
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

    pub(in crate::store::sled) fn last_audit(&self) -> Result<Option<AuditRecord>, StoreError> {
        match self.audit.last().map_err(io)? {
            None => Ok(None),
            Some((key, value)) => Ok(AuditChunk::decode(&key, &value)?.pop()),
        }
    }

    pub(in crate::store::sled) fn audit_newest_first(
        &self,
        visit: &mut dyn FnMut(AuditRecord) -> bool,
    ) -> Result<(), StoreError> {
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

    pub(in crate::store::sled) fn audit_oldest_first(
        &self,
        visit: &mut dyn FnMut(AuditRecord) -> bool,
    ) -> Result<(), StoreError> {
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

    /// Overwrites one stored audit record in place: only for tests of tamper detection.
    /// Removes every audit entry after `seq` (tests of truncation only).
    pub(in crate::store::sled) fn cut_audit_after(&self, seq: u64) -> Result<(), StoreError> {
        let from = self.audit.range(..=seq.to_be_bytes()).next_back().transpose().map_err(io)?.map(|(k, _)| k);
        let start = from.map(|k| k.to_vec()).unwrap_or_default();
        for entry in self.audit.range(start..) {
            let (key, value) = entry.map_err(io)?;
            let kept: Vec<AuditRecord> =
                AuditChunk::decode(&key, &value)?.into_iter().filter(|r| r.seq <= seq).collect();
            if kept.is_empty() {
                self.audit.remove(key).map_err(io)?;
            } else {
                self.audit.insert(key, AuditChunk::encode(&kept).0).map_err(io)?;
            }
        }
        Ok(())
    }

    pub(in crate::store::sled) fn overwrite_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let Some((key, value)) = self.audit.range(..=record.seq.to_be_bytes()).next_back().transpose().map_err(io)?
        else {
            return self.append_audit_batch(std::slice::from_ref(record));
        };
        let mut records = AuditChunk::decode(&key, &value)?;
        match records.iter_mut().find(|r| r.seq == record.seq) {
            Some(stored) => stored.bytes = record.bytes.clone(),
            None => return self.append_audit_batch(std::slice::from_ref(record)),
        }
        let (chunk, _) = AuditChunk::encode(&records);
        self.audit.insert(key, chunk).map_err(io)?;
        Ok(())
    }
}
