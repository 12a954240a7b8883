//! TLS to PostgreSQL: with `store.postgres.ca_file` the engine connects over
//! TLS and checks the server's certificate against that CA; a server whose
//! certificate another CA signed is refused, and so is a plain connection
//! where the server demands TLS.

use radotp::config::read_ca_file;
use radotp::store::Store;
use radotp::store::postgres::PostgresStore;

use crate::cluster::{Cluster, make_ca};
use crate::settings;

#[tokio::test(flavor = "multi_thread")]
async fn connections_use_tls_checked_against_the_ca_file() {
    let mut cluster = Cluster::start();
    let url = cluster.database("tls");
    let ca = cluster.enable_tls();

    // The server takes TLS only: the plain connection of a store without a CA is refused.
    let plain = PostgresStore::open(&settings(url.clone()), Some("node-a".into())).await;
    assert!(plain.is_err(), "a plain connection was accepted where the server demands TLS");

    let mut with_ca = settings(url.clone());
    with_ca.ca_certs = Some(read_ca_file(&ca).expect("the test CA"));
    let store = PostgresStore::open(&with_ca, Some("node-a".into())).await.expect("TLS with the right CA");
    assert_eq!(store.health().await.failing, None);
    assert!(store.is_empty().await.unwrap());

    // Another CA did not sign the server's certificate: no connection.
    let other = tempfile::tempdir().expect("temp dir");
    make_ca(other.path(), "other");
    let mut wrong = settings(url);
    wrong.ca_certs = Some(read_ca_file(&other.path().join("other.pem")).expect("the other CA"));
    let refused = PostgresStore::open(&wrong, Some("node-b".into())).await;
    let error = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(!error.is_empty(), "a server certificate from another CA was accepted");
}
