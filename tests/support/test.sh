#!/usr/bin/env bash
# The README's test command: installs what a fresh machine lacks (as root, with apt), then runs
# the whole suite. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The toolchain rust-toolchain.toml pins (rustup fetches it once). The wasm32-wasip2 target is
# deliberately not added here: the README's commands add it themselves when it is missing.
rustup toolchain install 1.95.0 --profile minimal --component rustfmt

# Installs Debian packages, or says in one line which are missing where it cannot.
install_packages() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "the tests need these packages, and only root with apt can install them here: $*" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# PostgreSQL binaries for the Postgres tests: tests/it/common/postgres.rs starts a throwaway
# cluster as the unprivileged `postgres` user (Postgres refuses to run as root).
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  install_packages postgresql
fi
# Debian's Chromium and its WebDriver for tests/it/server/web_ui/, which drives the built-in
# UI in a real headless browser.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  install_packages chromium chromium-driver
fi
id postgres >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash postgres

cargo test --workspace "$@"
