//! A streaming standby (`pg_basebackup -R`) promoted while two nodes are
//! under load, with a multi-host URL: the nodes find the new primary by
//! themselves and keep authenticating, and no code is accepted twice.
//!
//! The primary replicates synchronously (`synchronous_standby_names`), as
//! docs/high-availability.md asks: an Accept is acknowledged only once the
//! standby holds its counter, so a failover cannot bring back a used code.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use radotp::model::otp::{HashAlg, hotp_code};
use radotp::radius::packet::CODE_ACCESS_ACCEPT;

use crate::cluster::Cluster;
use crate::harness::Daemon;
use crate::nodes::two_nodes;

const RFC_SEED: &[u8] = b"12345678901234567890";

/// Sends the code to both nodes at once; how many accepted it.
async fn both_try(a: &Daemon, b: &Daemon, code: &str) -> usize {
    let mut ca = a.client().await;
    let mut cb = b.client().await;
    ca.timeout = Duration::from_secs(3);
    cb.timeout = Duration::from_secs(3);
    let (ra, rb) = tokio::join!(ca.authenticate("alice", code), cb.authenticate("alice", code));
    [ra, rb].into_iter().filter(|r| r.as_ref().is_ok_and(|reply| reply.code == CODE_ACCESS_ACCEPT)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_standby_takes_over_and_no_code_is_accepted_twice() {
    let mut primary = Cluster::start();
    primary.sql("postgres", "CREATE DATABASE ha");
    let standby = primary.standby();
    primary.sql("postgres", "ALTER SYSTEM SET synchronous_standby_names = '*'");
    primary.sql("postgres", "SELECT pg_reload_conf()");
    let url = format!(
        "postgresql://postgres@127.0.0.1:{},127.0.0.1:{}/ha?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let (a, b) = two_nodes(&url, "");
    a.rfc_token("HW1", "alice");

    let mut accepted: HashMap<u64, usize> = HashMap::new();
    let mut failed_over_at = None;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut counter = 0u64;
    while counter < 30 {
        assert!(Instant::now() < deadline, "the nodes did not recover after the failover; accepted: {accepted:?}");
        if counter == 10 && failed_over_at.is_none() {
            primary.stop();
            standby.promote();
            failed_over_at = Some(counter);
        }
        let code = hotp_code(RFC_SEED, counter, 6, HashAlg::Sha1);
        let accepts = both_try(&a, &b, &code).await;
        *accepted.entry(counter).or_default() += accepts;
        assert!(accepted[&counter] <= 1, "code {counter} accepted {} times", accepted[&counter]);
        if accepts == 1 {
            counter += 1;
        } else {
            // Not accepted (the store was switching over): the same code again.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(accepted.values().all(|&n| n == 1), "{accepted:?}");
    // Nothing acknowledged was lost: the counter on the new primary is the last one accepted + 1.
    let token = b.ctl_json(&["token", "show", "HW1"]);
    assert_eq!(token["counter"], 30, "{token}");
    let verify = a.ctl_json(&["audit", "verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
}
