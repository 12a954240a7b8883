//! The OTP check: which token a code belongs to, replay, and lockout.
//!
//! An accepted code advances its token's counter (HOTP) or last step (TOTP)
//! with a compare-and-swap that carries the Accept's audit entry and is
//! durable before the Accept is returned, so a code is accepted once, even
//! across a crash and across nodes sharing one store. Failures count towards
//! the lockout on every active token of the user, and are forgotten one by
//! one with time (`auth.failure_decay_seconds`), not by a success.
//!
//! What is not a guess is not counted: a code that was already used (a
//! replay of a captured request, or a NAS retrying an accepted code as a
//! new request) matches a recently used moving factor and is refused as
//! `replay` without a failure; a seed that cannot be decrypted is a server
//! fault (`seed_unreadable`), logged and counted in the metrics only.

use super::{Change, DomainError, Service};
use crate::config::AuthConfig;
use crate::model::audit::{Actor, AuditEvent};
use crate::model::decision::{Decision, RejectReason};
use crate::model::otp::{self, HashAlg};
use crate::model::token::{Algorithm, Token, TokenState, valid_user_name};
use crate::secret::Secret;
use crate::store::{Commit, StoreError};

/// How many HOTP counters below the next one a replayed code is recognised in.
const REPLAY_MEMORY_COUNTERS: u64 = 32;
/// How far back (seconds) before the last used TOTP step a replayed code is
/// recognised.
const REPLAY_MEMORY_SECONDS: u64 = 3600;

/// What an attempt to consume a code on one token came to.
enum Consumed {
    Won,
    Replay,
    /// A TOTP code of the token for a time this far (seconds) from now.
    ClockSkew(i64),
    NoMatch,
}

impl Service {
    /// Checks `otp` for `user` against the user's tokens.
    ///
    /// An Accept is returned only after the advanced counter (or step) and
    /// its audit entry are durable, so an accepted OTP can never be accepted
    /// again, even after a crash.
    pub async fn authenticate(&self, actor: &Actor, user: &str, otp: &str) -> Result<Decision, DomainError> {
        self.authenticate_types(actor, user, otp, None).await
    }

    /// [`Service::authenticate`] with only the tokens of `types` (a
    /// client's `allowed_token_types`), when given. A user whose tokens are
    /// all of other types is rejected `not_allowed_here`, counting no failure.
    pub async fn authenticate_types(
        &self,
        actor: &Actor,
        user: &str,
        otp: &str,
        types: Option<&[String]>,
    ) -> Result<Decision, DomainError> {
        let decision = match self.check_otp(actor, user, otp, types).await {
            Ok(d) => d,
            Err(e) => {
                if matches!(e, DomainError::Store(StoreError::Unavailable(_))) {
                    tracing::error!(error = %e, "cannot make an accepted OTP durable; rejecting");
                    let decision = Decision::Reject { reason: RejectReason::StoreFailure, serial: None };
                    self.record(actor, radius_event(user, "reject", None, Some("store_failure".into()))).await;
                    return Ok(decision);
                }
                self.record(actor, radius_event(user, "error", None, Some(e.to_string()))).await;
                return Err(e);
            }
        };
        if let Decision::Reject { reason, serial } = &decision {
            // An Accept was recorded with its counter; a Reject now.
            self.record(actor, radius_event(user, "reject", serial.clone(), Some(reason.as_str().to_string()))).await;
        }
        Ok(decision)
    }

