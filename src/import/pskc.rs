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

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, Mac};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use zeroize::Zeroizing;

use super::{ImportError, TokenTypes as Settings};
use super::{
    ImportIssue, ImportOptions, ImportReport, ImportRow, MAX_IMPORT_ROWS, MAX_SEED_BYTES, MIN_SEED_BYTES, default_type,
};
use crate::model::otp::{self, HashAlg};
use crate::model::token::{Algorithm, OtpParams, valid_serial};
use crate::secret::Secret;

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
        None => match default_type(&settings.token_types, key.algorithm) {
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

/// The elements the reader cares about (by local name, whatever the prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    KeyContainer,
    EncryptionKey,
    KeyName,
    DerivedKey,
    KeyDerivationMethod,
    Pbkdf2Params,
    Salt,
    Specified,
    IterationCount,
    KeyLength,
    Prf,
    MasterKeyName,
    MacMethod,
    MacKey,
    EncryptionMethod,
    CipherValue,
    KeyPackage,
    DeviceInfo,
    SerialNo,
    Key,
    AlgorithmParameters,
    Suite,
    ResponseFormat,
    Secret,
    Counter,
    Time,
    TimeInterval,
    TimeDrift,
    PlainValue,
    EncryptedValue,
    ValueMac,
    Other,
}

impl Tag {
    /// Elements whose text is read.
    fn holds_value(self) -> bool {
        matches!(
            self,
            Tag::KeyName
                | Tag::MasterKeyName
                | Tag::Specified
                | Tag::IterationCount
                | Tag::KeyLength
                | Tag::CipherValue
                | Tag::PlainValue
                | Tag::ValueMac
                | Tag::SerialNo
                | Tag::Suite
        )
    }

    fn of(local: &[u8]) -> Tag {
        match local {
            b"KeyContainer" => Tag::KeyContainer,
            b"EncryptionKey" => Tag::EncryptionKey,
            b"KeyName" => Tag::KeyName,
            b"DerivedKey" => Tag::DerivedKey,
            b"KeyDerivationMethod" => Tag::KeyDerivationMethod,
            b"PBKDF2-params" => Tag::Pbkdf2Params,
            b"Salt" => Tag::Salt,
            b"Specified" => Tag::Specified,
            b"IterationCount" => Tag::IterationCount,
            b"KeyLength" => Tag::KeyLength,
            b"PRF" => Tag::Prf,
            b"MasterKeyName" => Tag::MasterKeyName,
            b"MACMethod" => Tag::MacMethod,
            b"MACKey" => Tag::MacKey,
            b"EncryptionMethod" => Tag::EncryptionMethod,
            b"CipherValue" => Tag::CipherValue,
            b"KeyPackage" => Tag::KeyPackage,
            b"DeviceInfo" => Tag::DeviceInfo,
            b"SerialNo" => Tag::SerialNo,
            b"Key" => Tag::Key,
            b"AlgorithmParameters" => Tag::AlgorithmParameters,
            b"Suite" => Tag::Suite,
            b"ResponseFormat" => Tag::ResponseFormat,
            b"Secret" => Tag::Secret,
            b"Counter" => Tag::Counter,
            b"Time" => Tag::Time,
            b"TimeInterval" => Tag::TimeInterval,
            b"TimeDrift" => Tag::TimeDrift,
            b"PlainValue" => Tag::PlainValue,
            b"EncryptedValue" => Tag::EncryptedValue,
            b"ValueMAC" => Tag::ValueMac,
            _ => Tag::Other,
        }
    }
}

/// Container-level settings: how the file is encrypted and MACed.
#[derive(Default)]
struct Header {
    encryption_key: bool,
    key_name: Option<String>,
    derived: bool,
    kdf_algorithm: Option<String>,
    salt: Option<String>,
    iterations: Option<String>,
    key_length: Option<String>,
    prf: Option<String>,
    master_key_name: Option<String>,
    mac_algorithm: Option<String>,
    mac_key_algorithm: Option<String>,
    mac_key_cipher: Option<String>,
}

/// One data value of a key (`Secret`, `Counter`, ...), as text.
#[derive(Default)]
struct RawValue {
    plain: Option<String>,
    algorithm: Option<String>,
    cipher: Option<String>,
    mac: Option<String>,
    ignored: Option<String>,
}

impl RawValue {
    fn is_empty(&self) -> bool {
        self.plain.is_none() && self.cipher.is_none()
    }
}

#[derive(Default)]
struct RawKey {
    line: u64,
    id: Option<String>,
    algorithm: Option<String>,
    suite: Option<String>,
    suite_attributes: String,
    length: Option<String>,
    encoding: Option<String>,
    secret: RawValue,
    counter: RawValue,
    time: RawValue,
    time_interval: RawValue,
    time_drift: RawValue,
}

#[derive(Default)]
struct Package {
    serial: Option<String>,
    keys: Vec<RawKey>,
}

/// The key that opens encrypted values, and the MAC key.
struct Unlocked {
    key: Option<Zeroizing<Vec<u8>>>,
    /// Says which material the key came from, for messages.
    source: &'static str,
    mac: Option<(MacAlg, Zeroizing<Vec<u8>>)>,
}

