//! The audit chain's anchor: the head of the log, signed with a key derived
//! from the master key, kept in the store as a meta value.
//!
//! The hash chain shows an entry changed in the middle, but not the newest
//! entries cut off, nor a chain rewritten from some point with hashes
//! computed anew: anyone with write access to the store can do both. The
//! anchor names the newest entry (node, sequence, hash) at a moment and is
//! MACed under a key only the master key gives; it is written at start,
//! every minute while new entries come, after `audit verify` and at
//! shutdown. The check walks the log for the anchored entry: missing means
//! entries were cut, another hash means the chain was rewritten, a bad MAC
//! means the anchor itself was edited, and no anchor in a store that
//! already has a key check value means it was removed. Entries written
//! after the last anchoring (at most a minute's, after a crash) are not
//! covered, nor is an anchored entry that a retention checkpoint (unkeyed)
//! says was pruned.

use serde::{Deserialize, Serialize};

use super::key_check::KEY_CHECK_META;
use crate::crypto::{AUDIT_ANCHOR_LABEL, SeedCipher};
use crate::model::audit::{AuditEntry, AuditQuery};
use crate::model::token::Token;
use crate::store::{ExportSink, Store, StoreError};

/// The store's meta value holding the anchor.
pub const AUDIT_ANCHOR_META: &str = "audit_anchor";

/// The anchored head, as stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Anchor {
    node: Option<String>,
    seq: u64,
    /// "" when the log was empty (anything reaches that).
    hash: String,
    /// Unix seconds of the anchoring.
    time: u64,
    /// Hex HMAC-SHA256 of the fields above.
    mac: String,
}

impl Anchor {
    fn tag(&self, cipher: &SeedCipher) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut mac = cipher.purpose_mac(AUDIT_ANCHOR_LABEL);
        let signed = serde_json::json!([self.node, self.seq, self.hash, self.time]);
        mac.update(signed.to_string().as_bytes());
        mac
    }
}

/// What [`check_anchor`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorCheck {
    /// The log still holds the anchored entry, unchanged.
    Reached,
    /// Nothing anchored yet, and nothing says there should be.
    NotAnchored,
    /// The log was cut, rewritten, or the anchor edited or removed.
    Broken { seq: Option<u64>, problem: String },
}

/// Checks the log against its anchor.
pub async fn check_anchor(store: &dyn Store, cipher: &SeedCipher) -> Result<AnchorCheck, StoreError> {
    let Some(bytes) = store.get_meta(AUDIT_ANCHOR_META).await? else {
        let has_entries = !store.audit(&AuditQuery { limit: 1, ..AuditQuery::default() }).await?.is_empty();
        // A store this version started on has a key check value and an anchor together.
        if has_entries && store.get_meta(KEY_CHECK_META).await?.is_some() {
            return Ok(AnchorCheck::Broken {
                seq: None,
                problem: "the audit log's anchor was removed from the store".into(),
            });
        }
        return Ok(AnchorCheck::NotAnchored);
    };
    let Ok(anchor) = serde_json::from_slice::<Anchor>(&bytes) else {
        return Ok(AnchorCheck::Broken { seq: None, problem: "the audit log's anchor is unreadable".into() });
    };
    let valid = data_encoding::HEXLOWER_PERMISSIVE
        .decode(anchor.mac.as_bytes())
        .is_ok_and(|tag| hmac::Mac::verify_slice(anchor.tag(cipher), &tag).is_ok());
    if !valid {
        return Ok(AnchorCheck::Broken {
            seq: Some(anchor.seq),
            problem: "the audit log's anchor does not verify under the master key: it was edited".into(),
        });
    }
    if anchor.hash.is_empty() {
        return Ok(AnchorCheck::Reached);
    }
    // The anchored entry was the newest when anchored (at shutdown, or a
    // minute before a crash): it is among the entries of the last minutes,
    // read newest first. Only when it is not (a clock set back since) is the
    // whole log read.
    let recent = AuditQuery {
        since: Some(anchor.time.saturating_sub(600)),
        node: anchor.node.clone(),
        limit: 0,
        ..AuditQuery::default()
    };
    let mut finder = Finder { node: anchor.node.clone(), seq: anchor.seq, found: None };
    for entry in store.audit(&recent).await? {
        if entry.seq == anchor.seq && entry.node == anchor.node {
            finder.found = Some(entry.hash);
            break;
        }
    }
    if finder.found.is_none() {
        store.export(&mut finder).await?;
    }
    // Retention may have removed the anchored entry since (a small
    // `audit.max_entries`): its checkpoint then covers it.
    if finder.found.is_none()
        && store.verify_audit().await?.iter().any(|r| r.pruned_through.is_some_and(|through| through >= anchor.seq))
    {
        return Ok(AnchorCheck::Reached);
    }
    let when = crate::timefmt::format_utc(anchor.time);
    Ok(match finder.found {
        Some(hash) if hash == anchor.hash => AnchorCheck::Reached,
        Some(_) => AnchorCheck::Broken {
            seq: Some(anchor.seq),
            problem: format!(
                "audit entry {} is not the one anchored at {when}: the chain was rewritten from there on",
                anchor.seq
            ),
        },
        None => AnchorCheck::Broken {
            seq: Some(anchor.seq),
            problem: format!(
                "audit entry {} anchored as the newest at {when} is missing: entries were cut from the log",
                anchor.seq
            ),
        },
    })
}

