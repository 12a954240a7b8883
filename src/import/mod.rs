//! Token import files: CSV and PSKC (RFC 6030).
//!
//! The daemon reads the files an operator sends with `radotpctl token
//! import`; the CLI only carries them (and the key or password that opens an
//! encrypted file). Each format turns its file into [`ImportRow`]s and
//! records what it refuses in an [`ImportReport`]; [`crate::domain::Service`]
//! then checks serials and users and writes the tokens all together.
//!
//! A file that cannot be read as a whole (not XML, a DOCTYPE, too large, too
//! deep, a wrong key) is an error and nothing is written. A single bad row or
//! key is an [`ImportIssue`] with its line number.

pub mod csv;
pub mod pskc;
pub mod sample;

use serde::{Deserialize, Serialize};

use crate::model::token::{Algorithm, OtpParams, TokenType};
use crate::secret::Secret;

/// A file that cannot be imported at all (its rows' problems are in the report).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Invalid(String),
}

/// The token types an import may use.
#[derive(Debug, Clone, Copy)]
pub struct TokenTypes<'a> {
    pub token_types: &'a [TokenType],
}

impl<'a> TokenTypes<'a> {
    pub fn new(token_types: &'a [TokenType]) -> Self {
        TokenTypes { token_types }
    }

    pub fn token_type(&self, id: &str) -> Option<&'a TokenType> {
        self.token_types.iter().find(|t| t.id == id)
    }
}

/// Most rows (CSV) or keys (PSKC) one import may carry.
pub const MAX_IMPORT_ROWS: usize = 1_000_000;
/// Largest import file accepted.
pub const MAX_IMPORT_BYTES: usize = 256 << 20;
/// Shortest and longest seed accepted (RFC 4226 asks for at least 128 bits).
pub const MIN_SEED_BYTES: usize = 16;
pub const MAX_SEED_BYTES: usize = 128;

/// The outcome of an import.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    pub imported: usize,
    /// Serials that already existed in the store.
    pub skipped: Vec<ImportIssue>,
    pub invalid: Vec<ImportIssue>,
    pub dry_run: bool,
    /// Rows that passed every check (imported unless the import was aborted or a dry run).
    #[serde(default)]
    pub valid: usize,
    /// True when nothing was written because of invalid rows.
    pub aborted: bool,
    /// The format the file was read as ("csv" or "pskc").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Things worth knowing, such as which token type keys were given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportIssue {
    /// Line of the CSV row, or of the PSKC `<Key>` element.
    pub line: u64,
    pub serial: Option<String>,
    pub reason: String,
    /// PSKC: the key's `Id` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// The file formats `token import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ImportFormat {
    /// Comma-separated rows with a header line.
    Csv,
    /// Portable Symmetric Key Container (RFC 6030), as token vendors ship seeds.
    Pskc,
}

impl ImportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportFormat::Csv => "csv",
            ImportFormat::Pskc => "pskc",
        }
    }

    /// PSKC when the first non-blank character is `<`, CSV otherwise.
    pub fn detect(content: &str) -> ImportFormat {
        let start = content.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if start.starts_with('<') { ImportFormat::Pskc } else { ImportFormat::Csv }
    }
}

/// How to read one file.
#[derive(Clone, Default)]
pub struct ImportOptions {
    /// None: detected from the content.
    pub format: Option<ImportFormat>,
    /// The pre-shared key of an encrypted PSKC file (raw bytes).
    pub psk: Option<Secret>,
    /// The password of a PSKC file whose key is derived with PBKDF2.
    pub password: Option<Secret>,
    /// The token type of every token of the file (CSV: of rows without one).
    pub token_type: Option<String>,
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("format", &self.format)
            .field("psk", &self.psk.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token_type", &self.token_type)
            .finish()
    }
}

impl ImportOptions {
    /// Options from the fields of an import request; the pre-shared key comes as hex.
    pub fn from_request(
        format: Option<ImportFormat>,
        psk_hex: Option<&Secret>,
        password: Option<&Secret>,
        token_type: Option<&str>,
    ) -> Result<ImportOptions, ImportError> {
        if psk_hex.is_some() && password.is_some() {
            return Err(ImportError::Invalid("give a pre-shared key or a password, not both".into()));
        }
        let psk = match psk_hex {
            None => None,
            Some(hex) => Some(decode_psk(hex.expose())?),
        };
        Ok(ImportOptions { format, psk, password: password.cloned(), token_type: token_type.map(str::to_string) })
    }
}

/// A pre-shared key written as hex (spaces, colons and a trailing newline allowed).
fn decode_psk(text: &[u8]) -> Result<Secret, ImportError> {
    let cleaned: zeroize::Zeroizing<Vec<u8>> =
        zeroize::Zeroizing::new(text.iter().copied().filter(|b| !b.is_ascii_whitespace() && *b != b':').collect());
    let bytes = data_encoding::HEXLOWER_PERMISSIVE.decode(&cleaned).map_err(|_| {
        ImportError::Invalid("the pre-shared key file must hold the key in hex (32, 48 or 64 hex digits)".into())
    })?;
    let key = Secret::new(bytes);
    if ![16, 24, 32].contains(&key.len()) {
        return Err(ImportError::Invalid(format!(
            "the pre-shared key is {} bytes; AES keys are 16, 24 or 32 bytes (32, 48 or 64 hex digits)",
            key.len()
        )));
    }
    Ok(key)
}

/// One valid row of an import file.
#[derive(Debug)]
pub struct ImportRow {
    pub line: u64,
    /// PSKC: the key's `Id`.
    pub key_id: Option<String>,
    pub serial: String,
    pub type_id: String,
    pub params: OtpParams,
    pub seed: Secret,
    pub counter: u64,
    /// TOTP clock drift in steps (PSKC `TimeDrift`).
    pub drift: i64,
    pub user: Option<String>,
}

/// Reads `content` as `options` say (or as its first character suggests).
pub fn parse(
    content: &str,
    options: &ImportOptions,
    settings: &TokenTypes<'_>,
    report: &mut ImportReport,
) -> Result<Vec<ImportRow>, ImportError> {
    if content.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::Invalid(format!(
            "the file is {} MiB; at most {} MiB are accepted: split it",
            content.len() >> 20,
            MAX_IMPORT_BYTES >> 20
        )));
    }
    if let Some(id) = &options.token_type {
        if settings.token_type(id).is_none() {
            return Err(ImportError::Invalid(unknown_type(id, settings)));
        }
    }
    let format = options.format.unwrap_or_else(|| ImportFormat::detect(content));
    report.format = Some(format.as_str().to_string());
    match format {
        ImportFormat::Csv => {
            if options.psk.is_some() || options.password.is_some() {
                return Err(ImportError::Invalid(
                    "a CSV file is not encrypted: --psk-file and --password-file are for PSKC files".into(),
                ));
            }
            csv::parse(content, settings, options.token_type.as_deref(), report)
        }
        ImportFormat::Pskc => pskc::parse(content, options, settings, report),
    }
}

pub(crate) fn unknown_type(type_id: &str, settings: &TokenTypes<'_>) -> String {
    let known: Vec<_> = settings.token_types.iter().map(|t| t.id.as_str()).collect();
    format!("unknown token type {type_id:?} (defined: {})", known.join(", "))
}

/// The type a key of `algorithm` gets without `--type`: the first configured
/// type with that algorithm.
pub fn default_type(types: &[TokenType], algorithm: Algorithm) -> Option<&TokenType> {
    types.iter().find(|t| t.algorithm == algorithm)
}
