#!/usr/bin/env bash
# The one test command: installs what a fresh machine lacks, then runs every suite.
#
#   ./scripts/test.sh
#
# A missing toolchain is a failure, never a skip. Rust: fmt, clippy (-D warnings), the
# workspace's unit, end-to-end and doc tests. Python: the worker SDK's pytest suite in
# the project venv (.venv), which the Rust end-to-end tests also use for Python workers.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n==> %s\n' "$*"; }
need() {
    command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required ($2) but not installed" >&2; exit 1; }
}

need cargo "the Rust toolchain, https://rustup.rs"
need python3 "CPython 3.9 or newer"

step "Python: project venv with the worker SDK and its test dependencies"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "python[test]"
export POLYGLOT_TEST_PYTHON="$root/.venv/bin/python"

step "Rust: format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "Rust: build every target once"
cargo build --workspace --all-targets --quiet

step "Rust: tests"
cargo test --workspace --quiet

step "Python: worker SDK tests"
.venv/bin/python -m pytest python/tests -q

echo
echo "all suites passed"
