#!/usr/bin/env bash
# Builds and runs native/test/gpu_check (CUDA conformance against the CPU engine + benchmarks).
# Self-contained: needs nvcc, g++ and (preferably) cmake; no network, no Node.js. Logs and the
# JSON summary go to $OUT when set (else build-gpu-check/out). Exit status: gpu_check's
# (0 pass, 1 mismatch/error, 2 no device), or 3 when nothing could be built.
#
#   scripts/gpu-check.sh [--quick] [--no-bench]      (arguments go to gpu_check)
# Environment: GPU_CHECK_TIMEOUT (seconds for the run, default 270), CUDA_ARCH (e.g. 90; default
# from nvidia-smi), ATOMA_CUBLAS_LIB (path of libcublas.so for the baseline).
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
OUTDIR="${OUT:-$ROOT/build-gpu-check/out}"
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gpu-check.log"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1

T0=$(date +%s)
stamp() { echo "[gpu-check +$(( $(date +%s) - T0 ))s] $*"; }
JOBS="$(nproc 2>/dev/null || echo 4)"
BUILD="$ROOT/build-gpu-check"
mkdir -p "$BUILD"

NVCC="$(command -v nvcc || true)"
for c in /usr/local/cuda/bin/nvcc /usr/local/bin/nvcc; do
  [ -z "$NVCC" ] && [ -x "$c" ] && NVCC="$c"
done
if [ -z "$NVCC" ]; then stamp "nvcc not found"; exit 3; fi
CUDA_HOME="${CUDA_HOME:-$(cd "$(dirname "$NVCC")/.." && pwd)}"
stamp "nvcc: $NVCC ($("$NVCC" --version | tail -1))"

nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || true
ARCH="${CUDA_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')}"
case "$ARCH" in ''|*[!0-9]*) ARCH=90 ;; esac
stamp "building for sm_$ARCH only"

# TF32 stays off for the cuBLAS baseline; cuBLAS is found through the loader path.
export NVIDIA_TF32_OVERRIDE=0
LIBS="$CUDA_HOME/lib64:$CUDA_HOME/lib"
for d in /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu; do LIBS="$LIBS:$d"; done
if command -v python3 >/dev/null 2>&1; then
  TORCH_CUBLAS="$(timeout 60 python3 - <<'EOF' 2>/dev/null
import os, glob
try:
    import nvidia.cublas, os.path as p
    for d in nvidia.cublas.__path__:
        print(p.join(d, "lib"))
except Exception:
    pass
try:
    import torch, os.path as p
    print(p.join(p.dirname(torch.__file__), "lib"))
except Exception:
    pass
EOF
)"
  for d in $TORCH_CUBLAS; do LIBS="$LIBS:$d"; done
fi
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

CUFLAGS=(-std=c++17 "-arch=sm_$ARCH" -ftz=false -prec-div=true -prec-sqrt=true -fmad=false -O3
         --expt-relaxed-constexpr -Inative)
