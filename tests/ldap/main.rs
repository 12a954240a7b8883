//! The LDAP directory against a real OpenLDAP slapd (see slapd.rs).

mod authorization;
mod daemon;
#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;
mod modes;
mod nas_rules;
mod slapd;

use std::time::{Duration, Instant};

use radotp::config::DirectoryConfig;
use radotp::directory::ldap::{LdapDirectory, MAX_NAME_BYTES};
use radotp::directory::{DirectoryError, DirectoryUser, UserDirectory};
use radotp::secret::Secret;
use slapd::*;

const TIMEOUT_MS: u64 = 500;
const TIMEOUT: Duration = Duration::from_millis(TIMEOUT_MS);

/// A `directory:` section for `urls` with the service account; `extra`
/// lines are added.
fn section(urls: &[String], extra: &str) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    format!(
        "kind: ldap\nurls: [{}]\nbind_dn: \"{SERVICE_DN}\"\nbind_password: \"{SERVICE_PASSWORD}\"\n\
         base_dn: \"{PEOPLE}\"\ntimeout_ms: {TIMEOUT_MS}\n{extra}",
        urls.join(", ")
    )
}

fn directory_from(section: &str) -> LdapDirectory {
    let config: DirectoryConfig =
        serde_yaml::from_str(section).unwrap_or_else(|e| panic!("bad test section ({e}):\n{section}"));
    let DirectoryConfig::Ldap(ldap) = config else { panic!("not an ldap section") };
    LdapDirectory::new(&ldap).unwrap()
}

fn directory(slapd: &Slapd, extra: &str) -> LdapDirectory {
    directory_from(&section(&[slapd.url()], extra))
}

async fn found(d: &LdapDirectory, name: &str) -> DirectoryUser {
    d.lookup(name)
        .await
        .unwrap_or_else(|e| panic!("lookup {name:?}: {e}"))
        .unwrap_or_else(|| panic!("{name:?} not found"))
}

async fn names(d: &LdapDirectory, query: &str, limit: usize) -> Vec<String> {
    d.search(query, limit)
        .await
        .unwrap_or_else(|e| panic!("search {query:?}: {e}"))
        .into_iter()
        .map(|u| u.name)
        .collect()
}

/// Asserts that `elapsed` is within 3 timeouts (the bound of one URL is 2).
fn assert_quick(what: &str, elapsed: Duration) {
    assert!(elapsed < TIMEOUT * 3, "{what} took {elapsed:?}, more than 3 × {TIMEOUT:?}");
}

#[tokio::test]
async fn lookup_returns_the_entry_with_its_attributes() {
    let slapd = Slapd::start();
    let d = directory(&slapd, "");
    let alice = found(&d, "alice").await;
    assert_eq!(
        alice,
        DirectoryUser {
            name: "alice".into(),
            display_name: Some("Alice Archer".into()),
            email: Some("alice@example.org".into()),
            dn: Some(user_dn("alice")),
            ..Default::default()
        }
    );
    // uid matches without regard to case; the name is the directory's.
    assert_eq!(found(&d, "ALICE").await.name, "alice");
    // Non-ASCII names go through the escaping and match.
    let zoe = found(&d, ZOE).await;
    assert_eq!(zoe.display_name.as_deref(), Some("Zoë Zeller"));
    assert_eq!(d.lookup("nobody").await.unwrap(), None);
    assert_eq!(d.probe().await.unwrap(), slapd.url());
}

#[tokio::test]
async fn filter_injection_matches_only_the_literal_text() {
    let slapd = Slapd::start();
    let d = directory(&slapd, "");
    for hostile in [
        "*",
        "a)(uid=*",
        "alice)(|(uid=*",
        "al*",
        "*)(objectClass=*",
        "alice)(uid=bob",
        "\\",
        "\\2a",
        "alice\0",
        "(uid=*)",
    ] {
        assert_eq!(d.lookup(hostile).await.unwrap(), None, "{hostile:?} found someone");
    }
    assert!(names(&d, "*", 50).await.is_empty());
    assert!(names(&d, "a)(uid=*", 50).await.is_empty());
    assert!(names(&d, "*)(|(uid=*", 50).await.is_empty());
}

