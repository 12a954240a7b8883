//! The RFC 5080 duplicate cache.
//!
//! A retransmission (same client, code, identifier and request authenticator)
//! must never reach the OTP check again: that would reject a valid user as a
//! replay. While the first copy is in progress, copies are dropped; once it is
//! answered, copies get the same reply bytes. The OpenVPN plugin retransmits
//! from a new source port, so entries are also found without the port.
//! Bounded in entries; entries expire after the configured lifetime.
//!
//! Entries are keyed by the Request Authenticator too, and a new request never
//! removes another's entry: a packet that reuses the source address, port and
//! identifier of a cached request (a spoofed packet from a client that does
//! not require Message-Authenticator, or an old request replayed) is a request
//! of its own and leaves the real one's entry, and its answer, in place. Only
//! age and the entry limit remove entries.

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
    /// Entries in the order they were created, oldest first.
    order: VecDeque<(Instant, RequestKey)>,
}

pub struct DuplicateCache {
    inner: Mutex<Inner>,
    lifetime: Duration,
    max_entries: usize,
}

impl DuplicateCache {
    pub fn new(lifetime: Duration, max_entries: usize) -> Self {
        DuplicateCache {
            inner: Mutex::new(Inner { entries: HashMap::new(), order: VecDeque::new() }),
            lifetime,
            max_entries: max_entries.max(1),
        }
    }

    /// Looks `key` up; a key not seen yet is entered as in progress. The
    /// source port is not part of the key (see the module documentation).
    pub fn check(&self, key: RequestKey, now: Instant) -> Seen {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        self.expire(&mut inner, now);
        if let Some(entry) = inner.entries.get(&key) {
            return match &entry.state {
                State::InProgress => Seen::InProgress,
                State::Answered(bytes) => Seen::Answered(bytes.clone()),
            };
        }
        // A new request on the same port and identifier with another
        // authenticator is a request of its own: it does not replace the
        // entry of the earlier one, which may be the real request (issue #8).
        while inner.entries.len() >= self.max_entries {
            match inner.order.pop_front() {
                Some((created, old)) => Self::forget(&mut inner, created, &old),
                None => break,
            }
        }
        inner.entries.insert(key, Entry { state: State::InProgress, created: now });
        inner.order.push_back((now, key));
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
        while let Some((created, key)) = inner.order.front().copied() {
            if now.duration_since(created) < self.lifetime {
                break;
            }
            inner.order.pop_front();
            Self::forget(inner, created, &key);
        }
    }

    /// Removes the entry a queue record stands for, unless the key was
    /// re-inserted since (then a later queue record stands for it).
    fn forget(inner: &mut Inner, created: Instant, key: &RequestKey) {
        if inner.entries.get(key).is_some_and(|e| e.created == created) {
            inner.entries.remove(key);
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
        assert_eq!(cache.check(key(1), t), Seen::New);
        assert_eq!(cache.check(key(1), t), Seen::InProgress);
        cache.complete(&key(1), Arc::from(&b"reply"[..]));
        assert_eq!(cache.check(key(1), t), Seen::Answered(Arc::from(&b"reply"[..])));
    }

    #[test]
    fn new_authenticator_on_same_slot_is_a_new_request() {
        let cache = DuplicateCache::new(Duration::from_secs(30), 100);
        let t = Instant::now();
        assert_eq!(cache.check(key(1), t), Seen::New);
        cache.complete(&key(1), Arc::from(&b"r"[..]));
        assert_eq!(cache.check(key(2), t), Seen::New);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_spoofed_packet_on_the_same_slot_does_not_evict_the_real_request() {
        // Same address, identifier (and port, which the key leaves out), another
        // authenticator: what an attacker can send for a client that does not
        // require Message-Authenticator, or by replaying an older request.
        let cache = DuplicateCache::new(Duration::from_secs(30), 100);
        let t = Instant::now();
        let (real, spoofed) = (key(1), key(2));
        // While the real request is being processed ...
        assert_eq!(cache.check(real, t), Seen::New);
        assert_eq!(cache.check(spoofed, t), Seen::New);
        assert_eq!(cache.check(real, t), Seen::InProgress, "a copy of the real request is still dropped");
        cache.complete(&real, Arc::from(&b"accept"[..]));
        cache.complete(&spoofed, Arc::from(&b"reject"[..]));
        // ... and after it was answered.
        assert_eq!(cache.check(key(3), t), Seen::New);
        assert_eq!(cache.check(real, t), Seen::Answered(Arc::from(&b"accept"[..])), "the real retransmission");
        assert_eq!(cache.check(spoofed, t), Seen::Answered(Arc::from(&b"reject"[..])));
    }

    #[test]
    fn entries_expire_and_are_bounded() {
        let cache = DuplicateCache::new(Duration::from_secs(30), 3);
        let t = Instant::now();
        for i in 0..10u8 {
            let mut k = key(i);
            k.identifier = i;
            assert_eq!(cache.check(k, t), Seen::New);
        }
        assert_eq!(cache.len(), 3);
        let later = t + Duration::from_secs(31);
        assert_eq!(cache.check(key(99), later), Seen::New);
        assert_eq!(cache.len(), 1);
    }
}
