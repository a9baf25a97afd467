#!/usr/bin/env bash
# What CI can check of the CUDA backend without a GPU:
#  1. every CUDA source (and gpu_check) compiles with nvcc for sm_80, sm_89, sm_90 and PTX;
#  2. the kernels' own code runs on the CPU through native/test/cuda_emu.h (one CPU thread per
#     CUDA thread, emulated barriers and shuffles) and matches the CPU engine bit for bit.
# The real-GPU check is scripts/gpu-check.sh.   usage: native/test/run-cuda-checks.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build/cuda-checks}
mkdir -p "$out"

if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  echo "== nvcc build (sm_80, sm_89, sm_90, PTX)"
  cmake -S . -B "$out/cmake" -DATOMA_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc_bin" > "$out/cmake-configure.log" 2>&1 ||
    { tail -30 "$out/cmake-configure.log"; exit 1; }
  cmake --build "$out/cmake" -j "$(nproc)" > "$out/cmake-build.log" 2>&1 || { grep -E "error|Error" -A3 "$out/cmake-build.log" | head -60; exit 1; }
  echo "compiled: $(node -p "require('./native/sources.json').cuda.join(' ')") native/test/gpu_check.cu"
  # The addon as `npm run build:cuda` makes it (its CUDA-only bindings included), for sm_90 only:
  # it must compile, link and load here, where it finds no GPU and says so.
  echo "== CUDA addon build (sm_90)"
  napi_inc=$(node -p "require('node-api-headers').include_dir")
  cmake -S . -B "$out/addon" -DATOMA_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc_bin" -DATOMA_CUDA_ARCHS=90-real \
    -DCMAKE_JS_VERSION=plain "-DCMAKE_JS_INC=$napi_inc" -DCMAKE_JS_SRC= -DCMAKE_JS_LIB= > "$out/addon-configure.log" 2>&1 ||
    { tail -30 "$out/addon-configure.log"; exit 1; }
  cmake --build "$out/addon" -j "$(nproc)" > "$out/addon-build.log" 2>&1 || { grep -E "error|Error" -A3 "$out/addon-build.log" | head -60; exit 1; }
  node -e "const a = require(process.argv[1]); const i = a.info();
    if (!i.cudaBuilt || typeof a.dtUploadWeight !== 'function') throw new Error('the CUDA addon lacks its CUDA bindings');
    console.log('loaded: cudaBuilt', i.cudaBuilt, 'GPU available', i.cudaAvailable)" "$(cd "$out/addon" && pwd)/atoma.node"
else
  echo "== nvcc not found: CUDA compile check skipped"
fi

engine=(native/cpu/*.cc native/hash/*.cc)
flags=(-std=c++20 -O2 -ffp-contract=off -Inative -Inative/test -pthread)
echo "== CUDA kernels on the CPU emulator"
g++ "${flags[@]}" native/test/cuda_gemm_emu_test.cc -o "$out/cuda_gemm_emu_test"
g++ "${flags[@]}" native/test/cuda_warp_emu_test.cc native/hash/*.cc native/cpu/isa.cc native/cpu/thread_pool.cc -o "$out/cuda_warp_emu_test"
g++ "${flags[@]}" native/test/cuda_rows_emu_test.cc "${engine[@]}" -o "$out/cuda_rows_emu_test"
g++ "${flags[@]/-std=c++20/-std=c++17}" -DWITH_ENGINE native/test/cuda_blake3_model_test.cc native/hash/*.cc native/cpu/isa.cc native/cpu/thread_pool.cc -o "$out/cuda_blake3_model_test"
g++ "${flags[@]}" native/test/cuda_sample_emu_test.cc -o "$out/cuda_sample_emu_test"
for t in cuda_gemm_emu_test cuda_warp_emu_test cuda_rows_emu_test cuda_blake3_model_test cuda_sample_emu_test; do
  echo "-- $t"
  "$out/$t" | tail -3
done
