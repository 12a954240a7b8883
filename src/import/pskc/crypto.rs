//! The cryptographic side of PSKC: AES-CBC values, their MACs, PBKDF2 keys, and decoding a key package.

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, Mac};
use zeroize::Zeroizing;

use crate::import::ImportOptions;
use crate::model::otp::{self, HashAlg};
use crate::model::token::Algorithm;
use crate::secret::Secret;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AesCbc {
    Aes128,
    Aes192,
    Aes256,
}

impl AesCbc {
    pub(super) fn parse(uri: Option<&str>) -> Result<AesCbc, String> {
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

    pub(super) fn key_len(self) -> usize {
        match self {
            AesCbc::Aes128 => 16,
            AesCbc::Aes192 => 24,
            AesCbc::Aes256 => 32,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            AesCbc::Aes128 => "AES-128-CBC",
            AesCbc::Aes192 => "AES-192-CBC",
            AesCbc::Aes256 => "AES-256-CBC",
        }
    }
}

pub(super) enum DecryptError {
    /// The key does not fit the algorithm: the same for every value.
    KeyLength(String),
    /// This value does not decrypt.
    Value(String),
}

/// AES-CBC with the IV in front of the ciphertext and PKCS#7 padding.
pub(super) fn cbc_decrypt(alg: AesCbc, key: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
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
pub(super) enum MacAlg {
    Sha1,
    Sha256,
    Sha512,
}

impl MacAlg {
    /// HMAC algorithms by the end of their URI (xmldsig, xmldsig-more, PKCS #5).
    pub(super) fn parse(uri: &str) -> Option<MacAlg> {
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

    pub(super) fn verify(self, key: &[u8], data: &[u8], expected: &[u8]) -> bool {
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

pub(super) fn base64(text: &str) -> Option<Vec<u8>> {
    let cleaned: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    data_encoding::BASE64.decode(&cleaned).or_else(|_| data_encoding::BASE64_NOPAD.decode(&cleaned)).ok()
}

/// Works out the file's key (from the pre-shared key or the password) and
/// decrypts its MAC key. Every failure here concerns the whole file.
pub(super) fn unlock(header: &Header, options: &ImportOptions) -> Result<Unlocked, String> {
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
pub(super) fn open_value(value: &RawValue, what: &str, unlocked: &Unlocked) -> Result<Option<ValueBytes>, Fault> {
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

pub(super) enum ValueBytes {
    Plain(String),
    Decrypted(Zeroizing<Vec<u8>>),
}

/// An integer data value: decimal text, or a decrypted big-endian number.
pub(super) fn integer(value: &RawValue, what: &str, unlocked: &Unlocked) -> Result<Option<i128>, Fault> {
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

pub(super) fn decode_key(raw: RawKey, device_serial: Option<String>, unlocked: &Unlocked) -> Result<PskcKey, Fault> {
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
pub(super) fn hash_of_suite(suite: &str) -> Option<HashAlg> {
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
