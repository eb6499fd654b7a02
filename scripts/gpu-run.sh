#!/usr/bin/env bash
# Everything that needs an NVIDIA GPU, in one bounded run on a GPU machine (docs/cuda.md, "On a GPU
# machine"), from a build folder configured with -DCMAKE_CUDA_ARCHITECTURES=90 (built there or carried
# from a machine with the same toolkit):
#   1. the GPU benchmarks against PyTorch (benchmarks/training/run_cuda.sh), alone on the GPU;
#   2. optionally a training run of sgf_train_cuda in the background (SGF_GPU_TRAIN_ARGS), stopped
#      with SIGINT (which writes its checkpoint) when the time budget is spent;
#   3. meanwhile the CUDA tests (ctest -R 'cuda|Cuda'), then the rest of the suite (ctest -E 'cuda|Cuda').
# Results go to $OUT (default ./gpu-out): summary.txt, logs.tar.gz and the training checkpoint in
# pieces of at most 15 MiB (checkpoint.part-*; `cat checkpoint.part-* > checkpoint.safetensors`).
#
# Environment: SGF_GPU_BUILD (build folder, default build-gpu), SGF_GPU_BUDGET (seconds for the whole
# script, default 540), SGF_GPU_TRAIN_ARGS (sgf_train_cuda options; unset: no training),
# SGF_GPU_CARRY (a folder with lib/ to prepend to LD_LIBRARY_PATH and fashion-mnist/ to install as
# /usr/share/datasets/fashion-mnist when that is missing; default .gpu-carry).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT" "$OUT/logs"
BUILD=${SGF_GPU_BUILD:-build-gpu}
BUDGET=${SGF_GPU_BUDGET:-540}
CARRY=${SGF_GPU_CARRY:-.gpu-carry}
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
say() { echo "[$(elapsed)s] $*" | tee -a "$OUT/summary.txt"; }

# ---- environment: the build's absolute paths, libraries, dataset ---------------------------------
if [ ! -e "$BUILD" ] && [ -f "$CARRY/build.tar.xz" ]; then  # scripts/gpu-pack.sh
  mkdir -p "$BUILD" && tar -C "$BUILD" --strip-components=1 -xJf "$CARRY/build.tar.xz" && say "unpacked $CARRY/build.tar.xz"
