//! Encryption of OTP seeds at rest, and the master key file.
//!
//! Seeds are sealed with XChaCha20-Poly1305 under a 256-bit master key read
//! from `store.key_file`. The token's serial is the associated data, so a
//! sealed seed copied onto another token fails to open. The storage engines
//! only ever see sealed bytes.
//!
//! Backups are authenticated with HMAC-SHA256 under a key derived from the
//! master key ([`SeedCipher::backup_mac`]), so that owners, counters and
//! states in a backup file cannot be edited unnoticed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::secret::Secret;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// First byte of every sealed seed: the format, so keys and ciphers can change later.
const SEALED_FORMAT_V1: u8 = 1;
/// Derives the backup MAC key from the master key: HMAC-SHA256(master, this label).
const BACKUP_MAC_LABEL: &[u8] = b"radotp backup mac v1";
/// Derives the key of the key check value kept in the store ([`SeedCipher::key_check`]).
const KEY_CHECK_LABEL: &[u8] = b"radotp key check v1";
/// Derives the key that anchors the audit chain's head ([`SeedCipher::purpose_mac`]).
pub const AUDIT_ANCHOR_LABEL: &[u8] = b"radotp audit anchor v1";

/// HMAC-SHA256, as used for backups.
pub type BackupMac = hmac::Hmac<sha2::Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("seed of token {serial} cannot be decrypted (wrong master key or tampered store)")]
    Open { serial: String },
    #[error("no randomness available from the operating system: {0}")]
    Random(String),
}

/// Fills `buf` from the operating system's random source.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random(e.to_string()))
}

/// Seals and opens seeds under the master key.
#[derive(Clone)]
pub struct SeedCipher {
    aead: XChaCha20Poly1305,
    /// The key of backup MACs, derived from the master key.
    backup_key: Zeroizing<[u8; KEY_LEN]>,
    /// The master key itself, to derive keys for other purposes.
    master: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for SeedCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeedCipher(<redacted>)")
    }
}

impl SeedCipher {
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        use hmac::Mac;
        let mut derive = hmac_sha256(key);
        derive.update(BACKUP_MAC_LABEL);
        let mut backup_key = Zeroizing::new([0u8; KEY_LEN]);
        backup_key.copy_from_slice(&derive.finalize().into_bytes());
        SeedCipher { aead: XChaCha20Poly1305::new(key.into()), backup_key, master: Zeroizing::new(*key) }
    }

    /// A fresh HMAC-SHA256 under a key derived from the master key for one
    /// purpose (`label`), never the master key itself.
    pub fn purpose_mac(&self, label: &[u8]) -> BackupMac {
        use hmac::Mac;
        let mut derive = hmac_sha256(self.master.as_ref());
        derive.update(label);
        hmac_sha256(&derive.finalize().into_bytes())
    }

    /// The key check value: 32 bytes that tell whether a store was sealed
    /// under this master key, and nothing about the key. The store keeps
    /// it; the daemon and `--check-config` compare it at start.
    pub fn key_check(&self) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = self.purpose_mac(KEY_CHECK_LABEL);
        mac.update(b"key check");
        mac.finalize().into_bytes().into()
    }

    /// Whether `stored` is this key's check value (compared in constant time).
    pub fn matches_key_check(&self, stored: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        stored.len() == KEY_LEN && bool::from(self.key_check().ct_eq(stored))
    }

    /// A fresh HMAC-SHA256 under the backup key (derived from the master
    /// key, never the master key itself), for signing and checking backups.
    pub fn backup_mac(&self) -> BackupMac {
        hmac_sha256(self.backup_key.as_ref())
    }

    /// Loads the key file, creating it (mode 0600, random key) when missing.
    ///
    /// The file holds the key as 64 hex digits. A key file readable by group
    /// or others is refused: whoever reads it can decrypt every seed.
    pub fn from_key_file(path: &Path, create: bool) -> Result<Self, CryptoError> {
        let err = |reason: String| CryptoError::KeyFile { path: path.display().to_string(), reason };
        if !path.exists() {
            if !create {
                return Err(err("does not exist".into()));
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::fsmode::create_dir_all_with_mode(parent, 0o755)
                    .map_err(|e| err(format!("cannot create directory: {e}")))?;
            }
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            random_bytes(key.as_mut())?;
            let text = Zeroizing::new(data_encoding::HEXLOWER.encode(key.as_ref()));
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| err(format!("cannot create: {e}")))?;
            file.write_all(text.as_bytes())
                .and_then(|_| file.write_all(b"\n"))
                .and_then(|_| file.sync_all())
                .map_err(|e| err(format!("cannot write: {e}")))?;
            tracing::info!(path = %path.display(), "created a new master key file");
        }
        check_owner_only(path).map_err(err)?;
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        let decoded = Zeroizing::new(
            data_encoding::HEXLOWER_PERMISSIVE
                .decode(text.trim().as_bytes())
                .map_err(|_| err("must hold 64 hex digits".into()))?,
        );
        if decoded.len() != KEY_LEN {
            return Err(err("must hold 64 hex digits".into()));
        }
        key.copy_from_slice(&decoded);
        Ok(SeedCipher::new(&key))
    }

    pub fn seal(&self, serial: &str, seed: &Secret) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let ciphertext = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: seed.expose(), aad: serial.as_bytes() })
            .map_err(|_| CryptoError::Open { serial: serial.to_string() })?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(SEALED_FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub fn open(&self, serial: &str, sealed: &[u8]) -> Result<Secret, CryptoError> {
        let fail = || CryptoError::Open { serial: serial.to_string() };
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != SEALED_FORMAT_V1 {
            return Err(fail());
        }
        let nonce = XNonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        self.aead
            .decrypt(nonce, Payload { msg: &sealed[1 + NONCE_LEN..], aad: serial.as_bytes() })
            .map(Secret::new)
            .map_err(|_| fail())
    }
}

