#!/usr/bin/env bash
# Runs radotp's whole test suite.
#
# On a fresh Debian machine with Rust: installs the real peers the tests talk
# to when they are missing (radclient from freeradius-utils, OpenLDAP's slapd
# and ldap-utils, openssl for test certificates, e2fsprogs for the full-disk
# test's small file system, libfaketime for the clock-step test, pamtester
# and libpam-radius-auth, freeradius for the proxy test, PostgreSQL's server
# programs, samba for the Active Directory tests, chromium and
# chromium-driver for the web console, debootstrap and systemd-container for
# the packaging test), using apt-get when run as root, and cargo-deb with
# `cargo install`; then runs `cargo test`. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v radclient >/dev/null 2>&1 || missing+=(freeradius-utils)
[ -d /usr/share/freeradius ] || missing+=(freeradius-common)  # dictionaries: the parser unit tests, radius.dictionary_files e2e
[ -x /usr/sbin/slapd ] || missing+=(slapd)
command -v ldapadd >/dev/null 2>&1 || missing+=(ldap-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
command -v mkfs.ext4 >/dev/null 2>&1 || missing+=(e2fsprogs)
# Clock steps under libfaketime (tests/e2e/clock.rs).
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || missing+=(libfaketime)
# Integrators' peers (tests/e2e/integrators.rs): a PAM host through
# pam_radius_auth, and FreeRADIUS as a proxy (run from its own config tree).
command -v pamtester >/dev/null 2>&1 || missing+=(pamtester)
compgen -G '/lib/*/security/pam_radius_auth.so' >/dev/null || compgen -G '/usr/lib/*/security/pam_radius_auth.so' >/dev/null \
  || missing+=(libpam-radius-auth)
[ -x /usr/sbin/freeradius ] || missing+=(freeradius)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
# A Samba AD domain controller for tests/ad (its own network namespace, so ip).
[ -x /usr/sbin/samba ] || missing+=(samba)
[ -d /usr/share/samba/setup/ad-schema ] || missing+=(samba-ad-provision)
compgen -G '/usr/lib/*/samba/ldb/acl.so' >/dev/null || missing+=(samba-dsdb-modules)
compgen -G '/usr/lib/*/samba/vfs/acl_xattr.so' >/dev/null || missing+=(samba-vfs-modules)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# The web console's browser tests (tests/web): headless Chromium over
# WebDriver, and curl for its headers.
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The packaging test (tests/packaging.rs): a Debian 12 root booted with
# systemd-nspawn in a network namespace of its own.
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v systemd-nspawn >/dev/null 2>&1 || missing+=(systemd-container)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "tests/run.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The tests start their own slapd, freeradius, PostgreSQL and samba; keep
    # the packages from starting system ones.
    policy=/usr/sbin/policy-rc.d
    added_policy=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && added_policy=1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    [ -n "$added_policy" ] && rm -f "$policy"
  else
    echo "tests/run.sh: missing ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# The packaging test builds the .deb with cargo-deb (from the test build's
# binaries).
command -v cargo-deb >/dev/null 2>&1 || cargo install --locked cargo-deb

# Daemon logs kept by the tests are scanned at the end (tests/log_scan.rs).
rm -rf target/tmp/daemon-logs
export RADOTP_REQUIRE_LOGS=1
exec cargo test --locked --workspace "$@"
