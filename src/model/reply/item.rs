//! One reply line, `Attribute[:tag] = value`, checked against a dictionary
//! and encoded as the attribute's bytes on the wire.
//!
//! A value may take the user's name (`{user}`) or one of the user's
//! directory attributes (`{ldap:NAME}`); such a value is encoded at login,
//! and left out of the reply (with a warning) when it does not fit its type.
//! A fixed value is encoded once, at load.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::dictionary::{Attribute, Dictionary, ValueType};

/// RADIUS attribute type of Vendor-Specific (RFC 2865 section 5.26).
const VENDOR_SPECIFIC: u8 = 26;
/// Longest attribute, header included.
const MAX_ATTRIBUTE: usize = 255;

/// What a template asks for at login.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// `{user}`: the user's name.
    User,
    /// `{ldap:NAME}`: the first value of the user's directory attribute NAME.
    Directory(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    /// Encoded at load: the whole attribute.
    Fixed(Vec<u8>),
    Template(Vec<Piece>),
}

/// A checked reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyItem {
    attribute: Attribute,
    tag: Option<u8>,
    value: Value,
    /// The line as written, for logs and `radotpctl user show`.
    pub text: String,
}

/// What a template may read about the user.
pub trait UserValues {
    fn name(&self) -> &str;
    /// The first value of directory attribute `name`, if any.
    fn attribute(&self, name: &str) -> Option<String>;
}

impl ReplyItem {
    /// Parses and checks `Attribute[:tag] = value`.
    pub fn parse(line: &str, dictionary: &Dictionary) -> Result<ReplyItem, String> {
        let (left, right) =
            line.split_once('=').ok_or_else(|| "expected `Attribute = value` (FreeRADIUS style)".to_string())?;
        let left = left.trim();
        let mut right = right.trim();
        if right.len() >= 2 && right.starts_with('"') && right.ends_with('"') {
            right = &right[1..right.len() - 1];
        }
        let (name, tag) = match left.split_once(':') {
            Some((name, tag)) => {
                let tag: u8 = tag.trim().parse().map_err(|_| format!("tag {tag:?} is not a number from 1 to 31"))?;
                if !(1..=31).contains(&tag) {
                    return Err(format!("tag {tag} is not from 1 to 31"));
                }
                (name.trim(), Some(tag))
            }
            None => (left, None),
        };
        let attribute = dictionary.get(name).ok_or_else(|| format!("unknown attribute {name:?}"))?.clone();
        let value_type =
            attribute.value_type.clone().map_err(|reason| format!("{} cannot be sent: {reason}", attribute.name))?;
        if tag.is_some() && !attribute.tagged {
            return Err(format!("{} takes no tag", attribute.name));
        }
        let pieces = parse_template(right)?;
        let value = if pieces.iter().all(|p| matches!(p, Piece::Text(_))) {
            Value::Fixed(encode(&attribute, value_type, tag, right)?)
        } else {
            if !attribute.values.is_empty() && value_type == ValueType::Integer {
                return Err(format!("{} takes a named value, not a template", attribute.name));
            }
            Value::Template(pieces)
        };
        Ok(ReplyItem { attribute, tag, value, text: line.trim().to_string() })
    }

    /// The attribute's name, and its tag: repeated attributes are told apart by these.
    pub fn key(&self) -> (String, Option<u8>) {
        (self.attribute.name.to_ascii_lowercase(), self.tag)
    }

    pub fn attribute_name(&self) -> &str {
        &self.attribute.name
    }

    /// Most bytes this line can take in a packet.
    pub fn max_len(&self) -> usize {
        match &self.value {
            Value::Fixed(bytes) => bytes.len(),
            Value::Template(_) => MAX_ATTRIBUTE,
        }
    }

    /// The directory attributes this line's template reads.
    pub fn directory_attributes(&self) -> Vec<String> {
        match &self.value {
            Value::Fixed(_) => Vec::new(),
            Value::Template(pieces) => pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Directory(name) => Some(name.clone()),
                    _ => None,
                })
                .collect(),
        }
    }

    /// The attribute's bytes for this user, and the line with its value filled in.
    pub fn render(&self, user: &dyn UserValues) -> Result<(Vec<u8>, String), String> {
        match &self.value {
            Value::Fixed(bytes) => Ok((bytes.clone(), self.text.clone())),
            Value::Template(pieces) => {
                let mut text = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => text.push_str(t),
                        Piece::User => text.push_str(user.name()),
                        Piece::Directory(name) => text.push_str(
                            &user
                                .attribute(name)
                                .ok_or_else(|| format!("the user has no directory attribute {name}"))?,
                        ),
                    }
                }
                let value_type = self.attribute.value_type.clone()?;
                let bytes = encode(&self.attribute, value_type, self.tag, &text)?;
                let name = match self.tag {
                    Some(tag) => format!("{}:{tag}", self.attribute.name),
                    None => self.attribute.name.clone(),
                };
                Ok((bytes, format!("{name} = {text}")))
            }
        }
    }
}

