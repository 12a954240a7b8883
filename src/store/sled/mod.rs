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
mod progress;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use self::core::Core;
use self::group_commit::GroupCommit;
use super::{Census, Challenge, Commit, Durability, ExportSink, Store, StoreError, StoreHealth, Swap, TokenQuery};
use crate::model::audit::{AuditEntry, AuditQuery, AuditWrite, ChainReport, ChainWalk};
use crate::model::token::Token;

/// One audit record as sled keeps it: a sequence number and the entry's JSON.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub seq: u64,
    pub bytes: Vec<u8>,
}

pub struct SledStore {
    core: Arc<Core>,
    commit: GroupCommit,
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
        let core = Arc::new(Core::open(path, cache_bytes, node)?.with_durability(durability));
        Self::start(core)
    }

    /// Opens the store to look at it (`--check-config`): an older schema is
    /// read as it is and left so, so that checking a configuration with a
    /// newer radotpd never makes the store unreadable for the installed one.
    pub fn open_to_check(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        Self::start(Arc::new(Core::open_to_check(path, cache_bytes)?))
    }

    fn start(core: Arc<Core>) -> Result<Self, StoreError> {
        let commit = GroupCommit::start(core.clone())
            .map_err(|e| StoreError::Unavailable(format!("cannot start the flush thread: {e}")))?;
        Ok(SledStore { core, commit, challenges: Mutex::default() })
    }

    /// How many stored tokens each type has (for checks at start).
    pub fn token_types(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for token in self.core.all() {
            *counts.entry(token.type_id.clone()).or_default() += 1;
        }
        counts
    }

    /// Rewrites the stored audit entry `seq` with `edit`: only for tests of
    /// tamper detection, never used by the daemon.
    #[doc(hidden)]
    pub fn tamper_with_audit_entry(&self, seq: u64, edit: impl FnOnce(String) -> String) -> Result<(), StoreError> {
        self.core.flush()?;
        let mut target = None;
        self.core.audit_oldest_first(&mut |record| {
            if record.seq == seq {
                target = Some(record);
            }
            target.is_none()
        })?;
        let mut record = target.ok_or_else(|| StoreError::Corrupt(format!("no audit entry {seq}")))?;
        let text = String::from_utf8(record.bytes).map_err(|_| StoreError::Corrupt("not UTF-8".into()))?;
        record.bytes = edit(text).into_bytes();
        self.core.overwrite_audit(&record)?;
        self.core.flush()
    }

    /// Removes the audit entries after `seq`, as an attacker with write
    /// access to the store could: only for tests of the audit anchor,
    /// never used by the daemon.
    #[doc(hidden)]
    pub fn cut_audit_after(&self, seq: u64) -> Result<(), StoreError> {
        self.core.flush()?;
        self.core.cut_audit_after(seq)?;
        self.core.flush()
    }

    /// Waits until every write so far is durable; a change made since the
    /// failure is undone by the caller.
    async fn durable(&self, commit: Commit) -> Result<(), StoreError> {
        match commit {
            Commit::Durable => self.commit.sync().await,
            Commit::Soon => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Store for SledStore {
    async fn get(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        self.core.get(serial)
    }

    async fn tokens_of(&self, user: &str) -> Result<Vec<Token>, StoreError> {
        self.core.tokens_of(user)
    }

    async fn find(&self, query: &TokenQuery) -> Result<Vec<Token>, StoreError> {
        let limit = if query.limit == 0 { usize::MAX } else { query.limit };
        if let Some(owner) = &query.owner {
            // The owner index answers without a scan.
            return Ok(self.core.tokens_of(owner)?.into_iter().filter(|t| query.matches(t)).take(limit).collect());
        }
        let core = self.core.clone();
        let query = query.clone();
        blocking(move || {
            Ok(core.all().into_iter().filter(|t| query.matches(t)).take(limit).map(|t| Token::clone(&t)).collect())
        })
        .await
    }

    async fn census(&self, now: u64, lockout_seconds: u64) -> Result<Census, StoreError> {
        let core = self.core.clone();
        blocking(move || {
            let mut census = Census::empty();
            for token in core.all() {
                census.count(&token, now, lockout_seconds);
            }
            Ok(census)
        })
        .await
    }

    async fn existing(&self, serials: &[String]) -> Result<HashSet<String>, StoreError> {
        Ok(self.core.existing(serials))
    }

    async fn insert(&self, tokens: Vec<Token>, audit: Vec<AuditWrite>) -> Result<(), StoreError> {
        let core = self.core.clone();
        blocking(move || {
            core.insert_all(&tokens)?;
            core.seal(audit)
        })
        .await?;
        self.commit.sync().await
    }

    async fn swap(&self, token: &Token, audit: Option<AuditWrite>, commit: Commit) -> Result<Swap, StoreError> {
        let (written, previous) = match self.core.swap(token)? {
            (Swap::Swapped(written), Some(previous)) => (written, previous),
            (other, _) => return Ok(other),
        };
        if let Some(write) = audit {
            self.core.seal(vec![write])?;
        }
        if let Err(e) = self.durable(commit).await {
            // What the disk does not hold, memory must not show.
            self.core.undo_swap(&written, &previous);
            return Err(e);
        }
        Ok(Swap::Swapped(written))
    }

    async fn remove(&self, serial: &str, expected_version: u64, audit: AuditWrite) -> Result<Swap, StoreError> {
        let removed = match self.core.remove(serial, expected_version)? {
            Swap::Swapped(removed) => removed,
            other => return Ok(other),
        };
        self.core.seal(vec![audit])?;
        if let Err(e) = self.commit.sync().await {
            self.core.undo_remove(&removed);
            return Err(e);
        }
        Ok(Swap::Swapped(removed))
    }

    async fn record(&self, audit: Vec<AuditWrite>, commit: Commit) -> Result<(), StoreError> {
        self.core.seal(audit)?;
        self.durable(commit).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let core = self.core.clone();
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
        let core = self.core.clone();
        blocking(move || {
            core.write_pending_audit()?;
            let mut walk = ChainWalk::default();
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
        let (core, name) = (self.core.clone(), name.to_string());
        blocking(move || core.get_meta(&name)).await
    }

    async fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let (core, name, value) = (self.core.clone(), name.to_string(), value.to_vec());
        blocking(move || core.put_meta(&name, &value)).await
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.core.count() == 0 && self.core.last_audit()?.is_none())
    }

    async fn export(&self, sink: &mut dyn ExportSink) -> Result<(), StoreError> {
        // The tokens as they are now (shared references: no copy under a lock) ...
        self.core.write_pending_audit()?;
        for token in self.core.all() {
            sink.token(Token::clone(&token))?;
        }
        // ... then the audit, read in order while writes go on.
        let mut failure = None;
        self.core.audit_oldest_first(&mut |record| match String::from_utf8(record.bytes) {
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
        let core = self.core.clone();
        blocking(move || core.restore_audit(entries)).await?;
        self.commit.sync().await
    }

    async fn health(&self) -> StoreHealth {
        StoreHealth {
            engine: "sled".into(),
            bytes: self.core.size_on_disk().unwrap_or(0),
            failing: self.commit.failing(),
        }
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let core = self.core.clone();
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
