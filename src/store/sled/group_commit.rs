//! Group commit: many waiters share one journal write of the store.
//!
//! A request that must be durable before its answer leaves (an Accept that
//! advanced a counter) changes the token in memory first, then awaits
//! [`GroupCommit::sync`]. One thread runs journal writes back to back
//! ([`Core::sync_journal`]); every waiter that arrived before a write started
//! is released when it ends. Under load hundreds of Accepts share one
//! `write` and one `fdatasync`, and no tokio worker ever blocks on the disk.
//!
//! A second thread moves journaled changes into sled: audit entries every
//! [`AUDIT_TICK`], and a whole checkpoint ([`Core::checkpoint`]) every
//! `store.checkpoint_ms` or when the journal file grows large; changes
//! nobody waits for (a fail count) are journaled by it too. The last
//! failure of either thread, if any, is kept for status pages
//! ([`GroupCommit::failing`]).

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

#[derive(Clone)]
pub struct GroupCommit {
    requests: mpsc::Sender<Waiter>,
    /// The last failure of the journal thread and of the checkpoint thread.
    failing: Arc<Mutex<[Option<String>; 2]>>,
}

impl GroupCommit {
    pub(super) fn start(store: Arc<Core>) -> std::io::Result<Self> {
        let (requests, queue) = mpsc::channel::<Waiter>();
        let failing: Arc<Mutex<[Option<String>; 2]>> = Arc::default();
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
        let note = noter(1);
        let weak = Arc::downgrade(&store);
        drop(store);
        thread::Builder::new().name("radotp-checkpoint".into()).spawn(move || {
            let mut last_checkpoint = std::time::Instant::now();
            loop {
                thread::sleep(AUDIT_TICK.min(checkpoint_interval()));
                // The engine is gone (replaced or closed): so is this thread's work.
                let Some(store) = weak.upgrade() else { break };
                let due = last_checkpoint.elapsed() >= checkpoint_interval() || store.journal_is_large();
                let result = if due {
                    last_checkpoint = std::time::Instant::now();
                    store.checkpoint()
                } else {
                    // Changes nobody waits for (a fail count, a reject's entry) are journaled here.
                    store.sync_journal().and_then(|()| store.write_journaled_audit())
                };
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
        failing[0].clone().or_else(|| failing[1].clone())
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
