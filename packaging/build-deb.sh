#!/usr/bin/env bash
# Builds the Debian package: release binaries, man pages and completions
# generated from the CLI definition, then `cargo deb`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null 2>&1 || cargo install --locked cargo-deb
cargo build --release --locked
rm -rf target/man target/completions
mkdir -p target/completions
target/release/radotpctl man --out-dir target/man
target/release/radotpctl completions bash > target/completions/radotpctl
cargo deb --no-build --locked "$@"
ls -l target/debian/*.deb
