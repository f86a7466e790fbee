#!/usr/bin/env bash
# The run command: starts x8-api on X8_BIND (default 127.0.0.1:8080) against DATABASE_URL
# (default the local server's database x8, created if missing; migrations applied).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
ensure_cargo
if [ -z "${DATABASE_URL:-}" ]; then
  ensure_postgres
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/x8
fi
: "${X8_JWT_SECRET:?X8_JWT_SECRET is required (at least 32 bytes), e.g. export X8_JWT_SECRET=\$(openssl rand -hex 32)}"
exec cargo run --locked --release -p x8-api --bin x8-api -- "$@"
