//! Tests of the sled engine's inside: the in-memory copy, the write-behind
//! batches and their crash order, progress records, audit chunks, schemas.

use super::*;
use crate::model::token::Owner;
use crate::store::sled::progress::{Progress, Stamped};

/// What a test's update chooses (the shape of the old synchronous API).
enum Change {
    Write(Box<Token>, ()),
}

impl Core {
    /// Decides on the current token and writes the choice with a
    /// compare-and-swap, deciding again after a lost race.
    fn update(
        &self,
        serial: &str,
        _seen: Option<&Token>,
        decide: &mut dyn FnMut(&Token) -> Change,
    ) -> Result<(), StoreError> {
        loop {
            let Some(current) = self.get(serial)? else { return Ok(()) };
            let Change::Write(next, ()) = decide(&current);
            match self.swap(&next)?.0 {
                Swap::Conflict(_) => continue,
                _ => return Ok(()),
            }
        }
    }
}

/// A stored token as the contract suite makes them, created at time 0.
pub(super) fn token(serial: &str, owner: Option<&str>) -> Token {
    Token { created_at: 0, ..crate::store::contract::token(serial, owner) }
}

/// sled's background flusher holds the database (and its file lock) for
/// a moment after the last handle is dropped: wait for it, as a restart would.
pub(super) fn reopen(path: &Path) -> Core {
    for _ in 0..100 {
        match Core::open(path, 1 << 20, None) {
            Ok(store) => return store,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    Core::open(path, 1 << 20, None).expect("reopen the store")
}

#[test]
fn owner_index_follows_updates_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Core::open(dir.path(), 1 << 20, None).unwrap();
        store.insert_all(&[token("A", Some("alice")), token("B", None)]).unwrap();
        assert!(
            matches!(store.insert_all(&[token("C", None), token("A", None)]), Err(StoreError::Exists(s)) if s == "A")
        );
        assert!(store.get("C").unwrap().is_none(), "a failed batch writes nothing");
        store
            .update("A", None, &mut |t| {
                let mut n = t.clone();
                n.owner = Some(Owner { name: "bob".into(), display_name: None, dn: None });
                Change::Write(Box::new(n), ())
            })
            .unwrap();
        assert!(store.tokens_of("alice").unwrap().is_empty());
        assert_eq!(store.tokens_of("bob").unwrap().len(), 1);
        store.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(store.tokens_of("bob").unwrap()[0].serial, "A");
    assert_eq!(store.count(), 2);
    store.remove("A", store.get("A").unwrap().unwrap().version).unwrap();
    assert!(store.tokens_of("bob").unwrap().is_empty());
}

#[test]
fn a_stale_copy_costs_a_retry_never_a_lost_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = Core::open(dir.path(), 1 << 20, None).unwrap();
    store.insert_all(&[token("A", Some("alice"))]).unwrap();
    let stale = store.get("A").unwrap().unwrap();
    let bump = |t: &Token| {
        let mut n = t.clone();
        n.counter += 1;
        Change::Write(Box::new(n), ())
    };
    store.update("A", Some(&stale), &mut |t| bump(t)).unwrap();
    // `stale` no longer matches the store: the update must read afresh.
    store.update("A", Some(&stale), &mut |t| bump(t)).unwrap();
    assert_eq!(store.get("A").unwrap().unwrap().counter, 2);
}

#[test]
fn large_batches_are_all_or_nothing_and_existing_finds_serials() {
    let dir = tempfile::tempdir().unwrap();
    let store = Core::open(dir.path(), 1 << 20, None).unwrap();
    let batch: Vec<Token> = (0..2000).map(|i| token(&format!("B{i:05}"), (i % 2 == 0).then_some("alice"))).collect();
    store.insert_all(&batch).unwrap();
    assert_eq!(store.count(), 2000);
    assert_eq!(store.tokens_of("alice").unwrap().len(), 1000);
    // One serial of a second batch exists: nothing of it is written.
    let mut second: Vec<Token> = (0..1500).map(|i| token(&format!("C{i:05}"), Some("bob"))).collect();
    second.push(token("B01999", None));
    assert!(matches!(store.insert_all(&second), Err(StoreError::Exists(s)) if s == "B01999"));
    assert_eq!(store.count(), 2000);
    assert!(store.tokens_of("bob").unwrap().is_empty());
    // A serial twice in one batch.
    let twice: Vec<Token> = (0..300).map(|i| token(&format!("D{:05}", i % 299), None)).collect();
    assert!(matches!(store.insert_all(&twice), Err(StoreError::Exists(_))));
    assert_eq!(store.count(), 2000);
    // Existing: small sets by look-up, large ones by one ordered pass.
    let wanted: Vec<String> = ["A", "B00000", "B01999", "B02000", "C00000"].map(String::from).to_vec();
    assert_eq!(store.existing(&wanted), ["B00000", "B01999"].map(String::from).into());
    let many: Vec<String> = (0..3000).map(|i| format!("B{:05}", i * 2)).collect();
    let found = store.existing(&many);
    assert_eq!(found.len(), 1000);
    assert!(found.contains("B01998") && !found.contains("B02000"));
    // A few serials spread over a larger range: the pass stops early, the rest is looked up.
    let filler: Vec<Token> = (0..3000).map(|i| token(&format!("M{i:05}"), None)).collect();
    store.insert_all(&filler).unwrap();
    let mut spread: Vec<String> = (0..300).map(|i| format!("A{i:05}")).collect();
    spread.extend(["B00001", "M02999", "Z"].map(String::from));
    assert_eq!(store.existing(&spread), ["B00001", "M02999"].map(String::from).into());
}

