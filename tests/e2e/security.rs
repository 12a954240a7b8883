//! Hardening from the outside review (issue #14), seen from outside the
//! daemon: a wrong master key, lockout as a lever for others, output files,
//! Proxy-State, the admin socket's path.

use std::process::Command;
use std::time::Duration;

use radotp::radius::packet::{CODE_ACCESS_ACCEPT, CODE_ACCESS_REJECT, build_access_request};

use crate::harness::{Daemon, RFC_CODES, RFC_SEED_HEX, SECRET};

fn radotpd(daemon: &Daemon, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_radotpd")).args(extra).arg("--config").arg(daemon.config_path()).output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn another_valid_master_key_is_refused_by_check_config_and_at_start() {
    let mut daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    daemon.terminate();
    let key = daemon.dir.path().join("master.key");
    let right = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();

    let check = radotpd(&daemon, &["--check-config"]);
    let said = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(78), "{said}");
    assert!(said.contains("store.key_file") && said.contains(&key.display().to_string()), "{said}");
    assert!(said.contains("not the key"), "{said}");

    let start = radotpd(&daemon, &[]);
    let said = String::from_utf8_lossy(&start.stderr);
    assert_eq!(start.status.code(), Some(78), "{said}");
    assert!(said.contains(&key.display().to_string()) && said.contains("not the key"), "{said}");
    assert!(!said.contains("radotpd ready"), "{said}");

    // The right key back: it starts, and the user's code still works.
    std::fs::write(&key, right).unwrap();
    let check = radotpd(&daemon, &["--check-config"]);
    assert_eq!(check.status.code(), Some(0), "{}", String::from_utf8_lossy(&check.stderr));
    daemon.launch();
    let mut client = daemon.client().await;
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    let token = daemon.ctl_json(&["token", "show", "HW1"]);
    assert_eq!((token["state"].as_str(), token["fail_count"].as_u64()), (Some("active"), Some(0)), "{token}");
}

