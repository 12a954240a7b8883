//! Password guesses must not reach the directory without limit: SCRV1
//! checks the OTP first, a user without a usable token is never bound as,
//! and binds per user are throttled.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::radius_modes::{MAX_BINDS_PER_USER_PER_MINUTE, Outcome, RadiusRequest};
use super::testing::{Fixture, PasswordDirectory, RFC_CODES};
use super::*;
use crate::config::AuthMode;
use crate::model::audit::Actor;
use crate::secret::Secret;

async fn login(f: &Fixture, mode: AuthMode, user: &str, password: &str) -> Option<RejectReason> {
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
    match f.service.radius_authenticate(&Actor::Daemon, request).await.unwrap() {
        Outcome::Decided(Decision::Reject { reason, .. }) => Some(reason),
        _ => None,
    }
}

fn scrv1(password: &str, otp: &str) -> String {
    let b64 = |s: &str| data_encoding::BASE64.encode(s.as_bytes());
    format!("SCRV1:{}:{}", b64(password), b64(otp))
}

fn fixture(auth: AuthConfig) -> (Fixture, Arc<PasswordDirectory>) {
    let directory = Arc::new(PasswordDirectory::default());
    (Fixture::new(auth, directory.clone()), directory)
}

#[tokio::test]
async fn scrv1_with_a_wrong_code_or_no_usable_token_never_binds() {
    let (f, directory) = fixture(AuthConfig { max_failures: 3, ..AuthConfig::default() });
    f.import_tokens().await;
    let binds = || directory.binds.load(Ordering::SeqCst);
    assert_eq!(
        login(&f, AuthMode::PasswordOtp, "alice", &scrv1("guess", "000000")).await,
        Some(RejectReason::WrongOtp)
    );
    assert_eq!(binds(), 0, "a wrong code: the password is not tried");
    assert_eq!(login(&f, AuthMode::PasswordOtp, "alice", &scrv1("right", RFC_CODES[0])).await, None);
    assert_eq!(binds(), 1);
    // Locked: password guesses with any code go nowhere.
    for _ in 0..2 {
        login(&f, AuthMode::PasswordOtp, "alice", &scrv1("guess", "000000")).await;
    }
    assert!(f.token("A1").await.locked);
    for _ in 0..5 {
        let reason = login(&f, AuthMode::PasswordOtp, "alice", &scrv1("guess", RFC_CODES[1])).await;
        assert_eq!(reason, Some(RejectReason::NoUsableToken));
    }
    assert_eq!(binds(), 1, "no bind for a user whose tokens are all locked");
}

#[tokio::test]
async fn challenge_step_one_does_not_bind_without_a_usable_token() {
    let (f, directory) = fixture(AuthConfig { max_failures: 1, ..AuthConfig::default() });
    f.import_tokens().await;
    assert_eq!(login(&f, AuthMode::Otp, "bob", "000000").await, Some(RejectReason::WrongOtp));
    assert!(f.token("B1").await.locked);
    for _ in 0..5 {
        assert_eq!(login(&f, AuthMode::Challenge, "bob", "guess").await, Some(RejectReason::NoUsableToken));
    }
    assert_eq!(directory.binds.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn binds_per_user_are_throttled() {
    let auth = AuthConfig { count_password_failures: false, ..AuthConfig::default() };
    let (f, directory) = fixture(auth);
    f.import_tokens().await;
    for _ in 0..MAX_BINDS_PER_USER_PER_MINUTE {
        assert_eq!(login(&f, AuthMode::Challenge, "bob", "guess").await, Some(RejectReason::WrongPassword));
    }
    assert_eq!(login(&f, AuthMode::Challenge, "bob", "right").await, Some(RejectReason::DirectoryThrottled));
    assert_eq!(directory.binds.load(Ordering::SeqCst), MAX_BINDS_PER_USER_PER_MINUTE);
    assert_eq!(login(&f, AuthMode::Challenge, "alice", "right").await, None, "another user is not throttled");
    f.set_time(f.service.now() + 60);
    assert_eq!(login(&f, AuthMode::Challenge, "bob", "right").await, None, "the next minute");
}