#[test]
fn user_prefix_does_not_leak_into_longer_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = Core::open(dir.path(), 1 << 20, None).unwrap();
    store.insert_all(&[token("A", Some("al")), token("B", Some("alice"))]).unwrap();
    assert_eq!(store.tokens_of("al").unwrap().len(), 1);
}

#[test]
fn changes_held_in_memory_reach_disk_with_flush_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Core::open(dir.path(), 1 << 20, None).unwrap();
        store.insert_all(&[token("A", Some("alice")), token("B", Some("bob")), token("C", None)]).unwrap();
        store.flush().unwrap();
        // Changed in memory only, then made durable by one flush.
        store
            .update("A", None, &mut |t| {
                let mut n = t.clone();
                n.counter = 7;
                n.owner = Some(Owner { name: "carol".into(), display_name: None, dn: None });
                Change::Write(Box::new(n), ())
            })
            .unwrap();
        store.remove("B", store.get("B").unwrap().unwrap().version).unwrap();
        assert_eq!(store.tokens_of("carol").unwrap()[0].counter, 7, "reads see the change at once");
        assert!(store.tokens_of("alice").unwrap().is_empty());
        assert!(store.get("B").unwrap().is_none());
        store.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(store.count(), 2);
    assert_eq!(store.tokens_of("carol").unwrap()[0].counter, 7);
    assert!(store.tokens_of("alice").unwrap().is_empty());
    assert!(store.tokens_of("bob").unwrap().is_empty() && store.get("B").unwrap().is_none());
}

#[test]
fn concurrent_updates_are_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Core::open(dir.path(), 1 << 20, None).unwrap());
    store.insert_all(&[token("A", Some("alice"))]).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..250 {
                    store
                        .update("A", None, &mut |t| {
                            let mut n = t.clone();
                            n.counter += 1;
                            Change::Write(Box::new(n), ())
                        })
                        .unwrap();
                    let _ = store.write_behind();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(store.get("A").unwrap().unwrap().counter, 1000);
    store.flush().unwrap();
    let stored = Progress::decode(&store.progress.get("A").unwrap().unwrap(), None).unwrap();
    assert_eq!(stored.progress.counter, 1000, "sled has the last value");
}

