//! A single sled node moved to PostgreSQL with the commands that exist:
//! `radotpctl backup FILE` on the old node, `radotpd --restore FILE` into an
//! empty PostgreSQL store; then a backup of the two-node store restored again.

use std::process::Command;

use radotp::radius::packet::{CODE_ACCESS_ACCEPT, CODE_ACCESS_REJECT};

use crate::harness::{Daemon, RFC_CODES};
use crate::nodes::{on_postgres, two_nodes_with_key};

fn restore(file: &std::path::Path, config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_radotpd")).arg("--restore").arg(file).arg("--config").arg(config).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_store_moves_to_postgres_with_counters_owners_locks_and_audit() {
    // The old single node: two codes used, bob's token locked by an operator.
    let old = Daemon::start();
    old.rfc_token("HW1", "alice");
    old.rfc_token("HW2", "bob");
    for code in &RFC_CODES[..2] {
        assert_eq!(old.client().await.authenticate("alice", code).await.unwrap().code, CODE_ACCESS_ACCEPT);
    }
    old.ctl_ok(&["token", "disable", "HW2"]);
    let file = old.dir.path().join("move.json");
    old.ctl_ok(&["backup", file.to_str().unwrap()]);
    let old_entries = old.ctl_json(&["audit", "verify"])["entries"].as_u64().unwrap();

    // Restored into an empty PostgreSQL store by the first new node's config.
    let url = crate::shared().database(&format!("moved_{}", crate::harness::rand_suffix() % 1_000_000_000));
    let key = old.dir.path().join("master.key");
    let first = Daemon::prepare(|c| on_postgres(c, &url, "radius-a", ""));
    std::fs::copy(&key, first.dir.path().join("master.key")).unwrap();
    std::fs::write(first.config_path(), first.config_text()).unwrap();
    let out = restore(&file, &first.config_path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = restore(&file, &first.config_path());
    assert!(!again.status.success(), "a second restore into a store with data is refused");
    drop(first);

    let (a, b) = two_nodes_with_key(&url, "", &key);
    // Counters came along: the used codes are refused on both nodes, the next one accepted once.
    for node in [&a, &b] {
        assert_eq!(node.client().await.authenticate("alice", RFC_CODES[1]).await.unwrap().code, CODE_ACCESS_REJECT);
    }
    assert_eq!(b.client().await.authenticate("alice", RFC_CODES[2]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    let hw2 = a.ctl_json(&["token", "show", "HW2"]);
    assert_eq!((hw2["state"].as_str(), hw2["user"].as_str()), (Some("disabled"), Some("bob")), "{hw2}");
    // The audit came along, and every chain verifies.
    let verify = a.ctl_json(&["audit", "verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
    assert!(verify["entries"].as_u64().unwrap() > old_entries, "{verify}");

    // A backup of the two-node store (one chain per node) restores too.
    let file = a.dir.path().join("both.json");
    a.ctl_ok(&["backup", file.to_str().unwrap()]);
    let url2 = crate::shared().database(&format!("again_{}", crate::harness::rand_suffix() % 1_000_000_000));
    let target = Daemon::prepare(|c| on_postgres(c, &url2, "radius-c", ""));
    std::fs::copy(&key, target.dir.path().join("master.key")).unwrap();
    std::fs::write(target.config_path(), target.config_text()).unwrap();
    let out = restore(&file, &target.config_path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (c, _d) = two_nodes_with_key(&url2, "", &key);
    assert_eq!(c.ctl_json(&["audit", "verify"])["ok"], true);
    assert_eq!(c.client().await.authenticate("alice", RFC_CODES[3]).await.unwrap().code, CODE_ACCESS_ACCEPT);
}
