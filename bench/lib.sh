# Shared by the bench scripts: small helpers and the wait for radotpd.
# Source it; it defines functions only.

now() { date +%s.%N; }
elapsed_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# kib_of PID FIELD: a field of /proc/PID/status in KiB (VmRSS, VmHWM), 0 if gone.
kib_of() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# wait_radotpd_ready PID LOG SOCKET RADOTPCTL: waits up to 30 s until radotpd
# (started by the caller as PID, logging to LOG) is ready, and sets PORT to
# its RADIUS port on 127.0.0.1. The "radotpd ready" line is at info level;
# with a quieter log level the admin socket is asked instead and the port is
# read from `ss`. Returns 1 (with the log on stderr) when it is not ready or
# has exited.
wait_radotpd_ready() {
    local pid=$1 log=$2 sock=$3 ctl=$4
    PORT=
    for _ in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "radotpd exited during start-up:" >&2
            cat "$log" >&2
            return 1
        fi
        if grep -q "radotpd ready" "$log" ||
            { [ -S "$sock" ] && timeout 5 "$ctl" --socket "$sock" ping >/dev/null 2>&1; }; then
            PORT=$(sed -n 's/.*listening for RADIUS on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n1)
            if [ -z "$PORT" ]; then
                PORT=$(ss -Hulnp 2>/dev/null |
                    awk -v p="pid=$pid," 'index($0, p) && $4 ~ /^127\.0\.0\.1:/ { sub(/.*:/, "", $4); print $4; exit }')
            fi
            [ -n "$PORT" ] && return 0
        fi
        sleep 0.1
    done
    echo "radotpd did not become ready in 30 s" >&2
    cat "$log" >&2
    return 1
}

# stop_pid PID NAME: SIGTERM, waits up to 20 s, then SIGKILL (saying so).
stop_pid() {
    local pid=$1 name=$2
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$name (pid $pid) did not stop within 20 s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# radotpd_bench_config DIR SECRET LOG_LEVEL CACHE_MIB DURABILITY TOKEN_TYPES USERS_FILE...:
# prints the configuration the bench scripts run radotpd with: the shape of
# conf/radotp.yaml on 127.0.0.1 (a port the kernel picks), store and socket
# under DIR, the static users listed in USERS_FILE..., and TOKEN_TYPES
# ("hotp" or "hotp totp"). max_failures is raised so that reject runs
# measure the wrong-OTP path instead of tokens locked after 10 failures.
radotpd_bench_config() {
    local dir=$1 secret=$2 log_level=$3 cache_mib=$4 durability=$5 types=$6
    shift 6
    cat <<EOF
radius:
  listen: ["127.0.0.1:0"]
  clients:
    - name: bench
      address: 127.0.0.1/32
      secret: "$secret"
      require_message_authenticator: true

auth:
  max_failures: 1000000000
  hotp_window: 10
  totp_window: 1
  reset_window: 1000

store:
  path: $dir/db
  key_file: $dir/master.key
  cache_mib: $cache_mib
  durability: $durability

admin:
  socket: $dir/admin.sock
  allowed_uids: []
  allowed_groups: []

directory:
  kind: static
  users:
EOF
    cat "$@"
    echo
    echo "token_types:"
    echo '  - { id: hw-hotp, label: "Hardware token (HOTP)", algorithm: hotp, digits: 6, hash: sha1 }'
    case " $types " in
    *" totp "*) echo '  - { id: hw-totp, label: "Hardware token (TOTP)", algorithm: totp, digits: 6, period: 30, hash: sha1 }' ;;
    esac
    echo
    echo "log:"
    echo "  level: $log_level"
}
