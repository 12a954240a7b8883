//! Backups and restores: a signed copy of every token (seeds still sealed)
//! and of the audit log, and its way back into an empty store.

use serde::{Deserialize, Serialize};

use super::{DomainError, Service};
use crate::crypto::SeedCipher;
use crate::model::audit::{Actor, AuditEvent, AuditWrite, ChainReport};
use crate::model::token::Token;
use crate::store::{Commit, ExportSink, SCHEMA_VERSION, Store, StoreError};

/// The content of a backup: tokens as stored, and the audit entries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub schema_version: u32,
    pub tokens: Vec<Token>,
    /// Audit entries as stored (sequence, JSON text).
    pub audit: Vec<(u64, String)>,
}

impl ExportSink for Snapshot {
    fn token(&mut self, token: Token) -> Result<(), StoreError> {
        self.tokens.push(token);
        Ok(())
    }

    fn audit(&mut self, seq: u64, text: String) -> Result<(), StoreError> {
        self.audit.push((seq, text));
        Ok(())
    }
}

pub const BACKUP_FORMAT: &str = "radotp-backup";
pub const BACKUP_VERSION: u32 = 1;

/// What a backup's MAC covers first, before the JSON of its content.
const BACKUP_MAC_DOMAIN: &[u8] = b"radotp-backup-v1\n";

/// A backup file: tokens with sealed seeds, and the audit chain.
///
/// `mac` authenticates everything else: the hex HMAC-SHA256, under a key
/// derived from the master key ([`SeedCipher::backup_mac`]), of
/// `radotp-backup-v1\n` followed by the compact JSON of the other fields in
/// the order they are declared here. A restore re-encodes what it read and
/// compares, so fields added later to these types (tokens included) must be
/// left out of the JSON while they have their default
/// (`skip_serializing_if`), or the MACs of older backups stop verifying.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backup {
    pub format: String,
    pub version: u32,
    pub created_at: u64,
    pub daemon_version: String,
    pub snapshot: Snapshot,
    /// Absent from backups of versions before backups were signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// Whether a backup's MAC verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupMacStatus {
    Valid,
    /// The backup carries no MAC.
    Missing,
    /// The content was changed, or the MAC was made under another master key.
    Invalid,
}

