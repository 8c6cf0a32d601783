#!/usr/bin/env bash
# Fuzzes the wire decoders (newline JSON, MessagePack frames, the handshake) and the
# module.json parser with cargo-fuzz: installs cargo-fuzz when missing, seeds the corpus
# from tests/vectors/ and the bundled manifests, builds every target once, then runs each
# for a fixed number of runs (or a time). Fails when a target finds a crash, a hang or an
# allocation out of bounds, printing the input that did it (fuzz/artifacts/<target>/...).
#
#   scripts/fuzz.sh                      # the test command's short run (RUNS per target)
#   scripts/fuzz.sh 1000000              # a million runs per target
#   scripts/fuzz.sh --time 300           # five minutes per target
#   scripts/fuzz.sh --time 600 manifest  # only some targets
#   scripts/fuzz.sh 50000 -- -max_len=65536   # extra libFuzzer options after --
#
# Needs the nightly toolchain (rustup's `nightly`): sanitizer and coverage instrumentation
# are nightly-only. A missing toolchain is a failure, never a skip. One process per target
# at a time (no -jobs/-workers): the machines have two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Small enough that the whole script, building from scratch, takes about 5 minutes on two
# cores; `scripts/fuzz.sh 1000000` or `--time` to fuzz for real.
DEFAULT_RUNS=4000
CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS=(json_frames msgpack_frames handshake manifest)

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

runs=$DEFAULT_RUNS
seconds=""
targets=()
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --time)
            [ $# -ge 2 ] || { echo "error: --time needs a number of seconds" >&2; exit 2; }
            seconds=$2
            shift 2
            ;;
        --) shift; extra=("$@"); break ;;
        *[!0-9]*)
            case " ${ALL_TARGETS[*]} " in
                *" $1 "*) targets+=("$1") ;;
                *) echo "error: unknown target or option '$1' (targets: ${ALL_TARGETS[*]})" >&2; exit 2 ;;
            esac
            shift
            ;;
        *) runs=$1; shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
if [ -n "$seconds" ]; then
    case "$seconds" in '' | *[!0-9]*) echo "error: --time takes whole seconds, not '$seconds'" >&2; exit 2 ;; esac
fi

step() { printf '\n==> %s\n' "$*"; }

command -v cargo >/dev/null 2>&1 ||
    { echo "error: cargo is required (the Rust toolchain, https://rustup.rs)" >&2; exit 1; }
command -v rustup >/dev/null 2>&1 ||
    { echo "error: rustup is required, with the nightly toolchain (cargo +nightly)" >&2; exit 1; }
# Never let `cargo +nightly` download a toolchain: only an installed one counts.
export RUSTUP_AUTO_INSTALL=0
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "error: the nightly Rust toolchain is not installed; cargo-fuzz needs it for its" >&2
    echo "       sanitizer and coverage instrumentation (rustup toolchain install nightly)" >&2
    exit 1
fi
cargo +nightly --version >/dev/null ||
    { echo "error: the nightly toolchain is listed by rustup but 'cargo +nightly' fails" >&2; exit 1; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    step "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

# Its own target dir inside the repo's (ignored) target/, away from the main build.
export CARGO_TARGET_DIR="$root/target/fuzz"
# The same flags for build and run, or `cargo fuzz run` rebuilds everything.
# --debug-assertions: overflow checks and debug_assert!s on. --codegen-units 16: cargo-fuzz
# defaults to 1, which makes building polyglot's dependencies from scratch minutes slower.
flags=(--debug-assertions --codegen-units 16)
# -timeout: one input taking 10 s is a hang. -malloc_limit_mb: inputs are at most a few
# KiB, so one allocation of 256 MiB is unbounded (a length trusted from the input).
libfuzzer=(-max_len=4096 -timeout=10 -malloc_limit_mb=256 -print_final_stats=1)
if [ -n "$seconds" ]; then
    libfuzzer+=(-max_total_time="$seconds")
else
    # A fixed seed: the test command's short run mutates the same way every time, so it
    # fails when a change breaks a property, never by luck. FUZZ_SEED=0 (libFuzzer:
    # random) or --time explore further.
    libfuzzer+=(-runs="$runs" -seed="${FUZZ_SEED:-1}")
fi

step "seeding fuzz/corpus from tests/vectors and polyglot-modules"
fuzz/seed.sh

step "building the fuzz targets (cargo +nightly fuzz build)"
cargo +nightly fuzz build "${flags[@]}"

logs="$CARGO_TARGET_DIR/logs"
mkdir -p "$logs"
passed=0
failed=0
found=()
for t in "${targets[@]}"; do
    if [ -n "$seconds" ]; then step "fuzzing $t for ${seconds}s"; else step "fuzzing $t for $runs runs"; fi
    mkdir -p "fuzz/artifacts/$t"
    dict=()
    [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="$root/fuzz/dict/$t.dict")
    marker=$(mktemp)
    if cargo +nightly fuzz run "${flags[@]}" "$t" -- "${libfuzzer[@]}" ${dict[@]+"${dict[@]}"} \
        ${extra[@]+"${extra[@]}"} >"$logs/$t.log" 2>&1; then
        grep -E '^Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb' "$logs/$t.log" || true
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $t (full log: $logs/$t.log)"
        # The panic (message and the top of its backtrace), or what libFuzzer reported.
        grep -E -A8 "panicked at" "$logs/$t.log" | head -24 || true
        grep -E "^==[0-9]+== ERROR|^SUMMARY:|Test unit written" "$logs/$t.log" || tail -20 "$logs/$t.log"
        new=$(find "fuzz/artifacts/$t" -type f -newer "$marker" | sort)
        if [ -n "$new" ]; then
            for a in $new; do
                echo "artifact: $a"
                found+=("$a")
            done
        else
            echo "no artifact written (see the log above)"
        fi
    fi
    rm -f "$marker"
done

echo
if [ ${#found[@]} -gt 0 ]; then
    echo "inputs that fail (replay one with: cargo +nightly fuzz run ${flags[*]} <target> <file>):"
    printf '  %s\n' "${found[@]}"
fi
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
