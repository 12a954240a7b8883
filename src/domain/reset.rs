//! The two-OTP reset ("RESET TOKEN"): two consecutive codes, in order,
//! resynchronise a token; for TOTP the token's clock drift is learnt.

use serde::{Deserialize, Serialize};

use super::{Change, DomainError, Refusal, Service};
use crate::model::audit::{Actor, AuditEvent};
use crate::model::otp;
use crate::model::token::{Algorithm, TokenView};
use crate::store::Commit;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResetOutcome {
    pub token: TokenView,
    /// HOTP: how far the counter moved.
    pub counter_moved_by: u64,
    /// TOTP: the clock drift learnt, in steps.
    pub drift_steps: i64,
}

impl Service {
    /// Finds two consecutive codes and moves the token past them; for TOTP,
    /// learns the token's clock drift. The codes never reach the audit log.
    pub async fn reset(
        &self,
        actor: &Actor,
        serial: &str,
        first_otp: &str,
        second_otp: &str,
    ) -> Result<ResetOutcome, DomainError> {
        let result = self.reset_token(actor, serial, first_otp, second_otp).await;
        if let Err(e) = &result {
            self.audit_refusal(actor, "token.reset", None, serial, serde_json::Value::Null, e).await;
        }
        result
    }

    async fn reset_token(
        &self,
        actor: &Actor,
        serial: &str,
        first_otp: &str,
        second_otp: &str,
    ) -> Result<ResetOutcome, DomainError> {
        let settings = self.settings();
        let token = self.get_token(serial).await?;
        let ty = settings.token_type(&token.type_id);
        if ty.is_some_and(|t| !t.allow_reset) {
            let label = ty.map(|t| t.label.as_str()).unwrap_or(&token.type_id);
            return Err(DomainError::refused(
                Refusal::ResetNotAllowed,
                format!("tokens of type {label} ({}) do not allow the reset", token.type_id),
            ));
        }
        let p = token.params;
        for otp in [first_otp, second_otp] {
            if !otp::well_formed(otp, p.digits) {
                return Err(DomainError::Invalid(format!("an OTP of this token has {} digits", p.digits)));
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
            return Err(if reversed {
                DomainError::refused(
                    Refusal::OtpsReversed,
                    "the two OTPs are in reverse order: enter the older one first",
                )
            } else {
                DomainError::refused(
                    Refusal::OtpsNotConsecutive,
                    match p.algorithm {
                        Algorithm::Hotp => format!(
                            "the two OTPs are not consecutive codes of token {serial} within {window} counters of its current counter (already used codes do not count)"
                        ),
                        Algorithm::Totp => format!(
                            "the two OTPs are not consecutive codes of token {serial} within {} steps of now",
                            settings.auth.totp_reset_window
                        ),
                    },
                )
            });
        };
        let used = || DomainError::refused(Refusal::OtpsUsed, "these OTPs have already been used");
        let outcome = self
            .update(actor, serial, Some(token), Commit::Durable, |current| {
                let mut next = current.clone();
                let moved = match p.algorithm {
                    Algorithm::Hotp => {
                        if current.counter > first {
                            return Change::Keep(Err(used()));
                        }
                        next.counter = first + 2;
                        next.counter - current.counter
                    }
                    Algorithm::Totp => {
                        let now_step = otp::time_step(now, p.period);
                        let ahead = ahead_of_the_clock(current.last_step, now_step, settings.auth.totp_window);
                        // A last step ahead of the server's clock was recorded
                        // under a wrong clock (the server's, or the token's
                        // before a reset): two fresh consecutive codes then
                        // resynchronise the token instead of being "used".
                        if ahead == 0 && current.last_step.is_some_and(|s| s >= first) {
                            return Change::Keep(Err(used()));
                        }
                        if ahead > 0 {
                            tracing::warn!(
                                serial,
                                steps_ahead = ahead,
                                "token reset while its last used time step lay ahead of this server's clock: the clock stepped"
                            );
                        }
                        next.last_step = Some(first + 1);
                        next.drift = (first + 1) as i64 - otp::time_step(now, p.period) as i64;
                        0
                    }
                };
                next.clear_failures();
                let audit = AuditEvent {
                    operation: "token.reset".into(),
                    user: next.owner_name().map(str::to_string),
                    serial: Some(serial.into()),
                    details: serde_json::json!({ "counter_moved_by": moved, "drift_steps": next.drift }),
                    result: "ok".into(),
                    reason: None,
                };
                Change::Write(next, Some(audit), Ok(moved))
            })
            .await?;
        match outcome {
            None => Err(DomainError::NoSuchToken(serial.to_string())),
            Some((Err(e), _)) => Err(e),
            Some((Ok(moved), stored)) => {
                let token = stored.ok_or_else(|| DomainError::Internal("the reset was not written".into()))?;
                Ok(ResetOutcome {
                    token: self.view(&token, &settings),
                    counter_moved_by: moved,
                    drift_steps: token.drift,
                })
            }
        }
    }
}

/// How many steps `last_step` lies beyond what the server's clock allows now
/// (`now_step` plus the window); 0 when it does not.
pub(crate) fn ahead_of_the_clock(last_step: Option<u64>, now_step: u64, window: u64) -> u64 {
    last_step.map_or(0, |last| last.saturating_sub(now_step.saturating_add(window)))
}
