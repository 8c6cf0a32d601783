#!/usr/bin/env bash
# The one test command: installs what a fresh machine lacks, then runs every suite.
#
#   ./scripts/test.sh
#
# A missing toolchain is a failure, never a skip. Rust: fmt, clippy (-D warnings), the
# workspace's unit, end-to-end and doc tests (with workers in Rust, Python, Go and C++),
# and a short fixed-seed run of each cargo-fuzz target (nightly toolchain). Python: the
# worker SDK's pytest suite in the project venv (.venv), which the Rust end-to-end tests
# also use for Python workers, and the pyo3 package `polyglot` built by maturin with its
# own suite. TypeScript (Node.js and npm): the worker SDK's build (tsc) and node:test
# suite, and a tsc type check of the bundled .ts files (npm ci where a package.json is),
# before the Rust tests, which run TypeScript workers through that SDK. Kubernetes: the
# manifests of deploy/kubernetes against the API's schemas (kubernetes-validate, in the
# venv). Go: vet and tests. C++: a warning-free CMake build (Debian's packages, installed
# when missing) and its GoogleTest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# One build, never rebuilt here: incremental caches would only cost disk.
export CARGO_INCREMENTAL=0

step() { printf '\n==> %s\n' "$*"; }
need() {
    command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required ($2) but not installed" >&2; exit 1; }
}

need cargo "the Rust toolchain, https://rustup.rs"
need python3 "CPython 3.11 or newer"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "error: python3 is $(python3 --version 2>&1); CPython 3.11 or newer is required" >&2; exit 1; }
need go "Go 1.25 or newer, https://go.dev/dl"
need node "Node.js 20.19 or newer, https://nodejs.org"
need npm "npm, which comes with Node.js"
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
    { echo "error: node is $(node --version); Node.js 20.19 or newer is required" >&2; exit 1; }

step "Debian packages for C++ and gRPC (installed when missing)"
# protobuf-compiler: the C++ gRPC worker's generated code, and the Go test that fails
# when go/gen is stale. libgrpc++-dev, protobuf-compiler-grpc: the C++ gRPC worker.
cpp_packages="g++ cmake ninja-build nlohmann-json3-dev libmsgpack-cxx-dev libgtest-dev protobuf-compiler protobuf-compiler-grpc libgrpc++-dev libprotobuf-dev"
missing=""
for p in $cpp_packages; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    need apt-get "Debian's package manager, to install:$missing"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi
need cmake "CMake"
need g++ "a C++17 compiler"

step "Python: project venv with the worker SDK and its test dependencies"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "python[test]" \
    "maturin==1.16.0" "pytest==9.2.0" "mypy==2.4.1" "kubernetes-validate==1.37.0"
export POLYGLOT_TEST_PYTHON="$root/.venv/bin/python"

step "TypeScript: the worker SDK (npm ci, tsc, node --test) and the bundled .ts files type-checked"
# The Rust end-to-end tests run TypeScript workers through this built SDK, and
# crypto-rust's TypeScript fallback imports what npm ci installs beside it.
(cd typescript && npm ci --no-audit --no-fund --loglevel=error && npm test)
(cd polyglot-modules/crypto-rust && npm ci --no-audit --no-fund --loglevel=error)
(cd typescript && npm run typecheck)

step "Kubernetes: deploy/kubernetes against the schemas of Kubernetes 1.30 (strict, offline)"
scripts/validate-kubernetes.sh

step "Go: vet and tests (SDK and its generated code's freshness, client, bundled module)"
(cd go && go vet ./... && go test ./...)
(cd polyglot-modules/text-go && go vet ./... && go test ./...)
# The go-plugin baseline of the gRPC worker bench: its own module, outside go.work.
(cd benches/goplugin && GOWORK=off go vet ./...)

step "C++: warning-free build and tests"
cmake -S cpp -B target/cpp -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPOLYGLOT_REQUIRE_GRPC=ON >/dev/null
cmake --build target/cpp
ctest --test-dir target/cpp --output-on-failure

step "Rust: format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "Rust: build every target once"
cargo build --workspace --all-targets --quiet

step "Rust: tests"
cargo test --workspace --quiet

step "Fuzzing: each cargo-fuzz target for a fixed number of runs (longer: scripts/fuzz.sh --time 300)"
scripts/fuzz.sh

step "Python: worker SDK tests, and a Python gRPC client calling through a real host"
.venv/bin/python -m pytest python/tests -q

step "Python: the polyglot package (pyo3), embedded and connected to a real host"
# maturin builds the extension into the shared target dir and installs it in the venv.
(cd crates/polyglot-py && VIRTUAL_ENV="$root/.venv" "$root/.venv/bin/maturin" develop --quiet)
.venv/bin/python -m pytest crates/polyglot-py/tests -q


echo
echo "all suites passed"
