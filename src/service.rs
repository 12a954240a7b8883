//! The operations of radotp, used by RADIUS and the admin socket alike.
//!
//! [`Service`] owns the rules: how an OTP is checked against a user's tokens,
//! how replays and lockouts work, what an import accepts, who may own a
//! token. It talks to storage only through [`TokenStore`] and to users only
//! through [`UserDirectory`]; it never sees a socket. Outcomes are values (a
//! wrong OTP is a [`Decision::Reject`]); failures of the store or the
//! directory are [`ServiceError`]s.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::audit::{Actor, AuditEntry, AuditEvent, AuditLog, AuditQuery, ChainReport};
use crate::config::AuthConfig;
use crate::crypto::{CryptoError, SeedCipher};
use crate::directory::{DirectoryError, DirectoryUser, UserDirectory};
pub use crate::import::{ImportIssue, ImportReport, MAX_IMPORT_ROWS, MAX_SEED_BYTES, MIN_SEED_BYTES};
use crate::import::{ImportOptions, ImportRow};
use crate::metrics::{Metrics, RadiusCounters};
use crate::model::otp::{self, HashAlg};
use crate::model::token::{Algorithm, OtpParams, Owner, Token, TokenState, TokenType, TokenView, valid_user_name};
use crate::secret::Secret;
use crate::store::group_commit::GroupCommit;
use crate::store::{Change, StoreError, TokenStore, Updated, update_seen, update_with};

/// Settings that a reload may replace as one.
#[derive(Debug, Clone)]
pub struct Settings {
    pub auth: AuthConfig,
    pub token_types: Vec<TokenType>,
    pub enroll: EnrollLabels,
    /// RADIUS requests in `otp` mode must look the user up too (an LDAP
    /// `required_group` is configured).
    pub directory_gate: bool,
}

impl Settings {
    pub fn token_type(&self, id: &str) -> Option<&TokenType> {
        self.token_types.iter().find(|t| t.id == id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("token {0} does not exist")]
    NoSuchToken(String),
    #[error("user {0} is not in the directory")]
    NoSuchUser(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The answer to an authentication attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept { serial: String },
    Reject { reason: RejectReason, serial: Option<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The user owns no token (or is unknown: the two look the same from outside).
    NoToken,
    /// The user's tokens are all disabled or locked.
    NoUsableToken,
    /// The OTP matched no token in its window.
    WrongOtp,
    /// The OTP was the last one accepted.
    Replay,
    /// Empty or over-long user name.
    BadUserName,
    /// The store could not make the accepted OTP durable.
    StoreFailure,
    /// The directory does not know the user.
    UnknownUser,
    /// The user is outside the directory's `required_group`.
    NotInGroup,
    /// The directory password is wrong.
    WrongPassword,
    /// The directory could not be reached.
    DirectoryUnavailable,
    /// The State of a challenge answer is unknown, used, expired or foreign.
    BadState,
    /// Too many challenges pending.
    ChallengeRefused,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NoToken => "no_token",
            RejectReason::NoUsableToken => "no_usable_token",
            RejectReason::WrongOtp => "wrong_otp",
            RejectReason::Replay => "replay",
            RejectReason::BadUserName => "bad_user_name",
            RejectReason::StoreFailure => "store_failure",
            RejectReason::UnknownUser => "unknown_user",
            RejectReason::NotInGroup => "not_in_group",
            RejectReason::WrongPassword => "wrong_password",
            RejectReason::DirectoryUnavailable => "directory_unavailable",
            RejectReason::BadState => "bad_state",
            RejectReason::ChallengeRefused => "challenge_refused",
        }
    }
}

/// Filters of `token list`; all given filters must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenFilter {
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub r#type: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub state: Option<TokenState>,
    #[serde(default)]
    pub unassigned: bool,
    /// At most this many tokens (0: no limit).
    #[serde(default)]
    pub limit: usize,
}

impl TokenFilter {
    /// `state` is the token's state as operators see it ([`Token::state_at`]).
    fn matches(&self, token: &Token, state: TokenState) -> bool {
        self.serial.as_ref().is_none_or(|s| token.serial.contains(s.as_str()))
            && self.r#type.as_ref().is_none_or(|t| &token.type_id == t)
            && self.user.as_ref().is_none_or(|u| token.owner_name() == Some(u.as_str()))
            && self.state.is_none_or(|s| state == s)
            && (!self.unassigned || token.owner.is_none())
    }
}

/// Result of an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub token: TokenView,
    pub previous_owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub uptime_seconds: u64,
    pub tokens_total: u64,
    pub tokens_by_state: std::collections::BTreeMap<String, u64>,
    pub tokens_unassigned: u64,
    pub store_bytes: u64,
    pub radius: RadiusCounters,
}

/// Seconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
}

pub struct Service {
    store: Arc<dyn TokenStore>,
    commit: GroupCommit,
    cipher: SeedCipher,
    directory: RwLock<Arc<dyn UserDirectory>>,
    settings: RwLock<Arc<Settings>>,
    audit: AuditLog,
    clock: Clock,
    started: Instant,
    pub metrics: Metrics,
    pub(crate) challenges: crate::flows::ChallengeStore,
}

