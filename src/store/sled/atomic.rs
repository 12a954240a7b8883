//! Writes that carry their audit entries in one sled transaction: inserts
//! (all or nothing across a crash, with a marker the next open acts on) and
//! operators' changes of one token (the change and its entry together).

use std::collections::HashSet;

use sled::Transactional;
use sled::transaction::TransactionError;

use super::{AuditChunk, AuditRecord, Core, Dirty, Packed, Pending, WRITE_CHUNK, encode, io};
use crate::model::audit::AuditWrite;
use crate::model::token::Token;
use crate::store::StoreError;
use crate::store::sled::progress::Progress;

impl Core {
    /// Inserts new tokens all together (version 1), or none of them, with no audit entry (tests).
    #[cfg(test)]
    pub(in crate::store::sled) fn insert_all(&self, tokens: &[Token]) -> Result<(), StoreError> {
        self.insert_audited(tokens, Vec::new())
    }

    /// Inserts new tokens (version 1) and their audit entries all together,
    /// or none of them, across a crash as well.
    ///
    /// The tokens are written to sled by the caller's thread (the flush
    /// thread, which Accepts wait for, never carries an import), after a
    /// marker naming them in the `imports` tree. One sled transaction then
    /// writes the audit entries and removes the marker. sled recovers its
    /// log in order, so after a crash either that transaction is there (the
    /// tokens and their entries) or the marker is, and the next open removes
    /// the tokens it names ([`Core::undo_interrupted_inserts`]). The tokens
    /// become visible to reads only after the transaction.
    pub(in crate::store::sled) fn insert_audited(
        &self,
        tokens: &[Token],
        audit: Vec<AuditWrite>,
    ) -> Result<(), StoreError> {
        let mut serials = HashSet::with_capacity(tokens.len());
        for token in tokens {
            if !serials.insert(token.serial.as_str()) {
                return Err(StoreError::Exists(token.serial.clone()));
            }
        }
        // One insert at a time: no serial can appear between this check and the put.
        let _inserting = self.inserting.lock().unwrap_or_else(|p| p.into_inner());
        let removal_pending = {
            let mirror = self.read();
            if let Some(serial) = serials.iter().filter(|s| mirror.contains(s)).min() {
                return Err(StoreError::Exists(serial.to_string()));
            }
            serials.iter().any(|s| mirror.dirty.contains_key(*s) || mirror.unjournaled.contains_key(*s))
        };
        if removal_pending {
            // The removal of one of these serials waits to be written: journal
            // it (with a lower change sequence than the new token's) and write
            // it to sled first, so that it cannot land over the new token.
            self.sync_journal()?;
            self.write_behind()?;
        }
        // Encoded compactly: the in-memory form, and what the chunks below write.
        let added: Vec<(Packed, Option<&str>)> =
            tokens.iter().map(|t| (Packed::encode(&Token { version: 1, ..t.clone() }), t.owner_name())).collect();
        let marker = self.db.generate_id().map_err(io)?.to_be_bytes();
        let names: Vec<&str> = tokens.iter().map(|t| t.serial.as_str()).collect();
        let listed = serde_json::to_vec(&names).map_err(|e| StoreError::Corrupt(format!("import marker: {e}")))?;
        self.imports.insert(marker, listed).map_err(io)?;
        for chunk in added.chunks(WRITE_CHUNK) {
            let changes: Vec<Pending> = chunk
                .iter()
                .map(|(t, _)| {
                    let serial: Box<str> = String::from_utf8_lossy(t.serial()).into();
                    (serial, Some((t.clone(), Dirty::Whole)), self.next_seq())
                })
                .collect();
            if let Err(e) = self.apply_changes(&changes) {
                self.take_back(&marker, &names);
                return Err(e);
            }
        }
        if let Err(e) = self.seal_and_commit(audit, &TokenWrites { marker: Some(&marker), tokens: Vec::new() }) {
            self.take_back(&marker, &names);
            return Err(e);
        }
        // Made visible a chunk at a time, so RADIUS never waits for the whole
        // file (the tokens are new: nobody looks for them yet).
        for chunk in added.chunks(WRITE_CHUNK) {
            let mut mirror = self.write();
            for (token, owner) in chunk {
                mirror.put_packed(token.clone(), *owner, false);
            }
        }
        Ok(())
    }

    /// Undoes the writes of an insert that failed; what cannot be undone
    /// now is undone at the next open (the marker stays).
    fn take_back(&self, marker: &[u8], serials: &[&str]) {
        let mut undo = sled::Batch::default();
        for serial in serials {
            undo.remove(serial.as_bytes());
        }
        let undone = self.tokens.apply_batch(undo.clone()).and_then(|()| self.progress.apply_batch(undo));
        if undone.is_ok() {
            let _ = self.imports.remove(marker);
        }
    }

