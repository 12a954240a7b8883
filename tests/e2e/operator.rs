//! The operator procedures: unassign, reassign, enroll, two-OTP reset, the
//! token lifecycle, roles and the tamper-evident audit.

use std::process::Command;

use radotp::model::otp::{HashAlg, hotp_code, totp_code};
use radotp::radius::packet::{CODE_ACCESS_ACCEPT, CODE_ACCESS_REJECT};

use crate::harness::{Daemon, RFC_CODES, RFC_SEED_HEX};

const RFC_KEY: &[u8] = b"12345678901234567890";

fn code(counter: u64) -> String {
    hotp_code(RFC_KEY, counter, 6, HashAlg::Sha1)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn unassign_needs_confirmation_then_the_old_owner_is_locked_out() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    client.authenticate("alice", "000000").await.unwrap();
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["fail_count"], 1);

    let out = daemon.ctl(&["token", "unassign", "HW1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["user"], "alice", "refusal changes nothing");

    daemon.ctl_ok(&["token", "unassign", "HW1", "--yes"]);
    let token = daemon.ctl_json(&["token", "show", "HW1"]);
    assert!(token["user"].is_null());
    assert_eq!(
        (token["state"].as_str(), token["counter"].as_u64(), token["fail_count"].as_u64()),
        (Some("active"), Some(1), Some(0))
    );
    let unassigned = daemon.ctl_json(&["token", "list", "--unassigned"]);
    assert_eq!(unassigned[0]["serial"], "HW1");
    assert_eq!(client.authenticate("alice", RFC_CODES[1]).await.unwrap().code, CODE_ACCESS_REJECT, "old owner");
    let out = daemon.ctl(&["token", "unassign", "HW1", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "already unassigned");
}

#[tokio::test(flavor = "multi_thread")]
async fn reassign_moves_the_token_atomically_and_keeps_the_counter() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    let out = daemon.ctl(&["token", "assign", "HW1", "bob"]);
    assert_eq!(out.status.code(), Some(1), "plain assign refuses someone else's token");
    let out = daemon.ctl(&["token", "assign", "HW1", "bob", "--reassign"]);
    assert_eq!(out.status.code(), Some(1), "no confirmation off a terminal");
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["user"], "alice");
    let moved = daemon.ctl_json(&["token", "assign", "HW1", "bob", "--reassign", "--yes"]);
    assert_eq!((moved["previous_owner"].as_str(), moved["token"]["user"].as_str()), (Some("alice"), Some("bob")));
    assert_eq!(moved["token"]["counter"], 1, "counter kept");
    assert_eq!(client.authenticate("alice", RFC_CODES[1]).await.unwrap().code, CODE_ACCESS_REJECT);
    assert_eq!(
        client.authenticate("bob", RFC_CODES[1]).await.unwrap().code,
        CODE_ACCESS_ACCEPT,
        "new owner's next OTP"
    );
    let audit = daemon.ctl_json(&["audit", "--serial", "HW1", "--limit", "50"]);
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["operation"] == "token.assign" && e["result"] == "ok" && e["details"]["reassign"] == true)
        .expect("audited reassignment");
    assert_eq!(
        (entry["details"]["previous_owner"].as_str(), entry["details"]["new_owner"].as_str()),
        (Some("alice"), Some("bob"))
    );
    assert!(daemon.ctl_json(&["user", "show", "alice"])["tokens"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn enroll_hardware_from_stock_and_refuse_other_types() {
    let daemon = Daemon::start();
    daemon.import(&format!(
        "serial,type,seed\nHW1,hw-hotp,{RFC_SEED_HEX}\nTT1,hw-totp,{RFC_SEED_HEX}\nLG1,legacy,{RFC_SEED_HEX}\n"
    ));
    let out = daemon.ctl(&["token", "enroll", "alice", "--type", "legacy", "--serial", "LG1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("allowed types") && stderr(&out).contains("hw-hotp"), "{}", stderr(&out));
    let out = daemon.ctl(&["token", "enroll", "alice", "--type", "hw-hotp", "--serial", "TT1"]);
    assert_eq!(out.status.code(), Some(1), "type mismatch");
    let out = daemon.ctl(&["token", "enroll", "alice", "--type", "hw-hotp"]);
    assert!(stderr(&out).contains("--serial"));
    let out = daemon.ctl(&["token", "enroll", "mallory", "--type", "hw-hotp", "--serial", "HW1"]);
    assert!(stderr(&out).contains("not in the directory"));
    let enrolled = daemon.ctl_json(&["token", "enroll", "alice", "--type", "hw-hotp", "--serial", "HW1"]);
    assert_eq!(enrolled["token"]["user"], "alice");
    assert!(enrolled.get("secret_base32").is_none() && enrolled.get("otpauth_uri").is_none());
    let out = daemon.ctl(&["token", "enroll", "bob", "--type", "hw-hotp", "--serial", "HW1"]);
    assert_eq!(out.status.code(), Some(1), "a token from stock must be unassigned");
    let mut client = daemon.client().await;
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
}

fn secret_from_uri(uri: &str) -> Vec<u8> {
    let query = uri.split_once('?').unwrap().1;
    let secret = query.split('&').find_map(|kv| kv.strip_prefix("secret=")).unwrap();
    data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn enrolled_app_token_uri_yields_codes_that_authenticate() {
    let daemon = Daemon::start();
    let png = daemon.dir.path().join("qr.png");
    let enrolled =
        daemon.ctl_json(&["token", "enroll", "carol", "--type", "app-totp", "--qr-png", png.to_str().unwrap()]);
    let uri = enrolled["otpauth_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("otpauth://totp/Example%20VPN:carol@example.org?"), "{uri}");
    for part in ["issuer=Example%20VPN", "algorithm=SHA1", "digits=6", "period=30"] {
        assert!(uri.contains(part), "{part} missing in {uri}");
    }
    let secret = secret_from_uri(&uri);
    assert!(secret.len() >= 20, "at least 160 bits");
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&png).unwrap().permissions().mode() & 0o777, 0o600, "the QR code holds the seed");
    let serial = enrolled["token"]["serial"].as_str().unwrap().to_string();
    let mut client = daemon.client().await;
    let code = totp_code(&secret, now(), 30, 6, HashAlg::Sha1);
    assert_eq!(client.authenticate("carol", &code).await.unwrap().code, CODE_ACCESS_ACCEPT);
    // The secret is never shown again.
    let shown = daemon.ctl_ok(&["token", "show", &serial, "--json"]);
    let b32 = data_encoding::BASE32_NOPAD.encode(&secret);
    assert!(!shown.contains(&b32) && !daemon.ctl_ok(&["token", "show", &serial]).contains(&b32));
    // The terminal rendering draws a QR code.
    let table = daemon.ctl_ok(&["token", "enroll", "carol", "--type", "app-hotp"]);
    assert!(table.contains("otpauth://hotp/") && table.contains("counter=0") && table.contains('█'), "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_with_otps_far_ahead_reports_the_distance() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    // Lock the token, then resynchronise it 500 counts ahead.
    for _ in 0..5 {
        client.authenticate("alice", "000000").await.unwrap();
    }
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["state"], "locked");
    let (c500, c501) = (code(500), code(501));
    let reversed = daemon.ctl(&["token", "reset", "HW1", &c501, &c500]);
    assert_eq!(reversed.status.code(), Some(1));
    assert!(stderr(&reversed).contains("reverse order"), "{}", stderr(&reversed));
    let gap = daemon.ctl(&["token", "reset", "HW1", &c500, &code(502)]);
    assert_eq!(gap.status.code(), Some(1));
    assert!(stderr(&gap).contains("not consecutive"), "{}", stderr(&gap));
    let far = daemon.ctl(&["token", "reset", "HW1", &code(1500), &code(1501)]);
    assert_eq!(far.status.code(), Some(1), "outside auth.reset_window");
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["counter"], 0, "refusals change nothing");

    let reset = daemon.ctl_json(&["token", "reset", "HW1", &c500, &c501]);
    assert_eq!(reset["counter_moved_by"], 502);
    assert_eq!((reset["token"]["counter"].as_u64(), reset["token"]["state"].as_str()), (Some(502), Some("active")));
    assert_eq!(reset["token"]["fail_count"], 0);
    let text = daemon.ctl(&["token", "reset", "HW1", &c500, &c501]);
    assert_eq!(text.status.code(), Some(1), "a replayed pair is refused");
    assert_eq!(client.authenticate("alice", &code(501)).await.unwrap().code, CODE_ACCESS_REJECT);
    assert_eq!(client.authenticate("alice", &code(502)).await.unwrap().code, CODE_ACCESS_ACCEPT);
    let human = daemon.ctl_ok(&["token", "reset", "HW1", &code(510), &code(511)]);
    assert!(human.contains("moved forward by 9"), "{human}");
}

#[test]
fn the_two_reset_codes_appear_nowhere_in_the_audit_or_the_store() {
    let mut daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let (first, second) = (code(300), code(301));
    // A refused reset (reversed order) and an accepted one, with the same codes.
    assert_eq!(daemon.ctl(&["token", "reset", "HW1", &second, &first]).status.code(), Some(1));
    let reset = daemon.ctl_json(&["token", "reset", "HW1", &first, &second]);
    assert_eq!(reset["token"]["counter"], 302);
    let audit = daemon.ctl_json(&["audit", "--limit", "0"]);
    let entries = audit.as_array().unwrap();
    let resets: Vec<&serde_json::Value> = entries.iter().filter(|e| e["operation"] == "token.reset").collect();
    assert_eq!(resets.len(), 2, "{audit}");
    assert_eq!((resets[0]["result"].as_str(), resets[1]["result"].as_str()), (Some("ok"), Some("refused")));
    assert_eq!(resets[0]["details"]["counter_moved_by"], 302, "{}", resets[0]);
    for entry in entries {
        // Hashes and times are digits chosen by chance: search everything else.
        let mut shown = entry.clone();
        for field in ["hash", "prev_hash", "time"] {
            shown.as_object_mut().unwrap().remove(field);
        }
        let text = shown.to_string();
        assert!(!text.contains(&first) && !text.contains(&second), "a reset code in the audit: {text}");
    }
    let table = daemon.ctl_ok(&["audit", "--limit", "0"]);
    assert!(table.contains("token.reset") && !table.contains(&first) && !table.contains(&second), "{table}");
    daemon.terminate();
    for file in crate::store::files_under(&daemon.dir.path().join("db")) {
        let bytes = std::fs::read(&file).unwrap();
        for otp in [&first, &second] {
            assert!(!bytes.windows(6).any(|w| w == otp.as_bytes()), "reset code {otp} in {}", file.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_is_refused_for_types_that_do_not_allow_it() {
    let daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed,user\nVF1,vendor-fixed,{RFC_SEED_HEX},alice\n"));
    let out = daemon.ctl(&["token", "reset", "VF1", &code(0), &code(1)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Vendor token (no reset)") && stderr(&out).contains("do not allow the reset"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn totp_reset_learns_the_clock_drift() {
    let daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed,user\nTT1,hw-totp,{RFC_SEED_HEX},carol\n"));
    // The token's clock runs 10 steps (5 minutes) ahead.
    let t = now();
    let at = |steps: u64| totp_code(RFC_KEY, t + steps * 30, 30, 6, HashAlg::Sha1);
    let mut client = daemon.client().await;
    // A first use would have the wider auth.totp_first_use_window: use the token once.
    assert_eq!(client.authenticate("carol", &at(0)).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(client.authenticate("carol", &at(10)).await.unwrap().code, CODE_ACCESS_REJECT, "outside ±1 step");
    let reset = daemon.ctl_json(&["token", "reset", "TT1", &at(10), &at(11)]);
    let drift = reset["drift_steps"].as_i64().unwrap();
    assert!((10..=11).contains(&drift), "drift {drift}");
    assert_eq!(client.authenticate("carol", &at(12)).await.unwrap().code, CODE_ACCESS_ACCEPT, "drift applied");
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_enable_unlock_and_delete() {
    let daemon = Daemon::start();
    daemon.import(&format!(
        "serial,type,seed,user\nHW1,hw-hotp,{RFC_SEED_HEX},alice\nVF1,vendor-fixed,{RFC_SEED_HEX},bob\n"
    ));
    let mut client = daemon.client().await;
    assert_eq!(daemon.ctl_json(&["token", "disable", "HW1"])["state"], "disabled");
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_REJECT);
    assert_eq!(daemon.ctl_json(&["token", "enable", "HW1"])["state"], "active");
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    for _ in 0..5 {
        client.authenticate("alice", "000000").await.unwrap();
    }
    assert_eq!(client.authenticate("alice", RFC_CODES[1]).await.unwrap().code, CODE_ACCESS_REJECT, "locked");
    let unlocked = daemon.ctl_json(&["token", "unlock", "HW1"]);
    assert_eq!((unlocked["state"].as_str(), unlocked["fail_count"].as_u64()), (Some("active"), Some(0)));
    assert_eq!(client.authenticate("alice", RFC_CODES[2]).await.unwrap().code, CODE_ACCESS_ACCEPT);

    assert_eq!(daemon.ctl(&["token", "delete", "HW1"]).status.code(), Some(1), "needs --yes");
    let out = daemon.ctl(&["token", "delete", "VF1", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("may not be deleted"));
    daemon.ctl_ok(&["token", "delete", "HW1", "--yes"]);
    assert_eq!(daemon.ctl(&["token", "show", "HW1"]).status.code(), Some(1));
    assert_eq!(client.authenticate("alice", RFC_CODES[3]).await.unwrap().code, CODE_ACCESS_REJECT);
    let types = daemon.ctl_ok(&["types"]);
    assert!(types.contains("Vendor token (no reset)") && types.contains("DELETABLE"), "{types}");
}

#[test]
fn an_operator_cannot_import_or_delete() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: switching to an unprivileged uid needs root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::start(); // admin.roles.operator.uids: [65533]
    daemon.import(&format!("serial,type,seed\nHW1,hw-hotp,{RFC_SEED_HEX}\n"));
    daemon.open_socket_to_all_users();
    let csv = daemon.dir.path().join("op.csv");
    std::fs::write(&csv, format!("serial,type,seed\nHW2,hw-hotp,{RFC_SEED_HEX}\n")).unwrap();
    std::fs::set_permissions(&csv, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_operator = |args: &[&str]| daemon.ctl_as(65533, args);
    let list = as_operator(&["token", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(as_operator(&["token", "assign", "HW1", "alice"]).status.success());
    for args in [vec!["token", "import", csv.to_str().unwrap()], vec!["token", "delete", "HW1", "--yes"]] {
        let out = as_operator(&args);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("needs the admin role"), "{}", stderr(&out));
    }
    assert_eq!(daemon.ctl_json(&["token", "list"]).as_array().unwrap().len(), 1);
    let audit = daemon.ctl_json(&["audit", "--limit", "5"]);
    let refused = audit.as_array().unwrap().iter().find(|e| e["operation"] == "token.delete").unwrap();
    assert_eq!((refused["actor"]["uid"].as_u64(), refused["result"].as_str()), (Some(65533), Some("forbidden")));
}

#[test]
fn audit_verify_detects_an_entry_changed_in_the_store() {
    let mut daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed\nHW1,hw-hotp,{RFC_SEED_HEX}\n"));
    daemon.ctl_ok(&["token", "assign", "HW1", "alice"]);
    daemon.ctl_ok(&["token", "show", "HW1"]);
    assert_eq!(daemon.ctl_json(&["audit", "verify"])["ok"], true);
    daemon.terminate();
    {
        let path = daemon.dir.path().join("db");
        let store =
            radotp::store::sled::SledStore::open(&path, 1 << 20, radotp::store::Durability::Process, None).unwrap();
        store.tamper_with_audit_entry(2, |text| text.replace("\"alice\"", "\"mallory\"")).unwrap();
    }
    daemon.launch();
    let out = daemon.ctl(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BROKEN at entry 2"), "{text}");
}

#[test]
fn audit_filters_by_user_serial_and_time() {
    let daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed\nHW1,hw-hotp,{RFC_SEED_HEX}\nHW2,hw-hotp,{RFC_SEED_HEX}\n"));
    daemon.ctl_ok(&["token", "assign", "HW1", "alice"]);
    daemon.ctl_ok(&["token", "assign", "HW2", "bob"]);
    let by_user = daemon.ctl_json(&["audit", "--user", "bob"]);
    assert!(by_user.as_array().unwrap().iter().all(|e| e["user"] == "bob") && !by_user.as_array().unwrap().is_empty());
    let by_serial = daemon.ctl_json(&["audit", "--serial", "HW1"]);
    assert!(by_serial.as_array().unwrap().iter().all(|e| e["serial"] == "HW1"));
    let future = (now() + 3600).to_string();
    assert!(daemon.ctl_json(&["audit", "--since", &future]).as_array().unwrap().is_empty());
}

#[test]
fn completions_and_man_pages_come_from_the_cli_definition() {
    let ctl = env!("CARGO_BIN_EXE_radotpctl");
    let out = Command::new(ctl).args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("radotpctl"));
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(ctl).args(["man", "--out-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success());
    assert!(dir.path().join("radotpctl.1").exists() && dir.path().join("radotpctl-token-reset.1").exists());
    // Every subcommand's --help carries an example.
    for sub in [
        vec!["token", "unassign"],
        vec!["token", "enroll"],
        vec!["token", "reset"],
        vec!["token", "assign"],
        vec!["status"],
    ] {
        let out = Command::new(ctl).args(&sub).arg("--help").output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("Example"), "{sub:?} --help has no example");
    }
}

#[test]
fn audit_names_owner_and_serial_even_when_the_request_named_only_one() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    daemon.ctl_ok(&["token", "unassign", "HW1", "--yes"]);
    let enrolled = daemon.ctl_json(&["token", "enroll", "bob", "--type", "app-totp", "--no-qr"]);
    let serial = enrolled["token"]["serial"].as_str().unwrap().to_string();
    let alice = daemon.ctl_json(&["audit", "--user", "alice"]);
    assert!(alice.as_array().unwrap().iter().any(|e| e["operation"] == "token.unassign"), "{alice}");
    let by_serial = daemon.ctl_json(&["audit", "--serial", &serial]);
    assert!(by_serial.as_array().unwrap().iter().any(|e| e["operation"] == "token.enroll"), "{by_serial}");
    let since = daemon.ctl_json(&["audit", "--since", "1h"]);
    assert!(!since.as_array().unwrap().is_empty());
    let out = daemon.ctl(&["audit", "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(1));
    let table = daemon.ctl_ok(&["audit", "--limit", "1"]);
    assert!(table.contains("Z  "), "times are shown as UTC dates: {table}");
}

#[test]
fn messages_say_what_happened() {
    let daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed,user\nHW1,hw-hotp,{RFC_SEED_HEX},alice\nHW2,hw-hotp,{RFC_SEED_HEX},\n"));
    let out = daemon.ctl(&["token", "assign", "HW1", "bob", "--reassign"]);
    assert!(stderr(&out).contains("refusing to reassign token HW1 to bob without --yes"), "{}", stderr(&out));
    assert!(daemon.ctl_ok(&["token", "unassign", "HW1", "--yes"]).contains("unassigned from alice"));
    assert_eq!(daemon.ctl_ok(&["token", "disable", "HW2"]).trim(), "token HW2: state disabled, fail count 0");
    assert_eq!(daemon.ctl_ok(&["token", "delete", "HW2", "--yes"]).trim(), "token HW2 deleted");
    let out = daemon.ctl(&["token", "list", "--type", "nosuch"]);
    assert!(stderr(&out).contains("there is no token type \"nosuch\""), "{}", stderr(&out));
    let out = daemon.ctl(&["token", "enroll", "bob", "--type", "nosuch"]);
    assert!(stderr(&out).contains("there is no token type"), "{}", stderr(&out));
    daemon.ctl_ok(&["token", "assign", "HW1", "carol"]);
    let out = daemon.ctl(&["token", "enroll", "bob", "--type", "hw-hotp", "--serial", "HW1"]);
    assert!(stderr(&out).contains("belongs to carol, not to stock"), "{}", stderr(&out));
    let out = daemon.ctl(&["token", "enroll", "carol", "--type", "hw-hotp", "--serial", "HW1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("carol already has token HW1"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("unassign"), "no advice that takes the token away: {}", stderr(&out));
    let out = daemon.ctl(&["token", "unassign", "hw1", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("token hw1 does not exist; did you mean HW1"), "{}", stderr(&out));
    assert!(daemon.ctl_ok(&["user", "search", "zzz"]).contains("no users"));
    let version = Command::new(env!("CARGO_BIN_EXE_radotpctl")).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("radotpctl "));
}

/// On a terminal (a pseudo-terminal made by `script`), `token reset SERIAL`
/// asks for the first code and then the second; without a terminal it says
/// how to give them.
#[test]
fn reset_asks_for_the_codes_on_a_terminal_first_then_second() {
    use std::io::Write;
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let out = daemon.ctl(&["token", "reset", "HW1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("give OTP1 and OTP2"), "{}", stderr(&out));

    let command = format!("{} --socket {} token reset HW1", env!("CARGO_BIN_EXE_radotpctl"), daemon.socket.display());
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut input = child.stdin.take().unwrap();
    input.write_all(format!("{}\n", code(40)).as_bytes()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    input.write_all(format!("{}\n", code(41)).as_bytes()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(input);
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    let (first, second) = (screen.find("(OTP1)").unwrap(), screen.find("(OTP2)").unwrap());
    assert!(first < second, "{screen}");
    assert!(screen.contains("token HW1 reset: counter moved forward by 42"), "{screen}");
}

/// The shipped demo configuration has what the operator guide uses: an
/// authenticator-app type, a type that refuses the reset, one operators may
/// not enroll, and the guide's users.
#[test]
fn the_demo_configuration_runs_the_operator_guide() {
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/radotp.yaml")).unwrap();
    let daemon = Daemon::start_with(|config| {
        let dir = config.split("store:\n  path: ").nth(1).unwrap().split("/db").next().unwrap().to_string();
        *config = demo.replace("./var/radotp", &dir).replace("127.0.0.1:1812", "127.0.0.1:0");
    });
    daemon.import(&format!(
        "serial,type,seed,user\nHW0003,hw-hotp,{s},\nVF0001,vendor-fixed,{s},bob\nLG0001,legacy,{s},\n",
        s = RFC_SEED_HEX
    ));
    let types = daemon.ctl_ok(&["types"]);
    for id in ["hw-hotp", "hw-totp", "app-totp", "vendor-fixed", "legacy"] {
        assert!(types.contains(id), "{id} missing: {types}");
    }
    let app = daemon.ctl_json(&["token", "enroll", "erin", "--type", "app-totp", "--no-qr"]);
    assert!(app["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/Example%20VPN:erin@example.org"), "{app}");
    let out = daemon.ctl(&["token", "reset", "VF0001", RFC_CODES[0], RFC_CODES[1]]);
    assert!(stderr(&out).contains("do not allow the reset"), "{}", stderr(&out));
    let out = daemon.ctl(&["token", "enroll", "dave", "--type", "legacy", "--serial", "LG0001"]);
    assert!(stderr(&out).contains("operators cannot enroll tokens of type \"legacy\""), "{}", stderr(&out));
    daemon.ctl_ok(&["token", "enroll", "dave", "--type", "hw-hotp", "--serial", "HW0003"]);
}
