#!/usr/bin/env bash
# radotpd's memory (VmRSS) with USERS tokens: after the import, after a
# restart, and under load after the restart. Not a test: it prints figures.
#
#   bench/memory.sh                                   # 100,000 tokens, glibc build
#   USERS=10000 RUNS=1 SECONDS_PER_RUN=10 bench/memory.sh
#   EXTRA_RADIUS="duplicate_cache_entries: 1024" bench/memory.sh   # a key added under radius:
#   EXTRA_STORE="checkpoint_ms: 500" bench/memory.sh                # a key added under store:
#   HEAPTRACK=1 bench/memory.sh                       # the restart and load under heaptrack,
#                                                     # its top consumers printed at the end
#
# The set-up is bench/compare-freeradius.sh's (bench/lib.sh): USERS hw-hotp
# tokens one per user of a static directory, log level warn,
# durability full, 127.0.0.1. Builds the release binaries unless SKIP_BUILD is set.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
cd "$ROOT"
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
USERS=${USERS:-100000}
RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
CACHE_MIB=${CACHE_MIB:-16}
SECRET=memory-$$
DIR=$(mktemp -d)
DAEMON_PID=

cleanup() {
    stop_pid "$DAEMON_PID" radotpd
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --workspace --bins

"$BIN/radotp-bench" gen-tokens --count "$USERS" --assigned "$USERS" --users-prefix u --serial-prefix MEM \
    --type hw-hotp --out-import "$DIR/import.csv" --out-bench "$DIR/bench.csv" --out-users "$DIR/users.yaml" >/dev/null
radotpd_bench_config "$DIR" "$SECRET" warn "$CACHE_MIB" full hotp "$DIR/users.yaml" >"$DIR/radotp.yaml"
if [ -n "${EXTRA_RADIUS:-}" ]; then sed -i "s/^radius:/radius:\n  $EXTRA_RADIUS/" "$DIR/radotp.yaml"; fi
if [ -n "${EXTRA_STORE:-}" ]; then sed -i "s/^store:/store:\n  $EXTRA_STORE/" "$DIR/radotp.yaml"; fi

rss() { echo "$(mib "$(kib_of "$DAEMON_PID" VmRSS)") MiB"; }
start() { # [heaptrack]
    if [ "${1:-}" = heaptrack ]; then
        heaptrack -o "$DIR/heap" "$BIN/radotpd" --config "$DIR/radotp.yaml" 2>>"$DIR/radotpd.log" >/dev/null &
        local tracer=$!
        for _ in $(seq 1 100); do
            DAEMON_PID=$(pgrep -P "$tracer" -x radotpd || true)
            [ -n "$DAEMON_PID" ] && break
            sleep 0.1
        done
    else
        "$BIN/radotpd" --config "$DIR/radotp.yaml" 2>>"$DIR/radotpd.log" &
        DAEMON_PID=$!
    fi
    wait_radotpd_ready "$DAEMON_PID" "$DIR/radotpd.log" "$DIR/admin.sock" "$BIN/radotpctl"
}

echo "radotpd memory, $USERS tokens (store.cache_mib $CACHE_MIB${EXTRA_RADIUS:+, radius.$EXTRA_RADIUS}${EXTRA_STORE:+, store.$EXTRA_STORE})"
start
echo "| when | VmRSS |"
echo "|---|---:|"
echo "| started, empty store | $(rss) |"
timeout 600 "$BIN/radotpctl" --socket "$DIR/admin.sock" token import "$DIR/import.csv" >/dev/null
echo "| after importing $USERS tokens | $(rss) |"
stop_pid "$DAEMON_PID" radotpd
DAEMON_PID=
start ${HEAPTRACK:+heaptrack}
echo "| after a restart | $(rss) |"
for run in $(seq 1 "$RUNS"); do
    rate=$(timeout $((SECONDS_PER_RUN + 60)) "$BIN/radotp-bench" --server "127.0.0.1:$PORT" --secret "$SECRET" \
        --mode hotp --tokens "$DIR/bench.csv" --save-tokens "$DIR/bench.csv" --concurrency 64 \
        --duration "$SECONDS_PER_RUN" --json | sed -n 's/.*"requests_per_s":\([0-9.]*\).*/\1/p')
    echo "| under load, after run $run ($SECONDS_PER_RUN s at 64 in flight, $rate accepts/s) | $(rss) |"
done
stop_pid "$DAEMON_PID" radotpd
DAEMON_PID=
if [ -n "${HEAPTRACK:-}" ]; then
    sleep 2
    echo
    echo "heaptrack: top peak consumers (after the restart and under load)"
    heaptrack_print -f "$DIR"/heap*.zst --print-peaks 1 --print-allocators 0 --print-temporary 0 \
        --print-leaks 0 --peak-limit 12 2>/dev/null |
        awk '/peak memory consumed over/ { print; n = 0; want = 1; next }
             want && /::/ && n < 2 { print; n++ }' | cut -c1-160 || true
    heaptrack_print -f "$DIR"/heap*.zst 2>/dev/null | grep "peak heap" || true
fi
