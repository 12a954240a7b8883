//! HOTP (RFC 4226) and TOTP (RFC 6238) as pure functions.
//!
//! Owns code generation, window searches and constant-time comparison. It
//! knows nothing about tokens, storage or time sources: callers pass the
//! moving factor (`counter` or `step`) and the window, and get back the
//! moving factor that matched.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Hash function of the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    #[default]
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha512 => "sha512",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "sha1" => Some(HashAlg::Sha1),
            "sha256" => Some(HashAlg::Sha256),
            "sha512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }
}

/// Smallest and largest number of digits an OTP may have.
pub const MIN_DIGITS: u8 = 6;
pub const MAX_DIGITS: u8 = 8;

/// The HMAC of one seed, keyed once and reused for every moving factor of
/// a window search (keying costs as much as the HMAC of a counter itself).
enum KeyedMac {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl KeyedMac {
    fn new(hash: HashAlg, key: &[u8]) -> Self {
        fn keyed<M: Mac + hmac::digest::KeyInit>(key: &[u8]) -> M {
            // HMAC accepts keys of any length, so new_from_slice cannot fail.
            <M as hmac::digest::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
        }
        match hash {
            HashAlg::Sha1 => KeyedMac::Sha1(keyed(key)),
            HashAlg::Sha256 => KeyedMac::Sha256(keyed(key)),
            HashAlg::Sha512 => KeyedMac::Sha512(keyed(key)),
        }
    }

