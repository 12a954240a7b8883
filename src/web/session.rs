//! Console sessions and sign-in throttling, in memory.
//!
//! A session id is 32 random bytes (hex) known only to the server and the
//! browser's `__Host-radotp` cookie; each session has its own CSRF token.
//! A session ends when idle for `web.idle_timeout_seconds`, at
//! `web.session_lifetime_seconds` after sign-in, at logout, and when the
//! daemon stops. Failed sign-ins are counted per user name and per source
//! address within a window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use subtle::ConstantTimeEq;

use crate::domain::console::ConsoleRole;

/// The session cookie's name: `__Host-` makes browsers insist on `Secure`,
/// `Path=/` and no `Domain`.
pub const SESSION_COOKIE: &str = "__Host-radotp";
/// The cookie of the sign-in form's CSRF token (double submit).
pub const LOGIN_COOKIE: &str = "__Host-radotp-login";

/// 32 random bytes, hex; an error when the system gives no randomness
/// (then no session can be made safe, and none is made).
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(data_encoding::HEXLOWER.encode(&bytes))
}

/// Whether two tokens are equal, in constant time; empty never matches.
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: ConsoleRole,
    pub csrf: String,
    pub created: u64,
    pub last_seen: u64,
}

pub struct Sessions {
    idle_seconds: u64,
    lifetime_seconds: u64,
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(idle_seconds: u64, lifetime_seconds: u64) -> Self {
        Sessions { idle_seconds, lifetime_seconds, live: Mutex::new(HashMap::new()) }
    }

    /// Opens a session; returns its id.
    pub fn open(&self, user: String, role: ConsoleRole, now: u64) -> Result<String, getrandom::Error> {
        let id = random_token()?;
        let session = Session { user, role, csrf: random_token()?, created: now, last_seen: now };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, s| !self.expired(s, now));
        live.insert(id.clone(), session);
        Ok(id)
    }

    /// The live session of `id`, marked as used now.
    pub fn touch(&self, id: &str, now: u64) -> Option<Session> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let session = live.get_mut(id)?;
        if self.expired(session, now) {
            live.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    pub fn close(&self, id: &str) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    fn expired(&self, session: &Session, now: u64) -> bool {
        now.saturating_sub(session.last_seen) >= self.idle_seconds
            || now.saturating_sub(session.created) >= self.lifetime_seconds
    }
}

/// Failed sign-ins per user name and per source address.
pub struct Throttle {
    max_failures: u32,
    window_seconds: u64,
    /// Key -> (start of the window, failures in it).
    failures: Mutex<HashMap<String, (u64, u32)>>,
}

/// Keys held at most; the oldest windows go first beyond it.
const MAX_THROTTLE_KEYS: usize = 100_000;

impl Throttle {
    pub fn new(max_failures: u32, window_seconds: u64) -> Self {
        Throttle { max_failures, window_seconds, failures: Mutex::new(HashMap::new()) }
    }

    fn keys(user: &str, address: IpAddr) -> [String; 2] {
        [format!("user:{}", user.to_lowercase()), format!("address:{address}")]
    }

    /// Whether this user or this address has used up its failures.
    pub fn blocked(&self, user: &str, address: IpAddr, now: u64) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::keys(user, address).iter().any(|key| {
            failures.get(key).is_some_and(|(start, count)| {
                now.saturating_sub(*start) < self.window_seconds && *count >= self.max_failures
            })
        })
    }

    pub fn failed(&self, user: &str, address: IpAddr, now: u64) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_THROTTLE_KEYS {
            failures.retain(|_, (start, _)| now.saturating_sub(*start) < self.window_seconds);
        }
        for key in Self::keys(user, address) {
            let entry = failures.entry(key).or_insert((now, 0));
            if now.saturating_sub(entry.0) >= self.window_seconds {
                *entry = (now, 0);
            }
            entry.1 += 1;
        }
    }

    /// A success clears the user's count (not the address's).
    pub fn succeeded(&self, user: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&format!("user:{}", user.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_when_idle_and_at_their_lifetime() {
        let sessions = Sessions::new(60, 200);
        let id = sessions.open("alice".into(), ConsoleRole::Operator, 1000).unwrap();
        assert!(sessions.touch(&id, 1059).is_some());
        assert!(sessions.touch(&id, 1119).is_none(), "idle 60 s");
        let id = sessions.open("alice".into(), ConsoleRole::Operator, 2000).unwrap();
        for t in (2050..2200).step_by(50) {
            assert!(sessions.touch(&id, t).is_some());
        }
        assert!(sessions.touch(&id, 2200).is_none(), "lifetime 200 s");
        assert!(sessions.touch("nope", 2200).is_none());
    }

    #[test]
    fn logout_ends_the_session_and_ids_differ() {
        let sessions = Sessions::new(60, 200);
        let a = sessions.open("alice".into(), ConsoleRole::Admin, 0).unwrap();
        let b = sessions.open("alice".into(), ConsoleRole::Admin, 0).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        sessions.close(&a);
        assert!(sessions.touch(&a, 1).is_none());
        assert!(sessions.touch(&b, 1).is_some());
    }

    #[test]
    fn tokens_compare_exactly_and_empty_never_matches() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("", ""));
    }

    #[test]
    fn throttle_counts_per_user_and_per_address_within_the_window() {
        let throttle = Throttle::new(3, 100);
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let there: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(!throttle.blocked("alice", here, 10));
            throttle.failed("alice", here, 10);
        }
        assert!(throttle.blocked("alice", there, 20), "the user is blocked from anywhere");
        assert!(throttle.blocked("bob", here, 20), "the address is blocked for any user");
        assert!(!throttle.blocked("bob", there, 20));
        assert!(!throttle.blocked("alice", here, 110), "the window passed");
    }
}
