//! Crash consistency: SIGKILL under load, many times; an accepted OTP is
//! never accepted again, every restart opens the store, the audit chain holds,
//! and every Accept that left the daemon has its audit entry.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use radotp::model::otp::{HashAlg, hotp_code};
use radotp::radius::packet::CODE_ACCESS_ACCEPT;

use crate::harness::Daemon;

const USERS: [&str; 3] = ["alice", "bob", "carol"];

fn seed_of(user: &str) -> Vec<u8> {
    format!("crash-test-seed-{user:>8}").into_bytes()
}

/// The `radius.auth` accept entries in the audit log, per user (in `USERS` order).
fn audited_accepts(daemon: &Daemon) -> Vec<usize> {
    let audit = daemon.ctl_json(&["audit", "--limit", "0"]);
    let entries = audit.as_array().expect("audit entries");
    USERS
        .iter()
        .map(|user| {
            entries
                .iter()
                .filter(|e| e["operation"] == "radius.auth" && e["result"] == "accept" && e["user"] == *user)
                .count()
        })
        .collect()
}

fn received_accepts(accepted: &Mutex<HashSet<(String, u64)>>) -> Vec<usize> {
    let accepted = accepted.lock().unwrap();
    USERS.iter().map(|user| accepted.iter().filter(|(u, _)| u == user).count()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_under_load_never_lets_an_otp_through_twice() {
    let mut daemon = Daemon::start();
    let mut csv = String::from("serial,type,seed,user\n");
    for user in USERS {
        csv.push_str(&format!("T-{user},hw-hotp,{},{user}\n", data_encoding::HEXLOWER.encode(&seed_of(user))));
    }
    daemon.import(&csv);
    // Every (user, counter) the daemon ever accepted, from the generator's own record.
    let accepted: Arc<Mutex<HashSet<(String, u64)>>> = Arc::default();
    let mut next: Vec<u64> = vec![0; USERS.len()];
    let (mut audited_before, mut received_before) = (vec![0; USERS.len()], vec![0; USERS.len()]);
    let mut pseudo_random = 0x2545_f491u32;
    for round in 0..22 {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut workers = Vec::new();
        for (i, user) in USERS.iter().enumerate() {
            let (stop, accepted) = (stop.clone(), accepted.clone());
            let mut client = daemon.client().await;
            client.timeout = Duration::from_millis(300);
            let start = next[i];
            workers.push(tokio::spawn(async move {
                let seed = seed_of(user);
                // Replay the last few counters first: they must all be rejected if accepted before.
                let mut counter = start.saturating_sub(3);
                let mut double = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let code = hotp_code(&seed, counter, 6, HashAlg::Sha1);
                    match client.authenticate(user, &code).await {
                        Ok(reply) if reply.code == CODE_ACCESS_ACCEPT => {
                            if !accepted.lock().unwrap().insert((user.to_string(), counter)) {
                                double.push(counter);
                            }
                            counter += 1;
                        }
                        Ok(_) => counter += 1,
                        // No answer: the daemon died; this OTP is in doubt and is retried next round.
                        Err(_) => break,
                    }
                }
                (counter, double)
            }));
        }
        pseudo_random ^= pseudo_random << 13;
        pseudo_random ^= pseudo_random >> 17;
        pseudo_random ^= pseudo_random << 5;
        tokio::time::sleep(Duration::from_millis(50 + u64::from(pseudo_random % 250))).await;
        daemon.kill();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for (i, worker) in workers.into_iter().enumerate() {
            let (counter, double) = worker.await.unwrap();
            assert!(double.is_empty(), "round {round}: {} had OTPs accepted twice: {double:?}", USERS[i]);
            next[i] = counter;
        }
        daemon.launch(); // panics if the store does not open
        // An Accept's entry is written before the flush that lets the Accept
        // leave: each Accept received this round has its entry. At most one
        // more per user: the request in flight at the kill (or given up on
        // after the client's timeout), flushed but never received.
        let (audited, received) = (audited_accepts(&daemon), received_accepts(&accepted));
        for i in 0..USERS.len() {
            let new_entries = audited[i].checked_sub(audited_before[i]).expect("accept entries disappeared");
            let new_accepts = received[i] - received_before[i];
            assert!(
                (new_accepts..=new_accepts + 1).contains(&new_entries),
                "round {round}: {} received {new_accepts} Accepts, the audit gained {new_entries} accept entries",
                USERS[i]
            );
        }
        (audited_before, received_before) = (audited, received);
    }
    let accepted = accepted.lock().unwrap().len();
    assert!(accepted > 50, "the load produced too few accepts to mean anything: {accepted}");
    let chain = daemon.ctl_json(&["audit", "verify"]);
    assert_eq!(chain["ok"], true, "{chain}");
}
