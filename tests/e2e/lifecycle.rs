//! The daemon's life under systemd: notify states, reload, graceful stop,
//! configuration checks and the unit file.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use radotp::radius::packet::{CODE_ACCESS_ACCEPT, CODE_ACCESS_REJECT};

use crate::harness::{Daemon, RFC_CODES, RFC_SEED_HEX};

fn notifications(socket: &UnixDatagram, until: &str, wait: Duration) -> Vec<String> {
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = text.contains(until);
            seen.push(text);
            if done {
                break;
            }
        }
    }
    seen
}

#[test]
fn ready_reloading_and_stopping_are_notified() {
    let mut daemon = Daemon::prepare(|_| {});
    let path = daemon.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    daemon.env("NOTIFY_SOCKET", path.to_str().unwrap());
    daemon.env("WATCHDOG_USEC", "400000");
    daemon.launch();
    let seen = notifications(&socket, "READY=1", Duration::from_secs(5));
    assert!(seen.iter().any(|s| s == "READY=1"), "{seen:?}");
    let seen = notifications(&socket, "WATCHDOG=1", Duration::from_secs(3));
    assert!(seen.iter().any(|s| s == "WATCHDOG=1"), "watchdog pings: {seen:?}");
    daemon.signal("HUP");
    let seen = notifications(&socket, "READY=1", Duration::from_secs(5));
    let reloading = seen.iter().position(|s| s.starts_with("RELOADING=1\nMONOTONIC_USEC="));
    let ready = seen.iter().rposition(|s| s == "READY=1");
    assert!(matches!((reloading, ready), (Some(a), Some(b)) if a < b), "{seen:?}");
    assert_eq!(daemon.terminate(), Some(0));
    let seen = notifications(&socket, "STOPPING=1", Duration::from_secs(2));
    assert!(seen.iter().any(|s| s == "STOPPING=1"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_changes_a_client_secret_without_losing_requests() {
    let mut daemon = Daemon::start_with(|c| {
        *c = c.replace(
            "  duplicate_cache_seconds: 30",
            "    - { name: second, address: 127.0.0.3/32, secret: \"old-secret\" }\n  duplicate_cache_seconds: 30",
        )
    });
    daemon.rfc_token("HW1", "alice");
    // A steady stream from the first client while the second one's secret changes.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, answered) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stream = {
        let (stop, sent, answered) = (stop.clone(), sent.clone(), answered.clone());
        let mut client = daemon.client().await;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                sent.fetch_add(1, Ordering::Relaxed);
                if client.authenticate("bob", "111111").await.is_ok() {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let config = daemon.config_text().replace("\"old-secret\"", "\"new-secret\"");
    daemon.rewrite_config(&config);
    let out = daemon.ctl_ok(&["reload"]);
    assert!(out.contains("configuration reloaded"), "{out}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    stream.await.unwrap();
    assert!(sent.load(Ordering::Relaxed) > 10);
    assert_eq!(sent.load(Ordering::Relaxed), answered.load(Ordering::Relaxed), "a request was lost during the reload");

    let socket = tokio::net::UdpSocket::bind("127.0.0.3:0").await.unwrap();
    socket.connect(daemon.radius).await.unwrap();
    // Requests signed with each secret, from the second client's address.
    for (secret, answered) in [("new-secret", true), ("old-secret", false)] {
        let request =
            radotp::radius::packet::build_access_request(7, secret.as_bytes(), "bob", b"111111", None).unwrap();
        socket.send(&request).await.unwrap();
        let mut buf = [0u8; 4096];
        let got = tokio::time::timeout(Duration::from_millis(700), socket.recv(&mut buf)).await.is_ok();
        assert_eq!(got, answered, "secret {secret}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_reload_keeps_the_running_configuration() {
    let mut daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let good = daemon.config_text();
    daemon.rewrite_config(
        &good.replace("max_failures: 5", "max_failures: 0").replace("address: 127.0.0.1/32", "address: nowhere"),
    );
    let out = daemon.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused") && stderr.contains("radius.clients[0].address"), "{stderr}");
    daemon.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut client = daemon.client().await;
    assert_eq!(
        client.authenticate("alice", RFC_CODES[0]).await.unwrap().code,
        CODE_ACCESS_ACCEPT,
        "old config in force"
    );
    assert!(daemon.log().contains("reload refused"));
    let audit = daemon.ctl_json(&["audit", "--limit", "20"]);
    let reload = audit.as_array().unwrap().iter().find(|e| e["operation"] == "reload").expect("audited");
    assert_eq!(reload["result"], "refused", "{reload}");
    // A good change needing a restart is applied and reported.
    daemon.rewrite_config(&good.replace("  duplicate_cache_seconds: 30", "  duplicate_cache_seconds: 20"));
    let out = daemon.ctl_ok(&["reload"]);
    assert!(out.contains("radius.duplicate_cache_seconds changed"), "{out}");
    // Still not in force: a second reload says so again.
    let out = daemon.ctl_ok(&["reload"]);
    assert!(out.contains("radius.duplicate_cache_seconds changed"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_exits_0_and_every_accept_is_durable() {
    let mut daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed,user\nHW1,hw-hotp,{RFC_SEED_HEX},alice\n"));
    let key = b"12345678901234567890";
    let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let load = {
        let accepted = accepted.clone();
        let mut client = daemon.client().await;
        client.timeout = Duration::from_millis(500);
        tokio::spawn(async move {
            for counter in 0..10_000u64 {
                let code = radotp::model::otp::hotp_code(key, counter, 6, radotp::model::otp::HashAlg::Sha1);
                match client.authenticate("alice", &code).await {
                    Ok(reply) if reply.code == CODE_ACCESS_ACCEPT => accepted.lock().unwrap().push(code),
                    Ok(_) => {}
                    Err(_) => break, // the daemon has stopped
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let code = daemon.terminate();
        (code, daemon)
    })
    .await
    .unwrap();
    let (code, mut daemon) = status;
    assert_eq!(code, Some(0));
    assert!(started.elapsed() < Duration::from_secs(12), "stopped within the drain deadline");
    load.await.unwrap();
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() > 5, "load ran: {}", accepted.len());
    daemon.launch();
    let mut client = daemon.client().await;
    let last = accepted.last().unwrap();
    assert_eq!(client.authenticate("alice", last).await.unwrap().code, CODE_ACCESS_REJECT, "last Accept survived");
    let token = daemon.ctl_json(&["token", "show", "HW1"]);
    assert!(token["counter"].as_u64().unwrap() >= accepted.len() as u64, "{token}");
}

#[test]
fn check_config_passes_on_shipped_samples_and_names_the_key_of_broken_ones() {
    let root = env!("CARGO_MANIFEST_DIR");
    let radotpd = env!("CARGO_BIN_EXE_radotpd");
    let mut checked = 0;
    for entry in std::fs::read_dir(format!("{root}/conf")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = Command::new(radotpd)
                .arg("--check-config")
                .arg("--config")
                .arg(&path)
                .current_dir(root)
                .output()
                .unwrap();
            // Production samples name files of the target host (/etc/radotp/...), absent here.
            let stderr = String::from_utf8_lossy(&out.stderr);
            let only_host_files =
                stderr.lines().all(|l| l.contains("No such file or directory") && l.contains(": /etc/radotp/"));
            assert!(out.status.success() || only_host_files, "{}: {stderr}", path.display());
            if path.ends_with("radotp.yaml") {
                // The demo's testing123 (radclient's default) is accepted, with a warning.
                assert!(stderr.contains("warning: radius.clients[0].secret: "), "{stderr}");
                assert!(!stderr.contains("testing123"), "the secret itself is never shown: {stderr}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 1);
    let mut broken = 0;
    for entry in std::fs::read_dir(format!("{root}/tests/data")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("bad-") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let expected =
            text.lines().next().unwrap().strip_prefix("# expect: ").expect("first line names the key").trim();
        let out = Command::new(radotpd).arg("--check-config").arg("--config").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(78), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("{expected}:")), "{name}: expected {expected} in {stderr}");
        broken += 1;
    }
    assert!(broken >= 5);
}

#[test]
fn check_config_finds_stored_tokens_of_undefined_types() {
    let mut daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed\nHW1,hw-totp,{RFC_SEED_HEX}\n"));
    daemon.terminate();
    let config = daemon.config_text().replace(
        "  - { id: hw-totp, label: \"Hardware token (TOTP)\", algorithm: totp, digits: 6, period: 30, hash: sha1 }\n",
        "",
    );
    daemon.rewrite_config(&config);
    let out = Command::new(env!("CARGO_BIN_EXE_radotpd"))
        .arg("--check-config")
        .arg("--config")
        .arg(daemon.config_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("type \"hw-totp\", which is not defined"));
}

#[test]
fn the_systemd_unit_verifies() {
    let root = env!("CARGO_MANIFEST_DIR");
    let unit = std::fs::read_to_string(format!("{root}/systemd/radotpd.service")).unwrap();
    for needed in [
        "Type=notify",
        "ExecStart=/usr/bin/radotpd --config /etc/radotp/radotp.yaml",
        // No undeclared dependency (/bin/kill is procps's), and a refused
        // reload makes `systemctl reload` fail.
        "ExecReload=/usr/bin/radotpctl --socket /run/radotp/admin.sock reload",
        "User=radotp",
        "RestartPreventExitStatus=78",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "WatchdogSec=",
    ] {
        assert!(unit.contains(needed), "unit lacks {needed:?}");
    }
    // A check in ExecStartPre= exits 78 outside RestartPreventExitStatus=
    // (systemd #11868): a broken file would be retried until the start limit.
    assert!(!unit.lines().any(|l| l.starts_with("ExecStartPre=")), "radotpd checks its configuration itself");
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("systemd-analyze not installed: structural checks only");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("radotpd.service");
    let unit = unit
        .replace("/usr/bin/radotpd", env!("CARGO_BIN_EXE_radotpd"))
        .replace("/usr/bin/radotpctl", env!("CARGO_BIN_EXE_radotpctl"));
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_under_load_restores_into_a_store_that_authenticates() {
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let mut client = daemon.client().await;
        tokio::spawn(async move {
            let mut answered = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if client.authenticate("bob", "111111").await.is_ok() {
                    answered += 1;
                }
            }
            answered
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let file = daemon.dir.path().join("backup.json");
    let out = daemon.ctl_ok(&["backup", file.to_str().unwrap()]);
    assert!(out.contains("backup written: 1 token(s)"), "{out}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    assert!(load.await.unwrap() > 5, "RADIUS kept serving during the backup");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!std::fs::read_to_string(&file).unwrap().contains(RFC_SEED_HEX), "seeds stay sealed");
    assert_eq!(daemon.ctl(&["backup", file.to_str().unwrap()]).status.code(), Some(1), "no silent overwrite");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    daemon.ctl_ok(&["backup", file.to_str().unwrap(), "--force"]);
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "--force makes it private too");

    // Restore into a fresh store that has the same master key.
    let mut restored = Daemon::prepare(|_| {});
    std::fs::copy(daemon.dir.path().join("master.key"), restored.dir.path().join("master.key")).unwrap();
    std::fs::write(restored.config_path(), restored.config_text()).unwrap();
    let run = |config: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_radotpd"))
            .arg("--restore")
            .arg(&file)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap()
    };
    let out = run(&restored.config_path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = run(&restored.config_path());
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already holds data"));
    restored.launch();
    let mut client = restored.client().await;
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_REJECT, "counter restored");
    assert_eq!(client.authenticate("alice", RFC_CODES[1]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(restored.ctl_json(&["audit", "verify"])["ok"], true);

    // The wrong master key is refused before anything is written.
    let other = Daemon::prepare(|_| {});
    std::fs::write(other.config_path(), other.config_text()).unwrap();
    radotp::crypto::SeedCipher::from_key_file(&other.dir.path().join("master.key"), true).unwrap();
    let out = run(&other.config_path());
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("key file does not open"));
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_endpoint_counts_decisions() {
    use std::io::{Read, Write};
    let daemon = Daemon::start_with(|c| c.push_str("metrics:\n  listen: \"127.0.0.1:0\"\n"));
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    client.authenticate("alice", RFC_CODES[0]).await.unwrap();
    client.authenticate("alice", "000000").await.unwrap();
    let log = daemon.log();
    let address =
        log.split("metrics on http://").nth(1).and_then(|rest| rest.split('/').next()).expect("metrics address");
    let expected = [
        "radotp_radius_accepts_total 1",
        "radotp_radius_rejects_total 1",
        "radotp_radius_reject_reasons_total{reason=\"wrong_otp\"} 1",
        "radotp_radius_drops_total{reason=\"unknown_client\"} 0",
        "radotp_radius_decision_seconds_count 2",
    ];
    // The latency is observed just after the answer leaves: on a busy machine
    // the second one may land a moment after the client has its answer.
    let mut body = String::new();
    for _ in 0..40 {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        body.clear();
        stream.read_to_string(&mut body).unwrap();
        if expected.iter().all(|line| body.contains(line)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(body.starts_with("HTTP/1.0 200 OK"), "{body}");
    for line in expected {
        assert!(body.contains(line), "{line} missing:\n{body}");
    }
    let status = daemon.ctl_json(&["status"]);
    assert_eq!(status["radius"]["reject_reasons"]["wrong_otp"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_refuses_an_edited_or_unsigned_backup_unless_forced() {
    let daemon = Daemon::start();
    daemon
        .import(&format!("serial,type,seed,user\nHW1,hw-hotp,{RFC_SEED_HEX},alice\nHW2,hw-hotp,{RFC_SEED_HEX},bob\n"));
    let mut client = daemon.client().await;
    assert_eq!(client.authenticate("bob", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    let file = daemon.dir.path().join("backup.json");
    daemon.ctl_ok(&["backup", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    let backup: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(backup["mac"].as_str().map(str::len), Some(64), "signed: HMAC-SHA256 in hex");

    // Each attempt restores into a fresh store with the same master key.
    let restore = |file: &std::path::Path, force: bool| {
        let target = Daemon::prepare(|_| {});
        std::fs::copy(daemon.dir.path().join("master.key"), target.dir.path().join("master.key")).unwrap();
        std::fs::write(target.config_path(), target.config_text()).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_radotpd"));
        command.arg("--restore").arg(file).arg("--config").arg(target.config_path());
        if force {
            command.arg("--force");
        }
        let out = command.output().unwrap();
        (out, target)
    };
    let write = |name: &str, value: &serde_json::Value| {
        let path = daemon.dir.path().join(name);
        std::fs::write(&path, serde_json::to_string(value).unwrap()).unwrap();
        path
    };

    // Alice's token handed to bob in the file (whoever holds alice's token
    // could then log in as bob): refused, before anything is written.
    let mut edited = backup.clone();
    let tokens = edited["snapshot"]["tokens"].as_array_mut().unwrap();
    let hw1 = tokens.iter_mut().find(|t| t["serial"] == "HW1").unwrap();
    assert_eq!(hw1["owner"]["name"], "alice");
    hw1["owner"]["name"] = "bob".into();
    let edited = write("edited.json", &edited);
    let (out, target) = restore(&edited, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("MAC does not verify"), "{stderr}");
    assert!(!target.dir.path().join("db").exists() || sled_is_empty(&target), "nothing written");

    // A rolled-back counter: refused too.
    let mut rolled_back = backup.clone();
    let tokens = rolled_back["snapshot"]["tokens"].as_array_mut().unwrap();
    let hw2 = tokens.iter_mut().find(|t| t["serial"] == "HW2").unwrap();
    assert_eq!(hw2["counter"], 1);
    hw2["counter"] = 0.into();
    let (out, _) = restore(&write("rolled-back.json", &rolled_back), false);
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAC does not verify"));

    // No MAC (as written by versions before backups were signed): refused unless --force.
    let mut unsigned = backup.clone();
    unsigned.as_object_mut().unwrap().remove("mac");
    let unsigned = write("unsigned.json", &unsigned);
    let (out, _) = restore(&unsigned, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("has no MAC"), "{stderr}");
    let (out, mut target) = restore(&unsigned, true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("warning: restored despite (--force)"), "{stderr}");
    target.launch();
    let audit = target.ctl_json(&["audit", "--limit", "1"]);
    let entry = &audit[0];
    assert_eq!((entry["operation"].as_str(), entry["reason"].as_str()), (Some("backup.restore"), Some("forced")));
    assert_eq!(target.ctl_json(&["audit", "verify"])["ok"], true);
    drop(target);

    // --force is for restores only.
    let out = Command::new(env!("CARGO_BIN_EXE_radotpd")).arg("--force").arg("--check-config").output().unwrap();
    assert!(!out.status.success());

    // The untouched file restores, and the restore is audited.
    let (out, mut target) = restore(&file, false);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.launch();
    let audit = target.ctl_json(&["audit", "--limit", "1"]);
    assert_eq!((audit[0]["operation"].as_str(), audit[0]["reason"].as_str()), (Some("backup.restore"), None));
    assert_eq!(target.ctl_json(&["audit", "verify"])["ok"], true);
    let mut client = target.client().await;
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
}

/// True when the store of a daemon that was never started holds nothing.
fn sled_is_empty(daemon: &Daemon) -> bool {
    use radotp::store::Store;
    let path = daemon.dir.path().join("db");
    let store = radotp::store::sled::SledStore::open(&path, 1 << 20, radotp::store::Durability::Process, None).unwrap();
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(store.is_empty())).unwrap()
}

/// The shipped `listen: ["0.0.0.0:1812", "[::]:1812"]`: with Linux's default
/// `net.ipv6.bindv6only=0` an IPv6 wildcard socket is dual stack unless it is
/// bound IPv6-only, and the second bind failed with "Address already in use".
#[test]
fn ipv4_and_ipv6_wildcards_on_one_port_both_bind() {
    let port = std::net::UdpSocket::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
    let daemon = Daemon::start_with(|config| {
        *config = config.replace(r#"listen: ["127.0.0.1:0"]"#, &format!(r#"listen: ["0.0.0.0:{port}", "[::]:{port}"]"#))
    });
    let log = daemon.log();
    assert!(log.contains(&format!("listening for RADIUS on 0.0.0.0:{port}")), "{log}");
    assert!(log.contains(&format!("listening for RADIUS on [::]:{port}")), "{log}");
}
