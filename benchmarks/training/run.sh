#!/usr/bin/env bash
# Training iteration, sgf vs PyTorch: builds sgf_bench_train_step, checks that the PyTorch model in
# torch_train_step.py computes the same G, F and D as sgf (check_equivalence.py), then times one
# training iteration of both at each thread count and prints a table.
#
#   benchmarks/training/run.sh
#
# Environment (all optional):
#   SGF_BENCH_BUILD     build folder (default: build-bench-e2e in the repository root)
#   SGF_BENCH_THREADS   thread counts to run (default: "1 2")
#   SGF_BENCH_PRESET    model preset (default: small); batch via SGF_BENCH_BATCH (default 16)
#   SGF_BENCH_WARMUP / SGF_BENCH_STEPS / SGF_BENCH_REPEATS   default 4 / 32 / 2: after the warm-up,
#                       REPEATS windows of STEPS consecutive iterations (32 steps hold 2 R1 steps,
#                       their true 1-in-16 share); ms/iter is the median over windows
#   SGF_BENCH_PAUSE     names of processes (comma- or space-separated) to pause (SIGSTOP) while each measurement runs and resume
#                       (SIGCONT) right after, e.g. sgf_train on a shared machine; resumed on exit too
#   SGF_BENCH_NICE      run the measured programs under `nice -n SGF_BENCH_NICE` in a session (autogroup)
#                       of their own with that nice value (e.g. -10 as root, so that compilers and other
#                       background work on a shared machine take less CPU from them)
#   SGF_BENCH_QUIET_MAX / SGF_BENCH_QUIET_WAIT   before each measurement, wait (up to QUIET_WAIT s,
#                       default 600) until other processes use at most QUIET_MAX cores (default 0.2);
#                       each result also reports the cores other processes used while it ran
#   PYTHON              a Python with torch (default: the first of python3, /usr/bin/python3 that
#                       imports torch; when neither does, scripts/install-deps.sh --bench installs
#                       Debian's python3-torch first)
#   SGF_TORCH_OPENBLAS_DIR  a folder holding an OpenBLAS libblas.so.3; when set, or when Debian's
#                       libopenblas0-openmp/-pthread is installed, PyTorch is also timed with it
#                       (LD_LIBRARY_PATH), since a PyTorch linked to the reference BLAS runs its
#                       dense layers and some convolutions far slower. Without installing anything:
#                         apt-get download libopenblas0-openmp && dpkg -x libopenblas0-openmp_*.deb ob
#                         SGF_TORCH_OPENBLAS_DIR=$PWD/ob/usr/lib/x86_64-linux-gnu/openblas-openmp
#   SGF_TORCH_MODCONV   scale (default) or grouped: how torch_train_step.py modulates
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/benchmarks/training"
BUILD=${SGF_BENCH_BUILD:-$ROOT/build-bench-e2e}
THREADS=${SGF_BENCH_THREADS:-"1 2"}
PRESET=${SGF_BENCH_PRESET:-small}
BATCH=${SGF_BENCH_BATCH:-16}
WARMUP=${SGF_BENCH_WARMUP:-4}
STEPS=${SGF_BENCH_STEPS:-32}
REPEATS=${SGF_BENCH_REPEATS:-2}
MODCONV=${SGF_TORCH_MODCONV:-scale}
PAUSE=${SGF_BENCH_PAUSE:-}
QUIET_MAX=${SGF_BENCH_QUIET_MAX:-0.2}
QUIET_WAIT=${SGF_BENCH_QUIET_WAIT:-600}
NICE=()
if [[ -n "${SGF_BENCH_NICE:-}" ]]; then
  # With autogroup scheduling a nice value only ranks processes within one session: the measured
  # program gets a session of its own whose autogroup gets the same nice value.
  NICE=(setsid -w bash -c 'echo "$0" >/proc/self/autogroup 2>/dev/null || true; exec nice -n "$0" "$@"' "$SGF_BENCH_NICE")
fi

