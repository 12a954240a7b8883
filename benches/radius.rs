//! Micro-benchmarks of the RADIUS packet work per request
//! (`radotp::radius::packet`): framing checks, Message-Authenticator
//! verification and attribute decoding of an Access-Request, and signing the
//! reply (Message-Authenticator first, then the Response Authenticator).
//!
//!   cargo bench --bench radius -- --measurement-time 3 --warm-up-time 1

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use radotp::radius::packet::{
    self, CODE_ACCESS_ACCEPT, CODE_ACCESS_REJECT, ReplyAttributes, build_access_request, decode_access_request,
    message_authenticator_valid, parse_frame, sign_reply,
};

const SECRET: &[u8] = b"bench-secret-0123456789";

fn request_path(c: &mut Criterion) {
    // What a NAS sends in otp mode: User-Name, a 6-digit User-Password,
    // Message-Authenticator (as radotp-bench builds it).
    let request = build_access_request(42, SECRET, "u00001", b"123456", None).expect("request");
    let frame = parse_frame(&request).expect("frame");
    assert!(message_authenticator_valid(&frame, SECRET));
    assert_eq!(decode_access_request(&frame, SECRET).expect("decode").user_name, "u00001");

    let mut group = c.benchmark_group("access-request");
    group.bench_function("parse_frame", |b| {
        b.iter(|| parse_frame(black_box(&request)).map(|f| f.identifier));
    });
    group.bench_function("message_authenticator_valid", |b| {
        b.iter(|| message_authenticator_valid(black_box(&frame), SECRET));
    });
    group.bench_function("decode_access_request", |b| {
        b.iter(|| decode_access_request(black_box(&frame), SECRET).map(|r| r.user_name.len()));
    });
    group.bench_function("parse + MA check + decode", |b| {
        b.iter(|| {
            let frame = parse_frame(black_box(&request)).expect("frame");
            assert!(message_authenticator_valid(&frame, SECRET));
            decode_access_request(&frame, SECRET).map(|r| r.user_name.len())
        });
    });
    group.finish();
}

fn reply_path(c: &mut Criterion) {
    let request = build_access_request(42, SECRET, "u00001", b"123456", None).expect("request");
    let frame = parse_frame(&request).expect("frame");
    let authenticator = frame.authenticator;
    let plain = ReplyAttributes::default();
    let with_message = ReplyAttributes { reply_message: Some("Authentication failed".into()), ..Default::default() };
    let reply = sign_reply(CODE_ACCESS_ACCEPT, 42, &authenticator, SECRET, &plain).expect("reply");
    assert!(packet::verify_reply(&reply, &request, SECRET).is_ok());

    let mut group = c.benchmark_group("reply");
    group.bench_function("sign_reply accept", |b| {
        b.iter(|| sign_reply(CODE_ACCESS_ACCEPT, 42, black_box(&authenticator), SECRET, black_box(&plain)));
    });
    group.bench_function("sign_reply reject + Reply-Message", |b| {
        b.iter(|| sign_reply(CODE_ACCESS_REJECT, 42, black_box(&authenticator), SECRET, black_box(&with_message)));
    });
    group.bench_function("verify_reply (client side)", |b| {
        b.iter(|| packet::verify_reply(black_box(&reply), black_box(&request), SECRET).map(|r| r.code));
    });
    group.finish();
}

criterion_group!(benches, request_path, reply_path);
criterion_main!(benches);
