//! The RFC 5080 duplicate cache.
//!
//! A retransmission (same client, code, identifier and request authenticator)
//! must never reach the OTP check again: that would reject a valid user as a
//! replay. While the first copy is in progress, copies are dropped; once it is
//! answered, copies get the same reply bytes. The OpenVPN plugin retransmits
//! from a new source port, so entries are also found without the port.
//! Bounded in entries; entries expire after the configured lifetime.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Identifies one request as the client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestKey {
    pub ip: IpAddr,
    pub code: u8,
    pub identifier: u8,
    pub authenticator: [u8; 16],
}

#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// First time: process it, then call [`DuplicateCache::complete`] or [`DuplicateCache::abandon`].
    New,
    /// A copy of a request still being processed: drop it.
    InProgress,
    /// A copy of an answered request: send these bytes again.
    Answered(Arc<[u8]>),
}

enum State {
    InProgress,
    Answered(Arc<[u8]>),
}

struct Entry {
    state: State,
    created: Instant,
}

struct Inner {
    entries: HashMap<RequestKey, Entry>,
    /// (ip, port, code, identifier) -> the request last seen on that slot,
    /// so a new request reusing the slot replaces the old entry.
    slots: HashMap<(IpAddr, u16, u8, u8), RequestKey>,
    order: VecDeque<(Instant, RequestKey, u16)>,
}

pub struct DuplicateCache {
    inner: Mutex<Inner>,
    lifetime: Duration,
    max_entries: usize,
}

impl DuplicateCache {
    pub fn new(lifetime: Duration, max_entries: usize) -> Self {
        DuplicateCache {
            inner: Mutex::new(Inner { entries: HashMap::new(), slots: HashMap::new(), order: VecDeque::new() }),
            lifetime,
            max_entries: max_entries.max(1),
        }
    }

    pub fn check(&self, key: RequestKey, port: u16, now: Instant) -> Seen {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        self.expire(&mut inner, now);
        if let Some(entry) = inner.entries.get(&key) {
            return match &entry.state {
                State::InProgress => Seen::InProgress,
                State::Answered(bytes) => Seen::Answered(bytes.clone()),
            };
        }
        // A new request on a slot (same port and identifier, new authenticator)
        // replaces whatever the slot held.
        let slot = (key.ip, port, key.code, key.identifier);
        if let Some(old) = inner.slots.insert(slot, key) {
            inner.entries.remove(&old);
        }
        while inner.entries.len() >= self.max_entries {
            match inner.order.pop_front() {
                Some((created, old, old_port)) => Self::forget(&mut inner, created, &old, old_port),
                None => break,
            }
        }
        inner.entries.insert(key, Entry { state: State::InProgress, created: now });
        inner.order.push_back((now, key, port));
        Seen::New
    }

    pub fn complete(&self, key: &RequestKey, reply: Arc<[u8]>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = inner.entries.get_mut(key) {
            entry.state = State::Answered(reply);
        }
    }

    /// The request got no answer: let a retransmission be processed afresh.
    pub fn abandon(&self, key: &RequestKey) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expire(&self, inner: &mut Inner, now: Instant) {
        while let Some((created, key, port)) = inner.order.front().copied() {
            if now.duration_since(created) < self.lifetime {
                break;
            }
            inner.order.pop_front();
            Self::forget(inner, created, &key, port);
        }
    }

    /// Removes the entry a queue record stands for, unless the key was
    /// re-inserted since (then a later queue record stands for it).
    fn forget(inner: &mut Inner, created: Instant, key: &RequestKey, port: u16) {
        if inner.entries.get(key).is_some_and(|e| e.created == created) {
            inner.entries.remove(key);
        }
        let slot = (key.ip, port, key.code, key.identifier);
        if inner.slots.get(&slot) == Some(key) {
            inner.slots.remove(&slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(auth: u8) -> RequestKey {
        RequestKey { ip: "127.0.0.1".parse().unwrap(), code: 1, identifier: 5, authenticator: [auth; 16] }
    }

    #[test]
    fn copies_are_dropped_then_answered_from_any_port() {
        let cache = DuplicateCache::new(Duration::from_secs(30), 100);
        let t = Instant::now();
        assert_eq!(cache.check(key(1), 1000, t), Seen::New);
        assert_eq!(cache.check(key(1), 1000, t), Seen::InProgress);
        cache.complete(&key(1), Arc::from(&b"reply"[..]));
        assert_eq!(cache.check(key(1), 1000, t), Seen::Answered(Arc::from(&b"reply"[..])));
        assert_eq!(cache.check(key(1), 2000, t), Seen::Answered(Arc::from(&b"reply"[..])));
    }

    #[test]
    fn new_authenticator_on_same_slot_is_a_new_request() {
        let cache = DuplicateCache::new(Duration::from_secs(30), 100);
        let t = Instant::now();
        assert_eq!(cache.check(key(1), 1000, t), Seen::New);
        cache.complete(&key(1), Arc::from(&b"r"[..]));
        assert_eq!(cache.check(key(2), 1000, t), Seen::New);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn entries_expire_and_are_bounded() {
        let cache = DuplicateCache::new(Duration::from_secs(30), 3);
        let t = Instant::now();
        for i in 0..10u8 {
            let mut k = key(i);
            k.identifier = i;
            assert_eq!(cache.check(k, 1000, t), Seen::New);
        }
        assert_eq!(cache.len(), 3);
        let later = t + Duration::from_secs(31);
        assert_eq!(cache.check(key(99), 1000, later), Seen::New);
        assert_eq!(cache.len(), 1);
    }
}
