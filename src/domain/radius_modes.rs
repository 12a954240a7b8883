//! RADIUS authentication modes on top of the OTP check.
//!
//! - `otp`: User-Password is the OTP;
//! - `password+otp`: the directory password followed by the OTP, or
//!   OpenVPN's `SCRV1:<base64 password>:<base64 otp>`;
//! - `challenge`: the directory password first; the answer is an
//!   Access-Challenge whose State the NAS returns with the OTP.
//!
//! Challenge states are random, single use, bound to one client and user,
//! expiring, with a limited number of OTP attempts, bounded in number; they
//! are kept behind the store seam ([`crate::store::Store::put_challenge`]),
//! so the answer may reach another node. Owns no socket: the RADIUS server
//! maps packets to [`RadiusRequest`] and [`Outcome`] back to packets.

use super::{DomainError, Service};
use crate::config::{AuthMode, DirectoryUnavailable, StoreUnavailable};
use crate::directory::{DirectoryError, DirectoryUser};
use crate::model::audit::{Actor, AuditEvent};
use crate::model::decision::{Decision, RejectReason};
use crate::secret::Secret;
use crate::store::{Challenge, StoreError};

/// What the RADIUS server hands over.
pub struct RadiusRequest<'a> {
    pub client: &'a str,
    /// The client's own mode; `auth.mode` when none.
    pub mode: Option<AuthMode>,
    pub user: &'a str,
    pub password: &'a Secret,
    pub state: Option<&'a [u8]>,
    /// Only tokens of these types may answer (the client's `allowed_token_types`).
    pub token_types: Option<&'a [String]>,
    /// The user's directory entry, when the caller has looked it up
    /// already (authorization): not looked up again.
    pub known: Option<&'a DirectoryUser>,
}

/// What the RADIUS server must answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Decided(Decision),
    /// An Access-Challenge with this State and prompt.
    Challenge {
        state: Vec<u8>,
        prompt: String,
    },
    /// No answer at all (directory down and `directory_unavailable: no_answer`,
    /// or store down and `store_unavailable: no_answer`).
    NoAnswer,
}

/// Directory password checks (binds as the user) radotp makes for one user
/// in a minute; more are refused as `directory_throttled` without asking the
/// directory, so that guesses cannot trip the directory's own lockout of
/// the whole account (Active Directory, ppolicy).
pub const MAX_BINDS_PER_USER_PER_MINUTE: u32 = 10;
/// Users whose binds are counted at once (bounded memory).
pub const MAX_THROTTLED_USERS: usize = 100_000;

/// Most challenges pending at once; more are refused until some expire.
pub const MAX_PENDING_CHALLENGES: usize = 100_000;
const STATE_BYTES: usize = 32;

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `user@realm` and `DOMAIN\user` become `user` when asked; lowercase when asked.
pub fn normalize_user(name: &str, strip_realm: bool, case_insensitive: bool) -> String {
    let mut name = name;
    if strip_realm {
        if let Some((_, user)) = name.rsplit_once('\\') {
            name = user;
        }
        if let Some((user, _)) = name.split_once('@') {
            name = user;
        }
    }
    if case_insensitive { name.to_lowercase() } else { name.to_string() }
}

/// Splits OpenVPN's static-challenge form `SCRV1:<base64 password>:<base64 otp>`.
pub fn split_scrv1(password: &[u8]) -> Option<(Secret, String)> {
    let text = std::str::from_utf8(password).ok()?;
    let rest = text.strip_prefix("SCRV1:")?;
    let (password, otp) = rest.split_once(':')?;
    let decode = |b64: &str| data_encoding::BASE64.decode(b64.as_bytes()).ok();
    let password = Secret::new(decode(password)?);
    let otp = String::from_utf8(decode(otp)?).ok()?;
    Some((password, otp))
}

fn reject(reason: RejectReason) -> Outcome {
    Outcome::Decided(Decision::Reject { reason, serial: None })
}

