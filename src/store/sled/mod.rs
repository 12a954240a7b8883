//! The embedded engine: sled, with every token also held in memory.
//!
//! [`SledStore`] implements [`Store`] on a [`core::Core`] (the sled trees, the
//! in-memory token copy, the audit queue) and a [`group_commit::GroupCommit`]
//! thread: a write that must be durable waits for the next group flush,
//! which carries every change and audit entry queued before it, so hundreds
//! of Accepts share one `fdatasync` and no tokio worker blocks on the disk.
//! A change whose flush fails is taken back in memory before the error is
//! returned, so what the daemon shows is what the disk holds.
//!
//! Challenge states live in memory only: a single node is the only reader,
//! and a challenge outliving a restart is of no use to anyone.

mod audit_chunk;
mod core;
mod group_commit;
mod healing;
mod journal;
mod mirror;
mod private;
mod progress;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use self::core::Core;
pub use self::core::checkpoint::set_checkpoint_interval;
use self::healing::{Engine, Slot};
use self::progress::Progress;
use super::{
    Census, Challenge, Commit, DiskSpace, Durability, ExportSink, Store, StoreError, StoreHealth, Swap, TokenQuery,
};
use crate::model::audit::{AuditEntry, AuditQuery, AuditWrite, ChainReport, ChainWalk, Pruned, Retention};
use crate::model::token::Token;

/// One audit record as sled keeps it: a sequence number and the entry's JSON.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub seq: u64,
    pub bytes: Vec<u8>,
}

pub struct SledStore {
    /// The open engine, replaced when the store is reopened after a failure.
    slot: Arc<Slot>,
    challenges: Mutex<HashMap<Vec<u8>, Challenge>>,
}

/// Runs sled work (disk reads, large writes) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(StoreError::Unavailable(format!("store task failed: {e}"))))
}

impl SledStore {
    /// Opens (or creates) the store at `path`; `cache_bytes` bounds sled's
    /// page cache; audit entries name `node`. A store of an older schema is
    /// migrated.
    pub fn open(
        path: &Path,
        cache_bytes: u64,
        durability: Durability,
        node: Option<String>,
    ) -> Result<Self, StoreError> {
        let reopen = healing::Reopen { path: path.to_path_buf(), cache_bytes, durability, node };
        let slot = Slot::open(reopen)?;
        healing::watch(&slot);
        Ok(SledStore { slot, challenges: Mutex::default() })
    }

    /// Opens the store to look at it (`--check-config`): an older schema is
    /// read as it is and left so, so that checking a configuration with a
    /// newer radotpd never makes the store unreadable for the installed one.
    pub fn open_to_check(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let engine = Engine::start(Arc::new(Core::open_to_check(path, cache_bytes)?))?;
        Ok(SledStore { slot: Slot::holding(engine), challenges: Mutex::default() })
    }

    /// The engine now open, or why there is none (being reopened).
    fn engine(&self) -> Result<Arc<Engine>, StoreError> {
        self.slot.current()
    }

    /// How many stored tokens each type has (for checks at start).
    pub fn token_types(&self) -> Result<HashMap<String, usize>, StoreError> {
        let mut counts = HashMap::new();
        for packed in self.engine()?.core.all() {
            *counts.entry(packed.decode()?.type_id).or_default() += 1;
        }
        Ok(counts)
    }

    /// Rewrites the stored audit entry `seq` with `edit`: only for tests of
    /// tamper detection, never used by the daemon.
    #[doc(hidden)]
    pub fn tamper_with_audit_entry(&self, seq: u64, edit: impl FnOnce(String) -> String) -> Result<(), StoreError> {
        let e = self.engine()?;
        e.core.flush()?;
        let mut target = None;
        e.core.audit_oldest_first(&mut |record| {
            if record.seq == seq {
                target = Some(record);
            }
            target.is_none()
        })?;
        let mut record = target.ok_or_else(|| StoreError::Corrupt(format!("no audit entry {seq}")))?;
        let text = String::from_utf8(record.bytes).map_err(|_| StoreError::Corrupt("not UTF-8".into()))?;
        record.bytes = edit(text).into_bytes();
        e.core.overwrite_audit(&record)?;
        e.core.flush()
    }

    /// Removes the audit entries after `seq`, as an attacker with write
    /// access to the store could: only for tests of the audit anchor,
    /// never used by the daemon.
    #[doc(hidden)]
    pub fn cut_audit_after(&self, seq: u64) -> Result<(), StoreError> {
        let e = self.engine()?;
        e.core.flush()?;
        e.core.cut_audit_after(seq)?;
        e.core.flush()
    }

