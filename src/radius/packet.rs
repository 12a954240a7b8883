//! RADIUS packets: framing checks, Message-Authenticator, request decoding
//! and reply signing.
//!
//! This is the only module that touches the `radius` crate (its codec: the
//! attribute dictionaries and User-Password hiding). Everything that decides
//! whether a packet is trustworthy is done here, on the raw bytes:
//! the crate neither computes nor checks Message-Authenticator (RFC 3579).

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use radius::core::code::Code;
use radius::core::packet::Packet;
use radius::core::{rfc2865, rfc2869};
use subtle::ConstantTimeEq;

use crate::model::nas::{NasAttributes, port_type_name, printable};

pub const CODE_ACCESS_REQUEST: u8 = 1;
pub const CODE_ACCESS_ACCEPT: u8 = 2;
pub const CODE_ACCESS_REJECT: u8 = 3;
pub const CODE_ACCESS_CHALLENGE: u8 = 11;
pub const CODE_STATUS_SERVER: u8 = 12;

pub const ATTR_USER_NAME: u8 = 1;
pub const ATTR_USER_PASSWORD: u8 = 2;
pub const ATTR_REPLY_MESSAGE: u8 = 18;
pub const ATTR_STATE: u8 = 24;
pub const ATTR_PROXY_STATE: u8 = 33;
pub const ATTR_MESSAGE_AUTHENTICATOR: u8 = 80;
pub const ATTR_NAS_IP_ADDRESS: u8 = 4;
pub const ATTR_CALLED_STATION_ID: u8 = 30;
pub const ATTR_CALLING_STATION_ID: u8 = 31;
pub const ATTR_NAS_IDENTIFIER: u8 = 32;
pub const ATTR_NAS_PORT_TYPE: u8 = 61;
pub const ATTR_NAS_IPV6_ADDRESS: u8 = 95;

pub const HEADER_LEN: usize = 20;
pub const MAX_PACKET_LEN: usize = 4096;
const MA_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("datagram shorter than a RADIUS header")]
    Short,
    #[error("Length field {0} is outside 20..=4096 or past the datagram")]
    BadLength(usize),
    #[error("attribute at offset {0} has a bad length")]
    BadAttribute(usize),
    #[error("Message-Authenticator is not 16 octets, or appears twice")]
    BadMessageAuthenticator,
}

/// A packet whose framing has been checked, borrowing the datagram.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The packet bytes (up to the Length field; padding beyond it is ignored).
    pub bytes: &'a [u8],
    pub code: u8,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    /// Offset of the Message-Authenticator value in `bytes`.
    pub message_authenticator_at: Option<usize>,
    pub has_proxy_state: bool,
}

/// Checks the header and walks every attribute (RFC 2865 section 3 and 5).
pub fn parse_frame(datagram: &[u8]) -> Result<Frame<'_>, FrameError> {
    if datagram.len() < HEADER_LEN {
        return Err(FrameError::Short);
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&length) || length > datagram.len() {
        return Err(FrameError::BadLength(length));
    }
    let bytes = &datagram[..length];
    let mut authenticator = [0u8; 16];
    authenticator.copy_from_slice(&bytes[4..HEADER_LEN]);
    let mut at = HEADER_LEN;
    let mut message_authenticator_at = None;
    let mut has_proxy_state = false;
    while at < length {
        if length - at < 2 {
            return Err(FrameError::BadAttribute(at));
        }
        let kind = bytes[at];
        let attr_len = usize::from(bytes[at + 1]);
        if attr_len < 2 || at + attr_len > length {
            return Err(FrameError::BadAttribute(at));
        }
        match kind {
            ATTR_MESSAGE_AUTHENTICATOR => {
                if attr_len != 2 + MA_LEN || message_authenticator_at.is_some() {
                    return Err(FrameError::BadMessageAuthenticator);
                }
                message_authenticator_at = Some(at + 2);
            }
            ATTR_PROXY_STATE => has_proxy_state = true,
            _ => {}
        }
        at += attr_len;
    }
    Ok(Frame { bytes, code: bytes[0], identifier: bytes[1], authenticator, message_authenticator_at, has_proxy_state })
}

