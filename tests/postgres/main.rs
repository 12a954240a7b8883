//! The PostgreSQL engine against a real PostgreSQL (see cluster.rs): the
//! store contract suite, and several radotpd nodes on one database.

mod challenge;
#[allow(dead_code)]
mod cluster;
mod failover;
#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;
mod migration;
mod nodes;
#[path = "../ldap/slapd.rs"]
mod slapd;
mod tls;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cluster::Cluster;
use radotp::store::contract::Engine;
use radotp::store::postgres::{PgSettings, PostgresStore};

/// One cluster for the contract tests; each engine gets a database of its own.
pub(crate) fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(Cluster::start_shared)
}

pub fn settings(url: String) -> PgSettings {
    PgSettings {
        url,
        password: None,
        pool_size: 8,
        connect_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(5),
        ca_certs: None,
    }
}

/// A fresh engine on a new database of the shared cluster.
async fn fresh_engine() -> Engine {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("contract_{}", NEXT.fetch_add(1, Ordering::SeqCst));
    let url = tokio::task::spawn_blocking(move || shared().database(&name)).await.expect("create database");
    let store = PostgresStore::open(&settings(url), Some("node-a".into())).await.expect("open the postgres store");
    Engine::new(store, ())
}

mod contract {
    radotp::store_contract_tests!(|| super::fresh_engine());
}
