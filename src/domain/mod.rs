//! The domain: radotp's operations, the same for every transport.
//!
//! RADIUS, the admin socket and the web console call these operations; none
//! of them touches the store or the directory itself. [`Service`] is the
//! shared context (store, seed cipher, directory, settings, clock, metrics);
//! each file below adds one family of operations to it:
//!
//! | module | operations |
//! |---|---|
//! | [`audit_anchor`] | the audit log's head, signed, to see entries cut off |
//! | [`authenticate`] | the OTP check, replay and lockout |
//! | [`radius_modes`] | `otp`, `password+otp`, `challenge` on top of it |
//! | [`authorization`] | per-client `allowed_groups`, and the Access-Accept's reply attributes |
//! | [`lifecycle`] | list, show, assign, unassign, enable, disable, unlock, delete |
//! | [`enroll`] | "ADD NEW TOKEN": hardware from stock, generated app tokens |
//! | [`reset`] | the two-OTP reset |
//! | [`import`] | CSV and PSKC imports |
//! | [`key_check`] | is the master key the store's own? |
//! | [`backup`] | backups and restores |
//! | [`status`] | status and the audit log's reading and verification |
//! | [`console`] | the web console's sign-in: password, OTP and role |
//!
//! Each operation records its own audit entry, handed to the store with its
//! change so both are durable in one step ([`crate::store::Store::swap`]).
//! Outcomes are values (a wrong OTP is a [`Decision::Reject`]); failures are
//! [`DomainError`]s with a kind operators can act on. Sees the model, the
//! store and directory seams, and the configuration's policy types; never a
//! socket, clap or an engine type.

pub mod audit_anchor;
pub mod authenticate;
pub mod authorization;
pub mod backup;
pub mod console;
pub mod enroll;
pub mod error;
pub mod import;
pub mod key_check;
pub mod lifecycle;
pub mod radius_modes;
pub mod reset;
pub mod retention;
pub mod status;

#[cfg(test)]
pub(crate) mod testing;

use std::sync::{Arc, RwLock};
use std::time::Instant;

pub use self::error::{DomainError, Refusal};
use crate::config::AuthConfig;
use crate::crypto::SeedCipher;
use crate::directory::{DirectoryUser, UserDirectory};
use crate::metrics::Metrics;
use crate::model::audit::{Actor, AuditEvent, AuditWrite};
pub use crate::model::decision::{Decision, RejectReason};
use crate::model::token::{Token, TokenType, TokenView, valid_user_name};
use crate::store::{Commit, Store, StoreError, Swap};

/// Settings that a reload may replace as one.
#[derive(Debug, Clone)]
pub struct Settings {
    pub auth: AuthConfig,
    pub token_types: Vec<TokenType>,
    pub enroll: enroll::EnrollLabels,
    /// RADIUS requests in `otp` mode must look the user up too (an LDAP
    /// directory: its group and the account's state are checked at every
    /// login, and tokens are found under its spelling of the name).
    pub directory_gate: bool,
    /// How much of the audit log is kept.
    pub retention: crate::model::audit::Retention,
    /// Reply attributes for an Access-Accept (`authorization.rules`).
    pub authorization: Arc<crate::model::reply::Authorization>,
    /// Each RADIUS client's name and access policy, for `user show`'s preview.
    pub clients: Vec<(String, crate::config::ClientAccess)>,
}

impl Settings {
    pub fn token_type(&self, id: &str) -> Option<&TokenType> {
        self.token_types.iter().find(|t| t.id == id)
    }
}

/// Seconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
}

/// How many times an update decides again after losing a race.
const MAX_SWAP_ATTEMPTS: usize = 64;

pub struct Service {
    store: Arc<dyn Store>,
    cipher: SeedCipher,
    directory: RwLock<Arc<dyn UserDirectory>>,
    settings: RwLock<Arc<Settings>>,
    clock: Clock,
    started: Instant,
    metrics: Arc<Metrics>,
    /// Directory password checks per user ([`radius_modes`]).
    binds: crate::limits::PerKeyRate,
}

/// What an update's `decide` chose for the token it was shown. Lives only
/// for one step of the update loop, so its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Change<T> {
    /// Write this token (the one shown, changed) with this audit entry, and report `T`.
    Write(Token, Option<AuditEvent>, T),
    /// Leave the token as it is and report `T`.
    Keep(T),
}

