#!/usr/bin/env bash
# Load test of radotpd on loopback, with radotp-bench.
#
#   bench/run-load.sh                 # full run: 100000 HOTP tokens (10000 assigned), ~10 s per run
#   RUN_SECONDS=3 TOKENS=20000 ASSIGNED=2000 bench/run-load.sh   # a quicker one
#
# What it does, in a temporary directory that is removed at the end:
#  1. builds the release binaries (cargo build --release);
#  2. generates TOKENS hw-hotp tokens, ASSIGNED of them owned one each by users
#     u00001..; plus TOTP_TOKENS hw-totp tokens owned by t00001..; the users go
#     into a static directory in the generated configuration;
#  3. starts target/release/radotpd on 127.0.0.1 (a port the kernel picks);
#  4. times `radotpctl token import` of both files;
#  5. runs radotp-bench in hotp mode at concurrency 1, 16, 64, 256 (RUN_SECONDS
#     each), a reject run (--wrong-share 1.0) at 64, and a short totp run at 16;
#  6. samples radotpd's VmRSS / VmHWM before, during and after the load;
#  7. times radotpctl token list --user, token show, status and a full
#     token list over the whole store;
#  8. imports TOKENS more tokens during a hotp run at concurrency 16;
#  9. prints the tables, stops radotpd with SIGTERM and removes the directory.
#
# Everything stays on loopback. Every step has a time bound. Only the daemon
# this script started is signalled (by its PID).
#
# Environment knobs (defaults in brackets): TOKENS [100000], ASSIGNED [10000],
# TOTP_TOKENS [1000], RUN_SECONDS [10], CONCURRENCIES ["1 16 64 256"],
# LOG_LEVEL [info, as in conf/radotp.yaml], CACHE_MIB [16: store.cache_mib],
# DURABILITY [full: store.durability, full or process], KEEP_DIR [unset: remove the temp dir],
# RESTART_AFTER_IMPORT [unset: set to restart radotpd between import and load],
# IMPORT_DURING_LOAD [1: after the admin timings, a hotp run at concurrency 16
# during which TOKENS more tokens are imported; 0 skips it],
# SKIP_BUILD [unset], OUT [unset: a file to copy the final tables to; the JSON
# reports go to OUT.jsonl], PERF [unset: set to profile radotpd with perf during
# hotp-c64; the flat profile goes to OUT.perf.txt].

set -euo pipefail

TOKENS=${TOKENS:-100000}
ASSIGNED=${ASSIGNED:-10000}
TOTP_TOKENS=${TOTP_TOKENS:-1000}
RUN_SECONDS=${RUN_SECONDS:-10}
CONCURRENCIES=${CONCURRENCIES:-"1 16 64 256"}
LOG_LEVEL=${LOG_LEVEL:-info}
CACHE_MIB=${CACHE_MIB:-16}
DURABILITY=${DURABILITY:-full}
SECRET=bench-secret-$$

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

DIR=$(mktemp -d /tmp/radotp-bench.XXXXXX)
DAEMON_PID=
SAMPLER_PID=
IMPORTER_PID=

cleanup() {
    local status=$?
    if [ -n "$IMPORTER_PID" ] && kill -0 "$IMPORTER_PID" 2>/dev/null; then
        kill "$IMPORTER_PID" 2>/dev/null || true
    fi
    if [ -n "$SAMPLER_PID" ] && kill -0 "$SAMPLER_PID" 2>/dev/null; then
        kill "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
    fi
    stop_pid "$DAEMON_PID" radotpd
    if [ -n "${KEEP_DIR:-}" ]; then
        echo "kept $DIR"
    else
        rm -rf "$DIR"
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kib_of() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$DAEMON_PID/status" 2>/dev/null || echo 0; }

TICKS=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of the daemon, in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$DAEMON_PID/stat" 2>/dev/null || echo 0
}

RSS_ROWS=()
rss_row() { # label
    local rss hwm
    rss=$(kib_of VmRSS)
    hwm=$(kib_of VmHWM)
    RSS_ROWS+=("| $1 | $(mib "$rss") | $(mib "$hwm") |")
}