#[tokio::test(flavor = "multi_thread")]
async fn captured_requests_replayed_after_the_duplicate_window_do_not_lock_the_token() {
    let daemon = Daemon::start_with(|c| *c = c.replace("duplicate_cache_seconds: 30", "duplicate_cache_seconds: 1"));
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    // What a passive observer captures: the user's accepted requests.
    let mut captured = Vec::new();
    for (id, code) in RFC_CODES[..3].iter().enumerate() {
        let request = build_access_request(id as u8 + 1, SECRET.as_bytes(), "alice", code.as_bytes(), None).unwrap();
        assert_eq!(client.exchange(&request).await.unwrap().code, CODE_ACCESS_ACCEPT);
        captured.push(request);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Replayed byte for byte, again and again, after the duplicate window:
    // more times than max_failures (5).
    for _ in 0..3 {
        for request in &captured {
            let mut replayer = daemon.client().await;
            assert_eq!(replayer.exchange(request).await.unwrap().code, CODE_ACCESS_REJECT);
        }
        // Past the duplicate window again, so each round is checked anew.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let token = daemon.ctl_json(&["token", "show", "HW1"]);
    assert_eq!((token["state"].as_str(), token["fail_count"].as_u64()), (Some("active"), Some(0)), "{token}");
    assert_eq!(client.authenticate("alice", RFC_CODES[3]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    let reasons = &daemon.ctl_json(&["status"])["radius"]["reject_reasons"];
    assert_eq!(reasons["replay"], 9, "{reasons}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sixty_four_concurrent_copies_of_a_valid_code_give_one_accept_and_leave_the_token_active() {
    let daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed,user\nHW1,hw-hotp,{RFC_SEED_HEX},alice\n"));
    let mut handles = Vec::new();
    for _ in 0..64 {
        let mut client = daemon.client().await;
        handles.push(tokio::spawn(async move { client.authenticate("alice", RFC_CODES[0]).await.unwrap().code }));
    }
    let mut accepts = 0;
    for handle in handles {
        if handle.await.unwrap() == CODE_ACCESS_ACCEPT {
            accepts += 1;
        }
    }
    assert_eq!(accepts, 1);
    let token = daemon.ctl_json(&["token", "show", "HW1"]);
    assert_eq!((token["state"].as_str(), token["fail_count"].as_u64()), (Some("active"), Some(0)), "{token}");
    let mut client = daemon.client().await;
    assert_eq!(client.authenticate("alice", RFC_CODES[1]).await.unwrap().code, CODE_ACCESS_ACCEPT);
}

/// The guess budget an attacker gets without locking the token, measured:
/// `max_failures - 1` at once, then one more per `failure_decay_seconds`,
/// whatever the real user does. (With the defaults, 10 and 21600 s: 9 at
/// once, then one every six hours.) Prints what it measured.
#[tokio::test(flavor = "multi_thread")]
async fn a_paced_attacker_gets_one_guess_per_decay_period_and_logins_do_not_refill_it() {
    let daemon =
        Daemon::start_with(|c| *c = c.replace("max_failures: 5", "max_failures: 5\n  failure_decay_seconds: 1"));
    daemon.rfc_token("HW1", "alice");
    let mut attacker = daemon.client().await;
    let mut user = daemon.client().await;
    let started = std::time::Instant::now();
    let mut guesses = 0;
    for _ in 0..4 {
        assert_eq!(attacker.authenticate("alice", "000000").await.unwrap().code, CODE_ACCESS_REJECT);
        guesses += 1;
    }
    for code in &RFC_CODES[..4] {
        // The real user logs in between the guesses: no fresh guesses from it.
        assert_eq!(user.authenticate("alice", code).await.unwrap().code, CODE_ACCESS_ACCEPT);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(attacker.authenticate("alice", "000000").await.unwrap().code, CODE_ACCESS_REJECT);
        guesses += 1;
        assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["state"], "active");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let checked = daemon.ctl_json(&["status"])["radius"]["reject_reasons"]["wrong_otp"].as_u64();
    assert_eq!(checked, Some(guesses));
    println!("measured: {guesses} guesses checked in {elapsed:.1} s with failure_decay_seconds: 1, max_failures: 5");
    // Faster than the decay: the next two guesses lock it, logins or not.
    assert_eq!(user.authenticate("alice", RFC_CODES[4]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    attacker.authenticate("alice", "000000").await.unwrap();
    attacker.authenticate("alice", "000000").await.unwrap();
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["state"], "locked");
}

/// A shared directory (mode 1777, as /tmp) holding `name`, pre-created by
/// uid 65533 with mode 0644, as another local user would leave it.
fn file_of_another_user(daemon: &Daemon, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let shared = daemon.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let path = shared.join(name);
    std::fs::write(&path, "planted").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&path, Some(65533), Some(65533)).unwrap();
    path
}

#[test]
fn backups_and_qr_codes_never_go_into_another_users_file_or_through_a_link() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: a file of another user needs root to make");
        return;
    }
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");

    // Another user's file at the backup's path: refused even with --force.
    let planted = file_of_another_user(&daemon, "backup.json");
    let out = daemon.ctl(&["backup", "--force", planted.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("belongs to uid 65533"), "{said}");
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "planted", "not written into");

    // A link at the QR code's path: its target is not overwritten.
    let target = daemon.dir.path().join("precious");
    std::fs::write(&target, "precious").unwrap();
    let link = daemon.dir.path().join("alice.png");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = daemon.ctl(&["token", "enroll", "alice", "--type", "app-totp", "--qr-png", link.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("symbolic link"), "{said}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");

    // Another user's file at the QR code's path: not written into either.
    let planted_png = planted.with_file_name("bob.png");
    std::fs::write(&planted_png, "planted").unwrap();
    std::os::unix::fs::chown(&planted_png, Some(65533), None).unwrap();
    let out = daemon.ctl(&["token", "enroll", "bob", "--type", "app-totp", "--qr-png", planted_png.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&planted_png).unwrap(), "planted");

    // The operator's own world-readable file, with --force: a new private file takes its place.
    let own = daemon.dir.path().join("old.json");
    std::fs::write(&own, "old").unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o644)).unwrap();
    daemon.ctl_ok(&["backup", "--force", own.to_str().unwrap()]);
    let meta = std::fs::metadata(&own).unwrap();
    assert_eq!((meta.permissions().mode() & 0o777, meta.uid()), (0o600, 0));
    assert!(std::fs::read_to_string(&own).unwrap().contains("\"tokens\""));
    let png = daemon.dir.path().join("carol.png");
    daemon.ctl_ok(&["token", "enroll", "carol", "--type", "app-totp", "--qr-png", png.to_str().unwrap()]);
    assert_eq!(std::fs::metadata(&png).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_regular_file_at_the_admin_socket_path_is_refused_not_deleted() {
    let mut daemon = Daemon::start();
    daemon.terminate();
    std::fs::write(&daemon.socket, "someone's data").unwrap();
    let out = radotpd(&daemon, &[]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("not a socket"), "{said}");
    assert_eq!(std::fs::read_to_string(&daemon.socket).unwrap(), "someone's data");
    // A stale socket (a crash left it) is still replaced.
    std::fs::remove_file(&daemon.socket).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&daemon.socket).unwrap());
    daemon.launch();
    daemon.ctl_ok(&["ping"]);
}

#[test]
fn check_config_and_reload_show_the_warnings_the_start_logs() {
    let open_client = "    - { name: anywhere, address: 0.0.0.0/0, secret: \"a-long-enough-secret\", require_message_authenticator: false }\n";
    let ldap = "directory:\n  kind: ldap\n  urls: [\"ldap://ldap.example.org\"]\n  base_dn: \"dc=example,dc=org\"\n  tls_verify: false\n";
    let mut daemon = Daemon::prepare(|c| {
        *c = c.replace("duplicate_cache_seconds: 30", "duplicate_cache_seconds: 30\n").replacen(
            "  duplicate_cache_seconds",
            &format!("{open_client}  duplicate_cache_seconds"),
            1,
        );
    });
    daemon.launch();
    assert!(daemon.log().contains("0.0.0.0/0"), "{}", daemon.log());
    let text = daemon.config_text();
    let start = text.find("directory:").unwrap();
    let end = text.find("token_types:").unwrap();
    let with_ldap = format!("{}{ldap}{}", &text[..start], &text[end..]);
    daemon.rewrite_config(&with_ldap);
    let check = radotpd(&daemon, &["--check-config"]);
    let said = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(0), "{said}");
    for needle in [
        "radius.clients[1].require_message_authenticator",
        "directory.tls_verify",
        "ldap://ldap.example.org is neither ldaps:// nor StartTLS",
    ] {
        assert!(said.contains(needle), "{needle}: {said}");
    }
    let reply = daemon.ctl_json(&["reload"]);
    let warnings = reply["warnings"].to_string();
    for needle in ["require_message_authenticator", "directory.tls_verify", "neither ldaps:// nor StartTLS"] {
        assert!(warnings.contains(needle), "{needle}: {reply}");
    }
}

/// `request` with Proxy-State attributes appended and its Message-Authenticator signed again.
fn with_proxy_states(mut request: Vec<u8>, states: &[&[u8]]) -> Vec<u8> {
    use hmac::Mac;
    use radotp::radius::packet::{ATTR_PROXY_STATE, HEADER_LEN};
    for state in states {
        request.push(ATTR_PROXY_STATE);
        request.push(state.len() as u8 + 2);
        request.extend_from_slice(state);
    }
    let len = request.len() as u16;
    request[2..4].copy_from_slice(&len.to_be_bytes());
    let ma = HEADER_LEN + 2;
    request[ma..ma + 16].fill(0);
    let mut mac = <hmac::Hmac<md5::Md5> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&request);
    let tag = mac.finalize().into_bytes();
    request[ma..ma + 16].copy_from_slice(&tag);
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_state_is_copied_into_every_reply_in_order() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    let states: [&[u8]; 2] = [b"proxy-one", b"\x00\x01two"];
    for (id, code, expected) in [(1u8, RFC_CODES[0], CODE_ACCESS_ACCEPT), (2, "000000", CODE_ACCESS_REJECT)] {
        let request = with_proxy_states(
            build_access_request(id, SECRET.as_bytes(), "alice", code.as_bytes(), None).unwrap(),
            &states,
        );
        let reply = client.exchange(&request).await.unwrap();
        assert_eq!(reply.code, expected);
        assert_eq!(reply.proxy_states, states.map(<[u8]>::to_vec), "reply {expected}");
    }
    let status = with_proxy_states(radotp::radius::packet::build_status_server(3, SECRET.as_bytes()), &states[..1]);
    assert_eq!(client.exchange(&status).await.unwrap().proxy_states, vec![b"proxy-one".to_vec()]);
}

