//! The lockout cannot be worked by others: replays and retries of used codes
//! are not failures, a success does not refill an attacker's guesses, and a
//! seed the server cannot read is not the user's fault.

use std::sync::Arc;

use super::testing::{Fixture, RFC_CODES};
use super::*;

fn reason(decision: &Decision) -> Option<RejectReason> {
    match decision {
        Decision::Reject { reason, .. } => Some(*reason),
        Decision::Accept { .. } => None,
    }
}

#[tokio::test]
async fn replays_of_accepted_codes_are_refused_without_counting_a_failure() {
    let auth = AuthConfig { max_failures: 3, ..AuthConfig::default() };
    let f = Fixture::with_tokens(auth).await;
    for code in &RFC_CODES[..4] {
        assert!(matches!(f.check("alice", code).await, Decision::Accept { .. }));
    }
    // An observer replays every captured code, long after the duplicate window, many times.
    f.set_time(1_000_000 + 3600);
    for _ in 0..5 {
        for code in &RFC_CODES[..4] {
            assert_eq!(reason(&f.check("alice", code).await), Some(RejectReason::Replay), "{code}");
        }
    }
    let token = f.token("A1").await;
    assert_eq!((token.fail_count, token.locked), (0, false), "{token:?}");
    assert!(matches!(f.check("alice", RFC_CODES[4]).await, Decision::Accept { .. }), "the user still logs in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_copies_of_one_code_give_one_accept_and_no_failure() {
    let auth = AuthConfig { max_failures: 3, ..AuthConfig::default() };
    let f = Arc::new(Fixture::with_tokens(auth).await);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move { f.check("alice", RFC_CODES[0]).await }));
    }
    let mut accepts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Decision::Accept { .. } => accepts += 1,
            other => assert_eq!(reason(&other), Some(RejectReason::Replay)),
        }
    }
    assert_eq!(accepts, 1);
    let token = f.token("A1").await;
    assert_eq!((token.fail_count, token.locked), (0, false), "{token:?}");
}

#[tokio::test]
async fn a_success_does_not_refill_the_guesses_and_failures_decay_with_time() {
    let auth = AuthConfig { max_failures: 3, failure_decay_seconds: 3600, ..AuthConfig::default() };
    let f = Fixture::with_tokens(auth).await;
    f.set_time(10_000);
    // Two guesses, then the real user logs in: the count stays at 2.
    for _ in 0..2 {
        assert_eq!(reason(&f.check("alice", "000000").await), Some(RejectReason::WrongOtp));
    }
    assert!(matches!(f.check("alice", RFC_CODES[0]).await, Decision::Accept { .. }));
    assert_eq!(f.token("A1").await.fail_count, 2);
    // The third guess locks, although the user logged in between.
    assert_eq!(reason(&f.check("alice", "000000").await), Some(RejectReason::WrongOtp));
    assert!(f.token("A1").await.locked);

    // On bob's token: one failure is forgotten per hour since the last one.
    assert_eq!(reason(&f.check("bob", "000000").await), Some(RejectReason::WrongOtp));
    assert_eq!(reason(&f.check("bob", "000000").await), Some(RejectReason::WrongOtp));
    f.set_time(10_000 + 3599);
    assert_eq!(f.token("B1").await.fail_count_at(f.service.now(), 3600), 2);
    f.set_time(10_000 + 2 * 3600);
    assert_eq!(reason(&f.check("bob", "000000").await), Some(RejectReason::WrongOtp));
    let token = f.token("B1").await;
    assert_eq!((token.fail_count, token.locked), (1, false), "two forgotten, one new: {token:?}");
}

#[tokio::test]
async fn a_seed_that_cannot_be_opened_is_a_server_fault_not_a_failure() {
    let auth = AuthConfig { max_failures: 2, ..AuthConfig::default() };
    let f = Fixture::with_tokens(auth).await;
    // Seal alice's seed under another key, as after a master key mix-up.
    let mut token = f.token("A1").await;
    token.sealed_seed = crate::crypto::SeedCipher::new(&[1u8; 32])
        .seal("A1", &crate::secret::Secret::from("12345678901234567890"))
        .unwrap();
    assert!(matches!(f.store.swap(&token, None, crate::store::Commit::Durable).await, Ok(Swap::Swapped(_))));
    for code in &RFC_CODES[..4] {
        assert_eq!(reason(&f.check("alice", code).await), Some(RejectReason::SeedUnreadable));
    }
    let token = f.token("A1").await;
    assert_eq!((token.fail_count, token.locked), (0, false), "{token:?}");
}

#[tokio::test]
async fn an_unlock_clears_the_count_and_its_decay() {
    let mut token = crate::store::contract::token("T", None);
    assert!(!token.record_failure(3, 100, 60));
    assert_eq!((token.fail_count, token.failed_at), (1, Some(100)));
    assert_eq!(token.fail_count_at(159, 60), 1);
    assert_eq!(token.fail_count_at(160, 60), 0);
    assert_eq!(token.fail_count_at(10_000, 0), 1, "0: never forgotten");
    token.clear_failures();
    assert_eq!((token.fail_count, token.failed_at), (0, None));
}
