//! PSKC (RFC 6030) imports through radotpctl: the RFC's examples, encrypted
//! files, tampered and hostile files, a large file, and a login with an
//! imported token.

use radotp::import::sample;
use radotp::model::otp::{HashAlg, hotp_code};
use radotp::model::token::Algorithm;
use radotp::radius::packet::{CODE_ACCESS_ACCEPT, CODE_ACCESS_REJECT};

use crate::harness::Daemon;

const RFC_KEY: &[u8] = b"12345678901234567890";
const RFC_PSK_HEX: &str = "12345678901234567890123456789012";

fn fixture(name: &str) -> String {
    format!("{}/tests/data/pskc/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Writes `text` into the daemon's directory with mode 0600; returns the path.
fn private_file(daemon: &Daemon, name: &str, text: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = daemon.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_str().unwrap().to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn token_count(daemon: &Daemon) -> u64 {
    daemon.ctl_json(&["status"])["tokens_total"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc6030_encrypted_token_is_imported_assigned_and_logs_in_over_radius() {
    let daemon = Daemon::start();
    let key = private_file(&daemon, "transport.key", &format!("{RFC_PSK_HEX}\n"));
    let file = fixture("figure5.pskcxml");
    // Detected as PSKC from its content; the key type comes from the algorithm.
    let out = daemon.ctl_ok(&["token", "import", &file, "--psk-file", &key]);
    assert!(out.contains("imported 1, skipped 0, invalid 0"), "{out}");
    assert!(out.contains("type hw-hotp") && out.contains("first configured type"), "{out}");
    let token = daemon.ctl_json(&["token", "show", "987654321"]);
    assert_eq!((token["type"].as_str(), token["digits"].as_u64()), (Some("hw-hotp"), Some(8)), "{token}");
    daemon.ctl_ok(&["token", "assign", "987654321", "alice"]);
    let mut client = daemon.client().await;
    let code = |counter| hotp_code(RFC_KEY, counter, 8, HashAlg::Sha1);
    assert_eq!(client.authenticate("alice", &code(0)).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(client.authenticate("alice", &code(0)).await.unwrap().code, CODE_ACCESS_REJECT, "replay");
    assert_eq!(client.authenticate("alice", &code(1)).await.unwrap().code, CODE_ACCESS_ACCEPT);
    // The key and the seed are in neither the audit log nor the daemon's log.
    let audit = daemon.ctl_json(&["audit", "--limit", "0"]);
    let import = audit.as_array().unwrap().iter().find(|e| e["operation"] == "token.import").unwrap();
    assert_eq!(import["details"]["decryption"], "pre-shared key", "{import}");
    assert_eq!(import["details"]["format"], "pskc", "{import}");
    for text in [audit.to_string(), daemon.log()] {
        assert!(!text.contains(RFC_PSK_HEX) && !text.contains("3132333435363738393031323334353637383930"));
    }
    // Importing the file again skips the serial.
    let again = daemon.ctl_ok(&["token", "import", &file, "--psk-file", &key]);
    assert!(again.contains("imported 0, skipped 1, invalid 0"), "{again}");
}

#[test]
fn rfc6030_password_file_dry_run_type_and_format_options() {
    let daemon = Daemon::start();
    let password = private_file(&daemon, "password.txt", "qwerty\n");
    let file = fixture("figure6.pskcxml");
    let out = daemon.ctl_ok(&["token", "import", &file, "--password-file", &password, "--dry-run"]);
    assert!(out.contains("would import 1"), "{out}");
    assert_eq!(token_count(&daemon), 0, "a dry run writes nothing");
    // Without the password, or with the wrong one: refused as a whole.
    let out = daemon.ctl(&["token", "import", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--password-file") && stderr(&out).contains("My Password 1"), "{}", stderr(&out));
    let wrong = private_file(&daemon, "wrong.txt", "azerty\n");
    let out = daemon.ctl(&["token", "import", &file, "--password-file", &wrong]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("password does not decrypt"), "{}", stderr(&out));
    // --type chooses the type; it must fit the algorithm.
    let out = daemon.ctl(&["token", "import", &file, "--password-file", &password, "--type", "hw-totp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("the key is HOTP but type hw-totp is TOTP"), "{}", stderr(&out));
    daemon.ctl_ok(&["token", "import", &file, "--password-file", &password, "--type", "vendor-fixed"]);
    assert_eq!(daemon.ctl_json(&["token", "show", "987654321"])["type"], "vendor-fixed");
    // --format overrides detection.
    let out = daemon.ctl(&["token", "import", &file, "--format", "csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
    let csv = daemon.dir.path().join("plain.csv");
    std::fs::write(&csv, format!("serial,seed\nCSV1,{}\n", crate::harness::RFC_SEED_HEX)).unwrap();
    let out = daemon.ctl_ok(&["token", "import", csv.to_str().unwrap(), "--type", "hw-hotp"]);
    assert!(out.contains("imported 1"), "{out}");
    let out = daemon.ctl(&["token", "import", csv.to_str().unwrap(), "--format", "pskc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not well-formed") || stderr(&out).contains("not a PSKC"), "{}", stderr(&out));
}

#[test]
fn tampered_and_plain_rfc_files_report_the_key_line_and_id() {
    let daemon = Daemon::start();
    let key = private_file(&daemon, "transport.key", RFC_PSK_HEX);
    let out = daemon.ctl(&["token", "import", &fixture("tampered-mac.pskcxml"), "--psk-file", &key]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("line 28 (key Id 12345678): 987654321:") && err.contains("ValueMAC does not match"), "{err}");
    assert!(err.contains("nothing imported: 1 invalid key(s)"), "{err}");
    let out =
        daemon.ctl_ok(&["token", "import", &fixture("tampered-mac.pskcxml"), "--psk-file", &key, "--skip-invalid"]);
    assert!(out.contains("imported 0, skipped 0, invalid 1"), "{out}");
    assert_eq!(token_count(&daemon), 0);
    // Figure 2's secret is "1234": too short for an OTP seed.
    let out = daemon.ctl(&["token", "import", &fixture("figure2.pskcxml")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 6: 12345678: the secret is 4 bytes"), "{}", stderr(&out));
    // Figure 3 is the same key in plain text, with a device serial.
    let out = daemon.ctl_ok(&["token", "import", &fixture("figure3.pskcxml"), "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((report["imported"].as_u64(), report["format"].as_str()), (Some(1), Some("pskc")), "{report}");
}

#[test]
fn hostile_files_are_refused_and_nothing_is_written() {
    let daemon = Daemon::start();
    for (name, expected) in [
        ("billion-laughs.pskcxml", "line 2: a DOCTYPE is not allowed"),
        ("external-entity.pskcxml", "line 2: a DOCTYPE is not allowed"),
        ("malformed.pskcxml", "line 17: not well-formed XML"),
    ] {
        for extra in [&[][..], &["--skip-invalid"][..]] {
            let mut args = vec!["token", "import"];
            let path = fixture(name);
            args.push(&path);
            args.extend_from_slice(extra);
            let out = daemon.ctl(&args);
            assert_eq!(out.status.code(), Some(1), "{name}");
            assert!(stderr(&out).contains(expected), "{name}: {}", stderr(&out));
        }
    }
    let deep = format!("<KeyContainer Version=\"1.0\">{}{}</KeyContainer>", "<x>".repeat(100), "</x>".repeat(100));
    let path = private_file(&daemon, "deep.pskc", &deep);
    let out = daemon.ctl(&["token", "import", &path]);
    assert!(stderr(&out).contains("nested deeper than 32"), "{}", stderr(&out));
    assert_eq!(token_count(&daemon), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_file_of_100000_encrypted_keys_imports_completely() {
    const COUNT: u64 = 100_000;
    let daemon = Daemon::start();
    let psk = [0x5au8; 16];
    let text = sample::pskc("BIG", COUNT, Algorithm::Hotp, &sample::Protection::PreSharedKey(psk));
    let file = private_file(&daemon, "big.pskc", &text);
    drop(text);
    let key = private_file(&daemon, "big.key", &data_encoding::HEXLOWER.encode(&psk));
    let out = daemon.ctl_ok(&["token", "import", &file, "--psk-file", &key, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["imported"].as_u64(), Some(COUNT), "{}", &out[..out.len().min(2000)]);
    assert_eq!(report["invalid"].as_array().unwrap().len(), 0);
    assert_eq!(token_count(&daemon), COUNT);
    // Any of them works: the last one, say.
    let serial = sample::serial("BIG", COUNT - 1);
    daemon.ctl_ok(&["token", "assign", &serial, "bob"]);
    let mut client = daemon.client().await;
    let code = hotp_code(&sample::seed(COUNT - 1), 0, 6, HashAlg::Sha1);
    assert_eq!(client.authenticate("bob", &code).await.unwrap().code, CODE_ACCESS_ACCEPT);
    // The same file again: everything skipped, nothing written twice.
    let out = daemon.ctl_ok(&["token", "import", &file, "--psk-file", &key, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["skipped"].as_array().unwrap().len() as u64, COUNT);
    assert_eq!(token_count(&daemon), COUNT);
}
