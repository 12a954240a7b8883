//! A service on the in-memory store for the domain's unit tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::enroll::EnrollLabels;
use super::{Decision, Service, Settings};
use crate::config::AuthConfig;
use crate::crypto::SeedCipher;
use crate::directory::UserDirectory;
use crate::model::audit::Actor;
use crate::model::otp::HashAlg;
use crate::model::token::{Algorithm, Token, TokenType};
use crate::store::Store;
use crate::store::memory::MemoryStore;

/// RFC 4226 appendix D: the seed, and its codes for counters 0 to 9.
pub(crate) const RFC_SEED_HEX: &str = "3132333435363738393031323334353637383930";
pub(crate) const RFC_CODES: [&str; 10] =
    ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];

/// A service on the in-memory store, with a clock the test sets.
pub(crate) struct Fixture {
    pub service: Service,
    pub clock: Arc<AtomicU64>,
    #[allow(dead_code)]
    pub store: Arc<dyn Store>,
}

impl Fixture {
    pub(crate) fn new(auth: AuthConfig, directory: Arc<dyn UserDirectory>) -> Fixture {
        Fixture::with_gate(auth, directory, false)
    }

    /// As [`Fixture::new`]; `directory_gate` as for an LDAP directory.
    pub(crate) fn with_gate(auth: AuthConfig, directory: Arc<dyn UserDirectory>, directory_gate: bool) -> Fixture {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(None));
        let clock = Arc::new(AtomicU64::new(1_000_000));
        let time = clock.clone();
        let settings = Settings {
            auth,
            token_types: vec![
                TokenType {
                    id: "hw-hotp".into(),
                    label: "HOTP".into(),
                    algorithm: Algorithm::Hotp,
                    digits: 6,
                    period: 30,
                    hash: HashAlg::Sha1,
                    operator_enroll: true,
                    generate_secret: false,
                    allow_reset: true,
                    deletable: true,
                },
                TokenType {
                    id: "hw-totp".into(),
                    label: "TOTP".into(),
                    algorithm: Algorithm::Totp,
                    digits: 6,
                    period: 30,
                    hash: HashAlg::Sha1,
                    operator_enroll: true,
                    generate_secret: false,
                    allow_reset: true,
                    deletable: true,
                },
            ],
            enroll: EnrollLabels::default(),
            directory_gate,
            retention: crate::model::audit::Retention { max_age_seconds: None, max_entries: Some(1000) },
            authorization: Default::default(),
            clients: Vec::new(),
        };
        let service = Service::new(
            store.clone(),
            SeedCipher::new(&[9u8; 32]),
            directory,
            settings,
            Arc::new(move || time.load(Ordering::SeqCst)),
            Arc::default(),
        );
        Fixture { service, clock, store }
    }

    /// A static directory with alice and bob, and an HOTP token of the RFC seed for each.
    pub(crate) async fn with_tokens(auth: AuthConfig) -> Fixture {
        let users = ["alice", "bob"].map(|name| crate::directory::DirectoryUser {
            name: name.into(),
            display_name: None,
            email: None,
            dn: None,
            ..Default::default()
        });
        let fixture = Fixture::new(auth, Arc::new(crate::directory::static_list::StaticDirectory::new(users.to_vec())));
        fixture.import_tokens().await;
        fixture
    }

    pub(crate) async fn import_tokens(&self) {
        let csv = format!("serial,type,seed,user\nA1,hw-hotp,{RFC_SEED_HEX},alice\nB1,hw-hotp,{RFC_SEED_HEX},bob\n");
        let report = self.service.import_csv(&Actor::Daemon, &csv, false, false).await.unwrap();
        assert_eq!(report.imported, 2, "{report:?}");
    }

    pub(crate) fn set_time(&self, now: u64) {
        self.clock.store(now, Ordering::SeqCst);
    }

    pub(crate) async fn check(&self, user: &str, otp: &str) -> Decision {
        self.service.authenticate(&Actor::Daemon, user, otp).await.unwrap()
    }

    pub(crate) async fn token(&self, serial: &str) -> Token {
        self.service.get_token(serial).await.unwrap()
    }
}

/// A directory with alice and bob, whose password is "right"; it counts the
/// password checks (binds) it is asked for.
#[derive(Default)]
pub(crate) struct PasswordDirectory {
    pub(crate) binds: std::sync::atomic::AtomicU32,
}

impl UserDirectory for PasswordDirectory {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
    ) -> crate::directory::DirectoryFuture<'a, Option<crate::directory::DirectoryUser>> {
        let user = crate::directory::DirectoryUser { name: name.into(), ..Default::default() };
        Box::pin(async move { Ok(["alice", "bob"].contains(&name).then_some(user)) })
    }

    fn search<'a>(
        &'a self,
        _: &'a str,
        _: usize,
    ) -> crate::directory::DirectoryFuture<'a, Vec<crate::directory::DirectoryUser>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn check_password<'a>(
        &'a self,
        _: &'a crate::directory::DirectoryUser,
        password: &'a crate::secret::Secret,
    ) -> crate::directory::DirectoryFuture<'a, bool> {
        self.binds.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(password.expose() == b"right") })
    }
}
