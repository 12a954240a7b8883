//! The embedded storage engine: sled.
//!
//! Trees: `tokens` (serial -> token JSON), `owners` (user NUL serial -> empty,
//! the owner index), `audit` (big-endian sequence -> entry bytes), `meta`
//! (schema version). A counter advance is a compare-and-swap on `tokens`; an
//! owner change is a transaction over `tokens` and `owners`, so the index
//! never disagrees with the token.

use std::path::Path;

use std::collections::HashSet;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::{AuditRecord, Change, SCHEMA_VERSION, Snapshot, StoreError, TokenStore, Updated};
use crate::token::Token;

const SCHEMA_KEY: &[u8] = b"schema_version";

pub struct SledStore {
    db: sled::Db,
    tokens: sled::Tree,
    owners: sled::Tree,
    audit: sled::Tree,
    /// Writers share it; a snapshot takes it alone, so it sees one instant.
    write_gate: std::sync::RwLock<()>,
}

fn io(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { .. } => StoreError::Corrupt(e.to_string()),
        other => StoreError::Io(other.to_string()),
    }
}

fn encode(token: &Token) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(token).map_err(|e| StoreError::Corrupt(format!("cannot encode token: {e}")))
}

fn decode(bytes: &[u8]) -> Result<Token, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("cannot decode token: {e}")))
}

fn owner_key(user: &str, serial: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(user.len() + 1 + serial.len());
    key.extend_from_slice(user.as_bytes());
    key.push(0);
    key.extend_from_slice(serial.as_bytes());
    key
}

/// Sets larger than this are checked in one ordered pass over the tree and
/// inserted as one batch (see [`SledStore::insert_batch`]).
/// Tokens written per batch by a large insert.
const INSERT_CHUNK: usize = 2000;
const ORDERED_PASS_ABOVE: usize = 256;

