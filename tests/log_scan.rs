//! After the other test binaries ran (cargo runs them in name order, and
//! `tests/run.sh` sets RADOTP_REQUIRE_LOGS), scans every daemon log they kept
//! for the seeds the tests used and for the OTPs they sent. Secrets must
//! never be logged, at any level (the tests run the daemon at debug).

use std::path::Path;

use radotp::model::otp::{HashAlg, hotp_code, totp_code};

const RFC_SEED: &[u8] = b"12345678901234567890";
/// The seed of tests/e2e/store.rs `seeds_never_appear_in_the_store_files`.
const STORE_TEST_SEED: [u8; 20] = [
    0x8f, 0x1e, 0x77, 0xa0, 0x5c, 0xd3, 0x29, 0xee, 0x41, 0x90, 0x0b, 0x6a, 0xf2, 0x13, 0x88, 0xc5, 0x3d, 0x7e, 0xb1,
    0x64,
];

fn encodings(seed: &[u8]) -> Vec<String> {
    vec![
        data_encoding::HEXLOWER.encode(seed),
        data_encoding::HEXUPPER.encode(seed),
        data_encoding::BASE32_NOPAD.encode(seed),
        data_encoding::BASE64.encode(seed),
    ]
}

/// Drops what legitimately holds long digit runs: timestamps and latencies.
fn strip_noise(line: &str) -> String {
    let line = match line.split_once(' ') {
        Some((first, rest)) if first.contains('T') && first.ends_with('Z') => rest,
        _ => line,
    };
    line.split(' ').filter(|field| !field.starts_with("latency_us=")).collect::<Vec<_>>().join(" ")
}

/// Standalone runs of 6 to 8 digits: what an OTP looks like in text.
fn digit_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| (6..=8).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn no_seed_or_otp_in_any_daemon_log() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("daemon-logs");
    let logs: Vec<_> =
        std::fs::read_dir(&dir).map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect()).unwrap_or_default();
    if logs.is_empty() {
        assert!(std::env::var_os("RADOTP_REQUIRE_LOGS").is_none(), "no daemon logs in {}", dir.display());
        eprintln!("no daemon logs to scan (run the whole suite with tests/run.sh)");
        return;
    }
    let mut secrets = encodings(RFC_SEED);
    secrets.extend(encodings(&STORE_TEST_SEED));
    let mut otps: std::collections::HashSet<String> =
        (0..1600).map(|c| hotp_code(RFC_SEED, c, 6, HashAlg::Sha1)).collect();
    otps.insert(hotp_code(&STORE_TEST_SEED, 0, 6, HashAlg::Sha1));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    otps.extend((0..240).map(|i| totp_code(RFC_SEED, now - 3600 + i * 30, 30, 6, HashAlg::Sha1)));
    let mut lines = 0;
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            lines += 1;
            for secret in &secrets {
                assert!(!line.contains(secret.as_str()), "seed {secret} logged in {}: {line}", log.display());
            }
            let cleaned = strip_noise(line);
            for word in digit_words(&cleaned) {
                assert!(!otps.contains(word), "OTP {word} logged in {}: {line}", log.display());
            }
        }
    }
    eprintln!("scanned {lines} lines of {} daemon logs", logs.len());
    assert!(lines > 100, "too few log lines scanned ({lines}): were the logs kept?");
    // Scanned and clean: the next run scans only its own logs.
    for log in &logs {
        let _ = std::fs::remove_file(log);
    }
}
