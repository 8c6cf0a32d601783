#!/bin/sh
# Builds the worker with cargo and copies it into bin/ of this module folder.
# POLYGLOT_CARGO_PROFILE picks the cargo profile (default: dev, which shares the
# host's own debug build; use release for benchmarks).
set -eu
cd "$(dirname "$0")"
profile="${POLYGLOT_CARGO_PROFILE:-dev}"
cargo build --quiet --profile "$profile" --bin text-rust --message-format=json-render-diagnostics > .build.json
exe=$(sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' .build.json | tail -n 1)
rm -f .build.json
[ -n "$exe" ] || { echo "build.sh: cargo did not report the text-rust executable" >&2; exit 1; }
mkdir -p bin
cp "$exe" bin/text-rust.tmp && mv bin/text-rust.tmp bin/text-rust
