//! Group commit: many waiters share one flush of the store.
//!
//! A request that must be durable before its answer leaves (an Accept that
//! advanced a counter) writes first, then awaits [`GroupCommit::sync`]. One
//! thread runs flushes back to back; every waiter that arrived before a flush
//! started is released when it ends. Under load hundreds of Accepts share one
//! fsync, and no tokio worker ever blocks on the disk.

use std::sync::Arc;
use std::thread;

use tokio::sync::{mpsc, oneshot};

use super::{StoreError, TokenStore};

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct GroupCommit {
    requests: mpsc::UnboundedSender<Waiter>,
}

impl GroupCommit {
    pub fn start(store: Arc<dyn TokenStore>) -> Self {
        let (requests, mut queue) = mpsc::unbounded_channel::<Waiter>();
        thread::Builder::new()
            .name("radotp-flush".into())
            .spawn(move || {
                let mut batch: Vec<Waiter> = Vec::new();
                while let Some(first) = queue.blocking_recv() {
                    batch.push(first);
                    while let Ok(more) = queue.try_recv() {
                        batch.push(more);
                    }
                    let result = store.flush().map_err(|e| e.to_string());
                    if let Err(reason) = &result {
                        tracing::error!(%reason, "store flush failed");
                    }
                    for waiter in batch.drain(..) {
                        let _ = waiter.send(result.clone());
                    }
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the flush thread: {e}"));
        GroupCommit { requests }
    }

    /// Returns once every write made before the call is on disk.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(tx).map_err(|_| StoreError::Io("flush thread has stopped".into()))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Io(reason)),
            Err(_) => Err(StoreError::Io("flush thread has stopped".into())),
        }
    }
}
