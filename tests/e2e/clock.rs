//! A clock step under libfaketime: radotpd's wall clock moves back ten
//! minutes while it runs. Real TOTP codes are then refused as `clock_skew`,
//! not counted as failures, and the step is logged.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use radotp::model::otp::{HashAlg, totp_code};
use radotp::radius::packet::CODE_ACCESS_ACCEPT;

use crate::harness::{Daemon, RFC_SEED_HEX};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

fn code_at(unix: u64) -> String {
    totp_code(b"12345678901234567890", unix, 30, 6, HashAlg::Sha1)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clock_stepped_back_refuses_real_codes_as_clock_skew_and_locks_nothing() {
    assert!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: tests/run.sh installs Debian's faketime"
    );
    let mut daemon = Daemon::prepare(|c| *c = c.replace("max_failures: 5", "max_failures: 3"));
    let offset = daemon.dir.path().join("faketime");
    std::fs::write(&offset, "+0\n").unwrap();
    daemon.env("LD_PRELOAD", LIBFAKETIME);
    daemon.env("FAKETIME_TIMESTAMP_FILE", offset.to_str().unwrap());
    daemon.env("FAKETIME_NO_CACHE", "1");
    // Timers and the step detection keep the real monotonic clock.
    daemon.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    daemon.launch();
    daemon.import(&format!("serial,type,seed,user\nCLK1,hw-totp,{RFC_SEED_HEX},alice\n"));
    let mut client = daemon.client().await;
    let first = client.authenticate("alice", &code_at(now())).await.unwrap();
    assert_eq!(first.code, CODE_ACCESS_ACCEPT, "{}", daemon.log());

    // The server's clock steps back ten minutes; the token's clock does not.
    std::fs::write(&offset, "-600\n").unwrap();
    for step in 1..=5u64 {
        let reply = client.authenticate("alice", &code_at(now() + 30 * step)).await.unwrap();
        assert_ne!(reply.code, CODE_ACCESS_ACCEPT, "a code for another time was accepted");
    }
    let token = daemon.ctl_json(&["token", "show", "CLK1"]);
    assert_eq!(token["state"], "active", "real codes after a clock step lock nothing: {token}");
    assert_eq!(token["fail_count"], 0, "{token}");
    let audit = daemon.ctl_json(&["audit", "--limit", "10"]);
    let reasons: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|e| e["reason"].as_str()).collect();
    assert!(reasons.iter().filter(|r| **r == "clock_skew").count() >= 5, "{reasons:?}");
    // The step itself is logged (the daemon compares its clocks every 5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    while !daemon.log().contains("the system clock stepped") {
        assert!(std::time::Instant::now() < deadline, "no clock step in the log:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = daemon.log();
    assert!(
        log.contains("step_seconds=-600") || log.contains("step_seconds=-599") || log.contains("step_seconds=-601"),
        "the step's size is logged:\n{log}"
    );
}