fn hmac_sha256(key: &[u8]) -> BackupMac {
    match <BackupMac as hmac::Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

fn file_mode(path: &Path) -> Result<u32, String> {
    let meta = fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    Ok(meta.permissions().mode() & 0o777)
}

/// Refuses a secret file (shared secret, bind password) that others may
/// access or the group may change. Group read is fine: the usual
/// installation is `0640 root:radotp`.
pub fn check_private(path: &Path) -> Result<(), String> {
    let mode = file_mode(path)?;
    if mode & 0o027 != 0 {
        return Err(format!(
            "permissions {mode:03o} give other users access to it; run: chmod 640 {} (or 600)",
            path.display()
        ));
    }
    Ok(())
}

/// The master key is for the daemon's user alone: no group or other bits at all.
pub fn check_owner_only(path: &Path) -> Result<(), String> {
    let mode = file_mode(path)?;
    if mode & 0o077 != 0 {
        return Err(format!("permissions {mode:03o} give other users access to it; run: chmod 600 {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_binds_serial() {
        let cipher = SeedCipher::new(&[7u8; 32]);
        let seed = Secret::new(b"12345678901234567890".to_vec());
        let sealed = cipher.seal("T1", &seed).unwrap();
        assert!(!sealed.windows(20).any(|w| w == seed.expose()));
        assert_eq!(cipher.open("T1", &sealed).unwrap(), seed);
        assert!(cipher.open("T2", &sealed).is_err());
        let other = SeedCipher::new(&[8u8; 32]);
        assert!(other.open("T1", &sealed).is_err());
    }

    #[test]
    fn backup_mac_key_is_derived_from_the_master_key() {
        use hmac::Mac;
        let tag = |cipher: &SeedCipher| {
            let mut mac = cipher.backup_mac();
            mac.update(b"backup");
            mac.finalize().into_bytes().to_vec()
        };
        let one = SeedCipher::new(&[7u8; 32]);
        assert_eq!(tag(&one), tag(&SeedCipher::new(&[7u8; 32])), "same key, same tag");
        assert_ne!(tag(&one), tag(&SeedCipher::new(&[8u8; 32])), "another key, another tag");
        // Not keyed with the master key itself.
        let mut direct = <BackupMac as Mac>::new_from_slice(&[7u8; 32]).unwrap();
        direct.update(b"backup");
        assert_ne!(tag(&one), direct.finalize().into_bytes().to_vec());
    }

    #[test]
    fn key_check_value_tells_keys_apart() {
        let one = SeedCipher::new(&[7u8; 32]);
        assert!(one.matches_key_check(&SeedCipher::new(&[7u8; 32]).key_check()));
        assert!(!one.matches_key_check(&SeedCipher::new(&[8u8; 32]).key_check()));
        assert!(!one.matches_key_check(b"short"));
        assert_ne!(one.key_check().as_slice(), &[7u8; 32], "not the key itself");
    }

    #[test]
    fn key_file_is_created_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let first = SeedCipher::from_key_file(&path, true).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = first.seal("S", &Secret::from("seed")).unwrap();
        let second = SeedCipher::from_key_file(&path, false).unwrap();
        assert_eq!(second.open("S", &sealed).unwrap(), Secret::from("seed"));
    }

    #[test]
    fn secret_files_may_be_group_readable_but_not_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vpn.secret");
        fs::write(&path, "s").unwrap();
        for (mode, ok) in [(0o600, true), (0o640, true), (0o660, false), (0o644, false), (0o604, false)] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(check_private(&path).is_ok(), ok, "mode {mode:o}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(check_owner_only(&path).is_err(), "the master key allows no group bits");
    }

    #[test]
    fn loose_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        SeedCipher::from_key_file(&path, true).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = SeedCipher::from_key_file(&path, false).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
