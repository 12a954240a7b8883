//! The contract every [`Store`] engine must keep, as tests.
//!
//! Each engine's test module invokes [`crate::store_contract_tests!`] with a
//! factory that makes a fresh, empty engine; the macro expands to one
//! `#[tokio::test]` per function here. The memory engine is the reference;
//! sled and PostgreSQL must behave the same.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use super::{Challenge, Commit, ExportSink, Store, StoreError, Swap, TokenQuery};
use crate::model::audit::{Actor, AuditEvent, AuditQuery, AuditWrite, Pruned, Retention};
use crate::model::otp::HashAlg;
use crate::model::token::{Algorithm, OtpParams, Owner, Token, TokenState};

/// A fresh engine and whatever must live as long as it (a temporary directory).
pub struct Engine {
    pub store: Arc<dyn Store>,
    _keep: Box<dyn Any + Send + Sync>,
}

impl Engine {
    pub fn new(store: impl Store + 'static, keep: impl Any + Send + Sync) -> Engine {
        Engine { store: Arc::new(store), _keep: Box::new(keep) }
    }
}

/// Expands to the contract tests for an engine made by `$make` (a closure
/// returning a future of [`Engine`]).
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(@each $make;
            tokens_read_back_with_a_version,
            an_owner_change_moves_the_owner_index_in_the_same_step,
            of_32_concurrent_swaps_on_one_token_exactly_one_wins,
            insert_is_all_or_nothing,
            remove_needs_the_current_version,
            filters_and_paging_are_answered_by_the_engine,
            audit_entries_come_back_newest_first_filtered_and_chained,
            a_challenge_is_single_use,
            export_and_restore_round_trip,
            audit_retention_removes_the_oldest_and_what_remains_verifies,
            meta_values_are_kept_apart_from_tokens_and_audit);
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::store::contract::$name(&$make).await;
            }
        )*
    };
}

pub fn token(serial: &str, owner: Option<&str>) -> Token {
    Token {
        serial: serial.into(),
        type_id: "hw-hotp".into(),
        params: OtpParams { algorithm: Algorithm::Hotp, digits: 6, hash: HashAlg::Sha1, period: 30 },
        sealed_seed: vec![1, 2, 3],
        counter: 0,
        last_step: None,
        drift: 0,
        owner: owner.map(|name| Owner { name: name.into(), display_name: None, dn: None }),
        disabled: false,
        locked: false,
        fail_count: 0,
        created_at: 1000,
        last_used_at: None,
        locked_at: None,
        failed_at: None,
        version: 0,
    }
}

/// An audit write by the daemon at `time`, about `serial` when given.
pub fn write(operation: &str, serial: Option<&str>, time: u64) -> AuditWrite {
    AuditWrite::new(
        &Actor::Daemon,
        time,
        AuditEvent {
            operation: operation.into(),
            serial: serial.map(str::to_string),
            user: serial.map(|s| format!("owner-of-{s}")),
            result: "ok".into(),
            ..AuditEvent::default()
        },
    )
}

async fn fresh<F, Fut>(make: &F) -> Engine
where
    F: Fn() -> Fut,
    Fut: Future<Output = Engine>,
{
    make().await
}

pub async fn tokens_read_back_with_a_version<F: Fn() -> Fut, Fut: Future<Output = Engine>>(make: &F) {
    let engine = fresh(make).await;
    let store = &engine.store;
    assert!(store.is_empty().await.unwrap());
    assert_eq!(store.get("A").await.unwrap(), None);
    store
        .insert(vec![token("A", Some("alice")), token("B", None)], vec![write("token.import", None, 1)])
        .await
        .unwrap();
    assert!(!store.is_empty().await.unwrap());
    let a = store.get("A").await.unwrap().unwrap();
    assert!(a.version > 0, "a stored token has a version");
    assert_eq!(Token { version: 0, ..a.clone() }, token("A", Some("alice")));
    let mut next = a.clone();
    next.counter = 5;
    let Swap::Swapped(stored) = store.swap(&next, None, Commit::Durable).await.unwrap() else { panic!("not swapped") };
    assert!(stored.version > a.version && stored.counter == 5);
    assert_eq!(store.get("A").await.unwrap().unwrap(), stored);
    // The old version is refused, with the current token.
    match store.swap(&next, None, Commit::Durable).await.unwrap() {
        Swap::Conflict(current) => assert_eq!(current, stored),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.swap(&token("Z", None), None, Commit::Durable).await.unwrap(), Swap::NotFound);
    let existing = store.existing(&["A".into(), "Q".into(), "B".into()]).await.unwrap();
    assert_eq!(existing.len(), 2);
    assert!(existing.contains("A") && existing.contains("B"));
}

