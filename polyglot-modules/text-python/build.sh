#!/bin/sh
# Builds text-python's environment: .venv with the polyglot Python SDK (editable, from
# ../../python, so SDK changes need no rebuild) and msgpack. polyglot-host runs it from
# this folder; running it again is a quick no-op once built from this same build.sh.
set -eu
cd "$(dirname "$0")"

stamp=.venv/.polyglot-build
want="$(cksum < build.sh)"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    .venv/bin/python -c 'import polyglot_worker, msgpack' 2>/dev/null; then
    exit 0
fi

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
    echo "text-python needs python3 >= 3.9 on PATH" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! python3 -m venv .venv; then
        echo "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
        rm -rf .venv
        exit 1
    fi
fi
if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ../../python 'msgpack>=1.0'; then
    echo "installing the polyglot SDK and msgpack into .venv failed" >&2
    rm -rf .venv # so the next start builds again instead of trusting a half-made .venv
    exit 1
fi
printf '%s\n' "$want" > "$stamp"
