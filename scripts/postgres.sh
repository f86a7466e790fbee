# Sourced by run.sh and test.sh: makes sure a local PostgreSQL answers on 127.0.0.1:5432.
# Starts an installed-but-stopped cluster; installs Debian's postgresql when it is absent
# and we are root; otherwise says exactly what is missing.

ensure_postgres() {
  local host=127.0.0.1 port=5432
  if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$host" -p "$port"; then
    return 0
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "PostgreSQL is not installed: installing Debian's postgresql package" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
      echo "PostgreSQL is missing: install it (Debian: apt-get install postgresql) or set DATABASE_URL to a running server" >&2
      return 1
    fi
  fi
  if ! pg_isready -q -h "$host" -p "$port"; then
    echo "starting PostgreSQL cluster $(ls /etc/postgresql) main" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h "$host" -p "$port" && return 0
    sleep 1
  done
  echo "PostgreSQL did not answer on $host:$port after 30 s" >&2
  return 1
}

ensure_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  fi
  command -v cargo >/dev/null 2>&1 || { echo "cargo is missing: install Rust with rustup (https://rustup.rs)" >&2; return 1; }
}

# Sets DATABASE_URL to database $1 of the local server (started if needed), unless the
# caller already set DATABASE_URL.
use_local_database() {
  ensure_cargo
  if [ -z "${DATABASE_URL:-}" ]; then
    ensure_postgres
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$1"
  fi
}
