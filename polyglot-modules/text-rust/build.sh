#!/bin/sh
# The worker binary, for when the host runs this module as a worker process.
set -eu
cd "$(dirname "$0")"
exec sh ../../scripts/build-native-worker.sh