impl Service {
    pub fn new(
        store: Arc<dyn TokenStore>,
        cipher: SeedCipher,
        directory: Arc<dyn UserDirectory>,
        settings: Settings,
        clock: Clock,
    ) -> Result<Self, ServiceError> {
        let audit = AuditLog::open(store.clone())?;
        let queued = audit.clone();
        let write_queued: crate::store::group_commit::BeforeFlush = Box::new(move || {
            if let Err(e) = queued.write_pending() {
                tracing::error!(error = %e, "cannot write audit entries");
            }
        });
        let commit = GroupCommit::start(store.clone(), write_queued)
            .map_err(|e| ServiceError::Store(StoreError::Unavailable(format!("cannot start the flush thread: {e}"))))?;
        Ok(Service {
            commit,
            store,
            cipher,
            directory: RwLock::new(directory),
            settings: RwLock::new(Arc::new(settings)),
            audit,
            clock,
            started: Instant::now(),
            metrics: Metrics::default(),
            challenges: crate::flows::ChallengeStore::default(),
        })
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace_settings(&self, settings: Settings, directory: Arc<dyn UserDirectory>) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings);
        *self.directory.write().unwrap_or_else(|p| p.into_inner()) = directory;
    }

    pub(crate) fn directory_handle(&self) -> Arc<dyn UserDirectory> {
        self.directory()
    }

    /// The user's active tokens (a lock that has run out counts as active).
    pub(crate) fn usable_tokens(&self, user: &str) -> Result<Vec<Token>, ServiceError> {
        if !valid_user_name(user) {
            return Ok(Vec::new());
        }
        let (now, lockout) = (self.now(), self.settings().auth.lockout_seconds);
        Ok(self.store.tokens_of(user)?.into_iter().filter(|t| t.state_at(now, lockout) == TokenState::Active).collect())
    }

    /// Whether one of the user's active tokens would accept `otp` now (nothing is consumed).
    pub(crate) fn otp_would_match(&self, user: &str, otp: &str) -> Result<bool, ServiceError> {
        let settings = self.settings();
        let now = self.now();
        for token in self.usable_tokens(user)? {
            if !otp::well_formed(otp, token.params.digits) {
                continue;
            }
            let Ok(seed) = self.cipher.open(&token.serial, &token.sealed_seed) else { continue };
            let (first, last) = acceptable_range(&token, now, &settings.auth);
            if otp::search(seed.expose(), otp, first, last, token.params.digits, token.params.hash).is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn directory(&self) -> Arc<dyn UserDirectory> {
        self.directory.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// Appends to the audit log; a failure is logged, never fatal for the caller.
    pub fn record(&self, actor: &Actor, event: AuditEvent) {
        if let Err(e) = self.audit.append(actor, self.now(), event) {
            tracing::error!(error = %e, "cannot append to the audit log");
        }
    }

    /// Writes queued audit entries and flushes the store (blocking): for shutdown.
    pub fn flush_all(&self) -> Result<(), StoreError> {
        self.audit.write_pending()?;
        self.store.flush()
    }

    /// Makes every write so far durable.
    pub async fn sync(&self) -> Result<(), StoreError> {
        self.commit.sync().await
    }

    // ---------------------------------------------------------------- RADIUS

    /// Checks `otp` for `user` against the user's tokens.
    ///
    /// An Accept is returned only after the advanced counter (or step) is on
    /// disk, so an accepted OTP can never be accepted again, even after a crash.
    pub async fn authenticate(&self, actor: &Actor, user: &str, otp: &str) -> Result<Decision, ServiceError> {
        let decision = self.check_otp(user, otp).await;
        let decision = match decision {
            Ok(d) => d,
            Err(e) => {
                self.record(actor, radius_event(user, "error", None, Some(e.to_string())));
                return Err(e);
            }
        };
        let (result, serial, reason) = match &decision {
            Decision::Accept { serial } => ("accept", Some(serial.clone()), None),
            Decision::Reject { reason, serial } => ("reject", serial.clone(), Some(reason.as_str().to_string())),
        };
        self.record(actor, radius_event(user, result, serial, reason));
        if let Decision::Accept { serial } = &decision {
            // The counter advance and its audit entry must be durable before the Accept leaves.
            if let Err(e) = self.commit.sync().await {
                tracing::error!(error = %e, "cannot make an accepted OTP durable; rejecting");
                return Ok(Decision::Reject { reason: RejectReason::StoreFailure, serial: Some(serial.clone()) });
            }
        }
        Ok(decision)
    }

    async fn check_otp(&self, user: &str, otp: &str) -> Result<Decision, ServiceError> {
        if !valid_user_name(user) {
            return Ok(Decision::Reject { reason: RejectReason::BadUserName, serial: None });
        }
        let settings = self.settings();
        let now = self.now();
        let tokens = self.end_expired_locks(self.store.tokens_of(user)?, now, settings.auth.lockout_seconds)?;
        if tokens.is_empty() {
            // Spend about the time a real check takes, so timing does not tell
            // which user names own tokens.
            let _ = otp::search(&[0u8; 20], otp, 0, settings.auth.hotp_window, 6, HashAlg::Sha1);
            return Ok(Decision::Reject { reason: RejectReason::NoToken, serial: None });
        }
        let mut replayed = None;
        let mut any_usable = false;
        for token in tokens.iter().filter(|t| t.state() == TokenState::Active) {
            any_usable = true;
            let seed = match self.cipher.open(&token.serial, &token.sealed_seed) {
                Ok(seed) => seed,
                Err(e) => {
                    tracing::error!(serial = %token.serial, error = %e, "token seed cannot be opened");
                    continue;
                }
            };
            match self.match_and_consume(token, &seed, otp, now, &settings.auth)? {
                Consumed::Won => {
                    return Ok(Decision::Accept { serial: token.serial.clone() });
                }
                Consumed::Replay => replayed = Some(token.serial.clone()),
                Consumed::NoMatch => {}
            }
        }
        // The log line and audit entry name the token when there is only one
        // it can be about, so operators see which token took the failure.
        let only = |candidates: Vec<&Token>| match candidates.as_slice() {
            [token] => Some(token.serial.clone()),
            _ => None,
        };
        if !any_usable {
            return Ok(Decision::Reject { reason: RejectReason::NoUsableToken, serial: only(tokens.iter().collect()) });
        }
        self.count_failure(&tokens, settings.auth.max_failures, now)?;
        Ok(match replayed {
            Some(serial) => Decision::Reject { reason: RejectReason::Replay, serial: Some(serial) },
            None => Decision::Reject {
                reason: RejectReason::WrongOtp,
                serial: only(tokens.iter().filter(|t| t.state() == TokenState::Active).collect()),
            },
        })
    }

    /// Finds the moving factor of `otp` on `token` and advances past it with
    /// a compare-and-swap. Of several requests racing with the same OTP, only
    /// one can advance: the others then see a counter past their match.
    fn match_and_consume(
        &self,
        token: &Token,
        seed: &Secret,
        otp: &str,
        now: u64,
        auth: &AuthConfig,
    ) -> Result<Consumed, ServiceError> {
        let p = token.params;
        let (first, last) = acceptable_range(token, now, auth);
        let Some(found) = otp::search(seed.expose(), otp, first, last, p.digits, p.hash) else {
            let replay = match p.algorithm {
                Algorithm::Hotp => token.counter.checked_sub(1),
                Algorithm::Totp => token.last_step,
            }
            .is_some_and(|used| otp::search(seed.expose(), otp, used, used, p.digits, p.hash).is_some());
            return Ok(if replay { Consumed::Replay } else { Consumed::NoMatch });
        };
        let outcome = update_seen(self.store.as_ref(), &token.serial, Some(token), |current| {
            if current.state() != TokenState::Active || current.owner != token.owner {
                return Change::Keep(Consumed::NoMatch);
            }
            let mut next = current.clone();
            match p.algorithm {
                Algorithm::Hotp => {
                    if current.counter > found {
                        return Change::Keep(Consumed::Replay);
                    }
                    next.counter = found + 1;
                }
                Algorithm::Totp => {
                    if current.last_step.is_some_and(|s| s >= found) {
                        return Change::Keep(Consumed::Replay);
                    }
                    next.last_step = Some(found);
                }
            }
            next.fail_count = 0;
            next.last_used_at = Some(now);
            Change::Write(Box::new(next), Consumed::Won)
        })?;
        Ok(match outcome {
            Updated::Done(consumed) => consumed,
            Updated::NotFound => Consumed::NoMatch,
        })
    }

    fn count_failure(&self, tokens: &[Token], max_failures: u32, now: u64) -> Result<(), ServiceError> {
        for token in tokens.iter().filter(|t| t.state() == TokenState::Active) {
            let locked = update_seen(self.store.as_ref(), &token.serial, Some(token), |current| {
                if current.state() != TokenState::Active {
                    return Change::Keep(false);
                }
                let mut next = current.clone();
                next.fail_count = current.fail_count.saturating_add(1);
                next.locked = next.fail_count >= max_failures;
                next.locked_at = next.locked.then_some(now);
                let locked = next.locked;
                Change::Write(Box::new(next), locked)
            })?;
            if let Updated::Done(true) = locked {
                tracing::warn!(serial = %token.serial, "token locked after {max_failures} failed attempts");
            }
        }
        Ok(())
    }

    /// Unlocks the tokens among `tokens` whose lock by failures has run out
    /// (`auth.lockout_seconds`), with their fail counts back at 0, and
    /// returns the tokens as they are now. A token that changed owner in the
    /// meantime is left out.
    fn end_expired_locks(&self, tokens: Vec<Token>, now: u64, lockout: u64) -> Result<Vec<Token>, ServiceError> {
        if lockout == 0 || !tokens.iter().any(|t| t.lock_expired(now, lockout)) {
            return Ok(tokens);
        }
        let mut current_tokens = Vec::with_capacity(tokens.len());
        for token in tokens {
            if !token.lock_expired(now, lockout) {
                current_tokens.push(token);
                continue;
            }
            let outcome = update_seen(self.store.as_ref(), &token.serial, Some(&token), |current| {
                if current.owner != token.owner {
                    return Change::Keep(None);
                }
                if !current.lock_expired(now, lockout) {
                    return Change::Keep(Some((current.clone(), false)));
                }
                let mut next = current.clone();
                next.locked = false;
                next.locked_at = None;
                next.fail_count = 0;
                Change::Write(Box::new(next.clone()), Some((next, true)))
            })?;
            let Updated::Done(Some((current, unlocked))) = outcome else { continue };
            if unlocked {
                tracing::info!(serial = %token.serial, "token unlocked: its lockout of {lockout} s is over");
                self.record(
                    &Actor::Daemon,
                    AuditEvent {
                        operation: "token.unlock".into(),
                        user: current.owner_name().map(str::to_string),
                        serial: Some(current.serial.clone()),
                        details: serde_json::json!({ "automatic": true, "lockout_seconds": lockout }),
                        result: "ok".into(),
                        reason: None,
                    },
                );
            }
            current_tokens.push(current);
        }
        Ok(current_tokens)
    }

    /// A wrong directory password: counts as a failed attempt on the user's
    /// active tokens, as a wrong OTP does, unless `auth.count_password_failures`
    /// is off. No code is consumed.
    pub(crate) fn count_wrong_password(&self, user: &str) -> Result<(), ServiceError> {
        let settings = self.settings();
        if !settings.auth.count_password_failures || !valid_user_name(user) {
            return Ok(());
        }
        let now = self.now();
        let tokens = self.end_expired_locks(self.store.tokens_of(user)?, now, settings.auth.lockout_seconds)?;
        self.count_failure(&tokens, settings.auth.max_failures, now)
    }

    // ----------------------------------------------------------------- admin

    fn view(&self, token: &Token, settings: &Settings) -> TokenView {
        let label = settings.token_type(&token.type_id).map(|t| t.label.as_str());
        token.view_at(label, self.now(), settings.auth.lockout_seconds)
    }

    pub fn get_token(&self, serial: &str) -> Result<Token, ServiceError> {
        self.store.get(serial)?.ok_or_else(|| ServiceError::NoSuchToken(serial.to_string()))
    }

    pub fn show(&self, serial: &str) -> Result<TokenView, ServiceError> {
        let settings = self.settings();
        Ok(self.view(&self.get_token(serial)?, &settings))
    }

    pub fn list(&self, filter: &TokenFilter) -> Result<Vec<TokenView>, ServiceError> {
        let settings = self.settings();
        let found = self.list_matching(filter, &settings)?;
        // An empty answer for a type nobody defined is most likely a typo: say so.
        if let Some(type_id) = filter.r#type.as_deref().filter(|t| found.is_empty() && settings.token_type(t).is_none())
        {
            let known: Vec<&str> = settings.token_types.iter().map(|t| t.id.as_str()).collect();
            return Err(ServiceError::Invalid(format!(
                "there is no token type {type_id:?} (defined: {})",
                known.join(", ")
            )));
        }
        Ok(found)
    }

    fn list_matching(&self, filter: &TokenFilter, settings: &Settings) -> Result<Vec<TokenView>, ServiceError> {
        let limit = if filter.limit == 0 { usize::MAX } else { filter.limit };
        let (now, lockout) = (self.now(), settings.auth.lockout_seconds);
        let matches = |token: &Token| filter.matches(token, token.state_at(now, lockout));
        let mut found = Vec::new();
        if let Some(user) = &filter.user {
            // The owner index answers without a scan.
            let mut tokens = self.store.tokens_of(user)?;
            tokens.sort_by(|a, b| a.serial.cmp(&b.serial));
            found.extend(tokens.iter().filter(|t| matches(t)).take(limit).map(|t| self.view(t, settings)));
            return Ok(found);
        }
        self.store.scan(&mut |token| {
            if matches(&token) {
                found.push(self.view(&token, settings));
            }
            found.len() < limit
        })?;
        Ok(found)
    }

    /// Looks a user up in the directory; an unknown user is an error.
    pub async fn directory_user(&self, name: &str) -> Result<DirectoryUser, ServiceError> {
        if !valid_user_name(name) {
            return Err(ServiceError::Invalid(format!("{name:?} is not a valid user name")));
        }
        self.directory().lookup(name).await?.ok_or_else(|| ServiceError::NoSuchUser(name.to_string()))
    }

    pub async fn search_users(&self, query: &str, limit: usize) -> Result<Vec<DirectoryUser>, ServiceError> {
        Ok(self.directory().search(query, limit.clamp(1, 1000)).await?)
    }

    /// Gives `serial` to `user`. A token owned by someone else is refused
    /// unless `reassign`; then the owner changes in one atomic step.
    pub async fn assign(&self, serial: &str, user: &str, reassign: bool) -> Result<Assignment, ServiceError> {
        let entry = self.directory_user(user).await?;
        let owner = Owner { name: entry.name.clone(), display_name: entry.display_name.clone(), dn: entry.dn.clone() };
        self.move_owner(serial, |current| match current.owner_name() {
            Some(name) if name == owner.name => {
                Err(ServiceError::Refused(format!("token {serial} already belongs to {name}")))
            }
            Some(name) if !reassign => Err(ServiceError::Refused(format!(
                "token {serial} belongs to {name}; use --reassign to move it to {}",
                owner.name
            ))),
            _ => Ok(Some(owner.clone())),
        })
        .await
    }

    /// Takes a token from its owner. It stays active with its seed and
    /// counter; its fail count is cleared and it is ready for a new owner.
    pub async fn unassign(&self, serial: &str) -> Result<Assignment, ServiceError> {
        self.move_owner(serial, |current| match current.owner_name() {
            None => Err(ServiceError::Refused(format!("token {serial} is not assigned to anyone"))),
            Some(_) => Ok(None),
        })
        .await
    }

    /// Gives the token the owner `pick` chooses (none: unassigned) in one
    /// atomic step; the fail count and any lock go with the old owner.
    async fn move_owner(
        &self,
        serial: &str,
        mut pick: impl FnMut(&Token) -> Result<Option<Owner>, ServiceError>,
    ) -> Result<Assignment, ServiceError> {
        let outcome = update_with(self.store.as_ref(), serial, |current| match pick(current) {
            Err(e) => Change::Keep(Err(e)),
            Ok(owner) => {
                let previous = current.owner_name().map(str::to_string);
                let mut next = current.clone();
                next.owner = owner;
                next.fail_count = 0;
                next.locked = false;
                next.locked_at = None;
                Change::Write(Box::new(next.clone()), Ok((next, previous)))
            }
        })?;
        match outcome {
            Updated::NotFound => Err(ServiceError::NoSuchToken(serial.to_string())),
            Updated::Done(Err(e)) => Err(e),
            Updated::Done(Ok((token, previous_owner))) => {
                self.commit.sync().await?;
                Ok(Assignment { token: self.view(&token, &self.settings()), previous_owner })
            }
        }
    }

    /// "ADD NEW TOKEN" on a user's page: a hardware token from stock, or a
    /// fresh software token with a generated secret.
    pub async fn enroll(&self, user: &str, type_id: &str, serial: Option<&str>) -> Result<Enrollment, ServiceError> {
        let settings = self.settings();
        let labels = &settings.enroll;
        let allowed: Vec<String> = settings
            .token_types
            .iter()
            .filter(|t| t.operator_enroll)
            .map(|t| format!("{} ({})", t.id, t.label))
            .collect();
        let ty = match settings.token_type(type_id) {
            Some(ty) if ty.operator_enroll => ty.clone(),
            None => {
                return Err(ServiceError::Invalid(format!(
                    "there is no token type {type_id:?}; operators may enroll: {}",
                    if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
                )));
            }
            Some(_) => {
                return Err(ServiceError::Refused(format!(
                    "operators cannot enroll tokens of type {type_id:?}; allowed types: {}",
                    if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
                )));
            }
        };
        let entry = self.directory_user(user).await?;
        if !ty.generate_secret {
            let Some(serial) = serial else {
                return Err(ServiceError::Invalid(format!(
                    "type {} is a hardware type: give --serial of an unassigned token of that type (radotpctl token list --unassigned --type {})",
                    ty.id, ty.id
                )));
            };
            let token = self.get_token(serial)?;
            if token.type_id != ty.id {
                return Err(ServiceError::Refused(format!(
                    "token {serial} is of type {}, not {}",
                    token.type_id, ty.id
                )));
            }
            if let Some(owner) = token.owner_name() {
                return Err(ServiceError::Refused(format!(
                    "token {serial} belongs to {owner}, not to stock; unassign it first (radotpctl token unassign {serial})"
                )));
            }
            let assignment = self.assign(serial, &entry.name, false).await?;
            return Ok(Enrollment { token: assignment.token, secret_base32: None, otpauth_uri: None });
        }
        if serial.is_some() {
            return Err(ServiceError::Invalid(format!("type {} generates its own token; --serial is not used", ty.id)));
        }
        let secret_len = match ty.hash {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha512 => 64,
        };
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; secret_len]);
        crate::crypto::random_bytes(&mut bytes)?;
        let seed = Secret::new(bytes.to_vec());
        let mut suffix = [0u8; 5];
        crate::crypto::random_bytes(&mut suffix)?;
        let serial = format!("{}-{}", ty.id, data_encoding::BASE32_NOPAD.encode(&suffix));
        let now = self.now();
        let token = Token {
            serial: serial.clone(),
            type_id: ty.id.clone(),
            params: OtpParams { algorithm: ty.algorithm, digits: ty.digits, hash: ty.hash, period: ty.period },
            sealed_seed: self.cipher.seal(&serial, &seed)?,
            counter: 0,
            last_step: None,
            drift: 0,
            owner: Some(Owner {
                name: entry.name.clone(),
                display_name: entry.display_name.clone(),
                dn: entry.dn.clone(),
            }),
            disabled: false,
            locked: false,
            fail_count: 0,
            created_at: now,
            last_used_at: None,
            locked_at: None,
            version: 0,
        };
        self.store.insert_all(std::slice::from_ref(&token))?;
        self.commit.sync().await?;
        let secret_base32 = data_encoding::BASE32_NOPAD.encode(seed.expose());
        let uri = otpauth_uri(&token, &secret_base32, &entry.name, labels);
        Ok(Enrollment {
            token: self.view(&token, &settings),
            secret_base32: Some(secret_base32),
            otpauth_uri: Some(uri),
        })
    }

    /// The two-OTP reset: finds two consecutive codes and moves the token past
    /// them; for TOTP, learns the token's clock drift.
    pub async fn reset(&self, serial: &str, first_otp: &str, second_otp: &str) -> Result<ResetOutcome, ServiceError> {
        let settings = self.settings();
        let token = self.get_token(serial)?;
        let ty = settings.token_type(&token.type_id);
        if ty.is_some_and(|t| !t.allow_reset) {
            let label = ty.map(|t| t.label.as_str()).unwrap_or(&token.type_id);
            return Err(ServiceError::Refused(format!(
                "tokens of type {label} ({}) do not allow the reset",
                token.type_id
            )));
        }
        let p = token.params;
        for otp in [first_otp, second_otp] {
            if !otp::well_formed(otp, p.digits) {
                return Err(ServiceError::Invalid(format!("an OTP of this token has {} digits", p.digits)));
            }
        }
        let seed = self.cipher.open(&token.serial, &token.sealed_seed)?;
        let now = self.now();
        let (from, window) = match p.algorithm {
            Algorithm::Hotp => (token.counter, settings.auth.reset_window),
            Algorithm::Totp => {
                let step = otp::time_step(now, p.period);
                let w = settings.auth.totp_reset_window;
                (step.saturating_sub(w), 2 * w)
            }
        };
        let found = otp::search_pair(seed.expose(), first_otp, second_otp, from, window, p.digits, p.hash);
        let Some(first) = found else {
            let reversed =
                otp::search_pair(seed.expose(), second_otp, first_otp, from, window, p.digits, p.hash).is_some();
            return Err(ServiceError::Refused(if reversed {
                "the two OTPs are in reverse order: enter the older one first".to_string()
            } else {
                match p.algorithm {
                    Algorithm::Hotp => format!(
                        "the two OTPs are not consecutive codes of token {serial} within {window} counters of its current counter (already used codes do not count)"
                    ),
                    Algorithm::Totp => format!(
                        "the two OTPs are not consecutive codes of token {serial} within {} steps of now",
                        settings.auth.totp_reset_window
                    ),
                }
            }));
        };
        let outcome = update_with(self.store.as_ref(), serial, |current| {
            let mut next = current.clone();
            let moved = match p.algorithm {
                Algorithm::Hotp => {
                    if current.counter > first {
                        return Change::Keep(Err(ServiceError::Refused("these OTPs have already been used".into())));
                    }
                    next.counter = first + 2;
                    next.counter - current.counter
                }
                Algorithm::Totp => {
                    if current.last_step.is_some_and(|s| s >= first) {
                        return Change::Keep(Err(ServiceError::Refused("these OTPs have already been used".into())));
                    }
                    next.last_step = Some(first + 1);
                    next.drift = (first + 1) as i64 - otp::time_step(now, p.period) as i64;
                    0
                }
            };
            next.fail_count = 0;
            next.locked = false;
            next.locked_at = None;
            Change::Write(Box::new(next.clone()), Ok((next, moved)))
        })?;
        match outcome {
            Updated::NotFound => Err(ServiceError::NoSuchToken(serial.to_string())),
            Updated::Done(Err(e)) => Err(e),
            Updated::Done(Ok((token, moved))) => {
                self.commit.sync().await?;
                Ok(ResetOutcome {
                    token: self.view(&token, &settings),
                    counter_moved_by: moved,
                    drift_steps: token.drift,
                })
            }
        }
    }

    /// Enables or disables a token.
    pub async fn set_disabled(&self, serial: &str, disabled: bool) -> Result<TokenView, ServiceError> {
        self.change(serial, |token| {
            token.disabled = disabled;
            if !disabled {
                token.fail_count = 0;
                token.locked = false;
                token.locked_at = None;
            }
            Ok(())
        })
        .await
    }

    /// Unlocks a token locked by failed OTPs.
    pub async fn unlock(&self, serial: &str) -> Result<TokenView, ServiceError> {
        self.change(serial, |token| {
            token.locked = false;
            token.locked_at = None;
            token.fail_count = 0;
            Ok(())
        })
        .await
    }

    async fn change(
        &self,
        serial: &str,
        mut edit: impl FnMut(&mut Token) -> Result<(), ServiceError>,
    ) -> Result<TokenView, ServiceError> {
        let outcome = update_with(self.store.as_ref(), serial, |current| {
            let mut next = current.clone();
            match edit(&mut next) {
                Ok(()) => Change::Write(Box::new(next.clone()), Ok(next)),
                Err(e) => Change::Keep(Err(e)),
            }
        })?;
        match outcome {
            Updated::NotFound => Err(ServiceError::NoSuchToken(serial.to_string())),
            Updated::Done(Err(e)) => Err(e),
            Updated::Done(Ok(token)) => {
                self.commit.sync().await?;
                Ok(self.view(&token, &self.settings()))
            }
        }
    }

    /// Deletes a token for good (refused for types with `deletable: false`).
    pub async fn delete(&self, serial: &str) -> Result<TokenView, ServiceError> {
        let settings = self.settings();
        let token = self.get_token(serial)?;
        if let Some(ty) = settings.token_type(&token.type_id).filter(|t| !t.deletable) {
            return Err(ServiceError::Refused(format!(
                "tokens of type {} ({}) may not be deleted; disable it instead",
                ty.label, ty.id
            )));
        }
        let removed = self.store.remove(serial)?.ok_or_else(|| ServiceError::NoSuchToken(serial.to_string()))?;
        self.commit.sync().await?;
        Ok(self.view(&removed, &settings))
    }

    /// A consistent copy of tokens (seeds still sealed) and audit, taken while
    /// RADIUS keeps serving.
    pub fn backup(&self) -> Result<Backup, ServiceError> {
        self.audit.write_pending()?;
        let snapshot = self.store.snapshot()?;
        let mut backup = Backup {
            format: BACKUP_FORMAT.into(),
            version: BACKUP_VERSION,
            created_at: self.now(),
            daemon_version: env!("CARGO_PKG_VERSION").into(),
            snapshot,
            mac: None,
        };
        backup.sign(&self.cipher).map_err(|e| ServiceError::Invalid(format!("cannot encode the backup: {e}")))?;
        Ok(backup)
    }

    pub fn token_types(&self) -> Vec<TokenType> {
        self.settings().token_types.clone()
    }

    /// Imports tokens from CSV text (see docs/configuration.md for the columns).
    pub async fn import_csv(
        &self,
        content: &str,
        skip_invalid: bool,
        dry_run: bool,
    ) -> Result<ImportReport, ServiceError> {
        let options = ImportOptions { format: Some(crate::import::ImportFormat::Csv), ..ImportOptions::default() };
        self.import(zeroize::Zeroizing::new(content.to_string()), options, skip_invalid, dry_run).await
    }

    /// Imports tokens from a CSV or PSKC file (see [`crate::import`]).
    ///
    /// The whole file is checked first. Serials that exist already (or earlier
    /// in the file) are skipped; when any row is invalid nothing is written,
    /// unless `skip_invalid`. The tokens are written in one atomic step.
    ///
    /// `content` (for CSV, the seeds in clear) is wiped as soon as it is parsed.
    pub async fn import(
        &self,
        content: zeroize::Zeroizing<String>,
        options: ImportOptions,
        skip_invalid: bool,
        dry_run: bool,
    ) -> Result<ImportReport, ServiceError> {
        let settings = self.settings();
        let now = self.now();
        let started = Instant::now();
        // Parsing, decrypting and sealing are CPU work: keep them off the async workers.
        let (rows, report) = blocking(move || {
            let mut report = ImportReport { dry_run, ..ImportReport::default() };
            let rows = crate::import::parse(&content, &options, &settings, &mut report)?;
            drop(content);
            Ok((rows, report))
        })
        .await?;
        let parsed = started.elapsed();
        // Each user named in the file is looked up once.
        let directory = self.directory();
        let mut owners: HashMap<String, Result<Owner, String>> = HashMap::new();
        for name in rows.iter().filter_map(|r| r.user.as_ref()) {
            if !owners.contains_key(name) {
                let owner = match directory.lookup(name).await {
                    Ok(Some(u)) => Ok(Owner { name: u.name, display_name: u.display_name, dn: u.dn }),
                    Ok(None) => Err(format!("user {name} is not in the directory")),
                    // A directory that does not answer aborts the import ...
                    Err(e @ DirectoryError::Unavailable(_)) => return Err(e.into()),
                    // ... ambiguous, outside the required group, not a name: those rows only.
                    Err(e) => Err(e.to_string()),
                };
                owners.insert(name.clone(), owner);
            }
        }
        let store = self.store.clone();
        let cipher = self.cipher.clone();
        let (tokens, mut report) = blocking(move || build_tokens(rows, &owners, &*store, &cipher, now, report)).await?;
        let checked = started.elapsed();
        report.invalid.sort_by_key(|i| i.line);
        report.valid = tokens.len();
        if !report.invalid.is_empty() && !skip_invalid {
            report.aborted = true;
            return Ok(report);
        }
        if !dry_run && !tokens.is_empty() {
            let store = self.store.clone();
            blocking(move || Ok(store.insert_all(&tokens)?)).await?;
            self.commit.sync().await?;
        }
        report.imported = report.valid;
        tracing::info!(
            format = report.format.as_deref().unwrap_or("-"),
            valid = report.valid,
            skipped = report.skipped.len(),
            invalid = report.invalid.len(),
            dry_run,
            parse_ms = parsed.as_millis() as u64,
            check_ms = (checked - parsed).as_millis() as u64,
            write_ms = (started.elapsed() - checked).as_millis() as u64,
            "import finished"
        );
        Ok(report)
    }

    pub fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, ServiceError> {
        Ok(self.audit.query(query)?)
    }

    pub fn audit_verify(&self) -> Result<ChainReport, ServiceError> {
        Ok(self.audit.verify()?)
    }

    pub fn status(&self) -> Result<StatusReport, ServiceError> {
        let mut by_state = std::collections::BTreeMap::new();
        for state in [TokenState::Active, TokenState::Disabled, TokenState::Locked] {
            by_state.insert(state.as_str().to_string(), 0u64);
        }
        let mut total = 0u64;
        let mut unassigned = 0u64;
        let (now, lockout) = (self.now(), self.settings().auth.lockout_seconds);
        self.store.scan(&mut |token| {
            total += 1;
            if token.owner.is_none() {
                unassigned += 1;
            }
            *by_state.entry(token.state_at(now, lockout).as_str().to_string()).or_default() += 1;
            true
        })?;
        Ok(StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: self.started.elapsed().as_secs(),
            tokens_total: total,
            tokens_by_state: by_state,
            tokens_unassigned: unassigned,
            store_bytes: self.store.size_on_disk().unwrap_or(0),
            radius: self.metrics.snapshot(),
        })
    }
}