impl Service {
    /// Answers one RADIUS request in its client's mode; while the store
    /// cannot be reached, the answer is what `auth.store_unavailable` says.
    pub async fn radius_authenticate(&self, actor: &Actor, request: RadiusRequest<'_>) -> Result<Outcome, DomainError> {
        let outcome = self.radius_outcome(actor, request).await;
        let store_down = matches!(
            outcome,
            Ok(Outcome::Decided(Decision::Reject { reason: RejectReason::StoreFailure, .. }))
                | Err(DomainError::Store(StoreError::Unavailable(_)))
        );
        if !store_down {
            return outcome;
        }
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "store unavailable during a RADIUS request");
        }
        Ok(match self.settings().auth.store_unavailable {
            StoreUnavailable::Reject => reject(RejectReason::StoreFailure),
            StoreUnavailable::NoAnswer => Outcome::NoAnswer,
        })
    }

    async fn radius_outcome(&self, actor: &Actor, request: RadiusRequest<'_>) -> Result<Outcome, DomainError> {
        let settings = self.settings();
        let auth = &settings.auth;
        let user = normalize_user(request.user, auth.strip_realm, auth.case_insensitive_users);
        match (request.mode.unwrap_or(auth.mode), request.state) {
            (AuthMode::Otp, _) => {
                // With a directory gate, as in the password modes, tokens
                // belong to the directory's spelling of the name.
                let owner = if settings.directory_gate {
                    match self.known_or_lookup(actor, &user, request.known).await {
                        Ok(entry) => entry.name,
                        Err(outcome) => return Ok(outcome),
                    }
                } else {
                    user.clone()
                };
                let otp = std::str::from_utf8(request.password.expose()).unwrap_or("");
                Ok(Outcome::Decided(self.authenticate_types(actor, &owner, otp, request.token_types).await?))
            }
            (AuthMode::PasswordOtp, _) => {
                self.password_then_otp(actor, &user, request.password, request.token_types, request.known).await
            }
            (AuthMode::Challenge, None) => {
                self.password_then_challenge(actor, request.client, &user, request.password, request.known).await
            }
            (AuthMode::Challenge, Some(state)) => {
                self.answer_to_challenge(actor, request.client, &user, request.password, state, request.token_types)
                    .await
            }
        }
    }

    /// Challenges waiting for their OTP.
    pub async fn pending_challenges(&self) -> u64 {
        self.store.pending_challenges().await.unwrap_or(0)
    }

    /// The user's directory entry, or the outcome to answer instead.
    /// `known`, if the caller looked the user up already; else a look-up.
    async fn known_or_lookup(
        &self,
        actor: &Actor,
        user: &str,
        known: Option<&DirectoryUser>,
    ) -> Result<DirectoryUser, Outcome> {
        match known {
            Some(entry) => Ok(entry.clone()),
            None => self.directory_entry(actor, user).await,
        }
    }

    pub(super) async fn directory_entry(&self, actor: &Actor, user: &str) -> Result<DirectoryUser, Outcome> {
        let (reason, detail) = match self.directory().lookup_for_login(user).await {
            Ok(Some(entry)) => return Ok(entry),
            Ok(None) => (RejectReason::UnknownUser, "not in the directory".to_string()),
            Err(DirectoryError::NotInGroup(_)) => (RejectReason::NotInGroup, "outside required_group".into()),
            Err(DirectoryError::AccountUnusable(_, why)) => {
                (RejectReason::AccountDisabled, format!("directory account {why}"))
            }
            Err(DirectoryError::Unavailable(e)) => return Err(self.directory_down(actor, user, e).await),
            Err(e) => (RejectReason::UnknownUser, e.to_string()),
        };
        self.record_radius(actor, user, "reject", reason, Some(detail)).await;
        Err(reject(reason))
    }

    async fn directory_down(&self, actor: &Actor, user: &str, detail: String) -> Outcome {
        tracing::warn!(error = %detail, "directory unavailable during a RADIUS request");
        match self.settings().auth.directory_unavailable {
            DirectoryUnavailable::Reject => {
                self.record_radius(actor, user, "reject", RejectReason::DirectoryUnavailable, Some(detail)).await;
                reject(RejectReason::DirectoryUnavailable)
            }
            DirectoryUnavailable::NoAnswer => {
                self.record_radius(actor, user, "no_answer", RejectReason::DirectoryUnavailable, Some(detail)).await;
                Outcome::NoAnswer
            }
        }
    }

    /// Checks the directory password of `entry`; `Err` holds the outcome when it fails.
    ///
    /// A wrong password counts as a failed attempt on the user's tokens
    /// (`auth.count_password_failures`), so that password guesses are bounded
    /// by the lockout like OTP guesses; the OTP typed with it is not consumed.
    async fn check_directory_password(
        &self,
        actor: &Actor,
        entry: &DirectoryUser,
        password: &Secret,
    ) -> Result<(), Outcome> {
        let user = entry.name.as_str();
        if !self.binds.try_take(user, self.now()) {
            tracing::warn!(
                user,
                "more than {MAX_BINDS_PER_USER_PER_MINUTE} directory password checks in a minute; not asking the directory"
            );
            self.record_radius(actor, user, "reject", RejectReason::DirectoryThrottled, None).await;
            return Err(reject(RejectReason::DirectoryThrottled));
        }
        let detail = match self.directory().check_password(entry, password).await {
            Ok(true) => return Ok(()),
            Ok(false) => {
                if let Err(e) = self.count_wrong_password(user).await {
                    tracing::error!(error = %e, "cannot count a wrong directory password");
                }
                None
            }
            Err(DirectoryError::Unavailable(e)) => return Err(self.directory_down(actor, user, e).await),
            Err(e) => Some(e.to_string()),
        };
        self.record_radius(actor, user, "reject", RejectReason::WrongPassword, detail).await;
        Err(reject(RejectReason::WrongPassword))
    }

    async fn password_then_otp(
        &self,
        actor: &Actor,
        asked_as: &str,
        password: &Secret,
        types: Option<&[String]>,
        known: Option<&DirectoryUser>,
    ) -> Result<Outcome, DomainError> {
        // Tokens belong to the directory's spelling of the name, whatever the NAS sent.
        let entry = match self.known_or_lookup(actor, asked_as, known).await {
            Ok(entry) => entry,
            Err(outcome) => return Ok(outcome),
        };
        let user = entry.name.as_str();
        let (directory_password, otp) = match split_scrv1(password.expose()) {
            // The OTP first, as for the inline form: a code no usable token
            // would take (or no usable token at all) never reaches the directory.
            Some((_, otp)) if !self.otp_would_match(&self.usable_tokens(user).await?, &otp) => {
                return Ok(Outcome::Decided(self.authenticate(actor, user, &otp).await?));
            }
            Some(parts) => parts,
            None => match self.split_password_and_otp(user, password.expose()).await? {
                Some(parts) => parts,
                // No split gives an OTP that any of the user's tokens would
                // take: reject without asking the directory, and count it.
                None => return Ok(Outcome::Decided(self.authenticate_types(actor, user, "", types).await?)),
            },
        };
        if let Err(outcome) = self.check_directory_password(actor, &entry, &directory_password).await {
            return Ok(outcome);
        }
        Ok(Outcome::Decided(self.authenticate_types(actor, user, &otp, types).await?))
    }

    /// Password and OTP typed together: the OTP is the last `digits`
    /// characters, for the digit counts of the user's tokens; the split whose
    /// OTP a token would accept wins.
    async fn split_password_and_otp(&self, user: &str, typed: &[u8]) -> Result<Option<(Secret, String)>, DomainError> {
        let Ok(text) = std::str::from_utf8(typed) else { return Ok(None) };
        let tokens = self.usable_tokens(user).await?;
        let mut digits: Vec<u8> = tokens.iter().map(|t| t.params.digits).collect();
        digits.sort_unstable_by(|a, b| b.cmp(a));
        digits.dedup();
        for d in digits {
            let d = usize::from(d);
            if text.len() <= d || !text.is_char_boundary(text.len() - d) {
                continue;
            }
            let (password, otp) = text.split_at(text.len() - d);
            if self.otp_would_match(&tokens, otp) {
                return Ok(Some((Secret::from(password), otp.to_string())));
            }
        }
        Ok(None)
    }

    async fn password_then_challenge(
        &self,
        actor: &Actor,
        client: &str,
        asked_as: &str,
        password: &Secret,
        known: Option<&DirectoryUser>,
    ) -> Result<Outcome, DomainError> {
        let entry = match self.known_or_lookup(actor, asked_as, known).await {
            Ok(entry) => entry,
            Err(outcome) => return Ok(outcome),
        };
        let user = entry.name.as_str();
        // No usable token: no reason to ask the directory about the password.
        if self.usable_tokens(user).await?.is_empty() {
            self.record_radius(actor, user, "reject", RejectReason::NoUsableToken, Some("challenge".into())).await;
            return Ok(reject(RejectReason::NoUsableToken));
        }
        if let Err(outcome) = self.check_directory_password(actor, &entry, password).await {
            return Ok(outcome);
        }
        let auth = self.settings().auth.clone();
        self.issue_challenge(actor, client, asked_as, user, auth.challenge_max_attempts, auth.challenge_prompt.clone())
            .await
    }

    async fn issue_challenge(
        &self,
        actor: &Actor,
        client: &str,
        asked_as: &str,
        user: &str,
        attempts: u32,
        prompt: String,
    ) -> Result<Outcome, DomainError> {
        let lifetime_ms = self.settings().auth.challenge_timeout_seconds.saturating_mul(1000);
        let mut state = vec![0u8; STATE_BYTES];
        crate::crypto::random_bytes(&mut state)?;
        let now_ms = unix_ms();
        let challenge = Challenge {
            state: state.clone(),
            client: client.into(),
            asked_as: asked_as.into(),
            user: user.into(),
            expires_at_ms: now_ms.saturating_add(lifetime_ms),
            attempts_left: attempts,
        };
        match self.store.put_challenge(challenge, now_ms, MAX_PENDING_CHALLENGES).await? {
            true => {
                self.record(
                    actor,
                    AuditEvent {
                        operation: "radius.auth".into(),
                        user: Some(user.to_string()),
                        result: "challenge".into(),
                        details: serde_json::json!({ "attempts_left": attempts }),
                        ..AuditEvent::default()
                    },
                )
                .await;
                Ok(Outcome::Challenge { state, prompt })
            }
            false => {
                tracing::warn!("too many pending challenges; refusing a new one");
                self.record_radius(
                    actor,
                    user,
                    "reject",
                    RejectReason::ChallengeRefused,
                    Some("too many pending".into()),
                )
                .await;
                Ok(reject(RejectReason::ChallengeRefused))
            }
        }
    }

    async fn answer_to_challenge(
        &self,
        actor: &Actor,
        client: &str,
        asked_as: &str,
        password: &Secret,
        state: &[u8],
        types: Option<&[String]>,
    ) -> Result<Outcome, DomainError> {
        let user = asked_as;
        let problem = match self.store.take_challenge(state).await? {
            None => Err("unknown, used or expired State"),
            Some(pending) if pending.expires_at_ms <= unix_ms() => Err("expired State"),
            Some(pending) if pending.client != client || pending.asked_as != asked_as => {
                Err("State of another client or user")
            }
            Some(pending) => Ok(pending),
        };
        let pending = match problem {
            Ok(pending) => pending,
            Err(detail) => {
                self.record_radius(actor, user, "reject", RejectReason::BadState, Some(detail.into())).await;
                return Ok(reject(RejectReason::BadState));
            }
        };
        let user = pending.user.as_str();
        let otp = std::str::from_utf8(password.expose()).unwrap_or("");
        let decision = self.authenticate_types(actor, user, otp, types).await?;
        if let Decision::Reject { reason: RejectReason::WrongOtp | RejectReason::Replay, .. } = decision {
            if pending.attempts_left > 1 {
                let prompt = "Wrong one-time password; try again".to_string();
                return self.issue_challenge(actor, client, asked_as, user, pending.attempts_left - 1, prompt).await;
            }
        }
        Ok(Outcome::Decided(decision))
    }

    pub(super) async fn record_radius(
        &self,
        actor: &Actor,
        user: &str,
        result: &str,
        reason: RejectReason,
        detail: Option<String>,
    ) {
        self.record(
            actor,
            AuditEvent {
                operation: "radius.auth".into(),
                user: Some(user.chars().take(256).collect()),
                result: result.into(),
                reason: Some(reason.as_str().into()),
                details: detail.map(|d| serde_json::json!({ "detail": d })).unwrap_or_default(),
                ..AuditEvent::default()
            },
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::PasswordDirectory;

    #[test]
    fn realms_and_case() {
        assert_eq!(normalize_user("Alice@Example.org", true, false), "Alice");
        assert_eq!(normalize_user("CORP\\alice", true, true), "alice");
        assert_eq!(normalize_user("alice@example.org", false, false), "alice@example.org");
        assert_eq!(normalize_user("ALICE", false, true), "alice");
    }

    #[test]
    fn scrv1_form() {
        let (password, otp) = split_scrv1(b"SCRV1:c2VjcmV0:MTIzNDU2").unwrap();
        assert_eq!((password.expose(), otp.as_str()), (&b"secret"[..], "123456"));
        assert!(split_scrv1(b"SCRV1:not base64:MTIz").is_none());
        assert!(split_scrv1(b"secret123456").is_none());
    }

    /// An LDAP-like directory: names match without regard to case and come
    /// back in its spelling; bob's account is disabled.
    struct StatefulDirectory;

    impl crate::directory::UserDirectory for StatefulDirectory {
        fn lookup<'a>(&'a self, name: &'a str) -> crate::directory::DirectoryFuture<'a, Option<DirectoryUser>> {
            let name = name.to_lowercase();
            let user = DirectoryUser { name: name.clone(), ..DirectoryUser::default() };
            Box::pin(async move { Ok(["alice", "bob"].contains(&name.as_str()).then_some(user)) })
        }

        fn lookup_for_login<'a>(
            &'a self,
            name: &'a str,
        ) -> crate::directory::DirectoryFuture<'a, Option<DirectoryUser>> {
            Box::pin(async move {
                match self.lookup(name).await? {
                    Some(user) if user.name == "bob" => {
                        Err(DirectoryError::AccountUnusable(user.name, "disabled".into()))
                    }
                    found => Ok(found),
                }
            })
        }

        fn search<'a>(&'a self, _: &'a str, _: usize) -> crate::directory::DirectoryFuture<'a, Vec<DirectoryUser>> {
            Box::pin(async { Ok(Vec::new()) })
        }

        fn check_password<'a>(
            &'a self,
            _: &'a DirectoryUser,
            password: &'a Secret,
        ) -> crate::directory::DirectoryFuture<'a, bool> {
            Box::pin(async move { Ok(password.expose() == b"right") })
        }
    }

    #[tokio::test]
    async fn a_disabled_account_is_refused_in_every_mode_and_names_follow_the_directory() {
        use crate::domain::testing::{Fixture, RFC_CODES};
        let f = Fixture::with_gate(crate::config::AuthConfig::default(), std::sync::Arc::new(StatefulDirectory), true);
        f.import_tokens().await;
        for (mode, password) in [
            (AuthMode::Otp, RFC_CODES[0].to_string()),
            (AuthMode::PasswordOtp, format!("right{}", RFC_CODES[0])),
            (AuthMode::Challenge, "right".to_string()),
        ] {
            let outcome = login(&f.service, mode, "bob", &password).await;
            assert_eq!(rejected_because(&outcome), Some(RejectReason::AccountDisabled), "{mode:?}");
        }
        assert_eq!(f.token("B1").await.counter, 0, "no OTP used up");
        // The NAS's spelling finds the directory's, in otp mode as in the others.
        let outcome = login(&f.service, AuthMode::Otp, "ALICE", RFC_CODES[0]).await;
        assert!(matches!(outcome, Outcome::Decided(Decision::Accept { .. })), "{outcome:?}");
        let outcome = login(&f.service, AuthMode::PasswordOtp, "Alice", &format!("right{}", RFC_CODES[1])).await;
        assert!(matches!(outcome, Outcome::Decided(Decision::Accept { .. })), "{outcome:?}");
    }

    async fn login(service: &Service, mode: AuthMode, user: &str, password: &str) -> Outcome {
        let password = Secret::from(password);
        let request = RadiusRequest {
            client: "vpn",
            mode: Some(mode),
            user,
            password: &password,
            state: None,
            token_types: None,
            known: None,
        };
        service.radius_authenticate(&Actor::Daemon, request).await.unwrap()
    }

    fn rejected_because(outcome: &Outcome) -> Option<RejectReason> {
        match outcome {
            Outcome::Decided(Decision::Reject { reason, .. }) => Some(*reason),
            _ => None,
        }
    }

    #[tokio::test]
    async fn wrong_directory_passwords_count_towards_the_lockout_without_burning_the_otp() {
        use crate::domain::testing::{Fixture, RFC_CODES};
        let auth = crate::config::AuthConfig { max_failures: 3, ..Default::default() };
        let f = Fixture::new(auth, std::sync::Arc::new(PasswordDirectory::default()));
        f.import_tokens().await;
        let pw = |password: &str, code: &str| format!("{password}{code}");

        // password+otp: a wrong password with a valid code counts, the code stays unused.
        let outcome = login(&f.service, AuthMode::PasswordOtp, "alice", &pw("wrong", RFC_CODES[0])).await;
        assert_eq!(rejected_because(&outcome), Some(RejectReason::WrongPassword));
        assert_eq!((f.token("A1").await.fail_count, f.token("A1").await.counter), (1, 0));
        let outcome = login(&f.service, AuthMode::PasswordOtp, "alice", &pw("right", RFC_CODES[0])).await;
        assert!(matches!(outcome, Outcome::Decided(Decision::Accept { .. })), "{outcome:?}");
        assert_eq!(f.token("A1").await.fail_count, 1, "a success does not reset the count (it decays with time)");

        // One unused code does not buy unlimited password guesses: the token locks.
        for _ in 0..2 {
            let outcome = login(&f.service, AuthMode::PasswordOtp, "alice", &pw("guess", RFC_CODES[1])).await;
            assert_eq!(rejected_because(&outcome), Some(RejectReason::WrongPassword));
        }
        assert!(f.token("A1").await.locked);
        let outcome = login(&f.service, AuthMode::PasswordOtp, "alice", &pw("right", RFC_CODES[1])).await;
        assert_eq!(rejected_because(&outcome), Some(RejectReason::NoUsableToken));
        assert_eq!(f.token("B1").await.fail_count, 0, "another user's token is not touched");

        // challenge: a wrong password counts too.
        let outcome = login(&f.service, AuthMode::Challenge, "bob", "wrong").await;
        assert_eq!(rejected_because(&outcome), Some(RejectReason::WrongPassword));
        assert_eq!(f.token("B1").await.fail_count, 1);
        let outcome = login(&f.service, AuthMode::Challenge, "bob", "right").await;
        assert!(matches!(outcome, Outcome::Challenge { .. }), "{outcome:?}");
        assert_eq!(f.token("B1").await.fail_count, 1, "a right password alone does not reset the count");
    }

    #[tokio::test]
    async fn count_password_failures_off_leaves_the_fail_count_alone() {
        use crate::domain::testing::{Fixture, RFC_CODES};
        let auth = crate::config::AuthConfig { max_failures: 3, count_password_failures: false, ..Default::default() };
        let f = Fixture::new(auth, std::sync::Arc::new(PasswordDirectory::default()));
        f.import_tokens().await;
        for _ in 0..5 {
            let outcome = login(&f.service, AuthMode::PasswordOtp, "alice", &format!("wrong{}", RFC_CODES[0])).await;
            assert_eq!(rejected_because(&outcome), Some(RejectReason::WrongPassword));
            let outcome = login(&f.service, AuthMode::Challenge, "bob", "wrong").await;
            assert_eq!(rejected_because(&outcome), Some(RejectReason::WrongPassword));
        }
        assert_eq!((f.token("A1").await.fail_count, f.token("B1").await.fail_count), (0, 0));
        let outcome = login(&f.service, AuthMode::PasswordOtp, "alice", &format!("right{}", RFC_CODES[0])).await;
        assert!(matches!(outcome, Outcome::Decided(Decision::Accept { .. })), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_challenge_state_is_single_use_and_random() {
        use crate::domain::testing::{Fixture, RFC_CODES};
        let f = Fixture::new(crate::config::AuthConfig::default(), std::sync::Arc::new(PasswordDirectory::default()));
        f.import_tokens().await;
        let Outcome::Challenge { state, .. } = login(&f.service, AuthMode::Challenge, "alice", "right").await else {
            panic!("no challenge")
        };
        assert_eq!(state.len(), STATE_BYTES);
        let Outcome::Challenge { state: other, .. } = login(&f.service, AuthMode::Challenge, "alice", "right").await
        else {
            panic!("no challenge")
        };
        assert_ne!(state, other, "random");
        let password = Secret::from(RFC_CODES[0]);
        let answer = |state: Vec<u8>| {
            let password = &password;
            let service = &f.service;
            async move {
                let mode = Some(AuthMode::Challenge);
                let request = RadiusRequest {
                    client: "vpn",
                    mode,
                    user: "alice",
                    password,
                    state: Some(&state),
                    token_types: None,
                    known: None,
                };
                service.radius_authenticate(&Actor::Daemon, request).await.unwrap()
            }
        };
        assert!(matches!(answer(state.clone()).await, Outcome::Decided(Decision::Accept { .. })));
        assert_eq!(rejected_because(&answer(state).await), Some(RejectReason::BadState), "single use");
    }
}
