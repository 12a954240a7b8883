#!/usr/bin/env bash
# radotpd against FreeRADIUS 3.2 on loopback, driven by the same generator.
#
#   bench/compare-freeradius.sh                       # ~2 minutes of load, plus set-up
#   RUN_SECONDS=3 CONCURRENCIES="1 64" bench/compare-freeradius.sh   # a quick one
#   PERF=1 OUT=/tmp/cmp.md bench/compare-freeradius.sh   # plus perf profiles of both servers
#
# What it does, in a temporary directory that is removed at the end:
#  1. installs Debian's `freeradius` package if `freeradius` is missing
#     (apt-get, as root), with /usr/sbin/policy-rc.d answering 101 during the
#     install so that the package's own service is not started; if a service
#     manager did start it anyway, it is stopped and disabled again (only when
#     this script installed the package);
#  2. builds the release binaries (cargo build --release --bins);
#  3. writes a minimal FreeRADIUS configuration tree of its own (not
#     /etc/freeradius): modules `files` and `pap` only, USERS users with a
#     Cleartext-Password in the users file, one client 127.0.0.1 with
#     require_message_authenticator = yes, Message-Authenticator in every
#     reply (as radotpd and FreeRADIUS >= 3.2.5 do), a listener on 127.0.0.1:FR_PORT with
#     a 4 MiB recv_buff (radotpd's default receive buffer), reject_delay = 0,
#     a fixed pool of FR_THREADS worker threads, no per-request logging;
#     checks it with `freeradius -C` and starts `freeradius -f -d DIR -l stdout`;
#  4. starts radotpd on 127.0.0.1 (a port the kernel picks) with USERS hw-hotp
#     tokens, one per user u00001.., imported with `radotpctl token import`
#     (the set-up of bench/run-load.sh, without the unassigned stock);
#  5. runs radotp-bench back to back against both, at each concurrency of
#     CONCURRENCIES for RUN_SECONDS: `--mode password` (right passwords)
#     against FreeRADIUS, then `--mode hotp` (fresh valid HOTP codes) against
#     radotpd; then a reject run at REJECT_CONCURRENCY: wrong passwords against
#     FreeRADIUS, wrong OTPs against radotpd (`--wrong-share 1.0`);
#  6. measures the CPU time of each server during each run (utime + stime from
#     /proc/PID/stat) and of the generator (/usr/bin/time), and VmRSS / VmHWM
#     of both servers;
#  6b. also runs the same password load against the no-work ceiling
#     (`radotp-bench ceiling`: checks Message-Authenticator, signs an
#     Access-Accept with radotp's packet code, nothing else; one thread per
#     core), so the tables show each server's share of what this machine can
#     answer at all;
#  7. prints a side-by-side table with the ratios (radotpd / FreeRADIUS),
#     the generator's per-run table, CPU and memory, and the machine's load
#     average before and after; stops both servers and removes the directory.
#
# Everything stays on loopback. Every step has a time bound. Only the
# processes this script started are signalled, by their PID.
#
# Environment knobs (defaults in brackets): USERS [10000], RUN_SECONDS [10],
# CONCURRENCIES ["1 16 64 256"], REJECT_CONCURRENCY [64],
# DURABILITY [full: radotpd's store.durability; `process` skips the fdatasync
# after each group commit, see docs/configuration.md],
# LOG_LEVEL [warn: radotpd's log level; FreeRADIUS logs no line per request
# either; `info` adds radotpd's line per decision, as shipped],
# FR_THREADS [2 x nproc], FR_PORT [18120: the first free UDP port from there],
# SKIP_BUILD [unset], KEEP_DIR [unset], OUT [unset: a file to copy the tables
# to; the JSON reports go to OUT.jsonl], PERF [unset: set to record each
# server with `perf record` during its runs at 64 in flight; the profiles go
# to OUT.perf-LABEL.txt, e.g. OUT.perf-radotpd-c64.txt],
# PERF_CALLGRAPH [dwarf].

set -euo pipefail