    /// The HOTP value for `counter` (RFC 4226 section 5.3), reduced to `digits`.
    fn hotp(&self, counter: u64, digits: u8) -> u32 {
        let message = counter.to_be_bytes();
        match self {
            KeyedMac::Sha1(mac) => truncate(&mac.clone().chain_update(message).finalize().into_bytes(), digits),
            KeyedMac::Sha256(mac) => truncate(&mac.clone().chain_update(message).finalize().into_bytes(), digits),
            KeyedMac::Sha512(mac) => truncate(&mac.clone().chain_update(message).finalize().into_bytes(), digits),
        }
    }
}

/// Dynamic truncation of an HMAC digest to a `digits` decimal value.
fn truncate(digest: &[u8], digits: u8) -> u32 {
    let offset = (digest[digest.len() - 1] & 0x0f) as usize;
    let binary = ((u32::from(digest[offset]) & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    binary % 10u32.pow(u32::from(digits))
}

/// The HOTP value for `counter` (RFC 4226 section 5.3), already reduced to `digits`.
pub fn hotp(key: &[u8], counter: u64, digits: u8, hash: HashAlg) -> u32 {
    KeyedMac::new(hash, key).hotp(counter, digits)
}

/// The code as the user types it: zero-padded to `digits`.
pub fn format_code(value: u32, digits: u8) -> String {
    format!("{:0width$}", value, width = usize::from(digits))
}

/// The HOTP code as text.
pub fn hotp_code(key: &[u8], counter: u64, digits: u8, hash: HashAlg) -> String {
    format_code(hotp(key, counter, digits, hash), digits)
}

/// The TOTP time step of `unix_seconds` (T0 = 0).
pub fn time_step(unix_seconds: u64, period: u32) -> u64 {
    unix_seconds / u64::from(period.max(1))
}

/// The TOTP code at `unix_seconds`.
pub fn totp_code(key: &[u8], unix_seconds: u64, period: u32, digits: u8, hash: HashAlg) -> String {
    hotp_code(key, time_step(unix_seconds, period), digits, hash)
}

/// True when `otp` has the shape of a code of `digits` digits.
pub fn well_formed(otp: &str, digits: u8) -> bool {
    otp.len() == usize::from(digits) && otp.bytes().all(|b| b.is_ascii_digit())
}

/// Compares two codes in constant time (for equal lengths).
pub fn codes_equal(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Searches `first ..= last` for the moving factor whose code is `otp`.
///
/// Every candidate in the range is computed and compared, match or not, so the
/// time taken does not tell where in the window a code matched. Returns the
/// lowest matching moving factor.
pub fn search(key: &[u8], otp: &str, first: u64, last: u64, digits: u8, hash: HashAlg) -> Option<u64> {
    let wanted = code_value(otp, digits)?;
    if last < first {
        return None;
    }
    let mac = KeyedMac::new(hash, key);
    let mut found = None;
    let mut factor = first;
    loop {
        if bool::from(mac.hotp(factor, digits).ct_eq(&wanted)) && found.is_none() {
            found = Some(factor);
        }
        if factor == last {
            break;
        }
        factor += 1;
    }
    found
}

/// Searches for two consecutive codes: `first_otp` at some `c` in
/// `from ..= from + window` and `second_otp` at `c + 1`. Returns `c`.
pub fn search_pair(
    key: &[u8],
    first_otp: &str,
    second_otp: &str,
    from: u64,
    window: u64,
    digits: u8,
    hash: HashAlg,
) -> Option<u64> {
    let (Some(first), Some(second)) = (code_value(first_otp, digits), code_value(second_otp, digits)) else {
        return None;
    };
    let mac = KeyedMac::new(hash, key);
    let last = from.saturating_add(window);
    let mut previous_matched = false;
    let mut factor = from;
    loop {
        let candidate = mac.hotp(factor, digits);
        if previous_matched && bool::from(candidate.ct_eq(&second)) {
            return Some(factor - 1);
        }
        previous_matched = candidate.ct_eq(&first).into();
        if factor == last.saturating_add(1) {
            return None;
        }
        factor += 1;
    }
}

/// The value of a well-formed code of `digits` digits (leading zeros are
/// part of the length check, so equal values mean equal codes).
fn code_value(otp: &str, digits: u8) -> Option<u32> {
    if !well_formed(otp, digits) {
        return None;
    }
    otp.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC4226_KEY: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc4226_appendix_d_vectors() {
        let expected =
            ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp_code(RFC4226_KEY, counter as u64, 6, HashAlg::Sha1), *code);
        }
    }

    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    #[test]
    fn rfc6238_appendix_b_vectors() {
        let table: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (time, sha1, sha256, sha512) in table {
            assert_eq!(totp_code(SEED_SHA1, time, 30, 8, HashAlg::Sha1), sha1, "t={time}");
            assert_eq!(totp_code(SEED_SHA256, time, 30, 8, HashAlg::Sha256), sha256);
            assert_eq!(totp_code(SEED_SHA512, time, 30, 8, HashAlg::Sha512), sha512);
        }
    }

    #[test]
    fn search_finds_lowest_match_in_window_only() {
        assert_eq!(search(RFC4226_KEY, "969429", 0, 9, 6, HashAlg::Sha1), Some(3));
        assert_eq!(search(RFC4226_KEY, "969429", 4, 9, 6, HashAlg::Sha1), None);
        assert_eq!(search(RFC4226_KEY, "755224", 1, 9, 6, HashAlg::Sha1), None);
        assert_eq!(search(RFC4226_KEY, "96942", 0, 9, 6, HashAlg::Sha1), None);
        assert_eq!(search(RFC4226_KEY, "96942x", 0, 9, 6, HashAlg::Sha1), None);
        assert_eq!(search(RFC4226_KEY, "0969429", 0, 9, 6, HashAlg::Sha1), None);
    }

    #[test]
    fn pair_search_needs_order_and_adjacency() {
        // counters 4 and 5
        assert_eq!(search_pair(RFC4226_KEY, "338314", "254676", 0, 1000, 6, HashAlg::Sha1), Some(4));
        assert_eq!(search_pair(RFC4226_KEY, "254676", "338314", 0, 1000, 6, HashAlg::Sha1), None);
        // counters 4 and 6: not consecutive
        assert_eq!(search_pair(RFC4226_KEY, "338314", "287922", 0, 1000, 6, HashAlg::Sha1), None);
        // outside the window
        assert_eq!(search_pair(RFC4226_KEY, "338314", "254676", 0, 2, 6, HashAlg::Sha1), None);
        // the pair may end right past the window's last first-code position
        assert_eq!(search_pair(RFC4226_KEY, "338314", "254676", 0, 4, 6, HashAlg::Sha1), Some(4));
    }

    #[test]
    fn constant_time_compare_handles_lengths() {
        assert!(codes_equal("123456", "123456"));
        assert!(!codes_equal("123456", "123457"));
        assert!(!codes_equal("123456", "1234567"));
    }
}
