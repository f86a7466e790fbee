#!/usr/bin/env bash
# `x8-replay simulate` against a server of its own: builds x8-api and x8-replay, makes a
# fresh database, starts the server with the vendor stand-ins and the secrets the run
# signs webhooks with, creates an ADMIN, then runs the scenario and its checks (see
# `cargo run -p x8-replay -- simulate --help`). The database is dropped at the end.
#
#   scripts/simulate.sh [--scale 0.04] [--seed 1] [--crash] [--release]
#
# --crash kills the server with SIGKILL in the middle of the run and starts it again: the
# run's requests wait for it, and the same checks must pass (every 2xx in the log, nothing
# applied twice, the live read models equal to a rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh

scale=0.04 seed=1 crash=0 profile=debug
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --crash) crash=1; shift ;;
    --release) profile=release; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

use_local_database postgres
command -v psql >/dev/null 2>&1 || { echo "psql is missing (Debian: apt-get install postgresql-client)" >&2; exit 1; }
server_db="${DATABASE_URL%/*}"
admin_url="$server_db/postgres"
database="x8_simulate_$$"
export DATABASE_URL="$server_db/$database"

release_flag=()
[ "$profile" = release ] && release_flag=(--release)
cargo build --locked "${release_flag[@]}" -p x8-api -p x8-replay
bin="target/$profile"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  # Reaped here, so bash does not report the killed job.
  if [ -n "$server_pid" ]; then { kill -9 "$server_pid" && wait "$server_pid"; } 2>/dev/null || true; fi
  psql -q "$admin_url" -c "drop database if exists $database with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -q "$admin_url" -c "create database $database" >/dev/null

port=18180 vendors=18190
export X8_BIND="127.0.0.1:$port"
export X8_JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export X8_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
export X8_WAHA_URL="http://127.0.0.1:$vendors" X8_WAHA_API_KEY=simulated
export X8_WAHA_WEBHOOK_URL="http://127.0.0.1:$port/api/v1/webhooks/waha"
export X8_WAHA_WEBHOOK_SECRET="waha-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export X8_STRIPE_WEBHOOK_SECRET="whsec_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# The prices the run subscribes to (x8_replay::simulate::PRICES).
export X8_STRIPE_PRICE_PLANS="price_sim_single=SINGLE,price_sim_double=DOUBLE,price_sim_growth=GROWTH"
export X8_STRIPE_API_URL="http://127.0.0.1:$vendors" X8_STRIPE_API_KEY=sk_test_simulated
export X8_TELEGRAM_API_URL="http://127.0.0.1:$vendors" X8_VIBER_API_URL="http://127.0.0.1:$vendors"
export X8_AUTH_RATE_PER_MINUTE=100000 X8_AUTH_RATE_BURST=10000
export X8_ADMIN_PASSWORD="simulated admin password"
export RUST_LOG="${RUST_LOG:-warn}"

start_server() {
  "$bin/x8-api" >>"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "the server did not start; its log:" >&2
  tail -n 50 "$work/server.log" >&2
  return 1
}

start_server
"$bin/x8-api" admin create --email admin@sim.x8.test >/dev/null
"$bin/x8-replay" simulate --url "http://127.0.0.1:$port" --vendors "127.0.0.1:$vendors" \
  --scale "$scale" --seed "$seed" --admin-email admin@sim.x8.test &
simulation=$!

if [ "$crash" = 1 ]; then
  # Kill the server once the run is well under way (a few hundred events in).
  for _ in $(seq 1 600); do
    events=$(psql -tAq "$DATABASE_URL" -c "select count(*) from events" 2>/dev/null || echo 0)
    [ "${events:-0}" -ge 400 ] && break
    kill -0 "$simulation" 2>/dev/null || break
    sleep 0.1
  done
  echo "SIGKILL to the server at $events events" >&2
  kill -9 "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  sleep 1
  start_server
  echo "server restarted" >&2
fi

status=0
wait "$simulation" || status=$?
if [ "$status" != 0 ]; then
  echo "the simulation failed; the server's log ends:" >&2
  tail -n 30 "$work/server.log" >&2
fi
exit "$status"