echo "== generating tokens in $DIR"
"$BIN/radotp-bench" gen-tokens --count "$TOKENS" --assigned "$ASSIGNED" --users-prefix u \
    --serial-prefix BENCH --type hw-hotp \
    --out-import "$DIR/hotp-import.csv" --out-bench "$DIR/hotp-bench.csv" --out-users "$DIR/hotp-users.yaml"
"$BIN/radotp-bench" gen-tokens --count "$TOTP_TOKENS" --users-prefix t \
    --serial-prefix TBENCH --type hw-totp \
    --out-import "$DIR/totp-import.csv" --out-bench "$DIR/totp-bench.csv" --out-users "$DIR/totp-users.yaml"

radotpd_bench_config "$DIR" "$SECRET" "$LOG_LEVEL" "$CACHE_MIB" "$DURABILITY" "hotp totp" \
    "$DIR/hotp-users.yaml" "$DIR/totp-users.yaml" >"$DIR/radotp.yaml"

STARTS=0
start_daemon() { # sets DAEMON_PID, PORT, SERVER, STARTUP_MS; log in radotpd-N.log
    STARTS=$((STARTS + 1))
    local log="$DIR/radotpd-$STARTS.log" t0 t1
    t0=$(now)
    "$BIN/radotpd" --config "$DIR/radotp.yaml" 2>"$log" &
    DAEMON_PID=$!
    wait_radotpd_ready "$DAEMON_PID" "$log" "$DIR/admin.sock" "$BIN/radotpctl" || exit 1
    t1=$(now)
    STARTUP_MS=$(elapsed_ms "$t0" "$t1")
    SERVER=127.0.0.1:$PORT
    echo "radotpd pid $DAEMON_PID on $SERVER (ready in ${STARTUP_MS} ms)"
}
stop_daemon() { # SIGTERM, wait up to 20 s; sets STOP_MS
    local t0 t1
    t0=$(now)
    kill -TERM "$DAEMON_PID"
    for _ in $(seq 1 200); do
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
        echo "radotpd did not stop within 20 s of SIGTERM" >&2
        exit 1
    fi
    wait "$DAEMON_PID" 2>/dev/null || true
    t1=$(now)
    STOP_MS=$(elapsed_ms "$t0" "$t1")
    DAEMON_PID=
}

echo "== starting radotpd"
start_daemon
FIRST_STARTUP_MS=$STARTUP_MS
CTL=("$BIN/radotpctl" --socket "$DIR/admin.sock")
rss_row "started, empty store"

echo "== importing $TOKENS hw-hotp tokens"
t0=$(now)
timeout 900 "${CTL[@]}" token import "$DIR/hotp-import.csv"
t1=$(now)
IMPORT_MS=$(elapsed_ms "$t0" "$t1")
echo "import of $TOKENS tokens: ${IMPORT_MS} ms"
t0=$(now)
timeout 300 "${CTL[@]}" token import "$DIR/totp-import.csv"
t1=$(now)
IMPORT_TOTP_MS=$(elapsed_ms "$t0" "$t1")
rss_row "after import"
DB_BYTES=$(du -sb "$DIR/db" | cut -f1)
RESTART_MS=
if [ -n "${RESTART_AFTER_IMPORT:-}" ]; then
    echo "== restarting radotpd after the import"
    stop_daemon
    start_daemon
    RESTART_MS=$STARTUP_MS
    rss_row "restarted on the imported store"
fi

# Peak VmRSS during the load, sampled every 200 ms.
(
    while kill -0 "$DAEMON_PID" 2>/dev/null; do
        awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status" 2>/dev/null || true
        sleep 0.2
    done
) >"$DIR/rss-samples" &
SAMPLER_PID=$!

