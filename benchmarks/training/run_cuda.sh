#!/usr/bin/env bash
# GPU benchmarks, sgf vs PyTorch in the same run (docs/performance.md, "On the GPU"):
#   one training iteration of `small` at batch 64 and of `paper128` at batch 16 (sgf's CUDA backend in
#   fast mode vs torch_train_step.py --device cuda, the same model and objective), and the paper128
#   decoder's throughput at batch 1 and 256, and the cuBLAS SGEMM rate with the dominant convolution
#   shapes' rates as a fraction of it (--conv-roof).
#
#   benchmarks/training/run_cuda.sh [BUILD_DIR]      (default build-gpu; needs a GPU and python3 with torch)
#
# Environment: PYTHON (default python3), SGF_BENCH_CASES (default "small:64 paper128:16").
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$ROOT/build-gpu}
BIN=$BUILD/benchmarks/training/sgf_bench_train_step_cuda
PY=${PYTHON:-python3}
CASES=${SGF_BENCH_CASES:-"small:64 paper128:16"}
[ -x "$BIN" ] || { echo "run_cuda.sh: $BIN not built (cmake --build $BUILD --target sgf_bench_train_step_cuda)"; exit 2; }
results=$(mktemp)
for c in $CASES; do
  preset=${c%%:*}; batch=${c##*:}
  cfg=$("$BIN" --preset "$preset" --print-config)
  "$BIN" --preset "$preset" --batch "$batch" --warmup 6 --steps 16 --repeats 3 --json | tee -a "$results"
  "$PY" "$ROOT/benchmarks/training/torch_train_step.py" --device cuda --config "$cfg" --batch "$batch" \
      --warmup 6 --steps 16 --repeats 3 --json | tee -a "$results"
done
"$BIN" --preset paper128 --decode-batches 1,256 --json | tee -a "$results"
"$BIN" --preset paper128 --batch 16 --conv-roof | tee -a "$results"
"$PY" - "$results" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
train = {}
preset = None
for r in rows:  # each case prints sgf's row, then PyTorch's (whose config has no preset name)
    if r.get("what", "train_step") == "train_step":
        preset = r.get("preset", preset)
        train.setdefault((preset, r["batch"]), {})[r["impl"]] = r
print("\n| preset | batch | sgf ms/iter | PyTorch ms/iter | PyTorch / sgf |")
print("|---|---|---|---|---|")
for (preset, batch), d in train.items():
    s, t = d.get("sgf"), d.get("torch")
    if s and t:
        print(f"| {preset} | {batch} | {s['ms_per_iter']:.2f} | {t['ms_per_iter']:.2f} | {t['ms_per_iter'] / s['ms_per_iter']:.2f}x |")
for r in rows:
    if r.get("what") == "sgemm":
        print(f"cuBLAS SGEMM {r['n']}^3 ({r['mode']} mode): {r['tflops']:.1f} TFLOP/s")
    if r.get("what", "").startswith("conv_"):
        print(f"{r['what']} 3x3 {r['c']}->{r['c']} at {r['hw']}x{r['hw']}, batch {r['n']}: {r['tflops']:.1f} TFLOP/s "
              f"({r['fraction_of_sgemm']:.2f} of SGEMM)")
    if r.get("what") == "decode":
        print(f"decoder {r['preset']} batch {r['batch']}: {r['images_per_s']:.0f} images/s ({r['ms_per_batch']:.3f} ms/batch)")
PYEOF
rm -f "$results"