enum Fault {
    /// This key cannot be imported.
    Key(KeyProblem),
    /// The whole file cannot be.
    File(String),
}

/// Tracks line numbers of byte offsets, moving forward through the text.
struct Lines<'a> {
    text: &'a [u8],
    offset: usize,
    line: u64,
}

impl Lines<'_> {
    fn at(&mut self, offset: u64) -> u64 {
        let offset = (offset as usize).min(self.text.len());
        if offset < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        self.line += self.text[self.offset..offset].iter().filter(|b| **b == b'\n').count() as u64;
        self.offset = offset;
        self.line
    }
}

fn push_text(text: &mut String, chunk: &str, lines: &mut Lines, at: u64) -> Result<(), String> {
    if text.len() + chunk.len() > MAX_TEXT_BYTES {
        return Err(format!("line {}: an element's text is longer than {} KiB", lines.at(at), MAX_TEXT_BYTES >> 10));
    }
    text.push_str(chunk);
    Ok(())
}

fn inside(stack: &[Tag], tag: Tag) -> bool {
    stack.contains(&tag)
}

/// The data value (of the current key) an element inside it belongs to.
fn current_value<'k>(stack: &[Tag], key: Option<&'k mut RawKey>) -> Option<&'k mut RawValue> {
    let key = key?;
    if !inside(stack, Tag::Key) {
        return None;
    }
    let field = stack.iter().rev().find(|t| {
        matches!(t, Tag::Secret | Tag::Counter | Tag::Time | Tag::TimeInterval | Tag::TimeDrift | Tag::Key)
    })?;
    match field {
        Tag::Secret => Some(&mut key.secret),
        Tag::Counter => Some(&mut key.counter),
        Tag::Time => Some(&mut key.time),
        Tag::TimeInterval => Some(&mut key.time_interval),
        Tag::TimeDrift => Some(&mut key.time_drift),
        _ => None,
    }
}

fn attribute(element: &BytesStart, name: &[u8], line: u64) -> Result<Option<String>, String> {
    let attr = element.try_get_attribute(name).map_err(|e| format!("line {line}: {e}"))?;
    match attr {
        None => Ok(None),
        Some(attr) => attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map(|v| Some(v.trim().to_string()))
            .map_err(|e| format!("line {line}: {e}")),
    }
}

// --------------------------------------------------------------- decryption

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AesCbc {
    Aes128,
    Aes192,
    Aes256,
}

impl AesCbc {
    fn parse(uri: Option<&str>) -> Result<AesCbc, String> {
        match uri.unwrap_or("") {
            AES128_CBC => Ok(AesCbc::Aes128),
            AES192_CBC => Ok(AesCbc::Aes192),
            AES256_CBC => Ok(AesCbc::Aes256),
            "" => Err("the EncryptionMethod has no Algorithm".into()),
            other => Err(format!(
                "encryption algorithm {other} is not supported (AES-128-CBC, AES-192-CBC and AES-256-CBC are)"
            )),
        }
    }

    fn key_len(self) -> usize {
        match self {
            AesCbc::Aes128 => 16,
            AesCbc::Aes192 => 24,
            AesCbc::Aes256 => 32,
        }
    }

    fn name(self) -> &'static str {
        match self {
            AesCbc::Aes128 => "AES-128-CBC",
            AesCbc::Aes192 => "AES-192-CBC",
            AesCbc::Aes256 => "AES-256-CBC",
        }
    }
}

enum DecryptError {
    /// The key does not fit the algorithm: the same for every value.
    KeyLength(String),
    /// This value does not decrypt.
    Value(String),
}

/// AES-CBC with the IV in front of the ciphertext and PKCS#7 padding.
fn cbc_decrypt(alg: AesCbc, key: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    if key.len() != alg.key_len() {
        return Err(DecryptError::KeyLength(format!(
            "the key is {} bytes but {} needs {}",
            key.len(),
            alg.name(),
            alg.key_len()
        )));
    }
    if data.len() < 32 || data.len() % 16 != 0 {
        return Err(DecryptError::Value(format!(
            "the encrypted value is {} bytes: not an IV followed by whole AES blocks",
            data.len()
        )));
    }
    let (iv, ciphertext) = data.split_at(16);
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let bad = |_| DecryptError::Value("the value does not decrypt (bad padding): wrong key, or altered file".into());
    let plain_len = match alg {
        AesCbc::Aes128 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|_| DecryptError::KeyLength("bad key".into()))?
            .decrypt_padded_mut::<Pkcs7>(&mut buffer)
            .map_err(bad)?
            .len(),
        AesCbc::Aes192 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(|_| DecryptError::KeyLength("bad key".into()))?
            .decrypt_padded_mut::<Pkcs7>(&mut buffer)
            .map_err(bad)?
            .len(),
        AesCbc::Aes256 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|_| DecryptError::KeyLength("bad key".into()))?
            .decrypt_padded_mut::<Pkcs7>(&mut buffer)
            .map_err(bad)?
            .len(),
    };
    buffer.truncate(plain_len);
    Ok(buffer)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MacAlg {
    Sha1,
    Sha256,
    Sha512,
}

