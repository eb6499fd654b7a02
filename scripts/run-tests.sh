#!/usr/bin/env bash
# Installs dependencies, configures a fresh Release build in build-test/, builds everything
# (the CUDA backend and its tests too when nvcc is found; the benchmark programs, so that they keep
# compiling and their option tests run) and runs the whole suite with ctest.
# Then the hostile-input stages (docs/security.md):
#   sanitizers  the whole suite built with the CMakePresets.json "asan" preset (ASan + UBSan, GCC,
#               no CUDA) in build-asan/, run with its test preset;
#   fuzzing     scripts/run-fuzzers.sh, each libFuzzer target for SGF_FUZZ_SECONDS (default 45),
#               two at a time, in build-fuzz/.
# Every stage runs even when an earlier one failed; the script exits non-zero when any failed and
# ends with the ctest summaries. SGF_SKIP_SANITIZERS=1 / SGF_SKIP_FUZZ=1 leave a stage out.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)
start=$(date +%s)
logs=build-test/stage-logs
failed=()

cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DSGF_BUILD_TESTS=ON -DSGF_BUILD_EXAMPLES=ON -DSGF_BUILD_BENCHMARKS=ON
mkdir -p "$logs"
main_ok=1
cmake --build build-test -j"$jobs" || main_ok=0
if [ "$main_ok" = 1 ]; then
  (cd build-test && ctest --output-on-failure -j"$jobs" --timeout 900) 2>&1 | tee "$logs/ctest.log" || main_ok=0
fi
[ "$main_ok" = 1 ] || failed+=("build+ctest")

# ---- sanitizers: the whole suite under ASan + UBSan (CMakePresets.json "asan") --------------------
if [ "${SGF_SKIP_SANITIZERS:-0}" != 1 ]; then
  asan_ok=1
  { cmake --preset asan >"$logs/asan-configure.log" 2>&1 || { cat "$logs/asan-configure.log"; false; }; } &&
    cmake --build --preset asan -j"$jobs" || asan_ok=0
  if [ "$asan_ok" = 1 ]; then
    ctest --preset asan -j"$jobs" 2>&1 | tee "$logs/ctest-asan.log" || asan_ok=0
  fi
  [ "$asan_ok" = 1 ] || failed+=("sanitizers")
fi

# ---- fuzzing: bounded runs of every target ---------------------------------------------------------
if [ "${SGF_SKIP_FUZZ:-0}" != 1 ]; then
  SGF_FUZZ_PARALLEL=${SGF_FUZZ_PARALLEL:-2} ./scripts/run-fuzzers.sh "${SGF_FUZZ_SECONDS:-45}" 2>&1 |
    tee "$logs/fuzz.log" || failed+=("fuzzing")
fi

echo
echo "==== run-tests.sh: $(( $(date +%s) - start )) s after install-deps"
if [ -f "$logs/ctest-asan.log" ]; then
  echo "sanitizers (build-asan): $(grep -E 'tests passed|tests failed' "$logs/ctest-asan.log" | tail -1)"
fi
if [ -f "$logs/fuzz.log" ]; then
  sed -n '/^fuzz summary/,/^----/p' "$logs/fuzz.log" | grep -v '^----'
fi
if [ ${#failed[@]} -gt 0 ]; then echo "FAILED stages: ${failed[*]}"; else echo "all stages passed"; fi
echo "main suite (build-test):"
if [ -f "$logs/ctest.log" ]; then
  sed -n '/tests passed\|tests failed/,$p' "$logs/ctest.log" | grep -E 'tests passed|tests failed|Total Test time'
else
  echo "0% tests passed: the build failed, ctest did not run"
fi
[ ${#failed[@]} -eq 0 ]
