#!/usr/bin/env bash
# Deployment costs on one CPU thread: baking a fingerprint into a generator (sgf::instantiate) for
# the small and paper128 presets, and attributing a decoded fingerprint against 10^6 registered
# ones (in-memory matcher, and the SQLite-backed Registry); and decoding images on the CPU (1 and 2
# threads, batches of 1 and 16) against the same decoder in PyTorch (torch_decode.py, Debian's
# python3-torch), with the ratio. See deployment.cpp for what is timed.
#
#   benchmarks/deployment/run.sh [extra sgf_bench_deployment options, e.g. --entries 100000]
#
# Environment (optional):
#   SGF_BENCH_BUILD   build folder (default: build-bench-e2e in the repository root)
#   SGF_BENCH_PAUSE   names of processes (comma- or space-separated) to pause (SIGSTOP) while measuring and resume (SIGCONT)
#                     right after, e.g. sgf_train on a shared machine; resumed on exit too
#   SGF_BENCH_NICE    run the benchmark under `nice -n SGF_BENCH_NICE` (e.g. -10 as root on a busy machine)
#   SGF_BENCH_TMP     folder for the temporary SQLite registry (~150 MB for 10^6 rows; default /tmp)
#   SGF_BENCH_DECODE  "THREADS BATCHES RUNS" of the decode rows (default "1,2 1,16 3"), for sgf and PyTorch alike
#   SGF_BENCH_PYTHON  an interpreter that imports torch (default /usr/bin/python3); without one the
#                     PyTorch column stays empty
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

for a in "$@"; do  # the decode rows are set for sgf and PyTorch alike, by SGF_BENCH_DECODE
  case "$a" in --decode-threads|--decode-batches|--decode-runs)
    echo "run.sh: set the decode rows with SGF_BENCH_DECODE=\"THREADS BATCHES RUNS\" (e.g. \"1,2 1,16 3\"), not $a" >&2; exit 2;;
  esac
done
# the build's packages, and python3-torch for the decode rows' PyTorch peer when nothing here imports torch
if ! "${SGF_BENCH_PYTHON:-/usr/bin/python3}" -c "import torch" >/dev/null 2>&1; then
  "$ROOT/scripts/install-deps.sh" --bench || echo "(python3-torch could not be installed: the PyTorch column stays empty)"
else
  "$ROOT/scripts/install-deps.sh"
fi
echo "== building sgf_bench_deployment in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSGF_BUILD_BENCHMARKS=ON -DSGF_BUILD_TESTS=OFF \
  -DSGF_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD" --target sgf_bench_deployment -j2 >"$BUILD/bench-deployment-build.log" 2>&1 ||
  { tail -50 "$BUILD/bench-deployment-build.log"; exit 1; }
echo "== machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs; 1 thread (decode rows: SGF_BENCH_DECODE)"
NICE=()
if [[ -n "${SGF_BENCH_NICE:-}" ]]; then  # a session (autogroup) of its own with that nice value
  NICE=(setsid -w bash -c 'echo "$0" >/proc/self/autogroup 2>/dev/null || true; exec nice -n "$0" "$@"' "$SGF_BENCH_NICE")
fi
read -r DEC_THREADS DEC_BATCHES DEC_RUNS <<<"${SGF_BENCH_DECODE:-1,2 1,16 3}"
DECODE_ARGS=(--decode-threads "$DEC_THREADS" --decode-batches "$DEC_BATCHES" --decode-runs "$DEC_RUNS")
OUT="$BUILD/bench-deployment.txt"
pause
rc=0
"${NICE[@]}" "$BUILD/benchmarks/deployment/sgf_bench_deployment" --registry-dir "$TMPDIR_REG" "${DECODE_ARGS[@]}" "$@" |
  tee "$OUT" || rc=$?
# the PyTorch peer of the decode rows, on the architectures the CONFIG lines name
PY=${SGF_BENCH_PYTHON:-/usr/bin/python3}
if grep -q '^CONFIG ' "$OUT" && "$PY" -c "import torch" >/dev/null 2>&1; then
  while read -r _ preset config; do
    "${NICE[@]}" "$PY" "$ROOT/benchmarks/deployment/torch_decode.py" --preset "$preset" --config "$config" \
      --threads "$DEC_THREADS" --batches "$DEC_BATCHES" --runs "$DEC_RUNS" | tee -a "$OUT" || rc=$?
  done < <(grep '^CONFIG ' "$OUT")
elif grep -q '^CONFIG ' "$OUT"; then
  echo "(no PyTorch: $PY cannot import torch; scripts/install-deps.sh --bench installs python3-torch)"
fi
resume
if grep -q '^RESULT decode ' "$OUT"; then
  echo
  echo "| preset | threads | batch | sgf ms/image | PyTorch ms/image | PyTorch / sgf |"
  echo "|---|---:|---:|---:|---:|---:|"
  awk '$1 == "RESULT" && $2 == "decode" { k = $3 " " $4 " " $5; sgf[k] = $6; order[++n] = k }
       $1 == "RESULT" && $2 == "torch_decode" { torch[$3 " " $4 " " $5] = $6 }
       END { for (i = 1; i <= n; ++i) { k = order[i]; split(k, f, " ")
               t = (k in torch) ? sprintf("%.3f", torch[k]) : "-"; r = (k in torch) ? sprintf("%.2f", torch[k] / sgf[k]) : "-"
               printf "| %s | %s | %s | %.3f | %s | %s |\n", f[1], f[2], f[3], sgf[k], t, r } }' "$OUT"
fi
exit $rc
