//! How changes reach the disk: the journal write a RADIUS decision waits
//! for, the checkpoint that moves journaled changes into sled and empties
//! the journal, and the replay of the journal when the store opens.

use std::sync::atomic::{AtomicU64, Ordering};

use super::super::journal::{Replay, TokenChange};
use super::super::progress::Progress;
use super::{AuditChunk, AuditRecord, Core, Dirty, Packed, Token, decode, encode, io};
use crate::store::StoreError;
use crate::store::sled::Durability;

/// How often journaled audit entries are written into sled (not flushed):
/// they wait in memory until then.
pub(in crate::store::sled) const AUDIT_TICK: std::time::Duration = std::time::Duration::from_millis(100);
/// A checkpoint runs this often while there is anything to write
/// (`store.checkpoint_ms`, milliseconds; one store per process) ...
static CHECKPOINT_EVERY_MS: AtomicU64 = AtomicU64::new(2000);

/// Sets how often checkpoints run (`store.checkpoint_ms`).
pub fn set_checkpoint_interval(every: std::time::Duration) {
    let ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1);
    CHECKPOINT_EVERY_MS.store(ms, Ordering::Relaxed);
}

pub(in crate::store::sled) fn checkpoint_interval() -> std::time::Duration {
    std::time::Duration::from_millis(CHECKPOINT_EVERY_MS.load(Ordering::Relaxed))
}
/// ... or as soon as the current journal file is this large.
pub(in crate::store::sled) const CHECKPOINT_BYTES: u64 = 32 << 20;

/// A token changed since the last journal write: serial, the token now (or
/// `None`: removed), how much changed, the change sequence of this state.
type Unjournaled = (Box<str>, Option<Packed>, Dirty, u64);

impl Core {
    /// Writes every change not yet journaled (changed tokens first, then
    /// sealed audit entries) to the journal in one write, and with
    /// [`Durability::Full`] waits for `fdatasync`. When it returns `Ok`,
    /// every change made before the call survives a crash.
    pub(in crate::store::sled) fn sync_journal(&self) -> Result<(), StoreError> {
        let mut state = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        self.journal_locked(&mut state)
    }

    /// [`Core::sync_journal`] with the journal's lock held by the caller.
    pub(in crate::store::sled) fn journal_locked(&self, state: &mut super::JournalState) -> Result<(), StoreError> {
        if self.read_only {
            return Ok(());
        }
        if self.audit_queue.lock().unwrap_or_else(|p| p.into_inner()).closed {
            return Err(StoreError::Unavailable("the store is being reopened".into()));
        }
        let changed: Vec<Unjournaled> = {
            let mut mirror = self.write();
            let taken = std::mem::take(&mut mirror.unjournaled);
            taken
                .into_iter()
                .map(|(serial, dirty)| {
                    let token = mirror.packed(&serial);
                    (serial, token, dirty, self.next_seq())
                })
                .collect()
        };
        let written = self.write_group(state, &changed);
        match written {
            Ok(audit_count) => {
                let mut queue = self.audit_queue.lock().unwrap_or_else(|p| p.into_inner());
                queue.journaled = (queue.journaled + audit_count).min(queue.pending.len());
                Ok(())
            }
            Err(e) => {
                // Not journaled: to be written by the next group.
                let mut mirror = self.write();
                for (serial, _, dirty, _) in changed {
                    let entry = mirror.unjournaled.entry(serial).or_insert(dirty);
                    if dirty == Dirty::Whole {
                        *entry = Dirty::Whole;
                    }
                }
                Err(e)
            }
        }
    }

    /// Encodes `changed` tokens and the audit entries not yet journaled into
    /// one group and appends it; returns how many audit entries it carried.
    fn write_group(&self, state: &mut super::JournalState, changed: &[Unjournaled]) -> Result<usize, StoreError> {
        let super::JournalState { journal, batch } = state;
        batch.clear();
        for (serial, token, dirty, seq) in changed {
            let change = match (token, dirty) {
                (None, _) => TokenChange::Removed,
                (Some(packed), Dirty::Progress) => TokenChange::Progress(Progress::of(&packed.decode()?)),
                (Some(packed), Dirty::Whole) => TokenChange::Whole(encode(&packed.decode()?)?),
            };
            batch.token(*seq, serial, &change);
        }
        let audit_count = {
            let queue = self.audit_queue.lock().unwrap_or_else(|p| p.into_inner());
            let from = queue.journaled.min(queue.pending.len());
            for record in &queue.pending[from..] {
                batch.audit(record.seq, &record.bytes);
            }
            queue.pending.len() - from
        };
        if batch.is_empty() {
            return Ok(0);
        }
        journal.append(batch, self.durability == Durability::Full)?;
        Ok(audit_count)
    }

    /// Writes the journaled audit entries into sled (not flushed: the
    /// journal holds them until the next checkpoint).
    pub(in crate::store::sled) fn write_journaled_audit(&self) -> Result<(), StoreError> {
        let _writer = self.audit_writer.lock().unwrap_or_else(|p| p.into_inner());
        let batch: Vec<AuditRecord> = {
            let queue = self.audit_queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.pending[..queue.journaled.min(queue.pending.len())].to_vec()
        };
        if batch.is_empty() {
            return Ok(());
        }
        self.append_audit_batch(&batch)?;
        self.audit_queue.lock().unwrap_or_else(|p| p.into_inner()).drain_front(batch.len());
        Ok(())
    }

    /// Audit entries sealed and not yet in sled.
    pub(in crate::store::sled) fn unwritten_audit(&self) -> usize {
        self.audit_queue.lock().unwrap_or_else(|p| p.into_inner()).pending.len()
    }