impl MacAlg {
    /// HMAC algorithms by the end of their URI (xmldsig, xmldsig-more, PKCS #5).
    fn parse(uri: &str) -> Option<MacAlg> {
        let lower = uri.to_ascii_lowercase();
        if lower.ends_with("hmac-sha1") || lower.ends_with("hmacwithsha1") {
            Some(MacAlg::Sha1)
        } else if lower.ends_with("hmac-sha256") || lower.ends_with("hmacwithsha256") {
            Some(MacAlg::Sha256)
        } else if lower.ends_with("hmac-sha512") || lower.ends_with("hmacwithsha512") {
            Some(MacAlg::Sha512)
        } else {
            None
        }
    }

    fn verify(self, key: &[u8], data: &[u8], expected: &[u8]) -> bool {
        fn check<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8], expected: &[u8]) -> bool {
            match <M as hmac::digest::KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.verify_slice(expected).is_ok()
                }
                Err(_) => false,
            }
        }
        match self {
            MacAlg::Sha1 => check::<Hmac<sha1::Sha1>>(key, data, expected),
            MacAlg::Sha256 => check::<Hmac<sha2::Sha256>>(key, data, expected),
            MacAlg::Sha512 => check::<Hmac<sha2::Sha512>>(key, data, expected),
        }
    }
}

fn base64(text: &str) -> Option<Vec<u8>> {
    let cleaned: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    data_encoding::BASE64.decode(&cleaned).or_else(|_| data_encoding::BASE64_NOPAD.decode(&cleaned)).ok()
}

/// Works out the file's key (from the pre-shared key or the password) and
/// decrypts its MAC key. Every failure here concerns the whole file.
fn unlock(header: &Header, options: &ImportOptions) -> Result<Unlocked, String> {
    let named = |what: &Option<String>| what.as_ref().map(|n| format!(" ({n:?})")).unwrap_or_default();
    let (key, source) = if header.derived {
        let name = named(&header.master_key_name);
        let Some(password) = &options.password else {
            return Err(if options.psk.is_some() {
                format!(
                    "this file's key is derived from a password{name} with PBKDF2: give --password-file, not --psk-file"
                )
            } else {
                format!("this file's secrets are encrypted with a password{name}: give it with --password-file")
            });
        };
        let kdf = header.kdf_algorithm.as_deref().unwrap_or("");
        if kdf != PBKDF2 && !kdf.ends_with("#pbkdf2") {
            return Err(format!("key derivation {kdf:?} is not supported (PBKDF2 is)"));
        }
        let salt = header
            .salt
            .as_deref()
            .and_then(base64)
            .ok_or("the PBKDF2 parameters have no readable Salt/Specified (base64)")?;
        let iterations: u32 = header
            .iterations
            .as_deref()
            .and_then(|t| t.parse().ok())
            .filter(|n| (1..=MAX_PBKDF2_ITERATIONS).contains(n))
            .ok_or(format!("the PBKDF2 IterationCount must be 1 to {MAX_PBKDF2_ITERATIONS}"))?;
        let key_len: usize = match header.key_length.as_deref() {
            None => 16,
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| [16, 24, 32].contains(n))
                .ok_or("the PBKDF2 KeyLength must be 16, 24 or 32")?,
        };
        let prf = match header.prf.as_deref() {
            None | Some("") => MacAlg::Sha1,
            Some(uri) => MacAlg::parse(uri).ok_or(format!("PBKDF2 PRF {uri:?} is not supported"))?,
        };
        let mut key = Zeroizing::new(vec![0u8; key_len]);
        let password = password.expose();
        match prf {
            MacAlg::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, &salt, iterations, &mut key),
            MacAlg::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, &salt, iterations, &mut key),
            MacAlg::Sha512 => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, &salt, iterations, &mut key),
        }
        (Some(key), "password")
    } else if let Some(psk) = &options.psk {
        if options.password.is_some() {
            return Err("give a pre-shared key or a password, not both".into());
        }
        (Some(Zeroizing::new(psk.expose().to_vec())), "pre-shared key")
    } else if options.password.is_some() {
        return Err(if header.encryption_key {
            format!(
                "this file is encrypted with a pre-shared key{}, not a password: give --psk-file",
                named(&header.key_name)
            )
        } else {
            "this file has no PBKDF2 parameters: --password-file does not apply".into()
        });
    } else if header.encryption_key {
        return Err(format!(
            "this file is encrypted with a pre-shared key{}: give it with --psk-file (the key in hex)",
            named(&header.key_name)
        ));
    } else {
        (None, "")
    };
    let mac = match &header.mac_algorithm {
        None => None,
        Some(uri) => {
            let alg = MacAlg::parse(uri).ok_or(format!("MACMethod {uri:?} is not supported (HMAC-SHA1 is)"))?;
            let cipher = header
                .mac_key_cipher
                .as_deref()
                .ok_or("the MACMethod has no encrypted MACKey (MACKeyReference is not supported)")?;
            let cipher = base64(cipher).ok_or("the MACKey CipherValue is not base64")?;
            let Some(key) = &key else {
                return Err("the MAC key is encrypted: give --psk-file or --password-file".into());
            };
            let cipher_alg = AesCbc::parse(header.mac_key_algorithm.as_deref()).map_err(|e| format!("MACKey: {e}"))?;
            let mac_key = match cbc_decrypt(cipher_alg, key, &cipher) {
                Ok(k) => k,
                Err(DecryptError::KeyLength(e)) => return Err(e),
                Err(DecryptError::Value(_)) => {
                    return Err(format!("the {source} does not decrypt the file's MAC key: is it the right one?"));
                }
            };
            Some((alg, mac_key))
        }
    };
    Ok(Unlocked { key, source, mac })
}

