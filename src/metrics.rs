//! Counters of the RADIUS front end, shared by the server and `status`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Why a RADIUS packet got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    UnknownClient,
    Malformed,
    BadAuthenticator,
    MissingAuthenticator,
    UnexpectedCode,
    Duplicate,
    Overloaded,
    Internal,
}

impl DropReason {
    pub const ALL: [DropReason; 8] = [
        DropReason::UnknownClient,
        DropReason::Malformed,
        DropReason::BadAuthenticator,
        DropReason::MissingAuthenticator,
        DropReason::UnexpectedCode,
        DropReason::Duplicate,
        DropReason::Overloaded,
        DropReason::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownClient => "unknown_client",
            DropReason::Malformed => "malformed",
            DropReason::BadAuthenticator => "bad_message_authenticator",
            DropReason::MissingAuthenticator => "missing_message_authenticator",
            DropReason::UnexpectedCode => "unexpected_code",
            DropReason::Duplicate => "duplicate_in_progress",
            DropReason::Overloaded => "overloaded",
            DropReason::Internal => "internal_error",
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub accepts: AtomicU64,
    pub rejects: AtomicU64,
    pub status_server: AtomicU64,
    pub retransmissions_answered: AtomicU64,
    drops: [AtomicU64; 8],
}

impl Metrics {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self, reason: DropReason) {
        let index = DropReason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.drops[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> RadiusCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RadiusCounters {
            requests: get(&self.requests),
            accepts: get(&self.accepts),
            rejects: get(&self.rejects),
            status_server: get(&self.status_server),
            retransmissions_answered: get(&self.retransmissions_answered),
            drops: DropReason::ALL
                .iter()
                .zip(&self.drops)
                .map(|(reason, count)| (reason.as_str().to_string(), get(count)))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RadiusCounters {
    pub requests: u64,
    pub accepts: u64,
    pub rejects: u64,
    pub status_server: u64,
    pub retransmissions_answered: u64,
    pub drops: std::collections::BTreeMap<String, u64>,
}