fn parse_template(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| format!("template {text:?}: '{{' is never closed"))?;
        let inner = &after[..close];
        let piece = match inner.split_once(':') {
            None if inner == "user" => Piece::User,
            Some(("ldap", name))
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';') =>
            {
                Piece::Directory(name.to_string())
            }
            _ => return Err(format!("template {text:?}: {{{inner}}} is neither {{user}} nor {{ldap:ATTRIBUTE}}")),
        };
        pieces.push(piece);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("template {text:?}: '}}' without '{{'"));
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

/// The whole attribute (header, vendor wrapper, tag, value).
fn encode(attribute: &Attribute, value_type: ValueType, tag: Option<u8>, text: &str) -> Result<Vec<u8>, String> {
    let wrong = |what: &str| format!("{}: {text:?} is not {what}", attribute.name);
    let number = |max: u64| -> Result<u64, String> {
        let n = match attribute.values.get(&text.to_ascii_lowercase()) {
            Some((_, n)) => *n,
            None => text.parse::<u64>().map_err(|_| {
                if attribute.values.is_empty() {
                    wrong("a number")
                } else {
                    let mut known: Vec<&(String, u64)> = attribute.values.values().collect();
                    known.sort_by_key(|(name, n)| (*n, name.clone()));
                    let names: Vec<&str> = known.iter().take(16).map(|(name, _)| name.as_str()).collect();
                    let more = if known.len() > names.len() { ", ..." } else { "" };
                    format!(
                        "{}: {text:?} is neither a number nor one of its VALUE names ({}{more})",
                        attribute.name,
                        names.join(", ")
                    )
                }
            })?,
        };
        if n > max {
            return Err(format!("{}: {n} is too large (at most {max})", attribute.name));
        }
        Ok(n)
    };
    let mut value = match value_type {
        ValueType::Text => text.as_bytes().to_vec(),
        ValueType::Octets => match text.strip_prefix("0x") {
            Some(hex) => {
                data_encoding::HEXLOWER_PERMISSIVE.decode(hex.as_bytes()).map_err(|_| wrong("0x and hex digits"))?
            }
            None => text.as_bytes().to_vec(),
        },
        ValueType::Integer if attribute.tagged => {
            let n = number(0x00ff_ffff)? as u32;
            let mut bytes = n.to_be_bytes();
            bytes[0] = tag.unwrap_or(0);
            return wrap(attribute, bytes.to_vec());
        }
        ValueType::Integer => (number(u64::from(u32::MAX))? as u32).to_be_bytes().to_vec(),
        ValueType::Byte => vec![number(0xff)? as u8],
        ValueType::Short => (number(0xffff)? as u16).to_be_bytes().to_vec(),
        ValueType::Integer64 => number(u64::MAX)?.to_be_bytes().to_vec(),
        ValueType::Signed => text.parse::<i32>().map_err(|_| wrong("a signed 32-bit number"))?.to_be_bytes().to_vec(),
        ValueType::Ipv4 => text.parse::<Ipv4Addr>().map_err(|_| wrong("an IPv4 address"))?.octets().to_vec(),
        ValueType::Ipv6 => text.parse::<Ipv6Addr>().map_err(|_| wrong("an IPv6 address"))?.octets().to_vec(),
        ValueType::Ipv6Prefix => {
            let net: ipnet::Ipv6Net = text.parse().map_err(|_| wrong("an IPv6 prefix (2001:db8::/48)"))?;
            let mut bytes = vec![0, net.prefix_len()];
            bytes.extend_from_slice(&net.network().octets()[..usize::from(net.prefix_len()).div_ceil(8)]);
            bytes
        }
        ValueType::Ipv4Prefix => {
            let net: ipnet::Ipv4Net = text.parse().map_err(|_| wrong("an IPv4 prefix (192.0.2.0/24)"))?;
            let mut bytes = vec![0, net.prefix_len()];
            bytes.extend_from_slice(&net.network().octets());
            bytes
        }
        ValueType::InterfaceId => {
            let groups: Vec<&str> = text.split(':').collect();
            let mut bytes = Vec::new();
            for group in &groups {
                let n = u16::from_str_radix(group, 16).map_err(|_| wrong("an interface id (1:2:3:4)"))?;
                bytes.extend_from_slice(&n.to_be_bytes());
            }
            if groups.len() != 4 {
                return Err(wrong("an interface id (1:2:3:4)"));
            }
            bytes
        }
        ValueType::Ether => {
            let octets: Result<Vec<u8>, _> = text.split([':', '-']).map(|o| u8::from_str_radix(o, 16)).collect();
            match octets {
                Ok(octets) if octets.len() == 6 => octets,
                _ => return Err(wrong("a MAC address (00:11:22:33:44:55)")),
            }
        }
    };
    if value.is_empty() {
        return Err(format!("{}: the value is empty", attribute.name));
    }
    if attribute.tagged {
        value.insert(0, tag.unwrap_or(0));
    }
    wrap(attribute, value)
}

