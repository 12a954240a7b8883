//! The in-memory engine: the reference implementation of [`Store`].
//!
//! Everything lives in one mutex-guarded structure and nothing survives the
//! process. It is what the domain's unit tests run on, and the model every
//! other engine is checked against by the contract suite
//! ([`super::contract`]). Simple on purpose: no index but the owner index.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use super::{Census, Challenge, Commit, ExportSink, Store, StoreError, StoreHealth, Swap, TokenQuery};
use crate::model::audit::{
    AuditEntry, AuditQuery, AuditWrite, Chain, ChainReport, ChainWalk, Checkpoint, Pruned, Retention, entry_time,
};
use crate::model::token::Token;

#[derive(Default)]
struct Inner {
    tokens: BTreeMap<String, Token>,
    owners: HashMap<String, BTreeSet<String>>,
    /// Sequence -> the entry's JSON, oldest first.
    audit: Vec<(u64, String)>,
    /// Where the kept audit starts, once retention removed entries.
    checkpoint: Option<Checkpoint>,
    chain: Chain,
    challenges: HashMap<Vec<u8>, Challenge>,
    meta: HashMap<String, Vec<u8>>,
}

impl Inner {
    fn index(&mut self, token: &Token) {
        if let Some(name) = token.owner_name() {
            self.owners.entry(name.to_string()).or_default().insert(token.serial.clone());
        }
    }

    fn unindex(&mut self, token: &Token) {
        if let Some(name) = token.owner_name() {
            if let Some(serials) = self.owners.get_mut(name) {
                serials.remove(&token.serial);
                if serials.is_empty() {
                    self.owners.remove(name);
                }
            }
        }
    }

    fn seal(&mut self, write: AuditWrite) -> Result<(), StoreError> {
        let (seq, bytes) = self.chain.seal(write).map_err(StoreError::Corrupt)?;
        let text = String::from_utf8(bytes).map_err(|_| StoreError::Corrupt("audit entry is not UTF-8".into()))?;
        self.audit.push((seq, text));
        Ok(())
    }
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store whose audit entries name `node`.
    pub fn new(node: Option<String>) -> MemoryStore {
        let inner = Inner { chain: Chain { node, ..Chain::default() }, ..Inner::default() };
        MemoryStore { inner: Mutex::new(inner) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        Ok(self.lock().tokens.get(serial).cloned())
    }

    async fn tokens_of(&self, user: &str) -> Result<Vec<Token>, StoreError> {
        let inner = self.lock();
        let Some(serials) = inner.owners.get(user) else { return Ok(Vec::new()) };
        Ok(serials.iter().filter_map(|s| inner.tokens.get(s).cloned()).collect())
    }

    async fn find(&self, query: &TokenQuery) -> Result<Vec<Token>, StoreError> {
        let limit = if query.limit == 0 { usize::MAX } else { query.limit };
        let inner = self.lock();
        Ok(inner.tokens.values().filter(|t| query.matches(t)).take(limit).cloned().collect())
    }

    async fn census(&self, now: u64, lockout_seconds: u64) -> Result<Census, StoreError> {
        let mut census = Census::empty();
        for token in self.lock().tokens.values() {
            census.count(token, now, lockout_seconds);
        }
        Ok(census)
    }

    async fn existing(&self, serials: &[String]) -> Result<HashSet<String>, StoreError> {
        let inner = self.lock();
        Ok(serials.iter().filter(|s| inner.tokens.contains_key(s.as_str())).cloned().collect())
    }

    async fn insert(&self, tokens: Vec<Token>, audit: Vec<AuditWrite>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let mut seen = HashSet::with_capacity(tokens.len());
        for token in &tokens {
            if !seen.insert(token.serial.as_str()) || inner.tokens.contains_key(&token.serial) {
                return Err(StoreError::Exists(token.serial.clone()));
            }
        }
        for mut token in tokens {
            token.version = 1;
            inner.index(&token);
            inner.tokens.insert(token.serial.clone(), token);
        }
        for write in audit {
            inner.seal(write)?;
        }
        Ok(())
    }

    async fn swap(&self, token: &Token, audit: Option<AuditWrite>, _commit: Commit) -> Result<Swap, StoreError> {
        let mut inner = self.lock();
        let Some(current) = inner.tokens.get(&token.serial).cloned() else { return Ok(Swap::NotFound) };
        if current.version != token.version {
            return Ok(Swap::Conflict(current));
        }
        let mut stored = token.clone();
        stored.version = current.version + 1;
        inner.unindex(&current);
        inner.index(&stored);
        inner.tokens.insert(stored.serial.clone(), stored.clone());
        if let Some(write) = audit {
            inner.seal(write)?;
        }
        Ok(Swap::Swapped(stored))
    }

    async fn remove(&self, serial: &str, expected_version: u64, audit: AuditWrite) -> Result<Swap, StoreError> {
        let mut inner = self.lock();
        let Some(current) = inner.tokens.get(serial).cloned() else { return Ok(Swap::NotFound) };
        if current.version != expected_version {
            return Ok(Swap::Conflict(current));
        }
        inner.unindex(&current);
        inner.tokens.remove(serial);
        inner.seal(audit)?;
        Ok(Swap::Swapped(current))
    }

    async fn record(&self, audit: Vec<AuditWrite>, _commit: Commit) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for write in audit {
            inner.seal(write)?;
        }
        Ok(())
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let inner = self.lock();
        let mut found = Vec::new();
        for (seq, text) in inner.audit.iter().rev() {
            let entry: AuditEntry =
                serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("audit entry {seq}: {e}")))?;
            if query.since.is_some_and(|since| entry.time < since) {
                break;
            }
            if query.matches(&entry) {
                found.push(entry);
                if query.limit != 0 && found.len() >= query.limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    async fn verify_audit(&self) -> Result<Vec<ChainReport>, StoreError> {
        let inner = self.lock();
        let mut walk = ChainWalk::after(inner.checkpoint.as_ref());
        for (seq, text) in &inner.audit {
            if !walk.step(*seq, text.as_bytes()) {
                break;
            }
        }
        Ok(vec![walk.report])
    }

    async fn put_challenge(&self, challenge: Challenge, now_ms: u64, max_pending: usize) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.challenges.len() >= max_pending {
            inner.challenges.retain(|_, c| c.expires_at_ms > now_ms);
            if inner.challenges.len() >= max_pending {
                return Ok(false);
            }
        }
        inner.challenges.insert(challenge.state.clone(), challenge);
        Ok(true)
    }

