//! PSKC key containers (RFC 6030), the format token vendors ship seeds in.
//!
//! The file is read as a stream of XML events (quick-xml), never as a tree:
//! each `<KeyPackage>` is decoded when it closes and only its result is kept.
//! What is understood:
//!
//! - HOTP and TOTP keys (`urn:ietf:params:xml:ns:keyprov:pskc:hotp`, `...:totp`);
//! - secrets as `PlainValue` (base64) or `EncryptedValue` (AES-128/192/256-CBC,
//!   the IV in front of the ciphertext, PKCS#7 padding), encrypted under a
//!   pre-shared key (`EncryptionKey/ds:KeyName`) or a key derived from a
//!   password with PBKDF2 (`EncryptionKey/DerivedKey`, PRF HMAC-SHA1 unless
//!   named);
//! - the MAC of encrypted values (`MACMethod` HMAC-SHA1, -SHA256 or -SHA512
//!   with its `MACKey` encrypted under the same key; `ValueMAC` over IV and
//!   ciphertext, RFC 6030 section 6.1.1): an encrypted value without a
//!   matching MAC is refused;
//! - `ResponseFormat Length` (digits), `Counter`, `TimeInterval` (period),
//!   `TimeDrift`, the hash named in `Suite`, the serial from
//!   `DeviceInfo/SerialNo` (else the key's `Id`).
//!
//! Hostile files: a DOCTYPE is refused outright, so no entity is ever
//! defined, expanded or fetched; only the five predefined entities and
//! character references are read. Nesting deeper than [`MAX_DEPTH`], element
//! text over 1 MiB, more than [`MAX_IMPORT_ROWS`] keys and PBKDF2 iteration
//! counts over [`MAX_PBKDF2_ITERATIONS`] are refused. XML signatures
//! (`ds:Signature`) are not checked.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{ImportError, TokenTypes as Settings};
use super::{
    ImportIssue, ImportOptions, ImportReport, ImportRow, MAX_IMPORT_ROWS, MAX_SEED_BYTES, MIN_SEED_BYTES, default_type,
};
use crate::model::otp::HashAlg;
use crate::model::token::{Algorithm, OtpParams, valid_serial};
use crate::secret::Secret;

mod crypto;
#[cfg(test)]
mod tests;
mod xml;

use crypto::*;
use xml::*;

/// Deepest element nesting accepted (RFC 6030 documents need about 8).
pub const MAX_DEPTH: usize = 32;
/// Longest text of one element.
const MAX_TEXT_BYTES: usize = 1 << 20;
/// Most PBKDF2 iterations a file may ask for (each costs the daemon CPU time).
pub const MAX_PBKDF2_ITERATIONS: u32 = 5_000_000;

pub const ALGORITHM_HOTP: &str = "urn:ietf:params:xml:ns:keyprov:pskc:hotp";
pub const ALGORITHM_TOTP: &str = "urn:ietf:params:xml:ns:keyprov:pskc:totp";
pub const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
pub const AES192_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes192-cbc";
pub const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
pub const HMAC_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#hmac-sha1";
pub const PBKDF2: &str = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2";

/// One key as the file describes it, decrypted and checked.
#[derive(Debug)]
pub struct PskcKey {
    /// Line of its `<Key>` element.
    pub line: u64,
    pub id: Option<String>,
    /// `DeviceInfo/SerialNo` of its package.
    pub device_serial: Option<String>,
    pub algorithm: Algorithm,
    pub secret: Secret,
    pub digits: Option<u8>,
    pub hash: Option<HashAlg>,
    pub counter: Option<u64>,
    pub period: Option<u64>,
    pub drift: Option<i64>,
}

impl PskcKey {
    /// The token's serial: the device's serial number, else the key's Id.
    pub fn serial(&self) -> Option<&str> {
        self.device_serial.as_deref().or(self.id.as_deref())
    }
}

/// A key that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyProblem {
    pub line: u64,
    pub id: Option<String>,
    pub serial: Option<String>,
    pub reason: String,
}

