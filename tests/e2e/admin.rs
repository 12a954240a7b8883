//! The admin socket and radotpctl: import, list, show, assign, audit, peers.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::harness::{Daemon, RFC_SEED_HEX};

#[test]
fn import_reports_bad_rows_with_line_numbers_and_imports_nothing() {
    let daemon = Daemon::start();
    let csv = format!(
        "serial,type,seed\nGOOD1,hw-hotp,{RFC_SEED_HEX}\nBAD1,hw-hotp,nothex\nBAD2,no-such-type,{RFC_SEED_HEX}\nBAD3,hw-hotp,00ff\n"
    );
    let path = daemon.dir.path().join("bad.csv");
    std::fs::write(&path, &csv).unwrap();
    let out = daemon.ctl(&["token", "import", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3") && stderr.contains("not hex"), "{stderr}");
    assert!(stderr.contains("line 4") && stderr.contains("unknown token type"), "{stderr}");
    assert!(stderr.contains("line 5") && stderr.contains("bytes"), "{stderr}");
    assert_eq!(daemon.ctl_json(&["token", "list"]).as_array().unwrap().len(), 0, "nothing imported");

    let out = daemon.ctl_ok(&["token", "import", path.to_str().unwrap(), "--skip-invalid"]);
    assert!(out.contains("imported 1, skipped 0, invalid 3"), "{out}");
    let again = daemon.ctl_ok(&["token", "import", path.to_str().unwrap(), "--skip-invalid"]);
    assert!(again.contains("imported 0, skipped 1, invalid 3"), "{again}");
}

#[test]
fn import_checks_header_users_and_duplicates_and_supports_base32_and_dry_run() {
    let daemon = Daemon::start();
    let path = daemon.dir.path().join("x.csv");
    std::fs::write(&path, "serial,type\nA,hw-hotp\n").unwrap();
    let out = daemon.ctl(&["token", "import", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("seed"));

    let csv = "serial,type,seed_base32,user,digits,hash\n\
               B32,hw-hotp,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,alice,8,sha256\n\
               NOUSER,hw-hotp,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,mallory,,\n\
               B32,hw-hotp,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,,,\n";
    std::fs::write(&path, csv).unwrap();
    let out = daemon.ctl(&["token", "import", path.to_str().unwrap(), "--dry-run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 valid"), "{stderr}");
    assert!(stderr.contains("line 3") && stderr.contains("mallory"), "{stderr}");
    assert!(stderr.contains("line 4") && stderr.contains("earlier in the file (line 2)"), "{stderr}");
    assert!(stderr.contains("2 invalid row(s)"), "a serial twice in one file is an invalid row: {stderr}");
    let out = daemon.ctl_ok(&["token", "import", path.to_str().unwrap(), "--dry-run", "--skip-invalid"]);
    assert!(out.contains("would import 1"), "{out}");
    assert_eq!(daemon.ctl_json(&["token", "list"]).as_array().unwrap().len(), 0, "dry run writes nothing");
    daemon.ctl_ok(&["token", "import", path.to_str().unwrap(), "--skip-invalid"]);
    let token = daemon.ctl_json(&["token", "show", "B32"]);
    assert_eq!((token["digits"].as_u64(), token["hash"].as_str()), (Some(8), Some("sha256")));
    assert_eq!(token["user"], "alice");
}

#[test]
fn list_filters_and_json_shape() {
    let daemon = Daemon::start();
    daemon.import(&format!(
        "serial,type,seed,user\nH1,hw-hotp,{s},alice\nH2,hw-hotp,{s},\nT1,hw-totp,{s},bob\n",
        s = RFC_SEED_HEX
    ));
    let all = daemon.ctl_json(&["token", "list"]);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3);
    for token in all {
        for field in ["serial", "type", "algorithm", "user", "state", "fail_count"] {
            assert!(token.get(field).is_some(), "{field} missing in {token}");
        }
        assert!(token.get("seed").is_none() && token.get("sealed_seed").is_none());
    }
    let h2 = all.iter().find(|t| t["serial"] == "H2").unwrap();
    assert!(h2["user"].is_null() && h2["counter"] == 0 && h2["state"] == "active");
    let t1 = all.iter().find(|t| t["serial"] == "T1").unwrap();
    assert!(t1.get("last_step").is_some() && t1.get("counter").is_none(), "{t1}");

    let serials = |args: &[&str]| -> Vec<String> {
        daemon.ctl_json(args).as_array().unwrap().iter().map(|t| t["serial"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(serials(&["token", "list", "--user", "alice"]), ["H1"]);
    assert_eq!(serials(&["token", "list", "--unassigned"]), ["H2"]);
    assert_eq!(serials(&["token", "list", "--type", "hw-totp"]), ["T1"]);
    assert_eq!(serials(&["token", "list", "--serial", "H"]), ["H1", "H2"]);
    assert_eq!(serials(&["token", "list", "--state", "active", "--user", "bob"]), ["T1"]);
    assert!(serials(&["token", "list", "--state", "disabled"]).is_empty());

    let table = daemon.ctl_ok(&["token", "list"]);
    assert!(table.starts_with("SERIAL") && table.contains("Hardware token (HOTP)"), "{table}");
    let show = daemon.ctl_ok(&["token", "show", "H1"]);
    assert!(show.contains("Alice Archer") && !show.contains(RFC_SEED_HEX));
    let missing = daemon.ctl(&["token", "show", "NOPE"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
}

#[test]
fn assign_requires_a_directory_user_and_refuses_someone_elses_token() {
    let daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed\nH1,hw-hotp,{RFC_SEED_HEX}\n"));
    let out = daemon.ctl(&["token", "assign", "H1", "mallory"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in the directory"));
    daemon.ctl_ok(&["token", "assign", "H1", "alice"]);
    let out = daemon.ctl(&["token", "assign", "H1", "bob"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to alice"));
    assert_eq!(daemon.ctl_json(&["token", "show", "H1"])["user"], "alice");
    let out = daemon.ctl(&["token", "assign", "NOPE", "bob"]);
    assert_eq!(out.status.code(), Some(1));
    let user = daemon.ctl_json(&["user", "show", "alice"]);
    assert_eq!(user["tokens"][0]["serial"], "H1");
}

#[test]
fn every_admin_request_is_audited_and_the_chain_verifies() {
    let daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed\nH1,hw-hotp,{RFC_SEED_HEX}\n"));
    daemon.ctl_ok(&["token", "assign", "H1", "alice"]);
    let _ = daemon.ctl(&["token", "assign", "H1", "bob"]);
    // The log line of each request names the peer plainly (it once read `peer=Some("root")`).
    let log = daemon.log();
    let line = log.lines().find(|l| l.contains("admin request") && l.contains("token.assign")).expect("logged");
    assert!(line.contains("peer_uid=") && !line.contains("Some("), "{line}");
    let entries = daemon.ctl_json(&["audit", "--limit", "10"]);
    let ops: Vec<String> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}={}", e["operation"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    assert!(ops.contains(&"token.import=ok".into()), "{ops:?}");
    assert!(ops.contains(&"token.assign=ok".into()), "{ops:?}");
    assert!(ops.contains(&"token.assign=refused".into()), "{ops:?}");
    let import = entries.as_array().unwrap().iter().find(|e| e["operation"] == "token.import").unwrap();
    assert_eq!(import["actor"]["kind"], "admin");
    assert!(!import.to_string().contains(RFC_SEED_HEX), "audit never holds seeds");
    let chain = daemon.ctl_json(&["audit", "verify"]);
    assert_eq!(chain["ok"], true, "{chain}");
    let all = daemon.ctl_json(&["audit", "--limit", "0"]);
    assert!(all.as_array().unwrap().len() >= 5, "--limit 0 shows everything");
}

#[test]
fn unreachable_daemon_exits_3_and_usage_errors_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_radotpctl"))
        .args(["--socket", "/nonexistent/radotp.sock", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = Command::new(env!("CARGO_BIN_EXE_radotpctl")).args(["token", "frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_radotpctl"))
        .env("RADOTP_SOCKET", "/nonexistent/env.sock")
        .arg("ping")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/env.sock"), "RADOTP_SOCKET is used");
}

#[test]
fn a_peer_that_is_not_allowed_is_refused_and_audited() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: switching to an unprivileged uid needs root");
        return;
    }
    let daemon = Daemon::start();
    daemon.open_socket_to_all_users();
    let out = daemon.ctl_as(65534, &["token", "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("may not use the radotp admin socket"));
    let entries = daemon.ctl_json(&["audit", "--limit", "5"]);
    let refused = entries.as_array().unwrap().iter().find(|e| e["operation"] == "admin.connect").expect("audited");
    assert_eq!(refused["result"], "refused");
    assert_eq!(refused["actor"]["uid"], 65534);
}

#[test]
fn the_admin_socket_is_private_to_owner_and_group() {
    let daemon = Daemon::start();
    let mode = std::fs::metadata(&daemon.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
}