pub const BACKUP_FORMAT: &str = "radotp-backup";
pub const BACKUP_VERSION: u32 = 1;

/// What a backup's MAC covers first, before the JSON of its content.
const BACKUP_MAC_DOMAIN: &[u8] = b"radotp-backup-v1\n";

/// A backup file: tokens with sealed seeds, and the audit chain.
///
/// `mac` authenticates everything else: the hex HMAC-SHA256, under a key
/// derived from the master key ([`SeedCipher::backup_mac`]), of
/// `radotp-backup-v1\n` followed by the compact JSON of the other fields in
/// the order they are declared here. A restore re-encodes what it read and
/// compares, so fields added later to these types (tokens included) must be
/// left out of the JSON while they have their default
/// (`skip_serializing_if`), or the MACs of older backups stop verifying.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backup {
    pub format: String,
    pub version: u32,
    pub created_at: u64,
    pub daemon_version: String,
    pub snapshot: crate::store::Snapshot,
    /// Absent from backups of versions before backups were signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// Whether a backup's MAC verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupMacStatus {
    Valid,
    /// The backup carries no MAC.
    Missing,
    /// The content was changed, or the MAC was made under another master key.
    Invalid,
}

impl Backup {
    fn content_mac(&self, cipher: &SeedCipher) -> Result<crate::crypto::BackupMac, serde_json::Error> {
        use hmac::Mac;
        #[derive(Serialize)]
        struct Content<'a> {
            format: &'a str,
            version: u32,
            created_at: u64,
            daemon_version: &'a str,
            snapshot: &'a crate::store::Snapshot,
        }
        /// Feeds the JSON to the MAC as it is written, without a copy of the whole backup.
        struct Feed<'a>(&'a mut crate::crypto::BackupMac);
        impl std::io::Write for Feed<'_> {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.update(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut mac = cipher.backup_mac();
        mac.update(BACKUP_MAC_DOMAIN);
        let content = Content {
            format: &self.format,
            version: self.version,
            created_at: self.created_at,
            daemon_version: &self.daemon_version,
            snapshot: &self.snapshot,
        };
        serde_json::to_writer(Feed(&mut mac), &content)?;
        Ok(mac)
    }

    /// Sets `mac` for the current content.
    pub fn sign(&mut self, cipher: &SeedCipher) -> Result<(), serde_json::Error> {
        use hmac::Mac;
        let tag = self.content_mac(cipher)?.finalize().into_bytes();
        self.mac = Some(data_encoding::HEXLOWER.encode(&tag));
        Ok(())
    }

    /// Checks `mac` against the content (in constant time).
    pub fn mac_status(&self, cipher: &SeedCipher) -> BackupMacStatus {
        use hmac::Mac;
        let Some(text) = &self.mac else { return BackupMacStatus::Missing };
        let Ok(tag) = data_encoding::HEXLOWER_PERMISSIVE.decode(text.as_bytes()) else {
            return BackupMacStatus::Invalid;
        };
        match self.content_mac(cipher).map(|mac| mac.verify_slice(&tag)) {
            Ok(Ok(())) => BackupMacStatus::Valid,
            _ => BackupMacStatus::Invalid,
        }
    }

    /// Checks the audit chain the backup carries.
    pub fn verify_audit_chain(&self) -> ChainReport {
        crate::audit::verify_chain(self.snapshot.audit.iter().map(|(seq, text)| (*seq, text.as_bytes())))
    }
}

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub tokens: usize,
    pub audit_entries: usize,
    /// Checks that failed and were overridden with `force` (empty without it).
    pub overridden: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} is not a radotp backup: {1}")]
    NotABackup(String, String),
    #[error("the store at {0} already holds data; restore into an empty store (move the old one away first)")]
    NotEmpty(String),
    #[error(
        "the configured key file does not open the backup's seeds (token {0}): restore the key file that was in use when the backup was made"
    )]
    WrongKey(String),
    #[error(
        "the backup has no MAC: it was made by a radotp version that did not sign backups, or the MAC was removed, so changes to its owners, counters or states cannot be detected; if you trust where it came from, restore it with --force"
    )]
    Unsigned,
    #[error(
        "the backup's MAC does not verify: the file was changed after `radotpctl backup` wrote it (owners, counters or states may have been edited), or it was made under another master key; nothing was written (--force restores it anyway)"
    )]
    BadMac,
    #[error(
        "the backup's audit chain does not verify at entry {seq}: {problem}; nothing was written (--force restores it anyway)"
    )]
    BrokenChain { seq: u64, problem: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes a backup into an empty store. Checks first that the master key
/// opens the seeds, so a restore with the wrong key file fails loudly; then
/// that the backup's MAC and its audit chain verify. A backup that fails
/// either check (or has no MAC) is refused unless `force`; then the report
/// names what was overridden. Nothing is written when a check refuses.
pub fn restore(
    store: &dyn TokenStore,
    cipher: &SeedCipher,
    backup: &Backup,
    force: bool,
) -> Result<RestoreReport, RestoreError> {
    if store.count()? > 0 || store.last_audit()?.is_some() {
        return Err(RestoreError::NotEmpty(String::new()));
    }
    if let Some(token) = backup.snapshot.tokens.first() {
        cipher.open(&token.serial, &token.sealed_seed).map_err(|_| RestoreError::WrongKey(token.serial.clone()))?;
    }
    let mut problems = Vec::new();
    match backup.mac_status(cipher) {
        BackupMacStatus::Valid => {}
        BackupMacStatus::Missing => problems.push(RestoreError::Unsigned),
        BackupMacStatus::Invalid => problems.push(RestoreError::BadMac),
    }
    let chain = backup.verify_audit_chain();
    if !chain.ok {
        problems.push(RestoreError::BrokenChain {
            seq: chain.first_broken.unwrap_or_default(),
            problem: chain.problem.unwrap_or_default(),
        });
    }
    if !force && !problems.is_empty() {
        return Err(problems.remove(0));
    }
    for chunk in backup.snapshot.tokens.chunks(10_000) {
        store.insert_all(chunk)?;
    }
    for (seq, text) in &backup.snapshot.audit {
        store.append_audit(&crate::store::AuditRecord { seq: *seq, bytes: text.clone().into_bytes() })?;
    }
    store.flush()?;
    Ok(RestoreReport {
        tokens: backup.snapshot.tokens.len(),
        audit_entries: backup.snapshot.audit.len(),
        overridden: problems.iter().map(ToString::to_string).collect(),
    })
}

/// Issuer and account label of the `otpauth://` URI of soft tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollLabels {
    pub issuer: String,
    /// `{user}` is replaced by the user name, `{serial}` by the serial.
    pub account: String,
}