    async fn check_otp(
        &self,
        actor: &Actor,
        user: &str,
        otp: &str,
        types: Option<&[String]>,
    ) -> Result<Decision, DomainError> {
        if !valid_user_name(user) {
            return Ok(Decision::Reject { reason: RejectReason::BadUserName, serial: None });
        }
        let settings = self.settings();
        let now = self.now();
        let tokens =
            self.end_expired_locks(self.store.tokens_of(user).await?, now, settings.auth.lockout_seconds).await?;
        if tokens.is_empty() {
            // Spend about the time a real check takes, so timing does not tell
            // which user names own tokens.
            // (The window, and the used codes a wrong code is compared with.)
            let dummy_range = settings.auth.hotp_window.saturating_add(REPLAY_MEMORY_COUNTERS);
            let _ = otp::search(&[0u8; 20], otp, 0, dummy_range, 6, HashAlg::Sha1);
            return Ok(Decision::Reject { reason: RejectReason::NoToken, serial: None });
        }
        let tokens: Vec<Token> = match types {
            Some(types) => tokens.into_iter().filter(|t| types.contains(&t.type_id)).collect(),
            None => tokens,
        };
        if tokens.is_empty() {
            return Ok(Decision::Reject { reason: RejectReason::NotAllowedHere, serial: None });
        }
        let mut replayed = None;
        let mut skewed = None;
        let mut any_usable = false;
        let mut unreadable = None;
        for token in tokens.iter().filter(|t| t.state() == TokenState::Active) {
            any_usable = true;
            let seed = match self.cipher.open(&token.serial, &token.sealed_seed) {
                Ok(seed) => seed,
                Err(e) => {
                    tracing::error!(serial = %token.serial, error = %e, "token seed cannot be opened");
                    unreadable = Some(token.serial.clone());
                    continue;
                }
            };
            match self.match_and_consume(actor, user, token, &seed, otp, now, &settings.auth).await? {
                Consumed::Won => return Ok(Decision::Accept { serial: token.serial.clone() }),
                Consumed::Replay => replayed = Some(token.serial.clone()),
                Consumed::ClockSkew(seconds) => {
                    tracing::warn!(
                        serial = %token.serial,
                        seconds,
                        "a code of this TOTP token matches a time {seconds} s away from this server's clock: check the server's time (NTP), or the token's"
                    );
                    skewed = Some(token.serial.clone());
                }
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
        // A used code is no guess: whoever sends it again (an observer after
        // the duplicate window, a retrying client) must not lock the token.
        if let Some(serial) = replayed {
            return Ok(Decision::Reject { reason: RejectReason::Replay, serial: Some(serial) });
        }
        // A real code for another time: a clock stepped, not a guess.
        if let Some(serial) = skewed {
            return Ok(Decision::Reject { reason: RejectReason::ClockSkew, serial: Some(serial) });
        }
        // The code may belong to the token that cannot be read: not the user's fault.
        if unreadable.is_some() {
            return Ok(Decision::Reject { reason: RejectReason::SeedUnreadable, serial: unreadable });
        }
        self.count_failure(&tokens, settings.auth.max_failures, now).await?;
        Ok(Decision::Reject {
            reason: RejectReason::WrongOtp,
            serial: only(tokens.iter().filter(|t| t.state() == TokenState::Active).collect()),
        })
    }

    /// Finds the moving factor of `otp` on `token` and advances past it with
    /// a compare-and-swap. Of several requests racing with the same OTP, only
    /// one can advance: the others then see a counter past their match.
    #[allow(clippy::too_many_arguments)]
    async fn match_and_consume(
        &self,
        actor: &Actor,
        user: &str,
        token: &Token,
        seed: &Secret,
        otp: &str,
        now: u64,
        auth: &AuthConfig,
    ) -> Result<Consumed, DomainError> {
        let p = token.params;
        let (first, last) = acceptable_range(token, now, auth);
        let Some(found) = otp::search(seed.expose(), otp, first, last, p.digits, p.hash) else {
            let replay = recently_used_range(token)
                .is_some_and(|(from, to)| otp::search(seed.expose(), otp, from, to, p.digits, p.hash).is_some());
            if replay {
                return Ok(Consumed::Replay);
            }
            return Ok(match skewed_step(token, seed, otp, now) {
                Some(seconds) => Consumed::ClockSkew(seconds),
                None => Consumed::NoMatch,
            });
        };
        let accepted = radius_event(user, "accept", Some(token.serial.clone()), None);
        let outcome = self
            .update(actor, &token.serial, Some(token.clone()), Commit::Durable, |current| {
                if current.state() != TokenState::Active || current.owner != token.owner {
                    return Change::Keep(Consumed::NoMatch);
                }
                let mut next = current.clone();
                if !next.advance_past(found, now) {
                    return Change::Keep(Consumed::Replay);
                }
                Change::Write(next, Some(accepted.clone()), Consumed::Won)
            })
            .await?;
        Ok(outcome.map(|(consumed, _)| consumed).unwrap_or(Consumed::NoMatch))
    }

    async fn count_failure(&self, tokens: &[Token], max_failures: u32, now: u64) -> Result<(), DomainError> {
        let decay = self.settings().auth.failure_decay_seconds;
        for token in tokens.iter().filter(|t| t.state() == TokenState::Active) {
            let locked = self
                .update(&Actor::Daemon, &token.serial, Some(token.clone()), Commit::Soon, |current| {
                    if current.state() != TokenState::Active {
                        return Change::Keep(false);
                    }
                    let mut next = current.clone();
                    let locked = next.record_failure(max_failures, now, decay);
                    Change::Write(next, None, locked)
                })
                .await?;
            if let Some((true, _)) = locked {
                tracing::warn!(serial = %token.serial, "token locked after {max_failures} failed attempts");
            }
        }
        Ok(())
    }

    /// Unlocks the tokens among `tokens` whose lock by failures has run out
    /// (`auth.lockout_seconds`), with their fail counts back at 0, and
    /// returns the tokens as they are now. A token that changed owner in the
    /// meantime is left out.
    async fn end_expired_locks(&self, tokens: Vec<Token>, now: u64, lockout: u64) -> Result<Vec<Token>, DomainError> {
        if lockout == 0 || !tokens.iter().any(|t| t.lock_expired(now, lockout)) {
            return Ok(tokens);
        }
        let mut current_tokens = Vec::with_capacity(tokens.len());
        for token in tokens {
            if !token.lock_expired(now, lockout) {
                current_tokens.push(token);
                continue;
            }
            let unlocked = AuditEvent {
                operation: "token.unlock".into(),
                user: token.owner_name().map(str::to_string),
                serial: Some(token.serial.clone()),
                details: serde_json::json!({ "automatic": true, "lockout_seconds": lockout }),
                result: "ok".into(),
                reason: None,
            };
            let outcome = self
                .update(&Actor::Daemon, &token.serial, Some(token.clone()), Commit::Soon, |current| {
                    if current.owner != token.owner {
                        return Change::Keep(None);
                    }
                    if !current.lock_expired(now, lockout) {
                        return Change::Keep(Some(current.clone()));
                    }
                    let mut next = current.clone();
                    next.clear_failures();
                    Change::Write(next, Some(unlocked.clone()), None)
                })
                .await?;
            match outcome {
                Some((Some(current), None)) => current_tokens.push(current),
                Some((None, Some(stored))) => {
                    tracing::info!(serial = %stored.serial, "token unlocked: its lockout of {lockout} s is over");
                    current_tokens.push(stored);
                }
                _ => {}
            }
        }
        Ok(current_tokens)
    }

    /// A wrong directory password: counts as a failed attempt on the user's
    /// active tokens, as a wrong OTP does, unless `auth.count_password_failures`
    /// is off. No code is consumed.
    pub(crate) async fn count_wrong_password(&self, user: &str) -> Result<(), DomainError> {
        let settings = self.settings();
        if !settings.auth.count_password_failures || !valid_user_name(user) {
            return Ok(());
        }
        let now = self.now();
        let tokens =
            self.end_expired_locks(self.store.tokens_of(user).await?, now, settings.auth.lockout_seconds).await?;
        self.count_failure(&tokens, settings.auth.max_failures, now).await
    }

    /// The user's active tokens (a lock that has run out counts as active).
    pub(crate) async fn usable_tokens(&self, user: &str) -> Result<Vec<Token>, DomainError> {
        if !valid_user_name(user) {
            return Ok(Vec::new());
        }
        let (now, lockout) = (self.now(), self.settings().auth.lockout_seconds);
        let tokens = self.store.tokens_of(user).await?;
        Ok(tokens.into_iter().filter(|t| t.state_at(now, lockout) == TokenState::Active).collect())
    }

    /// Whether one of `tokens` would accept `otp` now (nothing is consumed).
    pub(crate) fn otp_would_match(&self, tokens: &[Token], otp: &str) -> bool {
        let settings = self.settings();
        let now = self.now();
        tokens.iter().any(|token| {
            if !otp::well_formed(otp, token.params.digits) {
                return false;
            }
            let Ok(seed) = self.cipher.open(&token.serial, &token.sealed_seed) else { return false };
            let (first, last) = acceptable_range(token, now, &settings.auth);
            let p = token.params;
            otp::search(seed.expose(), otp, first, last, p.digits, p.hash).is_some()
        })
    }
}

/// The moving factors an OTP may match now. A token never used so far gets
/// the wider first-use windows: its counter or clock may have moved on since
/// it left the factory.
pub(crate) fn acceptable_range(token: &Token, now: u64, auth: &AuthConfig) -> (u64, u64) {
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

/// The moving factors whose codes count as used on `token`: the last
/// [`REPLAY_MEMORY_COUNTERS`] HOTP counters below the next one, or the TOTP
/// steps of the last [`REPLAY_MEMORY_SECONDS`] up to the last one used. A
/// code there can never be accepted again; it is a replay, not a guess.
/// None for a token never used.
fn recently_used_range(token: &Token) -> Option<(u64, u64)> {
    match token.params.algorithm {
        Algorithm::Hotp => {
            let last = token.counter.checked_sub(1)?;
            Some((last.saturating_sub(REPLAY_MEMORY_COUNTERS - 1), last))
        }
        Algorithm::Totp => {
            let last = token.last_step?;
            let steps = REPLAY_MEMORY_SECONDS / u64::from(token.params.period.max(1));
            Some((last.saturating_sub(steps), last))
        }
    }
}

/// How far (in TOTP steps, each way) a code is looked for when it matches
/// no step in the window: 40 steps of 30 s, 20 minutes.
const CLOCK_SKEW_STEPS: u64 = 40;

/// For a TOTP code that matched nothing in the window: the offset (seconds,
/// positive when the code's time is ahead of the server's) of a step within
/// [`CLOCK_SKEW_STEPS`] whose code it is. Such a code comes from the token
/// (a random guess hits one of 80 steps once in 12,500 tries at 6 digits),
/// so a clock that stepped is not counted as the user's failure.
fn skewed_step(token: &Token, seed: &Secret, otp: &str, now: u64) -> Option<i64> {
    let p = token.params;
    if p.algorithm != Algorithm::Totp {
        return None;
    }
    let step = otp::time_step(now, p.period).saturating_add_signed(token.drift);
    let first = step.saturating_sub(CLOCK_SKEW_STEPS);
    let found = otp::search(seed.expose(), otp, first, step.saturating_add(CLOCK_SKEW_STEPS), p.digits, p.hash)?;
    Some((found as i64 - step as i64) * i64::from(p.period))
}

/// The audit event of a RADIUS decision.
pub(crate) fn radius_event(user: &str, result: &str, serial: Option<String>, reason: Option<String>) -> AuditEvent {
    AuditEvent {
        operation: "radius.auth".into(),
        user: Some(user.chars().take(256).collect()),
        serial,
        details: serde_json::Value::Null,
        result: result.into(),
        reason,
    }
}
