//! Rate-limited warnings for dropped requests, so that the first failed test
//! of a NAS or PAM host says why it got no answer, at the default log level,
//! without letting a flood of bad packets flood the journal.
//!
//! At most one `warn` line per client (or, for an unknown client, per source
//! address) and reason per [`WARN_INTERVAL`]: the first drop is reported at
//! once; the drops that follow within the interval are counted, and the
//! count is reported by the next line once the interval has passed. Owns no
//! socket and no clock: the caller passes `now`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::metrics::DropReason;

/// At most one line per client and reason in this interval.
pub const WARN_INTERVAL: Duration = Duration::from_secs(60);
/// Most (client, reason) pairs remembered; spoofed sources cannot grow it further.
const MAX_TRACKED: usize = 4096;

/// Who the dropped packet came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DropSource {
    /// A configured client, by name.
    Client(String),
    /// An address no client entry covers.
    Unknown(IpAddr),
}

impl std::fmt::Display for DropSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropSource::Client(name) => f.write_str(name),
            DropSource::Unknown(_) => f.write_str("-"),
        }
    }
}

/// A line to write: the drops it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropWarning {
    /// Drops of this client and reason since the previous line (this one included).
    pub count: u64,
}

struct Window {
    started: Instant,
    /// Drops since the last line written.
    unreported: u64,
}

#[derive(Default)]
pub struct DropWarnings {
    windows: Mutex<HashMap<(DropSource, &'static str), Window>>,
}

/// Whether a drop for this reason deserves a warning: the ones an integrator
/// causes by configuration (client entry, secret, Message-Authenticator,
/// framing); not load shedding or retransmissions, which have metrics.
pub fn warns_about(reason: DropReason) -> bool {
    matches!(
        reason,
        DropReason::UnknownClient
            | DropReason::BadAuthenticator
            | DropReason::MissingAuthenticator
            | DropReason::Malformed
            | DropReason::UnexpectedCode
    )
}

/// What an operator can do about a drop for `reason`.
pub fn hint(reason: DropReason) -> &'static str {
    match reason {
        DropReason::UnknownClient => "no radius.clients entry covers this address; add one (or fix its address)",
        DropReason::BadAuthenticator => "the Message-Authenticator does not verify: the shared secrets differ",
        DropReason::MissingAuthenticator => {
            "the request has no Message-Authenticator and the client entry requires it (always, or with auto once \
             this address has sent one; pam_radius_auth 2.0 and radclient send none): give that host its own client \
             entry with require_message_authenticator: false or auto, see docs/radius-integration.md"
        }
        DropReason::Malformed => "the packet is not valid RADIUS, or its User-Password cannot be decoded",
        DropReason::UnexpectedCode => "only Access-Request and Status-Server are served (no accounting)",
        _ => "",
    }
}

impl DropWarnings {
    /// Counts one drop; returns the line to write now, if any.
    pub fn record(&self, source: DropSource, reason: DropReason, now: Instant) -> Option<DropWarning> {
        if !warns_about(reason) {
            return None;
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&(source.clone(), reason.as_str())) {
            windows.retain(|_, w| now.saturating_duration_since(w.started) < WARN_INTERVAL);
            if windows.len() >= MAX_TRACKED {
                return None;
            }
        }
        let Some(window) = windows.get_mut(&(source.clone(), reason.as_str())) else {
            windows.insert((source, reason.as_str()), Window { started: now, unreported: 0 });
            return Some(DropWarning { count: 1 });
        };
        window.unreported += 1;
        if now.saturating_duration_since(window.started) >= WARN_INTERVAL {
            let count = window.unreported;
            *window = Window { started: now, unreported: 0 };
            return Some(DropWarning { count });
        }
        None
    }
}

/// Writes the warning line for a drop.
pub fn emit(source: &DropSource, address: SocketAddr, reason: DropReason, warning: &DropWarning) {
    tracing::warn!(
        client = %source,
        source = %address,
        reason = reason.as_str(),
        dropped = warning.count,
        interval_s = WARN_INTERVAL.as_secs(),
        hint = hint(reason),
        "RADIUS requests dropped"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str) -> DropSource {
        DropSource::Client(name.into())
    }

    #[test]
    fn one_line_per_client_and_reason_per_interval_with_the_count() {
        let warnings = DropWarnings::default();
        let t0 = Instant::now();
        let first = warnings.record(client("pam"), DropReason::MissingAuthenticator, t0);
        assert_eq!(first, Some(DropWarning { count: 1 }), "the first drop is reported at once");
        for n in 1..100u64 {
            let at = t0 + Duration::from_millis(n * 10);
            assert_eq!(warnings.record(client("pam"), DropReason::MissingAuthenticator, at), None);
        }
        // Another reason and another client each get their own line.
        assert!(warnings.record(client("pam"), DropReason::BadAuthenticator, t0).is_some());
        assert!(warnings.record(client("nas"), DropReason::MissingAuthenticator, t0).is_some());
        // After the interval, the next drop reports the 99 held back plus itself.
        let later = warnings.record(client("pam"), DropReason::MissingAuthenticator, t0 + WARN_INTERVAL);
        assert_eq!(later, Some(DropWarning { count: 100 }));
        let again = t0 + WARN_INTERVAL + Duration::from_secs(1);
        assert_eq!(warnings.record(client("pam"), DropReason::MissingAuthenticator, again), None);
    }

    #[test]
    fn load_shedding_and_retransmissions_are_not_warned_about() {
        let warnings = DropWarnings::default();
        let now = Instant::now();
        assert_eq!(warnings.record(client("nas"), DropReason::Overloaded, now), None);
        assert_eq!(warnings.record(client("nas"), DropReason::Duplicate, now), None);
    }

    #[test]
    fn spoofed_sources_cannot_grow_the_table_without_bound() {
        let warnings = DropWarnings::default();
        let now = Instant::now();
        for n in 0..(MAX_TRACKED as u32 + 100) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            warnings.record(DropSource::Unknown(ip), DropReason::UnknownClient, now);
        }
        assert!(warnings.windows.lock().unwrap().len() <= MAX_TRACKED);
    }
}
