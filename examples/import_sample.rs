//! Writes a sample import file (made-up seeds) on standard output, for the
//! import benchmark (bench/import.sh) and for trying `radotpctl token import`.
//!
//!   cargo run --release --example import_sample -- --format pskc --count 1000 --psk 00112233445566778899aabbccddeeff > sample.pskc
//!
//! Never use these tokens for real: their seeds are predictable.

use std::io::Write;

use clap::Parser;
use radotp::import::ImportFormat;
use radotp::import::sample::{self, Protection};
use radotp::model::token::Algorithm;

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum, default_value = "pskc")]
    format: ImportFormat,
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Serial prefix (serials are PREFIX followed by 7 digits).
    #[arg(long, default_value = "SMP")]
    prefix: String,
    /// CSV: the type column; PSKC: ignored.
    #[arg(long = "type", default_value = "hw-hotp")]
    token_type: String,
    /// PSKC: TOTP keys instead of HOTP.
    #[arg(long)]
    totp: bool,
    /// PSKC: encrypt under this AES-128 key (32 hex digits).
    #[arg(long, conflicts_with = "password")]
    psk: Option<String>,
    /// PSKC: encrypt under a key derived from this password (PBKDF2-HMAC-SHA1).
    #[arg(long)]
    password: Option<String>,
    #[arg(long, default_value_t = 1000)]
    iterations: u32,
}

fn main() {
    let args = Args::parse();
    let text = match args.format {
        ImportFormat::Csv => sample::csv(&args.prefix, args.count, &args.token_type),
        ImportFormat::Pskc => {
            let protection = match (&args.psk, &args.password) {
                (Some(hex), _) => {
                    let bytes = data_encoding::HEXLOWER_PERMISSIVE.decode(hex.as_bytes()).expect("--psk is hex");
                    Protection::PreSharedKey(bytes.try_into().expect("--psk is 16 bytes (32 hex digits)"))
                }
                (None, Some(password)) => {
                    Protection::Password { password: password.clone(), iterations: args.iterations }
                }
                (None, None) => Protection::Plain,
            };
            let algorithm = if args.totp { Algorithm::Totp } else { Algorithm::Hotp };
            sample::pskc(&args.prefix, args.count, algorithm, &protection)
        }
    };
    std::io::stdout().lock().write_all(text.as_bytes()).expect("write standard output");
}
