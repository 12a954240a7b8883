//! Floods: garbage, unknown clients, valid-looking requests. The daemon keeps
//! answering, drops what it must, and its memory stays bounded.

use std::time::Duration;

use radotp::radius::packet::{CODE_ACCESS_ACCEPT, build_access_request};
use tokio::net::UdpSocket;

use crate::harness::{Daemon, RFC_CODES, SECRET};

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100000_packet_flood_leaves_the_daemon_answering_with_bounded_memory() {
    // Defaults: max_in_flight 1024, duplicate cache 65,536 entries.
    let daemon = Daemon::start();
    daemon.rfc_token("HW1", "alice");
    let pid = daemon.child_pid();
    let before = rss_kib(pid, "VmRSS:");
    let known = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid = build_access_request(1, SECRET.as_bytes(), "mallory", b"000000", None).unwrap();
    let mut sent = 0u32;
    for i in 0..100_000u32 {
        let packet: Vec<u8> = match i % 10 {
            // garbage of random sizes
            0..=3 => (0..(random() % 300) as usize).map(|_| random() as u8).collect(),
            // well-formed requests from an unknown address
            4..=6 => valid.clone(),
            // valid-looking requests: correct signature, many users and ids, wrong OTPs
            _ => {
                let user = format!("user{}", random() % 5000);
                build_access_request((i % 256) as u8, SECRET.as_bytes(), &user, b"000000", None).unwrap()
            }
        };
        let socket = if (4..=6).contains(&(i % 10)) { &stranger } else { &known };
        if socket.send_to(&packet, daemon.radius).await.is_ok() {
            sent += 1;
        }
        if i % 2000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(sent, 100_000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = rss_kib(pid, "VmHWM:");
    // The backlog drains (on a loaded CI machine that takes a while); then it serves as before.
    let mut client = daemon.client().await;
    client.timeout = Duration::from_secs(1);
    let mut answered = false;
    for _ in 0..30 {
        if client.status_server().await.is_ok() {
            answered = true;
            break;
        }
    }
    assert!(answered, "the daemon stopped answering after the flood");
    client.timeout = Duration::from_secs(10);
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT, "still serving");
    let status = daemon.ctl_json(&["status"]);
    let drops = &status["radius"]["drops"];
    // The kernel drops what does not fit the socket buffer; of what arrived,
    // each kind was handled as it should be.
    assert!(drops["unknown_client"].as_u64().unwrap() > 1000, "{status}");
    assert!(drops["malformed"].as_u64().unwrap() > 1000, "{status}");
    assert!(status["radius"]["reject_reasons"]["no_token"].as_u64().unwrap() > 1000, "{status}");
    eprintln!(
        "flood: RSS before {} KiB, peak {} KiB; status {}",
        before,
        peak,
        serde_json::to_string(&status["radius"]).unwrap()
    );
    // A loose bound: a leak per packet would show as hundreds of MiB here.
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB during the flood");
    assert_eq!(daemon.ctl_json(&["token", "show", "HW1"])["state"], "active", "nobody else's token was locked");
}