impl Default for EnrollLabels {
    fn default() -> Self {
        EnrollLabels { issuer: "radotp".into(), account: "{user}".into() }
    }
}

/// What enrollment hands back: the secret and URI only for generated tokens,
/// and only this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    pub token: TokenView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_base32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otpauth_uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResetOutcome {
    pub token: TokenView,
    /// HOTP: how far the counter moved.
    pub counter_moved_by: u64,
    /// TOTP: the clock drift learnt, in steps.
    pub drift_steps: i64,
}

/// The Key Uri Format understood by authenticator apps.
fn otpauth_uri(token: &Token, secret_base32: &str, user: &str, labels: &EnrollLabels) -> String {
    let p = token.params;
    let account = labels.account.replace("{user}", user).replace("{serial}", &token.serial);
    let mut uri = format!(
        "otpauth://{}/{}:{}?secret={secret_base32}&issuer={}&algorithm={}&digits={}",
        p.algorithm.as_str(),
        percent_encode(&labels.issuer),
        percent_encode(&account),
        percent_encode(&labels.issuer),
        p.hash.as_str().to_ascii_uppercase(),
        p.digits
    );
    match p.algorithm {
        Algorithm::Totp => uri.push_str(&format!("&period={}", p.period)),
        Algorithm::Hotp => uri.push_str(&format!("&counter={}", token.counter)),
    }
    uri
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

enum Consumed {
    Won,
    Replay,
    NoMatch,
}

/// The moving factors an OTP may match now. A token never used so far gets
/// the wider first-use windows: its counter or clock may have moved on since
/// it left the factory.
fn acceptable_range(token: &Token, now: u64, auth: &AuthConfig) -> (u64, u64) {
    let first_use = token.last_used_at.is_none();
    match token.params.algorithm {
        Algorithm::Hotp => {
            let window = if first_use { auth.hotp_window.max(auth.first_use_window) } else { auth.hotp_window };
            (token.counter, token.counter.saturating_add(window))
        }
        Algorithm::Totp => {
            let window = if first_use { auth.totp_window.max(auth.totp_first_use_window) } else { auth.totp_window };
            let step = otp::time_step(now, token.params.period).saturating_add_signed(token.drift);
            let first = step.saturating_sub(window);
            let first = match token.last_step {
                Some(used) => first.max(used.saturating_add(1)),
                None => first,
            };
            (first, step.saturating_add(window))
        }
    }
}

fn radius_event(user: &str, result: &str, serial: Option<String>, reason: Option<String>) -> AuditEvent {
    AuditEvent {
        operation: "radius.auth".into(),
        user: Some(user.chars().take(256).collect()),
        serial,
        details: serde_json::Value::Null,
        result: result.into(),
        reason,
    }
}

/// Runs CPU or disk work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ServiceError::Invalid(format!("internal error: {e}"))))
}

