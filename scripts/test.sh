#!/usr/bin/env bash
# The test command: every test of the workspace against the local PostgreSQL (each
# database test on its own fresh database made by #[sqlx::test], in parallel), then the
# simulation with a crash in the middle.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
use_local_database postgres
cargo test --workspace --locked "$@"
# The platform end to end on a small scale of the simulated traffic, with the server
# killed (SIGKILL) and restarted in the middle (see scripts/simulate.sh).
scripts/simulate.sh --scale 0.04 --seed 7 --crash