/// Decrypts (and checks the MAC of) one value; plain values are returned as text bytes.
fn open_value(value: &RawValue, what: &str, unlocked: &Unlocked) -> Result<Option<ValueBytes>, Fault> {
    let key_fault = |reason: String| Fault::Key(KeyProblem { line: 0, id: None, serial: None, reason });
    match (&value.plain, &value.cipher) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(key_fault(format!("{what} has both a PlainValue and an EncryptedValue"))),
        (Some(plain), None) => Ok(Some(ValueBytes::Plain(plain.clone()))),
        (None, Some(cipher_text)) => {
            let Some(key) = &unlocked.key else {
                return Err(Fault::File(
                    "the file has encrypted values but says nothing of its key: give --psk-file or --password-file"
                        .into(),
                ));
            };
            let alg = AesCbc::parse(value.algorithm.as_deref()).map_err(|e| key_fault(format!("{what}: {e}")))?;
            let data =
                base64(cipher_text).ok_or_else(|| key_fault(format!("{what}: the CipherValue is not base64")))?;
            let Some((mac_alg, mac_key)) = &unlocked.mac else {
                return Err(key_fault(format!(
                    "{what} is encrypted without a MAC (no MACMethod): refused, as AES-CBC needs one (RFC 6030 section 6.1.1)"
                )));
            };
            let Some(mac) = &value.mac else {
                return Err(key_fault(format!("{what} is encrypted but has no ValueMAC")));
            };
            let mac = base64(mac).ok_or_else(|| key_fault(format!("{what}: the ValueMAC is not base64")))?;
            if !mac_alg.verify(mac_key, &data, &mac) {
                return Err(key_fault(format!(
                    "{what}: the ValueMAC does not match: the file was altered, or the {} is wrong",
                    unlocked.source
                )));
            }
            match cbc_decrypt(alg, key, &data) {
                Ok(bytes) => Ok(Some(ValueBytes::Decrypted(bytes))),
                Err(DecryptError::KeyLength(e)) => Err(Fault::File(e)),
                Err(DecryptError::Value(e)) => Err(key_fault(format!("{what}: {e}"))),
            }
        }
    }
}

enum ValueBytes {
    Plain(String),
    Decrypted(Zeroizing<Vec<u8>>),
}

/// An integer data value: decimal text, or a decrypted big-endian number.
fn integer(value: &RawValue, what: &str, unlocked: &Unlocked) -> Result<Option<i128>, Fault> {
    let bad = |reason: String| Fault::Key(KeyProblem { line: 0, id: None, serial: None, reason });
    Ok(match open_value(value, what, unlocked)? {
        None => None,
        Some(ValueBytes::Plain(text)) => {
            Some(text.parse::<i64>().map_err(|_| bad(format!("{what} {text:?} is not an integer")))? as i128)
        }
        Some(ValueBytes::Decrypted(bytes)) => {
            if bytes.is_empty() || bytes.len() > 8 {
                return Err(bad(format!("{what} decrypts to {} bytes, not an integer", bytes.len())));
            }
            Some(bytes.iter().fold(0i128, |n, b| (n << 8) | i128::from(*b)))
        }
    })
}

