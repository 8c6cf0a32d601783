#!/bin/sh
# Builds the signal-cpp worker with CMake (Release; Ninja when it is installed) into build/
# of this module folder. The host runs it with this folder as the working directory.
set -eu
cd "$(dirname "$0")"
if [ -f build/CMakeCache.txt ]; then
    # Configured before: keep its generator (CMake refuses to switch in place).
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
elif command -v ninja >/dev/null 2>&1; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
else
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build build --target signal-cpp
# The host rebuilds when an input is newer than the output: mark the output current even
# when nothing needed relinking (e.g. only build.sh changed).
touch build/signal-cpp
