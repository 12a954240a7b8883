//! RADIUS behaviour, with the project's own client and with radclient.

use std::time::Duration;

use radotp::radius::packet::{
    self, ATTR_MESSAGE_AUTHENTICATOR, CODE_ACCESS_ACCEPT, CODE_ACCESS_REJECT, HEADER_LEN, build_access_request,
    build_status_server, verify_reply,
};
use tokio::net::UdpSocket;

use crate::harness::{Daemon, RFC_CODES, SECRET, pap_input, radclient};

const QUIET: Duration = Duration::from_millis(700);

#[tokio::test(flavor = "multi_thread")]
async fn accept_then_replay_and_older_codes_reject() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_REJECT, "replay");
    // Look-ahead within the window: counter 3 accepted, then 1 and 2 are older and reject.
    assert_eq!(client.authenticate("alice", RFC_CODES[3]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(client.authenticate("alice", RFC_CODES[1]).await.unwrap().code, CODE_ACCESS_REJECT);
    assert_eq!(client.authenticate("alice", RFC_CODES[2]).await.unwrap().code, CODE_ACCESS_REJECT);
    assert_eq!(client.authenticate("alice", RFC_CODES[4]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    let token = daemon.ctl_json(&["token", "show", "HW1"]);
    assert_eq!(token["counter"], 5);
    let audit = daemon.ctl_json(&["audit", "--limit", "20"]);
    let reasons: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["operation"] == "radius.auth")
        .map(|e| format!("{}:{}", e["result"].as_str().unwrap(), e["reason"].as_str().unwrap_or("")))
        .collect();
    assert!(reasons.contains(&"reject:replay".to_string()), "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn code_outside_the_window_rejects() {
    let daemon = Daemon::start();
    daemon.import(&format!("serial,type,seed,user,counter\nHW1,hw-hotp,{},alice,0\n", crate::harness::RFC_SEED_HEX));
    let mut client = daemon.client().await;
    // The first use has the wider auth.first_use_window; from then on the window is 10.
    assert_eq!(client.authenticate("alice", crate::harness::RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    // The window is 10 counters past the next one (1..=11); code for counter 12 is too far ahead.
    let far = radotp::model::otp::hotp_code(b"12345678901234567890", 12, 6, radotp::model::otp::HashAlg::Sha1);
    assert_eq!(client.authenticate("alice", &far).await.unwrap().code, CODE_ACCESS_REJECT);
    let near = radotp::model::otp::hotp_code(b"12345678901234567890", 11, 6, radotp::model::otp::HashAlg::Sha1);
    assert_eq!(client.authenticate("alice", &near).await.unwrap().code, CODE_ACCESS_ACCEPT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_token_accepts_its_first_code_within_the_first_use_window_only_once() {
    let daemon =
        Daemon::start_with(|c| *c = c.replace("  hotp_window: 10\n", "  hotp_window: 10\n  first_use_window: 50\n"));
    daemon.import(&format!(
        "serial,type,seed,user\nHW1,hw-hotp,{s},alice\nTT1,hw-totp,{s},bob\n",
        s = crate::harness::RFC_SEED_HEX
    ));
    let code =
        |counter| radotp::model::otp::hotp_code(b"12345678901234567890", counter, 6, radotp::model::otp::HashAlg::Sha1);
    let mut client = daemon.client().await;
    // The button was pressed 40 times before the token was handed out: still accepted the first time.
    assert_eq!(client.authenticate("alice", &code(51)).await.unwrap().code, CODE_ACCESS_REJECT, "past 50");
    assert_eq!(client.authenticate("alice", &code(40)).await.unwrap().code, CODE_ACCESS_ACCEPT);
    // From now on the normal window (41..=51).
    assert_eq!(client.authenticate("alice", &code(60)).await.unwrap().code, CODE_ACCESS_REJECT);
    assert_eq!(client.authenticate("alice", &code(51)).await.unwrap().code, CODE_ACCESS_ACCEPT);
    // TOTP: a clock 5 steps ahead is accepted for the first code (default 10 steps), then not.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let at = |steps: u64| {
        radotp::model::otp::totp_code(
            b"12345678901234567890",
            now + steps * 30,
            30,
            6,
            radotp::model::otp::HashAlg::Sha1,
        )
    };
    assert_eq!(client.authenticate("bob", &at(5)).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(client.authenticate("bob", &at(8)).await.unwrap().code, CODE_ACCESS_REJECT, "normal ±1 window now");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_user_and_tokenless_user_get_the_same_reject_as_a_wrong_otp() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    let wrong = client.authenticate("alice", "000000").await.unwrap();
    let unknown = client.authenticate("mallory", RFC_CODES[0]).await.unwrap();
    let tokenless = client.authenticate("bob", RFC_CODES[0]).await.unwrap();
    for reply in [&wrong, &unknown, &tokenless] {
        assert_eq!(reply.code, CODE_ACCESS_REJECT);
        assert_eq!(reply.reply_message, None);
        assert_eq!(reply.state, None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn any_of_several_tokens_accepts() {
    let daemon = Daemon::start();
    let seed2 = "3132333435363738393031323334353637383931";
    daemon.import(&format!(
        "serial,type,seed,user\nHW1,hw-hotp,{},alice\nHW2,hw-hotp,{seed2},alice\n",
        crate::harness::RFC_SEED_HEX
    ));
    let mut client = daemon.client().await;
    let second = radotp::model::otp::hotp_code(b"12345678901234567891", 0, 6, radotp::model::otp::HashAlg::Sha1);
    assert_eq!(client.authenticate("alice", &second).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(daemon.ctl_json(&["token", "show", "HW2"])["counter"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn totp_accepts_the_current_code_once() {
    let daemon = Daemon::start();
    let seed = "3132333435363738393031323334353637383930";
    daemon.import(&format!("serial,type,seed,user\nTT1,hw-totp,{seed},carol\n"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let code = radotp::model::otp::totp_code(b"12345678901234567890", now, 30, 6, radotp::model::otp::HashAlg::Sha1);
    let mut client = daemon.client().await;
    assert_eq!(client.authenticate("carol", &code).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(client.authenticate("carol", &code).await.unwrap().code, CODE_ACCESS_REJECT);
    let token = daemon.ctl_json(&["token", "show", "TT1"]);
    assert!(token["last_step"].as_u64().unwrap() >= now / 30 - 1, "{token}");
    assert!(token.get("counter").is_none(), "TOTP tokens show last_step, not counter: {token}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_identical_otps_give_exactly_one_accept() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let mut handles = Vec::new();
    for _ in 0..32 {
        let mut client = daemon.client().await;
        handles.push(tokio::spawn(async move { client.authenticate("alice", RFC_CODES[0]).await.unwrap().code }));
    }
    let mut accepts = 0;
    for handle in handles {
        if handle.await.unwrap() == CODE_ACCESS_ACCEPT {
            accepts += 1;
        }
    }
    assert_eq!(accepts, 1, "exactly one of 32 concurrent identical OTPs may be accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn retransmission_gets_the_same_reply_bytes_even_from_another_port() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let request = build_access_request(42, SECRET.as_bytes(), "alice", RFC_CODES[0].as_bytes(), None).unwrap();
    let first = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let second = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 4096];
    let mut replies = Vec::new();
    for socket in [&first, &first, &second] {
        socket.send_to(&request, daemon.radius).await.unwrap();
        let (n, _) = tokio::time::timeout(Duration::from_secs(3), socket.recv_from(&mut buf)).await.unwrap().unwrap();
        replies.push(buf[..n].to_vec());
    }
    assert_eq!(verify_reply(&replies[0], &request, SECRET.as_bytes()).unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(replies[0], replies[1], "retransmission answered from the cache");
    assert_eq!(replies[0], replies[2], "retransmission from a new source port answered from the cache");
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["counter"], 1, "the OTP was checked once");
    let status = daemon.ctl_json(&["status"]);
    assert_eq!(status["radius"]["retransmissions_answered"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn radclient_accepts_rejects_retransmits_and_checks_status() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let server = daemon.radius.to_string();
    let out = radclient(&["-x", "-r", "3", "-t", "2", &server, "auth", SECRET], &pap_input("alice", RFC_CODES[0]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Received Access-Accept"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = radclient(&["-x", &server, "auth", SECRET], &pap_input("alice", RFC_CODES[0]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Received Access-Reject"), "replay through radclient");
    let out = radclient(&["-x", &server, "auth", SECRET], &pap_input("alice", "123456"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Received Access-Reject"));
    let out = radclient(&["-x", &server, "status", SECRET], "Message-Authenticator = 0x00\n");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Received Access-Accept"), "Status-Server");
    // Many requests in flight at once (-p), each a separate request: all answered.
    let mut input = String::new();
    for _ in 0..50 {
        input.push_str(&pap_input("bob", "111111"));
        input.push('\n');
    }
    let out = radclient(&["-c", "1", "-p", "25", "-q", "-s", &server, "auth", SECRET], &input);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("Rejected") && summary.contains("50"), "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_server_is_answered_with_message_authenticator_first() {
    let daemon = Daemon::start();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let request = build_status_server(9, SECRET.as_bytes());
    socket.send_to(&request, daemon.radius).await.unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), socket.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!(buf[HEADER_LEN], ATTR_MESSAGE_AUTHENTICATOR);
    assert_eq!(verify_reply(&buf[..n], &request, SECRET.as_bytes()).unwrap().code, CODE_ACCESS_ACCEPT);
}

async fn silent(daemon: &Daemon, socket: &UdpSocket, bytes: &[u8]) -> bool {
    socket.send_to(bytes, daemon.radius).await.unwrap();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(QUIET, socket.recv_from(&mut buf)).await.is_err()
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_client_is_dropped_silently() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    // 127.0.0.2 is loopback too, but not a configured client.
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let request = build_access_request(1, SECRET.as_bytes(), "alice", RFC_CODES[0].as_bytes(), None).unwrap();
    assert!(silent(&daemon, &stranger, &request).await, "an unknown client got an answer");
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["counter"], 0);
    assert_eq!(daemon.ctl_json(&["status"])["radius"]["drops"]["unknown_client"], 1);
}

/// Builds a request without Message-Authenticator (as old NAS do).
fn request_without_ma(id: u8, user: &str, password: &str, proxy_state: bool) -> Vec<u8> {
    let mut bytes = build_access_request(id, SECRET.as_bytes(), user, password.as_bytes(), None).unwrap();
    // Message-Authenticator is the first attribute: cut it out and fix Length.
    assert_eq!(bytes[HEADER_LEN], ATTR_MESSAGE_AUTHENTICATOR);
    bytes.drain(HEADER_LEN..HEADER_LEN + 18);
    if proxy_state {
        bytes.extend_from_slice(&[packet::ATTR_PROXY_STATE, 6, 1, 2, 3, 4]);
    }
    let len = bytes.len() as u16;
    bytes[2..4].copy_from_slice(&len.to_be_bytes());
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_wrong_message_authenticator_is_dropped() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert!(silent(&daemon, &socket, &request_without_ma(1, "alice", RFC_CODES[0], false)).await, "missing");
    let mut wrong = build_access_request(2, SECRET.as_bytes(), "alice", RFC_CODES[0].as_bytes(), None).unwrap();
    wrong[HEADER_LEN + 2] ^= 0xff;
    assert!(silent(&daemon, &socket, &wrong).await, "wrong Message-Authenticator");
    let other_secret = build_access_request(3, b"not-the-secret", "alice", RFC_CODES[0].as_bytes(), None).unwrap();
    assert!(silent(&daemon, &socket, &other_secret).await, "signed with another secret");
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["counter"], 0, "no dropped packet reached the OTP check");
    let drops = daemon.ctl_json(&["status"])["radius"]["drops"].clone();
    assert_eq!(drops["missing_message_authenticator"], 1, "{drops}");
    assert_eq!(drops["bad_message_authenticator"], 2, "{drops}");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_that_does_not_require_message_authenticator() {
    let daemon = Daemon::start_with(|c| {
        *c = c.replace(
            "{ name: local, address: 127.0.0.1/32, secret: \"testing123\" }",
            "{ name: local, address: 127.0.0.1/32, secret: \"testing123\", require_message_authenticator: false }",
        )
    });
    daemon.rfc_token("HW1", "alice");
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Proxy-State without Message-Authenticator: the BlastRADIUS pattern, always dropped.
    assert!(silent(&daemon, &socket, &request_without_ma(1, "alice", RFC_CODES[0], true)).await);
    let request = request_without_ma(2, "alice", RFC_CODES[0], false);
    socket.send_to(&request, daemon.radius).await.unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), socket.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!(verify_reply(&buf[..n], &request, SECRET.as_bytes()).unwrap().code, CODE_ACCESS_ACCEPT);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_packets_are_dropped_and_the_daemon_keeps_answering() {
    let daemon = Daemon::start();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let good = build_access_request(7, SECRET.as_bytes(), "alice", b"123456", None).unwrap();
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![1],
        good[..19].to_vec(),             // truncated header
        good[..good.len() - 3].to_vec(), // truncated body: Length says more
    ];
    let mut long_length = good.clone();
    long_length[2..4].copy_from_slice(&5000u16.to_be_bytes());
    cases.push(long_length);
    let mut short_length = good.clone();
    short_length[2..4].copy_from_slice(&10u16.to_be_bytes());
    cases.push(short_length);
    let mut bad_attr = good.clone();
    bad_attr[HEADER_LEN + 1] = 0;
    cases.push(bad_attr);
    let mut overrun_attr = good.clone();
    overrun_attr[HEADER_LEN + 1] = 255;
    cases.push(overrun_attr);
    let mut accounting = good.clone();
    accounting[0] = 4;
    cases.push(accounting);
    let mut seed = 0x9e37_79b9u32;
    for size in [20usize, 64, 200, 4096, 9000] {
        cases.push(
            (0..size)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect(),
        );
    }
    for case in &cases {
        socket.send_to(case, daemon.radius).await.unwrap();
    }
    let mut buf = [0u8; 4096];
    assert!(tokio::time::timeout(QUIET, socket.recv_from(&mut buf)).await.is_err(), "a malformed packet was answered");
    let mut client = daemon.client().await;
    assert_eq!(client.status_server().await.unwrap().code, CODE_ACCESS_ACCEPT, "daemon still answers");
    assert!(daemon.ctl_json(&["status"])["radius"]["drops"]["malformed"].as_u64().unwrap() >= 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_lock_the_token_and_a_success_does_not_reset_the_count() {
    let daemon = Daemon::start(); // max_failures: 5
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    for _ in 0..4 {
        assert_eq!(client.authenticate("alice", "000000").await.unwrap().code, CODE_ACCESS_REJECT);
    }
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["fail_count"], 4);
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(
        daemon.ctl_json(&["token", "show", "HW1"])["fail_count"],
        4,
        "a success does not give an attacker fresh guesses"
    );
    assert_eq!(client.authenticate("alice", "000000").await.unwrap().code, CODE_ACCESS_REJECT);
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["state"], "locked", "the 5th failure locks");
    for _ in 0..4 {
        client.authenticate("alice", "000000").await.unwrap();
    }
    let token = daemon.ctl_json(&["token", "show", "HW1"]);
    assert_eq!(token["state"], "locked", "{token}");
    assert_eq!(
        client.authenticate("alice", RFC_CODES[1]).await.unwrap().code,
        CODE_ACCESS_REJECT,
        "locked rejects a valid OTP"
    );
    let locked = daemon.ctl_json(&["token", "list", "--state", "locked"]);
    assert_eq!(locked.as_array().unwrap().len(), 1);
    // With one token the audit names it, for wrong codes and for the refusals while locked.
    let audit = daemon.ctl_json(&["audit", "--limit", "0", "--user", "alice"]);
    for reason in ["wrong_otp", "no_usable_token"] {
        let entry = audit.as_array().unwrap().iter().find(|e| e["reason"] == reason).expect(reason);
        assert_eq!(entry["serial"], "HW1", "{entry}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_of_one_user_do_not_touch_another() {
    let daemon = Daemon::start();
    daemon.import(&format!(
        "serial,type,seed,user\nHW1,hw-hotp,{s},alice\nHW2,hw-hotp,{s},bob\n",
        s = crate::harness::RFC_SEED_HEX
    ));
    let mut client = daemon.client().await;
    for _ in 0..7 {
        client.authenticate("alice", "000000").await.unwrap();
    }
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["state"], "locked");
    let bob = daemon.ctl_json(&["token", "show", "HW2"]);
    assert_eq!((bob["state"].as_str(), bob["fail_count"].as_u64()), (Some("active"), Some(0)));
    assert_eq!(client.authenticate("bob", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
}

#[tokio::test(flavor = "multi_thread")]
async fn chap_requests_get_a_reject_instead_of_silence() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    // A signed Access-Request with CHAP-Password (3) instead of User-Password.
    let mut request = build_access_request(5, SECRET.as_bytes(), "alice", b"x", None).unwrap();
    let at = HEADER_LEN + 18 + 2 + "alice".len();
    assert_eq!(request[at], packet::ATTR_USER_PASSWORD);
    request[at] = 3;
    request[at + 1] = 18;
    let len = (at + 18) as u16;
    request.truncate(at + 18);
    request[2..4].copy_from_slice(&len.to_be_bytes());
    // Re-sign the Message-Authenticator over the edited packet.
    request[HEADER_LEN + 2..HEADER_LEN + 18].fill(0);
    use hmac::Mac;
    let mut mac = <hmac::Hmac<md5::Md5> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&request);
    let sig = mac.finalize().into_bytes();
    request[HEADER_LEN + 2..HEADER_LEN + 18].copy_from_slice(&sig);
    let mut client = daemon.client().await;
    let reply = client.exchange(&request).await.unwrap();
    assert_eq!(reply.code, CODE_ACCESS_REJECT);
    assert_eq!(reply.reply_message.as_deref(), Some("only PAP is supported"));
}

/// A lenient client: one that does not require Message-Authenticator.
fn lenient(config: &mut String) {
    *config = config.replace(
        "{ name: local, address: 127.0.0.1/32, secret: \"testing123\" }",
        "{ name: local, address: 127.0.0.1/32, secret: \"testing123\", require_message_authenticator: false }",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn status_server_without_message_authenticator_is_dropped_even_for_a_lenient_client() {
    let daemon = Daemon::start_with(lenient);
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // RFC 5997: Status-Server always carries Message-Authenticator. Here: just the header.
    let mut bare = vec![packet::CODE_STATUS_SERVER, 9, 0, HEADER_LEN as u8];
    bare.extend_from_slice(b"0123456789abcdef");
    assert!(silent(&daemon, &socket, &bare).await, "a Status-Server without Message-Authenticator was answered");
    let drops = daemon.ctl_json(&["status"])["radius"]["drops"].clone();
    assert_eq!(drops["missing_message_authenticator"], 1, "{drops}");
    // The same client's signed Status-Server is answered.
    let mut client = daemon.client().await;
    assert_eq!(client.status_server().await.unwrap().code, CODE_ACCESS_ACCEPT);
}

/// A signed Access-Request for "alice" whose User-Name value is replaced by
/// `name` (of the same length), re-signed.
fn request_with_user_name_bytes(id: u8, name: &[u8; 5], password: &str) -> Vec<u8> {
    let mut request = build_access_request(id, SECRET.as_bytes(), "alice", password.as_bytes(), None).unwrap();
    let at = HEADER_LEN + 18;
    assert_eq!(&request[at..at + 7], b"\x01\x07alice");
    request[at + 2..at + 7].copy_from_slice(name);
    packet::sign_request_in_place(&mut request, SECRET.as_bytes());
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_name_that_is_not_utf8_gets_the_pap_only_reject_and_consumes_nothing() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    // "alic" followed by a lone 0xE9 (Latin-1 é): not UTF-8. The OTP is alice's valid one.
    for name in [b"alic\xe9", b"\xff\xfe\xfd\xfc\xfb", b"al\xc3\x28e"] {
        let request = request_with_user_name_bytes(client_id(&name[..]), name, RFC_CODES[0]);
        let reply = client.exchange(&request).await.unwrap();
        assert_eq!(reply.code, CODE_ACCESS_REJECT, "{name:?}");
        assert_eq!(reply.reply_message.as_deref(), Some("only PAP is supported"), "{name:?}");
    }
    let status = daemon.ctl_json(&["status"]);
    assert_eq!(status["radius"]["reject_reasons"]["unsupported_request"], 3, "{status}");
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["counter"], 0, "no OTP was checked");
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
}

/// A distinct identifier per test packet, so that none is taken for a retransmission.
fn client_id(bytes: &[u8]) -> u8 {
    bytes.iter().fold(101u8, |a, b| a.wrapping_mul(31).wrapping_add(*b))
}

/// An Access-Request for "alice" with a User-Password attribute of `hidden`
/// (already hidden bytes), optionally a second Message-Authenticator, signed.
fn raw_request(id: u8, hidden: &[u8], extra_attributes: &[u8]) -> Vec<u8> {
    let mut bytes = vec![packet::CODE_ACCESS_REQUEST, id, 0, 0];
    bytes.extend_from_slice(b"fedcba9876543210");
    bytes.extend_from_slice(&[ATTR_MESSAGE_AUTHENTICATOR, 18]);
    bytes.extend_from_slice(&[0; 16]);
    bytes.extend_from_slice(b"\x01\x07alice");
    bytes.extend_from_slice(&[packet::ATTR_USER_PASSWORD, (hidden.len() + 2) as u8]);
    bytes.extend_from_slice(hidden);
    bytes.extend_from_slice(extra_attributes);
    let len = bytes.len() as u16;
    bytes[2..4].copy_from_slice(&len.to_be_bytes());
    // HMAC-MD5 over the packet with every Message-Authenticator zero, into the first one.
    use hmac::Mac;
    let mut mac = <hmac::Hmac<md5::Md5> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&bytes);
    let sig = mac.finalize().into_bytes();
    bytes[HEADER_LEN + 2..HEADER_LEN + 18].copy_from_slice(&sig);
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overlong_user_password_and_a_doubled_or_short_message_authenticator_are_dropped_as_malformed() {
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let drops = || daemon.ctl_json(&["status"])["radius"]["drops"].clone();
    // The largest User-Password RFC 2865 allows (128 bytes) is decoded, checked and answered.
    let request = raw_request(1, &[0x5a; 128], &[]);
    socket.send_to(&request, daemon.radius).await.unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), socket.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!(verify_reply(&buf[..n], &request, SECRET.as_bytes()).unwrap().code, CODE_ACCESS_REJECT);
    // 144 bytes cannot be decoded: dropped, not answered, not counted against the token.
    assert!(silent(&daemon, &socket, &raw_request(2, &[0x5a; 144], &[])).await, "a 144-byte User-Password");
    assert_eq!(drops()["malformed"], 1, "{}", drops());
    // A second Message-Authenticator; the first one verifies over the packet as sent.
    let second = [&[ATTR_MESSAGE_AUTHENTICATOR, 18][..], &[0; 16]].concat();
    assert!(silent(&daemon, &socket, &raw_request(3, &[0x5a; 16], &second)).await, "two Message-Authenticators");
    assert_eq!(drops()["malformed"], 2, "{}", drops());
    // A Message-Authenticator of 10 bytes (after a valid one of 16).
    let short = [&[ATTR_MESSAGE_AUTHENTICATOR, 12][..], &[0; 10]].concat();
    assert!(silent(&daemon, &socket, &raw_request(4, &[0x5a; 16], &short)).await, "a 10-byte Message-Authenticator");
    let drops = drops();
    assert_eq!(drops["malformed"], 3, "{drops}");
    assert!(drops["bad_message_authenticator"].as_u64().unwrap_or(0) == 0, "dropped for their shape: {drops}");
    let token = daemon.ctl_json(&["token", "show", "HW1"]);
    assert_eq!(token["fail_count"], 1, "only the 128-byte password was checked: {token}");
    let mut client = daemon.client().await;
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_parallel_wrong_codes_checks_at_most_max_failures_plus_workers_minus_one() {
    // The bound depends on the daemon's worker threads: fix their number.
    const WORKERS: u64 = 4;
    const MAX_FAILURES: u64 = 10;
    const BURST: usize = 200;
    let mut daemon = Daemon::prepare(|c| *c = c.replace("max_failures: 5", &format!("max_failures: {MAX_FAILURES}")));
    daemon.env("TOKIO_WORKER_THREADS", &WORKERS.to_string());
    daemon.launch();
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    // A used token: the normal window (counters 1 to 11) applies, not the first-use one.
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    let valid: std::collections::HashSet<String> = (0..=200)
        .map(|c| radotp::model::otp::hotp_code(b"12345678901234567890", c, 6, radotp::model::otp::HashAlg::Sha1))
        .collect();
    let wrong: Vec<String> =
        (0..).map(|i| format!("{:06}", 100_003 + i * 4_099)).filter(|c| !valid.contains(c)).take(BURST).collect();
    // Every request ready on its own socket first, then all sent at once.
    let mut clients = Vec::new();
    for _ in 0..BURST {
        let mut c = daemon.client().await;
        c.timeout = Duration::from_secs(10);
        clients.push(c);
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(BURST));
    let mut tasks = Vec::new();
    for (mut c, code) in clients.into_iter().zip(wrong) {
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            c.authenticate("alice", &code).await.map(|r| r.code)
        }));
    }
    for task in tasks {
        // An answer may be missing (overload drop); an Accept never comes.
        if let Ok(code) = task.await.unwrap() {
            assert_eq!(code, CODE_ACCESS_REJECT);
        }
    }
    let token = daemon.ctl_json(&["token", "show", "HW1"]);
    assert_eq!(
        (token["state"].as_str(), token["fail_count"].as_u64()),
        (Some("locked"), Some(MAX_FAILURES)),
        "{token}"
    );
    let checked = daemon.ctl_json(&["status"])["radius"]["reject_reasons"]["wrong_otp"].as_u64().unwrap();
    assert!(
        (MAX_FAILURES..=MAX_FAILURES + WORKERS - 1).contains(&checked),
        "{checked} wrong codes were checked; at most {} may be",
        MAX_FAILURES + WORKERS - 1
    );
    let audit = daemon.ctl_json(&["audit", "--limit", "0", "--user", "alice"]);
    let audited = audit.as_array().unwrap().iter().filter(|e| e["reason"] == "wrong_otp").count() as u64;
    assert_eq!(audited, checked, "the audit log and the metrics agree");
    let reasons = daemon.ctl_json(&["status"])["radius"]["reject_reasons"].clone();
    eprintln!("{BURST} parallel wrong codes, {WORKERS} worker threads: {checked} checked; {reasons}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_lockout_seconds_token_show_says_when_the_lock_ends() {
    // max_failures: 5 (harness); a lock of an hour. Its end is checked by
    // the unit tests with a set clock (src/service.rs), not by waiting here.
    let daemon = Daemon::start_with(|config| *config = config.replace("auth:\n", "auth:\n  lockout_seconds: 3600\n"));
    daemon.rfc_token("HW1", "alice");
    let mut client = daemon.client().await;
    for _ in 0..5 {
        assert_eq!(client.authenticate("alice", "000000").await.unwrap().code, CODE_ACCESS_REJECT);
    }
    let token = daemon.ctl_json(&["token", "show", "HW1"]);
    assert_eq!(token["state"], "locked", "{token}");
    let locked_at = token["locked_at"].as_u64().expect("locked_at");
    assert_eq!(token["unlocks_at"].as_u64(), Some(locked_at + 3600), "{token}");
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_REJECT);
    let text = daemon.ctl_ok(&["token", "show", "HW1"]);
    let when = radotp::timefmt::format_utc(locked_at + 3600);
    assert!(text.contains(&format!("unlocks by itself at {when}")), "{text}");
    // An operator can still end it at once.
    daemon.ctl_ok(&["token", "unlock", "HW1"]);
    let token = daemon.ctl_json(&["token", "show", "HW1"]);
    assert!(token.get("locked_at").is_none() && token.get("unlocks_at").is_none(), "{token}");
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
}
