#!/usr/bin/env bash
# The Debian package on a minimal Debian 12 host under a real systemd,
# driven as an administrator following docs/operations.md. Run by
# tests/packaging.rs (cargo test); needs root, debootstrap, systemd-nspawn,
# iproute2, radclient and cargo-deb (tests/run.sh installs them).
#
# The host's init need not be systemd: the root is booted with
# `systemd-nspawn --register=no --keep-unit -b` in a network namespace of its
# own (a veth pair: RADIUS goes from this host to the container's address),
# and commands run inside with nsenter. The debootstrap root is cached as a
# tarball in $RADOTP_ROOT_CACHE (default /var/cache/radotp-tests).
#
# Environment: RADOTP_BIN_DIR, the directory of the built radotpd and
# radotpctl (dev profile; no release build is made). Exit status: 0 passed,
# 77 skipped (the reason on stderr), anything else failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

skip() { echo "SKIPPED: $*" >&2; exit 77; }
say() { echo "--- $(date -u +%T) $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "the packaging test needs root (debootstrap, systemd-nspawn, network namespaces)"
for tool in debootstrap systemd-nspawn nsenter ip radclient cargo-deb; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed (tests/run.sh installs it)"
done
bin_dir="${RADOTP_BIN_DIR:?RADOTP_BIN_DIR must name the directory of radotpd and radotpctl}"

cache="${RADOTP_ROOT_CACHE:-/var/cache/radotp-tests}"
root_tar="$cache/bookworm-root.tar"
work=$(mktemp -d /var/tmp/radotp-pkgtest.XXXXXX)
root="$work/root"
tag="rpk$$"
netns="radotp-pkg-$$"
host_if="${tag}h"
guest_if="${tag}c"
net="10.213.$((($$ >> 6) % 256))"
host_ip="$net.$((($$ % 64) * 4 + 1))"
guest_ip="$net.$((($$ % 64) * 4 + 2))"
nspawn_pid=""

cleanup() {
  set +e
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill "$nspawn_pid"   # nspawn powers the container off
    for _ in $(seq 1 30); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$nspawn_pid" 2>/dev/null
  fi
  ip link del "$host_if" 2>/dev/null
  ip netns del "$netns" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------- the root
started=$(date +%s)
mkdir -p "$root"
if [ -f "$root_tar" ]; then
  say "root from the cache $root_tar"
  tar -C "$root" -xf "$root_tar"
else
  say "debootstrap bookworm (no cache yet)"
  if ! debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$root" \
      "${RADOTP_DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$work/debootstrap.log" 2>&1; then
    tail -n 5 "$work/debootstrap.log" >&2
    skip "cannot build a Debian 12 root with debootstrap (is a Debian mirror reachable?)"
  fi
  mkdir -p "$cache"
  tar -C "$root" -cf "$root_tar.tmp" . && mv "$root_tar.tmp" "$root_tar"
fi
say "root ready in $(($(date +%s) - started))s"

# ------------------------------------------------------------ the packages
started=$(date +%s)
target_dir=$(dirname "$bin_dir")
for revision in 1 2; do
  RADOTP_DEB_PROFILE=dev RADOTP_DEB_SKIP_BUILD=1 CARGO_TARGET_DIR="$target_dir" \
    bash packaging/build-deb.sh --deb-revision "$revision" --fast --output "$root/root/radotp_$revision.deb" > "$work/deb-$revision.log" 2>&1 \
    || { cat "$work/deb-$revision.log" >&2; fail "packaging/build-deb.sh"; }
done
say "two .deb revisions built in $(($(date +%s) - started))s"

# ------------------------------------------------------------ boot the host
ip netns add "$netns"
ip link add "$host_if" type veth peer name "$guest_if"
ip link set "$guest_if" netns "$netns"
ip addr add "$host_ip/30" dev "$host_if"
ip link set "$host_if" up
ip -n "$netns" link set lo up
ip -n "$netns" addr add "$guest_ip/30" dev "$guest_if"
ip -n "$netns" link set "$guest_if" up

systemd-nspawn --register=no --keep-unit -q -D "$root" -M "$tag" \
  --network-namespace-path="/run/netns/$netns" -b > "$work/console.log" 2>&1 &
nspawn_pid=$!
init_pid=""
# The container's init is the child of systemd-nspawn that has become
# systemd (nspawn's own short-lived helpers come and go before it).
for _ in $(seq 1 120); do
  for child in $(pgrep -P "$nspawn_pid" || true); do
    if [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ]; then init_pid=$child; fi
  done
  [ -n "$init_pid" ] && break
  kill -0 "$nspawn_pid" 2>/dev/null || break
  sleep 0.5
done
[ -n "$init_pid" ] || { cat "$work/console.log" >&2; fail "systemd-nspawn did not start the container"; }
inside() { nsenter -t "$init_pid" -m -u -i -n -p env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
state=$(inside systemctl is-system-running --wait || true)
say "container booted (pid $init_pid): $state, $(inside systemctl --version | head -n 1)"

# RFC 4226's published test seed; its codes for counters 0, 1, 2, ...
codes=(755224 287082 359152 969429 338314 254676)
next_code=0
secret="first shared secret of the test NAS"
access_request() { # access_request SECRET -> radclient's output
  printf 'User-Name = alice\nUser-Password = %s\nMessage-Authenticator = 0x00\n' "${codes[$next_code]}" \
    | radclient -r 2 -t 3 "$guest_ip:1812" auth "$1" 2>&1 || true
}
expect_accept() {
  local answer
  answer=$(access_request "$1")
  grep -q "Received Access-Accept" <<< "$answer" || fail "$2: expected Access-Accept, got: $answer"
  next_code=$((next_code + 1))
  say "$2: Access-Accept over RADIUS from the host"
}
main_pid() { inside systemctl show -P MainPID radotpd; }

# ---------------------------------------------------------------- install
say "dpkg -i radotp_1.deb"
install_log=$(inside dpkg -i /root/radotp_1.deb 2>&1) || { echo "$install_log" >&2; fail "dpkg -i"; }
echo "$install_log"
if grep -qi "warning" <<< "$install_log"; then fail "the first installation warns: $install_log"; fi
inside systemd-analyze verify /usr/lib/systemd/system/radotpd.service \
  || fail "systemd-analyze verify radotpd.service"
[ "$(inside stat -c '%U:%G %a' /var/lib/radotp)" = "radotp:radotp 700" ] || fail "/var/lib/radotp owner or mode"
grep -q '^Copyright: ' "$root/usr/share/doc/radotp/copyright" || fail "no copyright line in /usr/share/doc/radotp/copyright"
[ -f "$root/usr/share/man/man8/radotpd.8.gz" ] || fail "no radotpd(8) man page"

# The shipped file, with this host as the NAS and one user: listen stays as
# shipped ("0.0.0.0:1812" and "[::]:1812").
grep -q 'listen: \["0.0.0.0:1812", "\[::\]:1812"\]' "$root/etc/radotp/radotp.yaml" || fail "shipped listen changed"
sed -i -e "s|address: 192.0.2.10/32|address: $host_ip/32|" -e 's|  users: \[\]|  users: [ { name: alice } ]|' \
  "$root/etc/radotp/radotp.yaml"
inside sh -c "install -m 0640 -o root -g radotp /dev/null /etc/radotp/vpn-gw.secret && printf '%s\n' '$secret' > /etc/radotp/vpn-gw.secret"
inside radotpd --check-config --config /etc/radotp/radotp.yaml

# ------------------------------------------------------------------ start
inside systemctl enable --now radotpd || { inside journalctl -u radotpd --no-pager >&2; fail "systemctl enable --now radotpd"; }
inside systemctl is-active radotpd >/dev/null || fail "radotpd is not active"
grep -q 'listening for RADIUS on \[::\]:1812' <<< "$(inside journalctl -u radotpd --no-pager -o cat)" \
  || fail "no IPv6 listener: $(inside journalctl -u radotpd --no-pager -o cat)"
say "started with the shipped dual-stack listen: $(inside journalctl -u radotpd --no-pager -o cat | grep -c 'listening for RADIUS') listeners"
say "systemd-analyze security radotpd: $(inside systemd-analyze security radotpd --no-pager 2>&1 | tail -n 1)"
printf 'serial,type,seed\nHW0001,hw-hotp,3132333435363738393031323334353637383930\n' > "$root/root/tokens.csv"
inside radotpctl token import /root/tokens.csv
inside radotpctl token assign HW0001 alice
expect_accept "$secret" "after install"
say "radotpctl status:"
inside radotpctl status

# ----------------------------------------------------------------- reload
secret="second shared secret of the test NAS"
printf '%s\n' "$secret" > "$root/etc/radotp/vpn-gw.secret"
pid=$(main_pid)
inside systemctl reload radotpd || fail "systemctl reload with a new secret"
[ "$(main_pid)" = "$pid" ] || fail "reload restarted the daemon"
expect_accept "$secret" "systemctl reload with a new secret"

# A broken file: the reload is refused (systemctl reload fails), the daemon
# keeps the running configuration; a restart is refused with 78, once.
cp "$root/etc/radotp/radotp.yaml" "$work/radotp.yaml.good"
sed -i 's|  max_failures: 10|  max_failures: 0|' "$root/etc/radotp/radotp.yaml"
if inside systemctl reload radotpd; then fail "systemctl reload accepted a broken file"; fi
inside systemctl is-active radotpd >/dev/null || fail "a refused reload stopped the daemon"
say "systemctl reload of a broken file: refused, the daemon runs on"
grep -q "reload refused" <<< "$(inside journalctl -p err -u radotpd --no-pager -o cat)" \
  || fail "journalctl -p err shows no daemon error: $(inside journalctl -u radotpd --no-pager -o short-iso)"
say "journalctl -p err -u radotpd: $(inside journalctl -p err -u radotpd --no-pager -o cat | head -n 1)"
if inside systemctl restart radotpd; then fail "systemctl restart started with a broken file"; fi
sleep 4
result=$(inside systemctl show -P Result radotpd)
status=$(inside systemctl show -P ExecMainStatus radotpd)
restarts=$(inside systemctl show -P NRestarts radotpd)
active=$(inside systemctl is-active radotpd || true)
say "restart with a broken file: $active, Result=$result ExecMainStatus=$status NRestarts=$restarts"
[ "$active" = failed ] && [ "$status" = 78 ] && [ "$restarts" = 0 ] \
  || fail "a broken file should fail once with 78: $(inside systemctl status radotpd --no-pager 2>&1)"
cp "$work/radotp.yaml.good" "$root/etc/radotp/radotp.yaml"
inside systemctl reset-failed radotpd
inside systemctl start radotpd || fail "start after the file was repaired"
expect_accept "$secret" "restarted after the repair"

# --------------------------------------------------------------- watchdog
pid=$(main_pid)
inside systemctl kill --kill-whom=main --signal=SIGSTOP radotpd
say "radotpd (pid $pid in the container) stopped with SIGSTOP; waiting for the watchdog (WatchdogSec=30s)"
for _ in $(seq 1 90); do
  new=$(main_pid)
  if [ "$new" != "$pid" ] && [ "$new" != 0 ] && [ "$(inside systemctl is-active radotpd || true)" = active ]; then break; fi
  sleep 1
done
[ "$(main_pid)" != "$pid" ] || fail "the watchdog did not restart radotpd"
grep -qi "watchdog timeout" <<< "$(inside journalctl -u radotpd --no-pager -o cat)" \
  || fail "no watchdog timeout in the journal: $(inside journalctl -u radotpd --no-pager -n 30)"
say "watchdog restart: pid $pid -> $(main_pid), NRestarts=$(inside systemctl show -P NRestarts radotpd)"
expect_accept "$secret" "after the watchdog restart"

# ------------------------------------------------------------------- stop
inside systemctl stop radotpd || fail "systemctl stop"
[ "$(inside systemctl show -P ExecMainStatus radotpd)" = 0 ] || fail "radotpd exited non-zero on stop"
say "systemctl stop: exit status 0"
say "runuser -u radotp -- radotpd --check-config (the daemon stopped):"
inside runuser -u radotp -- radotpd --check-config --config /etc/radotp/radotp.yaml
inside systemctl start radotpd

say "journalctl -p err -u radotpd -o cat (the daemon's own errors, at priority err):"
inside journalctl -p err -u radotpd --no-pager -o cat | grep -v '^radotpd.service\|^Failed to start' || true

# ---------------------------------------------------------------- upgrade
key_before=$(sha256sum < "$root/var/lib/radotp/master.key")
pid=$(main_pid)
inside env DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold /root/radotp_2.deb > "$work/upgrade.log" 2>&1 \
  || { cat "$work/upgrade.log" >&2; fail "upgrade to revision 2"; }
[ "$(inside dpkg-query -W -f '${Version}' radotp)" = 0.1.0-2 ] || fail "not upgraded"
grep -q "address: $host_ip/32" "$root/etc/radotp/radotp.yaml" || fail "the upgrade replaced the conffile"
[ "$(sha256sum < "$root/var/lib/radotp/master.key")" = "$key_before" ] || fail "the upgrade changed the master key"
after=$(inside systemctl is-active radotpd || true)
if [ "$after" = active ] && [ "$(main_pid)" != "$pid" ]; then after="active, restarted by the upgrade"
elif [ "$after" = active ]; then after="active, the old process still running"; fi
say "upgraded to 0.1.0-2: conffile and key kept; radotpd $after"
inside systemctl restart radotpd || fail "restart after the upgrade"
expect_accept "$secret" "after the upgrade (counter kept)"

# ----------------------------------------------------------- remove, purge
inside systemctl stop radotpd
inside dpkg -r radotp > "$work/remove.log" 2>&1 || { cat "$work/remove.log" >&2; fail "dpkg -r"; }
[ -f "$root/var/lib/radotp/master.key" ] && [ -d "$root/var/lib/radotp/db" ] || fail "remove deleted the state"
[ -f "$root/etc/radotp/radotp.yaml" ] || fail "remove deleted the conffile"
say "dpkg -r: /var/lib/radotp and /etc/radotp/radotp.yaml kept"
inside dpkg --purge radotp > "$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; fail "dpkg --purge"; }
[ ! -e "$root/etc/radotp/radotp.yaml" ] || fail "purge kept the conffile"
[ -f "$root/var/lib/radotp/master.key" ] || fail "purge deleted the master key"
inside getent passwd radotp >/dev/null || fail "purge deleted the radotp account that owns the kept state"
[ "$(inside stat -c %U:%G /var/lib/radotp/master.key)" = radotp:radotp ] || fail "kept key not owned by radotp"
say "dpkg --purge: conffile gone; /var/lib/radotp kept, still owned by the kept account radotp"

# The account deleted by hand and its UID taken by another system account:
# a reinstallation gives the kept state to the new radotp account.
old_uid=$(inside id -u radotp)
inside deluser --system --quiet radotp
inside delgroup --system --quiet radotp 2>/dev/null || true
inside adduser --system --quiet --no-create-home newcomer
inside dpkg -i /root/radotp_2.deb > "$work/reinstall.log" 2>&1 || { cat "$work/reinstall.log" >&2; fail "reinstall"; }
owner=$(inside stat -c %U:%G /var/lib/radotp/master.key)
[ "$owner" = radotp:radotp ] || fail "after a reinstall the kept key belongs to $owner"
say "reinstall after the account was deleted by hand (old uid $old_uid now $(inside id -nu "$old_uid" 2>/dev/null || echo free)): key re-owned by radotp (uid $(inside id -u radotp))"

say "PASSED"
