#!/bin/sh
# Builds crypto-python's environment: .venv with the polyglot Python SDK (editable, from
# ../../python, so SDK changes need no rebuild) and the pinned packages of
# requirements.txt, as wheels only (no compiler or system library is needed; a platform
# without wheels fails here, plainly). polyglot-host runs it from this folder; running it
# again is a quick no-op once built from these same files.
set -eu
cd "$(dirname "$0")"

module=crypto-python
min_python=3.11 # blake3 1.0.11 and pycparser 3.12 need it
imports='polyglot_worker, msgpack, blake3, cryptography, argon2'

stamp=.venv/.polyglot-build
want="$(cat build.sh requirements.txt | cksum)"
# The host rebuilds when an input is newer than .venv/bin/python (a link, whose own time
# is what counts): touching it records that this build is current.
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    .venv/bin/python -c "import $imports" 2>/dev/null; then
    touch -h .venv/bin/python
    exit 0
fi

if ! python3 -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$min_python'.split('.'))))" 2>/dev/null; then
    echo "$module needs python3 >= $min_python on PATH" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! python3 -m venv .venv; then
        echo "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
        rm -rf .venv
        exit 1
    fi
fi
pip() { .venv/bin/python -m pip --quiet --disable-pip-version-check "$@"; }
if ! pip install --only-binary=:all: -r requirements.txt || ! pip install -e ../../python; then
    echo "installing requirements.txt and the polyglot SDK into .venv failed" >&2
    rm -rf .venv # so the next start builds again instead of trusting a half-made .venv
    exit 1
fi
printf '%s\n' "$want" > "$stamp"
touch -h .venv/bin/python
