#!/usr/bin/env bash
# Installs dependencies, configures a fresh Release build in build-test/, builds everything
# (the CUDA backend and its tests too when nvcc is found) and runs the whole suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DSGF_BUILD_TESTS=ON -DSGF_BUILD_EXAMPLES=ON -DSGF_BUILD_BENCHMARKS=OFF
cmake --build build-test -j"$jobs"
cd build-test && ctest --output-on-failure -j"$jobs" --timeout 900