impl Backup {
    fn content_mac(&self, cipher: &SeedCipher) -> Result<crate::crypto::BackupMac, serde_json::Error> {
        use hmac::Mac;
        #[derive(Serialize)]
        struct Content<'a> {
            format: &'a str,
            version: u32,
            created_at: u64,
            daemon_version: &'a str,
            snapshot: &'a Snapshot,
        }
        /// Feeds the JSON to the MAC as it is written, without a copy of the whole backup.
        struct Feed<'a>(&'a mut crate::crypto::BackupMac);
        impl std::io::Write for Feed<'_> {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.update(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut mac = cipher.backup_mac();
        mac.update(BACKUP_MAC_DOMAIN);
        let content = Content {
            format: &self.format,
            version: self.version,
            created_at: self.created_at,
            daemon_version: &self.daemon_version,
            snapshot: &self.snapshot,
        };
        serde_json::to_writer(Feed(&mut mac), &content)?;
        Ok(mac)
    }

    /// Sets `mac` for the current content.
    pub fn sign(&mut self, cipher: &SeedCipher) -> Result<(), serde_json::Error> {
        use hmac::Mac;
        let tag = self.content_mac(cipher)?.finalize().into_bytes();
        self.mac = Some(data_encoding::HEXLOWER.encode(&tag));
        Ok(())
    }

    /// Checks `mac` against the content (in constant time).
    pub fn mac_status(&self, cipher: &SeedCipher) -> BackupMacStatus {
        use hmac::Mac;
        let Some(text) = &self.mac else { return BackupMacStatus::Missing };
        let Ok(tag) = data_encoding::HEXLOWER_PERMISSIVE.decode(text.as_bytes()) else {
            return BackupMacStatus::Invalid;
        };
        match self.content_mac(cipher).map(|mac| mac.verify_slice(&tag)) {
            Ok(Ok(())) => BackupMacStatus::Valid,
            _ => BackupMacStatus::Invalid,
        }
    }

    /// Checks the audit chains the backup carries (one per node, one after
    /// the other; a single node has one).
    pub fn verify_audit_chain(&self) -> ChainReport {
        crate::model::audit::verify_chains(self.snapshot.audit.iter().map(|(seq, text)| (*seq, text.as_bytes())))
    }
}

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub tokens: usize,
    pub audit_entries: usize,
    /// Checks that failed and were overridden with `force` (empty without it).
    pub overridden: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} is not a radotp backup: {1}")]
    NotABackup(String, String),
    #[error("the store at {0} already holds data; restore into an empty store (move the old one away first)")]
    NotEmpty(String),
    #[error(
        "the configured key file does not open the backup's seeds (token {0}): restore the key file that was in use when the backup was made"
    )]
    WrongKey(String),
    #[error("{UNSIGNED}; if you trust where it came from, restore it with --force")]
    Unsigned,
    #[error("{BAD_MAC}; nothing was written (--force restores it anyway)")]
    BadMac,
    #[error("{}; nothing was written (--force restores it anyway)", chain_broken(*seq, problem))]
    BrokenChain { seq: u64, problem: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

const UNSIGNED: &str = "the backup has no MAC: it was made by a radotp version that did not sign backups, or the MAC was removed, so changes to its owners, counters or states cannot be detected";
const BAD_MAC: &str = "the backup's MAC does not verify: the file was changed after `radotpctl backup` wrote it (owners, counters or states may have been edited), or it was made under another master key";

fn chain_broken(seq: u64, problem: &str) -> String {
    format!("the backup's audit chain does not verify at entry {seq}: {problem}")
}

impl RestoreError {
    /// The failed check alone, without the advice of a refusal: what a
    /// forced restore reports it overrode (it did write).
    pub fn check_that_failed(&self) -> String {
        match self {
            RestoreError::Unsigned => UNSIGNED.to_string(),
            RestoreError::BadMac => BAD_MAC.to_string(),
            RestoreError::BrokenChain { seq, problem } => chain_broken(*seq, problem),
            other => other.to_string(),
        }
    }
}

/// Writes a backup into an empty store. Checks first that the master key
/// opens the seeds, so a restore with the wrong key file fails loudly; then
/// that the backup's MAC and its audit chain verify. A backup that fails
/// either check (or has no MAC) is refused unless `force`; then the report
/// names what was overridden. Nothing is written when a check refuses. The
/// restore itself is audited (`backup.restore`), after the restored entries.
pub async fn restore(
    store: &dyn Store,
    cipher: &SeedCipher,
    backup: &Backup,
    force: bool,
    source: &str,
    now: u64,
) -> Result<RestoreReport, RestoreError> {
    if !store.is_empty().await? {
        return Err(RestoreError::NotEmpty(String::new()));
    }
    if let Some(token) = backup.snapshot.tokens.first() {
        cipher.open(&token.serial, &token.sealed_seed).map_err(|_| RestoreError::WrongKey(token.serial.clone()))?;
    }
    let mut problems = Vec::new();
    match backup.mac_status(cipher) {
        BackupMacStatus::Valid => {}
        BackupMacStatus::Missing => problems.push(RestoreError::Unsigned),
        BackupMacStatus::Invalid => problems.push(RestoreError::BadMac),
    }
    let chain = backup.verify_audit_chain();
    if !chain.ok {
        problems.push(RestoreError::BrokenChain {
            seq: chain.first_broken.unwrap_or_default(),
            problem: chain.problem.unwrap_or_default(),
        });
    }
    if !force && !problems.is_empty() {
        return Err(problems.remove(0));
    }
    for chunk in backup.snapshot.tokens.chunks(10_000) {
        let tokens = chunk.iter().map(|t| Token { version: 0, ..t.clone() }).collect();
        store.insert(tokens, Vec::new()).await?;
    }
    store.restore_audit(backup.snapshot.audit.clone()).await?;
    let report = RestoreReport {
        tokens: backup.snapshot.tokens.len(),
        audit_entries: backup.snapshot.audit.len(),
        overridden: problems.iter().map(RestoreError::check_that_failed).collect(),
    };
    let event = AuditEvent {
        operation: "backup.restore".into(),
        details: serde_json::json!({
            "file": source,
            "backup_created_at": backup.created_at,
            "tokens": report.tokens,
            "audit_entries": report.audit_entries,
            "overridden": report.overridden,
        }),
        result: "ok".into(),
        reason: (!report.overridden.is_empty()).then(|| "forced".to_string()),
        ..Default::default()
    };
    store.record(vec![AuditWrite::new(&Actor::Daemon, now, event)], Commit::Durable).await?;
    store.flush().await?;
    Ok(report)
}

impl Service {
    /// A copy of every token (seeds still sealed) and of the audit log,
    /// signed, taken while RADIUS keeps serving.
    pub async fn backup(&self, actor: &Actor) -> Result<Backup, DomainError> {
        let result = self.make_backup().await;
        let details = match &result {
            Ok(b) => serde_json::json!({ "tokens": b.snapshot.tokens.len(), "audit_entries": b.snapshot.audit.len() }),
            Err(_) => serde_json::Value::Null,
        };
        self.audit_read(actor, "backup", None, None, details, &result).await;
        result
    }

    async fn make_backup(&self) -> Result<Backup, DomainError> {
        let mut snapshot = Snapshot { schema_version: SCHEMA_VERSION, ..Snapshot::default() };
        self.store.export(&mut snapshot).await?;
        let mut backup = Backup {
            format: BACKUP_FORMAT.into(),
            version: BACKUP_VERSION,
            created_at: self.now(),
            daemon_version: env!("CARGO_PKG_VERSION").into(),
            snapshot,
            mac: None,
        };
        backup.sign(&self.cipher).map_err(|e| DomainError::Internal(format!("cannot encode the backup: {e}")))?;
        Ok(backup)
    }
}

#[cfg(test)]
mod tests;
