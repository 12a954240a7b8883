#!/usr/bin/env bash
# Times `radotpctl token import` of COUNT tokens (default 100,000) against a
# release radotpd, for each file kind: CSV, PSKC plain, PSKC encrypted under a
# pre-shared key, PSKC encrypted under a password (PBKDF2). Each kind gets a
# fresh daemon and store. Also times a dry run and a re-import of the same
# file (every serial skipped). Not a test: it prints figures.
#
#   bench/import.sh                # 100,000 tokens
#   COUNT=20000 bench/import.sh
#
# Figures are recorded in docs/performance.md (section "Import").
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-100000}
PSK=000102030405060708090a0b0c0d0e0f
PASSWORD=bench-password

cargo build --release --quiet --workspace --bins --example import_sample
bin=target/release
work=$(mktemp -d)
daemon_pid=""

cleanup() {
  if [ -n "$daemon_pid" ]; then
    kill "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  [ -n "${KEEP:-}" ] && cp "$work/radotpd.log" /tmp/bench-radotpd.log; rm -rf "$work"
}
trap cleanup EXIT

start_daemon() {
  rm -rf "$work/db" "$work/admin.sock"
  cat > "$work/radotp.yaml" <<EOF
radius:
  listen: ["127.0.0.1:0"]
  clients:
    - { name: local, address: 127.0.0.1/32, secret: "bench-secret" }
store:
  path: $work/db
  key_file: $work/master.key
admin:
  socket: $work/admin.sock
directory:
  kind: static
  users:
    - { name: alice }
token_types:
  - { id: hw-hotp, label: "Hardware token (HOTP)", algorithm: hotp }
  - { id: hw-totp, label: "Hardware token (TOTP)", algorithm: totp }
log:
  level: warn
EOF
  "$bin/radotpd" --config "$work/radotp.yaml" 2>>"$work/radotpd.log" &
  daemon_pid=$!
  for _ in $(seq 100); do
    "$bin/radotpctl" --socket "$work/admin.sock" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "radotpd did not start:" >&2
  cat "$work/radotpd.log" >&2
  exit 1
}

stop_daemon() {
  kill "$daemon_pid"
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=""
}

# Runs radotpctl with the given arguments; prints the wall time in seconds.
timed() {
  local start end
  start=$(date +%s.%N)
  "$bin/radotpctl" --socket "$work/admin.sock" "$@" >"$work/out" 2>"$work/err" || {
    echo "radotpctl $* failed:" >&2
    cat "$work/out" "$work/err" >&2
    exit 1
  }
  end=$(date +%s.%N)
  echo "$start $end" | awk '{ printf "%.2f", $2 - $1 }'
}

printf '%s tokens per file; %s cores; %s\n' "$COUNT" "$(nproc)" "$(uname -sr)"
printf '%-22s %10s %10s %10s %10s\n' "file" "MiB" "dry run s" "import s" "again s"

run_case() {
  local name=$1 file=$2
  shift 2
  start_daemon
  local size dry import again
  size=$(du -m "$file" | cut -f1)
  dry=$(timed token import "$file" --dry-run "$@")
  import=$(timed token import "$file" "$@")
  grep -q "^imported $COUNT, skipped 0, invalid 0" "$work/out" || { cat "$work/out" "$work/err" >&2; exit 1; }
  again=$(timed token import "$file" "$@")
  grep -q "^imported 0, skipped $COUNT, invalid 0" "$work/out" || { cat "$work/out" >&2; exit 1; }
  printf '%-22s %10s %10s %10s %10s\n' "$name" "$size" "$dry" "$import" "$again"
  stop_daemon
}

"$bin/examples/import_sample" --format csv --count "$COUNT" > "$work/tokens.csv"
"$bin/examples/import_sample" --format pskc --count "$COUNT" > "$work/plain.pskc"
"$bin/examples/import_sample" --format pskc --count "$COUNT" --psk "$PSK" > "$work/psk.pskc"
"$bin/examples/import_sample" --format pskc --count "$COUNT" --password "$PASSWORD" --iterations 100000 \
  > "$work/password.pskc"
echo "$PSK" > "$work/transport.key"
echo "$PASSWORD" > "$work/password.txt"
chmod 600 "$work/transport.key" "$work/password.txt"

run_case "CSV" "$work/tokens.csv"
run_case "PSKC plain" "$work/plain.pskc"
run_case "PSKC pre-shared key" "$work/psk.pskc" --psk-file "$work/transport.key"
run_case "PSKC PBKDF2 password" "$work/password.pskc" --password-file "$work/password.txt"