fn hmac_md5(secret: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac =
        <Hmac<Md5> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Verifies the Message-Authenticator of a request (RFC 3579 section 3.2):
/// HMAC-MD5 over the packet with the attribute's value zeroed.
pub fn message_authenticator_valid(frame: &Frame<'_>, secret: &[u8]) -> bool {
    let Some(at) = frame.message_authenticator_at else {
        return false;
    };
    let zeros = [0u8; MA_LEN];
    let expected = hmac_md5(secret, &[&frame.bytes[..at], &zeros, &frame.bytes[at + MA_LEN..]]);
    expected.ct_eq(&frame.bytes[at..at + MA_LEN]).into()
}

/// What an Access-Request asks.
#[derive(Debug)]
pub struct AccessRequest {
    pub user_name: String,
    /// The User-Password, decoded (cut at the first NUL).
    pub password: crate::secret::Secret,
    pub state: Option<Vec<u8>>,
    /// Where the request really comes from (behind a proxy: the NAS and the caller).
    pub nas: NasAttributes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("cannot decode the packet: {0}")]
    Decode(String),
    #[error("no User-Name")]
    NoUserName,
    #[error("User-Name is not UTF-8")]
    BadUserName,
    #[error("no User-Password (only PAP is supported)")]
    NoPassword,
    #[error("User-Password cannot be decoded")]
    BadPassword,
}

/// Decodes the attributes of an Access-Request whose framing was checked.
pub fn decode_access_request(frame: &Frame<'_>, secret: &[u8]) -> Result<AccessRequest, RequestError> {
    let packet = Packet::decode(frame.bytes, secret).map_err(|e| RequestError::Decode(e.to_string()))?;
    let user_name = match rfc2865::lookup_user_name(&packet) {
        None => return Err(RequestError::NoUserName),
        Some(Err(_)) => return Err(RequestError::BadUserName),
        Some(Ok(name)) => name,
    };
    let password = match rfc2865::lookup_user_password(&packet) {
        None => return Err(RequestError::NoPassword),
        Some(Err(_)) => return Err(RequestError::BadPassword),
        Some(Ok(bytes)) => crate::secret::Secret::new(bytes),
    };
    let state = rfc2865::lookup_state(&packet);
    Ok(AccessRequest { user_name, password, state, nas: nas_attributes(frame) })
}

/// The NAS and caller attributes of a request (the first of each), bounded
/// and escaped; attributes of the wrong size are ignored.
pub fn nas_attributes(frame: &Frame<'_>) -> NasAttributes {
    let mut nas = NasAttributes::default();
    let mut at = HEADER_LEN;
    // parse_frame checked that every attribute fits.
    while at + 2 <= frame.bytes.len() {
        let kind = frame.bytes[at];
        let end = (at + usize::from(frame.bytes[at + 1])).min(frame.bytes.len());
        let value = frame.bytes.get(at + 2..end).unwrap_or_default();
        let keep = |slot: &mut Option<String>, text: String| {
            if slot.is_none() {
                *slot = Some(text);
            }
        };
        match (kind, value.len()) {
            (ATTR_NAS_IDENTIFIER, _) => keep(&mut nas.nas_identifier, printable(value)),
            (ATTR_NAS_IP_ADDRESS, 4) => {
                let octets: [u8; 4] = value.try_into().unwrap_or_default();
                keep(&mut nas.nas_ip_address, std::net::Ipv4Addr::from(octets).to_string())
            }
            (ATTR_NAS_IPV6_ADDRESS, 16) => {
                let octets: [u8; 16] = value.try_into().unwrap_or_default();
                keep(&mut nas.nas_ip_address, std::net::Ipv6Addr::from(octets).to_string())
            }
            (ATTR_NAS_PORT_TYPE, 4) => {
                let number = u32::from_be_bytes(value.try_into().unwrap_or_default());
                keep(&mut nas.nas_port_type, port_type_name(number))
            }
            (ATTR_CALLED_STATION_ID, _) => keep(&mut nas.called_station_id, printable(value)),
            (ATTR_CALLING_STATION_ID, _) => keep(&mut nas.calling_station_id, printable(value)),
            _ => {}
        }
        at = end.max(at + 2);
    }
    nas
}

