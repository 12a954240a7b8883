//! Challenge mode across two nodes with a real slapd: the password step at
//! node A, the code step at node B; the State is single use on both nodes.

use radotp::radius::packet::{CODE_ACCESS_ACCEPT, CODE_ACCESS_CHALLENGE, CODE_ACCESS_REJECT};

use crate::harness::{RFC_CODES, RFC_SEED_HEX};
use crate::nodes::on_postgres;
use crate::slapd::*;

/// The node config on `url` with the directory on `slapd` and challenge mode.
fn challenge_node(config: &mut String, url: &str, node: &str, slapd: &Slapd) {
    on_postgres(config, url, node, "  mode: challenge\n");
    let directory = format!(
        "directory:\n  kind: ldap\n  urls: [\"{}\"]\n  bind_dn: \"{SERVICE_DN}\"\n  bind_password: \"{SERVICE_PASSWORD}\"\n  \
         base_dn: \"{PEOPLE}\"\n  timeout_ms: 500\n",
        slapd.url()
    );
    let start = config.find("directory:\n").expect("directory section");
    let end = config.find("token_types:").expect("token_types section");
    config.replace_range(start..end, &directory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_step_at_one_node_and_the_code_at_the_other() {
    let slapd = Slapd::start();
    let url = crate::shared().database(&format!("challenge_{}", crate::harness::rand_suffix() % 1_000_000_000));
    let a = crate::harness::Daemon::start_with(|c| challenge_node(c, &url, "radius-a", &slapd));
    let b = {
        let mut b = crate::harness::Daemon::prepare(|c| challenge_node(c, &url, "radius-b", &slapd));
        std::fs::copy(a.dir.path().join("master.key"), b.dir.path().join("master.key")).unwrap();
        b.launch();
        b
    };
    a.import(&format!("serial,type,seed,user\nA1,hw-hotp,{RFC_SEED_HEX},alice\n"));
    let pw = password_of("alice");

    let challenge = a.client().await.authenticate("alice", &pw).await.unwrap();
    assert_eq!(challenge.code, CODE_ACCESS_CHALLENGE);
    let state = challenge.state.expect("State");
    // The NAS failed over between the two steps: node B knows the State.
    assert_eq!(b.client().await.respond("alice", RFC_CODES[0], &state).await.unwrap().code, CODE_ACCESS_ACCEPT);
    // The same State again, at A: single use across nodes.
    assert_eq!(a.client().await.respond("alice", RFC_CODES[1], &state).await.unwrap().code, CODE_ACCESS_REJECT);
    // A fresh challenge at B, answered at A.
    let state = b.client().await.authenticate("alice", &pw).await.unwrap().state.expect("State");
    assert_eq!(a.client().await.respond("alice", RFC_CODES[1], &state).await.unwrap().code, CODE_ACCESS_ACCEPT);
}
