//! Unit tests of the domain's operations, on the in-memory store.

use super::authenticate::acceptable_range;
use super::lifecycle::TokenFilter;
use super::testing::{Fixture, RFC_CODES};
use super::*;
use crate::model::audit::AuditQuery;
use crate::model::otp::HashAlg;
use crate::model::token::{Algorithm, OtpParams, TokenState};

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
    let token = f.token("A1").await;
    assert!(token.locked && token.locked_at == Some(1000), "{token:?}");
    let view = f.service.show(&Actor::Daemon, "A1").await.unwrap();
    assert_eq!((view.state, view.locked_at, view.unlocks_at), (TokenState::Locked, Some(1000), Some(1600)));
    assert_eq!(f.token("B1").await.fail_count, 0, "another user's token is not touched");

    // One second before the end: still locked, even for the right code.
    f.set_time(1599);
    assert_eq!(reason(&f.check("alice", RFC_CODES[0]).await), Some(RejectReason::NoUsableToken));
    assert_eq!(f.service.status(&Actor::Daemon).await.unwrap().tokens_by_state["locked"], 1);

    // At the end: shown as active at once, unlocked in the store at its next use.
    f.set_time(1600);
    let view = f.service.show(&Actor::Daemon, "A1").await.unwrap();
    assert_eq!((view.state, view.fail_count, view.unlocks_at), (TokenState::Active, 0, None));
    assert_eq!(f.service.status(&Actor::Daemon).await.unwrap().tokens_by_state["locked"], 0);
    let locked = TokenFilter { state: Some(TokenState::Locked), ..TokenFilter::default() };
    assert!(f.service.list(&Actor::Daemon, &locked).await.unwrap().is_empty());
    // The fail count starts again from 0: a wrong code makes it 1, not 4.
    assert_eq!(reason(&f.check("alice", "000000").await), Some(RejectReason::WrongOtp));
    let token = f.token("A1").await;
    assert_eq!((token.locked, token.fail_count, token.locked_at), (false, 1, None));
    assert!(accepted(&f.check("alice", RFC_CODES[0]).await), "the code that was refused while locked");
    let unlocks = f
        .service
        .audit(&Actor::Daemon, &AuditQuery { limit: 0, serial: Some("A1".into()), ..AuditQuery::default() })
        .await
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
    assert_eq!(f.service.show(&Actor::Daemon, "A1").await.unwrap().unlocks_at, Some(5600));
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
    assert_eq!(f.service.show(&Actor::Daemon, "A1").await.unwrap().unlocks_at, None);
    f.set_time(1000 + 10 * 365 * 86_400);
    assert_eq!(reason(&f.check("alice", RFC_CODES[0]).await), Some(RejectReason::NoUsableToken));
    assert_eq!(f.service.show(&Actor::Daemon, "A1").await.unwrap().state, TokenState::Locked);
    f.service.unlock(&Actor::Daemon, "A1").await.unwrap();
    assert_eq!(f.token("A1").await.locked_at, None);
    assert!(accepted(&f.check("alice", RFC_CODES[0]).await));

    // With lockout_seconds, an operator's disable stays, lock or not.
    let f = Fixture::with_tokens(AuthConfig { max_failures: 2, lockout_seconds: 60, ..AuthConfig::default() }).await;
    f.set_time(1000);
    f.check("alice", "000000").await;
    f.check("alice", "000000").await;
    f.service.set_disabled(&Actor::Daemon, "A1", true).await.unwrap();
    f.service.set_disabled(&Actor::Daemon, "B1", true).await.unwrap();
    f.set_time(2000);
    assert_eq!(f.service.show(&Actor::Daemon, "A1").await.unwrap().state, TokenState::Disabled);
    assert_eq!(reason(&f.check("alice", RFC_CODES[0]).await), Some(RejectReason::NoUsableToken));
    assert_eq!(reason(&f.check("bob", RFC_CODES[0]).await), Some(RejectReason::NoUsableToken));
    assert!(f.token("A1").await.disabled && f.token("B1").await.disabled);
    f.service.set_disabled(&Actor::Daemon, "A1", false).await.unwrap();
    assert!(accepted(&f.check("alice", RFC_CODES[0]).await));
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
        failed_at: None,
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

#[tokio::test]
async fn enrolling_a_token_its_owner_already_has_says_so() {
    let f = Fixture::with_tokens(AuthConfig::default()).await;
    let err = f.service.enroll(&Actor::Daemon, "bob", "hw-hotp", Some("B1")).await.unwrap_err();
    assert_eq!(err.refusal(), Some(Refusal::AlreadyOwned), "{err}");
    assert!(err.to_string().contains("bob already has token B1"), "{err}");
    assert!(!err.to_string().contains("unassign"), "{err}");
}

