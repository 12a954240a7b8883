//! Durability and secrecy of the store, seen from outside the daemon.

use radotp::radius::packet::{CODE_ACCESS_ACCEPT, CODE_ACCESS_REJECT};

use crate::harness::{Daemon, RFC_CODES, RFC_SEED_HEX};

#[tokio::test(flavor = "multi_thread")]
async fn an_accepted_otp_stays_used_after_a_crash() {
    let mut daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    for code in RFC_CODES.iter().take(3) {
        let mut client = daemon.client().await;
        assert_eq!(client.authenticate("alice", code).await.unwrap().code, CODE_ACCESS_ACCEPT);
        // SIGKILL right after the Accept arrived: no graceful flush.
        daemon.kill();
        daemon.launch();
        let mut client = daemon.client().await;
        assert_eq!(client.authenticate("alice", code).await.unwrap().code, CODE_ACCESS_REJECT, "replay after crash");
    }
    let chain = daemon.ctl_json(&["audit", "verify"]);
    assert_eq!(chain["ok"], true, "{chain}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_cleanly_and_removes_the_socket() {
    let mut daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    assert_eq!(daemon.terminate(), Some(0));
    assert!(!daemon.socket.exists());
    daemon.launch();
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["user"], "alice");
}

pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn seeds_never_appear_in_the_store_files() {
    // A seed with no ASCII meaning, so any encoding of it is distinctive.
    let seed = [
        0x8fu8, 0x1e, 0x77, 0xa0, 0x5c, 0xd3, 0x29, 0xee, 0x41, 0x90, 0x0b, 0x6a, 0xf2, 0x13, 0x88, 0xc5, 0x3d, 0x7e,
        0xb1, 0x64,
    ];
    let hex = data_encoding::HEXLOWER.encode(&seed);
    let mut daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed,user\nS1,hw-hotp,{hex},alice\n"));
    let code = radotp::model::otp::hotp_code(&seed, 0, 6, radotp::model::otp::HashAlg::Sha1);
    let mut client = daemon.client().await;
    assert_eq!(client.authenticate("alice", &code).await.unwrap().code, CODE_ACCESS_ACCEPT);
    daemon.terminate();
    let needles: Vec<Vec<u8>> = vec![
        seed.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
        data_encoding::BASE32.encode(&seed).into_bytes(),
        data_encoding::BASE32_NOPAD.encode(&seed).into_bytes(),
        data_encoding::BASE64.encode(&seed).into_bytes(),
    ];
    let db = daemon.dir.path().join("db");
    let files = files_under(&db);
    assert!(!files.is_empty());
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for needle in &needles {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_slice()), "seed found in {}", file.display());
        }
        assert!(!bytes.windows(6).any(|w| w == code.as_bytes()) || code.len() != 6, "OTP found in {}", file.display());
    }
    let log = daemon.log();
    assert!(!log.contains(&hex) && !log.contains(&code), "seed or OTP in the log");
    let _ = RFC_SEED_HEX;
}

