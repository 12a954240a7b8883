//! Sample import files: CSV and PSKC (plain, pre-shared key or password),
//! with made-up seeds. For tests, the import benchmark, and trying an
//! import out; never for real tokens (the seeds are predictable).

use std::fmt::Write;

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};

use crate::model::token::Algorithm;

/// The made-up 20-byte seed of sample token `index`.
pub fn seed(index: u64) -> [u8; 20] {
    let mut hash = Sha1::new();
    hash.update(format!("radotp sample seed {index}").as_bytes());
    hash.finalize().into()
}

/// The serial of sample token `index`.
pub fn serial(prefix: &str, index: u64) -> String {
    format!("{prefix}{index:07}")
}

/// A CSV file of `count` tokens of `type_id`.
pub fn csv(prefix: &str, count: u64, type_id: &str) -> String {
    let mut out = String::with_capacity(80 * count as usize + 32);
    out.push_str("serial,type,seed\n");
    for i in 0..count {
        let _ = writeln!(out, "{},{type_id},{}", serial(prefix, i), data_encoding::HEXLOWER.encode(&seed(i)));
    }
    out
}

/// How the secrets of a sample PSKC file are protected.
pub enum Protection {
    Plain,
    /// AES-128-CBC under this key, HMAC-SHA1 MAC.
    PreSharedKey([u8; 16]),
    /// AES-128-CBC under a key derived with PBKDF2-HMAC-SHA1, HMAC-SHA1 MAC.
    Password {
        password: String,
        iterations: u32,
    },
}

/// A PSKC file of `count` keys of `algorithm`, one per KeyPackage, with
/// serial numbers in DeviceInfo, 6-digit decimal OTPs and counter 0.
pub fn pskc(prefix: &str, count: u64, algorithm: Algorithm, protection: &Protection) -> String {
    let mut out = String::with_capacity(900 * count as usize + 2048);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(
        "<KeyContainer Version=\"1.0\" xmlns=\"urn:ietf:params:xml:ns:keyprov:pskc\"\n    \
         xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"\n    \
         xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\"\n    \
         xmlns:xenc11=\"http://www.w3.org/2009/xmlenc11#\"\n    \
         xmlns:pkcs5=\"http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#\">\n",
    );
    let key: Option<Vec<u8>> = match protection {
        Protection::Plain => None,
        Protection::PreSharedKey(key) => {
            out.push_str("  <EncryptionKey>\n    <ds:KeyName>Pre-shared-key</ds:KeyName>\n  </EncryptionKey>\n");
            Some(key.to_vec())
        }
        Protection::Password { password, iterations } => {
            let mut salt = [0u8; 8];
            crate::crypto::random_bytes(&mut salt).unwrap_or_default();
            let mut key = vec![0u8; 16];
            pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), &salt, *iterations, &mut key);
            let _ = write!(
                out,
                "  <EncryptionKey>\n    <xenc11:DerivedKey>\n      <xenc11:KeyDerivationMethod Algorithm=\"{}\">\n        \
                 <pkcs5:PBKDF2-params>\n          <Salt><Specified>{}</Specified></Salt>\n          \
                 <IterationCount>{iterations}</IterationCount>\n          <KeyLength>16</KeyLength>\n          \
                 <PRF/>\n        </pkcs5:PBKDF2-params>\n      </xenc11:KeyDerivationMethod>\n      \
                 <xenc11:MasterKeyName>Sample password</xenc11:MasterKeyName>\n    </xenc11:DerivedKey>\n  \
                 </EncryptionKey>\n",
                super::pskc::PBKDF2,
                data_encoding::BASE64.encode(&salt)
            );
            Some(key)
        }
    };
    let mac_key = key.as_ref().map(|key| {
        let mut mac_key = [0u8; 20];
        crate::crypto::random_bytes(&mut mac_key).unwrap_or_default();
        let _ = write!(
            out,
            "  <MACMethod Algorithm=\"{}\">\n    <MACKey>\n      <xenc:EncryptionMethod Algorithm=\"{}\"/>\n      \
             <xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData>\n    </MACKey>\n  \
             </MACMethod>\n",
            super::pskc::HMAC_SHA1,
            super::pskc::AES128_CBC,
            data_encoding::BASE64.encode(&encrypt(key, &mac_key))
        );
        mac_key
    });
    let uri = match algorithm {
        Algorithm::Hotp => super::pskc::ALGORITHM_HOTP,
        Algorithm::Totp => super::pskc::ALGORITHM_TOTP,
    };
    for i in 0..count {
        let serial = serial(prefix, i);
        let secret = seed(i);
        let _ = write!(
            out,
            "  <KeyPackage>\n    <DeviceInfo>\n      <Manufacturer>Sample</Manufacturer>\n      \
             <SerialNo>{serial}</SerialNo>\n    </DeviceInfo>\n    <Key Id=\"K{i}\" Algorithm=\"{uri}\">\n      \
             <Issuer>radotp sample</Issuer>\n      <AlgorithmParameters>\n        \
             <ResponseFormat Length=\"6\" Encoding=\"DECIMAL\"/>\n      </AlgorithmParameters>\n      <Data>\n        \
             <Secret>\n"
        );
        match (&key, &mac_key) {
            (Some(key), Some(mac_key)) => {
                let data = encrypt(key, &secret);
                let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(mac_key).expect("HMAC takes any key");
                mac.update(&data);
                let _ = write!(
                    out,
                    "          <EncryptedValue>\n            <xenc:EncryptionMethod Algorithm=\"{}\"/>\n            \
                     <xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData>\n          \
                     </EncryptedValue>\n          <ValueMAC>{}</ValueMAC>\n",
                    super::pskc::AES128_CBC,
                    data_encoding::BASE64.encode(&data),
                    data_encoding::BASE64.encode(&mac.finalize().into_bytes())
                );
            }
            _ => {
                let _ = writeln!(out, "          <PlainValue>{}</PlainValue>", data_encoding::BASE64.encode(&secret));
            }
        }
        out.push_str("        </Secret>\n");
        match algorithm {
            Algorithm::Hotp => out.push_str("        <Counter><PlainValue>0</PlainValue></Counter>\n"),
            Algorithm::Totp => out.push_str("        <TimeInterval><PlainValue>30</PlainValue></TimeInterval>\n"),
        }
        out.push_str("      </Data>\n    </Key>\n  </KeyPackage>\n");
    }
    out.push_str("</KeyContainer>\n");
    out
}

/// AES-128-CBC with a random IV in front and PKCS#7 padding.
pub fn encrypt(key: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut iv = [0u8; 16];
    crate::crypto::random_bytes(&mut iv).unwrap_or_default();
    let mut buffer = vec![0u8; plain.len() + 16];
    buffer[..plain.len()].copy_from_slice(plain);
    let encrypted = cbc::Encryptor::<aes::Aes128>::new_from_slices(key, &iv)
        .expect("a 16-byte key and IV")
        .encrypt_padded_mut::<Pkcs7>(&mut buffer, plain.len())
        .expect("room for the padding")
        .to_vec();
    let mut out = iv.to_vec();
    out.extend_from_slice(&encrypted);
    out
}
