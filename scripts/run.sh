#!/usr/bin/env bash
# The run command: starts x8-api on X8_BIND (default 127.0.0.1:8080) against DATABASE_URL
# (default the local server's database x8, created if missing; migrations applied).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
use_local_database x8
: "${X8_MASTER_KEY:?X8_MASTER_KEY is required (32 random bytes, base64), e.g. export X8_MASTER_KEY=\$(openssl rand -base64 32); keep it: it opens the stored data keys}"
: "${X8_JWT_SECRET:?X8_JWT_SECRET is required (at least 32 bytes), e.g. export X8_JWT_SECRET=\$(openssl rand -hex 32)}"
exec cargo run --locked -p x8-api --bin x8-api -- "$@"