BENCH=("$BIN/radotp-bench" --server "$SERVER" --secret "$SECRET" --timeout-ms 2000 --json)
CPU_ROWS=()
run() { # label, then radotp-bench arguments
    local label=$1
    shift
    echo "-- $label"
    local before after perf_pid=
    if [ -n "${PERF:-}" ] && [ "$label" = "hotp-c64" ] && command -v perf >/dev/null; then
        perf record -F 499 -g -p "$DAEMON_PID" -o "$DIR/perf.data" -- sleep "$RUN_SECONDS" >"$DIR/perf.log" 2>&1 &
        perf_pid=$!
    fi
    before=$(cpu_ticks)
    timeout $((RUN_SECONDS + 60)) /usr/bin/time -o "$DIR/bench-time" -f "%U %S" \
        "${BENCH[@]}" --label "$label" "$@" | tee "$DIR/last.json"
    after=$(cpu_ticks)
    cat "$DIR/last.json" >>"$DIR/reports.jsonl"
    rss_row "after $label"
    local replies elapsed
    replies=$(sed -n 's/.*"replies":\([0-9]*\).*/\1/p' "$DIR/last.json")
    elapsed=$(sed -n 's/.*"elapsed_s":\([0-9.]*\).*/\1/p' "$DIR/last.json")
    CPU_ROWS+=("$(awk -v l="$label" -v b="$before" -v a="$after" -v t="$TICKS" -v r="$replies" -v e="$elapsed" \
        -v bu="$(cut -d' ' -f1 "$DIR/bench-time")" -v bs="$(cut -d' ' -f2 "$DIR/bench-time")" 'BEGIN {
            cpu = (a - b) / t
            printf "| %s | %.2f | %.2f | %.0f | %.2f |", l, cpu, cpu / e, (r > 0 ? cpu / r * 1e6 : 0), (bu + bs) / e
        }')")
    if [ -n "$perf_pid" ]; then
        wait "$perf_pid" || true
        perf report -i "$DIR/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
            grep '%' | head -n 60 >"$DIR/perf.txt" || true
    fi
}

echo "== load runs, $RUN_SECONDS s each"
for c in $CONCURRENCIES; do
    run "hotp-c$c" --mode hotp --tokens "$DIR/hotp-bench.csv" --save-tokens "$DIR/hotp-bench.csv" \
        --concurrency "$c" --duration "$RUN_SECONDS"
done
run "hotp-reject-c64" --mode hotp --tokens "$DIR/hotp-bench.csv" --concurrency 64 \
    --duration "$RUN_SECONDS" --wrong-share 1.0
run "totp-c16" --mode totp --tokens "$DIR/totp-bench.csv" --concurrency 16 --duration "$RUN_SECONDS"

kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=
PEAK_KIB=$(sort -n "$DIR/rss-samples" | tail -n1)
RSS_ROWS+=("| peak during the load runs above (200 ms samples) | $(mib "${PEAK_KIB:-0}") | - |")
sleep 2
rss_row "idle, 2 s after load"

echo "== admin timings over $((TOKENS + TOTP_TOKENS)) tokens"
ADMIN_ROWS=()
time_admin() { # label, then radotpctl arguments; 5 runs, min and median
    local label=$1
    shift
    local times=()
    for _ in 1 2 3 4 5; do
        local a b
        a=$(now)
        timeout 300 "${CTL[@]}" "$@" >/dev/null
        b=$(now)
        times+=("$(elapsed_ms "$a" "$b")")
    done
    local sorted
    sorted=$(printf '%s\n' "${times[@]}" | sort -n)
    ADMIN_ROWS+=("| \`radotpctl $label\` | $(echo "$sorted" | head -n1) | $(echo "$sorted" | sed -n 3p) |")
}
time_admin "token list --user u00001" token list --user u00001
time_admin "token show BENCH000001" token show BENCH000001
time_admin "ping" ping
time_admin "status (scans all tokens)" status
time_admin "token list --json (all tokens)" --json token list

