//! Where a RADIUS request really comes from: the NAS and caller attributes
//! a proxy (FreeRADIUS, NPS, ISE) passes on, as kept in the decision log
//! line and the audit entry.
//!
//! Every value is bounded ([`MAX_VALUE_CHARS`]) and escaped (control
//! characters and backslashes), since it is chosen by whoever sent the
//! packet. Pure: the RADIUS layer reads the attributes from the packet.

use serde::{Deserialize, Serialize};

/// Longest value kept, in characters; longer ones are cut and end in `...`.
pub const MAX_VALUE_CHARS: usize = 96;

/// The NAS and caller attributes of a request (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NasAttributes {
    /// NAS-Identifier (32): the NAS's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nas_identifier: Option<String>,
    /// NAS-IP-Address (4) or NAS-IPv6-Address (95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nas_ip_address: Option<String>,
    /// NAS-Port-Type (61), by its RFC 2865 name (`Virtual`, `Ethernet`...) or number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nas_port_type: Option<String>,
    /// Called-Station-Id (30): what was called (the VPN address, the SSID...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_station_id: Option<String>,
    /// Calling-Station-Id (31): the caller (the VPN client's address, a MAC address...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_station_id: Option<String>,
}

impl NasAttributes {
    pub fn is_empty(&self) -> bool {
        self == &NasAttributes::default()
    }

    /// The NAS's name, or else its address.
    pub fn nas(&self) -> Option<&str> {
        self.nas_identifier.as_deref().or(self.nas_ip_address.as_deref())
    }

    /// Whether `wanted` names this NAS (its identifier or address).
    pub fn is_nas(&self, wanted: &str) -> bool {
        self.nas_identifier.as_deref() == Some(wanted) || self.nas_ip_address.as_deref() == Some(wanted)
    }
}

/// An attribute's bytes as a bounded, printable string: invalid UTF-8 is
/// replaced, control characters and `\` are escaped (`\x0a`, `\\`), and
/// values past [`MAX_VALUE_CHARS`] are cut.
pub fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MAX_VALUE_CHARS {
            out.push_str("...");
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The RFC 2865 (and RFC 4603) name of a NAS-Port-Type value.
pub fn port_type_name(value: u32) -> String {
    const NAMES: [&str; 20] = [
        "Async",
        "Sync",
        "ISDN",
        "ISDN-V120",
        "ISDN-V110",
        "Virtual",
        "PIAFS",
        "HDLC-Clear-Channel",
        "X.25",
        "X.75",
        "G.3-Fax",
        "SDSL",
        "ADSL-CAP",
        "ADSL-DMT",
        "IDSL",
        "Ethernet",
        "xDSL",
        "Cable",
        "Wireless-Other",
        "Wireless-802.11",
    ];
    usize::try_from(value).ok().and_then(|i| NAMES.get(i)).map(|name| name.to_string()).unwrap_or(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bounded_and_escaped() {
        assert_eq!(printable(b"vpn-gw-1"), "vpn-gw-1");
        assert_eq!(printable(b"evil\nINFO forged line\\"), "evil\\x0aINFO forged line\\\\");
        assert_eq!(printable(&[0x66, 0xff, 0x6f]), "f\u{fffd}o");
        let long = printable(&[b'a'; 253]);
        assert_eq!(long.chars().count(), MAX_VALUE_CHARS + 3);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn port_types_have_their_names() {
        assert_eq!(port_type_name(5), "Virtual");
        assert_eq!(port_type_name(15), "Ethernet");
        assert_eq!(port_type_name(19), "Wireless-802.11");
        assert_eq!(port_type_name(4000), "4000");
    }

    #[test]
    fn empty_attributes_are_not_serialized() {
        assert_eq!(serde_json::to_string(&NasAttributes::default()).unwrap(), "{}");
        let nas = NasAttributes { nas_identifier: Some("vpn".into()), ..NasAttributes::default() };
        assert!(nas.is_nas("vpn") && !nas.is_nas("other") && nas.nas() == Some("vpn"));
    }
}
