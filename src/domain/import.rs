//! Importing tokens from CSV or PSKC files (the parsers are in
//! [`crate::import`]): the whole file is checked first, then its tokens are
//! written in one step with their `token.import` audit entry.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::{DomainError, Service};
use crate::crypto::SeedCipher;
use crate::directory::DirectoryError;
use crate::import::{ImportError, ImportFormat, ImportIssue, ImportOptions, ImportReport, ImportRow, TokenTypes};
use crate::model::audit::{Actor, AuditEvent, AuditWrite};
use crate::model::token::{Owner, Token};

impl From<ImportError> for DomainError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Invalid(message) => DomainError::Invalid(message),
        }
    }
}

/// Runs CPU work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DomainError> + Send + 'static,
) -> Result<T, DomainError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(DomainError::Internal(format!("import task failed: {e}"))))
}

impl Service {
    /// Imports tokens from CSV text (see docs/configuration.md for the columns).
    pub async fn import_csv(
        &self,
        actor: &Actor,
        content: &str,
        skip_invalid: bool,
        dry_run: bool,
    ) -> Result<ImportReport, DomainError> {
        let options = ImportOptions { format: Some(ImportFormat::Csv), ..ImportOptions::default() };
        self.import(actor, zeroize::Zeroizing::new(content.to_string()), options, skip_invalid, dry_run).await
    }

    /// Imports tokens from a CSV or PSKC file.
    ///
    /// Serials that exist already are skipped; a serial seen earlier in the
    /// file is invalid; when any row is invalid nothing is written, unless `skip_invalid`. The
    /// tokens and the `token.import` entry are written in one atomic step.
    ///
    /// `content` (for CSV, the seeds in clear) is wiped as soon as it is parsed.
    pub async fn import(
        &self,
        actor: &Actor,
        content: zeroize::Zeroizing<String>,
        options: ImportOptions,
        skip_invalid: bool,
        dry_run: bool,
    ) -> Result<ImportReport, DomainError> {
        let decryption = match (&options.psk, &options.password) {
            (Some(_), _) => Some("pre-shared key"),
            (None, Some(_)) => Some("password"),
            (None, None) => None,
        };
        let mut details = serde_json::json!({
            "bytes": content.len(),
            "skip_invalid": skip_invalid,
            "dry_run": dry_run,
            "type": options.token_type,
            "decryption": decryption,
        });
        let result = self.import_file(actor, content, options, skip_invalid, dry_run, &mut details).await;
        match &result {
            // Written with its tokens.
            Ok(report) if report.imported > 0 && !dry_run => {}
            _ => {
                let (outcome, reason) = super::error::outcome_of(&result);
                let event = AuditEvent {
                    operation: "token.import".into(),
                    details,
                    result: outcome,
                    reason,
                    ..AuditEvent::default()
                };
                self.record(actor, event).await;
            }
        }
        result
    }