CXXFLAGS=(-std=c++17 -O3 -ffp-contract=off -fno-fast-math -fexceptions -Inative)
CUDA_SRCS=$(python3 -c 'import json;print(" ".join(json.load(open("native/sources.json"))["cuda"]))' 2>/dev/null \
            || ls native/cuda/*.cu)
CPU_SRCS=$(python3 -c 'import json;print(" ".join(json.load(open("native/sources.json"))["cpu"]))' 2>/dev/null \
           || ls native/cpu/*.cc native/hash/*.cc)

BIN=""
MODE=""
# 1) CMake (the project's own build), gpu_check linked with the CPU engine.
if command -v cmake >/dev/null 2>&1; then
  stamp "cmake configure"
  if cmake -S . -B "$BUILD/cmake" -DCMAKE_BUILD_TYPE=Release -DATOMA_CUDA=ON \
        -DCMAKE_CUDA_COMPILER="$NVCC" "-DATOMA_CUDA_ARCHS=${ARCH}-real" > "$OUTDIR/cmake-configure.log" 2>&1 &&
     stamp "cmake build (-j$JOBS)" &&
     cmake --build "$BUILD/cmake" -j "$JOBS" --target gpu_check > "$OUTDIR/cmake-build.log" 2>&1; then
    BIN="$BUILD/cmake/gpu_check"
    MODE="cmake, CPU engine reference"
  else
    stamp "cmake build failed (tail of logs follows); trying nvcc directly"
    tail -n 25 "$OUTDIR/cmake-configure.log" "$OUTDIR/cmake-build.log" 2>/dev/null
  fi
fi

# 2) nvcc + g++ directly, still with the CPU engine. Identical inline definitions from the
#    canon headers are tolerated at link time here.
direct_build() {   # $1 = with-engine (1/0), $2 = output dir
  local eng="$1" dir="$2" pids=() objs=() f o ok=1
  mkdir -p "$dir"
  if [ "$eng" = 1 ]; then
    for f in $CPU_SRCS; do
      o="$dir/$(echo "$f" | tr '/' '_').o"; objs+=("$o")
      g++ "${CXXFLAGS[@]}" -c "$f" -o "$o" > "$o.log" 2>&1 & pids+=($!)
    done
  fi
  for f in $CUDA_SRCS native/test/gpu_check.cu; do
    o="$dir/$(echo "$f" | tr '/' '_').o"; objs+=("$o")
    "$NVCC" "${CUFLAGS[@]}" "-DATOMA_GPU_CHECK_ENGINE=$eng" -c "$f" -o "$o" > "$o.log" 2>&1 & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || ok=0; done
  cat "$dir"/*.log 2>/dev/null | grep -E "error" | head -n 20
  [ "$ok" = 1 ] || return 1
  "$NVCC" "-arch=sm_$ARCH" "${objs[@]}" -o "$dir/gpu_check" -lpthread -ldl
}
if [ -z "$BIN" ]; then
  stamp "direct build with the CPU engine"
  if direct_build 1 "$BUILD/direct"; then
    BIN="$BUILD/direct/gpu_check"; MODE="nvcc direct, CPU engine reference"
  else
    stamp "direct build with the engine failed; building against the canon reference forms only"
    if direct_build 0 "$BUILD/canon"; then
      BIN="$BUILD/canon/gpu_check"; MODE="nvcc direct, canon reference forms (CPU engine NOT linked)"
    fi
  fi
fi
if [ -z "$BIN" ]; then stamp "BUILD FAILED"; exit 3; fi
stamp "built $BIN ($MODE)"

VEC="test/fixtures/blake3-test-vectors.json"
stamp "running gpu_check (timeout ${GPU_CHECK_TIMEOUT:-270}s)"
timeout --signal=KILL "${GPU_CHECK_TIMEOUT:-270}" "$BIN" --vectors "$VEC" --json "$OUTDIR/gpu-check.json" "$@"
RC=$?
[ "$RC" = 137 ] && stamp "gpu_check TIMED OUT"

# Second opinion on the baseline: PyTorch SGEMM with TF32 off, when torch is there.
if command -v python3 >/dev/null 2>&1; then
  timeout 90 python3 - <<'EOF' 2>/dev/null || echo "torch baseline: unavailable"
import time, torch
if not torch.cuda.is_available():
    raise SystemExit(1)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
for n in (4096, 8192):
    a = torch.rand(n, n, device="cuda") * 2 - 1
    b = torch.rand(n, n, device="cuda") * 2 - 1
    torch.mm(a, b); torch.cuda.synchronize()
    reps, t0 = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - t0 < 0.3:
        torch.mm(a, b); reps += 1
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / reps
    print(f"torch baseline: sgemm {n} (allow_tf32=False) {2 * n**3 / dt / 1e12:.2f} TFLOP/s")
EOF
fi
# Third: the Node-level check (scripts/cuda-conformance.mjs): every conformance case, the typed
# errors and generation with tiny models (the inference determinism test: tokens, outputDigest,
# traceRoot alone, batched and chunked) on ATOMA_DEVICE=cpu and cuda, through the addon built
# here with CUDA. It needs Node.js 20 (NODE_BIN, `node` on PATH, or .devnode/node.xz), dist/ and
# node_modules/{node-gyp-build,node-api-headers}; where those are missing it says so.
NODE_RC=skipped
NODE_BIN="${NODE_BIN:-$(command -v node || true)}"
if [ -z "$NODE_BIN" ] && [ -f .devnode/node.xz ]; then
  mkdir -p "$BUILD/node" && NODE_BIN="$BUILD/node/node"
  (xz -dc .devnode/node.xz > "$NODE_BIN" ||
   python3 -c "import lzma,shutil,sys;shutil.copyfileobj(lzma.open('.devnode/node.xz'),open(sys.argv[1],'wb'))" "$NODE_BIN") &&
    chmod +x "$NODE_BIN" || NODE_BIN=""
fi
if [ -n "$NODE_BIN" ] && [ -d dist ] && [ -d node_modules/node-gyp-build ] && [ -d node_modules/node-api-headers ]; then
  stamp "node stage: building the addon with CUDA (sm_$ARCH)"
  NAPI_INC="$("$NODE_BIN" -p "require('node-api-headers').include_dir")"
  if cmake -S . -B "$BUILD/addon" -DCMAKE_BUILD_TYPE=Release -DATOMA_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" \
        "-DATOMA_CUDA_ARCHS=${ARCH}-real" -DCMAKE_JS_VERSION=plain "-DCMAKE_JS_INC=$NAPI_INC" \
        -DCMAKE_JS_SRC= -DCMAKE_JS_LIB= > "$OUTDIR/addon-build.log" 2>&1 &&
     cmake --build "$BUILD/addon" -j "$JOBS" >> "$OUTDIR/addon-build.log" 2>&1; then
    mkdir -p build/Release
    [ -f build/Release/atoma.node ] && mv build/Release/atoma.node build/Release/atoma.node.cpu-backup
    cp "$BUILD/addon/atoma.node" build/Release/atoma.node
    timeout 420 "$NODE_BIN" scripts/cuda-conformance.mjs > "$OUTDIR/cuda-conformance.log" 2>&1
    NODE_RC=$?
    tail -n 40 "$OUTDIR/cuda-conformance.log"
    rm -f build/Release/atoma.node
    [ -f build/Release/atoma.node.cpu-backup ] && mv build/Release/atoma.node.cpu-backup build/Release/atoma.node
  else
    NODE_RC=build-failed
    tail -n 20 "$OUTDIR/addon-build.log"
  fi
else
  stamp "node stage skipped: needs Node.js 20, dist/ (npm run build:ts) and node_modules/{node-gyp-build,node-api-headers}"
fi
[ "$RC" = 0 ] && [ "$NODE_RC" != skipped ] && [ "$NODE_RC" != 0 ] && RC=1

stamp "build mode: $MODE; gpu_check exit status $RC; node stage: $NODE_RC; log $LOG"
sleep 1   # lets tee finish the log
exit "$RC"