#[tokio::test]
async fn an_unknown_serial_comes_with_the_close_ones() {
    let f = Fixture::with_tokens(AuthConfig::default()).await;
    assert_eq!(f.service.similar_serials("a1").await.unwrap(), vec!["A1".to_string()], "the same but for case");
    assert_eq!(f.service.similar_serials("C1").await.unwrap(), vec!["A1".to_string(), "B1".to_string()]);
    assert!(f.service.similar_serials("ZZZZZZ").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_serial_twice_in_one_file_makes_the_file_invalid() {
    use super::testing::RFC_SEED_HEX;
    let f = Fixture::new(AuthConfig::default(), Arc::new(crate::directory::static_list::StaticDirectory::new([])));
    let other = "3132333435363738393031323334353637383931";
    let csv = format!("serial,type,seed\nD1,hw-hotp,{RFC_SEED_HEX}\nD2,hw-hotp,{RFC_SEED_HEX}\nD1,hw-hotp,{other}\n");
    let report = f.service.import_csv(&Actor::Daemon, &csv, false, false).await.unwrap();
    assert!(report.aborted && report.imported == 0, "{report:?}");
    assert_eq!(report.invalid.len(), 1, "{report:?}");
    assert_eq!(report.invalid[0].line, 4);
    assert!(report.invalid[0].reason.contains("earlier in the file (line 2)"), "{report:?}");
    assert!(report.skipped.is_empty(), "{report:?}");
    let report = f.service.import_csv(&Actor::Daemon, &csv, true, false).await.unwrap();
    assert_eq!((report.imported, report.invalid.len()), (2, 1), "{report:?}");
    assert_eq!(f.token("D1").await.counter, 0);
}

#[tokio::test]
async fn a_totp_token_used_while_the_clock_was_ahead_is_reset_with_two_fresh_codes() {
    use crate::model::otp::{HashAlg, totp_code};
    let f = Fixture::with_tokens(AuthConfig::default()).await;
    let csv = format!("serial,type,seed,user\nT1,hw-totp,{},alice\n", super::testing::RFC_SEED_HEX);
    f.service.import_csv(&Actor::Daemon, &csv, false, false).await.unwrap();
    let seed = b"12345678901234567890";
    let code = |at: u64| totp_code(seed, at, 30, 6, HashAlg::Sha1);
    let t0 = 1_800_000_000;
    // The server's clock (and the code's) ten minutes ahead: a code is used there.
    f.set_time(t0 + 600);
    assert!(matches!(f.check("alice", &code(t0 + 600)).await, Decision::Accept { .. }));
    // The clock steps back: the token's last step lies ahead of it. Two fresh
    // codes reset it (they were refused as "already used" before).
    f.set_time(t0 + 60);
    let reset = f.service.reset(&Actor::Daemon, "T1", &code(t0 + 30), &code(t0 + 60)).await;
    assert!(reset.is_ok(), "{reset:?}");
    f.set_time(t0 + 120);
    assert!(matches!(f.check("alice", &code(t0 + 120)).await, Decision::Accept { .. }));
    // With the clock right, used codes stay used.
    let again = f.service.reset(&Actor::Daemon, "T1", &code(t0 + 90), &code(t0 + 120)).await;
    assert!(again.is_err(), "{again:?}");
}

#[tokio::test]
async fn codes_for_a_time_the_server_clock_stepped_away_from_are_not_counted_as_failures() {
    use crate::model::otp::{HashAlg, totp_code};
    let f = Fixture::with_tokens(AuthConfig { max_failures: 3, ..AuthConfig::default() }).await;
    let csv = format!("serial,type,seed,user\nT2,hw-totp,{},bob\n", super::testing::RFC_SEED_HEX);
    f.service.import_csv(&Actor::Daemon, &csv, false, false).await.unwrap();
    let seed = b"12345678901234567890";
    let t0 = 1_800_000_000;
    f.set_time(t0);
    let code = |at: u64| totp_code(seed, at, 30, 6, HashAlg::Sha1);
    assert!(matches!(f.check("bob", &code(t0)).await, Decision::Accept { .. }));
    // The server's clock steps back ten minutes: the token's codes are ahead of it.
    f.set_time(t0 - 600);
    for minute in 1..=5 {
        let decision = f.check("bob", &code(t0 + 60 * minute)).await;
        assert!(
            matches!(decision, Decision::Reject { reason: RejectReason::ClockSkew, .. }),
            "minute {minute}: {decision:?}"
        );
    }
    let token = f.token("T2").await;
    assert_eq!((token.fail_count, token.state()), (0, TokenState::Active), "real codes lock nothing");
    // A guess still counts.
    assert!(matches!(f.check("bob", "000000").await, Decision::Reject { reason: RejectReason::WrongOtp, .. }));
    assert_eq!(f.token("T2").await.fail_count, 1);
}
