//! Entry points for fuzzing: each takes arbitrary bytes and must never panic.
//!
//! Used by the cargo-fuzz targets under `fuzz/` (nightly, coverage-guided)
//! and by `tests/fuzz_harness.rs` (stable, in CI: the checked-in corpus plus
//! generated inputs). They run the same code the daemon runs on hostile input.

use crate::config::{Config, RadiusClient, RequireMessageAuthenticator};
use crate::radius::packet;
use crate::radius::server::screen;
use crate::secret::Secret;

/// The shared secret the RADIUS target's client uses (so a corpus can carry valid packets).
pub const FUZZ_SECRET: &[u8] = b"testing123";

/// The RADIUS request path: framing, code, Message-Authenticator, request
/// decoding, and signing a reply, as the server does for a known client.
pub fn radius_request(data: &[u8]) {
    let client = RadiusClient {
        name: "fuzz".into(),
        network: "127.0.0.1/32".parse().unwrap_or_else(|_| unreachable!("constant network")),
        secret: Secret::new(FUZZ_SECRET.to_vec()),
        require_message_authenticator: match data.first().map(|b| b % 3) {
            Some(0) => RequireMessageAuthenticator::Never,
            Some(1) => RequireMessageAuthenticator::Auto,
            _ => RequireMessageAuthenticator::Always,
        },
        mode: None,
        nas: Vec::new(),
        access: Default::default(),
    };
    // Half the inputs get a valid Message-Authenticator, so mutations reach
    // the decoding behind the signature check.
    let mut signed = data.to_vec();
    if data.last().is_some_and(|b| b & 2 == 0) {
        packet::sign_request_in_place(&mut signed, FUZZ_SECRET);
    }
    let signed_before = data.len() % 2 == 0;
    let Ok(frame) = screen(&signed, &client, signed_before) else { return };
    if frame.code == packet::CODE_ACCESS_REQUEST {
        if let Ok(request) = packet::decode_access_request(&frame, FUZZ_SECRET) {
            let _ = std::str::from_utf8(request.password.expose());
        }
    }
    let attributes = packet::ReplyAttributes::default();
    let _ = packet::sign_reply(
        packet::CODE_ACCESS_REJECT,
        frame.identifier,
        &frame.authenticator,
        FUZZ_SECRET,
        &attributes,
    );
}

/// A RADIUS reply as the project's client checks it.
pub fn radius_reply(data: &[u8]) {
    let request = packet::build_status_server(1, FUZZ_SECRET);
    let _ = packet::verify_reply(data, &request, FUZZ_SECRET);
}

/// One admin-socket request line.
pub fn admin_request(data: &[u8]) {
    let _ = serde_json::from_slice::<crate::admin::wire::Request>(data);
}

/// The configuration loader: parse, then validate.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = Config::parse(text) {
            let _ = config.validate();
        }
    }
}

/// An import file, CSV or PSKC (detected from the content as the daemon
/// does), parsed and checked; PSKC with the RFC 6030 example key and password.
pub fn import(data: &[u8]) {
    use crate::import::{ImportOptions, ImportReport};
    let Ok(content) = std::str::from_utf8(data) else { return };
    let types = [
        fuzz_type("hw-hotp", crate::model::token::Algorithm::Hotp),
        fuzz_type("hw-totp", crate::model::token::Algorithm::Totp),
    ];
    let keyed = data.first().is_some_and(|b| b & 1 == 1);
    let options = ImportOptions {
        psk: keyed.then(|| Secret::new(b"\x12\x34\x56\x78\x90\x12\x34\x56\x78\x90\x12\x34\x56\x78\x90\x12".to_vec())),
        password: (!keyed).then(|| Secret::from("qwerty")),
        ..ImportOptions::default()
    };
    let mut report = ImportReport::default();
    let _ = crate::import::parse(content, &options, &crate::import::TokenTypes::new(&types), &mut report);
}

fn fuzz_type(id: &str, algorithm: crate::model::token::Algorithm) -> crate::model::token::TokenType {
    crate::model::token::TokenType {
        id: id.into(),
        label: id.into(),
        algorithm,
        digits: 6,
        period: 30,
        hash: crate::model::otp::HashAlg::Sha1,
        operator_enroll: true,
        generate_secret: false,
        allow_reset: true,
        deletable: true,
    }
}
