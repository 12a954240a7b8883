//! Connection limits per peer, so that one peer cannot hold every
//! connection a listener allows (the metrics endpoint per IP address, the
//! admin socket per uid).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Counts the connections each peer holds, up to `per_peer`.
pub struct PerPeer<K: Eq + Hash + Clone> {
    per_peer: usize,
    held: Arc<Mutex<HashMap<K, usize>>>,
}

/// One connection of a peer; gives its place back when dropped.
pub struct PeerSlot<K: Eq + Hash + Clone> {
    key: K,
    held: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Eq + Hash + Clone> PerPeer<K> {
    pub fn new(per_peer: usize) -> Self {
        PerPeer { per_peer, held: Arc::default() }
    }

    /// A slot for `key`, or None when it holds `per_peer` connections already.
    pub fn try_acquire(&self, key: K) -> Option<PeerSlot<K>> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(key.clone()).or_default();
        if *count >= self.per_peer {
            return None;
        }
        *count += 1;
        Some(PeerSlot { key, held: self.held.clone() })
    }
}

impl<K: Eq + Hash + Clone> Drop for PeerSlot<K> {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_gets_its_own_share_and_gives_it_back() {
        let limit = PerPeer::new(2);
        let a1 = limit.try_acquire("a").unwrap();
        let _a2 = limit.try_acquire("a").unwrap();
        assert!(limit.try_acquire("a").is_none());
        let _b = limit.try_acquire("b").expect("another peer is not starved");
        drop(a1);
        assert!(limit.try_acquire("a").is_some());
    }
}
