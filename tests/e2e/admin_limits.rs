//! Hostile admin-socket clients: request lines over the role's limit or
//! without end, clients that stall or trickle, too many connections, a
//! protocol version the daemon does not speak. Each time the daemon answers
//! (or closes) that one connection and keeps serving the others.
//!
//! The deadlines below only bound how long a test waits for something that
//! must happen; no assertion is about how fast it happens.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use radotp::admin::server::MAX_CONNECTIONS;
use radotp::admin::wire::{MAX_OPERATOR_REQUEST_BYTES, MAX_REQUEST_BYTES};

use crate::harness::Daemon;

/// How long a test waits for the daemon to answer or close (generous: the
/// daemon needs milliseconds, or `admin.request_timeout_seconds`).
const PATIENCE: Duration = Duration::from_secs(30);

fn connect(daemon: &Daemon) -> UnixStream {
    let stream = UnixStream::connect(&daemon.socket).expect("connect to the admin socket");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Reads one response line. The daemon may close with bytes of ours unread,
/// which makes the kernel report a reset after the line: read only up to it.
fn response(stream: &UnixStream) -> serde_json::Value {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("a response line before the deadline");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON response ({e}): {line:?}"))
}

/// True when the daemon closed the connection without sending anything.
fn closed_without_answer(stream: &UnixStream) -> bool {
    let mut line = String::new();
    matches!(BufReader::new(stream).read_line(&mut line), Ok(0))
}

/// Whether another client (radotpctl) gets its answer.
fn answers(daemon: &Daemon) -> bool {
    daemon.ctl_json(&["ping"])["daemon_version"].is_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_admin_line_that_never_ends_is_refused_at_the_limit_and_others_are_served_meanwhile() {
    let daemon = Daemon::start();
    let mut stream = connect(&daemon);
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0usize;
    let mut served_meanwhile = false;
    // No newline ever: the daemon must stop reading at its limit by itself.
    while stream.write_all(&chunk).is_ok() {
        sent += chunk.len();
        if !served_meanwhile && sent >= 32 << 20 {
            assert!(answers(&daemon), "another client is served during the flood");
            served_meanwhile = true;
        }
        assert!(sent <= MAX_REQUEST_BYTES + (16 << 20), "the daemon kept reading {sent} bytes, past its limit");
    }
    assert!(served_meanwhile);
    assert!(sent >= MAX_REQUEST_BYTES, "the daemon closed after only {sent} bytes");
    let reply = response(&stream);
    assert_eq!(reply["ok"], false, "{reply}");
    assert_eq!(reply["error"]["kind"], "bad_request", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert_eq!(message, format!("request larger than {MAX_REQUEST_BYTES} bytes (for the Admin role)"));
    assert!(answers(&daemon), "the daemon still serves");
    assert!(daemon.ctl_json(&["status"]).is_object());
}

#[test]
fn an_operator_line_over_1_mib_is_refused_but_the_same_line_from_an_admin_is_read() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: switching to an unprivileged uid needs root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::start(); // admin.roles.operator.uids: [65533]
    daemon.open_socket_to_all_users();
    // An import (the one request that carries a file) a little over the operator's limit.
    let csv = daemon.dir.path().join("big.csv");
    let content =
        format!("serial,type,seed\nX,hw-hotp,{}\n", "ab".repeat((MAX_OPERATOR_REQUEST_BYTES + (256 << 10)) / 2));
    std::fs::write(&csv, &content).unwrap();
    std::fs::set_permissions(&csv, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_operator = |args: &[&str]| daemon.ctl_as(65533, args);
    let out = as_operator(&["token", "import", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let expected = format!("request larger than {MAX_OPERATOR_REQUEST_BYTES} bytes (for the Operator role)");
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    // The daemon goes on serving, the operator included.
    let list = as_operator(&["token", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    // An admin's limit is higher: the same line is read and its content judged.
    let out = daemon.ctl(&["token", "import", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr(&out).contains("request larger"), "{}", stderr(&out));
    assert!(stderr(&out).contains("line 2"), "the rows were read: {}", stderr(&out));
}

#[test]
fn a_wrong_protocol_version_gets_a_clear_error_and_the_connection_stays_usable() {
    let daemon = Daemon::start();
    let mut stream = connect(&daemon);
    for version in [0, 2, 4_000_000_000u32] {
        stream.write_all(format!("{{\"version\":{version},\"op\":\"ping\"}}\n").as_bytes()).unwrap();
        let reply = response(&stream);
        assert_eq!((reply["ok"].as_bool(), reply["error"]["kind"].as_str()), (Some(false), Some("bad_request")));
        assert_eq!(
            reply["error"]["message"],
            format!("protocol version {version} is not supported; this daemon speaks 1"),
            "{reply}"
        );
        assert_eq!(reply["version"], 1, "the answer names the version the daemon speaks");
    }
    stream.write_all(b"{\"op\":\"ping\"}\n").unwrap();
    let reply = response(&stream);
    assert_eq!(reply["error"]["kind"], "bad_request", "a request without a version does not parse: {reply}");
    stream.write_all(b"{\"version\":1,\"op\":\"ping\"}\n").unwrap();
    let reply = response(&stream);
    assert_eq!((reply["ok"].as_bool(), reply["result"]["kind"].as_str()), (Some(true), Some("pong")), "{reply}");
}

#[test]
fn slow_admin_clients_are_disconnected_after_the_request_timeout_while_others_are_served() {
    let daemon = Daemon::start_with(|c| *c = c.replace("admin:\n", "admin:\n  request_timeout_seconds: 1\n"));
    // Half a request, then nothing.
    let mut stalled = connect(&daemon);
    stalled.write_all(b"{\"version\":1,\"op\":").unwrap();
    // A connection that sent one request and then idles.
    let mut idle = connect(&daemon);
    idle.write_all(b"{\"version\":1,\"op\":\"ping\"}\n").unwrap();
    assert_eq!(response(&idle)["result"]["kind"], "pong");
    // Meanwhile other clients are served.
    assert!(answers(&daemon));
    assert!(closed_without_answer(&stalled), "a stalled half line is dropped without an answer");
    assert!(closed_without_answer(&idle), "an idle connection is dropped too");
    // The timeout is for the whole line, not between bytes: a byte every 100 ms does not keep it open.
    let mut trickle = connect(&daemon);
    let deadline = Instant::now() + PATIENCE;
    let mut bytes = 0;
    while trickle.write_all(b" ").is_ok() {
        bytes += 1;
        assert!(Instant::now() < deadline, "a trickling client was still connected after {bytes} bytes");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answers(&daemon));
    assert!(daemon.log().contains("admin request not received in time"), "{}", daemon.log());
}

#[test]
fn connections_past_the_cap_are_closed_at_once_and_slots_come_back() {
    let daemon = Daemon::start(); // admin.request_timeout_seconds: 60, longer than this test
    let held: Vec<UnixStream> = (0..MAX_CONNECTIONS).map(|_| connect(&daemon)).collect();
    // Accepted in order: the daemon holds the first 64, so this one is refused.
    let extra = connect(&daemon);
    assert!(closed_without_answer(&extra), "connection {} was served", MAX_CONNECTIONS + 1);
    let out = daemon.ctl(&["ping"]);
    // Closed before or after radotpctl wrote its request: either way, no answer.
    assert!(!out.status.success(), "radotpctl while every slot is held");
    let closed = ["connection closed without a response", "Broken pipe", "Connection reset"];
    assert!(closed.iter().any(|c| stderr(&out).contains(c)), "{}", stderr(&out));
    assert!(daemon.log().contains("too many admin connections"));
    drop(held);
    // The slots are freed as the daemon sees the connections end.
    let deadline = Instant::now() + PATIENCE;
    while !daemon.ctl(&["ping"]).status.success() {
        assert!(Instant::now() < deadline, "the slots never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
}
