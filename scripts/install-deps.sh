#!/usr/bin/env bash
# Installs everything sgf needs to build, test and run its demo, from Debian packages only.
# Safe to re-run; uses sudo when not root.
#   scripts/install-deps.sh           the build, the tests, the demo
#   scripts/install-deps.sh --bench   also the benchmarks' CPU peer, PyTorch (Debian's python3-torch;
#                                     the benchmark scripts call this themselves)
set -euo pipefail
PKGS=(build-essential cmake pkg-config
      libeigen3-dev libfmt-dev libstb-dev nlohmann-json3-dev libcli11-dev
      libsqlite3-dev zlib1g-dev libgtest-dev libbenchmark-dev
      libdnnl-dev  # oneDNN: the CPU backend's float32 convolutions (optional; Eigen im2col without it)
      dataset-fashion-mnist
      python3-numpy  # docs.numpy_reference: the numpy reimplementation of F and G (examples/numpy_reference)
      clang-14 libclang-rt-14-dev)  # fuzzers (libFuzzer, ASan/UBSan runtimes): scripts/run-fuzzers.sh
for arg in "$@"; do
  case "$arg" in
    --bench) PKGS+=(python3-torch) ;;  # the peer the benchmarks measure against (docs/performance.md)
    *) echo "install-deps: unknown argument '$arg' (known: --bench)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then echo "install-deps: all ${#PKGS[@]} packages present"; exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
