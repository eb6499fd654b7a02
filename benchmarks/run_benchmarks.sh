#!/usr/bin/env bash
# Operator benchmarks, one command: builds sgf_bench_ops (Release, -march=native through
# sgf_project_flags), runs it (Eigen SGEMM roof + conv / modulated conv rows), runs the PyTorch peer
# (benchmarks/torch_peer.py) on the same rows, and prints one Markdown table (also saved as
# $BUILD/bench/report.md).
#
#   ./benchmarks/run_benchmarks.sh [Google Benchmark flags, e.g. --benchmark_filter=probe]
#
# Takes about 6 minutes on 2 cores (the build of sgf_bench_ops not included). Environment:
#   SGF_BENCH_BUILD_DIR  build directory (default: build-bench)
#   SGF_BENCH_PYTHON     an interpreter that can import torch (default: /usr/bin/python3, where
#                        Debian's python3-torch lives, then python3); when neither imports torch the
#                        script installs python3-torch (scripts/install-deps.sh --bench), and if that
#                        fails the torch columns stay empty
#   SGF_BENCH_PAUSE      process names (comma- or space-separated, exact names as pgrep -x) to pause with
#                        SIGSTOP while sgf and PyTorch are measured; resumed (SIGCONT) between the two, on
#                        exit, and in any case after SGF_BENCH_PAUSE_MAX seconds (default 540)
#   SGF_BENCH_NICE       run the measured programs under `nice -n SGF_BENCH_NICE` in a session of their own
#                        (with autogroup scheduling a nice value only ranks processes within a session)
#   SGF_BENCH_NO_PRIME=1 skip the allocator priming that both programs do at start (see bench_ops.cpp)
# The CPU that other processes got while each part ran is printed under the table.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SGF_BENCH_BUILD_DIR:-$root/build-bench}
out=$build/bench
mkdir -p "$out"

# the build's packages, and the PyTorch peer when no interpreter here imports torch
if [[ -z "${SGF_BENCH_PYTHON:-}" ]] && ! /usr/bin/python3 -c "import torch" >/dev/null 2>&1 &&
   ! python3 -c "import torch" >/dev/null 2>&1; then
  "$root/scripts/install-deps.sh" --bench
else
  "$root/scripts/install-deps.sh"
fi

py=""
for cand in "${SGF_BENCH_PYTHON:-}" /usr/bin/python3 python3; do
  [[ -n "$cand" ]] || continue
  if "$cand" -c "import torch" >/dev/null 2>&1; then py=$cand; break; fi
done
report_py=${py:-python3}

NICE=()
if [[ -n "${SGF_BENCH_NICE:-}" ]]; then
  NICE=(setsid -w bash -c 'echo "$0" >/proc/self/autogroup 2>/dev/null || true; exec nice -n "$0" "$@"' "$SGF_BENCH_NICE")
fi

# ---- pausing background processes while measuring (always resumed) -------------------------------
PAUSED=""
WATCHDOG=""
resume() {
  if [[ -n "$WATCHDOG" ]]; then kill "$WATCHDOG" 2>/dev/null || true; wait "$WATCHDOG" 2>/dev/null || true; WATCHDOG=""; fi
  if [[ -n "$PAUSED" ]]; then kill -CONT $PAUSED 2>/dev/null || true; PAUSED=""; fi
}
trap resume EXIT
trap 'resume; exit 130' INT TERM
pause() {
  [[ -n "${SGF_BENCH_PAUSE:-}" ]] || return 0
  local name
  PAUSED=""
  for name in ${SGF_BENCH_PAUSE//,/ }; do PAUSED+="$(pgrep -x "$name" | tr '\n' ' ' || true)"; done
  [[ -n "${PAUSED// /}" ]] || { PAUSED=""; return 0; }
  kill -STOP $PAUSED 2>/dev/null || true
  # never leave them stopped for long, whatever happens to this script (the watchdog keeps no pipe
  # open and takes its sleep with it when resume() ends it)
  (
    trap - EXIT INT
    trap 'kill $s 2>/dev/null; exit 0' TERM
    sleep "${SGF_BENCH_PAUSE_MAX:-540}" & s=$!
    wait $s
    kill -CONT $PAUSED 2>/dev/null
  ) </dev/null >/dev/null 2>&1 &
  WATCHDOG=$!
}

# ---- CPU accounting: how much CPU did everything else get while a part ran? ----------------------
cpu_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }  # busy, total ticks
own_cpu() { awk '{print $14+$15+$16+$17}' /proc/$$/stat; }  # this shell + its waited-for children, ticks
OTHERS=()
measure() {  # measure LABEL CMD...: runs CMD with $SGF_BENCH_PAUSE paused, notes the others' CPU use
  local label=$1 rc=0 paused_what="nothing paused"; shift
  pause
  if [[ -n "$PAUSED" ]]; then
    paused_what="paused: $(for p in $PAUSED; do printf '%s ' "$(ps -o comm= -p "$p" 2>/dev/null)($p)"; done)"
  fi
  local b0 o0 b1 o1
  b0=$(cpu_busy); o0=$(own_cpu)
  "${NICE[@]}" "$@" || rc=$?
  b1=$(cpu_busy); o1=$(own_cpu)
  resume
  OTHERS+=("$(awk -v a="$b0" -v b="$b1" -v o0="$o0" -v o1="$o1" -v n="$(nproc)" -v l="$label" 'BEGIN{
      split(a,x," "); split(b,y," "); t=(y[2]-x[2])/n;
      printf "%s: %.0f s, other processes used %.2f cores on average", l, t/100, ((y[1]-x[1])-(o1-o0))/t }'); $paused_what")
  return $rc
}

# ---- build ------------------------------------------------------------------------------------------
echo "== build (log: $out/build.log)" >&2
{
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSGF_NATIVE=ON -DSGF_BUILD_BENCHMARKS=ON \
        -DSGF_BUILD_TESTS=OFF -DSGF_BUILD_EXAMPLES=OFF
  cmake --build "$build" -j"$(nproc)" --target sgf_bench_ops
} >"$out/build.log" 2>&1 || { tail -n 40 "$out/build.log" >&2; exit 1; }

# ---- sgf ----------------------------------------------------------------------------------------------
echo "== sgf (console output: $out/sgf_console.txt)" >&2
rm -f "$out/sgf.json" "$out/torch.json"
measure "sgf" "$build/benchmarks/ops/sgf_bench_ops" --benchmark_out="$out/sgf.json" --benchmark_out_format=json \
  "$@" >"$out/sgf_console.txt"
[[ -s "$out/sgf.json" ]] || { echo "sgf_bench_ops wrote no results" >&2; exit 1; }

# ---- PyTorch -------------------------------------------------------------------------------------------
torch_json=""
if [[ -n "$py" ]]; then
  echo "== PyTorch peer ($py)" >&2
  measure "PyTorch" "$py" "$root/benchmarks/torch_peer.py" --sgf "$out/sgf.json" --out "$out/torch.json"
  torch_json=$out/torch.json
else
  echo "== PyTorch peer skipped: no interpreter can import torch (set SGF_BENCH_PYTHON)" >&2
fi

# ---- report --------------------------------------------------------------------------------------------
{
  "$report_py" "$root/benchmarks/report.py" "$out/sgf.json" $torch_json
  echo
  for line in "${OTHERS[@]}"; do echo "- $line"; done
  echo "- SGF_BENCH_PAUSE=${SGF_BENCH_PAUSE:-} SGF_BENCH_NICE=${SGF_BENCH_NICE:-}"
} | tee "$out/report.md"