/// Attributes a reply may carry besides Message-Authenticator.
#[derive(Debug, Default, Clone)]
pub struct ReplyAttributes {
    pub reply_message: Option<String>,
    pub state: Option<Vec<u8>>,
    /// Encoded attributes from the authorization rules (Access-Accept only),
    /// placed after Message-Authenticator.
    pub extra: Vec<Vec<u8>>,
    /// The request's Proxy-State values, copied into the reply unmodified
    /// and in order (RFC 2865 section 5.33): proxies find their requests by them.
    pub proxy_states: Vec<Vec<u8>>,
}

/// The values of the Proxy-State attributes of a checked frame, in order.
pub fn proxy_states(frame: &Frame<'_>) -> Vec<Vec<u8>> {
    let mut states = Vec::new();
    let mut at = HEADER_LEN;
    // parse_frame has checked every attribute's length.
    while at + 2 <= frame.bytes.len() {
        let attr_len = usize::from(frame.bytes[at + 1]);
        if attr_len < 2 || at + attr_len > frame.bytes.len() {
            break;
        }
        if frame.bytes[at] == ATTR_PROXY_STATE {
            states.push(frame.bytes[at + 2..at + attr_len].to_vec());
        }
        at += attr_len;
    }
    states
}

fn code_of(code: u8) -> Code {
    Code::from(code)
}

/// Encodes and signs a reply: Message-Authenticator first, computed over the
/// packet with the request authenticator in the header; then the Response
/// Authenticator over the finished packet (RADIUS-NOTES: that order).
pub fn sign_reply(
    code: u8,
    identifier: u8,
    request_authenticator: &[u8; 16],
    secret: &[u8],
    attributes: &ReplyAttributes,
) -> Result<Vec<u8>, String> {
    let mut packet = Packet::new_with_identifier(code_of(code), secret, identifier);
    rfc2869::add_message_authenticator(&mut packet, &[0u8; MA_LEN]);
    if let Some(message) = &attributes.reply_message {
        rfc2865::add_reply_message(&mut packet, message);
    }
    if let Some(state) = &attributes.state {
        rfc2865::add_state(&mut packet, state);
    }
    let mut bytes = packet.encode().map_err(|e| e.to_string())?;
    if code == CODE_ACCESS_ACCEPT {
        for attribute in &attributes.extra {
            bytes.extend_from_slice(attribute);
        }
    }
    for state in &attributes.proxy_states {
        let attr_len = u8::try_from(state.len() + 2).map_err(|_| "a Proxy-State is too long".to_string())?;
        bytes.push(ATTR_PROXY_STATE);
        bytes.push(attr_len);
        bytes.extend_from_slice(state);
    }
    let length = u16::try_from(bytes.len()).ok().filter(|&n| usize::from(n) <= MAX_PACKET_LEN);
    let length = length.ok_or_else(|| format!("the reply would be {} bytes, past {MAX_PACKET_LEN}", bytes.len()))?;
    bytes[2..4].copy_from_slice(&length.to_be_bytes());
    finish_signature(&mut bytes, request_authenticator, secret);
    Ok(bytes)
}

/// Fills in Message-Authenticator (the first attribute) and the Response
/// Authenticator of an encoded reply.
fn finish_signature(bytes: &mut [u8], request_authenticator: &[u8; 16], secret: &[u8]) {
    let ma = HEADER_LEN + 2;
    bytes[4..HEADER_LEN].copy_from_slice(request_authenticator);
    bytes[ma..ma + MA_LEN].fill(0);
    let mac = hmac_md5(secret, &[bytes]);
    bytes[ma..ma + MA_LEN].copy_from_slice(&mac);
    let mut md5 = Md5::new();
    md5.update(&*bytes);
    md5.update(secret);
    let response: [u8; 16] = md5.finalize().into();
    bytes[4..HEADER_LEN].copy_from_slice(&response);
}

// ------------------------------------------------------------ client side