# ---- pausing a background process while measuring (always resumed) -----------------------------
# measure() runs in this shell (never in a pipeline's subshell) so that the traps see the pids.
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
busy_cores() {  # CPU cores' worth of busy time on the machine over one second
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$6+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$6+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN{split(a,x," "); split(b,y," "); printf "%.2f", n*(y[1]-x[1])/(y[2]-x[2])}'
}
wait_quiet() {  # pauses $PAUSE, then waits (resumed) until other processes leave the CPUs idle
  local waited=0 busy
  while :; do
    pause
    busy=$(busy_cores)
    if awk -v b="$busy" -v m="$QUIET_MAX" 'BEGIN{exit !(b <= m)}'; then return 0; fi
    if ((waited >= QUIET_WAIT)); then
      echo "run.sh: other processes still use $busy cores after ${waited}s of waiting; measuring anyway" >&2
      return 0
    fi
    resume
    echo "run.sh: other processes use $busy cores; waiting for a quiet machine" >&2
    sleep 15
    waited=$((waited + 16))
  done
}
measure() {  # measure CMD...: runs CMD on a quiet machine with the background process paused
  wait_quiet
  local rc=0
  "${NICE[@]}" "$@" || rc=$?
  resume
  return $rc
}

# ---- tools ----------------------------------------------------------------------------------------
# the build's packages, and the PyTorch peer when no interpreter here imports torch
if [[ -z "${PYTHON:-}" ]] && ! python3 -c 'import torch' >/dev/null 2>&1 &&
   ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  "$ROOT/scripts/install-deps.sh" --bench
else
  "$ROOT/scripts/install-deps.sh"
fi
if [[ -z "${PYTHON:-}" ]]; then
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch' >/dev/null 2>&1; then PYTHON=$p; break; fi
  done
fi
if [[ -z "${PYTHON:-}" ]]; then echo "run.sh: no Python with torch found (set PYTHON)" >&2; exit 1; fi

OPENBLAS=${SGF_TORCH_OPENBLAS_DIR:-}
if [[ -z "$OPENBLAS" ]]; then
  for d in /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/x86_64-linux-gnu/openblas-pthread; do
    if [[ -e "$d/libblas.so.3" ]]; then OPENBLAS=$d; break; fi
  done
fi
if [[ -n "$OPENBLAS" && ! -e "$OPENBLAS/libblas.so.3" ]]; then
  echo "run.sh: $OPENBLAS has no libblas.so.3; ignoring it" >&2
  OPENBLAS=""
fi

echo "== building sgf_bench_train_step in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSGF_BUILD_BENCHMARKS=ON -DSGF_BUILD_TESTS=OFF \
  -DSGF_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD" --target sgf_bench_train_step -j2 >"$BUILD/bench-train-build.log" 2>&1 ||
  { tail -50 "$BUILD/bench-train-build.log"; exit 1; }
BIN="$BUILD/benchmarks/training/sgf_bench_train_step"
CONFIG=$("$BIN" --preset "$PRESET" --print-config)

echo "== machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs; $("$PYTHON" -c 'import torch; print("torch", torch.__version__)')"
echo "== model: $CONFIG"
echo "== equivalence of the PyTorch model (same weights, same inputs)"
DUMP=$(mktemp --suffix=.safetensors)
"$BIN" --preset "$PRESET" --warmup 2 --dump "$DUMP"
(cd "$HERE" && PYTHONPATH="$HERE" "$PYTHON" check_equivalence.py "$DUMP")
rm -f "$DUMP"

