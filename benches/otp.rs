//! Micro-benchmarks of the OTP checks the daemon runs per request
//! (`radotp::model::otp`): the HOTP look-ahead window, the TOTP ±1 step window and
//! the two-code reset search.
//!
//!   cargo bench --bench otp -- --measurement-time 3 --warm-up-time 1
//!
//! `search` computes every candidate of the window whether or not one
//! matches (constant time in the position of the match), so "match at the
//! end" and "no match" should cost the same; both are measured to show it.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use radotp::model::otp::{self, HashAlg};

/// A 20-byte seed, as hw-hotp/hw-totp tokens have (SHA-1).
const SEED: &[u8] = b"12345678901234567890";
const DIGITS: u8 = 6;

/// A 6-digit code that is none of the codes of `first..=last`.
fn code_outside(first: u64, last: u64) -> String {
    let window: Vec<String> = (first..=last).map(|c| otp::hotp_code(SEED, c, DIGITS, HashAlg::Sha1)).collect();
    (0..1_000_000u32)
        .map(|v| otp::format_code(v, DIGITS))
        .find(|code| !window.contains(code))
        .unwrap_or_else(|| unreachable!("a window cannot cover every code"))
}

fn single_code(c: &mut Criterion) {
    let mut group = c.benchmark_group("hotp code");
    for (name, hash, seed) in [
        ("sha1", HashAlg::Sha1, &b"12345678901234567890"[..]),
        ("sha256", HashAlg::Sha256, &b"12345678901234567890123456789012"[..]),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| otp::hotp_code(black_box(seed), black_box(1234), DIGITS, hash));
        });
    }
    group.finish();
}

fn hotp_window(c: &mut Criterion) {
    // auth.hotp_window: 10, so the server checks counter ..= counter + 10 (11 codes).
    let counter = 1_000u64;
    let last = counter + 10;
    let at_end = otp::hotp_code(SEED, last, DIGITS, HashAlg::Sha1);
    let wrong = code_outside(counter, last);
    assert_eq!(otp::search(SEED, &at_end, counter, last, DIGITS, HashAlg::Sha1), Some(last));
    assert_eq!(otp::search(SEED, &wrong, counter, last, DIGITS, HashAlg::Sha1), None);

    let mut group = c.benchmark_group("hotp window 10 (11 codes)");
    group.bench_function("match at the end", |b| {
        b.iter(|| otp::search(black_box(SEED), black_box(&at_end), counter, last, DIGITS, HashAlg::Sha1));
    });
    group.bench_function("no match", |b| {
        b.iter(|| otp::search(black_box(SEED), black_box(&wrong), counter, last, DIGITS, HashAlg::Sha1));
    });
    group.finish();
}

fn totp_window(c: &mut Criterion) {
    // auth.totp_window: 1, so the server checks step - 1 ..= step + 1 (3 codes).
    let step = otp::time_step(1_750_000_000, 30);
    let current = otp::hotp_code(SEED, step, DIGITS, HashAlg::Sha1);
    let wrong = code_outside(step - 1, step + 1);
    assert_eq!(otp::search(SEED, &current, step - 1, step + 1, DIGITS, HashAlg::Sha1), Some(step));

    let mut group = c.benchmark_group("totp ±1 (3 steps)");
    group.bench_function("match", |b| {
        b.iter(|| otp::search(black_box(SEED), black_box(&current), step - 1, step + 1, DIGITS, HashAlg::Sha1));
    });
    group.bench_function("no match", |b| {
        b.iter(|| otp::search(black_box(SEED), black_box(&wrong), step - 1, step + 1, DIGITS, HashAlg::Sha1));
    });
    group.finish();
}

fn reset_window(c: &mut Criterion) {
    // auth.reset_window: 1000: two consecutive codes anywhere in from ..= from + 1000.
    let from = 0u64;
    let window = 1_000u64;
    let first = otp::hotp_code(SEED, from + window - 1, DIGITS, HashAlg::Sha1);
    let second = otp::hotp_code(SEED, from + window, DIGITS, HashAlg::Sha1);
    // A single coincidental earlier match of `first` would still be followed
    // by a non-matching `second`, so the search returns the pair near the end.
    assert_eq!(otp::search_pair(SEED, &first, &second, from, window, DIGITS, HashAlg::Sha1), Some(from + window - 1));

    let mut group = c.benchmark_group("reset search over 1000");
    group.sample_size(20);
    group.bench_function("pair near the end", |b| {
        b.iter(|| {
            otp::search_pair(
                black_box(SEED),
                black_box(&first),
                black_box(&second),
                from,
                window,
                DIGITS,
                HashAlg::Sha1,
            )
        });
    });
    group.finish();
}

criterion_group!(benches, single_code, hotp_window, totp_window, reset_window);
criterion_main!(benches);
