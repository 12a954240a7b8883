# Shared by the bench scripts: small helpers and the wait for radotpd.
# Source it; it defines functions only.

now() { date +%s.%N; }
elapsed_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

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
