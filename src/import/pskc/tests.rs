//! PSKC reading against the RFC 6030 figures and hostile files.

use super::*;
use crate::model::token::TokenType;

const FIGURE2: &str = include_str!("../../../tests/data/pskc/figure2.pskcxml");
const FIGURE3: &str = include_str!("../../../tests/data/pskc/figure3.pskcxml");
const FIGURE5: &str = include_str!("../../../tests/data/pskc/figure5.pskcxml");
const FIGURE6: &str = include_str!("../../../tests/data/pskc/figure6.pskcxml");
const TAMPERED_MAC: &str = include_str!("../../../tests/data/pskc/tampered-mac.pskcxml");
const MALFORMED: &str = include_str!("../../../tests/data/pskc/malformed.pskcxml");
const BILLION_LAUGHS: &str = include_str!("../../../tests/data/pskc/billion-laughs.pskcxml");
const EXTERNAL_ENTITY: &str = include_str!("../../../tests/data/pskc/external-entity.pskcxml");
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
    assert_eq!((key.id.as_deref(), key.serial(), key.algorithm), (Some("12345678"), Some("12345678"), Algorithm::Hotp));
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
        ImportOptions::from_request(None, Some(&Secret::from("00112233445566778899aabbccddeeff")), None, None).unwrap();
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
                assert_eq!((key.serial(), key.algorithm), (Some(sample::serial("S", i as u64).as_str()), algorithm));
            }
        }
    }
}
