//! Tests of the journal as the engine uses it: a decision journaled and not
//! in sled survives a crash, a torn tail is ignored, and a checkpoint cut
//! short at any step leaves the newest state (never an older one) and every
//! audit entry.

use std::io::Write;

use super::*;
use crate::model::audit::{Actor, AuditEvent, AuditWrite};

use super::tests::reopen;

fn token(serial: &str) -> Token {
    super::tests::token(serial, Some("alice"))
}

/// Sets the counter of `serial` in memory (as a RADIUS decision does), sealing an audit entry.
fn decide(store: &Core, serial: &str, counter: u64) {
    let mut next = store.get(serial).unwrap().unwrap();
    next.counter = counter;
    assert!(matches!(store.swap(&next).unwrap().0, Swap::Swapped(_)));
    let event = AuditEvent {
        operation: "radius.auth".into(),
        user: Some("alice".into()),
        serial: Some(serial.into()),
        details: serde_json::json!({ "counter": counter }),
        result: "accept".into(),
        reason: None,
    };
    store.seal(vec![AuditWrite::new(&Actor::Daemon, 1, event)]).unwrap();
}

fn audit_counters(store: &Core) -> Vec<u64> {
    let mut counters = Vec::new();
    store
        .audit_oldest_first(&mut |record| {
            let entry: serde_json::Value = serde_json::from_slice(&record.bytes).unwrap();
            if let Some(c) = entry["details"]["counter"].as_u64() {
                counters.push(c);
            }
            true
        })
        .unwrap();
    counters
}

#[test]
fn a_journaled_decision_survives_without_sled_and_a_torn_tail_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Core::open(dir.path(), 1 << 20, None).unwrap();
        store.insert_all(&[token("A")]).unwrap();
        decide(&store, "A", 7);
        store.sync_journal().unwrap();
        assert!(store.tokens.get("A").unwrap().is_some() && store.progress.get("A").unwrap().unwrap().len() == 58);
        assert_eq!(Progress::decode(&store.progress.get("A").unwrap().unwrap(), None).unwrap().progress.counter, 0);
        // Half of a record that a crash cut.
        let mut file = std::fs::OpenOptions::new().append(true).open(dir.path().join("journal-0")).unwrap();
        file.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9]).unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(store.get("A").unwrap().unwrap().counter, 7);
    assert_eq!(audit_counters(&store), vec![7]);
    assert_eq!(std::fs::metadata(dir.path().join("journal-0")).unwrap().len(), 0, "replayed, then emptied");
    // It goes on: the chain continues after the replayed entry.
    decide(&store, "A", 8);
    store.sync_journal().unwrap();
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(audit_counters(&store), vec![7, 8]);
    let mut walk = crate::model::audit::ChainWalk::after(None);
    store.audit_oldest_first(&mut |r| walk.step(r.seq, &r.bytes)).unwrap();
    assert!(walk.report.ok, "{:?}", walk.report);
}

#[test]
fn a_checkpoint_cut_short_at_each_step_keeps_the_newest_state() {
    // Step 1: switched, nothing in sled. Step 2: sled written, not emptied.
    // Step 3: a newer state journaled in the other file after the switch.
    for stop_after in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Core::open(dir.path(), 1 << 20, None).unwrap();
            store.insert_all(&[token("A"), token("B")]).unwrap();
            decide(&store, "A", 5);
            decide(&store, "B", 3);
            store.sync_journal().unwrap();
            let left = {
                let mut state = store.journal.lock().unwrap();
                store.journal_locked(&mut state).unwrap();
                state.journal.switch()
            };
            if stop_after >= 2 {
                store.write_journaled_audit().unwrap();
                store.write_behind().unwrap();
                store.flush_sled().unwrap();
            }
            if stop_after >= 3 {
                decide(&store, "A", 6);
                store.sync_journal().unwrap();
            }
            let _ = left; // never emptied: the crash comes first
        }
        let store = reopen(dir.path());
        let expected_a = if stop_after >= 3 { 6 } else { 5 };
        assert_eq!(store.get("A").unwrap().unwrap().counter, expected_a, "stopped after step {stop_after}");
        assert_eq!(store.get("B").unwrap().unwrap().counter, 3, "stopped after step {stop_after}");
        let expected: Vec<u64> = if stop_after >= 3 { vec![5, 3, 6] } else { vec![5, 3] };
        assert_eq!(audit_counters(&store), expected, "stopped after step {stop_after}");
    }
}