fn decode_key(raw: RawKey, device_serial: Option<String>, unlocked: &Unlocked) -> Result<PskcKey, Fault> {
    let problem = |reason: String| KeyProblem {
        line: raw.line,
        id: raw.id.clone(),
        serial: device_serial.clone().or(raw.id.clone()),
        reason,
    };
    // Key-level faults raised below do not know the key yet: give them its line and names.
    let locate = |fault: Fault| match fault {
        Fault::Key(p) => Fault::Key(problem(p.reason)),
        file => file,
    };
    let uri = raw.algorithm.as_deref().unwrap_or("");
    let algorithm = if uri == ALGORITHM_HOTP || uri.ends_with("pskc#hotp") {
        Algorithm::Hotp
    } else if uri == ALGORITHM_TOTP || uri.ends_with("pskc#totp") {
        Algorithm::Totp
    } else if uri.is_empty() {
        return Err(Fault::Key(problem("the key has no Algorithm".into())));
    } else {
        return Err(Fault::Key(problem(format!("algorithm {uri} is not supported: only HOTP and TOTP keys are"))));
    };
    if raw.secret.is_empty() {
        return Err(Fault::Key(problem("the key has no Secret".into())));
    }
    let secret = match open_value(&raw.secret, "the Secret", unlocked).map_err(locate)? {
        Some(ValueBytes::Plain(text)) => match base64(&text) {
            Some(bytes) => Secret::new(bytes),
            None => return Err(Fault::Key(problem("the Secret's PlainValue is not base64".into()))),
        },
        Some(ValueBytes::Decrypted(bytes)) => Secret::new(bytes.to_vec()),
        None => return Err(Fault::Key(problem("the key has no Secret".into()))),
    };
    let digits = match &raw.length {
        None => None,
        Some(text) => match text.parse::<u8>() {
            Ok(d) if (otp::MIN_DIGITS..=otp::MAX_DIGITS).contains(&d) => Some(d),
            _ => {
                return Err(Fault::Key(problem(format!(
                    "ResponseFormat Length {text:?}: OTPs of {} to {} digits are supported",
                    otp::MIN_DIGITS,
                    otp::MAX_DIGITS
                ))));
            }
        },
    };
    if let Some(encoding) = raw.encoding.as_deref().filter(|e| !e.eq_ignore_ascii_case("DECIMAL")) {
        return Err(Fault::Key(problem(format!(
            "ResponseFormat Encoding {encoding}: only DECIMAL OTPs are supported"
        ))));
    }
    let suite = format!("{} {}", raw.suite.as_deref().unwrap_or(""), raw.suite_attributes);
    let hash = match suite.trim() {
        "" => None,
        text => match hash_of_suite(text) {
            Some(h) => Some(h),
            None => {
                return Err(Fault::Key(problem(format!(
                    "Suite {text:?}: no hash this server knows (SHA1, SHA256, SHA512)"
                ))));
            }
        },
    };
    let counter = integer(&raw.counter, "the Counter", unlocked).map_err(locate)?;
    let period = integer(&raw.time_interval, "the TimeInterval", unlocked).map_err(locate)?;
    let drift = integer(&raw.time_drift, "the TimeDrift", unlocked).map_err(locate)?;
    let counter = match counter {
        Some(c) if c < 0 || c > i128::from(u64::MAX) => {
            return Err(Fault::Key(problem(format!("the Counter {c} is out of range"))));
        }
        other => other.map(|c| c as u64),
    };
    let period = match period {
        Some(p) if !(1..=3600).contains(&p) => {
            return Err(Fault::Key(problem(format!("the TimeInterval {p}: the period must be 1 to 3600 seconds"))));
        }
        other => other.map(|p| p as u64),
    };
    let drift = match drift {
        Some(d) if d.unsigned_abs() > 100_000 => {
            return Err(Fault::Key(problem(format!("the TimeDrift {d} is out of range"))));
        }
        other => other.map(|d| d as i64),
    };
    Ok(PskcKey { line: raw.line, id: raw.id, device_serial, algorithm, secret, digits, hash, counter, period, drift })
}

