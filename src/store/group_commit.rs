//! Group commit: many waiters share one flush of the store.
//!
//! A request that must be durable before its answer leaves (an Accept that
//! advanced a counter) writes first, then awaits [`GroupCommit::sync`]. One
//! thread runs flushes back to back; every waiter that arrived before a flush
//! started is released when it ends. Under load hundreds of Accepts share one
//! fsync, and no tokio worker ever blocks on the disk.
//!
//! Before each flush, and every [`IDLE_TICK`] when there is none, the thread
//! runs a hook: the audit log writes its queued entries there. On idle ticks
//! it also asks the store to write changes it holds in memory
//! ([`TokenStore::write_behind`]).

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

use super::{StoreError, TokenStore};

type Waiter = oneshot::Sender<Result<(), String>>;
/// Work done before every flush (and on idle ticks).
pub type BeforeFlush = Box<dyn Fn() + Send>;

/// How often queued work is written when no flush is asked for.
pub const IDLE_TICK: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct GroupCommit {
    requests: mpsc::Sender<Waiter>,
}

impl GroupCommit {
    pub fn start(store: Arc<dyn TokenStore>, before_flush: BeforeFlush) -> std::io::Result<Self> {
        let (requests, queue) = mpsc::channel::<Waiter>();
        thread::Builder::new().name("radotp-flush".into()).spawn(move || {
            let mut batch: Vec<Waiter> = Vec::new();
            loop {
                match queue.recv_timeout(IDLE_TICK) {
                    Ok(first) => batch.push(first),
                    Err(RecvTimeoutError::Timeout) => {
                        before_flush();
                        if let Err(e) = store.write_behind() {
                            tracing::error!(error = %e, "cannot write changed tokens to the store");
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                while let Ok(more) = queue.try_recv() {
                    batch.push(more);
                }
                before_flush();
                let result = store.flush().map_err(|e| e.to_string());
                if let Err(reason) = &result {
                    tracing::error!(%reason, "store flush failed");
                }
                for waiter in batch.drain(..) {
                    let _ = waiter.send(result.clone());
                }
            }
        })?;
        Ok(GroupCommit { requests })
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
