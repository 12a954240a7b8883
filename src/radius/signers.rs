//! Which source addresses of `require_message_authenticator: auto` clients
//! have sent a valid Message-Authenticator, and so must send it from then on.
//!
//! Kept in memory only: a restart forgets it (the trade-off of `auto`, see
//! docs/radius-integration.md). Only packets that passed the Message-
//! Authenticator check (made with the shared secret) add an address, and the
//! set is bounded, so a stranger cannot grow it.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::RwLock;

/// Most addresses remembered; past this, new addresses are not learned (they
/// stay as `auto` treats a host that never signed).
const MAX_SIGNERS: usize = 65_536;

#[derive(Default)]
pub struct Signers {
    seen: RwLock<HashSet<(String, IpAddr)>>,
}

impl Signers {
    /// Whether `ip`, as client `client`, has sent a valid Message-Authenticator.
    pub fn has_signed(&self, client: &str, ip: IpAddr) -> bool {
        let seen = self.seen.read().unwrap_or_else(|p| p.into_inner());
        seen.contains(&(client.to_string(), ip))
    }

    /// Remembers that `ip`, as client `client`, sent a valid Message-Authenticator.
    pub fn learn(&self, client: &str, ip: IpAddr) {
        let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
        if seen.len() < MAX_SIGNERS {
            seen.insert((client.to_string(), ip));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_learned_per_client() {
        let signers = Signers::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!signers.has_signed("nas", ip));
        signers.learn("nas", ip);
        assert!(signers.has_signed("nas", ip));
        assert!(!signers.has_signed("other", ip));
        assert!(!signers.has_signed("nas", "192.0.2.2".parse().unwrap()));
    }
}