#[test]
fn a_bad_config_names_the_key_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::harness::base_config(dir.path()).replace("address: 127.0.0.1/32", "address: 127.0.0.300/32");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_radotpd")).arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("radius.clients[0].address"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_radotpd"))
        .args(["--check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn a_loose_radius_secret_file_is_refused_by_check_config_and_start_with_78_and_by_reload() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("vpn-gw.secret");
    std::fs::write(&secret, "testing123\n").unwrap();
    let config = crate::harness::base_config(dir.path())
        .replace("secret: \"testing123\" }", &format!("secret_file: {} }}", secret.display()));
    let path = dir.path().join("radotp.yaml");
    std::fs::write(&path, config).unwrap();
    let radotpd = |check: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_radotpd"));
        if check {
            command.arg("--check-config");
        }
        command.arg("--config").arg(&path).output().unwrap()
    };
    for mode in [0o644, 0o660, 0o604] {
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).unwrap();
        for check in [true, false] {
            let out = radotpd(check);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(78), "mode {mode:o}, --check-config {check}: {stderr}");
            let expected = format!("radius.clients[0].secret_file: {}: permissions {mode:03o}", secret.display());
            assert!(stderr.contains(&expected), "mode {mode:o}, --check-config {check}: {stderr}");
            assert!(stderr.contains("chmod 640"), "{stderr}");
        }
    }
    assert!(!dir.path().join("db").exists(), "nothing was started");
    for mode in [0o600, 0o640] {
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = radotpd(true);
        assert_eq!(out.status.code(), Some(0), "mode {mode:o}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // A reload that would switch to a loose secret file is refused; the running secret stays.
    let mut daemon = Daemon::start();
    let secret = daemon.dir.path().join("vpn-gw.secret");
    std::fs::write(&secret, "testing123\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let good = daemon.config_text();
    daemon.rewrite_config(&good.replace("secret: \"testing123\" }", &format!("secret_file: {} }}", secret.display())));
    let out = daemon.ctl(&["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("radius.clients[0].secret_file") && stderr.contains("permissions 644"), "{stderr}");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    daemon.ctl_ok(&["reload"]);
}

#[test]
fn a_missing_key_file_is_not_replaced_when_the_store_holds_tokens() {
    let mut daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed\nHW1,hw-hotp,{RFC_SEED_HEX}\n"));
    daemon.terminate();
    let key = daemon.dir.path().join("master.key");
    std::fs::rename(&key, daemon.dir.path().join("master.key.moved")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_radotpd"))
        .arg("--config")
        .arg(daemon.config_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("restore that key file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!key.exists(), "no new key was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_retention_keeps_the_configured_number_and_the_rest_still_verifies() {
    let daemon =
        crate::harness::Daemon::start_with(|c| c.push_str("audit:\n  max_entries: 50\n  retention_days: 30\n"));
    let mut client = daemon.client().await;
    for i in 0..120 {
        client.authenticate(&format!("nobody-{i}"), "000000").await.unwrap();
    }
    // The daemon also applies retention by itself every 10 seconds: on a
    // slow machine it may have done so already.
    let out = daemon.ctl_ok(&["audit", "prune"]);
    assert!(out.starts_with("audit retention removed ") || out.starts_with("audit retention: nothing"), "{out}");
    let kept = daemon.ctl_json(&["audit", "--limit", "0"]);
    let kept = kept.as_array().unwrap();
    assert!(kept.len() <= 52, "at most the configured 50 (and the reads since): {}", kept.len());
    assert!(kept.iter().any(|e| e["operation"] == "audit.prune"), "the removal is audited");
    let verified = daemon.ctl_ok(&["audit", "verify"]);
    assert!(verified.contains("were removed by retention"), "{verified}");
    let chain = daemon.ctl_json(&["audit", "verify"]);
    assert_eq!(chain["ok"], true);
    assert!(chain["pruned_through"].as_u64().unwrap() >= 70, "{chain}");
}

/// Every path under `path` (itself included) whose mode gives the group or others anything.
fn open_to_others(path: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = Vec::new();
    let mode = std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        found.push(format!("{} {mode:o}", path.display()));
    }
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            found.extend(open_to_others(&entry.unwrap().path()));
        }
    }
    found
}

#[test]
fn store_files_are_private_whatever_the_umask_and_the_socket_directory_stays_reachable() {
    use std::os::unix::fs::PermissionsExt;
    // The daemon's parent (this test) runs under umask 022, as systemd's default is.
    let mut daemon = Daemon::prepare(|config| {
        *config = config.replace("/db\n", "/var/lib/db\n").replace("/admin.sock\n", "/run/radotp/admin.sock\n")
    });
    daemon.socket = daemon.dir.path().join("run/radotp/admin.sock");
    daemon.launch();
    daemon.import(&format!("serial,type,seed,user\nP1,hw-hotp,{RFC_SEED_HEX},alice\n"));
    daemon.ctl_ok(&["token", "disable", "P1"]);
    let store = daemon.dir.path().join("var/lib/db");
    assert!(open_to_others(&store).is_empty(), "{:?}", open_to_others(&store));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&daemon.dir.path().join("var/lib")), 0o755, "only the store directory itself is private");
    assert_eq!(mode(&daemon.dir.path().join("run/radotp")), 0o755, "operators reach the socket");
    assert_eq!(mode(&daemon.dir.path().join("run/radotp/admin.sock")), 0o660);
    daemon.terminate();
    assert!(open_to_others(&store).is_empty(), "after the final flush: {:?}", open_to_others(&store));
}
