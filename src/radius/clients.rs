//! The table of RADIUS clients (NAS), matched by source address.

use std::net::IpAddr;

use crate::config::RadiusClient;

pub struct ClientTable {
    /// Most specific networks first.
    clients: Vec<RadiusClient>,
}

impl ClientTable {
    pub fn new(mut clients: Vec<RadiusClient>) -> Self {
        clients.sort_by_key(|c| std::cmp::Reverse(c.network.prefix_len()));
        ClientTable { clients }
    }

    /// The client whose network holds `ip` (IPv4-mapped IPv6 counts as IPv4).
    pub fn find(&self, ip: IpAddr) -> Option<&RadiusClient> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.clients.iter().find(|c| c.network.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn client(name: &str, net: &str) -> RadiusClient {
        RadiusClient {
            name: name.into(),
            network: net.parse().unwrap(),
            secret: Secret::from("s"),
            require_message_authenticator: crate::config::RequireMessageAuthenticator::Always,
            mode: None,
            nas: Vec::new(),
            access: Default::default(),
        }
    }

    #[test]
    fn most_specific_network_wins() {
        let table = ClientTable::new(vec![client("wide", "10.0.0.0/8"), client("narrow", "10.1.2.3/32")]);
        assert_eq!(table.find("10.1.2.3".parse().unwrap()).unwrap().name, "narrow");
        assert_eq!(table.find("10.9.9.9".parse().unwrap()).unwrap().name, "wide");
        assert_eq!(table.find("::ffff:10.1.2.3".parse().unwrap()).unwrap().name, "narrow");
        assert!(table.find("192.168.1.1".parse().unwrap()).is_none());
    }
}