pub async fn an_owner_change_moves_the_owner_index_in_the_same_step<F: Fn() -> Fut, Fut: Future<Output = Engine>>(
    make: &F,
) {
    let engine = fresh(make).await;
    let store = &engine.store;
    store.insert(vec![token("A", Some("alice")), token("B", Some("alice"))], vec![]).await.unwrap();
    assert_eq!(store.tokens_of("alice").await.unwrap().len(), 2);
    let mut moved = store.get("A").await.unwrap().unwrap();
    moved.owner = Some(Owner { name: "bob".into(), display_name: Some("Bob".into()), dn: None });
    let audit = write("token.assign", Some("A"), 5);
    assert!(matches!(store.swap(&moved, Some(audit), Commit::Durable).await.unwrap(), Swap::Swapped(_)));
    let alice: Vec<String> = store.tokens_of("alice").await.unwrap().into_iter().map(|t| t.serial).collect();
    let bob: Vec<String> = store.tokens_of("bob").await.unwrap().into_iter().map(|t| t.serial).collect();
    assert_eq!((alice, bob), (vec!["B".to_string()], vec!["A".to_string()]));
    let mut unassigned = store.get("B").await.unwrap().unwrap();
    unassigned.owner = None;
    store.swap(&unassigned, None, Commit::Durable).await.unwrap();
    assert!(store.tokens_of("alice").await.unwrap().is_empty());
    let entries = store.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].operation, "token.assign");
}

