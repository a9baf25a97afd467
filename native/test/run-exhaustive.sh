#!/usr/bin/env bash
# On-demand proof that the canonical transcendentals are correctly rounded (DETERMINISM.md s. 6):
# every binary32 input of exp, log, tanh and every input of the sin/cos domain (|x| <= 2^24).
# Usage: native/test/run-exhaustive.sh [exp|log|tanh|sincos|all] [threads] [stride]
# (stride > 1 checks every stride-th input only: a quick smoke run, not the proof.)
# About 11 minutes on 2 cores (AMD EPYC Zen 4); exits non-zero on any mismatch.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${TMPDIR:-/tmp}/atoma_math_exhaustive"
g++ -std=gnu++17 -O3 -ffp-contract=off -I"$root/native" "$here/math_exhaustive.cc" -o "$out" \
  -lquadmath -pthread
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -m) $(nproc) cpus: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# math.h sha256 $(sha256sum "$root/native/canon/math.h" | cut -c1-16), dd.h $(sha256sum "$root/native/canon/dd.h" | cut -c1-16)"
start=$(date +%s)
status=0
"$out" "${1:-all}" "${2:-$(nproc)}" "${3:-1}" || status=$?
echo "# wall time $(( $(date +%s) - start )) s"
exit $status