impl Service {
    pub fn new(
        store: Arc<dyn Store>,
        cipher: SeedCipher,
        directory: Arc<dyn UserDirectory>,
        settings: Settings,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Self {
        Service {
            store,
            cipher,
            directory: RwLock::new(directory),
            settings: RwLock::new(Arc::new(settings)),
            clock,
            started: Instant::now(),
            metrics,
            binds: crate::limits::PerKeyRate::new(
                radius_modes::MAX_BINDS_PER_USER_PER_MINUTE,
                60,
                radius_modes::MAX_THROTTLED_USERS,
            ),
        }
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace_settings(&self, settings: Settings, directory: Arc<dyn UserDirectory>) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings);
        *self.directory.write().unwrap_or_else(|p| p.into_inner()) = directory;
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn cipher(&self) -> &SeedCipher {
        &self.cipher
    }

    fn directory(&self) -> Arc<dyn UserDirectory> {
        self.directory.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// Records an audit entry that goes with no change (a read, a refusal,
    /// a rejected login). A failure is logged, never fatal for the caller.
    pub async fn record(&self, actor: &Actor, event: AuditEvent) {
        let write = AuditWrite::new(actor, self.now(), event);
        if let Err(e) = self.store.record(vec![write], Commit::Soon).await {
            tracing::error!(error = %e, "cannot append to the audit log");
        }
    }

    /// Makes every write so far durable (shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.store.flush().await
    }

    fn view(&self, token: &Token, settings: &Settings) -> TokenView {
        let label = settings.token_type(&token.type_id).map(|t| t.label.as_str());
        token.view_at(label, self.now(), settings.auth.lockout_seconds)
    }

    pub async fn get_token(&self, serial: &str) -> Result<Token, DomainError> {
        self.store.get(serial).await?.ok_or_else(|| DomainError::NoSuchToken(serial.to_string()))
    }

    /// Looks a user up in the directory; an unknown user is an error.
    pub async fn directory_user(&self, name: &str) -> Result<DirectoryUser, DomainError> {
        if !valid_user_name(name) {
            return Err(DomainError::Invalid(format!("{name:?} is not a valid user name")));
        }
        self.directory().lookup(name).await?.ok_or_else(|| DomainError::NoSuchUser(name.to_string()))
    }

    pub async fn search_users(
        &self,
        actor: &Actor,
        query: &str,
        limit: usize,
    ) -> Result<Vec<DirectoryUser>, DomainError> {
        let result = self.directory().search(query, limit.clamp(1, 1000)).await.map_err(DomainError::from);
        let details = serde_json::json!({ "query": query, "limit": limit });
        self.audit_read(actor, "user.search", None, None, details, &result).await;
        result
    }

    /// Reads the token, lets `decide` choose, and writes its choice with a
    /// compare-and-swap; a lost race decides again on the fresh token.
    /// `seen` is the caller's copy, if it has one (saves the first read).
    pub(crate) async fn update<T>(
        &self,
        actor: &Actor,
        serial: &str,
        seen: Option<Token>,
        commit: Commit,
        mut decide: impl FnMut(&Token) -> Change<T>,
    ) -> Result<Option<(T, Option<Token>)>, DomainError> {
        let mut current = match seen {
            Some(token) => token,
            None => match self.store.get(serial).await? {
                Some(token) => token,
                None => return Ok(None),
            },
        };
        for _ in 0..MAX_SWAP_ATTEMPTS {
            let (next, event, value) = match decide(&current) {
                Change::Keep(value) => return Ok(Some((value, None))),
                Change::Write(next, event, value) => (next, event, value),
            };
            let write = event.map(|e| AuditWrite::new(actor, self.now(), e));
            match self.store.swap(&next, write, commit).await? {
                Swap::Swapped(stored) => return Ok(Some((value, Some(stored)))),
                Swap::Conflict(fresh) => current = fresh,
                Swap::NotFound => return Ok(None),
            }
        }
        Err(DomainError::Store(StoreError::Conflict(serial.to_string())))
    }

    /// Audits a read-only operation (`token.show`, `status`...) after the fact.
    pub(crate) async fn audit_read<T>(
        &self,
        actor: &Actor,
        operation: &str,
        user: Option<String>,
        serial: Option<String>,
        details: serde_json::Value,
        result: &Result<T, DomainError>,
    ) {
        let (outcome, reason) = error::outcome_of(result);
        let event = AuditEvent { operation: operation.into(), user, serial, details, result: outcome, reason };
        self.record(actor, event).await;
    }
}

#[cfg(test)]
mod directory_bind_tests;
#[cfg(test)]
mod lockout_tests;
#[cfg(test)]
mod tests;