    /// Journals every sealed audit entry, then writes them into sled, so
    /// that reads of the audit see them all.
    pub(in crate::store::sled) fn write_pending_audit(&self) -> Result<(), StoreError> {
        self.sync_journal()?;
        self.write_journaled_audit()
    }

    /// Moves everything journaled into sled: switches the journal to its
    /// other (empty) file, writes audit entries and changed tokens into
    /// sled, flushes sled, and empties the file it left. One at a time.
    pub(in crate::store::sled) fn checkpoint(&self) -> Result<(), StoreError> {
        if self.read_only {
            return Ok(());
        }
        let _one = self.checkpointing.lock().unwrap_or_else(|p| p.into_inner());
        let left = {
            let mut state = self.journal.lock().unwrap_or_else(|p| p.into_inner());
            self.journal_locked(&mut state)?;
            let idle = state.journal.written() == 0
                && self.read().dirty.is_empty()
                && self.audit_queue.lock().unwrap_or_else(|p| p.into_inner()).pending.is_empty();
            if idle {
                return Ok(());
            }
            state.journal.switch()
        };
        // Everything in the file left is journaled: in the audit queue's
        // journaled front, or a dirty token (written with its newest state).
        self.write_journaled_audit()?;
        self.write_behind()?;
        self.flush_sled()?;
        self.journal.lock().unwrap_or_else(|p| p.into_inner()).journal.empty(left)
    }

    /// True when the current journal file has grown past [`CHECKPOINT_BYTES`].
    pub(in crate::store::sled) fn journal_is_large(&self) -> bool {
        self.journal.lock().unwrap_or_else(|p| p.into_inner()).journal.written() >= CHECKPOINT_BYTES
    }

    /// Makes everything durable in sled itself (and the journal empty),
    /// writes made to sled directly included.
    pub(in crate::store::sled) fn flush(&self) -> Result<(), StoreError> {
        self.checkpoint()?;
        // The file that became current may hold records written meanwhile: a second pass empties it.
        self.checkpoint()?;
        self.flush_sled()
    }

    /// Puts what the journal holds into sled (at open, before the tokens
    /// are read): each token's newest journaled state where sled's is
    /// older (a token sled no longer has stays removed), and the audit
    /// entries that follow sled's last one.
    pub(in crate::store::sled) fn replay_journal(
        tokens: &sled::Tree,
        progress: &sled::Tree,
        audit: &sled::Tree,
        replay: &mut Replay,
    ) -> Result<(), StoreError> {
        let mut applied = 0usize;
        for (serial, (seq, change)) in &replay.tokens {
            let Some(json) = tokens.get(serial.as_bytes()).map_err(io)? else { continue };
            let stored_seq = match progress.get(serial.as_bytes()).map_err(io)? {
                Some(bytes) => {
                    let failed_at = decode(&json)?.failed_at;
                    Progress::decode(&bytes, failed_at).map_or(0, |s| s.seq)
                }
                None => 0,
            };
            if stored_seq >= *seq {
                continue;
            }
            match change {
                TokenChange::Progress(p) => {
                    progress.insert(serial.as_bytes(), p.encode(*seq)).map_err(io)?;
                }
                TokenChange::Whole(json) => {
                    let token = decode(json)?;
                    if token.serial != *serial {
                        return Err(StoreError::Corrupt(format!(
                            "journal: token {} under another serial",
                            token.serial
                        )));
                    }
                    tokens.insert(serial.as_bytes(), json.as_slice()).map_err(io)?;
                    progress.insert(serial.as_bytes(), Progress::of(&token).encode(*seq)).map_err(io)?;
                }
                TokenChange::Removed => {
                    tokens.remove(serial.as_bytes()).map_err(io)?;
                    progress.remove(serial.as_bytes()).map_err(io)?;
                }
            }
            applied += 1;
        }
        let last = match audit.last().map_err(io)? {
            Some((key, value)) => AuditChunk::decode(&key, &value)?.pop().map_or(0, |r| r.seq),
            None => 0,
        };
        let mut entries = Vec::new();
        for (seq, bytes) in std::mem::take(&mut replay.audit).range(last + 1..) {
            // Only a run that follows sled's last entry can be chained.
            if *seq != last + 1 + entries.len() as u64 {
                tracing::error!(seq, "the journal's audit entries have a gap: the rest is not replayed");
                break;
            }
            entries.push(AuditRecord { seq: *seq, bytes: bytes.clone() });
        }
        let mut rest = entries.as_slice();
        let mut batch = sled::Batch::default();
        while let Some(first) = rest.first() {
            let (chunk, taken) = AuditChunk::encode(rest);
            batch.insert(&first.seq.to_be_bytes(), chunk);
            rest = &rest[taken..];
        }
        audit.apply_batch(batch).map_err(io)?;
        if replay.records > 0 || replay.ignored_bytes > 0 {
            tracing::info!(
                records = replay.records,
                tokens = applied,
                audit_entries = entries.len(),
                ignored_bytes = replay.ignored_bytes,
                "replayed the store's journal"
            );
        }
        Ok(())
    }

    /// The journal's newest state of `token` applied in memory (opened to look only).
    /// `stored_seq` is the sequence of sled's progress record.
    pub(in crate::store::sled) fn replayed_in_memory(
        token: &mut Token,
        stored_seq: u64,
        replay: &Replay,
    ) -> Result<(), StoreError> {
        match replay.tokens.get(&token.serial) {
            Some((seq, _)) if *seq <= stored_seq => {}
            Some((_, TokenChange::Progress(p))) => p.apply(token),
            Some((_, TokenChange::Whole(json))) => *token = decode(json)?,
            Some((_, TokenChange::Removed)) | None => {}
        }
        Ok(())
    }
}