/// Reads a PSKC file and hands each key (or the reason it is unusable) to
/// `visit`, in file order. An `Err` is a problem with the whole file.
pub fn read_keys(
    content: &str,
    options: &ImportOptions,
    mut visit: impl FnMut(Result<PskcKey, KeyProblem>),
) -> Result<(), String> {
    let mut reader = Reader::from_str(content);
    let mut lines = Lines { text: content.as_bytes(), offset: 0, line: 1 };
    let mut stack: Vec<Tag> = Vec::with_capacity(MAX_DEPTH);
    let mut text = String::new();
    let mut header = Header::default();
    let mut unlocked: Option<Unlocked> = None;
    let mut package: Option<Package> = None;
    let mut key: Option<RawKey> = None;
    let mut keys_seen = 0usize;
    let mut root_done = false;
    loop {
        let before = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                let line = lines.at(reader.error_position());
                return Err(format!("line {line}: not well-formed XML: {e}"));
            }
        };
        let (start, end) = match event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            Event::End(_) => (None, true),
            // Text matters only inside the elements whose value is read; the
            // rest (mostly indentation) is skipped without decoding.
            Event::Text(e) => {
                if stack.last().is_some_and(|t| t.holds_value()) {
                    let chunk = e.decode().map_err(|e| format!("line {}: {e}", lines.at(before)))?;
                    push_text(&mut text, &chunk, &mut lines, before)?;
                }
                continue;
            }
            Event::CData(e) => {
                if stack.last().is_some_and(|t| t.holds_value()) {
                    let chunk = e.decode().map_err(|e| format!("line {}: {e}", lines.at(before)))?;
                    push_text(&mut text, &chunk, &mut lines, before)?;
                }
                continue;
            }
            Event::GeneralRef(r) => {
                let line = lines.at(before);
                let keep = stack.last().is_some_and(|t| t.holds_value());
                match r.resolve_char_ref() {
                    Ok(Some(c)) if keep => push_text(&mut text, c.encode_utf8(&mut [0u8; 4]), &mut lines, before)?,
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        let name = r.decode().map_err(|e| format!("line {line}: {e}"))?;
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(s) if keep => push_text(&mut text, s, &mut lines, before)?,
                            Some(_) => {}
                            None => {
                                return Err(format!(
                                    "line {line}: undefined entity &{name}; (entities are never expanded)"
                                ));
                            }
                        }
                    }
                    Err(e) => return Err(format!("line {line}: bad character reference: {e}")),
                }
                continue;
            }
            Event::DocType(_) => {
                return Err(format!(
                    "line {}: a DOCTYPE is not allowed in a PSKC file (entities are never expanded or fetched)",
                    lines.at(before)
                ));
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
        };
        if let Some(element) = start {
            let line = lines.at(before);
            if stack.len() >= MAX_DEPTH {
                return Err(format!("line {line}: elements are nested deeper than {MAX_DEPTH} levels"));
            }
            let tag = Tag::of(element.local_name().as_ref());
            if stack.is_empty() {
                if root_done {
                    return Err(format!("line {line}: content after the end of the KeyContainer"));
                }
                if tag != Tag::KeyContainer {
                    let name = String::from_utf8_lossy(element.local_name().as_ref()).into_owned();
                    return Err(format!(
                        "line {line}: not a PSKC file: the root element is <{name}>, not <KeyContainer>"
                    ));
                }
                if let Some(version) = attribute(&element, b"Version", line)? {
                    if !version.starts_with('1') {
                        return Err(format!("line {line}: PSKC version {version:?} is not supported (1.0 is)"));
                    }
                }
            }
            text.clear();
            let parent = stack.last().copied();
            match tag {
                Tag::EncryptionKey | Tag::MacMethod if unlocked.is_some() => {
                    return Err(format!("line {line}: {tag:?} must come before the key packages"));
                }
                Tag::EncryptionKey if parent == Some(Tag::KeyContainer) => header.encryption_key = true,
                Tag::DerivedKey if parent == Some(Tag::EncryptionKey) => header.derived = true,
                Tag::KeyDerivationMethod if inside(&stack, Tag::EncryptionKey) => {
                    header.kdf_algorithm = attribute(&element, b"Algorithm", line)?;
                }
                Tag::Prf if parent == Some(Tag::Pbkdf2Params) => {
                    header.prf = attribute(&element, b"Algorithm", line)?;
                }
                Tag::MacMethod if parent == Some(Tag::KeyContainer) => {
                    header.mac_algorithm = Some(attribute(&element, b"Algorithm", line)?.unwrap_or_default());
                }
                Tag::EncryptionMethod => {
                    let algorithm = attribute(&element, b"Algorithm", line)?;
                    if parent == Some(Tag::MacKey) {
                        header.mac_key_algorithm = algorithm;
                    } else if let Some(value) = current_value(&stack, key.as_mut()) {
                        value.algorithm = algorithm;
                    }
                }
                Tag::KeyPackage if parent == Some(Tag::KeyContainer) => {
                    if unlocked.is_none() {
                        unlocked = Some(unlock(&header, options)?);
                    }
                    package = Some(Package::default());
                }
                Tag::Key => {
                    if parent != Some(Tag::KeyPackage) {
                        return Err(format!("line {line}: a <Key> outside a <KeyPackage>"));
                    }
                    keys_seen += 1;
                    if keys_seen > MAX_IMPORT_ROWS {
                        return Err(format!("more than {MAX_IMPORT_ROWS} keys; split the file"));
                    }
                    key = Some(RawKey {
                        line,
                        id: attribute(&element, b"Id", line)?,
                        algorithm: attribute(&element, b"Algorithm", line)?,
                        ..RawKey::default()
                    });
                }
                Tag::ResponseFormat if parent == Some(Tag::AlgorithmParameters) => {
                    if let Some(k) = key.as_mut() {
                        k.length = attribute(&element, b"Length", line)?;
                        k.encoding = attribute(&element, b"Encoding", line)?;
                    }
                }
                Tag::Suite if parent == Some(Tag::AlgorithmParameters) => {
                    if let Some(k) = key.as_mut() {
                        // Some vendors name the hash in an attribute of Suite.
                        let mut named = Vec::new();
                        for attr in element.attributes() {
                            let attr = attr.map_err(|e| format!("line {line}: {e}"))?;
                            named.push(String::from_utf8_lossy(&attr.value).into_owned());
                        }
                        k.suite_attributes = named.join(" ");
                    }
                }
                _ => {}
            }
            stack.push(tag);
            if !end {
                continue;
            }
        }
        // An element ends: its tag is on top of the stack.
        let Some(tag) = stack.last().copied() else {
            return Err(format!("line {}: an end tag without its start", lines.at(before)));
        };
        let parent = stack.len().checked_sub(2).map(|i| stack[i]);
        let value = text.trim();
        match tag {
            Tag::KeyName if parent == Some(Tag::EncryptionKey) => header.key_name = Some(value.to_string()),
            Tag::MasterKeyName if parent == Some(Tag::DerivedKey) => {
                header.master_key_name = Some(value.to_string());
            }
            Tag::Specified if parent == Some(Tag::Salt) => header.salt = Some(value.to_string()),
            Tag::IterationCount if parent == Some(Tag::Pbkdf2Params) => header.iterations = Some(value.to_string()),
            Tag::KeyLength if parent == Some(Tag::Pbkdf2Params) => header.key_length = Some(value.to_string()),
            Tag::CipherValue if inside(&stack, Tag::MacKey) => header.mac_key_cipher = Some(value.to_string()),
            Tag::CipherValue | Tag::PlainValue | Tag::ValueMac => {
                if let Some(v) = current_value(&stack, key.as_mut()) {
                    let slot = match tag {
                        Tag::CipherValue if inside(&stack, Tag::EncryptedValue) => &mut v.cipher,
                        Tag::PlainValue => &mut v.plain,
                        Tag::ValueMac => &mut v.mac,
                        _ => &mut v.ignored,
                    };
                    *slot = Some(value.to_string());
                }
            }
            Tag::SerialNo if parent == Some(Tag::DeviceInfo) => {
                if let Some(p) = package.as_mut() {
                    p.serial = Some(value.to_string());
                }
            }
            Tag::Suite if parent == Some(Tag::AlgorithmParameters) => {
                if let Some(k) = key.as_mut() {
                    k.suite = Some(value.to_string());
                }
            }
            Tag::Key => {
                if let (Some(k), Some(p)) = (key.take(), package.as_mut()) {
                    p.keys.push(k);
                }
            }
            Tag::KeyPackage if parent == Some(Tag::KeyContainer) => {
                if let (Some(p), Some(u)) = (package.take(), unlocked.as_ref()) {
                    for raw in p.keys {
                        match decode_key(raw, p.serial.clone(), u) {
                            Ok(k) => visit(Ok(k)),
                            Err(Fault::Key(problem)) => visit(Err(problem)),
                            Err(Fault::File(message)) => return Err(message),
                        }
                    }
                }
            }
            _ => {}
        }
        text.clear();
        stack.pop();
        if stack.is_empty() {
            root_done = true;
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("the file ends inside <{open:?}>: it is truncated"));
    }
    if !root_done {
        return Err("not a PSKC file: there is no KeyContainer element".into());
    }
    if unlocked.is_none() {
        // No key packages: still tell about a key or password that does not fit.
        unlock(&header, options)?;
    }
    Ok(())
}

