//! Healing after a storage fault: the open engine lives in a [`Slot`], and a
//! watcher thread reopens the store once a failed write has room again.
//!
//! After an I/O error (a full disk, most often) sled refuses every later
//! write, even when the disk has room again. So while writes fail, the
//! watcher probes the store's directory every [`PROBE_EVERY`] with a small
//! file written and synced; once that works, it takes the engine out of the
//! slot (operations meanwhile fail fast as unavailable: RADIUS answers per
//! the configuration, never with an Accept), waits for the old handles to
//! go, opens the store again from disk and puts the new engine in. Audit
//! entries sealed but not yet written are carried over to the new engine;
//! changes that were never made durable were already taken back in memory
//! by the operation that asked for them, and fail counts written "soon" may
//! be lost (they are never more than the last moments before the fault).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use super::core::Core;
use super::group_commit::GroupCommit;
use super::{AuditRecord, Durability};
use crate::store::StoreError;

/// How often the watcher looks at a failing store.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Bytes the probe writes: room for the next flushes, not just one block.
const PROBE_BYTES: usize = 1 << 20;
/// How long a reopen waits for operations still holding the old engine.
const DRAIN: Duration = Duration::from_secs(5);

/// An open store: its trees and memory copy, and its flush thread.
pub(super) struct Engine {
    pub(super) core: Arc<Core>,
    pub(super) commit: GroupCommit,
}

impl Engine {
    pub(super) fn start(core: Arc<Core>) -> Result<Engine, StoreError> {
        let commit = GroupCommit::start(core.clone())
            .map_err(|e| StoreError::Unavailable(format!("cannot start the flush thread: {e}")))?;
        Ok(Engine { core, commit })
    }
}

/// What opening the store again needs.
pub(super) struct Reopen {
    pub(super) path: PathBuf,
    pub(super) cache_bytes: u64,
    pub(super) durability: Durability,
    pub(super) node: Option<String>,
}

/// The engine in use, or none while the store is being reopened.
pub(super) struct Slot {
    current: RwLock<Option<Arc<Engine>>>,
    /// `None` for a store opened only to be looked at.
    reopen: Option<Reopen>,
    /// Audit entries taken from an engine that is gone, for the next one.
    carried: Mutex<Vec<AuditRecord>>,
}

impl Slot {
    pub(super) fn open(reopen: Reopen) -> Result<Arc<Slot>, StoreError> {
        let engine = open_engine(&reopen)?;
        Ok(Arc::new(Slot {
            current: RwLock::new(Some(Arc::new(engine))),
            reopen: Some(reopen),
            carried: Mutex::default(),
        }))
    }

    pub(super) fn holding(engine: Engine) -> Arc<Slot> {
        Arc::new(Slot { current: RwLock::new(Some(Arc::new(engine))), reopen: None, carried: Mutex::default() })
    }

    /// The store's directory (none for a store opened only to be looked at).
    pub(super) fn path(&self) -> Option<&Path> {
        self.reopen.as_ref().map(|r| r.path.as_path())
    }

    pub(super) fn current(&self) -> Result<Arc<Engine>, StoreError> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store is being reopened after a write failure".into()))
    }

    /// Takes the engine out, lets it go, and opens the store again.
    fn reopen(&self, reopen: &Reopen) -> Result<(), StoreError> {
        let taken = self.current.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(old) = taken {
            self.carried.lock().unwrap_or_else(|p| p.into_inner()).extend(old.core.take_unwritten_audit());
            let deadline = Instant::now() + DRAIN;
            let mut old = old;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(engine) => {
                        drop(engine);
                        break;
                    }
                    Err(still) if Instant::now() < deadline => {
                        old = still;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(still) => {
                        // Someone still holds it: opening waits for sled's lock in turn.
                        drop(still);
                        break;
                    }
                }
            }
        }
        let engine = open_engine(reopen)?;
        let carried = std::mem::take(&mut *self.carried.lock().unwrap_or_else(|p| p.into_inner()));
        let (kept, dropped) = engine.core.requeue_audit(carried)?;
        if dropped > 0 {
            tracing::error!(entries = dropped, "audit entries that could not be chained after the reopen were lost");
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(engine));
        tracing::warn!(
            carried_audit_entries = kept,
            "the store was reopened after a write failure and is writing again"
        );
        Ok(())
    }
}

fn open_engine(reopen: &Reopen) -> Result<Engine, StoreError> {
    let core = Core::open(&reopen.path, reopen.cache_bytes, reopen.node.clone())?.with_durability(reopen.durability);
    Engine::start(Arc::new(core))
}

/// Whether the store's directory takes a write again: a probe file written,
/// synced and removed.
fn has_room(dir: &Path) -> bool {
    let probe = dir.join(".radotp-space-probe");
    let written = std::fs::File::create(&probe).and_then(|mut file| {
        file.write_all(&vec![0u8; PROBE_BYTES])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(&probe);
    written.is_ok()
}

/// Starts the watcher of `slot`; it ends when the store is dropped.
pub(super) fn watch(slot: &Arc<Slot>) {
    let weak: Weak<Slot> = Arc::downgrade(slot);
    let started = std::thread::Builder::new().name("radotp-heal".into()).spawn(move || {
        let mut failing_since: Option<Instant> = None;
        loop {
            std::thread::sleep(PROBE_EVERY);
            let Some(slot) = weak.upgrade() else { return };
            let Some(reopen) = &slot.reopen else { return };
            let failing = match slot.current() {
                Ok(engine) => engine.commit.failing().is_some(),
                Err(_) => true,
            };
            if !failing {
                failing_since = None;
                continue;
            }
            let since = *failing_since.get_or_insert_with(Instant::now);
            // One failed write may be followed by a good one: wait a tick.
            if since.elapsed() < PROBE_EVERY || !has_room(&reopen.path) {
                continue;
            }
            match slot.reopen(reopen) {
                Ok(()) => failing_since = None,
                Err(e) => tracing::error!(error = %e, "the store could not be reopened yet; trying again"),
            }
        }
    });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the store's healing thread: a write failure will need a restart");
    }
}
