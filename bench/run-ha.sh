#!/usr/bin/env bash
# Two radotpd nodes sharing one PostgreSQL, against one sled node, in the same run.
#
#   bench/run-ha.sh                      # 2000 HOTP tokens, 10 s per run, 64 in flight
#   RUN_SECONDS=5 CONCURRENCY=64 bench/run-ha.sh
#
# What it does, in a temporary directory that is removed at the end:
#  1. builds the release binaries (unless SKIP_BUILD is set);
#  2. initdb's a PostgreSQL cluster (Debian's postgresql package; as the
#     postgres user when run as root) on a free loopback port, fsync on;
#  3. generates TOKENS hw-hotp tokens owned one each by u00001...;
#  4. sled: one radotpd on its own store, imports the tokens, runs
#     radotp-bench in hotp mode at CONCURRENCY in flight for RUN_SECONDS;
#  5. postgres: node A and node B (the same key file) on one database, the
#     tokens imported through A; the users split in two halves, one
#     radotp-bench per node at CONCURRENCY/2 in flight each (a user's codes
#     go to one node, as a NAS sticks to its primary server), at the same time;
#  6. prints both reports and the summed accepts/s.
#
# Only processes this script started are signalled (by PID).
# Environment: TOKENS [2000], RUN_SECONDS [10], CONCURRENCY [64], SKIP_BUILD,
# KEEP_DIR, OUT [a file to append the JSON reports to].

set -euo pipefail

TOKENS=${TOKENS:-2000}
RUN_SECONDS=${RUN_SECONDS:-10}
CONCURRENCY=${CONCURRENCY:-64}
SECRET=bench-secret-$$

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --workspace --bins
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL is needed: apt-get install postgresql" >&2; exit 1; }

DIR=$(mktemp -d /tmp/radotp-ha-bench.XXXXXX)
chmod 755 "$DIR"
PIDS=()
PG_STARTED=
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do stop_pid "$pid" radotpd; done
    [ -n "$PG_STARTED" ] && as_pg "$PGBIN/pg_ctl" -D "$DIR/pg/data" stop -m fast >/dev/null 2>&1 || true
    if [ -n "${KEEP_DIR:-}" ]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== PostgreSQL"
mkdir -p "$DIR/pg"
[ "$(id -u)" = 0 ] && chown postgres "$DIR/pg"
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$PGBIN/initdb" -D "$DIR/pg/data" --auth=trust -U postgres -E UTF8 --locale=C >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w \
    -o "-p $PGPORT -k $DIR/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
PG_STARTED=1
"$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE radotp" postgres
URL="postgresql://postgres@127.0.0.1:$PGPORT/radotp"

"$BIN/radotp-bench" gen-tokens --count "$TOKENS" --users-prefix u --serial-prefix BENCH --type hw-hotp \
    --out-import "$DIR/import.csv" --out-bench "$DIR/bench.csv" --out-users "$DIR/users.yaml"
HALF=$((TOKENS / 2))
head -n "$HALF" "$DIR/bench.csv" >"$DIR/bench-a.csv"
tail -n +$((HALF + 1)) "$DIR/bench.csv" >"$DIR/bench-b.csv"

node_config() { # dir, then "sled" or "postgres NAME"
    local dir=$1 kind=$2 name=${3:-}
    radotpd_bench_config "$dir" "$SECRET" info 16 full hotp "$DIR/users.yaml" >"$dir/radotp.yaml"
    if [ "$kind" = postgres ]; then
        sed -i "s|^  path: .*|  kind: postgres\n  postgres:\n    url: \"$URL\"\n    pool_size: 16|; s|^  cache_mib: .*||; s|^  durability: .*||" "$dir/radotp.yaml"
        printf 'node:\n  name: %s\n' "$name" >>"$dir/radotp.yaml"
    fi
}
start_node() { # dir; sets PORT
    : >"$1/radotpd.log"
    "$BIN/radotpd" --config "$1/radotp.yaml" 2>"$1/radotpd.log" &
    PIDS+=($!)
    wait_radotpd_ready "$!" "$1/radotpd.log" "$1/admin.sock" "$BIN/radotpctl" || exit 1
}
bench() { # server, tokens file, concurrency, label
    "$BIN/radotp-bench" --server "$1" --secret "$SECRET" --mode hotp --tokens "$2" --concurrency "$3" \
        --duration "$RUN_SECONDS" --timeout-ms 2000 --label "$4" --json
}

echo "== sled: one node"
mkdir -p "$DIR/sled"
node_config "$DIR/sled" sled
start_node "$DIR/sled"
SLED=127.0.0.1:$PORT
timeout 600 "$BIN/radotpctl" --socket "$DIR/sled/admin.sock" token import "$DIR/import.csv" >/dev/null
bench "$SLED" "$DIR/bench.csv" "$CONCURRENCY" "sled-1node-c$CONCURRENCY" | tee "$DIR/sled.json"
stop_pid "${PIDS[0]}" radotpd

echo "== postgres: two nodes"
mkdir -p "$DIR/a" "$DIR/b"
node_config "$DIR/a" postgres radius-a
node_config "$DIR/b" postgres radius-b
start_node "$DIR/a"
A=127.0.0.1:$PORT
cp "$DIR/a/master.key" "$DIR/b/master.key"
start_node "$DIR/b"
B=127.0.0.1:$PORT
timeout 600 "$BIN/radotpctl" --socket "$DIR/a/admin.sock" token import "$DIR/import.csv" >/dev/null
bench "$A" "$DIR/bench-a.csv" $((CONCURRENCY / 2)) "pg-node-a-c$((CONCURRENCY / 2))" >"$DIR/a.json" &
BA=$!
bench "$B" "$DIR/bench-b.csv" $((CONCURRENCY / 2)) "pg-node-b-c$((CONCURRENCY / 2))" >"$DIR/b.json"
wait "$BA"
cat "$DIR/a.json" "$DIR/b.json"

"$BIN/radotp-bench" table "$DIR/sled.json" "$DIR/a.json" "$DIR/b.json"
acc() { sed -n 's/.*"accepts":\([0-9]*\).*/\1/p' "$1"; }
secs() { sed -n 's/.*"elapsed_s":\([0-9.]*\).*/\1/p' "$1"; }
awk -v s="$(acc "$DIR/sled.json")" -v st="$(secs "$DIR/sled.json")" \
    -v a="$(acc "$DIR/a.json")" -v at="$(secs "$DIR/a.json")" \
    -v b="$(acc "$DIR/b.json")" -v bt="$(secs "$DIR/b.json")" 'BEGIN {
    sled = s / st; pg = a / at + b / bt;
    printf "sled, one node:          %.0f accepts/s\n", sled;
    printf "postgres, two nodes:     %.0f accepts/s (%.2fx sled)\n", pg, pg / sled }'
if [ -n "${OUT:-}" ]; then cat "$DIR/sled.json" "$DIR/a.json" "$DIR/b.json" >>"$OUT"; fi
