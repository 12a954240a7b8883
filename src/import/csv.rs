//! CSV import files: a header line naming the columns, then one token a row.
//!
//! Columns: `serial`, `type`, `seed` (hex) or `seed_base32`, and optionally
//! `digits`, `period`, `counter`, `hash`, `user` (see docs/configuration.md).

use super::{ImportError, TokenTypes as Settings};
use super::{ImportIssue, ImportReport, ImportRow, MAX_IMPORT_ROWS, MAX_SEED_BYTES, MIN_SEED_BYTES};
use crate::model::otp::{self, HashAlg};
use crate::model::token::{OtpParams, valid_serial, valid_user_name};
use crate::secret::Secret;

/// Reads CSV rows. `default_type` is the type of rows that name none (or of
/// every row when the file has no `type` column).
pub fn parse(
    content: &str,
    settings: &Settings<'_>,
    default_type: Option<&str>,
    report: &mut ImportReport,
) -> Result<Vec<ImportRow>, ImportError> {
    let mut reader = ::csv::ReaderBuilder::new().trim(::csv::Trim::All).flexible(false).from_reader(content.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Invalid(format!("line 1: cannot read the header: {e}")))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect::<Vec<_>>();
    let column = |name: &str| headers.iter().position(|h| h == name);
    const KNOWN: [&str; 9] = ["serial", "type", "seed", "seed_base32", "digits", "period", "counter", "hash", "user"];
    if let Some(unknown) = headers.iter().find(|h| !KNOWN.contains(&h.as_str())) {
        return Err(ImportError::Invalid(format!(
            "line 1: unknown column {unknown:?}; known columns: {}",
            KNOWN.join(", ")
        )));
    }
    let type_col = column("type");
    let (Some(serial_col), true) = (column("serial"), type_col.is_some() || default_type.is_some()) else {
        return Err(ImportError::Invalid("line 1: the header must name the columns serial, type and seed".into()));
    };
    let seed_col = column("seed");
    let base32_col = column("seed_base32");
    if seed_col.is_some() == base32_col.is_some() {
        return Err(ImportError::Invalid("line 1: give exactly one of the columns seed (hex) and seed_base32".into()));
    }
    let (digits_col, period_col, counter_col, hash_col, user_col) =
        (column("digits"), column("period"), column("counter"), column("hash"), column("user"));

    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                report.invalid.push(ImportIssue {
                    line,
                    serial: None,
                    reason: format!("unreadable row: {e}"),
                    key_id: None,
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if rows.len() + report.invalid.len() >= MAX_IMPORT_ROWS {
            return Err(ImportError::Invalid(format!("more than {MAX_IMPORT_ROWS} rows; split the file")));
        }
        let field = |col: Option<usize>| col.and_then(|c| record.get(c)).filter(|v| !v.is_empty());
        let serial = field(Some(serial_col)).unwrap_or("").to_string();
        let mut fail = |reason: String| {
            report.invalid.push(ImportIssue {
                line,
                serial: (!serial.is_empty()).then(|| serial.clone()),
                reason,
                key_id: None,
            });
        };
        if !valid_serial(&serial) {
            fail("serial must be 1 to 64 printable characters without spaces, commas or quotes".into());
            continue;
        }
        let type_id = field(type_col).or(default_type).unwrap_or("");
        let Some(ty) = settings.token_type(type_id) else {
            let known: Vec<_> = settings.token_types.iter().map(|t| t.id.as_str()).collect();
            fail(format!("unknown token type {type_id:?} (defined: {})", known.join(", ")));
            continue;
        };
        let seed = match (field(seed_col), field(base32_col)) {
            (Some(hex), _) => data_encoding::HEXLOWER_PERMISSIVE.decode(hex.as_bytes()).map_err(|_| "seed is not hex"),
            (_, Some(b32)) => {
                let cleaned: String =
                    b32.chars().filter(|c| *c != ' ' && *c != '=').collect::<String>().to_ascii_uppercase();
                data_encoding::BASE32_NOPAD.decode(cleaned.as_bytes()).map_err(|_| "seed_base32 is not base32")
            }
            _ => Err("seed is empty"),
        };
        let seed = match seed {
            Ok(bytes) if (MIN_SEED_BYTES..=MAX_SEED_BYTES).contains(&bytes.len()) => Secret::new(bytes),
            Ok(bytes) => {
                fail(format!("seed is {} bytes; {MIN_SEED_BYTES} to {MAX_SEED_BYTES} are accepted", bytes.len()));
                continue;
            }
            Err(reason) => {
                fail(reason.into());
                continue;
            }
        };
        let mut params = OtpParams { algorithm: ty.algorithm, digits: ty.digits, hash: ty.hash, period: ty.period };
        if let Some(text) = field(digits_col) {
            match text.parse::<u8>() {
                Ok(d) if (otp::MIN_DIGITS..=otp::MAX_DIGITS).contains(&d) => params.digits = d,
                _ => {
                    fail(format!("digits must be {} to {}", otp::MIN_DIGITS, otp::MAX_DIGITS));
                    continue;
                }
            }
        }
        if let Some(text) = field(period_col) {
            match text.parse::<u32>() {
                Ok(p) if (1..=3600).contains(&p) => params.period = p,
                _ => {
                    fail("period must be 1 to 3600 seconds".into());
                    continue;
                }
            }
        }
        if let Some(text) = field(hash_col) {
            match HashAlg::parse(text) {
                Some(h) => params.hash = h,
                None => {
                    fail("hash must be sha1, sha256 or sha512".into());
                    continue;
                }
            }
        }
        let counter = match field(counter_col).map(str::parse::<u64>) {
            None => 0,
            Some(Ok(c)) if c < u64::MAX / 2 => c,
            Some(_) => {
                fail("counter must be a non-negative integer".into());
                continue;
            }
        };
        let user = match field(user_col) {
            Some(name) if !valid_user_name(name) => {
                fail("user name must be 1 to 256 printable characters".into());
                continue;
            }
            other => other.map(str::to_string),
        };
        rows.push(ImportRow {
            line,
            key_id: None,
            serial,
            type_id: type_id.to_string(),
            params,
            seed,
            counter,
            drift: 0,
            user,
        });
    }
    Ok(rows)
}
