#!/bin/sh
# Builds a worker binary of this workspace with cargo and copies it into bin/ of the
# module folder this is run from: the build step of the bundled modules whose handler is
# compiled into the host (crypto-rust, compress-rust, text-rust: polyglot-native;
# dsp-cpp: polyglot-dsp), used when the host runs them as workers rather than in its
# own process.
#
#   build-native-worker.sh [PACKAGE]     (default: polyglot-native; the binary has the
#                                         package's name)
#
# POLYGLOT_CARGO_PROFILE picks the cargo profile (default: dev, which shares the host's
# own debug build; use release for benchmarks).
set -eu
package="${1:-polyglot-native}"
profile="${POLYGLOT_CARGO_PROFILE:-dev}"
cargo build --quiet --profile "$profile" -p "$package" --bin "$package" \
    --message-format=json-render-diagnostics > .build.json
exe=$(sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' .build.json | tail -n 1)
rm -f .build.json
[ -n "$exe" ] || { echo "build-native-worker.sh: cargo did not report the $package executable" >&2; exit 1; }
mkdir -p bin
cp "$exe" "bin/$package.tmp" && mv "bin/$package.tmp" "bin/$package"
