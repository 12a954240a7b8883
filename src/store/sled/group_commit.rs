//! Group commit: many waiters share one journal write of the store.
//!
//! A request that must be durable before its answer leaves (an Accept that
//! advanced a counter) changes the token in memory first, then awaits
//! [`GroupCommit::sync`]. One thread runs journal writes back to back
//! ([`Core::sync_journal`]); every waiter that arrived before a write started
//! is released when it ends. Under load hundreds of Accepts share one
//! `write` and one `fdatasync`, and no tokio worker ever blocks on the disk.
//!
//! Two more threads move journaled changes into sled: one writes audit
//! entries every [`AUDIT_TICK`] (at once again while a backlog remains) and
//! journals changes nobody waits for (a fail count); the other runs a whole
//! checkpoint ([`Core::checkpoint`]) every `store.checkpoint_ms` or when the
//! journal file grows large. The last failure of each thread, if any, is
//! kept for status pages ([`GroupCommit::failing`]).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

use super::core::Core;
use super::core::checkpoint::{AUDIT_TICK, checkpoint_interval};
use crate::store::StoreError;

type Waiter = oneshot::Sender<Result<(), String>>;

/// How often the journal thread looks for work when nobody waits.
pub const IDLE_TICK: Duration = Duration::from_millis(200);
/// Audit entries waiting for sled past which the audit thread writes again at once.
const AUDIT_BACKLOG: usize = 2000;

#[derive(Clone)]
pub struct GroupCommit {
    requests: mpsc::Sender<Waiter>,
    /// The last failure of the journal, audit and checkpoint threads.
    failing: Arc<Mutex<[Option<String>; 3]>>,
}

impl GroupCommit {
    pub(super) fn start(store: Arc<Core>) -> std::io::Result<Self> {
        let (requests, queue) = mpsc::channel::<Waiter>();
        let failing: Arc<Mutex<[Option<String>; 3]>> = Arc::default();
        let noter = |slot: usize| {
            let failure = failing.clone();
            move |result: &Result<(), String>| {
                failure.lock().unwrap_or_else(|p| p.into_inner())[slot] = result.as_ref().err().cloned();
            }
        };
        let note = noter(0);
        let journal_store = store.clone();
        thread::Builder::new().name("radotp-journal".into()).spawn(move || {
            let store = journal_store;
            let mut batch: Vec<Waiter> = Vec::new();
            loop {
                match queue.recv_timeout(IDLE_TICK) {
                    Ok(first) => batch.push(first),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                while let Ok(more) = queue.try_recv() {
                    batch.push(more);
                }
                let result = store.sync_journal().map_err(|e| e.to_string());
                if let Err(reason) = &result {
                    tracing::error!(%reason, "cannot write the store's journal");
                }
                note(&result);
                for waiter in batch.drain(..) {
                    let _ = waiter.send(result.clone());
                }
            }
        })?;
        // Audit entries go into sled on their own thread, so that a long
        // checkpoint (tens of thousands of changed tokens) never lets them
        // pile up in memory behind it.
        let note = noter(1);
        let weak = Arc::downgrade(&store);
        thread::Builder::new().name("radotp-audit".into()).spawn(move || {
            loop {
                thread::sleep(AUDIT_TICK);
                // The engine is gone (replaced or closed): so is this thread's work.
                let Some(store) = weak.upgrade() else { break };
                loop {
                    // Changes nobody waits for (a fail count, a reject's entry) are journaled here.
                    let result = store.sync_journal().and_then(|()| store.write_journaled_audit());
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "cannot write journaled audit entries into the store");
                    }
                    let failed = result.is_err();
                    note(&result.map_err(|e| e.to_string()));
                    // A backlog is written at once, without waiting for the next tick.
                    if failed || store.unwritten_audit() < AUDIT_BACKLOG {
                        break;
                    }
                }
            }
        })?;
        let note = noter(2);
        let weak = Arc::downgrade(&store);
        drop(store);
        thread::Builder::new().name("radotp-checkpoint".into()).spawn(move || {
            let mut last_checkpoint = std::time::Instant::now();
            loop {
                thread::sleep(AUDIT_TICK.min(checkpoint_interval()));
                let Some(store) = weak.upgrade() else { break };
                if last_checkpoint.elapsed() < checkpoint_interval() && !store.journal_is_large() {
                    continue;
                }
                last_checkpoint = std::time::Instant::now();
                let result = store.checkpoint();
                if let Err(e) = &result {
                    tracing::error!(error = %e, "cannot write journaled changes into the store");
                }
                note(&result.map_err(|e| e.to_string()));
            }
        })?;
        Ok(GroupCommit { requests, failing })
    }

    /// Why the last write failed, while it has not succeeded since.
    pub fn failing(&self) -> Option<String> {
        let failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        failing.iter().flatten().next().cloned()
    }

    /// Returns once every write made before the call is on disk.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(tx).map_err(|_| StoreError::Unavailable("flush thread has stopped".into()))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Unavailable(reason)),
            Err(_) => Err(StoreError::Unavailable("flush thread has stopped".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::audit::{Actor, AuditEvent, AuditWrite};
    use crate::store::Durability;

    fn entry(i: usize) -> AuditWrite {
        let event = AuditEvent {
            operation: "radius.auth".into(),
            user: Some(format!("u{i}")),
            serial: None,
            details: serde_json::json!({}),
            result: "reject".into(),
            reason: Some("no_token".into()),
        };
        AuditWrite::new(&Actor::Daemon, 1, event)
    }

    /// Before the audit thread, audit entries reached sled on the checkpoint
    /// thread: while a checkpoint of many tokens ran, they piled up until
    /// decisions were refused ("20000 audit entries wait to be written").
    #[test]
    fn audit_entries_reach_sled_while_a_checkpoint_takes_long() {
        let dir = tempfile::tempdir().unwrap();
        let core = Arc::new(Core::open(dir.path(), 1 << 20, None).unwrap().with_durability(Durability::Process));
        let commit = GroupCommit::start(core.clone()).unwrap();
        // A checkpoint that takes long: the checkpoint thread waits on it from its first one on.
        let stalled = core.checkpointing.lock().unwrap();
        thread::sleep(checkpoint_interval() + Duration::from_millis(300));
        for round in 0..25 {
            let writes = (0..1000).map(|i| entry(round * 1000 + i)).collect();
            if let Err(e) = core.seal(writes) {
                panic!("round {round}: {e}");
            }
            thread::sleep(Duration::from_millis(40));
        }
        drop(stalled);
        drop(commit);
        assert!(core.unwritten_audit() < 25_000);
    }
}