    /// Seals `writes` onto the chain after the entries already queued and
    /// writes them all in one sled transaction with `also` (token writes, a
    /// marker's removal), then flushes sled.
    ///
    /// The journal's lock is held throughout, and every entry (those queued,
    /// then the new ones) is journaled first: a decision waiting for the
    /// journal is answered only once its entry is durable, and the chain in
    /// the journal never has a gap. If the sled transaction fails after that,
    /// the new entries stay on the chain (queued); the change is not made.
    fn seal_and_commit(&self, writes: Vec<AuditWrite>, also: &TokenWrites<'_>) -> Result<(), StoreError> {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        self.journal_locked(&mut journal)?;
        let _writer = self.audit_writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut queue = self.audit_queue.lock().unwrap_or_else(|p| p.into_inner());
        let chain_before = queue.chain.clone();
        let queued = queue.pending.len();
        let mut records = queue.pending.clone();
        for write in writes {
            match queue.chain.seal(write) {
                Ok((seq, bytes)) => records.push(AuditRecord { seq, bytes }),
                Err(e) => {
                    queue.chain = chain_before;
                    return Err(StoreError::Corrupt(e));
                }
            }
        }
        // The new entries go into the journal too, before sled: should the
        // sled flush below fail, the journal still holds them, so the entries
        // that later decisions journal never follow a gap.
        {
            let super::JournalState { journal: file, batch } = &mut *journal;
            batch.clear();
            // Entries queued since the journal write above, then the new ones.
            for record in &records[queue.journaled.min(queued)..] {
                batch.audit(record.seq, &record.bytes);
            }
            if !batch.is_empty() {
                if let Err(e) = file.append(batch, self.durability == super::Durability::Full) {
                    queue.chain = chain_before;
                    return Err(e);
                }
            }
        }
        let mut chunks = Vec::new();
        let mut rest = records.as_slice();
        while let Some(first) = rest.first() {
            let (chunk, taken) = AuditChunk::encode(rest);
            chunks.push((first.seq.to_be_bytes(), chunk));
            rest = &rest[taken..];
        }
        let written: Result<(), TransactionError<()>> = (&self.audit, &self.tokens, &self.progress, &self.imports)
            .transaction(|(audit, tokens, progress, imports)| {
                for (key, chunk) in &chunks {
                    audit.insert(key.as_slice(), chunk.as_slice())?;
                }
                if let Some(marker) = also.marker {
                    imports.remove(marker)?;
                }
                for (serial, bytes) in &also.tokens {
                    match bytes {
                        Some((whole, record)) => {
                            tokens.insert(serial.as_bytes(), whole.as_slice())?;
                            progress.insert(serial.as_bytes(), record.as_slice())?;
                        }
                        None => {
                            tokens.remove(serial.as_bytes())?;
                            progress.remove(serial.as_bytes())?;
                        }
                    }
                }
                Ok(())
            });
        match written {
            Ok(()) => {
                queue.drain_front(queued);
                drop(queue);
                self.flush_sled()
            }
            Err(e) => {
                // The new entries are in the journal already: they stay on
                // the chain (queued, to reach sled with the next entries), so
                // that no later entry follows a gap. The change they describe
                // was not made; its caller takes it back and says so.
                queue.pending.extend(records.drain(queued..));
                queue.journaled = queue.pending.len();
                Err(match e {
                    TransactionError::Storage(e) => io(e),
                    TransactionError::Abort(()) => StoreError::Unavailable("an audited write was aborted".into()),
                })
            }
        }
    }

    /// Removes what inserts cut short by a crash wrote (their markers name
    /// the tokens), before the tokens are read. Returns how many tokens.
    pub(super) fn undo_interrupted_inserts(
        imports: &sled::Tree,
        tokens: &sled::Tree,
        progress: &sled::Tree,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in imports.iter() {
            let (marker, listed) = entry.map_err(io)?;
            let serials: Vec<String> = serde_json::from_slice(&listed)
                .map_err(|e| StoreError::Corrupt(format!("an interrupted insert's marker is unreadable: {e}")))?;
            let mut undo = sled::Batch::default();
            for serial in &serials {
                undo.remove(serial.as_bytes());
            }
            tokens.apply_batch(undo.clone()).map_err(io)?;
            progress.apply_batch(undo).map_err(io)?;
            imports.remove(marker).map_err(io)?;
            removed += serials.len();
        }
        Ok(removed)
    }

    /// Writes the token `serial` as it is now in memory (or its removal)
    /// together with `writes` (and the entries queued before them) in one
    /// sled transaction: an operator's change and its audit entry reach the
    /// log together or not at all. The caller makes it durable.
    pub(in crate::store::sled) fn write_with_audit(
        &self,
        serial: &str,
        writes: Vec<AuditWrite>,
    ) -> Result<(), StoreError> {
        // No write-behind between reading the token and writing it, so an
        // older copy taken before cannot land after this one.
        let _tokens_writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let (current, seq) = {
            let mirror = self.read();
            (mirror.get(serial)?, self.next_seq())
        };
        let bytes = match &current {
            Some(token) => Some((encode(token)?, Progress::of(token).encode(seq))),
            None => None,
        };
        self.seal_and_commit(writes, &TokenWrites { marker: None, tokens: vec![(serial, bytes)] })
    }
}

/// What an audited write carries besides its entries.
struct TokenWrites<'a> {
    /// An insert's marker, removed in the same step.
    marker: Option<&'a [u8]>,
    /// Tokens written whole with their progress record, or removed (`None`).
    tokens: Vec<(&'a str, Option<TokenBytes>)>,
}

/// A token's JSON and its progress record, encoded.
type TokenBytes = (Vec<u8>, Vec<u8>);