fi
bin=$(sed -n 's/^CMAKE_CACHEFILE_DIR:INTERNAL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
if [ -n "$src" ] && [ "$src" != "$ROOT" ] && [ ! -e "$src" ]; then
  mkdir -p "$(dirname "$src")" && ln -s "$ROOT" "$src" && say "linked $src -> $ROOT (the build's source path)"
fi
if [ -n "$bin" ] && [ ! -e "$bin" ]; then
  mkdir -p "$(dirname "$bin")" && ln -s "$ROOT/$BUILD" "$bin" && say "linked $bin -> $ROOT/$BUILD"
fi
[ -d "$CARRY/lib" ] && export LD_LIBRARY_PATH=$ROOT/$CARRY/lib:${LD_LIBRARY_PATH:-}
for lib in libcudnn.so.9 libcublas.so.13 libcublasLt.so.13 libcudart.so.13; do
  if ! ldconfig -p | grep -q "$lib"; then
    f=$(find /usr/local /opt /usr/lib -name "$lib" 2>/dev/null | head -1)
    [ -n "$f" ] && export LD_LIBRARY_PATH=$(dirname "$f"):${LD_LIBRARY_PATH:-} && say "$lib from $(dirname "$f")"
  fi
done
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && [ -d "$CARRY/fashion-mnist" ]; then
  mkdir -p /usr/share/datasets/fashion-mnist && cp "$CARRY"/fashion-mnist/* /usr/share/datasets/fashion-mnist/
fi
nvidia-smi -L 2>&1 | tee -a "$OUT/summary.txt"
missing=$(ldd "$BUILD/tests/cuda/test_cuda_training" 2>&1 | grep -E "not found|GLIBC" || true)
[ -n "$missing" ] && say "missing libraries: $missing"

# ---- 1. benchmarks, alone on the GPU (SGF_GPU_BENCH=0 skips them) --------------------------------
if [ "${SGF_GPU_BENCH:-1}" = 1 ]; then
  say "benchmarks"
  timeout 150 benchmarks/training/run_cuda.sh "$BUILD" > "$OUT/logs/bench.txt" 2>&1
  say "benchmarks rc=$?"
  sed -n '/^| preset/,$p' "$OUT/logs/bench.txt" | tee -a "$OUT/summary.txt"
fi

# ---- 2. training in the background --------------------------------------------------------------
# A gate first: the trainer's GPU tests. Fast mode when its test passes, else the checking mode when
# the float64-reference comparison passes, else no training.
train_pid=""
if [ -n "${SGF_GPU_TRAIN_ARGS:-}" ]; then
  mode=""
  gate() {  # passes only when the test ran (a skipped GTest exits 0 too)
    (cd "$BUILD/tests/cuda" && timeout 120 ./test_cuda_training --gtest_filter="$1") > "$OUT/logs/gate-$2.txt" 2>&1 &&
      ! grep -q SKIPPED "$OUT/logs/gate-$2.txt"
  }
  if gate 'CudaTraining.FastMode*' fast; then mode="fast"
  elif gate 'CudaTraining.TinyPreset*' checking; then mode="checking"
  fi
  cat "$OUT"/logs/gate-*.txt > "$OUT/logs/gate.txt" 
  grep -E "ms/step|FAILED|PASSED" "$OUT/logs/gate.txt" | tee -a "$OUT/summary.txt"
  if [ -n "$mode" ]; then
    left=$(( BUDGET - $(elapsed) - 25 ))
    extra=""; [ "$mode" = checking ] && extra="--checking"
    say "training ($mode mode) for ${left}s: sgf_train_cuda $SGF_GPU_TRAIN_ARGS $extra"
    # shellcheck disable=SC2086
    timeout -s INT -k 40 "$left" "$BUILD/examples/train/sgf_train_cuda" $SGF_GPU_TRAIN_ARGS $extra --out "$OUT/run" \
        > "$OUT/logs/train.txt" 2>&1 &
    train_pid=$!
  else
    say "no training: the trainer's GPU tests failed (logs/gate.txt)"
  fi
fi

# ---- 3. tests: the CUDA ones, then the rest of the suite -----------------------------------------
# SGF_GPU_TESTS: the regex of the first ctest run; SGF_GPU_VERBOSE=1 runs it with -V and the
# conformance suite's per-test worst errors (SGF_CONFORMANCE_VERBOSE); SGF_GPU_REST=0 skips the rest.
tests=${SGF_GPU_TESTS:-cuda|Cuda}
verbose=""
if [ "${SGF_GPU_VERBOSE:-0}" = 1 ]; then verbose="-V"; export SGF_CONFORMANCE_VERBOSE=1; fi
(cd "$BUILD" && timeout 300 nice -n 10 ctest -R "$tests" -j6 --timeout 240 --output-on-failure $verbose) > "$OUT/logs/ctest-cuda.txt" 2>&1
say "ctest -R '$tests' rc=$?: $(grep -E 'tests passed|tests failed' "$OUT/logs/ctest-cuda.txt")"
grep -E "^\s+[a-z_]+ mode:|  10 steps|ms/step|Failed|\*\*\*Failed|Not Run" "$OUT/logs/ctest-cuda.txt" | head -40 | tee -a "$OUT/summary.txt"
# SGF_GPU_EXTRA: one more shell command, run here with this environment (output in logs/extra.txt)
if [ -n "${SGF_GPU_EXTRA:-}" ]; then
  bash -c "$SGF_GPU_EXTRA" > "$OUT/logs/extra.txt" 2>&1
  say "extra command rc=$?"
  tail -15 "$OUT/logs/extra.txt" | tee -a "$OUT/summary.txt"
fi
left=$(( BUDGET - $(elapsed) - 40 ))
if [ "$left" -gt 60 ] && [ "${SGF_GPU_REST:-1}" = 1 ]; then
  (cd "$BUILD" && timeout "$left" nice -n 10 ctest -E "cuda|Cuda" -j10 --timeout 200 --output-on-failure) > "$OUT/logs/ctest-rest.txt" 2>&1
  say "ctest -E 'cuda|Cuda' rc=$?: $(grep -E 'tests passed|tests failed' "$OUT/logs/ctest-rest.txt")"
  grep -E "\*\*\*Failed|\(Failed\)|Timeout" "$OUT/logs/ctest-rest.txt" | head -20 | tee -a "$OUT/summary.txt"
fi

# ---- wait for training, pack the results ---------------------------------------------------------
if [ -n "$train_pid" ]; then
  wait "$train_pid"
  say "training rc=$? (130 = stopped by the budget, checkpoint written)"
  tr '\r' '\n' < "$OUT/logs/train.txt" | grep -v '^$' | tail -5 | tee -a "$OUT/summary.txt"
  tr '\r' '\n' < "$OUT/logs/train.txt" | grep -v '^step ' > "$OUT/logs/train-messages.txt"
  tr '\r' '\n' < "$OUT/logs/train.txt" | grep '^step ' | awk 'NR % 200 == 0' > "$OUT/logs/train-progress.txt"
  rm -f "$OUT/logs/train.txt"
  cp "$OUT/run/log.csv" "$OUT/logs/" 2>/dev/null
  last=$(ls "$OUT"/run/samples-*.png 2>/dev/null | tail -1)
  [ -n "$last" ] && cp "$last" "$OUT/logs/"
  if [ -f "$OUT/run/checkpoint.safetensors" ]; then
    split -b 15M -d "$OUT/run/checkpoint.safetensors" "$OUT/checkpoint.part-"
    sha256sum "$OUT/run/checkpoint.safetensors" | tee -a "$OUT/summary.txt"
  fi
  rm -rf "$OUT/run"
fi
cp "$OUT/summary.txt" "$OUT/logs/"
tar -czf "$OUT/logs.tar.gz" -C "$OUT" logs && rm -rf "$OUT/logs"
say "done"