/// Builds a signed PAP Access-Request (with Message-Authenticator), as a NAS would.
pub fn build_access_request(
    identifier: u8,
    secret: &[u8],
    user_name: &str,
    password: &[u8],
    state: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    let mut packet = Packet::new_with_identifier(Code::AccessRequest, secret, identifier);
    rfc2869::add_message_authenticator(&mut packet, &[0u8; MA_LEN]);
    rfc2865::add_user_name(&mut packet, user_name);
    rfc2865::add_user_password(&mut packet, password).map_err(|e| e.to_string())?;
    if let Some(state) = state {
        rfc2865::add_state(&mut packet, state);
    }
    let mut bytes = packet.encode().map_err(|e| e.to_string())?;
    sign_request_in_place(&mut bytes, secret);
    Ok(bytes)
}

/// Builds a Status-Server request with Message-Authenticator.
pub fn build_status_server(identifier: u8, secret: &[u8]) -> Vec<u8> {
    let mut bytes = vec![CODE_STATUS_SERVER, identifier, 0, 38];
    let mut authenticator = [0u8; 16];
    let _ = crate::crypto::random_bytes(&mut authenticator);
    bytes.extend_from_slice(&authenticator);
    bytes.extend_from_slice(&[ATTR_MESSAGE_AUTHENTICATOR, 18]);
    bytes.extend_from_slice(&[0u8; MA_LEN]);
    sign_request_in_place(&mut bytes, secret);
    bytes
}

/// Computes the Message-Authenticator of a request whose first attribute
/// after the header holds it (or that holds it anywhere).
pub fn sign_request_in_place(bytes: &mut [u8], secret: &[u8]) {
    let at = match parse_frame(bytes) {
        Ok(frame) => frame.message_authenticator_at,
        Err(_) => None,
    };
    if let Some(at) = at {
        bytes[at..at + MA_LEN].fill(0);
        let mac = hmac_md5(secret, &[bytes]);
        bytes[at..at + MA_LEN].copy_from_slice(&mac);
    }
}