IMPORT_UNDER_LOAD_MS=
if [ "${IMPORT_DURING_LOAD:-1}" != 0 ]; then
    # Admin work while RADIUS is busy: import TOKENS more (unassigned) tokens,
    # starting 2 s into a hotp run at concurrency 16.
    echo "== hotp at concurrency 16 while $TOKENS more tokens are imported"
    "$BIN/radotp-bench" gen-tokens --count "$TOKENS" --assigned 0 --serial-prefix LATE --type hw-hotp \
        --out-import "$DIR/late-import.csv" --out-bench /dev/null
    (
        sleep 2
        a=$(now)
        timeout 900 "${CTL[@]}" token import "$DIR/late-import.csv" >/dev/null
        b=$(now)
        elapsed_ms "$a" "$b" >"$DIR/late-import-ms"
    ) &
    IMPORTER_PID=$!
    run "hotp-c16-during-import" --mode hotp --tokens "$DIR/hotp-bench.csv" --save-tokens "$DIR/hotp-bench.csv" \
        --concurrency 16 --duration $((RUN_SECONDS + 5))
    wait "$IMPORTER_PID"
    IMPORTER_PID=
    IMPORT_UNDER_LOAD_MS=$(cat "$DIR/late-import-ms")
fi

"${CTL[@]}" status | tee "$DIR/status.txt"
LOG_LINES=$(cat "$DIR"/radotpd-*.log | wc -l)

echo "== stopping radotpd"
stop_daemon
DB_BYTES_AFTER=$(du -sb "$DIR/db" | cut -f1)

{
    echo
    echo "## Machine"
    echo
    echo "- nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1); RAM: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- kernel: $(uname -r); store on: $(df -T "$DIR" | awk 'NR == 2 { print $2 }')"
    echo
    echo "## RADIUS load (radotp-bench, ${RUN_SECONDS} s per run, timeout 2000 ms, never retransmitted)"
    echo
    "$BIN/radotp-bench" table "$DIR/reports.jsonl"
    echo
    echo "## CPU used per run (from /proc/PID/stat and /usr/bin/time)"
    echo
    echo "| run | radotpd CPU s | radotpd cores busy | radotpd CPU µs per request | radotp-bench cores busy |"
    echo "|---|---:|---:|---:|---:|"
    printf '%s\n' "${CPU_ROWS[@]}"
    echo
    echo "## Import and start-up"
    echo
    echo "| step | time |"
    echo "|---|---:|"
    echo "| radotpd start-up to ready (empty store) | ${FIRST_STARTUP_MS} ms |"
    echo "| \`radotpctl token import\`: $TOKENS hw-hotp tokens, $ASSIGNED assigned | ${IMPORT_MS} ms |"
    echo "| \`radotpctl token import\`: $TOTP_TOKENS hw-totp tokens, all assigned | ${IMPORT_TOTP_MS} ms |"
    echo "| store size after import / after load | $((DB_BYTES / 1048576)) MiB / $((DB_BYTES_AFTER / 1048576)) MiB |"
    if [ -n "$IMPORT_UNDER_LOAD_MS" ]; then
        echo "| \`radotpctl token import\`: $TOKENS more hw-hotp tokens, unassigned, during hotp-c16-during-import | ${IMPORT_UNDER_LOAD_MS} ms |"
    fi
    if [ -n "$RESTART_MS" ]; then
        echo "| radotpd restart after the import, to ready | ${RESTART_MS} ms |"
    fi
    echo "| SIGTERM to exit | ${STOP_MS} ms |"
    echo "| radotpd log lines (level $LOG_LEVEL) | $LOG_LINES |"
    echo
    echo "## radotpd memory"
    echo
    echo "| when | VmRSS MiB | VmHWM MiB |"
    echo "|---|---:|---:|"
    printf '%s\n' "${RSS_ROWS[@]}"
    echo
    echo "## Admin operations over $((TOKENS + TOTP_TOKENS)) tokens (wall time of the whole radotpctl process, 5 runs)"
    echo
    echo "| command | min ms | median ms |"
    echo "|---|---:|---:|"
    printf '%s\n' "${ADMIN_ROWS[@]}"
} | tee "$DIR/tables.md"
if [ -n "${OUT:-}" ]; then
    cp "$DIR/tables.md" "$OUT"
    cp "$DIR/reports.jsonl" "$OUT.jsonl"
    if [ -f "$DIR/perf.txt" ]; then
        cp "$DIR/perf.txt" "$OUT.perf.txt"
    fi
fi
