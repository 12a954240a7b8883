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

/// At most `per_window` events per key in each fixed window of
/// `window_seconds` (directory binds per user). Memory is bounded: keys of
/// past windows are dropped when the map grows past `max_keys`.
pub struct PerKeyRate {
    per_window: u32,
    window_seconds: u64,
    max_keys: usize,
    counts: Mutex<HashMap<String, (u64, u32)>>,
}

impl PerKeyRate {
    pub fn new(per_window: u32, window_seconds: u64, max_keys: usize) -> Self {
        PerKeyRate { per_window, window_seconds: window_seconds.max(1), max_keys, counts: Mutex::default() }
    }

    /// Counts one event for `key` at `now` (Unix seconds); false when the
    /// key has had `per_window` events in this window already (then it is
    /// not counted).
    pub fn try_take(&self, key: &str, now: u64) -> bool {
        let window = now / self.window_seconds;
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= self.max_keys && !counts.contains_key(key) {
            counts.retain(|_, (w, _)| *w == window);
            if counts.len() >= self.max_keys {
                // Every key is busy in this window: refuse newcomers rather than grow.
                return false;
            }
        }
        let entry = counts.entry(key.to_string()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= self.per_window {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn a_key_gets_its_events_per_window_and_others_are_not_touched() {
        let rate = PerKeyRate::new(3, 60, 100);
        assert!((0..3).all(|_| rate.try_take("alice", 600)));
        assert!(!rate.try_take("alice", 659));
        assert!(rate.try_take("bob", 659));
        assert!(rate.try_take("alice", 660), "a new window");
        let small = PerKeyRate::new(1, 60, 2);
        assert!(small.try_take("a", 0) && small.try_take("b", 0));
        assert!(!small.try_take("c", 0), "bounded memory");
        assert!(small.try_take("c", 60), "old windows are dropped");
    }
}