#[test]
fn a_schema_1_store_loses_its_owner_tree_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        // What schema 1 wrote: tokens, an owner index tree, version 1.
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        db.open_tree("meta").unwrap().insert(SCHEMA_KEY, &1u32.to_be_bytes()).unwrap();
        let t = token("A", Some("alice"));
        db.open_tree("tokens").unwrap().insert("A", encode(&t).unwrap()).unwrap();
        db.open_tree("owners").unwrap().insert(b"alice\0A", &[]).unwrap();
        db.flush().unwrap();
    }
    {
        // Checking a configuration reads the old store and leaves it as it is.
        let checked = Core::open_to_check(dir.path(), 1 << 20).unwrap();
        assert_eq!(checked.tokens_of("alice").unwrap()[0].serial, "A");
        assert!(checked.db.tree_names().iter().any(|n| n.as_ref() == b"owners"));
        let version = checked.db.open_tree("meta").unwrap().get(SCHEMA_KEY).unwrap().unwrap();
        assert_eq!(version.as_ref(), &1u32.to_be_bytes());
    }
    {
        let store = reopen(dir.path());
        assert_eq!(store.tokens_of("alice").unwrap()[0].serial, "A");
        assert!(!store.db.tree_names().iter().any(|n| n.as_ref() == b"owners"));
        let version = store.db.open_tree("meta").unwrap().get(SCHEMA_KEY).unwrap().unwrap();
        assert_eq!(version.as_ref(), &SCHEMA_VERSION.to_be_bytes());
        store.db.open_tree("meta").unwrap().insert(SCHEMA_KEY, &(SCHEMA_VERSION + 1).to_be_bytes()).unwrap();
        store.flush().unwrap();
    }
    let mut refused = None;
    for _ in 0..100 {
        match Core::open(dir.path(), 1 << 20, None) {
            Err(StoreError::Schema { found, .. }) => {
                refused = Some(found);
                break;
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    assert_eq!(refused, Some(SCHEMA_VERSION + 1));
}

#[test]
fn audit_entries_written_in_chunks_read_back_in_order_with_single_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Core::open(dir.path(), 1 << 20, None).unwrap();
    let entry = |seq: u64| AuditRecord {
        seq,
        bytes: format!("{{\"seq\":{seq},\"pad\":\"{}\"}}", "x".repeat(900)).into_bytes(),
    };
    store.append_audit_batch(&[entry(1)]).unwrap();
    // 200 entries of ~1 KB: many 4 KiB chunks.
    store.append_audit_batch(&(2..=201).map(entry).collect::<Vec<_>>()).unwrap();
    store.append_audit_batch(&[entry(202)]).unwrap();
    assert!(store.audit.len() >= 4, "several chunks and the single entry: {}", store.audit.len());
    let mut oldest = Vec::new();
    store
        .audit_oldest_first(&mut |r| {
            assert_eq!(r.bytes, entry(r.seq).bytes);
            oldest.push(r.seq);
            true
        })
        .unwrap();
    assert_eq!(oldest, (1..=202).collect::<Vec<_>>());
    let mut newest = Vec::new();
    store
        .audit_newest_first(&mut |r| {
            newest.push(r.seq);
            newest.len() < 150
        })
        .unwrap();
    assert_eq!(newest, (53..=202).rev().collect::<Vec<_>>());
    assert_eq!(store.last_audit().unwrap().unwrap().seq, 202);
    // An entry inside a chunk can be overwritten (tamper tests), and only it changes.
    store.overwrite_audit(&AuditRecord { seq: 100, bytes: b"{\"edited\":1}".to_vec() }).unwrap();
    let mut audit = Vec::new();
    store
        .audit_oldest_first(&mut |r| {
            audit.push((r.seq, String::from_utf8(r.bytes).unwrap()));
            true
        })
        .unwrap();
    assert_eq!(audit.len(), 202);
    assert_eq!(audit[99], (100, "{\"edited\":1}".to_string()));
    assert_eq!(audit[100].1.as_bytes(), entry(101).bytes.as_slice());
    // A damaged chunk is reported, not misread.
    let (key, value) = store.audit.iter().nth(1).unwrap().unwrap();
    store.audit.insert(key, &value[..value.len() - 3]).unwrap();
    assert!(matches!(store.audit_oldest_first(&mut |_| true), Err(StoreError::Corrupt(_))));
}

#[test]
fn a_large_insert_is_written_by_the_caller_and_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Core::open(dir.path(), 1 << 20, None).unwrap();
    store.insert_all(&[token("X00042", None)]).unwrap();
    let many: Vec<Token> = (0..5000).map(|i| token(&format!("X{i:05}"), Some("alice"))).collect();
    assert!(matches!(store.insert_all(&many), Err(StoreError::Exists(s)) if s == "X00042"));
    assert_eq!((store.count(), store.tokens.len()), (1, 1), "nothing of it, in memory or in sled");
    let many: Vec<Token> = (0..5000).map(|i| token(&format!("Y{i:05}"), Some("alice"))).collect();
    store.insert_all(&many).unwrap();
    // In sled already (not left to the flush thread), and nothing dirty.
    assert_eq!(store.tokens.len(), 5001);
    assert!(store.read().dirty.keys().all(|s| s.starts_with('X')));
    assert_eq!(store.tokens_of("alice").unwrap().len(), 5000);
}

