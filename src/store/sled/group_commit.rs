//! Group commit: many waiters share one flush of the store.
//!
//! A request that must be durable before its answer leaves (an Accept that
//! advanced a counter) writes first, then awaits [`GroupCommit::sync`]. One
//! thread runs flushes back to back; every waiter that arrived before a flush
//! started is released when it ends. Under load hundreds of Accepts share one
//! fsync, and no tokio worker ever blocks on the disk.
//!
//! Every [`IDLE_TICK`] without a flush, the thread writes queued audit
//! entries and changed tokens behind ([`Core::write_behind`]), so changes
//! nobody waits for reach sled within a few hundred milliseconds. The last
//! flush's failure, if any, is kept for status pages ([`GroupCommit::failing`]).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

use super::core::Core;
use crate::store::StoreError;

type Waiter = oneshot::Sender<Result<(), String>>;

/// How often queued work is written when no flush is asked for.
pub const IDLE_TICK: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct GroupCommit {
    requests: mpsc::Sender<Waiter>,
    failing: Arc<Mutex<Option<String>>>,
}

impl GroupCommit {
    pub(super) fn start(store: Arc<Core>) -> std::io::Result<Self> {
        let (requests, queue) = mpsc::channel::<Waiter>();
        let failing: Arc<Mutex<Option<String>>> = Arc::default();
        let failure = failing.clone();
        let note = move |result: &Result<(), String>| {
            *failure.lock().unwrap_or_else(|p| p.into_inner()) = result.as_ref().err().cloned();
        };
        thread::Builder::new().name("radotp-flush".into()).spawn(move || {
            let mut batch: Vec<Waiter> = Vec::new();
            loop {
                match queue.recv_timeout(IDLE_TICK) {
                    Ok(first) => batch.push(first),
                    Err(RecvTimeoutError::Timeout) => {
                        let written = store.write_pending_audit().and_then(|()| store.write_behind());
                        if let Err(e) = &written {
                            tracing::error!(error = %e, "cannot write audit entries and changed tokens to the store");
                        }
                        note(&written.map_err(|e| e.to_string()));
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                while let Ok(more) = queue.try_recv() {
                    batch.push(more);
                }
                let result = store.flush().map_err(|e| e.to_string());
                if let Err(reason) = &result {
                    tracing::error!(%reason, "store flush failed");
                }
                note(&result);
                for waiter in batch.drain(..) {
                    let _ = waiter.send(result.clone());
                }
            }
        })?;
        Ok(GroupCommit { requests, failing })
    }

    /// Why the last write failed, while it has not succeeded since.
    pub fn failing(&self) -> Option<String> {
        self.failing.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