    async fn take_challenge(&self, state: &[u8]) -> Result<Option<Challenge>, StoreError> {
        Ok(self.lock().challenges.remove(state))
    }

    async fn pending_challenges(&self) -> Result<u64, StoreError> {
        Ok(self.lock().challenges.len() as u64)
    }

    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().meta.get(name).cloned())
    }

    async fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.lock().meta.insert(name.to_string(), value.to_vec());
        Ok(())
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let inner = self.lock();
        Ok(inner.tokens.is_empty() && inner.audit.is_empty())
    }

    async fn export(&self, sink: &mut dyn ExportSink) -> Result<(), StoreError> {
        let (tokens, audit) = {
            let inner = self.lock();
            (inner.tokens.values().cloned().collect::<Vec<_>>(), inner.audit.clone())
        };
        for token in tokens {
            sink.token(token)?;
        }
        for (seq, text) in audit {
            sink.audit(seq, text)?;
        }
        Ok(())
    }

    async fn restore_audit(&self, entries: Vec<(u64, String)>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some((seq, text)) = entries.last() {
            let node = inner.chain.node.clone();
            inner.chain = Chain::after_stored(node, *seq, text.as_bytes()).map_err(StoreError::Corrupt)?;
        }
        if inner.audit.is_empty() {
            inner.checkpoint = entries.first().and_then(|(seq, text)| ChainWalk::implied_by(*seq, text.as_bytes()));
        }
        inner.audit.extend(entries);
        Ok(())
    }

    async fn prune_audit(&self, rule: Retention, now: u64) -> Result<Pruned, StoreError> {
        let mut inner = self.lock();
        let total = inner.audit.len() as u64;
        let mut cut = 0usize;
        for (seq, text) in &inner.audit {
            let time = entry_time(text.as_bytes())
                .ok_or_else(|| StoreError::Corrupt(format!("audit entry {seq} has no readable time")))?;
            if !rule.drops(total - cut as u64, time, now) {
                break;
            }
            cut += 1;
        }
        let Some((seq, text)) = cut.checked_sub(1).and_then(|last| inner.audit.get(last)).cloned() else {
            return Ok(Pruned::default());
        };
        let entry: AuditEntry =
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("audit entry {seq}: {e}")))?;
        inner.audit.drain(..cut);
        inner.checkpoint = Some(Checkpoint { seq, hash: entry.hash });
        Ok(Pruned { entries: cut as u64, through: Some(seq) })
    }

    async fn health(&self) -> StoreHealth {
        StoreHealth { engine: "memory".into(), ..StoreHealth::default() }
    }

    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    crate::store_contract_tests!(|| async {
        crate::store::contract::Engine::new(super::MemoryStore::new(Some("node-a".into())), ())
    });
}
