//! The XML side of PSKC: element names, the partial key being read, line numbers, attributes.

use quick_xml::events::BytesStart;
use zeroize::Zeroizing;

use super::*;

/// The elements the reader cares about (by local name, whatever the prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag {
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
    pub(super) fn holds_value(self) -> bool {
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

    pub(super) fn of(local: &[u8]) -> Tag {
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
pub(super) struct Header {
    pub(super) encryption_key: bool,
    pub(super) key_name: Option<String>,
    pub(super) derived: bool,
    pub(super) kdf_algorithm: Option<String>,
    pub(super) salt: Option<String>,
    pub(super) iterations: Option<String>,
    pub(super) key_length: Option<String>,
    pub(super) prf: Option<String>,
    pub(super) master_key_name: Option<String>,
    pub(super) mac_algorithm: Option<String>,
    pub(super) mac_key_algorithm: Option<String>,
    pub(super) mac_key_cipher: Option<String>,
}

/// One data value of a key (`Secret`, `Counter`, ...), as text.
#[derive(Default)]
pub(super) struct RawValue {
    pub(super) plain: Option<String>,
    pub(super) algorithm: Option<String>,
    pub(super) cipher: Option<String>,
    pub(super) mac: Option<String>,
    pub(super) ignored: Option<String>,
}

impl RawValue {
    pub(super) fn is_empty(&self) -> bool {
        self.plain.is_none() && self.cipher.is_none()
    }
}

#[derive(Default)]
pub(super) struct RawKey {
    pub(super) line: u64,
    pub(super) id: Option<String>,
    pub(super) algorithm: Option<String>,
    pub(super) suite: Option<String>,
    pub(super) suite_attributes: String,
    pub(super) length: Option<String>,
    pub(super) encoding: Option<String>,
    pub(super) secret: RawValue,
    pub(super) counter: RawValue,
    pub(super) time: RawValue,
    pub(super) time_interval: RawValue,
    pub(super) time_drift: RawValue,
}

#[derive(Default)]
pub(super) struct Package {
    pub(super) serial: Option<String>,
    pub(super) keys: Vec<RawKey>,
}

/// The key that opens encrypted values, and the MAC key.
pub(super) struct Unlocked {
    pub(super) key: Option<Zeroizing<Vec<u8>>>,
    /// Says which material the key came from, for messages.
    pub(super) source: &'static str,
    pub(super) mac: Option<(MacAlg, Zeroizing<Vec<u8>>)>,
}

pub(super) enum Fault {
    /// This key cannot be imported.
    Key(KeyProblem),
    /// The whole file cannot be.
    File(String),
}

/// Tracks line numbers of byte offsets, moving forward through the text.
pub(super) struct Lines<'a> {
    pub(super) text: &'a [u8],
    pub(super) offset: usize,
    pub(super) line: u64,
}

impl Lines<'_> {
    pub(super) fn at(&mut self, offset: u64) -> u64 {
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

pub(super) fn push_text(text: &mut String, chunk: &str, lines: &mut Lines, at: u64) -> Result<(), String> {
    if text.len() + chunk.len() > MAX_TEXT_BYTES {
        return Err(format!("line {}: an element's text is longer than {} KiB", lines.at(at), MAX_TEXT_BYTES >> 10));
    }
    text.push_str(chunk);
    Ok(())
}

pub(super) fn inside(stack: &[Tag], tag: Tag) -> bool {
    stack.contains(&tag)
}

/// The data value (of the current key) an element inside it belongs to.
pub(super) fn current_value<'k>(stack: &[Tag], key: Option<&'k mut RawKey>) -> Option<&'k mut RawValue> {
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

pub(super) fn attribute(element: &BytesStart, name: &[u8], line: u64) -> Result<Option<String>, String> {
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