    async fn import_file(
        &self,
        actor: &Actor,
        content: zeroize::Zeroizing<String>,
        options: ImportOptions,
        skip_invalid: bool,
        dry_run: bool,
        details: &mut serde_json::Value,
    ) -> Result<ImportReport, DomainError> {
        let settings = self.settings();
        let now = self.now();
        let started = Instant::now();
        // Parsing, decrypting and sealing are CPU work: keep them off the async workers.
        let types = settings.token_types.clone();
        let (rows, report) = blocking(move || {
            let mut report = ImportReport { dry_run, ..ImportReport::default() };
            let rows = crate::import::parse(&content, &options, &TokenTypes::new(&types), &mut report)?;
            drop(content);
            Ok((rows, report))
        })
        .await?;
        let parsed = started.elapsed();
        // Each user named in the file is looked up once.
        let directory = self.directory();
        let mut owners: HashMap<String, Result<Owner, String>> = HashMap::new();
        for name in rows.iter().filter_map(|r| r.user.as_ref()) {
            if !owners.contains_key(name) {
                let owner = match directory.lookup(name).await {
                    Ok(Some(u)) => Ok(Owner { name: u.name, display_name: u.display_name, dn: u.dn }),
                    Ok(None) => Err(format!("user {name} is not in the directory")),
                    // A directory that does not answer aborts the import ...
                    Err(e @ DirectoryError::Unavailable(_)) => return Err(e.into()),
                    // ... ambiguous, outside the required group, not a name: those rows only.
                    Err(e) => Err(e.to_string()),
                };
                owners.insert(name.clone(), owner);
            }
        }
        let serials: Vec<String> = rows.iter().map(|r| r.serial.clone()).collect();
        let existing = self.store.existing(&serials).await?;
        drop(serials);
        let cipher = self.cipher.clone();
        let (tokens, mut report) =
            blocking(move || build_tokens(rows, &owners, &existing, &cipher, now, report)).await?;
        let checked = started.elapsed();
        report.invalid.sort_by_key(|i| i.line);
        report.valid = tokens.len();
        if let serde_json::Value::Object(map) = details {
            map.insert("format".into(), report.format.clone().into());
        }
        if !report.invalid.is_empty() && !skip_invalid {
            report.aborted = true;
            note_counts(details, &report);
            return Ok(report);
        }
        if !dry_run && !tokens.is_empty() {
            report.imported = report.valid;
            note_counts(details, &report);
            let event = AuditEvent {
                operation: "token.import".into(),
                details: details.clone(),
                result: "ok".into(),
                ..AuditEvent::default()
            };
            let audit = AuditWrite::new(actor, now, event);
            self.store.insert(tokens, vec![audit]).await?;
        } else {
            report.imported = report.valid;
            note_counts(details, &report);
        }
        tracing::info!(
            format = report.format.as_deref().unwrap_or("-"),
            valid = report.valid,
            skipped = report.skipped.len(),
            invalid = report.invalid.len(),
            dry_run,
            parse_ms = parsed.as_millis() as u64,
            check_ms = (checked - parsed).as_millis() as u64,
            write_ms = (started.elapsed() - checked).as_millis() as u64,
            "import finished"
        );
        Ok(report)
    }
}

/// Adds the report's counts to the import's audit details.
fn note_counts(details: &mut serde_json::Value, report: &ImportReport) {
    if let serde_json::Value::Object(map) = details {
        map.insert("imported".into(), report.imported.into());
        map.insert("skipped".into(), report.skipped.len().into());
        map.insert("invalid".into(), report.invalid.len().into());
    }
}

/// Turns checked rows into sealed tokens: skips serials already stored,
/// refuses serials seen earlier in the file and users missing from the directory.
fn build_tokens(
    rows: Vec<ImportRow>,
    owners: &HashMap<String, Result<Owner, String>>,
    existing: &HashSet<String>,
    cipher: &SeedCipher,
    now: u64,
    mut report: ImportReport,
) -> Result<(Vec<Token>, ImportReport), DomainError> {
    let mut seen: HashMap<String, u64> = HashMap::with_capacity(rows.len());
    let mut tokens = Vec::with_capacity(rows.len());
    for row in rows {
        let issue = |reason: String| ImportIssue {
            line: row.line,
            serial: Some(row.serial.clone()),
            reason,
            key_id: row.key_id.clone(),
        };
        // The same serial twice in one file is a broken file (maybe two
        // different seeds): invalid, so that nothing is imported by default.
        if let Some(first) = seen.get(&row.serial) {
            report.invalid.push(issue(format!("serial appears earlier in the file (line {first})")));
            continue;
        }
        seen.insert(row.serial.clone(), row.line);
        if existing.contains(&row.serial) {
            report.skipped.push(issue("serial already exists".into()));
            continue;
        }
        let owner = match &row.user {
            None => None,
            Some(name) => match owners.get(name) {
                Some(Ok(owner)) => Some(owner.clone()),
                Some(Err(reason)) => {
                    report.invalid.push(issue(reason.clone()));
                    continue;
                }
                None => {
                    report.invalid.push(issue(format!("user {name} is not in the directory")));
                    continue;
                }
            },
        };
        let sealed_seed = cipher.seal(&row.serial, &row.seed)?;
        tokens.push(Token {
            serial: row.serial,
            type_id: row.type_id,
            params: row.params,
            sealed_seed,
            counter: row.counter,
            last_step: None,
            drift: row.drift,
            owner,
            disabled: false,
            locked: false,
            fail_count: 0,
            created_at: now,
            last_used_at: None,
            locked_at: None,
            failed_at: None,
            version: 0,
        });
    }
    Ok((tokens, report))
}
