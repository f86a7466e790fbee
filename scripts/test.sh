#!/usr/bin/env bash
# The test command: every test of the workspace against the local PostgreSQL. Each
# database test runs on its own fresh database made by #[sqlx::test], in parallel.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
ensure_cargo
if [ -z "${DATABASE_URL:-}" ]; then
  ensure_postgres
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
fi
cargo test --workspace --locked "$@"