#[test]
fn an_older_journal_record_never_overrides_an_operators_newer_write() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Core::open(dir.path(), 1 << 20, None).unwrap();
        store.insert_all(&[token("A")]).unwrap();
        decide(&store, "A", 9);
        store.sync_journal().unwrap();
        // An operator resets it (a whole write to sled with its audit entry).
        let mut reset = store.get("A").unwrap().unwrap();
        reset.counter = 2;
        reset.disabled = true;
        assert!(matches!(store.swap(&reset).unwrap().0, Swap::Swapped(_)));
        store.write_with_audit("A", Vec::new()).unwrap();
    }
    let store = reopen(dir.path());
    let a = store.get("A").unwrap().unwrap();
    assert_eq!((a.counter, a.disabled), (2, true), "the journal's counter 9 is older than the reset");
}

#[test]
fn a_removed_token_stays_removed_whatever_the_journal_says() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Core::open(dir.path(), 1 << 20, None).unwrap();
        store.insert_all(&[token("A")]).unwrap();
        decide(&store, "A", 4);
        store.sync_journal().unwrap();
        let version = store.get("A").unwrap().unwrap().version;
        assert!(matches!(store.remove("A", version).unwrap(), Swap::Swapped(_)));
        store.write_with_audit("A", Vec::new()).unwrap();
    }
    let store = reopen(dir.path());
    assert!(store.get("A").unwrap().is_none());
}

#[test]
fn an_engine_being_replaced_hands_over_only_what_it_did_not_journal_and_then_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let carried = {
        let store = Core::open(dir.path(), 1 << 20, None).unwrap();
        store.insert_all(&[token("A")]).unwrap();
        decide(&store, "A", 1);
        decide(&store, "A", 2);
        store.sync_journal().unwrap();
        decide(&store, "A", 3); // sealed, not journaled
        let carried = store.take_unwritten_audit();
        assert_eq!(carried.len(), 1, "only the entry not in the journal is carried");
        // Nothing more is sealed or journaled by the old engine: no decision on it can be answered.
        assert!(store.seal(vec![]).is_err());
        let mut next = store.get("A").unwrap().unwrap();
        next.counter = 4;
        assert!(matches!(store.swap(&next).unwrap().0, Swap::Swapped(_)));
        assert!(store.sync_journal().is_err());
        carried
    };
    let store = reopen(dir.path());
    assert_eq!(store.requeue_audit(carried).unwrap(), (1, 0));
    assert_eq!(store.get("A").unwrap().unwrap().counter, 2, "the journaled state, not the refused one");
    store.sync_journal().unwrap();
    store.write_journaled_audit().unwrap();
    assert_eq!(audit_counters(&store), vec![1, 2, 3]);
    let mut walk = crate::model::audit::ChainWalk::after(None);
    store.audit_oldest_first(&mut |r| walk.step(r.seq, &r.bytes)).unwrap();
    assert!(walk.report.ok, "{:?}", walk.report);
}

#[test]
fn a_serial_imported_again_right_after_its_removal_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Core::open(dir.path(), 1 << 20, None).unwrap();
        store.insert_all(&[token("A")]).unwrap();
        let version = store.get("A").unwrap().unwrap().version;
        // Removed in memory; its write (and journal record) still to come.
        assert!(matches!(store.remove("A", version).unwrap(), Swap::Swapped(_)));
        store.insert_all(&[token("A")]).unwrap();
        store.sync_journal().unwrap();
    }
    let store = reopen(dir.path());
    assert!(store.get("A").unwrap().is_some(), "the new import was taken back by an older removal");
}

#[test]
fn an_operators_entries_are_in_the_journal_as_well_as_in_sled() {
    let dir = tempfile::tempdir().unwrap();
    let store = Core::open(dir.path(), 1 << 20, None).unwrap();
    store.insert_all(&[token("A")]).unwrap();
    let mut changed = store.get("A").unwrap().unwrap();
    changed.disabled = true;
    assert!(matches!(store.swap(&changed).unwrap().0, Swap::Swapped(_)));
    let event = AuditEvent {
        operation: "token.disable".into(),
        user: None,
        serial: Some("A".into()),
        details: serde_json::json!({}),
        result: "ok".into(),
        reason: None,
    };
    store.write_with_audit("A", vec![AuditWrite::new(&Actor::Daemon, 1, event)]).unwrap();
    let last = store.last_audit().unwrap().unwrap().seq;
    let replay = super::super::journal::Replay::read(dir.path()).unwrap();
    assert!(replay.audit.contains_key(&last), "entry {last} journaled: {:?}", replay.audit.keys().collect::<Vec<_>>());
}
