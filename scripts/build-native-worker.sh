#!/bin/sh
# Builds the polyglot-native worker binary with cargo and copies it into bin/ of the
# module folder this is run from (the build step of the bundled crypto-rust,
# compress-rust and text-rust modules, used when the host runs them as workers rather
# than in its own process).
#
# POLYGLOT_CARGO_PROFILE picks the cargo profile (default: dev, which shares the host's
# own debug build; use release for benchmarks).
set -eu
profile="${POLYGLOT_CARGO_PROFILE:-dev}"
cargo build --quiet --profile "$profile" -p polyglot-native --bin polyglot-native \
    --message-format=json-render-diagnostics > .build.json
exe=$(sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' .build.json | tail -n 1)
rm -f .build.json
[ -n "$exe" ] || { echo "build-native-worker.sh: cargo did not report the polyglot-native executable" >&2; exit 1; }
mkdir -p bin
cp "$exe" bin/polyglot-native.tmp && mv bin/polyglot-native.tmp bin/polyglot-native