pub async fn of_32_concurrent_swaps_on_one_token_exactly_one_wins<F: Fn() -> Fut, Fut: Future<Output = Engine>>(
    make: &F,
) {
    let engine = fresh(make).await;
    engine.store.insert(vec![token("A", Some("alice"))], vec![]).await.unwrap();
    let read = engine.store.get("A").await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for n in 0..32u64 {
        let store = engine.store.clone();
        let mut next = read.clone();
        next.counter = 100 + n;
        tasks.push(tokio::spawn(async move {
            let audit = write("radius.auth", Some("A"), 10 + n);
            store.swap(&next, Some(audit), Commit::Durable).await.unwrap()
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Swap::Swapped(token) => won.push(token.counter),
            Swap::Conflict(current) => assert!(current.version > read.version),
            Swap::NotFound => panic!("the token exists"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one compare-and-swap wins");
    assert_eq!(engine.store.get("A").await.unwrap().unwrap().counter, won[0]);
    let entries = engine.store.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(entries.len(), 1, "only the winner's audit entry is written");
    assert!(engine.store.verify_audit().await.unwrap().iter().all(|r| r.ok));
}

pub async fn insert_is_all_or_nothing<F: Fn() -> Fut, Fut: Future<Output = Engine>>(make: &F) {
    let engine = fresh(make).await;
    let store = &engine.store;
    store.insert(vec![token("A", None)], vec![write("token.import", None, 1)]).await.unwrap();
    // A serial that exists: nothing of the batch is written, nor its audit entry.
    let batch = vec![token("B", None), token("A", None), token("C", None)];
    match store.insert(batch, vec![write("token.import", None, 2)]).await {
        Err(StoreError::Exists(serial)) => assert_eq!(serial, "A"),
        other => panic!("{other:?}"),
    }
    // A serial twice in the batch: the same.
    match store.insert(vec![token("D", None), token("D", None)], vec![]).await {
        Err(StoreError::Exists(serial)) => assert_eq!(serial, "D"),
        other => panic!("{other:?}"),
    }
    for serial in ["B", "C", "D"] {
        assert_eq!(store.get(serial).await.unwrap(), None, "{serial} was not written");
    }
    assert_eq!(store.audit(&AuditQuery::default()).await.unwrap().len(), 1);
    // A large batch is written whole.
    let many: Vec<Token> = (0..5000).map(|n| token(&format!("M{n:05}"), Some("mass"))).collect();
    store.insert(many, vec![write("token.import", None, 3)]).await.unwrap();
    assert_eq!(store.tokens_of("mass").await.unwrap().len(), 5000);
    assert_eq!(store.census(0, 0).await.unwrap().total, 5001);
}

pub async fn remove_needs_the_current_version<F: Fn() -> Fut, Fut: Future<Output = Engine>>(make: &F) {
    let engine = fresh(make).await;
    let store = &engine.store;
    store.insert(vec![token("A", Some("alice"))], vec![]).await.unwrap();
    let a = store.get("A").await.unwrap().unwrap();
    let mut changed = a.clone();
    changed.disabled = true;
    store.swap(&changed, None, Commit::Durable).await.unwrap();
    assert!(matches!(
        store.remove("A", a.version, write("token.delete", Some("A"), 2)).await.unwrap(),
        Swap::Conflict(_)
    ));
    assert!(store.get("A").await.unwrap().is_some());
    let current = store.get("A").await.unwrap().unwrap();
    let removed = store.remove("A", current.version, write("token.delete", Some("A"), 3)).await.unwrap();
    assert!(matches!(removed, Swap::Swapped(t) if t.disabled));
    assert_eq!(store.get("A").await.unwrap(), None);
    assert!(store.tokens_of("alice").await.unwrap().is_empty());
    assert_eq!(store.remove("A", current.version, write("token.delete", Some("A"), 4)).await.unwrap(), Swap::NotFound);
    let entries = store.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.time).collect::<Vec<_>>(), [3], "only the removal that happened is audited");
}

pub async fn filters_and_paging_are_answered_by_the_engine<F: Fn() -> Fut, Fut: Future<Output = Engine>>(make: &F) {
    let engine = fresh(make).await;
    let store = &engine.store;
    let mut tokens = Vec::new();
    for n in 0..30 {
        let mut t = token(&format!("HW{n:03}"), if n % 3 == 0 { None } else { Some(["alice", "bob"][n % 2]) });
        if n % 5 == 0 {
            t.type_id = "app-totp".into();
        }
        if n == 7 {
            t.disabled = true;
        }
        if n == 8 {
            t.locked = true;
            t.locked_at = Some(100);
        }
        tokens.push(t);
    }
    store.insert(tokens, vec![]).await.unwrap();
    let serials = |found: Vec<Token>| found.into_iter().map(|t| t.serial).collect::<Vec<_>>();
    let q = |f: &dyn Fn(&mut TokenQuery)| {
        let mut query = TokenQuery::default();
        f(&mut query);
        query
    };
    let all = serials(store.find(&TokenQuery::default()).await.unwrap());
    assert_eq!(all.len(), 30);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "serial order");
    let page1 = serials(store.find(&q(&|q| q.limit = 10)).await.unwrap());
    let page2 = serials(store.find(&q(&|q| (q.limit, q.after) = (10, page1.last().cloned()))).await.unwrap());
    assert_eq!([page1.clone(), page2.clone()].concat(), all[..20].to_vec());
    assert_eq!(serials(store.find(&q(&|q| q.serial_contains = Some("HW01".into()))).await.unwrap()).len(), 10);
    assert_eq!(store.find(&q(&|q| q.type_id = Some("app-totp".into()))).await.unwrap().len(), 6);
    assert_eq!(store.find(&q(&|q| q.unassigned = true)).await.unwrap().len(), 10);
    let alice = store.find(&q(&|q| q.owner = Some("alice".into()))).await.unwrap();
    assert!(alice.iter().all(|t| t.owner_name() == Some("alice")) && alice.len() == 10);
    let disabled = serials(store.find(&q(&|q| q.state = Some(TokenState::Disabled))).await.unwrap());
    assert_eq!(disabled, ["HW007"]);
    // A lock that has run out counts as active at `now`.
    let locked_then = q(&|q| (q.state, q.now, q.lockout_seconds) = (Some(TokenState::Locked), 150, 60));
    assert_eq!(serials(store.find(&locked_then).await.unwrap()), ["HW008"]);
    let locked_later = q(&|q| (q.state, q.now, q.lockout_seconds) = (Some(TokenState::Locked), 200, 60));
    assert!(store.find(&locked_later).await.unwrap().is_empty());
    let census = store.census(150, 60).await.unwrap();
    assert_eq!((census.total, census.unassigned), (30, 10));
    assert_eq!((census.by_state["active"], census.by_state["disabled"], census.by_state["locked"]), (28, 1, 1));
    assert_eq!(store.census(200, 60).await.unwrap().by_state["locked"], 0);
}

pub async fn audit_entries_come_back_newest_first_filtered_and_chained<F: Fn() -> Fut, Fut: Future<Output = Engine>>(
    make: &F,
) {
    let engine = fresh(make).await;
    let store = &engine.store;
    for n in 0..20u64 {
        let serial = if n % 2 == 0 { "A" } else { "B" };
        store.record(vec![write("radius.auth", Some(serial), 100 + n)], Commit::Soon).await.unwrap();
    }
    let all = store.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(all.len(), 20);
    assert!(all.windows(2).all(|w| w[0].time > w[1].time), "newest first");
    let a = store.audit(&AuditQuery { serial: Some("A".into()), limit: 3, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(a.iter().map(|e| e.time).collect::<Vec<_>>(), [118, 116, 114]);
    let since = store.audit(&AuditQuery { since: Some(115), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(since.len(), 5);
    let window =
        store.audit(&AuditQuery { since: Some(105), until: Some(108), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(window.iter().map(|e| e.time).collect::<Vec<_>>(), [107, 106, 105]);
    let user = store.audit(&AuditQuery { user: Some("owner-of-B".into()), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(user.len(), 10);
    let reports = store.verify_audit().await.unwrap();
    assert!(reports.iter().all(|r| r.ok), "{reports:?}");
    assert_eq!(reports.iter().map(|r| r.entries).sum::<u64>(), 20);
}

pub async fn a_challenge_is_single_use<F: Fn() -> Fut, Fut: Future<Output = Engine>>(make: &F) {
    let engine = fresh(make).await;
    let store = &engine.store;
    let challenge = |state: u8, expires_at_ms: u64| Challenge {
        state: vec![state; 32],
        client: "vpn".into(),
        asked_as: "Alice".into(),
        user: "alice".into(),
        expires_at_ms,
        attempts_left: 3,
    };
    assert!(store.put_challenge(challenge(1, 5000), 1000, 2).await.unwrap());
    assert!(store.put_challenge(challenge(2, 1500), 1000, 2).await.unwrap());
    // Full: refused while both are alive; an expired one makes room.
    assert!(!store.put_challenge(challenge(3, 5000), 1200, 2).await.unwrap());
    assert!(store.put_challenge(challenge(3, 5000), 2000, 2).await.unwrap());
    assert_eq!(store.take_challenge(&[1; 32]).await.unwrap(), Some(challenge(1, 5000)));
    assert_eq!(store.take_challenge(&[1; 32]).await.unwrap(), None, "single use");
    assert_eq!(store.take_challenge(&[9; 32]).await.unwrap(), None);
    assert_eq!(store.pending_challenges().await.unwrap(), 1);
}

#[derive(Default)]
struct Collect {
    tokens: Vec<Token>,
    audit: Vec<(u64, String)>,
}

impl ExportSink for Collect {
    fn token(&mut self, token: Token) -> Result<(), StoreError> {
        self.tokens.push(token);
        Ok(())
    }
    fn audit(&mut self, seq: u64, text: String) -> Result<(), StoreError> {
        self.audit.push((seq, text));
        Ok(())
    }
}

pub async fn export_and_restore_round_trip<F: Fn() -> Fut, Fut: Future<Output = Engine>>(make: &F) {
    let engine = fresh(make).await;
    let store = &engine.store;
    store
        .insert(vec![token("A", Some("alice")), token("B", None)], vec![write("token.import", None, 1)])
        .await
        .unwrap();
    let mut a = store.get("A").await.unwrap().unwrap();
    a.counter = 7;
    store.swap(&a, Some(write("radius.auth", Some("A"), 2)), Commit::Durable).await.unwrap();
    let mut out = Collect::default();
    store.export(&mut out).await.unwrap();
    assert_eq!(out.tokens.iter().map(|t| (t.serial.as_str(), t.counter)).collect::<Vec<_>>(), [("A", 7), ("B", 0)]);
    assert_eq!(out.audit.len(), 2);

    let copy = fresh(make).await;
    let tokens = out.tokens.iter().map(|t| Token { version: 0, ..t.clone() }).collect();
    copy.store.insert(tokens, vec![]).await.unwrap();
    copy.store.restore_audit(out.audit.clone()).await.unwrap();
    let mut again = Collect::default();
    copy.store.export(&mut again).await.unwrap();
    let strip = |tokens: &[Token]| tokens.iter().map(|t| Token { version: 0, ..t.clone() }).collect::<Vec<_>>();
    assert_eq!(strip(&again.tokens), strip(&out.tokens));
    assert_eq!(again.audit, out.audit);
    // The restored chain goes on.
    copy.store.record(vec![write("token.show", Some("A"), 3)], Commit::Durable).await.unwrap();
    assert!(copy.store.verify_audit().await.unwrap().iter().all(|r| r.ok));
    assert_eq!(copy.store.audit(&AuditQuery::default()).await.unwrap().len(), 3);
}

pub async fn meta_values_are_kept_apart_from_tokens_and_audit<F: Fn() -> Fut, Fut: Future<Output = Engine>>(make: &F) {
    let engine = fresh(make).await;
    let store = &engine.store;
    assert_eq!(store.get_meta("key_check").await.unwrap(), None);
    store.put_meta("key_check", b"first").await.unwrap();
    store.put_meta("audit_anchor", b"other").await.unwrap();
    assert!(store.is_empty().await.unwrap(), "meta values are neither tokens nor audit entries");
    store.put_meta("key_check", b"second").await.unwrap();
    assert_eq!(store.get_meta("key_check").await.unwrap().as_deref(), Some(&b"second"[..]));
    assert_eq!(store.get_meta("audit_anchor").await.unwrap().as_deref(), Some(&b"other"[..]));
    assert_eq!(store.get_meta("schema_version").await.unwrap(), None, "engine internals are not meta values");
}

pub async fn audit_retention_removes_the_oldest_and_what_remains_verifies<
    F: Fn() -> Fut,
    Fut: Future<Output = Engine>,
>(
    make: &F,
) {
    let engine = fresh(make).await;
    let store = &engine.store;
    let by_count = Retention { max_entries: Some(20), max_age_seconds: None };
    assert_eq!(store.prune_audit(by_count, 1000).await.unwrap(), Pruned::default(), "nothing to prune yet");
    // 50 entries, at times 100..150; the engine may queue them: retention counts them too.
    for time in 100..150 {
        store.record(vec![write("radius.auth", None, time)], Commit::Soon).await.unwrap();
    }
    let pruned = store.prune_audit(by_count, 1000).await.unwrap();
    assert_eq!(pruned, Pruned { entries: 30, through: Some(30) });
    let kept = store.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!((kept.len(), kept.last().map(|e| e.seq)), (20, Some(31)), "the newest 20 stay");
    let report = &store.verify_audit().await.unwrap()[0];
    assert!(report.ok && report.entries == 20 && report.pruned_through == Some(30), "{report:?}");
    // By age: times 130..149 are kept; at 200 with 60 s those before 140 go.
    let by_age = Retention { max_entries: None, max_age_seconds: Some(60) };
    assert_eq!(store.prune_audit(by_age, 200).await.unwrap(), Pruned { entries: 10, through: Some(40) });
    // The newest entry always stays, and the chain goes on after pruning.
    assert_eq!(store.prune_audit(by_age, 10_000).await.unwrap().entries, 9);
    store.record(vec![write("token.show", None, 10_001)], Commit::Durable).await.unwrap();
    let report = &store.verify_audit().await.unwrap()[0];
    assert!(report.ok && report.entries == 2 && report.pruned_through == Some(49), "{report:?}");
    // A copy of a pruned log restores and verifies.
    let mut out = Collect::default();
    store.export(&mut out).await.unwrap();
    let copy = fresh(make).await;
    copy.store.restore_audit(out.audit).await.unwrap();
    let report = &copy.store.verify_audit().await.unwrap()[0];
    assert!(report.ok && report.pruned_through == Some(49), "{report:?}");
}
