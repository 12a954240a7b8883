//! Audit retention in sled: the oldest entries removed in steps, the
//! checkpoint that lets what remains verify, written in the same sled
//! transaction as each step's removals.

use sled::Transactional;
use sled::transaction::TransactionError;

use super::{AuditChunk, AuditRecord, Core, io};
use crate::model::audit::{AuditEntry, Checkpoint, Pruned, Retention, entry_time};
use crate::store::StoreError;

/// Meta key of the checkpoint (JSON).
const CHECKPOINT_KEY: &[u8] = b"audit_checkpoint";
/// Entries removed per sled transaction: steps keep each write small.
const STEP: u64 = 20_000;

impl Core {
    /// Where the kept audit starts, once retention removed entries.
    pub(in crate::store::sled) fn audit_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        match self.meta.get(CHECKPOINT_KEY).map_err(io)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("the audit checkpoint is unreadable: {e}"))),
        }
    }

    /// Sets the checkpoint a restored log implies (it starts after entry 1).
    pub(in crate::store::sled) fn set_audit_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(checkpoint).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.meta.insert(CHECKPOINT_KEY, bytes).map_err(io)?;
        Ok(())
    }

    /// Removes what `rule` does not keep, a step at a time.
    pub(in crate::store::sled) fn prune_audit(&self, rule: Retention, now: u64) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        if rule.is_unbounded() {
            return Ok(pruned);
        }
        loop {
            let (removed, through) = self.prune_step(rule, now)?;
            pruned.entries += removed;
            if through.is_some() {
                pruned.through = through;
            }
            if removed < STEP {
                return Ok(pruned);
            }
        }
    }

    /// One step: at most [`STEP`] of the oldest entries. Returns how many
    /// went and the new checkpoint's sequence.
    fn prune_step(&self, rule: Retention, now: u64) -> Result<(u64, Option<u64>), StoreError> {
        // Appends wait while a step runs: the count below stays true.
        let _writer = self.audit_writer.lock().unwrap_or_else(|p| p.into_inner());
        let Some(first) = self.audit.first().map_err(io)? else { return Ok((0, None)) };
        let Some(last) = self.last_audit()? else { return Ok((0, None)) };
        let first_seq = AuditChunk::decode(&first.0, &first.1)?.first().map_or(last.seq, |r| r.seq);
        let total = last.seq.saturating_sub(first_seq) + 1;
        let mut removed: u64 = 0;
        let mut gone_keys = Vec::new();
        let mut rest: Option<(Vec<u8>, Vec<AuditRecord>)> = None;
        let mut newest_gone: Option<AuditRecord> = None;
        'chunks: for item in self.audit.iter() {
            let (key, value) = item.map_err(io)?;
            let records = AuditChunk::decode(&key, &value)?;
            let count = records.len();
            for (i, record) in records.into_iter().enumerate() {
                let time = entry_time(&record.bytes)
                    .ok_or_else(|| StoreError::Corrupt(format!("audit entry {} has no readable time", record.seq)))?;
                if removed >= STEP || !rule.drops(total - removed, time, now) {
                    if i > 0 {
                        // Part of this value goes: what stays is written again under its first entry.
                        rest = Some((key.to_vec(), Vec::new()));
                    }
                    if let Some((_, kept)) = rest.as_mut() {
                        kept.push(record);
                        // The rest of the value, read again below.
                        let remaining = AuditChunk::decode(&key, &value)?;
                        kept.extend(remaining.into_iter().skip(i + 1));
                    }
                    break 'chunks;
                }
                removed += 1;
                newest_gone = Some(record);
                if i + 1 == count {
                    gone_keys.push(key.to_vec());
                }
            }
        }
        let Some(newest_gone) = newest_gone else { return Ok((0, None)) };
        let entry: AuditEntry = serde_json::from_slice(&newest_gone.bytes)
            .map_err(|e| StoreError::Corrupt(format!("audit entry {}: {e}", newest_gone.seq)))?;
        let checkpoint = serde_json::to_vec(&Checkpoint { seq: newest_gone.seq, hash: entry.hash })
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rewritten = rest.map(|(old_key, kept)| {
            let mut values = Vec::new();
            let mut left = kept.as_slice();
            while let Some(first) = left.first() {
                let (chunk, taken) = AuditChunk::encode(left);
                values.push((first.seq.to_be_bytes(), chunk));
                left = &left[taken..];
            }
            (old_key, values)
        });
        let written: Result<(), TransactionError<()>> = (&self.audit, &self.meta).transaction(|(audit, meta)| {
            for key in &gone_keys {
                audit.remove(key.as_slice())?;
            }
            if let Some((old_key, values)) = &rewritten {
                audit.remove(old_key.as_slice())?;
                for (key, value) in values {
                    audit.insert(key.as_slice(), value.as_slice())?;
                }
            }
            meta.insert(CHECKPOINT_KEY, checkpoint.as_slice())?;
            Ok(())
        });
        written.map_err(|e| match e {
            TransactionError::Storage(e) => io(e),
            TransactionError::Abort(()) => StoreError::Unavailable("audit pruning was aborted".into()),
        })?;
        Ok((removed, Some(newest_gone.seq)))
    }
}