/// Anchors the newest entry of the log (an empty log gets an anchor that
/// says so, so that a removed anchor is noticed). Returns the anchored
/// sequence number.
pub async fn anchor_head(store: &dyn Store, cipher: &SeedCipher, now: u64) -> Result<Option<u64>, StoreError> {
    use hmac::Mac;
    let newest = store.audit(&AuditQuery { limit: 1, ..AuditQuery::default() }).await?.pop();
    let seq = newest.as_ref().map(|e| e.seq);
    let (node, hash) = newest.map(|e| (e.node, e.hash)).unwrap_or_default();
    let mut anchor = Anchor { node, seq: seq.unwrap_or(0), hash, time: now, mac: String::new() };
    anchor.mac = data_encoding::HEXLOWER.encode(&anchor.tag(cipher).finalize().into_bytes());
    let bytes = serde_json::to_vec(&anchor).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store.put_meta(AUDIT_ANCHOR_META, &bytes).await?;
    Ok(seq)
}

impl super::Service {
    /// Checks the audit log against its anchor (at start). What is wrong
    /// is logged as an error; the anchor is then left as it is, so that
    /// `audit verify` keeps saying so.
    pub async fn check_audit_anchor(&self) -> Result<AnchorCheck, StoreError> {
        let found = check_anchor(self.store.as_ref(), &self.cipher).await?;
        if let AnchorCheck::Broken { problem, .. } = &found {
            tracing::error!(
                "audit log: {problem}; radotpd keeps the anchor as it was so that `radotpctl audit verify` shows it"
            );
        }
        Ok(found)
    }

    /// Anchors the newest audit entry (see the module doc); the sequence
    /// number anchored, if the log has entries.
    pub async fn anchor_audit(&self) -> Result<Option<u64>, StoreError> {
        anchor_head(self.store.as_ref(), &self.cipher, self.now()).await
    }

    /// The newest entry's sequence number and hash: whether the head moved.
    pub async fn audit_head(&self) -> Result<Option<(u64, String)>, StoreError> {
        Ok(self.store.audit(&AuditQuery { limit: 1, ..AuditQuery::default() }).await?.pop().map(|e| (e.seq, e.hash)))
    }
}

/// Looks for one entry while the store hands over its content.
struct Finder {
    node: Option<String>,
    seq: u64,
    found: Option<String>,
}

impl ExportSink for Finder {
    fn token(&mut self, _token: Token) -> Result<(), StoreError> {
        Ok(())
    }