#[tokio::test]
async fn empty_and_long_names_are_refused() {
    let slapd = Slapd::start();
    let d = directory(&slapd, "");
    assert!(matches!(d.lookup("").await, Err(DirectoryError::BadName(_))));
    let long = "a".repeat(MAX_NAME_BYTES + 1);
    assert!(matches!(d.lookup(&long).await, Err(DirectoryError::BadName(_))));
    assert_eq!(d.lookup(&"a".repeat(MAX_NAME_BYTES)).await.unwrap(), None);
    assert!(matches!(d.search(&long, 10).await, Err(DirectoryError::BadName(_))));
}

#[tokio::test]
async fn several_matching_entries_are_ambiguous() {
    let slapd = Slapd::start();
    let d = directory(&slapd, "user_filter: \"(&(objectClass=inetOrgPerson)(mail={username}))\"");
    match d.lookup(SHARED_MAIL).await {
        Err(DirectoryError::Ambiguous(name)) => assert_eq!(name, SHARED_MAIL),
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    // One match by mail: the name is the uid attribute.
    assert_eq!(found(&d, "alice@example.org").await.name, "alice");
}

#[tokio::test]
async fn required_group_by_member() {
    let slapd = Slapd::start();
    let d = directory(&slapd, &format!("required_group: \"{VPN_GROUP}\""));
    assert_eq!(found(&d, "alice").await.name, "alice");
    assert_eq!(found(&d, ZOE).await.name, ZOE);
    match d.lookup("bob").await {
        Err(DirectoryError::NotInGroup(name)) => assert_eq!(name, "bob"),
        other => panic!("expected NotInGroup, got {other:?}"),
    }
    assert_eq!(d.lookup("nobody").await.unwrap(), None);
    let bob = DirectoryUser { name: "bob".into(), dn: Some(user_dn("bob")), ..Default::default() };
    assert!(!d.in_required_group(&bob).await.unwrap());
    assert!(d.in_required_group(&found(&d, "alice").await).await.unwrap());
    assert_eq!(names(&d, "", 50).await, vec!["alice".to_string(), ZOE.to_string()]);
}

#[tokio::test]
async fn required_group_by_member_of_and_unique_member() {
    let slapd = Slapd::start();
    let d = directory(&slapd, &format!("required_group: \"{VPN_GROUP}\"\ngroup_membership: memberOf"));
    assert_eq!(found(&d, "alice").await.name, "alice");
    assert!(matches!(d.lookup("bob").await, Err(DirectoryError::NotInGroup(_))));
    assert_eq!(names(&d, "", 50).await, vec!["alice".to_string(), ZOE.to_string()]);

    let d = directory(&slapd, &format!("required_group: \"{VPN_UNIQUE_GROUP}\"\ngroup_membership: uniqueMember"));
    assert_eq!(found(&d, "alice").await.name, "alice");
    assert!(matches!(d.lookup(ZOE).await, Err(DirectoryError::NotInGroup(_))));

    // A group that does not exist is a configuration error, not "nobody".
    let d = directory(&slapd, &format!("required_group: \"cn=nope,ou=groups,{BASE}\""));
    assert!(matches!(d.lookup("alice").await, Err(DirectoryError::Unavailable(_))));
}

#[tokio::test]
async fn search_escapes_the_query_and_is_bounded() {
    let slapd = Slapd::start();
    let d = directory(&slapd, "search_limit: 3");
    assert_eq!(names(&d, "ali", 50).await, vec!["alice"]);
    assert_eq!(names(&d, "ALI", 50).await, vec!["alice"]);
    // By display name and by mail.
    assert_eq!(names(&d, "Baker", 50).await, vec!["bob"]);
    assert_eq!(names(&d, "shared@", 50).await, vec!["carol", "dave"]);
    assert_eq!(names(&d, "", 2).await.len(), 2);
    // search_limit caps what the caller asks.
    assert_eq!(names(&d, "example.org", 100).await.len(), 3);
    let d = directory(&slapd, "");
    assert_eq!(names(&d, "example.org", 100).await.len(), 5);
}

#[tokio::test]
async fn passwords_are_checked_by_binding() {
    let slapd = Slapd::start();
    let d = directory(&slapd, "");
    let alice = found(&d, "alice").await;
    assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.unwrap());
    assert!(!d.check_password(&alice, &Secret::from("wrong")).await.unwrap());
    assert!(!d.check_password(&alice, &Secret::from("alice-pw ")).await.unwrap());
    assert!(!d.check_password(&alice, &Secret::from("")).await.unwrap());
    // A right password after a wrong one, on the same pooled connection.
    assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.unwrap());
    let zoe = found(&d, ZOE).await;
    assert!(d.check_password(&zoe, &Secret::from(password_of(ZOE).as_str())).await.unwrap());
    assert!(!d.check_password(&zoe, &Secret::from("alice-pw")).await.unwrap());
    let ghost = DirectoryUser { name: "ghost".into(), dn: Some(user_dn("ghost")), ..Default::default() };
    assert!(!d.check_password(&ghost, &Secret::from("x")).await.unwrap());
    let no_dn = DirectoryUser { dn: None, ..ghost };
    assert!(matches!(d.check_password(&no_dn, &Secret::from("x")).await, Err(DirectoryError::Unsupported(_))));
}