/// The hash an algorithm suite names ("HMAC-SHA256", "SHA-1", "OCRA-1:HOTP-SHA512-8:...").
fn hash_of_suite(suite: &str) -> Option<HashAlg> {
    let flat: String = suite.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_uppercase();
    if flat.contains("SHA512") {
        Some(HashAlg::Sha512)
    } else if flat.contains("SHA256") {
        Some(HashAlg::Sha256)
    } else if flat.contains("SHA1") {
        Some(HashAlg::Sha1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::token::TokenType;

    const FIGURE2: &str = include_str!("../../tests/data/pskc/figure2.pskcxml");
    const FIGURE3: &str = include_str!("../../tests/data/pskc/figure3.pskcxml");
    const FIGURE5: &str = include_str!("../../tests/data/pskc/figure5.pskcxml");
    const FIGURE6: &str = include_str!("../../tests/data/pskc/figure6.pskcxml");
    const TAMPERED_MAC: &str = include_str!("../../tests/data/pskc/tampered-mac.pskcxml");
    const MALFORMED: &str = include_str!("../../tests/data/pskc/malformed.pskcxml");
    const BILLION_LAUGHS: &str = include_str!("../../tests/data/pskc/billion-laughs.pskcxml");
    const EXTERNAL_ENTITY: &str = include_str!("../../tests/data/pskc/external-entity.pskcxml");
    /// "12345678901234567890", the secret of every RFC 6030 example but Figure 2.
    const RFC_SECRET_HEX: &str = "3132333435363738393031323334353637383930";
    const RFC_PSK_HEX: &str = "12345678901234567890123456789012";

    fn hex(bytes: &[u8]) -> String {
        data_encoding::HEXLOWER.encode(bytes)
    }

    fn psk() -> ImportOptions {
        ImportOptions::from_request(None, Some(&Secret::from(RFC_PSK_HEX)), None, None).unwrap()
    }

    fn password(text: &str) -> ImportOptions {
        ImportOptions { password: Some(Secret::from(text)), ..ImportOptions::default() }
    }

    fn keys(content: &str, options: &ImportOptions) -> Result<Vec<Result<PskcKey, KeyProblem>>, String> {
        let mut found = Vec::new();
        read_keys(content, options, |k| found.push(k))?;
        Ok(found)
    }

    fn one_key(content: &str, options: &ImportOptions) -> PskcKey {
        let mut found = keys(content, options).unwrap();
        assert_eq!(found.len(), 1);
        found.remove(0).unwrap()
    }

    fn settings() -> Settings<'static> {
        let ty = |id: &str, algorithm, digits| TokenType {
            id: id.into(),
            label: id.into(),
            algorithm,
            digits,
            period: 30,
            hash: HashAlg::Sha1,
            operator_enroll: true,
            generate_secret: false,
            allow_reset: true,
            deletable: true,
        };
        let types = vec![
            ty("hw-hotp", Algorithm::Hotp, 6),
            ty("hw-totp", Algorithm::Totp, 6),
            ty("other-hotp", Algorithm::Hotp, 8),
        ];
        Settings::new(Box::leak(types.into_boxed_slice()))
    }

    #[test]
    fn figure2_plain_value_is_read_but_its_four_byte_secret_is_refused() {
        let key = one_key(FIGURE2, &ImportOptions::default());
        assert_eq!(key.secret.expose(), b"1234");
        assert_eq!(
            (key.id.as_deref(), key.serial(), key.algorithm),
            (Some("12345678"), Some("12345678"), Algorithm::Hotp)
        );
        assert_eq!(key.line, 6);
        let mut report = ImportReport::default();
        let rows = parse(FIGURE2, &ImportOptions::default(), &settings(), &mut report).unwrap();
        assert!(rows.is_empty());
        assert_eq!(report.invalid.len(), 1);
        let issue = &report.invalid[0];
        assert_eq!((issue.line, issue.key_id.as_deref()), (6, Some("12345678")));
        assert!(issue.reason.contains("4 bytes"), "{issue:?}");
    }

    #[test]
    fn figure3_plain_key_with_device_serial_and_response_format() {
        let mut report = ImportReport::default();
        let rows = parse(FIGURE3, &ImportOptions::default(), &settings(), &mut report).unwrap();
        assert!(report.invalid.is_empty(), "{:?}", report.invalid);
        let row = &rows[0];
        assert_eq!(hex(row.seed.expose()), RFC_SECRET_HEX);
        assert_eq!((row.serial.as_str(), row.key_id.as_deref()), ("987654321", Some("12345678")));
        assert_eq!((row.type_id.as_str(), row.params.digits, row.counter), ("hw-hotp", 8, 0));
        assert!(
            report.notes.iter().any(|n| n.contains("hw-hotp") && n.contains("first configured type")),
            "{:?}",
            report.notes
        );
    }

    #[test]
    fn figure5_pre_shared_key_decrypts_and_the_mac_is_checked() {
        let key = one_key(FIGURE5, &psk());
        assert_eq!(hex(key.secret.expose()), RFC_SECRET_HEX);
        assert_eq!((key.serial(), key.digits, key.counter), (Some("987654321"), Some(8), Some(0)));
    }

    #[test]
    fn figure6_pbkdf2_password_decrypts() {
        let key = one_key(FIGURE6, &password("qwerty"));
        assert_eq!(hex(key.secret.expose()), RFC_SECRET_HEX);
        assert_eq!((key.id.as_deref(), key.serial(), key.digits), (Some("123456"), Some("987654321"), Some(8)));
    }

    #[test]
    fn tampered_mac_or_ciphertext_makes_the_key_invalid() {
        let found = keys(TAMPERED_MAC, &psk()).unwrap();
        let problem = found[0].as_ref().unwrap_err();
        assert!(problem.reason.contains("ValueMAC does not match"), "{problem:?}");
        assert_eq!((problem.serial.as_deref(), problem.id.as_deref()), (Some("987654321"), Some("12345678")));
        // One changed ciphertext byte (the IV is covered too).
        let altered = FIGURE5.replace("AAECAwQFBgcICQoLDA0OD+cI", "AAECAwQFBgcICQoLDA0OD+cJ");
        let problem = keys(&altered, &psk()).unwrap().remove(0).unwrap_err();
        assert!(problem.reason.contains("ValueMAC does not match"), "{problem:?}");
        // No ValueMAC at all.
        let start = FIGURE5.find("<ValueMAC>").unwrap();
        let end = FIGURE5.find("</ValueMAC>").unwrap() + "</ValueMAC>".len();
        let stripped = format!("{}{}", &FIGURE5[..start], &FIGURE5[end..]);
        let problem = keys(&stripped, &psk()).unwrap().remove(0).unwrap_err();
        assert!(problem.reason.contains("no ValueMAC"), "{problem:?}");
        // No MACMethod: encrypted secrets are refused.
        let start = FIGURE5.find("<MACMethod").unwrap();
        let end = FIGURE5.find("</MACMethod>").unwrap() + "</MACMethod>".len();
        let stripped = format!("{}{}", &FIGURE5[..start], &FIGURE5[end..]);
        let problem = keys(&stripped, &psk()).unwrap().remove(0).unwrap_err();
        assert!(problem.reason.contains("without a MAC"), "{problem:?}");
    }

    #[test]
    fn wrong_or_missing_key_material_is_a_file_error() {
        let err = keys(FIGURE5, &ImportOptions::default()).unwrap_err();
        assert!(err.contains("--psk-file") && err.contains("Pre-shared-key"), "{err}");
        let wrong =
            ImportOptions::from_request(None, Some(&Secret::from("00112233445566778899aabbccddeeff")), None, None)
                .unwrap();
        let err = keys(FIGURE5, &wrong).unwrap_err();
        assert!(err.contains("does not decrypt the file's MAC key"), "{err}");
        let err = keys(FIGURE5, &password("qwerty")).unwrap_err();
        assert!(err.contains("pre-shared key") && err.contains("--psk-file"), "{err}");
        let err = keys(FIGURE6, &ImportOptions::default()).unwrap_err();
        assert!(err.contains("--password-file") && err.contains("My Password 1"), "{err}");
        let err = keys(FIGURE6, &psk()).unwrap_err();
        assert!(err.contains("--password-file"), "{err}");
        let err = keys(FIGURE6, &password("azerty")).unwrap_err();
        assert!(err.contains("password does not decrypt"), "{err}");
        let long = ImportOptions::from_request(None, Some(&Secret::from(&*"ab".repeat(32))), None, None).unwrap();
        let err = keys(FIGURE5, &long).unwrap_err();
        assert!(err.contains("32 bytes") && err.contains("AES-128-CBC"), "{err}");
        assert!(ImportOptions::from_request(None, Some(&Secret::from("xyz")), None, None).is_err());
        assert!(ImportOptions::from_request(None, Some(&Secret::from("0011")), None, None).is_err());
    }

    /// Each PBKDF2 iteration costs the daemon CPU time: a file may not ask for
    /// more than MAX_PBKDF2_ITERATIONS (nor for none, nor for a count that is not a number).
    #[test]
    fn pbkdf2_iteration_counts_over_the_limit_are_refused() {
        assert!(FIGURE6.contains("<IterationCount>1000</IterationCount>"));
        for count in ["5000001", "4294967295", "4294967296", "99999999999999999999", "0", "-1", "1e9", ""] {
            let hostile = FIGURE6
                .replace("<IterationCount>1000</IterationCount>", &format!("<IterationCount>{count}</IterationCount>"));
            let err = keys(&hostile, &password("qwerty")).unwrap_err();
            assert!(err.contains("the PBKDF2 IterationCount must be 1 to 5000000"), "{count:?}: {err}");
        }
        assert_eq!(MAX_PBKDF2_ITERATIONS, 5_000_000);
        // Within the limit the same file opens (figure6_pbkdf2_password_decrypts: 1000 iterations).
        let fewer = FIGURE6.replace("<IterationCount>1000</IterationCount>", "<IterationCount>1</IterationCount>");
        let err = keys(&fewer, &password("qwerty")).unwrap_err();
        assert!(err.contains("password does not decrypt"), "1 iteration is allowed, but derives another key: {err}");
    }

    #[test]
    fn malformed_xml_is_refused_with_its_line() {
        let err = keys(MALFORMED, &ImportOptions::default()).unwrap_err();
        assert!(err.starts_with("line 17:") && err.contains("not well-formed"), "{err}");
        let err = keys("<KeyContainer Version=\"1.0\"><KeyPackage>", &ImportOptions::default()).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        let err = keys("<html><body/></html>", &ImportOptions::default()).unwrap_err();
        assert!(err.contains("root element is <html>"), "{err}");
        let err = keys("<KeyContainer Version=\"2.0\"/>", &ImportOptions::default()).unwrap_err();
        assert!(err.contains("version"), "{err}");
        let err = keys("<KeyContainer/><KeyContainer/>", &ImportOptions::default()).unwrap_err();
        assert!(err.contains("after the end"), "{err}");
    }

    #[test]
    fn doctype_entities_and_external_entities_are_never_resolved() {
        for hostile in [BILLION_LAUGHS, EXTERNAL_ENTITY] {
            let err = keys(hostile, &ImportOptions::default()).unwrap_err();
            assert!(err.contains("DOCTYPE is not allowed") && err.starts_with("line 2:"), "{err}");
        }
        // An entity reference without any DOCTYPE is an undefined entity, not a lookup.
        let sneaky = FIGURE3.replace("<SerialNo>987654321</SerialNo>", "<SerialNo>&serial;</SerialNo>");
        let err = keys(&sneaky, &ImportOptions::default()).unwrap_err();
        assert!(err.contains("undefined entity &serial;"), "{err}");
        // The predefined ones and character references are read.
        let escaped = FIGURE3.replace("<SerialNo>987654321</SerialNo>", "<SerialNo>98&#55;65&#x34;321</SerialNo>");
        assert_eq!(one_key(&escaped, &ImportOptions::default()).serial(), Some("987654321"));
    }

    #[test]
    fn deep_nesting_and_huge_text_are_refused() {
        let deep = format!(
            "<KeyContainer Version=\"1.0\">{}{}</KeyContainer>",
            "<a>".repeat(MAX_DEPTH + 5),
            "</a>".repeat(MAX_DEPTH + 5)
        );
        let err = keys(&deep, &ImportOptions::default()).unwrap_err();
        assert!(err.contains("nested deeper than 32"), "{err}");
        let huge = FIGURE3.replace("MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=", &"A".repeat(MAX_TEXT_BYTES + 4));
        let err = keys(&huge, &ImportOptions::default()).unwrap_err();
        assert!(err.contains("longer than"), "{err}");
    }

    #[test]
    fn file_size_limit_is_checked_before_parsing() {
        let mut report = ImportReport::default();
        let big = " ".repeat(super::super::MAX_IMPORT_BYTES + 1);
        let err = super::super::parse(&big, &ImportOptions::default(), &settings(), &mut report).unwrap_err();
        assert!(err.to_string().contains("at most 256 MiB"), "{err}");
    }

    #[test]
    fn totp_keys_take_period_hash_and_drift_and_the_first_totp_type() {
        let totp = FIGURE3
            .replace(ALGORITHM_HOTP, ALGORITHM_TOTP)
            .replace(
                "<ResponseFormat Length=\"8\" Encoding=\"DECIMAL\"/>",
                "<Suite>HMAC-SHA256</Suite><ResponseFormat Length=\"6\" Encoding=\"DECIMAL\"/>",
            )
            .replace(
                "<Counter>\n                    <PlainValue>0</PlainValue>\n                </Counter>",
                "<TimeInterval><PlainValue>60</PlainValue></TimeInterval><TimeDrift><PlainValue>-2</PlainValue></TimeDrift>",
            );
        let mut report = ImportReport::default();
        let rows = parse(&totp, &ImportOptions::default(), &settings(), &mut report).unwrap();
        assert!(report.invalid.is_empty(), "{:?}", report.invalid);
        let row = &rows[0];
        assert_eq!(row.type_id, "hw-totp");
        assert_eq!((row.params.algorithm, row.params.period, row.params.hash), (Algorithm::Totp, 60, HashAlg::Sha256));
        assert_eq!((row.params.digits, row.drift), (6, -2));
    }

    #[test]
    fn type_option_wins_and_must_fit_the_algorithm() {
        let options = ImportOptions { token_type: Some("other-hotp".into()), ..ImportOptions::default() };
        let mut report = ImportReport::default();
        let rows = parse(FIGURE3, &options, &settings(), &mut report).unwrap();
        assert_eq!(rows[0].type_id, "other-hotp");
        assert_eq!(rows[0].params.digits, 8, "the file's digits win over the type's");
        let options = ImportOptions { token_type: Some("hw-totp".into()), ..ImportOptions::default() };
        let mut report = ImportReport::default();
        let rows = parse(FIGURE3, &options, &settings(), &mut report).unwrap();
        assert!(rows.is_empty());
        assert!(report.invalid[0].reason.contains("the key is HOTP but type hw-totp is TOTP"), "{:?}", report.invalid);
        let options = ImportOptions { token_type: Some("nope".into()), ..ImportOptions::default() };
        let err = super::super::parse(FIGURE3, &options, &settings(), &mut ImportReport::default()).unwrap_err();
        assert!(err.to_string().contains("unknown token type \"nope\""), "{err}");
    }

    #[test]
    fn unsupported_algorithms_and_formats_are_reported_per_key() {
        let ocra = FIGURE3.replace(ALGORITHM_HOTP, "urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1");
        let problem = keys(&ocra, &ImportOptions::default()).unwrap().remove(0).unwrap_err();
        assert!(problem.reason.contains("only HOTP and TOTP"), "{problem:?}");
        let hex_otp = FIGURE3.replace("Encoding=\"DECIMAL\"", "Encoding=\"HEXADECIMAL\"");
        let problem = keys(&hex_otp, &ImportOptions::default()).unwrap().remove(0).unwrap_err();
        assert!(problem.reason.contains("only DECIMAL"), "{problem:?}");
        let ten = FIGURE3.replace("Length=\"8\"", "Length=\"10\"");
        let problem = keys(&ten, &ImportOptions::default()).unwrap().remove(0).unwrap_err();
        assert!(problem.reason.contains("6 to 8 digits"), "{problem:?}");
    }

    #[test]
    fn sample_files_round_trip() {
        use crate::import::sample;
        let psk = [7u8; 16];
        for (protection, options) in [
            (sample::Protection::Plain, ImportOptions::default()),
            (
                sample::Protection::PreSharedKey(psk),
                ImportOptions::from_request(None, Some(&Secret::from(&*hex(&psk))), None, None).unwrap(),
            ),
            (sample::Protection::Password { password: "s3cret".into(), iterations: 10 }, password("s3cret")),
        ] {
            for algorithm in [Algorithm::Hotp, Algorithm::Totp] {
                let text = sample::pskc("S", 3, algorithm, &protection);
                let found = keys(&text, &options).unwrap();
                assert_eq!(found.len(), 3);
                for (i, key) in found.into_iter().enumerate() {
                    let key = key.unwrap();
                    assert_eq!(key.secret.expose(), sample::seed(i as u64));
                    assert_eq!(
                        (key.serial(), key.algorithm),
                        (Some(sample::serial("S", i as u64).as_str()), algorithm)
                    );
                }
            }
        }
    }
}
