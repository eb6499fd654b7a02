#!/usr/bin/env bash
# Deployment costs on one CPU thread: baking a fingerprint into a generator (sgf::instantiate) for
# the small and paper128 presets, and attributing a decoded fingerprint against 10^6 registered
# ones (in-memory matcher, and the SQLite-backed Registry). See deployment.cpp for what is timed.
#
#   benchmarks/deployment/run.sh [extra sgf_bench_deployment options, e.g. --entries 100000]
#
# Environment (optional):
#   SGF_BENCH_BUILD   build folder (default: build-bench-e2e in the repository root)
#   SGF_BENCH_PAUSE   names of processes (comma- or space-separated) to pause (SIGSTOP) while measuring and resume (SIGCONT)
#                     right after, e.g. sgf_train on a shared machine; resumed on exit too
#   SGF_BENCH_NICE    run the benchmark under `nice -n SGF_BENCH_NICE` (e.g. -10 as root on a busy machine)
#   SGF_BENCH_TMP     folder for the temporary SQLite registry (~150 MB for 10^6 rows; default /tmp)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${SGF_BENCH_BUILD:-$ROOT/build-bench-e2e}
PAUSE=${SGF_BENCH_PAUSE:-}
TMPDIR_REG=${SGF_BENCH_TMP:-${TMPDIR:-/tmp}}

PAUSED_PIDS=""
resume() {
  if [[ -n "$PAUSED_PIDS" ]]; then
    kill -CONT $PAUSED_PIDS 2>/dev/null || true
    PAUSED_PIDS=""
  fi
}
trap resume EXIT
trap 'resume; exit 130' INT TERM
pause() {
  [[ -z "$PAUSE" ]] && return 0
  local name
  PAUSED_PIDS=""
  for name in ${PAUSE//,/ }; do PAUSED_PIDS+="$(pgrep -x "$name" | tr '\n' ' ' || true)"; done
  if [[ -n "$PAUSED_PIDS" ]]; then kill -STOP $PAUSED_PIDS 2>/dev/null || true; fi
}

"$ROOT/scripts/install-deps.sh"
echo "== building sgf_bench_deployment in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSGF_BUILD_BENCHMARKS=ON -DSGF_BUILD_TESTS=OFF \
  -DSGF_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD" --target sgf_bench_deployment -j2 >"$BUILD/bench-deployment-build.log" 2>&1 ||
  { tail -50 "$BUILD/bench-deployment-build.log"; exit 1; }
echo "== machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs; 1 thread"
NICE=()
if [[ -n "${SGF_BENCH_NICE:-}" ]]; then  # a session (autogroup) of its own with that nice value
  NICE=(setsid -w bash -c 'echo "$0" >/proc/self/autogroup 2>/dev/null || true; exec nice -n "$0" "$@"' "$SGF_BENCH_NICE")
fi
pause
rc=0
"${NICE[@]}" "$BUILD/benchmarks/deployment/sgf_bench_deployment" --registry-dir "$TMPDIR_REG" "$@" || rc=$?
resume
exit $rc