#[tokio::test]
async fn empty_password_is_refused_without_traffic() {
    let mut slapd = Slapd::start();
    let d = directory(&slapd, "");
    let alice = found(&d, "alice").await;
    // With the server gone, only an answer given before any traffic is Ok.
    slapd.stop();
    assert!(!d.check_password(&alice, &Secret::from("")).await.unwrap());
    assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.is_err());
}

#[tokio::test]
async fn connections_are_reused() {
    let slapd = Slapd::start();
    let d = directory(&slapd, &format!("required_group: \"{VPN_GROUP}\""));
    let alice = found(&d, "alice").await;
    for _ in 0..20 {
        found(&d, "alice").await;
        assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.unwrap());
    }
    // One connection for searches, one for binds.
    assert_eq!(d.connections_opened(), 2);
    // Concurrent look-ups stay within pool_size connections per pool.
    let d = std::sync::Arc::new(directory(&slapd, "pool_size: 2"));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let d = d.clone();
        tasks.spawn(async move { d.lookup("alice").await });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap().unwrap().name, "alice");
    }
    assert!(d.connections_opened() <= 2, "{}", d.connections_opened());
}

#[tokio::test]
async fn a_stopped_server_fails_fast_and_is_found_again() {
    let mut slapd = Slapd::start();
    let d = directory(&slapd, "");
    let alice = found(&d, "alice").await;
    assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.unwrap());
    slapd.stop();

    let start = Instant::now();
    let err = d.lookup("alice").await.unwrap_err();
    assert!(matches!(err, DirectoryError::Unavailable(_)), "{err:?}");
    assert_quick("lookup with slapd stopped", start.elapsed());
    let start = Instant::now();
    assert!(matches!(d.check_password(&alice, &Secret::from("alice-pw")).await, Err(DirectoryError::Unavailable(_))));
    assert_quick("password check with slapd stopped", start.elapsed());
    let start = Instant::now();
    assert!(d.search("a", 10).await.is_err());
    assert_quick("search with slapd stopped", start.elapsed());

    slapd.launch();
    // While every server is down, one probe a second: found again within about a second.
    let back = Instant::now();
    let user = loop {
        match d.lookup("alice").await {
            Ok(Some(user)) => break user,
            _ if back.elapsed() < Duration::from_secs(3) => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("not found again after the restart: {other:?}"),
        }
    };
    assert_eq!(user.name, "alice");
    assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.unwrap());
}

#[tokio::test]
async fn a_hung_server_times_out_and_is_found_again() {
    let slapd = Slapd::start();
    let d = directory(&slapd, "");
    let alice = found(&d, "alice").await;
    assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.unwrap());
    slapd.pause();

    let start = Instant::now();
    let result = d.lookup("alice").await;
    let elapsed = start.elapsed();
    let start = Instant::now();
    let password = d.check_password(&alice, &Secret::from("alice-pw")).await;
    let password_elapsed = start.elapsed();
    slapd.resume();
    assert!(matches!(result, Err(DirectoryError::Unavailable(_))), "{result:?}");
    assert_quick("lookup with slapd hung", elapsed);
    assert!(matches!(password, Err(DirectoryError::Unavailable(_))), "{password:?}");
    assert_quick("password check with slapd hung", password_elapsed);

    assert_eq!(found(&d, "alice").await.name, "alice");
    assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.unwrap());
}