#[test]
fn a_decision_writes_only_the_progress_record_and_it_wins_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Core::open(dir.path(), 1 << 20, None).unwrap();
        store.insert_all(&[token("A", Some("alice")), token("B", Some("bob"))]).unwrap();
        store.flush().unwrap();
        let stored_json = store.tokens.get("A").unwrap().unwrap();
        let advance = |t: &Token| {
            let mut n = t.clone();
            n.counter += 5;
            n.fail_count = 0;
            n.last_used_at = Some(1_700_000_000);
            Change::Write(Box::new(n), ())
        };
        store.update("A", None, &mut |t| advance(t)).unwrap();
        assert_eq!(store.read().dirty.get("A"), Some(&Dirty::Progress));
        store.flush().unwrap();
        assert_eq!(store.tokens.get("A").unwrap().unwrap(), stored_json, "the token's JSON is not rewritten");
        assert!(store.progress.get("A").unwrap().is_some());
        // Anything else that changes is a whole write.
        store
            .update("B", None, &mut |t| {
                let mut n = t.clone();
                n.disabled = true;
                n.counter = 9;
                Change::Write(Box::new(n), ())
            })
            .unwrap();
        assert_eq!(store.read().dirty.get("B"), Some(&Dirty::Whole));
        store.flush().unwrap();
        assert_eq!(decode(&store.tokens.get("B").unwrap().unwrap()).unwrap().counter, 9);
        // A removal takes the progress record with it.
        store.remove("A", store.get("A").unwrap().unwrap().version).unwrap();
        store.insert_all(&[token("C", None)]).unwrap();
        store.flush().unwrap();
        assert!(store.progress.get("A").unwrap().is_none());
        // An orphan record (a removal cut short) is dropped at the next open.
        store.progress.insert("GONE", Progress::of(&token("GONE", None)).encode(1)).unwrap();
        store.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert!(store.get("A").unwrap().is_none());
    let b = store.get("B").unwrap().unwrap();
    assert!(b.disabled && b.counter == 9);
    assert!(store.progress.get("GONE").unwrap().is_none());
    // The progress record overrides an older whole token.
    store.progress.insert("C", Progress { counter: 77, ..Progress::of(&token("C", None)) }.encode(1)).unwrap();
    store.flush().unwrap();
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(store.get("C").unwrap().unwrap().counter, 77);
}

#[test]
fn progress_records_round_trip_and_refuse_garbage() {
    let full = Progress {
        counter: u64::MAX,
        last_step: Some(123),
        fail_count: 7,
        locked: true,
        locked_at: Some(9),
        last_used_at: None,
        failed_at: Some(11),
    };
    for progress in [full, Progress::of(&token("A", None))] {
        let bytes = progress.encode(42);
        assert_eq!(bytes.len(), Progress::LEN);
        assert_eq!(Progress::decode(&bytes, None), Some(Stamped { progress, seq: 42 }));
    }
    // Version 1 (no failed_at, no sequence): the token's JSON has failed_at.
    let mut v1 = full.encode(42)[..41].to_vec();
    v1[0] = 1;
    assert_eq!(
        Progress::decode(&v1, Some(5)),
        Some(Stamped { progress: Progress { failed_at: Some(5), ..full }, seq: 0 })
    );
    let mut bad = full.encode(1);
    bad[22] = 2;
    assert_eq!(Progress::decode(&bad, None), None);
    assert_eq!(Progress::decode(&full.encode(1)[..40], None), None);
    let mut version = full.encode(1);
    version[0] = 9;
    assert_eq!(Progress::decode(&version, None), None);
    // An owner change is never "progress only".
    let old = token("A", Some("alice"));
    let mut moved = old.clone();
    moved.owner = None;
    assert!(!Progress::is_all_that_changed(&old, &moved));
    let mut used = old.clone();
    used.counter = 3;
    used.locked_at = Some(1);
    assert!(Progress::is_all_that_changed(&old, &used));
}

#[test]
fn an_insert_cut_short_by_a_crash_is_taken_back_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Core::open(dir.path(), 1 << 20, None).unwrap();
        store.insert_all(&[token("KEEP", Some("alice"))]).unwrap();
        // What a crash leaves between the marker and the audit transaction:
        // the marker and some of the tokens it names.
        let names: Vec<String> = (0..3000).map(|i| format!("N{i:05}")).collect();
        store.imports.insert(7u64.to_be_bytes(), serde_json::to_vec(&names).unwrap()).unwrap();
        let written: Vec<Pending> = names[..2500]
            .iter()
            .map(|s| (s.as_str().into(), Some((Packed::encode(&token(s, None)), Dirty::Whole)), 1))
            .collect();
        store.apply_changes(&written).unwrap();
        store.flush().unwrap();
        assert_eq!(store.tokens.len(), 2501);
    }
    let store = reopen(dir.path());
    assert_eq!(store.count(), 1, "only the token of the finished insert");
    assert!(store.get("KEEP").unwrap().is_some());
    assert_eq!((store.tokens.len(), store.progress.len(), store.imports.len()), (1, 1, 0));
}