/// Reads a PSKC file into import rows; keys that cannot be imported go to
/// `report.invalid`.
pub fn parse(
    content: &str,
    options: &ImportOptions,
    settings: &Settings<'_>,
    report: &mut ImportReport,
) -> Result<Vec<ImportRow>, ImportError> {
    let mut rows = Vec::new();
    // (algorithm, type) -> keys given that type without --type.
    let mut defaulted: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
    read_keys(content, options, |key| match key.and_then(|k| to_row(k, options, settings)) {
        Ok((row, by_default)) => {
            if by_default {
                *defaulted.entry((row.params.algorithm.as_str(), row.type_id.clone())).or_default() += 1;
            }
            rows.push(row);
        }
        Err(problem) => report.invalid.push(ImportIssue {
            line: problem.line,
            serial: problem.serial,
            reason: problem.reason,
            key_id: problem.id,
        }),
    })
    .map_err(ImportError::Invalid)?;
    if let Some(id) = &options.token_type {
        report.notes.push(format!("keys were given type {id} (--type)"));
    }
    for ((algorithm, type_id), count) in defaulted {
        report.notes.push(format!(
            "{count} {} key(s) were given type {type_id}, the first configured type with algorithm {algorithm}; --type chooses another",
            algorithm.to_ascii_uppercase()
        ));
    }
    Ok(rows)
}

