#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang-14, -fsanitize=fuzzer,address,undefined) in
# build-fuzz/ and runs each for a bounded time, starting from the committed seed corpus
# (tests/fuzz/corpus/<target>/, never modified: new inputs go to build-fuzz/corpus/<target>/).
# Fails (exit 1) on any crash, leak, timeout, out-of-memory or sanitizer report; the reproducer
# is left in build-fuzz/artifacts/. See docs/security.md.
#
#   scripts/run-fuzzers.sh [seconds per target, default 60]
# Environment:
#   SGF_FUZZ_BUILD_DIR  build folder (default build-fuzz)
#   SGF_FUZZ_TARGETS    space-separated subset of: model_file image hex_fingerprint registry_import
#   SGF_FUZZ_PARALLEL   how many targets run at once (default 1; each uses one core)
#   SGF_FUZZ_NO_BUILD=1 skip configure/build (binaries already there)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
build=${SGF_FUZZ_BUILD_DIR:-build-fuzz}
read -r -a targets <<<"${SGF_FUZZ_TARGETS:-model_file image hex_fingerprint registry_import}"
parallel=${SGF_FUZZ_PARALLEL:-1}
CXX_FUZZ=${SGF_FUZZ_CXX:-clang++-14}

if [ "${SGF_FUZZ_NO_BUILD:-0}" != 1 ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="$CXX_FUZZ" -DSGF_BUILD_TESTS=ON \
        -DSGF_BUILD_FUZZERS=ON -DSGF_BUILD_EXAMPLES=OFF -DSGF_BUILD_BENCHMARKS=OFF -DSGF_WITH_CUDA=OFF \
        -DSGF_NATIVE=OFF >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
  cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
fi

mkdir -p "$build/artifacts" "$build/logs"
run_one() {
  local t=$1
  local log="$build/logs/$t.log"
  mkdir -p "$build/corpus/$t"
  local dict=()
  [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
  # -timeout: one input taking > 10 s is a bug (hang); -rss_limit_mb/-malloc_limit_mb: a single
  # allocation or resident size above 2 GiB is a bug (the limits must stop hostile sizes first).
  if ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0:${ASAN_OPTIONS:-}" \
     UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
     "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "${dict[@]}" \
       "$build/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    echo "ok"
  else
    echo "FAILED"
  fi
}

declare -A result
declare -a pending=("${targets[@]}")
while [ ${#pending[@]} -gt 0 ]; do
  batch=("${pending[@]:0:$parallel}")
  pending=("${pending[@]:$parallel}")
  for t in "${batch[@]}"; do run_one "$t" >"$build/logs/$t.status" & done
  wait
  for t in "${batch[@]}"; do result[$t]=$(cat "$build/logs/$t.status"); done
done

status=0
echo "fuzz summary ($secs s per target, $parallel at a time):"
for t in "${targets[@]}"; do
  log="$build/logs/$t.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
  printf '  %-16s %-6s %10s execs  cov %s\n' "$t" "${result[$t]}" "${execs:-?}" "${cov:-?}"
  if [ "${result[$t]}" != ok ]; then
    status=1
    echo "---- $t: last lines of $log"
    grep -E 'ERROR|SUMMARY|runtime error|invariant|deadly|Test unit written' "$log" | head -20 || true
    tail -40 "$log"
  fi
done
exit $status
