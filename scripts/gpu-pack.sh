#!/usr/bin/env bash
# Packs what scripts/gpu-run.sh needs on a bare GPU machine into .gpu-carry/ (ignored by git; name
# that folder in the device tool's `carry`): the build folder without object files (executables
# stripped, ctest files kept; as build.tar.xz), the shared libraries a CUDA image may lack (cuBLAS and cuDNN are taken
# from the machine), and Fashion-MNIST. Build first, on a machine with the same CUDA toolkit:
#   cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSGF_NATIVE=OFF \
#         -DSGF_WITH_ONEDNN=OFF && cmake --build build-gpu -j
#   scripts/gpu-pack.sh [build-gpu]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
[ -f "$BUILD/CMakeCache.txt" ] || { echo "gpu-pack.sh: $BUILD is not a build folder"; exit 2; }
rm -rf .gpu-carry/build
mkdir -p .gpu-carry/build .gpu-carry/lib .gpu-carry/fashion-mnist
tar -C "$BUILD" --exclude='CMakeFiles' --exclude='*.o' --exclude='*.a' --exclude='tmp_*' --exclude='stage-logs' \
    --exclude='*.safetensors' --exclude='*.png' -cf - . | tar -C .gpu-carry/build -xf -
find .gpu-carry/build -type f -perm -u+x | while read -r f; do
  if head -c 4 "$f" | grep -q ELF; then strip --strip-unneeded "$f"; fi
done
for lib in libfmt.so.9 libstb.so.0 libsqlite3.so.0; do cp -L "/lib/x86_64-linux-gnu/$lib" .gpu-carry/lib/; done
cp -L "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")/../lib64/libcudart.so.13" .gpu-carry/lib/ 2>/dev/null ||
  cp -L /usr/local/cuda/lib/libcudart.so.13 .gpu-carry/lib/
cp /usr/share/datasets/fashion-mnist/*.gz .gpu-carry/fashion-mnist/
# the whole carry must stay under the device tool's 64 MiB with the working tree: compress the build
tar -C .gpu-carry -cJf .gpu-carry/build.tar.xz build && rm -rf .gpu-carry/build
du -sh .gpu-carry/build.tar.xz .gpu-carry/lib .gpu-carry/fashion-mnist
du -sh --total .gpu-carry | tail -1