impl SledStore {
    /// Opens (or creates) the store at `path`. `cache_bytes` bounds sled's page cache.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
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
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema { found, supported: SCHEMA_VERSION });
                }
            }
        }
        Ok(SledStore {
            tokens: db.open_tree("tokens").map_err(io)?,
            owners: db.open_tree("owners").map_err(io)?,
            audit: db.open_tree("audit").map_err(io)?,
            db,
            write_gate: std::sync::RwLock::new(()),
        })
    }

    fn writing(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.write_gate.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts many tokens as one atomic sled batch per tree.
    ///
    /// A sled transaction reads every key back before writing it, which makes
    /// an import of 100,000 tokens several times slower. Here no other writer
    /// runs (the write gate is held alone; updates never create tokens) while
    /// the serials are checked in one ordered pass and the batches applied.
    /// The owner index goes first: should the process die between the two
    /// batches, index entries without their token are ignored by
    /// [`TokenStore::tokens_of`], and no token is visible.
    fn insert_batch(&self, tokens: &[Token]) -> Result<(), StoreError> {
        let mut serials = HashSet::with_capacity(tokens.len());
        for token in tokens {
            if !serials.insert(token.serial.as_str()) {
                return Err(StoreError::Exists(token.serial.clone()));
            }
        }
        let serials: Vec<&str> = serials.into_iter().collect();
        if let Some(serial) = self.existing(&serials)?.into_iter().min() {
            return Err(StoreError::Exists(serial));
        }
        // Written in chunks, so RADIUS is never held up for the whole import
        // (sled serialises every write behind a batch); a serial that appears
        // meanwhile undoes the chunks already written: all or nothing still.
        let mut written: Vec<&Token> = Vec::with_capacity(tokens.len());
        for chunk in tokens.chunks(INSERT_CHUNK) {
            let chunk_serials: Vec<&str> = chunk.iter().map(|t| t.serial.as_str()).collect();
            let mut token_batch = sled::Batch::default();
            let mut owner_batch = sled::Batch::default();
            for token in chunk {
                token_batch.insert(token.serial.as_bytes(), encode(token)?);
                if let Some(name) = token.owner_name() {
                    owner_batch.insert(owner_key(name, &token.serial), &[]);
                }
            }
            let _alone = self.write_gate.write().unwrap_or_else(|p| p.into_inner());
            if let Some(serial) = self.existing(&chunk_serials)?.into_iter().min() {
                drop(_alone);
                self.undo_inserts(&written)?;
                return Err(StoreError::Exists(serial));
            }
            self.owners.apply_batch(owner_batch).map_err(io)?;
            self.tokens.apply_batch(token_batch).map_err(io)?;
            written.extend(chunk);
        }
        Ok(())
    }

    fn undo_inserts(&self, tokens: &[&Token]) -> Result<(), StoreError> {
        let _writing = self.writing();
        let mut token_batch = sled::Batch::default();
        let mut owner_batch = sled::Batch::default();
        for token in tokens {
            token_batch.remove(token.serial.as_bytes());
            if let Some(name) = token.owner_name() {
                owner_batch.remove(owner_key(name, &token.serial));
            }
        }
        self.owners.apply_batch(owner_batch).map_err(io)?;
        self.tokens.apply_batch(token_batch).map_err(io)
    }

    fn write_with_index(&self, old_bytes: &sled::IVec, old: &Token, new: &Token) -> Result<bool, StoreError> {
        let new_bytes = encode(new)?;
        let serial = old.serial.as_bytes();
        let result = (&self.tokens, &self.owners).transaction(|(tokens, owners)| {
            match tokens.get(serial)? {
                Some(current) if current == *old_bytes => {}
                _ => return Err(ConflictableTransactionError::Abort(())),
            }
            tokens.insert(serial, new_bytes.as_slice())?;
            if let Some(name) = old.owner_name() {
                owners.remove(owner_key(name, &old.serial))?;
            }
            if let Some(name) = new.owner_name() {
                owners.insert(owner_key(name, &new.serial), &[])?;
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(true),
            Err(TransactionError::Abort(())) => Ok(false),
            Err(TransactionError::Storage(e)) => Err(io(e)),
        }
    }
}

impl TokenStore for SledStore {
    fn get(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        self.tokens.get(serial.as_bytes()).map_err(io)?.map(|b| decode(&b)).transpose()
    }

    fn contains(&self, serial: &str) -> Result<bool, StoreError> {
        self.tokens.contains_key(serial.as_bytes()).map_err(io)
    }

    fn tokens_of(&self, user: &str) -> Result<Vec<Token>, StoreError> {
        let mut prefix = user.as_bytes().to_vec();
        prefix.push(0);
        let mut found = Vec::new();
        for entry in self.owners.scan_prefix(&prefix) {
            let (key, _) = entry.map_err(io)?;
            let serial = &key[prefix.len()..];
            if let Some(bytes) = self.tokens.get(serial).map_err(io)? {
                let token = decode(&bytes)?;
                // The index and the token are written together; double-check anyway.
                if token.owner_name() == Some(user) {
                    found.push(token);
                }
            }
        }
        Ok(found)
    }

    fn scan(&self, visit: &mut dyn FnMut(Token) -> bool) -> Result<(), StoreError> {
        for entry in self.tokens.iter() {
            let (_, bytes) = entry.map_err(io)?;
            if !visit(decode(&bytes)?) {
                break;
            }
        }
        Ok(())
    }

    fn count(&self) -> Result<usize, StoreError> {
        Ok(self.tokens.len())
    }

    fn existing(&self, serials: &[&str]) -> Result<HashSet<String>, StoreError> {
        let mut sorted: Vec<&[u8]> = serials.iter().map(|s| s.as_bytes()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut found = HashSet::new();
        let (Some(first), Some(last)) = (sorted.first().copied(), sorted.last().copied()) else {
            return Ok(found);
        };
        if sorted.len() < ORDERED_PASS_ABOVE {
            for serial in sorted {
                if self.tokens.contains_key(serial).map_err(io)? {
                    found.insert(String::from_utf8_lossy(serial).into_owned());
                }
            }
            return Ok(found);
        }
        // One ordered pass over the stored serials between the first and the
        // last wanted one, merged with the sorted wanted ones. Should that
        // range hold many more tokens than are wanted (a few serials spread
        // over a large store), the rest is looked up one by one instead.
        let budget = sorted.len().saturating_mul(8).saturating_add(1024);
        let mut wanted = sorted.into_iter().peekable();
        for (scanned, key) in self.tokens.range(first..=last).keys().enumerate() {
            if scanned > budget {
                break;
            }
            let key = key.map_err(io)?;
            while wanted.next_if(|w| *w < key.as_ref()).is_some() {}
            match wanted.peek() {
                None => return Ok(found),
                Some(w) if *w == key.as_ref() => {
                    found.insert(String::from_utf8_lossy(w).into_owned());
                    wanted.next();
                }
                Some(_) => {}
            }
        }
        for serial in wanted {
            if self.tokens.contains_key(serial).map_err(io)? {
                found.insert(String::from_utf8_lossy(serial).into_owned());
            }
        }
        Ok(found)
    }

    fn insert_all(&self, tokens: &[Token]) -> Result<(), StoreError> {
        if tokens.len() > ORDERED_PASS_ABOVE {
            return self.insert_batch(tokens);
        }
        let _writing = self.writing();
        let mut encoded = Vec::with_capacity(tokens.len());
        for token in tokens {
            encoded.push(encode(token)?);
        }
        let result = (&self.tokens, &self.owners).transaction(|(tree, owners)| {
            for (token, bytes) in tokens.iter().zip(&encoded) {
                if tree.insert(token.serial.as_bytes(), bytes.as_slice())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(token.serial.clone()));
                }
                if let Some(name) = token.owner_name() {
                    owners.insert(owner_key(name, &token.serial), &[])?;
                }
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(serial)) => Err(StoreError::Exists(serial)),
            Err(TransactionError::Storage(e)) => Err(io(e)),
        }
    }

    fn update(
        &self,
        serial: &str,
        seen: Option<&Token>,
        decide: &mut dyn FnMut(&Token) -> Change<()>,
    ) -> Result<Updated<()>, StoreError> {
        let _writing = self.writing();
        // The caller's copy saves a read when it is still current (the
        // encoding is deterministic, so its bytes are what the store holds);
        // when it is not, the compare-and-swap fails and the loop reads afresh.
        let mut known = match seen.filter(|t| t.serial == serial) {
            Some(token) => Some((sled::IVec::from(encode(token)?), token.clone())),
            None => None,
        };
        loop {
            let (old_bytes, old) = match known.take() {
                Some(pair) => pair,
                None => {
                    let Some(bytes) = self.tokens.get(serial.as_bytes()).map_err(io)? else {
                        return Ok(Updated::NotFound);
                    };
                    let token = decode(&bytes)?;
                    (bytes, token)
                }
            };
            let new = match decide(&old) {
                Change::Keep(()) => return Ok(Updated::Done(())),
                Change::Write(new, ()) => new,
            };
            if new.serial != old.serial {
                return Err(StoreError::Corrupt("an update may not change the serial".into()));
            }
            let written = if new.owner == old.owner {
                let new_bytes = encode(&new)?;
                self.tokens.compare_and_swap(serial.as_bytes(), Some(&old_bytes), Some(new_bytes)).map_err(io)?.is_ok()
            } else {
                self.write_with_index(&old_bytes, &old, &new)?
            };
            if written {
                return Ok(Updated::Done(()));
            }
            // Someone else changed the token between our read and write: decide again.
        }
    }

    fn remove(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        let _writing = self.writing();
        let result = (&self.tokens, &self.owners).transaction(|(tokens, owners)| {
            let Some(bytes) = tokens.remove(serial.as_bytes())? else {
                return Ok(None);
            };
            let token = decode(&bytes).map_err(ConflictableTransactionError::Abort)?;
            if let Some(name) = token.owner_name() {
                owners.remove(owner_key(name, serial))?;
            }
            Ok(Some(token))
        });
        match result {
            Ok(token) => Ok(token),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(io(e)),
        }
    }

    fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let _writing = self.writing();
        self.audit.insert(record.seq.to_be_bytes(), record.bytes.as_slice()).map_err(io)?;
        Ok(())
    }

    fn append_audit_batch(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let _writing = self.writing();
        let mut batch = sled::Batch::default();
        for record in records {
            batch.insert(&record.seq.to_be_bytes(), record.bytes.as_slice());
        }
        self.audit.apply_batch(batch).map_err(io)
    }

    fn last_audit(&self) -> Result<Option<AuditRecord>, StoreError> {
        Ok(self.audit.last().map_err(io)?.map(|(k, v)| AuditRecord { seq: seq_of(&k), bytes: v.to_vec() }))
    }

    fn audit_newest_first(&self, visit: &mut dyn FnMut(AuditRecord) -> bool) -> Result<(), StoreError> {
        for entry in self.audit.iter().rev() {
            let (k, v) = entry.map_err(io)?;
            if !visit(AuditRecord { seq: seq_of(&k), bytes: v.to_vec() }) {
                break;
            }
        }
        Ok(())
    }

    fn audit_oldest_first(&self, visit: &mut dyn FnMut(AuditRecord) -> bool) -> Result<(), StoreError> {
        for entry in self.audit.iter() {
            let (k, v) = entry.map_err(io)?;
            if !visit(AuditRecord { seq: seq_of(&k), bytes: v.to_vec() }) {
                break;
            }
        }
        Ok(())
    }

    fn overwrite_audit_for_test(&self, record: &AuditRecord) -> Result<(), StoreError> {
        self.append_audit(record)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(io)?;
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(io)
    }

    fn snapshot(&self) -> Result<Snapshot, StoreError> {
        // Copy the raw values (reference-counted, cheap) under the gate; decode after.
        let (token_values, audit_values) = {
            let _alone = self.write_gate.write().unwrap_or_else(|p| p.into_inner());
            let tokens = self.tokens.iter().values().collect::<Result<Vec<_>, _>>().map_err(io)?;
            let audit = self.audit.iter().collect::<Result<Vec<_>, _>>().map_err(io)?;
            (tokens, audit)
        };
        let tokens = token_values.iter().map(|v| decode(v)).collect::<Result<Vec<_>, _>>()?;
        let audit = audit_values
            .into_iter()
            .map(|(k, v)| {
                String::from_utf8(v.to_vec())
                    .map(|text| (seq_of(&k), text))
                    .map_err(|_| StoreError::Corrupt(format!("audit entry {} is not UTF-8", seq_of(&k))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Snapshot { schema_version: SCHEMA_VERSION, tokens, audit })
    }
}

fn seq_of(key: &[u8]) -> u64 {
    <[u8; 8]>::try_from(key).map(u64::from_be_bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::HashAlg;
    use crate::token::{Algorithm, OtpParams, Owner};

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
}
