#!/usr/bin/env bash
# Soak: radotpd under steady load for a while, its store size and memory
# sampled over time, to see growth per request and where it levels off.
#
#   bench/soak.sh                                   # 5 minutes at 64 in flight, default retention
#   MINUTES=2 MAX_ENTRIES=200000 bench/soak.sh      # see retention level the store off sooner
#   MODE=unknown COUNT=1000000 MAX_ENTRIES=100000 bench/soak.sh   # a flood of user names that own no token
#
# What it does, in a temporary directory that is removed at the end:
#  1. builds the release binaries (cargo build --release --workspace --bins)
#     unless SKIP_BUILD is set;
#  2. starts target/release/radotpd (the shape of conf/radotp.yaml, 127.0.0.1,
#     a port the kernel picks) with TOKENS hw-hotp tokens, each owned by a
#     user of a static directory, and `audit.max_entries: MAX_ENTRIES`;
#  3. runs radotp-bench in hotp mode at CONCURRENCY in flight for MINUTES,
#     WRONG_SHARE of the requests with a wrong code;
#  4. every SAMPLE_SECONDS samples: requests answered so far (radotpctl
#     status), the store's size on disk (du of its directory), radotpd's
#     VmRSS; and prints a table with the bytes of store per request since
#     the start;
#  5. times `radotpctl audit verify` over what the store holds at the end;
#  6. stops radotpd (SIGTERM) and removes the directory.
#
# Everything stays on loopback; every step is bounded in time; only the
# daemon this script started is signalled. Knobs (defaults in brackets):
# MODE [hotp: codes of the tokens; unknown: requests for 100,000 user names
# that own no token, each one an audit entry, as a flood from outside would
# be], COUNT [unset: with MODE=unknown, send this many requests instead of
# running for MINUTES], MINUTES [5], CONCURRENCY [64], TOKENS [10000], WRONG_SHARE [0.1],
# MAX_ENTRIES [1000000: the shipped default], RETENTION_DAYS [365],
# SAMPLE_SECONDS [15], LOG_LEVEL [warn], CACHE_MIB [16], SKIP_BUILD [unset],
# KEEP_DIR [unset], OUT [unset: a file to copy the table to].

set -euo pipefail

MODE=${MODE:-hotp}
COUNT=${COUNT:-}
MINUTES=${MINUTES:-5}
CONCURRENCY=${CONCURRENCY:-64}
TOKENS=${TOKENS:-10000}
WRONG_SHARE=${WRONG_SHARE:-0.1}
MAX_ENTRIES=${MAX_ENTRIES:-1000000}
RETENTION_DAYS=${RETENTION_DAYS:-365}
SAMPLE_SECONDS=${SAMPLE_SECONDS:-15}
LOG_LEVEL=${LOG_LEVEL:-warn}
CACHE_MIB=${CACHE_MIB:-16}
SECRET=soak-secret-$$

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release

if [ -z "${SKIP_BUILD:-}" ]; then
    echo "== building release binaries"
    cargo build --release --workspace --bins
fi
for b in radotpd radotpctl radotp-bench; do
    [ -x "$BIN/$b" ] || { echo "missing $BIN/$b" >&2; exit 1; }
done