/// Turns checked rows into sealed tokens: skips serials seen earlier in the
/// file or already stored, refuses users missing from the directory.
fn build_tokens(
    rows: Vec<ImportRow>,
    owners: &HashMap<String, Result<Owner, String>>,
    store: &dyn TokenStore,
    cipher: &SeedCipher,
    now: u64,
    mut report: ImportReport,
) -> Result<(Vec<Token>, ImportReport), ServiceError> {
    let mut seen = HashSet::with_capacity(rows.len());
    let mut tokens = Vec::with_capacity(rows.len());
    let serials: Vec<&str> = rows.iter().map(|r| r.serial.as_str()).collect();
    let existing = store.existing(&serials)?;
    drop(serials);
    for row in rows {
        let issue = |reason: String| ImportIssue {
            line: row.line,
            serial: Some(row.serial.clone()),
            reason,
            key_id: row.key_id.clone(),
        };
        if !seen.insert(row.serial.clone()) {
            report.skipped.push(issue("serial appears earlier in the file".into()));
            continue;
        }
        if existing.contains(&row.serial) {
            report.skipped.push(issue("serial already exists".into()));
            continue;
        }
        let owner = match &row.user {
            None => None,
            Some(name) => match owners.get(name) {
                Some(Ok(owner)) => Some(owner.clone()),
                Some(Err(reason)) => {
                    report.invalid.push(issue(reason.clone()));
                    continue;
                }
                None => {
                    report.invalid.push(issue(format!("user {name} is not in the directory")));
                    continue;
                }
            },
        };
        let sealed_seed = cipher.seal(&row.serial, &row.seed)?;
        tokens.push(Token {
            serial: row.serial,
            type_id: row.type_id,
            params: row.params,
            sealed_seed,
            counter: row.counter,
            last_step: None,
            drift: row.drift,
            owner,
            disabled: false,
            locked: false,
            fail_count: 0,
            created_at: now,
            last_used_at: None,
            locked_at: None,
            version: 0,
        });
    }
    Ok((tokens, report))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// RFC 4226 appendix D: the seed, and its codes for counters 0 to 9.
    pub(crate) const RFC_SEED_HEX: &str = "3132333435363738393031323334353637383930";
    pub(crate) const RFC_CODES: [&str; 10] =
        ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];

    /// A service on a store in a temporary directory, with a clock the test sets.
    pub(crate) struct Fixture {
        pub service: Service,
        pub clock: Arc<AtomicU64>,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        pub(crate) fn new(auth: AuthConfig, directory: Arc<dyn UserDirectory>) -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn TokenStore> =
                Arc::new(crate::store::sled_store::SledStore::open(dir.path(), 1 << 20).unwrap());
            let clock = Arc::new(AtomicU64::new(1_000_000));
            let time = clock.clone();
            let settings = Settings {
                auth,
                token_types: vec![TokenType {
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
                }],
                enroll: EnrollLabels::default(),
                directory_gate: false,
            };
            let service = Service::new(
                store,
                SeedCipher::new(&[9u8; 32]),
                directory,
                settings,
                Arc::new(move || time.load(Ordering::SeqCst)),
            )
            .unwrap();
            Fixture { service, clock, _dir: dir }
        }

        /// A static directory with alice and bob, and an HOTP token of the RFC seed for each.
        pub(crate) async fn with_tokens(auth: AuthConfig) -> Fixture {
            let users = ["alice", "bob"].map(|name| crate::directory::DirectoryUser {
                name: name.into(),
                display_name: None,
                email: None,
                dn: None,
            });
            let fixture =
                Fixture::new(auth, Arc::new(crate::directory::static_list::StaticDirectory::new(users.to_vec())));
            fixture.import_tokens().await;
            fixture
        }

        pub(crate) async fn import_tokens(&self) {
            let csv =
                format!("serial,type,seed,user\nA1,hw-hotp,{RFC_SEED_HEX},alice\nB1,hw-hotp,{RFC_SEED_HEX},bob\n");
            let report = self.service.import_csv(&csv, false, false).await.unwrap();
            assert_eq!(report.imported, 2, "{report:?}");
        }

        pub(crate) fn set_time(&self, now: u64) {
            self.clock.store(now, Ordering::SeqCst);
        }

        pub(crate) async fn check(&self, user: &str, otp: &str) -> Decision {
            self.service.authenticate(&Actor::Daemon, user, otp).await.unwrap()
        }

        pub(crate) fn token(&self, serial: &str) -> Token {
            self.service.get_token(serial).unwrap()
        }
    }

    fn accepted(decision: &Decision) -> bool {
        matches!(decision, Decision::Accept { .. })
    }

    fn reason(decision: &Decision) -> Option<RejectReason> {
        match decision {
            Decision::Reject { reason, .. } => Some(*reason),
            Decision::Accept { .. } => None,
        }
    }

    #[tokio::test]
    async fn a_lock_ends_by_itself_after_lockout_seconds_and_the_count_restarts() {
        let auth = AuthConfig { max_failures: 3, lockout_seconds: 600, ..AuthConfig::default() };
        let f = Fixture::with_tokens(auth).await;
        f.set_time(1000);
        for _ in 0..3 {
            assert_eq!(reason(&f.check("alice", "000000").await), Some(RejectReason::WrongOtp));
        }
        let token = f.token("A1");
        assert!(token.locked && token.locked_at == Some(1000), "{token:?}");
        let view = f.service.show("A1").unwrap();
        assert_eq!((view.state, view.locked_at, view.unlocks_at), (TokenState::Locked, Some(1000), Some(1600)));
        assert_eq!(f.token("B1").fail_count, 0, "another user's token is not touched");

        // One second before the end: still locked, even for the right code.
        f.set_time(1599);
        assert_eq!(reason(&f.check("alice", RFC_CODES[0]).await), Some(RejectReason::NoUsableToken));
        assert_eq!(f.service.status().unwrap().tokens_by_state["locked"], 1);

        // At the end: shown as active at once, unlocked in the store at its next use.
        f.set_time(1600);
        let view = f.service.show("A1").unwrap();
        assert_eq!((view.state, view.fail_count, view.unlocks_at), (TokenState::Active, 0, None));
        assert_eq!(f.service.status().unwrap().tokens_by_state["locked"], 0);
        let locked = TokenFilter { state: Some(TokenState::Locked), ..TokenFilter::default() };
        assert!(f.service.list(&locked).unwrap().is_empty());
        // The fail count starts again from 0: a wrong code makes it 1, not 4.
        assert_eq!(reason(&f.check("alice", "000000").await), Some(RejectReason::WrongOtp));
        let token = f.token("A1");
        assert_eq!((token.locked, token.fail_count, token.locked_at), (false, 1, None));
        assert!(accepted(&f.check("alice", RFC_CODES[0]).await), "the code that was refused while locked");
        let unlocks = f
            .service
            .audit(&AuditQuery { limit: 0, serial: Some("A1".into()), ..AuditQuery::default() })
            .unwrap()
            .into_iter()
            .filter(|e| e.operation == "token.unlock")
            .collect::<Vec<_>>();
        assert_eq!(unlocks.len(), 1, "{unlocks:?}");
        assert_eq!((unlocks[0].actor.clone(), unlocks[0].details["automatic"].clone()), (Actor::Daemon, true.into()));

        // The next lock runs from its own start.
        f.set_time(5000);
        for _ in 0..3 {
            f.check("alice", "000000").await;
        }
        assert_eq!(f.service.show("A1").unwrap().unlocks_at, Some(5600));
        f.set_time(5599);
        assert_eq!(reason(&f.check("alice", RFC_CODES[1]).await), Some(RejectReason::NoUsableToken));
        f.set_time(5600);
        assert!(accepted(&f.check("alice", RFC_CODES[1]).await));
    }

    #[tokio::test]
    async fn without_lockout_seconds_a_lock_lasts_and_disable_never_ends_by_itself() {
        // lockout_seconds: 0 (the default): locked until an operator acts.
        let f = Fixture::with_tokens(AuthConfig { max_failures: 2, ..AuthConfig::default() }).await;
        f.set_time(1000);
        f.check("alice", "000000").await;
        f.check("alice", "000000").await;
        assert_eq!(f.service.show("A1").unwrap().unlocks_at, None);
        f.set_time(1000 + 10 * 365 * 86_400);
        assert_eq!(reason(&f.check("alice", RFC_CODES[0]).await), Some(RejectReason::NoUsableToken));
        assert_eq!(f.service.show("A1").unwrap().state, TokenState::Locked);
        f.service.unlock("A1").await.unwrap();
        assert_eq!(f.token("A1").locked_at, None);
        assert!(accepted(&f.check("alice", RFC_CODES[0]).await));

        // With lockout_seconds, an operator's disable stays, lock or not.
        let f =
            Fixture::with_tokens(AuthConfig { max_failures: 2, lockout_seconds: 60, ..AuthConfig::default() }).await;
        f.set_time(1000);
        f.check("alice", "000000").await;
        f.check("alice", "000000").await;
        f.service.set_disabled("A1", true).await.unwrap();
        f.service.set_disabled("B1", true).await.unwrap();
        f.set_time(2000);
        assert_eq!(f.service.show("A1").unwrap().state, TokenState::Disabled);
        assert_eq!(reason(&f.check("alice", RFC_CODES[0]).await), Some(RejectReason::NoUsableToken));
        assert_eq!(reason(&f.check("bob", RFC_CODES[0]).await), Some(RejectReason::NoUsableToken));
        assert!(f.token("A1").disabled && f.token("B1").disabled);
        f.service.set_disabled("A1", false).await.unwrap();
        assert!(accepted(&f.check("alice", RFC_CODES[0]).await));
    }

    #[tokio::test]
    async fn backups_are_signed_and_restore_checks_the_mac_and_the_audit_chain() {
        let f = Fixture::with_tokens(AuthConfig::default()).await;
        assert!(accepted(&f.check("alice", RFC_CODES[0]).await));
        f.check("bob", "000000").await;
        let backup = f.service.backup().unwrap();
        assert_eq!(backup.mac_status(&f.service.cipher), BackupMacStatus::Valid);
        assert!(backup.verify_audit_chain().ok);
        // As radotpctl writes it and radotpd --restore reads it.
        let text = serde_json::to_string_pretty(&backup).unwrap();
        let read: Backup = serde_json::from_str(&text).unwrap();
        assert_eq!(read.mac_status(&f.service.cipher), BackupMacStatus::Valid);

        let restore_into = |backup: &Backup, force: bool| {
            let dir = tempfile::tempdir().unwrap();
            let store = crate::store::sled_store::SledStore::open(dir.path(), 1 << 20).unwrap();
            let result = restore(&store, &f.service.cipher, backup, force);
            let tokens = store.count().unwrap();
            (result, tokens)
        };
        let (result, tokens) = restore_into(&read, false);
        let report = result.unwrap();
        assert_eq!((report.tokens, tokens, report.overridden.len()), (2, 2, 0));

        // Bob takes alice's token in the file: refused, nothing written; --force writes it.
        let edited: Backup = serde_json::from_str(&text.replace(r#""name": "alice""#, r#""name": "bob""#)).unwrap();
        assert_eq!(edited.snapshot.tokens.iter().filter(|t| t.owner_name() == Some("bob")).count(), 2);
        assert_eq!(edited.mac_status(&f.service.cipher), BackupMacStatus::Invalid);
        let (result, tokens) = restore_into(&edited, false);
        assert!(matches!(result, Err(RestoreError::BadMac)), "{result:?}");
        assert_eq!(tokens, 0, "nothing written");
        let (result, tokens) = restore_into(&edited, true);
        assert_eq!((result.unwrap().overridden.len(), tokens), (1, 2));

        // A rolled-back counter, an unlocked token: the same.
        let counter = text.replacen(r#""counter": 1"#, r#""counter": 0"#, 1);
        assert_ne!(counter, text);
        let counter: Backup = serde_json::from_str(&counter).unwrap();
        assert!(matches!(restore_into(&counter, false).0, Err(RestoreError::BadMac)));

        // No MAC (a backup of an older version): refused unless forced.
        let mut unsigned = read.clone();
        unsigned.mac = None;
        assert_eq!(unsigned.mac_status(&f.service.cipher), BackupMacStatus::Missing);
        assert!(matches!(restore_into(&unsigned, false).0, Err(RestoreError::Unsigned)));
        assert_eq!(restore_into(&unsigned, true).1, 2);

        // Another master key: the MAC does not verify.
        assert_eq!(read.mac_status(&SeedCipher::new(&[1u8; 32])), BackupMacStatus::Invalid);

        // An audit entry edited and the MAC made again (by someone holding
        // the key): the chain check still refuses it.
        let mut rewritten = read.clone();
        let (_, entry) = &mut rewritten.snapshot.audit[0];
        *entry = entry.replace("\"accept\"", "\"reject\"");
        rewritten.sign(&f.service.cipher).unwrap();
        assert_eq!(rewritten.mac_status(&f.service.cipher), BackupMacStatus::Valid);
        let (result, tokens) = restore_into(&rewritten, false);
        assert!(matches!(result, Err(RestoreError::BrokenChain { seq: 1, .. })), "{result:?}");
        assert_eq!(tokens, 0);
    }

    fn token(algorithm: Algorithm, last_used_at: Option<u64>) -> Token {
        Token {
            serial: "T".into(),
            type_id: "t".into(),
            params: OtpParams { algorithm, digits: 6, hash: HashAlg::Sha1, period: 30 },
            sealed_seed: Vec::new(),
            counter: 5,
            last_step: None,
            drift: 0,
            owner: None,
            disabled: false,
            locked: false,
            fail_count: 0,
            created_at: 0,
            last_used_at,
            locked_at: None,
            version: 0,
        }
    }

    #[test]
    fn first_use_window_applies_until_the_first_success() {
        let auth = AuthConfig::default();
        assert_eq!((auth.first_use_window, auth.totp_first_use_window), (100, 10));
        let now = 3000; // step 100
        assert_eq!(acceptable_range(&token(Algorithm::Hotp, None), now, &auth), (5, 105));
        assert_eq!(acceptable_range(&token(Algorithm::Hotp, Some(1)), now, &auth), (5, 15));
        assert_eq!(acceptable_range(&token(Algorithm::Totp, None), now, &auth), (90, 110));
        assert_eq!(acceptable_range(&token(Algorithm::Totp, Some(1)), now, &auth), (99, 101));
        // 0 (or anything below the normal window) leaves the normal window.
        let off = AuthConfig { first_use_window: 0, totp_first_use_window: 0, ..AuthConfig::default() };
        assert_eq!(acceptable_range(&token(Algorithm::Hotp, None), now, &off), (5, 15));
        assert_eq!(acceptable_range(&token(Algorithm::Totp, None), now, &off), (99, 101));
    }
}