#[tokio::test]
async fn fails_over_to_the_next_url() {
    let slapd = Slapd::start();
    // A closed port: refused at once.
    let closed = format!("ldap://127.0.0.1:{}", free_port());
    let d = directory_from(&section(&[closed.clone(), slapd.url()], ""));
    let start = Instant::now();
    let alice = found(&d, "alice").await;
    assert_quick("failover from a closed port", start.elapsed());
    assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.unwrap());

    // A server that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("ldap://{}", silent.local_addr().unwrap());
    let d = directory_from(&section(&[silent_url, slapd.url()], ""));
    let start = Instant::now();
    let alice = found(&d, "alice").await;
    assert_quick("failover from a silent server", start.elapsed());
    // The silent URL is now tried last: a new connection is quick.
    let start = Instant::now();
    assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.unwrap());
    assert!(
        start.elapsed() < TIMEOUT,
        "second connection took {:?}: the dead URL was tried first again",
        start.elapsed()
    );

    // Nothing answers: one error naming every URL.
    let d = directory_from(&section(&[closed.clone(), format!("ldap://127.0.0.1:{}", free_port())], ""));
    match d.lookup("alice").await {
        Err(DirectoryError::Unavailable(reason)) => assert!(reason.contains(&closed), "{reason}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn service_account_and_base_dn_problems_are_reported() {
    let slapd = Slapd::start();
    let d = directory_from(&section(&[slapd.url()], "").replace(SERVICE_PASSWORD, "wrong"));
    match d.lookup("alice").await {
        Err(DirectoryError::Unavailable(reason)) => {
            assert!(reason.contains("invalidCredentials"), "{reason}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let d = directory_from(&section(&[slapd.url()], "").replace(PEOPLE, &format!("ou=nobody,{BASE}")));
    match d.lookup("alice").await {
        Err(DirectoryError::Unavailable(reason)) => assert!(reason.contains("does not exist"), "{reason}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(d.probe().await.is_err());
}

#[tokio::test]
async fn tls_with_starttls_and_ldaps_verifies_the_server() {
    let slapd = Slapd::start_with_tls();
    let ca = slapd.ca_file().display().to_string();

    let d = directory(&slapd, &format!("starttls: true\nca_file: {ca}"));
    let alice = found(&d, "alice").await;
    assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.unwrap());

    let d = directory_from(&section(&[slapd.ldaps_url()], &format!("ca_file: {ca}")));
    let alice = found(&d, "alice").await;
    assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.unwrap());
    // By host name (the certificate names localhost too).
    let by_name = slapd.ldaps_url().replace("127.0.0.1", "localhost");
    let d = directory_from(&section(&[by_name], &format!("ca_file: {ca}")));
    found(&d, "alice").await;

    // Another CA: refused, with StartTLS as with LDAPS.
    make_ca(slapd.dir.path(), "other");
    let other = slapd.path("other.pem").display().to_string();
    let d = directory_from(&section(&[slapd.ldaps_url()], &format!("ca_file: {other}")));
    assert!(matches!(d.lookup("alice").await, Err(DirectoryError::Unavailable(_))));
    let d = directory(&slapd, &format!("starttls: true\nca_file: {other}"));
    assert!(matches!(d.lookup("alice").await, Err(DirectoryError::Unavailable(_))));
    // The system's CAs do not know the test CA either.
    let d = directory_from(&section(&[slapd.ldaps_url()], ""));
    assert!(matches!(d.lookup("alice").await, Err(DirectoryError::Unavailable(_))));
    // Unless verification is off (which logs a warning).
    let d = directory_from(&section(&[slapd.ldaps_url()], "tls_verify: false"));
    found(&d, "alice").await;
}

#[tokio::test]
async fn a_hung_server_costs_a_connection_a_second_not_one_per_request() {
    let slapd = Slapd::start();
    let d = directory(&slapd, "");
    let alice = found(&d, "alice").await;
    assert!(d.check_password(&alice, &Secret::from("alice-pw")).await.unwrap());
    slapd.pause();
    let before = d.connections_opened();
    let started = std::time::Instant::now();
    let mut failed = 0;
    while started.elapsed() < Duration::from_secs(3) {
        if d.check_password(&alice, &Secret::from("alice-pw")).await.is_err() {
            failed += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let opened = d.connections_opened() - before;
    assert!(failed >= 20, "requests during the hang are answered (as failures) quickly: {failed}");
    assert!(opened <= 5, "{opened} connections for {failed} password checks in 3 s of hang");
    slapd.resume();
    // Found again within about a second of the server answering.
    let resumed = std::time::Instant::now();
    loop {
        if d.check_password(&alice, &Secret::from("alice-pw")).await.is_ok_and(|ok| ok) {
            break;
        }
        assert!(resumed.elapsed() < Duration::from_secs(5), "not found again after the hang");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
