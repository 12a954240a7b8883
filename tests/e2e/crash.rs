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
    kill_under_load_many_times(Daemon::start(), 22).await;
}

/// The same with a checkpoint every 10 ms, so that many kills land in the
/// middle of one (journal switched, sled half written or not flushed, the
/// journal file left not yet emptied), and with `durability: full`.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_checkpoints_never_lets_an_otp_through_twice() {
    let daemon = Daemon::start_with(|config| {
        *config = config.replace("store:\n", "store:\n  checkpoint_ms: 10\n  durability: full\n");
    });
    kill_under_load_many_times(daemon, 22).await;
}

async fn kill_under_load_many_times(mut daemon: Daemon, rounds: usize) {
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
    for round in 0..rounds {
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

/// Tokens the daemon holds, and its `token.import` audit entries that succeeded.
fn tokens_and_imports(daemon: &Daemon) -> (u64, usize) {
    let status = daemon.ctl_json(&["status"]);
    let total = status["tokens_total"].as_u64().expect("tokens_total");
    let audit = daemon.ctl_json(&["audit", "--limit", "0"]);
    let imports = audit
        .as_array()
        .expect("audit entries")
        .iter()
        .filter(|e| e["operation"] == "token.import" && e["result"] == "ok")
        .count();
    (total, imports)
}

/// Writes a CSV of `rows` new tokens (serials `R{round}-...`) and starts `radotpctl token import` on it.
fn start_import(daemon: &Daemon, round: usize, rows: u64) -> std::process::Child {
    let mut csv = String::with_capacity(80 * rows as usize);
    csv.push_str("serial,type,seed\n");
    for i in 0..rows {
        csv.push_str(&format!("R{round}-{i:06},hw-hotp,{:040x}\n", u128::from(i) * 7919 + round as u128));
    }
    let file = daemon.dir.path().join(format!("import-{round}.csv"));
    std::fs::write(&file, csv).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_radotpctl"))
        .args(["--socket", daemon.socket.to_str().unwrap(), "token", "import", file.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn sigkill_during_a_large_import_keeps_all_of_it_or_none_with_its_audit_entry() {
    const ROWS: u64 = 50_000;
    let mut daemon = Daemon::start();
    // A first import, killed right after it reports done, times a whole import
    // on this machine; it must be all there.
    let started = std::time::Instant::now();
    let mut ctl = start_import(&daemon, 0, ROWS);
    assert!(ctl.wait().unwrap().success(), "the first import failed");
    let whole_import = started.elapsed();
    daemon.kill();
    daemon.launch();
    assert_eq!(tokens_and_imports(&daemon), (ROWS, 1), "an import reported done is all there after a kill");
    let (mut expected_tokens, mut expected_imports) = (ROWS, 1usize);
    let (mut kept, mut dropped) = (0, 0);
    // Then kills spread over an import, most of them in its second half,
    // where the tokens are written.
    for (round, share) in [0.3, 0.5, 0.6, 0.7, 0.8, 0.95].into_iter().enumerate() {
        let round = round + 1;
        let mut ctl = start_import(&daemon, round, ROWS);
        std::thread::sleep(whole_import.mul_f64(share));
        daemon.kill();
        let _ = ctl.wait();
        daemon.launch(); // panics if the store does not open
        let (tokens, imports) = tokens_and_imports(&daemon);
        if tokens == expected_tokens + ROWS {
            kept += 1;
            expected_tokens += ROWS;
            expected_imports += 1;
        } else {
            dropped += 1;
        }
        assert_eq!(tokens, expected_tokens, "round {round} (kill at {share} of an import): all of the import or none");
        assert_eq!(imports, expected_imports, "round {round}: the import's audit entry iff its tokens are there");
    }
    eprintln!("a whole import took {whole_import:?}; imports killed: {dropped} taken back whole, {kept} kept whole");
    let chain = daemon.ctl_json(&["audit", "verify"]);
    assert_eq!(chain["ok"], true, "{chain}");
}

#[test]
fn sigkill_right_after_an_operators_change_keeps_the_change_and_its_audit_entry() {
    let mut daemon = Daemon::start();
    daemon.import("serial,type,seed,user\nOP-1,hw-hotp,3132333435363738393031323334353637383930,alice\n");
    // Each change, then a crash as soon as radotpctl reports it done.
    let steps: [(&[&str], &str, &str); 6] = [
        (&["token", "disable", "OP-1"], "token.disable", "disabled"),
        (&["token", "enable", "OP-1"], "token.enable", "active"),
        (&["token", "unassign", "OP-1", "--yes"], "token.unassign", "active"),
        (&["token", "assign", "OP-1", "bob"], "token.assign", "active"),
        (&["token", "disable", "OP-1"], "token.disable", "disabled"),
        (&["token", "delete", "OP-1", "--yes"], "token.delete", "gone"),
    ];
    for (round, (args, operation, state)) in steps.into_iter().enumerate() {
        daemon.ctl_ok(args);
        daemon.kill();
        daemon.launch();
        let audit = daemon.ctl_json(&["audit", "--limit", "0"]);
        let last_change = audit
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["operation"].as_str().is_some_and(|o| o.starts_with("token.")) && e["result"] == "ok")
            .cloned()
            .unwrap_or_default();
        assert_eq!(last_change["operation"], operation, "round {round}: the change's audit entry survived the crash");
        let shown = daemon.ctl(&["token", "show", "OP-1", "--json"]);
        let now = if shown.status.success() {
            let token: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
            token["state"].as_str().unwrap_or_default().to_string()
        } else {
            "gone".to_string()
        };
        assert_eq!(now, state, "round {round}: the change itself survived the crash");
    }
    assert_eq!(daemon.ctl_json(&["audit", "verify"])["ok"], true);
}