    /// Waits until every write so far is durable; a change made since the
    /// failure is undone by the caller.
    async fn durable(e: &Engine, commit: Commit) -> Result<(), StoreError> {
        match commit {
            Commit::Durable => e.commit.sync().await,
            Commit::Soon => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Store for SledStore {
    async fn get(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        let e = self.engine()?;
        e.core.get(serial)
    }

    async fn tokens_of(&self, user: &str) -> Result<Vec<Token>, StoreError> {
        let e = self.engine()?;
        e.core.tokens_of(user)
    }

    async fn find(&self, query: &TokenQuery) -> Result<Vec<Token>, StoreError> {
        let e = self.engine()?;
        let limit = if query.limit == 0 { usize::MAX } else { query.limit };
        if let Some(owner) = &query.owner {
            // The owner index answers without a scan.
            return Ok(e.core.tokens_of(owner)?.into_iter().filter(|t| query.matches(t)).take(limit).collect());
        }
        let core = e.core.clone();
        let query = query.clone();
        blocking(move || {
            let mut found = Vec::new();
            for packed in core.all() {
                let token = packed.decode()?;
                if query.matches(&token) {
                    found.push(token);
                    if found.len() >= limit {
                        break;
                    }
                }
            }
            Ok(found)
        })
        .await
    }

    async fn census(&self, now: u64, lockout_seconds: u64) -> Result<Census, StoreError> {
        let e = self.engine()?;
        let core = e.core.clone();
        blocking(move || {
            let mut census = Census::empty();
            for packed in core.all() {
                census.count(&packed.decode()?, now, lockout_seconds);
            }
            Ok(census)
        })
        .await
    }

    async fn existing(&self, serials: &[String]) -> Result<HashSet<String>, StoreError> {
        let e = self.engine()?;
        Ok(e.core.existing(serials))
    }

    async fn insert(&self, tokens: Vec<Token>, audit: Vec<AuditWrite>) -> Result<(), StoreError> {
        let e = self.engine()?;
        let core = e.core.clone();
        // Written, journaled and flushed with its entries before it returns.
        blocking(move || core.insert_audited(&tokens, audit)).await
    }

    async fn swap(&self, token: &Token, audit: Option<AuditWrite>, commit: Commit) -> Result<Swap, StoreError> {
        let e = self.engine()?;
        let (written, previous) = match e.core.swap(token)? {
            (Swap::Swapped(written), Some(previous)) => (written, previous),
            (other, _) => return Ok(other),
        };
        // An operator's change (more than a RADIUS decision's progress) is
        // written with its audit entry in one step, durable when it returns;
        // decisions go through the queue and the group commit.
        let operator_change = commit == Commit::Durable && !Progress::is_all_that_changed(&previous, &written);
        match audit {
            Some(write) if operator_change => {
                let core = e.core.clone();
                let serial = written.serial.clone();
                if let Err(err) = blocking(move || core.write_with_audit(&serial, vec![write])).await {
                    e.core.undo_swap(&written, &previous);
                    return Err(err);
                }
                return Ok(Swap::Swapped(written));
            }
            Some(write) => {
                if let Err(err) = e.core.seal(vec![write]) {
                    e.core.undo_swap(&written, &previous);
                    return Err(err);
                }
            }
            None => {}
        }
        if let Err(err) = Self::durable(&e, commit).await {
            // What the disk does not hold, memory must not show.
            e.core.undo_swap(&written, &previous);
            return Err(err);
        }
        Ok(Swap::Swapped(written))
    }

    async fn remove(&self, serial: &str, expected_version: u64, audit: AuditWrite) -> Result<Swap, StoreError> {
        let e = self.engine()?;
        let removed = match e.core.remove(serial, expected_version)? {
            Swap::Swapped(removed) => removed,
            other => return Ok(other),
        };
        let core = e.core.clone();
        let serial = removed.serial.clone();
        let written = blocking(move || core.write_with_audit(&serial, vec![audit])).await;
        // Journaled and flushed with its entry when it returns.
        if let Err(err) = written {
            e.core.undo_remove(&removed);
            return Err(err);
        }
        Ok(Swap::Swapped(removed))
    }

    async fn record(&self, audit: Vec<AuditWrite>, commit: Commit) -> Result<(), StoreError> {
        let e = self.engine()?;
        e.core.seal(audit)?;
        Self::durable(&e, commit).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let e = self.engine()?;
        let core = e.core.clone();
        let query = query.clone();
        blocking(move || {
            core.write_pending_audit()?;
            let mut found = Vec::new();
            let mut failure = None;
            core.audit_newest_first(&mut |record| match serde_json::from_slice::<AuditEntry>(&record.bytes) {
                Ok(entry) => {
                    if query.since.is_some_and(|since| entry.time < since) {
                        return false;
                    }
                    if query.matches(&entry) {
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
        })
        .await
    }

    async fn verify_audit(&self) -> Result<Vec<ChainReport>, StoreError> {
        let e = self.engine()?;
        let core = e.core.clone();
        blocking(move || {
            core.write_pending_audit()?;
            let mut walk = ChainWalk::after(core.audit_checkpoint()?.as_ref());
            core.audit_oldest_first(&mut |record| walk.step(record.seq, &record.bytes))?;
            Ok(vec![walk.report])
        })
        .await
    }

    async fn put_challenge(&self, challenge: Challenge, now_ms: u64, max_pending: usize) -> Result<bool, StoreError> {
        let mut pending = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() >= max_pending {
            pending.retain(|_, c| c.expires_at_ms > now_ms);
            if pending.len() >= max_pending {
                return Ok(false);
            }
        }
        pending.insert(challenge.state.clone(), challenge);
        Ok(true)
    }

    async fn take_challenge(&self, state: &[u8]) -> Result<Option<Challenge>, StoreError> {
        Ok(self.challenges.lock().unwrap_or_else(|p| p.into_inner()).remove(state))
    }

    async fn pending_challenges(&self) -> Result<u64, StoreError> {
        Ok(self.challenges.lock().unwrap_or_else(|p| p.into_inner()).len() as u64)
    }

    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (core, name) = (self.engine()?.core.clone(), name.to_string());
        blocking(move || core.get_meta(&name)).await
    }

    async fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let (core, name, value) = (self.engine()?.core.clone(), name.to_string(), value.to_vec());
        blocking(move || core.put_meta(&name, &value)).await
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let e = self.engine()?;
        Ok(e.core.count() == 0 && e.core.last_audit()?.is_none())
    }

    async fn export(&self, sink: &mut dyn ExportSink) -> Result<(), StoreError> {
        let e = self.engine()?;
        // The tokens as they are now (shared references: no copy under a lock) ...
        e.core.write_pending_audit()?;
        for packed in e.core.all() {
            sink.token(packed.decode()?)?;
        }
        // ... then the audit, read in order while writes go on.
        let mut failure = None;
        e.core.audit_oldest_first(&mut |record| match String::from_utf8(record.bytes) {
            Ok(text) => match sink.audit(record.seq, text) {
                Ok(()) => true,
                Err(e) => {
                    failure = Some(e);
                    false
                }
            },
            Err(_) => {
                failure = Some(StoreError::Corrupt(format!("audit entry {} is not UTF-8", record.seq)));
                false
            }
        })?;
        failure.map_or(Ok(()), Err)
    }

    async fn restore_audit(&self, entries: Vec<(u64, String)>) -> Result<(), StoreError> {
        let e = self.engine()?;
        let core = e.core.clone();
        // Flushed before it returns.
        blocking(move || core.restore_audit(entries)).await
    }

    async fn prune_audit(&self, rule: Retention, now: u64) -> Result<Pruned, StoreError> {
        let e = self.engine()?;
        let core = e.core.clone();
        blocking(move || {
            // Entries still queued count too: write them first.
            core.write_pending_audit()?;
            core.prune_audit(rule, now)
        })
        .await
    }

    async fn health(&self) -> StoreHealth {
        let e = match self.engine() {
            Ok(e) => e,
            Err(err) => {
                return StoreHealth { engine: "sled".into(), failing: Some(err.to_string()), ..StoreHealth::default() };
            }
        };
        StoreHealth {
            engine: "sled".into(),
            bytes: e.core.size_on_disk().unwrap_or(0),
            failing: e.commit.failing(),
            disk: self.slot.path().and_then(DiskSpace::of),
        }
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let e = self.engine()?;
        let core = e.core.clone();
        blocking(move || core.flush()).await
    }
}

#[cfg(test)]
mod tests {
    crate::store_contract_tests!(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = super::SledStore::open(dir.path(), 1 << 20, super::Durability::Process, None).unwrap();
        crate::store::contract::Engine::new(store, dir)
    });
}