OUT=$(mktemp -d)
COMMON=(--batch "$BATCH" --warmup "$WARMUP" --steps "$STEPS" --repeats "$REPEATS")
for t in $THREADS; do
  echo "== threads=$t: sgf"
  measure "$BIN" --preset "$PRESET" --threads "$t" "${COMMON[@]}" --json >"$OUT/sgf_$t.json"
  cat "$OUT/sgf_$t.json"
  echo "== threads=$t: PyTorch (BLAS as installed)"
  measure env OMP_NUM_THREADS="$t" "$PYTHON" "$HERE/torch_train_step.py" --threads "$t" "${COMMON[@]}" \
    --modconv "$MODCONV" --config "$CONFIG" --json >"$OUT/torch_$t.json"
  cat "$OUT/torch_$t.json"
  if [[ -n "$OPENBLAS" ]]; then
    echo "== threads=$t: PyTorch with OpenBLAS ($OPENBLAS)"
    measure env OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" LD_LIBRARY_PATH="$OPENBLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
      "$PYTHON" "$HERE/torch_train_step.py" --threads "$t" "${COMMON[@]}" --modconv "$MODCONV" --config "$CONFIG" \
      --json >"$OUT/torchob_$t.json"
    cat "$OUT/torchob_$t.json"
  fi
done

"$PYTHON" - "$OUT" "$THREADS" <<'EOF'
import json, os, sys
out, threads = sys.argv[1], sys.argv[2].split()
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
first = load(f"sgf_{threads[0]}.json")
tf = load(f"torch_{threads[0]}.json")
if first["params_G"] != tf["params_G"] or first["params_F"] != tf["params_F"] or first["params_D"] != tf["params_D"]:
    sys.exit(f"parameter counts differ: sgf {first} vs torch {tf}")
print()
print(f"parameters (sgf = PyTorch): G incl. E {first['params_G']}, F {first['params_F']}, D {first['params_D']}")
print(f"PyTorch BLAS as installed: {tf['blas']}")
ob = load(f"torchob_{threads[0]}.json")
if ob:
    print(f"PyTorch with OpenBLAS:     {ob['blas']}")
names = {"sgf": "sgf", "torch": "PyTorch", "torchob": "PyTorch+OpenBLAS"}
print("CPU ms/iter (all threads of the process): " + ", ".join(
    f"{names[k]} {t} thr {load(f'{k}_{t}.json')['cpu_ms_per_iter']:.0f}" for t in threads for k in names
    if load(f"{k}_{t}.json")))
print("CPU cores used by other processes while each ran: " + ", ".join(
    f"{names[k]} {t} thr {load(f'{k}_{t}.json')['others_cores']:.2f}" for t in threads for k in names
    if load(f"{k}_{t}.json")))
print(f"ms per training iteration (median of windows of {first['steps'] // max(1, len(first['window_ms']))} steps; "
      f"R1 steps included in their 1/16 share), batch {first['batch']}, preset {first['preset']}")
hdr = "| threads | sgf ms/iter | PyTorch ms/iter | ratio PyTorch/sgf |"
sep = "|---|---|---|---|"
if ob:
    hdr += " PyTorch+OpenBLAS ms/iter | ratio |"
    sep += "---|---|"
print(hdr)
print(sep)
for t in threads:
    s, p, o = load(f"sgf_{t}.json"), load(f"torch_{t}.json"), load(f"torchob_{t}.json")
    row = f"| {t} | {s['ms_per_iter']:.0f} | {p['ms_per_iter']:.0f} | {p['ms_per_iter'] / s['ms_per_iter']:.2f} |"
    if o:
        row += f" {o['ms_per_iter']:.0f} | {o['ms_per_iter'] / s['ms_per_iter']:.2f} |"
    print(row)
print()
print("plain / R1 step ms: " + "; ".join(
    f"{t} thr: sgf {load(f'sgf_{t}.json')['plain_step_ms']:.0f}/{load(f'sgf_{t}.json')['r1_step_ms']:.0f}, "
    f"PyTorch {load(f'torch_{t}.json')['plain_step_ms']:.0f}/{load(f'torch_{t}.json')['r1_step_ms']:.0f}"
    + (f", +OpenBLAS {load(f'torchob_{t}.json')['plain_step_ms']:.0f}/{load(f'torchob_{t}.json')['r1_step_ms']:.0f}"
       if load(f'torchob_{t}.json') else "")
    for t in threads))
EOF
rm -rf "$OUT"