#[test]
fn a_forced_restore_does_not_say_nothing_was_written() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let file = daemon.dir.path().join("backup.json");
    daemon.ctl_ok(&["backup", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = daemon.dir.path().join("edited.json");
    std::fs::write(&edited, text.replace("\"alice\"", "\"bob\"")).unwrap();
    let target = Daemon::prepare(|_| {});
    std::fs::copy(daemon.dir.path().join("master.key"), target.dir.path().join("master.key")).unwrap();
    std::fs::write(target.config_path(), target.config_text()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_radotpd"))
        .arg("--restore")
        .arg(&edited)
        .arg("--force")
        .arg("--config")
        .arg(target.config_path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("restored despite (--force): the backup's MAC does not verify"), "{said}");
    assert!(!said.contains("nothing was written"), "it was written: {said}");
}

/// A daemon with a few audit entries, stopped (its shutdown anchored the head).
fn stopped_daemon_with_audit() -> Daemon {
    let mut daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed\nHW1,hw-hotp,{RFC_SEED_HEX}\n"));
    daemon.ctl_ok(&["token", "assign", "HW1", "alice"]);
    daemon.ctl_ok(&["token", "show", "HW1"]);
    daemon.ctl_ok(&["token", "unassign", "HW1", "--yes"]);
    daemon.terminate();
    daemon
}

fn open_store(daemon: &Daemon) -> radotp::store::sled::SledStore {
    let path = daemon.dir.path().join("db");
    radotp::store::sled::SledStore::open(&path, 1 << 20, radotp::store::Durability::Process, None).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn cutting_the_newest_audit_entries_is_found_at_start_and_by_audit_verify() {
    use radotp::store::Store;
    let mut daemon = stopped_daemon_with_audit();
    {
        let store = open_store(&daemon);
        let newest = store.audit(&Default::default()).await.unwrap()[0].seq;
        store.cut_audit_after(newest - 2).unwrap();
        assert!(store.verify_audit().await.unwrap().iter().all(|r| r.ok), "the hash chain alone does not see it");
    }
    daemon.launch();
    assert!(daemon.log().contains("entries were cut from the log"), "{}", daemon.log());
    let out = daemon.ctl(&["audit", "verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("BROKEN") && said.contains("entries were cut"), "{said}");
    // It stays reported: the anchor is not moved over the gap.
    daemon.terminate();
    daemon.launch();
    assert_eq!(daemon.ctl(&["audit", "verify"]).status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_audit_chain_is_found_by_audit_verify() {
    use radotp::model::audit::AuditEntry;
    use radotp::store::Store;
    let mut daemon = stopped_daemon_with_audit();
    {
        let store = open_store(&daemon);
        let mut entries = store.audit(&Default::default()).await.unwrap();
        entries.reverse();
        // From the third newest on: other content, hashes computed anew, a chain that holds.
        let from = entries.len() - 3;
        let mut previous = entries[from - 1].hash.clone();
        for entry in &entries[from..] {
            let mut forged: AuditEntry = entry.clone();
            forged.user = Some("mallory".into());
            forged.prev_hash = previous.clone();
            forged.hash = forged.compute_hash();
            previous = forged.hash.clone();
            let text = serde_json::to_string(&forged).unwrap();
            store.tamper_with_audit_entry(entry.seq, |_| text).unwrap();
        }
        assert!(store.verify_audit().await.unwrap().iter().all(|r| r.ok), "the hash chain alone does not see it");
    }
    daemon.launch();
    let out = daemon.ctl(&["audit", "verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("rewritten"), "{said}");
}

#[test]
fn an_untouched_audit_log_verifies_across_restarts() {
    let mut daemon = stopped_daemon_with_audit();
    daemon.launch();
    assert_eq!(daemon.ctl_json(&["audit", "verify"])["ok"], true);
    daemon.kill();
    daemon.launch();
    assert_eq!(daemon.ctl_json(&["audit", "verify"])["ok"], true, "after a crash too");
}

/// Runs radotpctl as `uid` with primary group `gid` and exactly `groups`.
fn ctl_with_groups(daemon: &Daemon, uid: u32, gid: u32, groups: &[u32]) -> std::process::Output {
    let groups_arg = if groups.is_empty() {
        "--clear-groups".to_string()
    } else {
        format!("--groups={}", groups.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
    };
    Command::new("setpriv")
        .args([format!("--reuid={uid}"), format!("--regid={gid}"), groups_arg])
        .arg(env!("CARGO_BIN_EXE_radotpctl"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["token", "list"])
        .output()
        .expect("setpriv (util-linux)")
}

/// A user listed as a member of a group in /etc/group: (uid, primary gid, group gid).
fn member_of_a_group() -> Option<(u32, u32, u32)> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let gid = fields.get(2)?.parse::<u32>().ok()?;
        fields.get(3)?.split(',').filter(|m| !m.is_empty()).find_map(|member| {
            let user = nix::unistd::User::from_name(member).ok()??;
            (user.uid.as_raw() != 0 && user.gid.as_raw() != gid).then(|| (user.uid.as_raw(), user.gid.as_raw(), gid))
        })
    })
}

#[test]
fn admin_roles_follow_the_groups_the_connecting_process_holds() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: switching to an unprivileged uid needs root");
        return;
    }
    let member = member_of_a_group();
    let mut groups = vec!["\"65532\"".to_string()];
    if let Some((_, _, gid)) = member {
        groups.push(format!("\"{gid}\""));
    }
    let daemon = Daemon::start_with(|c| {
        *c = c.replace("operator: { uids: [65533] }", &format!("operator: {{ groups: [{}] }}", groups.join(", ")))
    });
    daemon.open_socket_to_all_users();
    // A group given to the process at run time (systemd SupplementaryGroups=),
    // which /etc/group does not list for uid 65533: it counts.
    let out = ctl_with_groups(&daemon, 65533, 65533, &[65532]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ctl_with_groups(&daemon, 65533, 65533, &[]);
    assert_eq!(out.status.code(), Some(1), "without it: {}", String::from_utf8_lossy(&out.stderr));
    // A group /etc/group lists for the user, dropped by the process: it does not count.
    match member {
        Some((uid, primary, gid)) => {
            let out = ctl_with_groups(&daemon, uid, primary, &[gid]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let out = ctl_with_groups(&daemon, uid, primary, &[]);
            assert_eq!(out.status.code(), Some(1), "dropped: {}", String::from_utf8_lossy(&out.stderr));
        }
        None => eprintln!("no user with a group in /etc/group: the dropped-group half is skipped"),
    }
}

fn open_fds(daemon: &Daemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", daemon.child_pid())).map(|d| d.count()).unwrap_or(0)
}

fn scrape(address: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn idle_metrics_connections_cannot_use_up_the_daemons_file_descriptors() {
    let daemon = Daemon::start_with(|c| c.push_str("metrics:\n  listen: \"127.0.0.1:0\"\n"));
    let log = daemon.log();
    let address = log.split("metrics on http://").nth(1).and_then(|r| r.split('/').next()).unwrap().to_string();
    let before = open_fds(&daemon);
    // 400 connections that never send a request, held open by this test.
    let idle: Vec<std::net::TcpStream> = (0..400).filter_map(|_| std::net::TcpStream::connect(&address).ok()).collect();
    assert!(idle.len() > 100, "the kernel accepted {} connections", idle.len());
    std::thread::sleep(Duration::from_millis(500));
    let during = open_fds(&daemon);
    assert!(
        during <= before + radotp::metrics::METRICS_MAX_CONNECTIONS + 8,
        "{during} file descriptors open with 400 idle metrics connections (from {before})"
    );
    daemon.ctl_ok(&["ping"]);
    // The idle ones are closed after the read timeout; a scrape is served again.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if scrape(&address).is_some_and(|body| body.contains("radotp_radius_requests_total")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no scrape was served while idle connections stayed open");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(idle);
}

/// Run by `one_uid_cannot_take_every_admin_connection` as another uid:
/// opens 20 admin connections, prints how many were refused at once, and
/// holds them until its stdin closes.
#[test]
#[ignore = "a helper run by another test, as another uid"]
fn hold_admin_connections() {
    use std::io::{BufRead, BufReader, Read};
    let Ok(path) = std::env::var("RADOTP_HOLD_SOCKET") else { return };
    let held: Vec<std::os::unix::net::UnixStream> =
        (0..20).map(|_| std::os::unix::net::UnixStream::connect(&path).unwrap()).collect();
    let mut refused = 0;
    for stream in &held {
        stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut line = String::new();
        if BufReader::new(stream).read_line(&mut line).is_ok_and(|n| n > 0) && line.contains("open already") {
            refused += 1;
        }
    }
    println!("refused {refused}");
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    drop(held);
}

#[test]
fn one_uid_cannot_take_every_admin_connection() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: switching to an unprivileged uid needs root");
        return;
    }
    let daemon =
        Daemon::start_with(|c| *c = c.replace("operator: { uids: [65533] }", "operator: { uids: [65533, 65532] }"));
    daemon.open_socket_to_all_users();
    let mut holder = Command::new("setpriv")
        .args(["--reuid=65533", "--regid=65533", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "security::hold_admin_connections", "--ignored", "--nocapture", "--test-threads=1"])
        .env("RADOTP_HOLD_SOCKET", &daemon.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    // libtest may print "test NAME ... " before the helper's own line.
    while !line.contains("refused ") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the holder ended early");
    }
    let per_uid = radotp::admin::server::MAX_CONNECTIONS_PER_UID;
    assert!(line.trim_end().ends_with(&format!("refused {}", 20 - per_uid)), "{line}");
    // While uid 65533 holds its share, another role holder is served.
    let other = daemon.ctl_as(65532, &["token", "list"]);
    assert!(other.status.success(), "{}", String::from_utf8_lossy(&other.stderr));
    let again = daemon.ctl_as(65533, &["token", "list"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("open already"), "{again:?}");
    holder.stdin.take().unwrap().write_all(b"x").unwrap();
    holder.wait().unwrap();
}