    fn audit(&mut self, seq: u64, text: String) -> Result<(), StoreError> {
        if seq == self.seq && self.found.is_none() {
            if let Ok(entry) = serde_json::from_str::<AuditEntry>(&text) {
                if entry.node == self.node {
                    self.found = Some(entry.hash);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::audit::{Actor, AuditEvent, AuditWrite};
    use crate::store::Commit;
    use crate::store::memory::MemoryStore;

    async fn log(store: &MemoryStore, count: u64) {
        for i in 0..count {
            let event = AuditEvent { operation: format!("op{i}"), result: "ok".into(), ..AuditEvent::default() };
            store.record(vec![AuditWrite::new(&Actor::Daemon, 100 + i, event)], Commit::Durable).await.unwrap();
        }
    }

    async fn all(store: &MemoryStore) -> Vec<(u64, String)> {
        struct Keep(Vec<(u64, String)>);
        impl ExportSink for Keep {
            fn token(&mut self, _: Token) -> Result<(), StoreError> {
                Ok(())
            }
            fn audit(&mut self, seq: u64, text: String) -> Result<(), StoreError> {
                self.0.push((seq, text));
                Ok(())
            }
        }
        let mut keep = Keep(Vec::new());
        store.export(&mut keep).await.unwrap();
        keep.0
    }

    #[tokio::test]
    async fn a_log_that_grows_past_its_anchor_is_fine() {
        let (store, cipher) = (MemoryStore::new(None), SeedCipher::new(&[3u8; 32]));
        assert_eq!(check_anchor(&store, &cipher).await.unwrap(), AnchorCheck::NotAnchored);
        assert_eq!(anchor_head(&store, &cipher, 1).await.unwrap(), None, "empty log: anchored as empty");
        log(&store, 2).await;
        assert_eq!(check_anchor(&store, &cipher).await.unwrap(), AnchorCheck::Reached);
        log(&store, 5).await;
        assert!(anchor_head(&store, &cipher, 2).await.unwrap().is_some());
        log(&store, 3).await;
        assert_eq!(check_anchor(&store, &cipher).await.unwrap(), AnchorCheck::Reached);
    }

    #[tokio::test]
    async fn cutting_the_newest_entries_or_rewriting_the_chain_is_found() {
        let cipher = SeedCipher::new(&[3u8; 32]);
        let original = MemoryStore::new(None);
        log(&original, 6).await;
        anchor_head(&original, &cipher, 2).await.unwrap();
        let entries = all(&original).await;
        let anchor = original.get_meta(AUDIT_ANCHOR_META).await.unwrap().unwrap();

        // The last two entries cut off: the chain itself still verifies.
        let cut = MemoryStore::new(None);
        cut.restore_audit(entries[..4].to_vec()).await.unwrap();
        cut.put_meta(AUDIT_ANCHOR_META, &anchor).await.unwrap();
        assert!(cut.verify_audit().await.unwrap().iter().all(|r| r.ok), "the hash chain alone does not see it");
        let found = check_anchor(&cut, &cipher).await.unwrap();
        assert!(matches!(&found, AnchorCheck::Broken { problem, .. } if problem.contains("cut")), "{found:?}");

        // The chain rebuilt from scratch with other content: another head hash.
        let rewritten = MemoryStore::new(None);
        for i in 0..6 {
            let event = AuditEvent { operation: format!("forged{i}"), result: "ok".into(), ..AuditEvent::default() };
            rewritten.record(vec![AuditWrite::new(&Actor::Daemon, 100 + i, event)], Commit::Durable).await.unwrap();
        }
        rewritten.put_meta(AUDIT_ANCHOR_META, &anchor).await.unwrap();
        let found = check_anchor(&rewritten, &cipher).await.unwrap();
        assert!(matches!(&found, AnchorCheck::Broken { problem, .. } if problem.contains("rewritten")), "{found:?}");

        // An anchor made anew without the master key does not verify.
        anchor_head(&rewritten, &SeedCipher::new(&[4u8; 32]), 3).await.unwrap();
        let found = check_anchor(&rewritten, &cipher).await.unwrap();
        assert!(matches!(&found, AnchorCheck::Broken { problem, .. } if problem.contains("edited")), "{found:?}");

        // Removed, in a store that had one (it has a key check value).
        let removed = MemoryStore::new(None);
        log(&removed, 2).await;
        removed.put_meta(KEY_CHECK_META, &cipher.key_check()).await.unwrap();
        let found = check_anchor(&removed, &cipher).await.unwrap();
        assert!(matches!(&found, AnchorCheck::Broken { problem, .. } if problem.contains("removed")), "{found:?}");
    }
}
