//! Two real radotpd nodes on one PostgreSQL database, driven over RADIUS and
//! the admin socket: one code is accepted once whichever node gets it, an
//! operator's change through one node is in force on the other, and a
//! database outage is answered per `auth.store_unavailable`.

use std::time::{Duration, Instant};

use radotp::radius::packet::{CODE_ACCESS_ACCEPT, CODE_ACCESS_REJECT};

use crate::cluster::Cluster;
use crate::harness::{Daemon, RFC_CODES};

/// The harness's config with the store on `url` and this node's name.
pub fn on_postgres(config: &mut String, url: &str, node: &str, extra_auth: &str) {
    let mut out = String::new();
    for line in config.lines() {
        if line.starts_with("  path: ") && line.ends_with("/db") {
            out.push_str(&format!(
                "  kind: postgres\n  postgres:\n    url: \"{url}\"\n    connect_timeout_ms: 1000\n    statement_timeout_ms: 1000\n"
            ));
        } else if line == "auth:" {
            out.push_str(&format!("node:\n  name: {node}\nauth:\n{extra_auth}"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    *config = out;
}

/// Node A started on `url`, then node B with A's key file.
pub fn two_nodes(url: &str, extra_auth: &str) -> (Daemon, Daemon) {
    let a = Daemon::start_with(|c| on_postgres(c, url, "radius-a", extra_auth));
    let b = node_with_key(url, "radius-b", extra_auth, &a.dir.path().join("master.key"));
    (a, b)
}

/// Two nodes with the key file `key`.
pub fn two_nodes_with_key(url: &str, extra_auth: &str, key: &std::path::Path) -> (Daemon, Daemon) {
    (node_with_key(url, "radius-a", extra_auth, key), node_with_key(url, "radius-b", extra_auth, key))
}

pub fn node_with_key(url: &str, name: &str, extra_auth: &str, key: &std::path::Path) -> Daemon {
    let mut node = Daemon::prepare(|c| on_postgres(c, url, name, extra_auth));
    std::fs::copy(key, node.dir.path().join("master.key")).expect("copy the key file");
    node.launch();
    node
}

fn fresh_database(cluster: &Cluster) -> String {
    cluster.database(&format!("nodes_{}", crate::harness::rand_suffix() % 1_000_000_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_copies_of_one_code_across_two_nodes_are_accepted_once() {
    let url = fresh_database(crate::shared());
    let (a, b) = two_nodes(&url, "");
    a.rfc_token("HW1", "alice");
    let mut tasks = Vec::new();
    for n in 0..32 {
        let mut client = if n % 2 == 0 { a.client().await } else { b.client().await };
        tasks.push(tokio::spawn(async move { client.authenticate("alice", RFC_CODES[0]).await.unwrap().code }));
    }
    let mut accepts = 0;
    for task in tasks {
        let code = task.await.unwrap();
        assert!(code == CODE_ACCESS_ACCEPT || code == CODE_ACCESS_REJECT, "code {code}");
        accepts += usize::from(code == CODE_ACCESS_ACCEPT);
    }
    assert_eq!(accepts, 1, "exactly one Access-Accept for one code, whichever node");
    // Each node keeps its own chain; both verify, and the merged log names the nodes.
    let verify = a.ctl_json(&["audit", "verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
    let log = b.ctl_ok(&["audit", "--limit", "100"]);
    assert!(log.contains("radius-a") && log.contains("radius-b"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hotp_sequence_alternating_nodes_is_accepted_once_and_replays_rejected() {
    let url = fresh_database(crate::shared());
    let (a, b) = two_nodes(&url, "");
    b.rfc_token("HW1", "alice");
    for (n, code) in RFC_CODES.iter().enumerate().take(6) {
        let (here, there) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
        assert_eq!(here.client().await.authenticate("alice", code).await.unwrap().code, CODE_ACCESS_ACCEPT, "code {n}");
        let replay = there.client().await.authenticate("alice", code).await.unwrap().code;
        assert_eq!(replay, CODE_ACCESS_REJECT, "replay of code {n} on the other node");
    }
    let token = a.ctl_json(&["token", "show", "HW1"]);
    assert_eq!(token["counter"], 6, "{token}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_change_through_one_node_is_in_force_on_the_other() {
    let url = fresh_database(crate::shared());
    let (a, b) = two_nodes(&url, "");
    // Enrolled (imported) through B, usable at A.
    b.rfc_token("HW1", "alice");
    assert_eq!(a.client().await.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    // Unassigned through A: the next code at B is rejected at once.
    a.ctl_ok(&["token", "unassign", "HW1", "--yes"]);
    assert_eq!(b.client().await.authenticate("alice", RFC_CODES[1]).await.unwrap().code, CODE_ACCESS_REJECT);
    // Assigned again through B, disabled through A: still rejected at B.
    b.ctl_ok(&["token", "assign", "HW1", "alice"]);
    a.ctl_ok(&["token", "disable", "HW1"]);
    assert_eq!(b.client().await.authenticate("alice", RFC_CODES[2]).await.unwrap().code, CODE_ACCESS_REJECT);
    b.ctl_ok(&["token", "enable", "HW1"]);
    assert_eq!(a.client().await.authenticate("alice", RFC_CODES[3]).await.unwrap().code, CODE_ACCESS_ACCEPT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_spread_over_the_nodes_lock_the_token_at_max_failures() {
    let url = fresh_database(crate::shared());
    let (a, b) = two_nodes(&url, "");
    a.rfc_token("HW1", "alice");
    // max_failures is 5 in the harness's config.
    for n in 0..5 {
        let node = if n % 2 == 0 { &a } else { &b };
        assert_eq!(node.client().await.authenticate("alice", "000000").await.unwrap().code, CODE_ACCESS_REJECT);
    }
    let token = b.ctl_json(&["token", "show", "HW1"]);
    assert_eq!(token["state"], "locked", "{token}");
    assert_eq!(a.client().await.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_REJECT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_down_is_answered_per_store_unavailable_and_recovered_without_restart() {
    let mut cluster = Cluster::start();
    let url = cluster.database("outage");
    let (a, b) = two_nodes(&url, "  store_unavailable: no_answer\n");
    a.rfc_token("HW1", "alice");
    assert_eq!(a.client().await.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);

    cluster.stop();
    for node in [&a, &b] {
        let mut client = node.client().await;
        client.timeout = Duration::from_secs(4);
        let started = Instant::now();
        match client.authenticate("alice", RFC_CODES[1]).await {
            Err(radotp::radius::client::ClientError::Timeout(_)) => {}
            other => panic!("no answer expected while the database is down, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    let status = a.ctl(&["status", "--json"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("failing"), "status shows the store failing: {text}");

    cluster.launch();
    // Recovery without restart: the next request after the database returns is answered.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut client = b.client().await;
        match client.authenticate("alice", RFC_CODES[1]).await {
            Ok(reply) => {
                assert_eq!(reply.code, CODE_ACCESS_ACCEPT);
                break;
            }
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => panic!("node B did not recover: {e}"),
        }
    }
    assert_eq!(a.client().await.authenticate("alice", RFC_CODES[1]).await.unwrap().code, CODE_ACCESS_REJECT);
    assert_eq!(a.client().await.authenticate("alice", RFC_CODES[2]).await.unwrap().code, CODE_ACCESS_ACCEPT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_it_acknowledged() {
    use radotp::model::otp::{HashAlg, hotp_code};
    let url = fresh_database(crate::shared());
    let (mut a, b) = two_nodes(&url, "");
    a.rfc_token("HW1", "alice");
    let server = a.radius;
    // Codes sent one after the other to A until A stops answering.
    let load = tokio::spawn(async move {
        let mut accepted = Vec::new();
        for counter in 0..10_000u64 {
            let Ok(mut client) =
                radotp::radius::client::RadiusClient::connect(server, crate::harness::SECRET.as_bytes()).await
            else {
                break;
            };
            client.timeout = Duration::from_millis(500);
            let code = hotp_code(b"12345678901234567890", counter, 6, HashAlg::Sha1);
            match client.authenticate("alice", &code).await {
                Ok(reply) if reply.code == CODE_ACCESS_ACCEPT => accepted.push(counter),
                Ok(_) => panic!("code {counter} rejected"),
                Err(_) => break,
            }
        }
        accepted
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    a.kill();
    let accepted = load.await.unwrap();
    assert!(accepted.len() >= 3, "some codes were accepted before the kill: {accepted:?}");
    // Every acknowledged Accept is in the database: each such code is a replay at B.
    for &counter in accepted.iter().rev().take(3) {
        let code = hotp_code(b"12345678901234567890", counter, 6, HashAlg::Sha1);
        assert_eq!(b.client().await.authenticate("alice", &code).await.unwrap().code, CODE_ACCESS_REJECT);
    }
    let token = b.ctl_json(&["token", "show", "HW1"]);
    assert!(token["counter"].as_u64().unwrap() > *accepted.last().unwrap(), "{token} after {accepted:?}");
    assert_eq!(b.ctl_json(&["audit", "verify"])["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_checks_the_connection_the_schema_and_the_key() {
    let url = fresh_database(crate::shared());
    let (a, b) = two_nodes(&url, "");
    a.rfc_token("HW1", "alice");
    let check = |config: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_radotpd"))
            .arg("--check-config")
            .arg("--config")
            .arg(config)
            .output()
            .unwrap()
    };
    let out = check(&b.config_path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 stored tokens checked"));

    // Another key file: refused, naming the key.
    let other = Daemon::prepare(|c| on_postgres(c, &url, "radius-c", ""));
    std::fs::write(other.config_path(), other.config_text()).unwrap();
    radotp::crypto::SeedCipher::from_key_file(&other.dir.path().join("master.key"), true).unwrap();
    let out = check(&other.config_path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("store.key_file") && stderr.contains("every node needs the same key file"), "{stderr}");

    // A database that cannot be reached, and a schema newer than this build.
    let unreachable = Daemon::prepare(|c| on_postgres(c, "postgresql://postgres@127.0.0.1:1/none", "radius-d", ""));
    std::fs::write(unreachable.config_path(), unreachable.config_text()).unwrap();
    let out = check(&unreachable.config_path());
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.postgres.url"));
    let database = url.rsplit('/').next().unwrap();
    crate::shared().sql(database, "UPDATE radotp_schema SET version = 99");
    let out = check(&b.config_path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema version 99 is not supported"));
}