/// Turns a decoded key into a row; the bool says the type was chosen by algorithm.
fn to_row(key: PskcKey, options: &ImportOptions, settings: &Settings<'_>) -> Result<(ImportRow, bool), KeyProblem> {
    let serial = key.serial().map(str::to_string);
    let fail = |reason: String| KeyProblem { line: key.line, id: key.id.clone(), serial: serial.clone(), reason };
    let Some(serial) = serial.clone() else {
        return Err(fail("the key has neither a DeviceInfo/SerialNo nor an Id".into()));
    };
    if !valid_serial(&serial) {
        return Err(fail(format!(
            "serial {serial:?} must be 1 to 64 printable characters without spaces, commas or quotes"
        )));
    }
    let (ty, by_default) = match &options.token_type {
        Some(id) => match settings.token_type(id) {
            Some(ty) => (ty, false),
            None => return Err(fail(super::unknown_type(id, settings))),
        },
        None => match default_type(settings.token_types, key.algorithm) {
            Some(ty) => (ty, true),
            None => {
                return Err(fail(format!(
                    "no token type with algorithm {} is configured (add one to token_types, or give --type)",
                    key.algorithm.as_str()
                )));
            }
        },
    };
    if ty.algorithm != key.algorithm {
        return Err(fail(format!(
            "the key is {} but type {} is {}",
            key.algorithm.as_str().to_ascii_uppercase(),
            ty.id,
            ty.algorithm.as_str().to_ascii_uppercase()
        )));
    }
    let seed_len = key.secret.len();
    if !(MIN_SEED_BYTES..=MAX_SEED_BYTES).contains(&seed_len) {
        return Err(fail(format!("the secret is {seed_len} bytes; {MIN_SEED_BYTES} to {MAX_SEED_BYTES} are accepted")));
    }
    let mut params = OtpParams { algorithm: ty.algorithm, digits: ty.digits, hash: ty.hash, period: ty.period };
    if let Some(digits) = key.digits {
        params.digits = digits;
    }
    if let Some(hash) = key.hash {
        params.hash = hash;
    }
    let mut counter = 0;
    let mut drift = 0;
    match key.algorithm {
        Algorithm::Hotp => {
            if let Some(c) = key.counter {
                if c >= u64::MAX / 2 {
                    return Err(fail(format!("Counter {c} is out of range")));
                }
                counter = c;
            }
        }
        Algorithm::Totp => {
            if let Some(period) = key.period {
                if !(1..=3600).contains(&period) {
                    return Err(fail(format!("TimeInterval {period}: the period must be 1 to 3600 seconds")));
                }
                params.period = period as u32;
            }
            if let Some(d) = key.drift {
                if d.unsigned_abs() > 100_000 {
                    return Err(fail(format!("TimeDrift {d} is out of range")));
                }
                drift = d;
            }
        }
    }
    let row = ImportRow {
        line: key.line,
        key_id: key.id,
        serial,
        type_id: ty.id.clone(),
        params,
        seed: key.secret,
        counter,
        drift,
        user: None,
    };
    Ok((row, by_default))
}

// ------------------------------------------------------------------ parsing