USERS=${USERS:-10000}
RUN_SECONDS=${RUN_SECONDS:-10}
CONCURRENCIES=${CONCURRENCIES:-"1 16 64 256"}
REJECT_CONCURRENCY=${REJECT_CONCURRENCY:-64}
LOG_LEVEL=${LOG_LEVEL:-warn}
DURABILITY=${DURABILITY:-full}
FR_THREADS=${FR_THREADS:-$(($(nproc) * 2))}
FR_PORT=${FR_PORT:-18120}
PERF_CALLGRAPH=${PERF_CALLGRAPH:-dwarf}
SECRET=cmp-secret-$$

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
DIR=
FR_PID=
DAEMON_PID=
CEILING_PID=
PERF_PID=
POLICY_BACKUP=
POLICY_CREATED=

restore_policy() {
    if [ -n "$POLICY_BACKUP" ]; then
        mv -f "$POLICY_BACKUP" /usr/sbin/policy-rc.d
        POLICY_BACKUP=
    elif [ -n "$POLICY_CREATED" ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    POLICY_CREATED=
}

cleanup() {
    local status=$?
    restore_policy
    if [ -n "$PERF_PID" ] && kill -0 "$PERF_PID" 2>/dev/null; then
        kill -INT "$PERF_PID" 2>/dev/null || true
        wait "$PERF_PID" 2>/dev/null || true
    fi
    stop_pid "$FR_PID" freeradius
    stop_pid "$DAEMON_PID" radotpd
    stop_pid "$CEILING_PID" radotp-bench-ceiling
    if [ -n "$DIR" ]; then
        if [ -n "${KEEP_DIR:-}" ]; then
            echo "kept $DIR"
        else
            rm -rf "$DIR"
        fi
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ FreeRADIUS

FREERADIUS=$(command -v freeradius || true)
if [ -z "$FREERADIUS" ] && [ -x /usr/sbin/freeradius ]; then
    FREERADIUS=/usr/sbin/freeradius
fi

stop_package_service() {
    # policy-rc.d keeps invoke-rc.d from starting it, but a running systemd
    # may start an enabled unit by itself: stop it, and disable the unit (this
    # also works without a running systemd) so that no boot starts it either.
    if command -v systemctl >/dev/null; then
        if [ -d /run/systemd/system ] && systemctl is-active --quiet freeradius.service 2>/dev/null; then
            echo "== stopping the freeradius.service the package started"
            timeout 60 systemctl stop freeradius.service || true
        fi
        timeout 60 systemctl disable freeradius.service >/dev/null 2>&1 || true
    fi
    if [ -f /run/freeradius/freeradius.pid ]; then
        local pid
        pid=$(cat /run/freeradius/freeradius.pid)
        if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = freeradius ]; then
            echo "== stopping the freeradius service the package started (pid $pid)"
            timeout 60 /etc/init.d/freeradius stop || kill -TERM "$pid" || true
        fi
    fi
}

install_freeradius() {
    if [ "$(id -u)" != 0 ]; then
        echo "freeradius is not installed; run as root (this script uses apt-get) or install it: apt-get install freeradius" >&2
        exit 1
    fi
    echo "== installing Debian's freeradius package (its service is not started)"
    local policy=/usr/sbin/policy-rc.d
    if [ -e "$policy" ]; then
        local rc=0
        "$policy" freeradius start >/dev/null 2>&1 || rc=$?
        if [ "$rc" != 101 ]; then
            POLICY_BACKUP=$(mktemp /usr/sbin/policy-rc.d.radotp.XXXXXX)
            cp -p "$policy" "$POLICY_BACKUP"
            POLICY_CREATED=1
        fi
    else
        POLICY_CREATED=1
    fi
    if [ -n "$POLICY_CREATED" ]; then
        printf '#!/bin/sh\n# written by radotp bench/compare-freeradius.sh for the install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
    fi
    export DEBIAN_FRONTEND=noninteractive
    local apt=(timeout 900 apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold freeradius)
    if ! "${apt[@]}"; then
        timeout 600 apt-get update
        "${apt[@]}"
    fi
    restore_policy
    stop_package_service
    FREERADIUS=$(command -v freeradius || echo /usr/sbin/freeradius)
}

[ -n "$FREERADIUS" ] || install_freeradius
FR_VERSION=$("$FREERADIUS" -v 2>/dev/null | sed -n 's/.*FreeRADIUS Version \([0-9.]*\).*/\1/p' | head -n1)
echo "== using $FREERADIUS (FreeRADIUS ${FR_VERSION:-?})"

# ----------------------------------------------------------------- build

if [ -z "${SKIP_BUILD:-}" ]; then
    echo "== building release binaries"
    cargo build --release --workspace --bins
fi
for b in radotpd radotpctl radotp-bench; do
    [ -x "$BIN/$b" ] || { echo "missing $BIN/$b" >&2; exit 1; }
done

DIR=$(mktemp -d /tmp/radotp-cmp.XXXXXX)

TICKS=$(getconf CLK_TCK)
cpu_ticks() { # pid: utime + stime of all its threads, in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
json_field() { # key, file: a number of a radotp-bench JSON report (first match)
    sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p" "$2" | head -n1
}
udp_port_free() { ! ss -Hulna "sport = :$1" 2>/dev/null | grep -q .; }

MEM_ROWS=()
mem_row() { # label, pid, server name
    MEM_ROWS+=("| $3 | $1 | $(mib "$(kib_of "$2" VmRSS)") | $(mib "$(kib_of "$2" VmHWM)") |")
}

# ----------------------------------------------------------- users, tokens

echo "== generating $USERS users and hw-hotp tokens in $DIR"
"$BIN/radotp-bench" gen-tokens --count "$USERS" --assigned "$USERS" --users-prefix u \
    --serial-prefix CMP --type hw-hotp \
    --out-import "$DIR/hotp-import.csv" --out-bench "$DIR/hotp-bench.csv" --out-users "$DIR/hotp-users.yaml"
# The same user names, with a 15-character password each, for FreeRADIUS.
awk -F, 'NR > 1 { printf "%s,pw%06d.%s\n", $1, (NR * 7919) % 1000000, $1 }' "$DIR/hotp-bench.csv" >"$DIR/passwords.csv"
head -n1 "$DIR/passwords.csv" >"$DIR/probe.csv"

# -------------------------------------------------------- FreeRADIUS config

FR_DIR=$DIR/freeradius
mkdir -p "$FR_DIR/log" "$FR_DIR/run"
while ! udp_port_free "$FR_PORT"; do
    FR_PORT=$((FR_PORT + 1))
    [ "$FR_PORT" -lt 18200 ] || { echo "no free UDP port in 18120..18199" >&2; exit 1; }
done
awk -F, '{ printf "%s\tCleartext-Password := \"%s\"\n", $1, $2 }' "$DIR/passwords.csv" >"$FR_DIR/users"
cat >"$FR_DIR/radiusd.conf" <<EOF
# Minimal FreeRADIUS 3.2 configuration written by bench/compare-freeradius.sh.
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = \${exec_prefix}/sbin
logdir = $FR_DIR/log
raddbdir = $FR_DIR
radacctdir = \${logdir}/radacct
name = freeradius
confdir = \${raddbdir}
modconfdir = \${confdir}/mods-config
run_dir = $FR_DIR/run
db_dir = \${raddbdir}
libdir = /usr/lib/freeradius
pidfile = \${run_dir}/\${name}.pid

max_request_time = 30
# Answers are kept this long to resend them to retransmissions (as radotpd's
# duplicate cache does), so max_requests must hold cleanup_delay x req/s.
cleanup_delay = 5
max_requests = 1048576
hostname_lookups = no
proxy_requests = no

log {
    destination = stdout
    colourise = no
    stripped_names = no
    auth = no
    auth_badpass = no
    auth_goodpass = no
}

security {
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}

client bench {
    ipaddr = 127.0.0.1
    secret = $SECRET
    require_message_authenticator = yes
    nas_type = other
}

thread pool {
    start_servers = $FR_THREADS
    max_servers = $FR_THREADS
    min_spare_servers = 1
    max_spare_servers = $FR_THREADS
    max_requests_per_server = 0
    max_queue_size = 65536
    auto_limit_acct = no
}

modules {
    files {
        filename = \${confdir}/users
    }
    pap {
    }
}

instantiate {
}

server default {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = $FR_PORT
        recv_buff = 4194304
    }
    authorize {
        files
        pap
    }
    authenticate {
        Auth-Type PAP {
            pap
        }
    }
    # FreeRADIUS 3.2.1 signs a reply with Message-Authenticator only when
    # the reply list holds one (3.2.5 and later do it by default, after
    # BlastRADIUS). radotpd signs every reply, and radotp-bench wants it as
    # the first attribute: add it (the reply lists are otherwise empty).
    post-auth {
        update reply {
            &Message-Authenticator := 0x00
        }
        Post-Auth-Type REJECT {
            update reply {
                &Message-Authenticator := 0x00
            }
        }
    }
}
EOF

echo "== checking the FreeRADIUS configuration"
if ! timeout 60 "$FREERADIUS" -C -X -d "$FR_DIR" >"$DIR/freeradius-check.log" 2>&1; then
    tail -n 40 "$DIR/freeradius-check.log" >&2
    echo "freeradius -C rejected the configuration" >&2
    exit 1
fi

echo "== starting FreeRADIUS on 127.0.0.1:$FR_PORT ($FR_THREADS threads)"
t0=$(now)
"$FREERADIUS" -f -d "$FR_DIR" -l stdout >"$DIR/freeradius.log" 2>&1 &
FR_PID=$!
FR_SERVER=127.0.0.1:$FR_PORT
READY=
for _ in $(seq 1 150); do
    if ! kill -0 "$FR_PID" 2>/dev/null; then
        echo "freeradius exited during start-up:" >&2
        cat "$DIR/freeradius.log" >&2
        exit 1
    fi
    if timeout 5 "$BIN/radotp-bench" --server "$FR_SERVER" --secret "$SECRET" --mode password \
        --users "$DIR/probe.csv" --concurrency 1 --count 1 --timeout-ms 200 --json >"$DIR/probe.json" 2>/dev/null &&
        [ "$(json_field accepts "$DIR/probe.json")" = 1 ]; then
        READY=1
        break
    fi
    sleep 0.2
done
[ -n "$READY" ] || { echo "FreeRADIUS did not accept a probe in 30 s" >&2; cat "$DIR/freeradius.log" >&2; exit 1; }
FR_STARTUP_MS=$(elapsed_ms "$t0" "$(now)")
echo "freeradius pid $FR_PID on $FR_SERVER (answering in ${FR_STARTUP_MS} ms)"
mem_row "started, $USERS users loaded" "$FR_PID" FreeRADIUS

# ---------------------------------------------------------------- radotpd

radotpd_bench_config "$DIR" "$SECRET" "$LOG_LEVEL" 16 "$DURABILITY" hotp "$DIR/hotp-users.yaml" >"$DIR/radotp.yaml"

echo "== starting radotpd"
t0=$(now)
"$BIN/radotpd" --config "$DIR/radotp.yaml" 2>"$DIR/radotpd.log" &
DAEMON_PID=$!
wait_radotpd_ready "$DAEMON_PID" "$DIR/radotpd.log" "$DIR/admin.sock" "$BIN/radotpctl" || exit 1
RADOTP_STARTUP_MS=$(elapsed_ms "$t0" "$(now)")
RADOTP_SERVER=127.0.0.1:$PORT
echo "radotpd pid $DAEMON_PID on $RADOTP_SERVER (ready in ${RADOTP_STARTUP_MS} ms)"
CTL=("$BIN/radotpctl" --socket "$DIR/admin.sock")
mem_row "started, empty store" "$DAEMON_PID" radotpd
t0=$(now)
timeout 600 "${CTL[@]}" token import "$DIR/hotp-import.csv"
IMPORT_MS=$(elapsed_ms "$t0" "$(now)")
mem_row "after importing $USERS tokens" "$DAEMON_PID" radotpd

# -------------------------------------------------------------------- runs

BENCH_COMMON=(--secret "$SECRET" --timeout-ms 2000 --json)
declare -A CPU_S CPU_US BENCH_CORES
run() { # label, server pid, then radotp-bench arguments
    local label=$1 pid=$2
    shift 2
    echo "-- $label"
    local perf_target=
    if [ -n "${PERF:-}" ] && command -v perf >/dev/null && [[ $label == *-c64 ]]; then
        perf_target=$DIR/perf-$label
        perf record -F 499 --call-graph "$PERF_CALLGRAPH" -p "$pid" -o "$perf_target.data" \
            -- sleep "$RUN_SECONDS" >"$perf_target.log" 2>&1 &
        PERF_PID=$!
    fi
    local before after
    before=$(cpu_ticks "$pid")
    timeout $((RUN_SECONDS + 60)) /usr/bin/time -o "$DIR/bench-time" -f "%U %S" \
        "$BIN/radotp-bench" "${BENCH_COMMON[@]}" --label "$label" "$@" >"$DIR/last.json"
    after=$(cpu_ticks "$pid")
    cat "$DIR/last.json"
    cat "$DIR/last.json" >>"$DIR/reports.jsonl"
    local replies elapsed
    replies=$(json_field replies "$DIR/last.json")
    elapsed=$(json_field elapsed_s "$DIR/last.json")
    CPU_S[$label]=$(awk -v b="$before" -v a="$after" -v t="$TICKS" 'BEGIN { printf "%.2f", (a - b) / t }')
    CPU_US[$label]=$(awk -v b="$before" -v a="$after" -v t="$TICKS" -v r="$replies" \
        'BEGIN { printf "%.0f", (r > 0 ? (a - b) / t / r * 1e6 : 0) }')
    BENCH_CORES[$label]=$(awk -v e="$elapsed" -v u="$(cut -d' ' -f1 "$DIR/bench-time")" \
        -v s="$(cut -d' ' -f2 "$DIR/bench-time")" 'BEGIN { printf "%.2f", (u + s) / e }')
    if [ -n "$perf_target" ]; then
        wait "$PERF_PID" || true
        PERF_PID=
        {
            echo "# perf record -F 499 --call-graph $PERF_CALLGRAPH -p <pid> during $label"
            echo "## self time (flat), top 40"
            perf report -i "$perf_target.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
                grep '%' | head -n 40 || true
            echo "## including callees, top 60"
            perf report -i "$perf_target.data" --children --sort sym --stdio -g none 2>/dev/null |
                grep '%' | head -n 60 || true
        } >"$perf_target.txt"
    fi
}

# The no-work ceiling: radotp-bench's own responder checks Message-Authenticator
# and signs an Access-Accept (radotp's packet code), nothing else.
CEILING_PORT=18230
while ! udp_port_free "$CEILING_PORT"; do
    CEILING_PORT=$((CEILING_PORT + 1))
    [ "$CEILING_PORT" -lt 18300 ] || { echo "no free UDP port in 18230..18299" >&2; exit 1; }
done
"$BIN/radotp-bench" ceiling --listen "127.0.0.1:$CEILING_PORT" --secret "$SECRET" >"$DIR/ceiling.log" 2>&1 &
CEILING_PID=$!
CEILING_SERVER=127.0.0.1:$CEILING_PORT
sleep 0.3

LABELS=()
echo "== load runs, $RUN_SECONDS s each, the ceiling, FreeRADIUS then radotpd at each concurrency"
for c in $CONCURRENCIES; do
    run "ceiling-c$c" "$CEILING_PID" --server "$CEILING_SERVER" --mode password --users "$DIR/passwords.csv" \
        --concurrency "$c" --duration "$RUN_SECONDS"
    run "freeradius-c$c" "$FR_PID" --server "$FR_SERVER" --mode password --users "$DIR/passwords.csv" \
        --concurrency "$c" --duration "$RUN_SECONDS"
    run "radotpd-c$c" "$DAEMON_PID" --server "$RADOTP_SERVER" --mode hotp --tokens "$DIR/hotp-bench.csv" \
        --save-tokens "$DIR/hotp-bench.csv" --concurrency "$c" --duration "$RUN_SECONDS"
    LABELS+=("c$c")
done
rc=$REJECT_CONCURRENCY
run "freeradius-reject-c$rc" "$FR_PID" --server "$FR_SERVER" --mode password --users "$DIR/passwords.csv" \
    --concurrency "$rc" --duration "$RUN_SECONDS" --wrong-share 1.0
run "radotpd-reject-c$rc" "$DAEMON_PID" --server "$RADOTP_SERVER" --mode hotp --tokens "$DIR/hotp-bench.csv" \
    --concurrency "$rc" --duration "$RUN_SECONDS" --wrong-share 1.0
LABELS+=("reject-c$rc")

mem_row "after the load runs" "$FR_PID" FreeRADIUS
mem_row "after the load runs" "$DAEMON_PID" radotpd
FR_CPU_TOTAL=$(awk -v c="$(cpu_ticks "$FR_PID")" -v t="$TICKS" 'BEGIN { printf "%.2f", c / t }')
RADOTP_CPU_TOTAL=$(awk -v c="$(cpu_ticks "$DAEMON_PID")" -v t="$TICKS" 'BEGIN { printf "%.2f", c / t }')
FR_THREADS_SEEN=$(awk '/^Threads:/ { print $2 }' "/proc/$FR_PID/status")
RADOTP_THREADS_SEEN=$(awk '/^Threads:/ { print $2 }' "/proc/$DAEMON_PID/status")

echo "== stopping both servers"
stop_pid "$CEILING_PID" radotp-bench-ceiling
CEILING_PID=
stop_pid "$FR_PID" freeradius
FR_PID=
stop_pid "$DAEMON_PID" radotpd
DAEMON_PID=
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------ tables

report_of() { grep "\"label\":\"$1\"" "$DIR/reports.jsonl" | head -n1; }
num() { # key, label
    report_of "$2" | sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p" | head -n1
}
lat() { # p50|p99|max, label
    report_of "$2" | sed -n "s/.*\"latency_ms\":{[^}]*\"$1\":\([0-9.eE+-]*\).*/\1/p" | head -n1
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
errors() { # timeouts / bad / unexpected accepts+rejects
    echo "$(num timeouts "$1")/$(num bad_replies "$1")/$(($(num unexpected_accepts "$1") + $(num unexpected_rejects "$1")))"
}

{
    echo
    echo "## Machine"
    echo
    echo "- nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1); RAM: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo); kernel $(uname -r)"
    echo "- shared machine: load average $LOAD_BEFORE before the script, $LOAD_AFTER after"
    echo "- FreeRADIUS ${FR_VERSION:-?} ($FREERADIUS), files + pap, $USERS users, $FR_THREADS worker threads ($FR_THREADS_SEEN threads in all), reject_delay 0, cleanup_delay 5, recv_buff 4 MiB"
    echo "- radotpd ($BIN/radotpd), $USERS hw-hotp tokens one per user, static directory, store.durability $DURABILITY, log level $LOG_LEVEL, $RADOTP_THREADS_SEEN threads"
    echo "- radotp-bench: ${RUN_SECONDS} s per run, timeout 2000 ms, never retransmitted; password mode against FreeRADIUS, hotp mode against radotpd"
    echo
    echo "## Against the ceiling (a responder that only checks Message-Authenticator and signs an Accept)"
    echo
    echo "| load | ceiling req/s | FreeRADIUS req/s (share of the ceiling) | radotpd req/s (share of the ceiling) | ceiling CPU µs/req |"
    echo "|---|---:|---:|---:|---:|"
    for l in "${LABELS[@]}"; do
        case $l in reject-*) continue ;; esac
        c=ceiling-$l
        printf '| %s in flight | %.0f | %.0f (%s) | %.0f (%s) | %s |\n' "${l#c}" \
            "$(num requests_per_s "$c")" "$(num requests_per_s "freeradius-$l")" \
            "$(ratio "$(num requests_per_s "freeradius-$l")" "$(num requests_per_s "$c")")" \
            "$(num requests_per_s "radotpd-$l")" \
            "$(ratio "$(num requests_per_s "radotpd-$l")" "$(num requests_per_s "$c")")" "${CPU_US[$c]}"
    done
    echo
    echo "## Side by side (radotpd / FreeRADIUS)"
    echo
    echo "| load | FreeRADIUS req/s | radotpd req/s | req/s ratio | FreeRADIUS p50 / p99 ms | radotpd p50 / p99 ms | p99 ratio | FreeRADIUS CPU µs/req | radotpd CPU µs/req | errors FR / radotpd (timeouts/bad/unexpected) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for l in "${LABELS[@]}"; do
        f=freeradius-$l
        r=radotpd-$l
        name=$l
        case $l in
            reject-*) name="${l#reject-c} in flight, all wrong (password / OTP)" ;;
            c*) name="${l#c} in flight" ;;
        esac
        printf '| %s | %.0f | %.0f | %s | %s / %s | %s / %s | %s | %s | %s | %s / %s |\n' \
            "$name" "$(num requests_per_s "$f")" "$(num requests_per_s "$r")" \
            "$(ratio "$(num requests_per_s "$r")" "$(num requests_per_s "$f")")" \
            "$(lat p50 "$f")" "$(lat p99 "$f")" "$(lat p50 "$r")" "$(lat p99 "$r")" \
            "$(ratio "$(lat p99 "$r")" "$(lat p99 "$f")")" \
            "${CPU_US[$f]}" "${CPU_US[$r]}" "$(errors "$f")" "$(errors "$r")"
    done
    echo
    echo "## Every run (radotp-bench)"
    echo
    "$BIN/radotp-bench" table "$DIR/reports.jsonl"
    echo
    echo "## CPU per run"
    echo
    echo "| run | server CPU s | server cores busy | server CPU µs per request | radotp-bench cores busy |"
    echo "|---|---:|---:|---:|---:|"
    for l in "${LABELS[@]}"; do
        for s in freeradius radotpd; do
            k=$s-$l
            printf '| %s | %s | %s | %s | %s |\n' "$k" "${CPU_S[$k]}" \
                "$(awk -v c="${CPU_S[$k]}" -v e="$(num elapsed_s "$k")" 'BEGIN { printf "%.2f", c / e }')" \
                "${CPU_US[$k]}" "${BENCH_CORES[$k]}"
        done
    done
    echo
    echo "Total CPU time over the whole script (start-up, import, all runs): FreeRADIUS ${FR_CPU_TOTAL} s, radotpd ${RADOTP_CPU_TOTAL} s."
    echo
    echo "## Memory"
    echo
    echo "| server | when | VmRSS MiB | VmHWM MiB |"
    echo "|---|---|---:|---:|"
    printf '%s\n' "${MEM_ROWS[@]}"
    echo
    echo "Start-up: FreeRADIUS answered its first request ${FR_STARTUP_MS} ms after exec; radotpd was ready in ${RADOTP_STARTUP_MS} ms and imported $USERS tokens in ${IMPORT_MS} ms."
} | tee "$DIR/tables.md"

if [ -n "${OUT:-}" ]; then
    cp "$DIR/tables.md" "$OUT"
    cp "$DIR/reports.jsonl" "$OUT.jsonl"
    for f in "$DIR"/perf-*.txt; do
        if [ -f "$f" ]; then
            cp "$f" "$OUT.${f##*/}"
        fi
    done
fi
