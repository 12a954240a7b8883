//! RADIUS integration as integrators meet it (issue #19): drops that show in
//! the journal at the default log level, NAS attributes behind a proxy,
//! PAM hosts (pam_radius_auth), and a real FreeRADIUS proxy in front.

use std::net::UdpSocket;
use std::time::Duration;

use radotp::radius::packet;

use crate::harness::{Daemon, SECRET};

/// The base config at the shipped log level (`info`), not the tests' `debug`.
fn at_default_log_level(config: &mut String) {
    *config = config.replace("log:\n  level: debug\n", "");
}

/// An Access-Request with User-Name and a (garbage) User-Password and no
/// Message-Authenticator, as pam_radius_auth 2.0 and radclient send them.
fn unsigned_access_request(identifier: u8) -> Vec<u8> {
    let mut bytes = vec![packet::CODE_ACCESS_REQUEST, identifier, 0, 0];
    let mut authenticator = [0u8; 16];
    radotp::crypto::random_bytes(&mut authenticator).unwrap();
    bytes.extend_from_slice(&authenticator);
    bytes.extend_from_slice(&[packet::ATTR_USER_NAME, 7]);
    bytes.extend_from_slice(b"alice");
    bytes.extend_from_slice(&[packet::ATTR_USER_PASSWORD, 18]);
    bytes.extend_from_slice(&[0x5a; 16]);
    let length = bytes.len() as u16;
    bytes[2..4].copy_from_slice(&length.to_be_bytes());
    bytes
}

fn warn_lines<'a>(log: &'a str, reason: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains("WARN") && l.contains("RADIUS requests dropped") && l.contains(reason)).collect()
}

/// Waits until `log` holds `wanted` warn lines for `reason` (the daemon
/// writes them from its receive loop, a moment after the datagrams leave).
fn wait_for_warnings(daemon: &Daemon, reason: &str, wanted: usize) {
    for _ in 0..100 {
        if warn_lines(&daemon.log(), reason).len() >= wanted {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn drops_are_warned_once_per_client_and_reason_at_the_default_log_level() {
    let daemon = Daemon::start_with(at_default_log_level);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A flood of unsigned requests from the client (its entry requires Message-Authenticator).
    for n in 0..200u32 {
        socket.send_to(&unsigned_access_request(n as u8), daemon.radius).unwrap();
    }
    // Requests signed with another secret.
    for n in 0..50u8 {
        let bytes = packet::build_access_request(n, b"not-the-secret", "alice", b"123456", None).unwrap();
        socket.send_to(&bytes, daemon.radius).unwrap();
    }
    // Requests from an address no client entry covers.
    let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
    for n in 0..50u8 {
        let bytes = packet::build_access_request(n, SECRET.as_bytes(), "alice", b"123456", None).unwrap();
        stranger.send_to(&bytes, daemon.radius).unwrap();
    }
    wait_for_warnings(&daemon, "unknown_client", 1);
    // The loop screens datagrams in order; a moment more for the last ones.
    std::thread::sleep(Duration::from_millis(500));
    let log = daemon.log();
    eprintln!("{}", log.lines().filter(|l| l.contains("RADIUS requests dropped")).collect::<Vec<_>>().join("\n"));
    let missing = warn_lines(&log, "missing_message_authenticator");
    assert_eq!(missing.len(), 1, "one warn line for 200 unsigned requests:\n{log}");
    assert!(missing[0].contains("client=local") && missing[0].contains("dropped=1"), "{}", missing[0]);
    assert!(
        missing[0].contains("require_message_authenticator: false or auto"),
        "the line says what to do: {}",
        missing[0]
    );
    let bad = warn_lines(&log, "bad_message_authenticator");
    assert_eq!(bad.len(), 1, "one warn line for 50 requests with another secret:\n{log}");
    assert!(bad[0].contains("shared secrets differ"), "{}", bad[0]);
    let unknown = warn_lines(&log, "unknown_client");
    assert_eq!(unknown.len(), 1, "one warn line for 50 requests from an unknown address:\n{log}");
    assert!(unknown[0].contains("127.0.0.2"), "the line names the address: {}", unknown[0]);
    // The drops are all counted in the metrics all the same.
    let status = daemon.ctl_json(&["status"]);
    let drops = &status["radius"]["drops"];
    assert_eq!(drops["missing_message_authenticator"], 200, "{status}");
    assert_eq!(drops["bad_message_authenticator"], 50, "{status}");
    assert_eq!(drops["unknown_client"], 50, "{status}");
}