DIR=$(mktemp -d /tmp/radotp-soak.XXXXXX)
DAEMON_PID=
LOAD_PID=
cleanup() {
    local status=$?
    if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then
        kill "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    stop_pid "$DAEMON_PID" radotpd
    if [ -n "${KEEP_DIR:-}" ]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN/radotp-bench" gen-tokens --count "$TOKENS" --assigned "$TOKENS" --users-prefix u \
    --serial-prefix SOAK --type hw-hotp \
    --out-import "$DIR/import.csv" --out-bench "$DIR/bench.csv" --out-users "$DIR/users.yaml" >/dev/null
{
    radotpd_bench_config "$DIR" "$SECRET" "$LOG_LEVEL" "$CACHE_MIB" full "hotp" "$DIR/users.yaml"
    printf 'audit:\n  max_entries: %s\n  retention_days: %s\n' "$MAX_ENTRIES" "$RETENTION_DAYS"
} >"$DIR/radotp.yaml"

"$BIN/radotpd" --config "$DIR/radotp.yaml" 2>"$DIR/radotpd.log" &
DAEMON_PID=$!
wait_radotpd_ready "$DAEMON_PID" "$DIR/radotpd.log" "$DIR/admin.sock" "$BIN/radotpctl" || exit 1
CTL=("$BIN/radotpctl" --socket "$DIR/admin.sock")
timeout 120 "${CTL[@]}" token import "$DIR/import.csv" >/dev/null

requests() { timeout 10 "${CTL[@]}" status --json | tr -d ' \n' | sed -n 's/.*"requests":\([0-9]*\).*/\1/p'; }
store_bytes() { du -sb "$DIR/db" | awk '{ print $1 }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }

SECONDS_TOTAL=$((MINUTES * 60))
echo "== soak ($MODE): ${COUNT:-${MINUTES} min} at $CONCURRENCY in flight, $TOKENS tokens, wrong share $WRONG_SHARE, audit.max_entries $MAX_ENTRIES"
if [ "$MODE" = unknown ]; then
    awk 'BEGIN { for (i = 1; i <= 100000; i++) printf "nobody%07d,123456\n", i }' >"$DIR/unknown.csv"
    LOAD=(--mode password --users "$DIR/unknown.csv" --wrong-share 1.0)
else
    LOAD=(--mode hotp --tokens "$DIR/bench.csv" --wrong-share "$WRONG_SHARE")
fi
if [ -n "$COUNT" ]; then SPAN=(--count "$COUNT"); else SPAN=(--duration "$SECONDS_TOTAL"); fi
timeout $((SECONDS_TOTAL + 600)) "$BIN/radotp-bench" --server "127.0.0.1:$PORT" --secret "$SECRET" \
    "${LOAD[@]}" --concurrency "$CONCURRENCY" "${SPAN[@]}" --json >"$DIR/bench.json" 2>"$DIR/bench.err" &
LOAD_PID=$!

START_REQ=$(requests)
START_BYTES=$(store_bytes)
TABLE="| t (s) | requests | store (MiB) | store bytes / request | RSS (MiB) |
|---|---|---|---|---|"
t0=$(date +%s)
row() {
    local req bytes rss per t
    req=$(requests)
    bytes=$(store_bytes)
    rss=$(rss_kib)
    t=$(($(date +%s) - t0))
    per=$(awk -v b="$bytes" -v b0="$START_BYTES" -v r="$req" -v r0="$START_REQ" \
        'BEGIN { if (r > r0) printf "%.0f", (b - b0) / (r - r0); else print "-" }')
    local line
    line="| $t | $((req - START_REQ)) | $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') | $per | $(mib "$rss") |"
    TABLE="$TABLE
$line"
    echo "$line"
}
row
while kill -0 "$LOAD_PID" 2>/dev/null; do
    sleep "$SAMPLE_SECONDS"
    row
done
wait "$LOAD_PID" || true
LOAD_PID=
# One more sample once retention has had its turn after the load.
sleep 12
row

ENTRY_BYTES=$(timeout 10 "${CTL[@]}" audit --limit 1 --json | tr -d '\n' | sed 's/^\[ *//; s/ *\]$//' | wc -c)
echo "== one audit entry as JSON: $ENTRY_BYTES bytes"
echo "== audit verify"
v0=$(now)
VERIFY=$(timeout 600 "${CTL[@]}" audit verify)
v1=$(now)
echo "$VERIFY ($(elapsed_ms "$v0" "$v1") ms)"

{
    echo
    echo "Soak ($MODE): ${COUNT:-${MINUTES} min}, $CONCURRENCY in flight, $TOKENS tokens, wrong share $WRONG_SHARE, audit.max_entries $MAX_ENTRIES, retention_days $RETENTION_DAYS"
    echo
    echo "$TABLE"
    echo
    echo "audit verify: $VERIFY, $(elapsed_ms "$v0" "$v1") ms; one entry as JSON: about $ENTRY_BYTES bytes"
} | tee "${OUT:-/dev/null}"
