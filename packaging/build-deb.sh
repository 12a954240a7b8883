#!/usr/bin/env bash
# Builds the Debian package: binaries, man pages and completions generated
# from the CLI definitions, then `cargo deb`.
#
#   packaging/build-deb.sh                     release build (what is shipped)
#   RADOTP_DEB_PROFILE=dev packaging/build-deb.sh --deb-revision 2
#                                              the test build's binaries (the
#                                              packaging test: no release build)
# Extra arguments go to `cargo deb`. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${RADOTP_DEB_PROFILE:-release}"
target_dir="${CARGO_TARGET_DIR:-target}"
case "$profile" in
  dev) bin_dir="$target_dir/debug" ;;
  *) bin_dir="$target_dir/$profile" ;;
esac
command -v cargo-deb >/dev/null 2>&1 || cargo install --locked cargo-deb
# RADOTP_DEB_SKIP_BUILD=1: the binaries are built already (the packaging test).
[ -n "${RADOTP_DEB_SKIP_BUILD:-}" ] || cargo build --profile "$profile" --locked --bins
# Generated assets live in the checkout's target/ (Cargo.toml names them so).
rm -rf target/man target/completions
mkdir -p target/completions
"$bin_dir/radotpctl" man --out-dir target/man
"$bin_dir/radotpd" --man > target/man/radotpd.8
"$bin_dir/radotpctl" completions bash > target/completions/radotpctl
cargo deb --no-build --locked --profile "$profile" "$@"
