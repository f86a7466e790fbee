#!/usr/bin/env bash
# The test command: every test of the workspace against the local PostgreSQL. Each
# database test runs on its own fresh database made by #[sqlx::test], in parallel.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
use_local_database postgres
cargo test --workspace --locked "$@"