/// Adds the attribute header, and the Vendor-Specific wrapper for a vendor attribute.
fn wrap(attribute: &Attribute, value: Vec<u8>) -> Result<Vec<u8>, String> {
    let header = if attribute.vendor.is_some() { 8 } else { 2 };
    if value.len() + header > MAX_ATTRIBUTE {
        return Err(format!(
            "{}: the value is {} bytes, at most {} fit",
            attribute.name,
            value.len(),
            MAX_ATTRIBUTE - header
        ));
    }
    let mut bytes = Vec::with_capacity(value.len() + header);
    match attribute.vendor {
        Some(vendor) => {
            bytes.extend_from_slice(&[VENDOR_SPECIFIC, (value.len() + 8) as u8]);
            bytes.extend_from_slice(&vendor.to_be_bytes());
            bytes.extend_from_slice(&[attribute.number, (value.len() + 2) as u8]);
        }
        None => bytes.extend_from_slice(&[attribute.number, (value.len() + 2) as u8]),
    }
    bytes.extend_from_slice(&value);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Alice;
    impl UserValues for Alice {
        fn name(&self) -> &str {
            "alice"
        }
        fn attribute(&self, name: &str) -> Option<String> {
            (name == "radiusFramedIPAddress").then(|| "10.0.0.7".to_string())
        }
    }

    fn bytes(line: &str) -> Vec<u8> {
        ReplyItem::parse(line, &Dictionary::builtin()).unwrap().render(&Alice).unwrap().0
    }

    #[test]
    fn standard_tagged_and_vendor_attributes_are_encoded() {
        assert_eq!(bytes("Filter-Id = admins"), b"\x0b\x08admins");
        assert_eq!(bytes("Session-Timeout = 28800"), [27, 6, 0, 0, 0x70, 0x80]);
        assert_eq!(bytes("Tunnel-Type:1 = VLAN"), [64, 6, 1, 0, 0, 13]);
        assert_eq!(bytes("Tunnel-Medium-Type:1 = IEEE-802"), [65, 6, 1, 0, 0, 6]);
        assert_eq!(bytes("Tunnel-Private-Group-Id:1 = 42"), [81, 5, 1, b'4', b'2']);
        assert_eq!(bytes("Service-Type = Administrative-User"), [6, 6, 0, 0, 0, 6]);
        assert_eq!(bytes("Framed-IP-Address = 192.0.2.1"), [8, 6, 192, 0, 2, 1]);
        assert_eq!(bytes("Framed-IPv6-Prefix = 2001:db8::/32"), [97, 8, 0, 32, 0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(bytes("Class = 0x0102"), [25, 4, 1, 2]);
        assert_eq!(bytes("Fortinet-Group-Name = \"vpn admins\""), b"\x1a\x12\x00\x00\x30\x44\x01\x0cvpn admins");
    }

    #[test]
    fn templates_take_the_user_and_directory_values() {
        assert_eq!(bytes("Framed-IP-Address = {ldap:radiusFramedIPAddress}"), [8, 6, 10, 0, 0, 7]);
        let (_, text) =
            ReplyItem::parse("Class = user={user}", &Dictionary::builtin()).unwrap().render(&Alice).unwrap();
        assert_eq!(text, "Class = user=alice");
        let missing = ReplyItem::parse("Filter-Id = {ldap:other}", &Dictionary::builtin()).unwrap();
        assert!(missing.render(&Alice).unwrap_err().contains("other"));
    }

    #[test]
    fn bad_lines_are_refused_with_their_reason() {
        let d = Dictionary::builtin();
        let error = |line: &str| ReplyItem::parse(line, &d).unwrap_err();
        assert!(error("Filter-Idd = x").contains("unknown attribute"));
        assert!(error("Session-Timeout = soon").contains("not a number"));
        assert!(error("Tunnel-Type:1 = VLANN").contains("VALUE names"));
        assert!(error("Filter-Id:1 = x").contains("takes no tag"));
        assert!(error("Tunnel-Type:32 = VLAN").contains("1 to 31"));
        assert!(error("Framed-IP-Address = 10.0.0.300").contains("IPv4"));
        assert!(error("Filter-Id admins").contains("Attribute = value"));
        assert!(error("Filter-Id = {ldap:}").contains("neither"));
        assert!(error("Filter-Id = {user").contains("never closed"));
        assert!(error(&format!("Filter-Id = {}", "x".repeat(254))).contains("at most 253"));
    }
}