#[test]
fn an_insert_writes_its_audit_entries_and_removes_its_marker_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = Core::open(dir.path(), 1 << 20, None).unwrap();
    // An entry sealed before stays before the insert's own, in chain order.
    store.seal(vec![crate::store::contract::write("radius.auth", None, 1)]).unwrap();
    let many: Vec<Token> = (0..4500).map(|i| token(&format!("M{i:05}"), None)).collect();
    store.insert_audited(&many, vec![crate::store::contract::write("token.import", None, 2)]).unwrap();
    assert_eq!(store.imports.len(), 0);
    let mut seen = Vec::new();
    store
        .audit_oldest_first(&mut |r| {
            seen.push(r.seq);
            true
        })
        .unwrap();
    assert_eq!(seen, vec![1, 2], "both entries written, in order");
    assert_eq!((store.count(), store.tokens.len()), (4500, 4500));
    // A refused insert leaves no marker and no entry.
    assert!(matches!(store.insert_audited(&many[..1], vec![]), Err(StoreError::Exists(_))));
    assert_eq!(store.imports.len(), 0);
}

#[test]
fn an_operators_change_is_written_with_its_audit_entry_not_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Core::open(dir.path(), 1 << 20, None).unwrap();
    store.insert_all(&[token("A", Some("alice"))]).unwrap();
    let mut changed = store.get("A").unwrap().unwrap();
    changed.disabled = true;
    store.swap(&changed).unwrap();
    store.seal(vec![crate::store::contract::write("radius.auth", None, 1)]).unwrap();
    store.write_with_audit("A", vec![crate::store::contract::write("token.disable", Some("A"), 2)]).unwrap();
    // Both in sled now, before any write-behind: the token and the entries
    // (the one queued before first).
    assert!(decode(&store.tokens.get("A").unwrap().unwrap()).unwrap().disabled);
    let mut operations = Vec::new();
    store
        .audit_oldest_first(&mut |r| {
            operations.push(serde_json::from_slice::<serde_json::Value>(&r.bytes).unwrap()["operation"].clone());
            true
        })
        .unwrap();
    assert_eq!(operations, vec!["radius.auth", "token.disable"]);
    // A removal the same way.
    store.remove("A", store.get("A").unwrap().unwrap().version).unwrap();
    store.write_with_audit("A", vec![crate::store::contract::write("token.delete", Some("A"), 3)]).unwrap();
    assert!(store.tokens.get("A").unwrap().is_none() && store.progress.get("A").unwrap().is_none());
}

#[test]
fn the_unwritten_audit_queue_is_bounded_and_carried_to_a_reopened_store() {
    use crate::store::contract::write;
    let dir = tempfile::tempdir().unwrap();
    let carried = {
        let store = Core::open(dir.path(), 1 << 20, None).unwrap();
        store.seal(vec![write("radius.auth", None, 1)]).unwrap();
        store.flush().unwrap();
        // Entries that cannot be written pile up to the bound, then are refused.
        let many: Vec<_> = (0..MAX_UNWRITTEN_AUDIT).map(|i| write("radius.auth", None, i as u64)).collect();
        store.seal(many).unwrap();
        assert!(matches!(store.seal(vec![write("radius.auth", None, 9)]), Err(StoreError::Unavailable(_))));
        store.take_unwritten_audit()
    };
    assert_eq!(carried.len(), MAX_UNWRITTEN_AUDIT);
    let store = reopen(dir.path());
    // Entry 1 is stored: the carried ones follow it and the chain goes on after them.
    let mut with_a_gap = carried.clone();
    with_a_gap.remove(100);
    assert_eq!(store.requeue_audit(with_a_gap).unwrap(), (100, MAX_UNWRITTEN_AUDIT - 101));
    assert_eq!(store.requeue_audit(carried).unwrap(), (MAX_UNWRITTEN_AUDIT, 0));
    store.flush().unwrap();
    store.seal(vec![write("radius.auth", None, 10)]).unwrap();
    store.flush().unwrap();
    let mut walk = crate::model::audit::ChainWalk::default();
    store.audit_oldest_first(&mut |r| walk.step(r.seq, &r.bytes)).unwrap();
    assert!(walk.report.ok && walk.report.entries == MAX_UNWRITTEN_AUDIT as u64 + 2, "{:?}", walk.report);
}