/// A reply as the client checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReply {
    pub code: u8,
    pub reply_message: Option<String>,
    pub state: Option<Vec<u8>>,
    /// The Proxy-State values, in order.
    pub proxy_states: Vec<Vec<u8>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplyError {
    #[error("malformed reply: {0}")]
    Frame(#[from] FrameError),
    #[error("reply identifier does not match the request")]
    Identifier,
    #[error("Response Authenticator is wrong")]
    ResponseAuthenticator,
    #[error("Message-Authenticator is missing, not first, or wrong")]
    MessageAuthenticator,
}

/// Checks a reply against its request: identifier, Response Authenticator,
/// and a valid Message-Authenticator as the first attribute.
pub fn verify_reply(reply: &[u8], request: &[u8], secret: &[u8]) -> Result<VerifiedReply, ReplyError> {
    let frame = parse_frame(reply)?;
    if request.len() < HEADER_LEN || frame.identifier != request[1] {
        return Err(ReplyError::Identifier);
    }
    let mut md5 = Md5::new();
    md5.update(&frame.bytes[..4]);
    md5.update(&request[4..HEADER_LEN]);
    md5.update(&frame.bytes[HEADER_LEN..]);
    md5.update(secret);
    let expected: [u8; 16] = md5.finalize().into();
    if !bool::from(expected.ct_eq(&frame.authenticator)) {
        return Err(ReplyError::ResponseAuthenticator);
    }
    if frame.message_authenticator_at != Some(HEADER_LEN + 2) {
        return Err(ReplyError::MessageAuthenticator);
    }
    let mut copy = frame.bytes.to_vec();
    copy[4..HEADER_LEN].copy_from_slice(&request[4..HEADER_LEN]);
    copy[HEADER_LEN + 2..HEADER_LEN + 2 + MA_LEN].fill(0);
    let mac = hmac_md5(secret, &[&copy]);
    if !bool::from(mac.ct_eq(&frame.bytes[HEADER_LEN + 2..HEADER_LEN + 2 + MA_LEN])) {
        return Err(ReplyError::MessageAuthenticator);
    }
    let mut reply_message = None;
    let mut state = None;
    let mut at = HEADER_LEN;
    while at < frame.bytes.len() {
        let kind = frame.bytes[at];
        let len = usize::from(frame.bytes[at + 1]);
        let value = &frame.bytes[at + 2..at + len];
        match kind {
            ATTR_REPLY_MESSAGE => reply_message = Some(String::from_utf8_lossy(value).into_owned()),
            ATTR_STATE => state = Some(value.to_vec()),
            _ => {}
        }
        at += len;
    }
    let proxy_states = proxy_states(&frame);
    Ok(VerifiedReply { code: frame.code, reply_message, state, proxy_states })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_states_are_copied_into_the_reply_in_order() {
        let attrs = ReplyAttributes { proxy_states: vec![vec![1, 2, 3], vec![], vec![9; 253]], ..Default::default() };
        let request = build_access_request(7, b"secret", "alice", b"123456", None).unwrap();
        let authenticator: [u8; 16] = request[4..HEADER_LEN].try_into().unwrap();
        let reply = sign_reply(CODE_ACCESS_REJECT, 7, &authenticator, b"secret", &attrs).unwrap();
        let verified = verify_reply(&reply, &request, b"secret").unwrap();
        assert_eq!(verified.proxy_states, attrs.proxy_states, "unmodified, in order, signed");
        let too_many = ReplyAttributes { proxy_states: vec![vec![0; 253]; 17], ..Default::default() };
        assert!(sign_reply(CODE_ACCESS_REJECT, 7, &authenticator, b"secret", &too_many).is_err(), "over 4096 octets");
    }

    const SECRET: &[u8] = b"testing123";

    #[test]
    fn request_round_trip() {
        let bytes = build_access_request(7, SECRET, "alice", b"123456", None).unwrap();
        let frame = parse_frame(&bytes).unwrap();
        assert_eq!(frame.code, CODE_ACCESS_REQUEST);
        assert!(message_authenticator_valid(&frame, SECRET));
        assert!(!message_authenticator_valid(&frame, b"other"));
        let request = decode_access_request(&frame, SECRET).unwrap();
        assert_eq!(request.user_name, "alice");
        assert_eq!(request.password.expose(), b"123456");
    }

    #[test]
    fn nas_attributes_are_read_bounded_and_escaped() {
        let mut bytes = build_access_request(7, SECRET, "alice", b"123456", None).unwrap();
        let mut add = |kind: u8, value: &[u8]| {
            bytes.push(kind);
            bytes.push(2 + value.len() as u8);
            bytes.extend_from_slice(value);
        };
        add(ATTR_NAS_IDENTIFIER, b"vpn-gw-1");
        add(ATTR_NAS_IDENTIFIER, b"second-one-ignored");
        add(ATTR_NAS_IP_ADDRESS, &[192, 0, 2, 10]);
        add(ATTR_NAS_PORT_TYPE, &5u32.to_be_bytes());
        add(ATTR_CALLED_STATION_ID, b"198.51.100.1");
        add(ATTR_CALLING_STATION_ID, b"203.0.113.7\n\x1b[2J");
        add(ATTR_NAS_IPV6_ADDRESS, &[0; 5]); // wrong size: ignored
        let length = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&length.to_be_bytes());
        sign_request_in_place(&mut bytes, SECRET);
        let frame = parse_frame(&bytes).unwrap();
        let request = decode_access_request(&frame, SECRET).unwrap();
        let nas = request.nas;
        assert_eq!(nas.nas_identifier.as_deref(), Some("vpn-gw-1"));
        assert_eq!(nas.nas_ip_address.as_deref(), Some("192.0.2.10"));
        assert_eq!(nas.nas_port_type.as_deref(), Some("Virtual"));
        assert_eq!(nas.called_station_id.as_deref(), Some("198.51.100.1"));
        assert_eq!(nas.calling_station_id.as_deref(), Some("203.0.113.7\\x0a\\x1b[2J"));
        let plain = build_access_request(8, SECRET, "bob", b"1", None).unwrap();
        assert!(nas_attributes(&parse_frame(&plain).unwrap()).is_empty());
    }

    #[test]
    fn tampered_request_fails_message_authenticator() {
        let mut bytes = build_access_request(7, SECRET, "alice", b"123456", None).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(!message_authenticator_valid(&parse_frame(&bytes).unwrap(), SECRET));
    }

    #[test]
    fn reply_is_signed_in_the_right_order() {
        let request = build_access_request(9, SECRET, "bob", b"654321", None).unwrap();
        let frame = parse_frame(&request).unwrap();
        let attrs = ReplyAttributes { reply_message: Some("hi".into()), ..Default::default() };
        let reply = sign_reply(CODE_ACCESS_ACCEPT, 9, &frame.authenticator, SECRET, &attrs).unwrap();
        assert_eq!(reply[HEADER_LEN], ATTR_MESSAGE_AUTHENTICATOR, "Message-Authenticator comes first");
        let verified = verify_reply(&reply, &request, SECRET).unwrap();
        assert_eq!(verified.code, CODE_ACCESS_ACCEPT);
        assert_eq!(verified.reply_message.as_deref(), Some("hi"));
        assert_eq!(verify_reply(&reply, &request, b"wrong"), Err(ReplyError::ResponseAuthenticator));
    }

    #[test]
    fn rule_attributes_follow_message_authenticator_in_accepts_only() {
        let request = build_access_request(9, SECRET, "bob", b"654321", None).unwrap();
        let frame = parse_frame(&request).unwrap();
        let filter = b"\x0b\x08admins".to_vec();
        let attrs = ReplyAttributes { extra: vec![filter.clone()], ..Default::default() };
        let reply = sign_reply(CODE_ACCESS_ACCEPT, 9, &frame.authenticator, SECRET, &attrs).unwrap();
        assert_eq!(reply[HEADER_LEN], ATTR_MESSAGE_AUTHENTICATOR);
        assert!(reply.ends_with(&filter));
        assert_eq!(usize::from(u16::from_be_bytes([reply[2], reply[3]])), reply.len());
        assert_eq!(verify_reply(&reply, &request, SECRET).unwrap().code, CODE_ACCESS_ACCEPT);
        let reject = sign_reply(CODE_ACCESS_REJECT, 9, &frame.authenticator, SECRET, &attrs).unwrap();
        assert!(!reject.ends_with(&filter), "a Reject carries no rule attributes");
        let huge = ReplyAttributes { extra: vec![vec![11, 255].into_iter().chain([b'x'; 253]).collect(); 17], ..attrs };
        assert!(sign_reply(CODE_ACCESS_ACCEPT, 9, &frame.authenticator, SECRET, &huge).unwrap_err().contains("4096"));
    }

    #[test]
    fn framing_rejects_bad_lengths() {
        assert_eq!(parse_frame(&[1; 10]).unwrap_err(), FrameError::Short);
        let mut bytes = build_access_request(1, SECRET, "a", b"1", None).unwrap();
        bytes[2] = 0x20; // Length 8192+
        assert!(matches!(parse_frame(&bytes), Err(FrameError::BadLength(_))));
        let mut bytes = build_access_request(1, SECRET, "a", b"1", None).unwrap();
        let n = bytes.len();
        bytes[HEADER_LEN + 1] = 200; // first attribute runs past the end
        assert!(n < 200);
        assert!(matches!(parse_frame(&bytes), Err(FrameError::BadAttribute(_))));
        let mut bytes = build_access_request(1, SECRET, "a", b"1", None).unwrap();
        bytes[HEADER_LEN + 1] = 1; // attribute length below 2
        assert!(matches!(parse_frame(&bytes), Err(FrameError::BadAttribute(_))));
    }

    #[test]
    fn parse_never_panics_on_garbage() {
        let mut seed = 0x1234_5678u32;
        for size in 0..600 {
            let bytes: Vec<u8> = (0..size)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            if let Ok(frame) = parse_frame(&bytes) {
                let _ = message_authenticator_valid(&frame, SECRET);
                let _ = decode_access_request(&frame, SECRET);
            }
            let _ = verify_reply(&bytes, &[0u8; 20], SECRET);
        }
    }
}
