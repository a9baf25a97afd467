#!/usr/bin/env bash
# Builds the engine's native test programs with AddressSanitizer and UndefinedBehaviorSanitizer
# and runs them: the kernels, BLAKE3 and the canonical functions must run clean on every ISA path.
# usage: native/test/run-sanitized.sh [OUT_DIR]   (npm run test:native)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build/sanitized}
mkdir -p "$out/obj"
flags=(-std=c++17 -O1 -g -ffp-contract=off -fno-omit-frame-pointer -fsanitize=address,undefined
       -fno-sanitize-recover=undefined -Inative -pthread)

# The engine sources, once, from the single source list.
mapfile -t sources < <(node -p "require('./native/sources.json').cpu.join('\n')")
objs=()
pids=()
for src in "${sources[@]}"; do
  obj="$out/obj/$(echo "$src" | tr '/' '_').o"
  objs+=("$obj")
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ]; then
    g++ "${flags[@]}" -c "$src" -o "$obj" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$(nproc)" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for test in gemm_test gemm_weights_test gemm_weights_packed_test gemm_weights_f32x16_test gemm_weights_blocks_test rows_test blake3_test math_test; do
  extra=(); [ "$test" = math_test ] && extra=(-std=gnu++17 -lquadmath)
  g++ "${flags[@]}" "native/test/$test.cc" "${objs[@]}" "${extra[@]}" -o "$out/$test"
  echo "== $test (ASan + UBSan)"
  if ! "$out/$test"; then
    echo "FAILED: $test"
    status=1
  fi
done
exit $status
