// Internal: the per-ISA pieces of gemm.cc. Each ISA file fills one table; gemm.cc owns the
// blocking, the threading and the order of the K blocks. Only plain data and function pointers
// here: the ISA files are compiled with wider target flags, so they must not instantiate inline
// code that a portable translation unit could end up linking against.
#pragma once
#include "isa.h"
#include <stdint.h>

namespace atoma::gemm_detail {

constexpr int64_t kKC = 256;   // DETERMINISM.md section 3: one K block is one 256-product chunk
constexpr int kMaxMR = 16;

// One micro-tile: rows m (the table index, 1..mr) by columns n (1..nr), over kc <= 256 values of
// k of one K chunk. a: packed A, a[k*m + i]. b: B rows, b[k*ldb + j] (packed: ldb = nr and zero
// padding beyond n; direct: the caller's B, read only for j < n when the table allows it).
// Each accumulator starts at +0.0 and takes fma(a, b, acc) for k ascending; then
// C = (first ? +0.0 : C) + acc, and C = C + bias[j] when bias != nullptr (the last chunk).
using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, int64_t ldb, float* c,
                             int64_t ldc, int n, bool first, const float* bias);

// dst[k*m + i] = A[i*lda + k] for i < m, k < kc.
using PackA = void (*)(const float* A, int64_t lda, int m, int64_t kc, float* dst);
// dst[k*nr + j] = B(k, j) for j < n, 0 for n <= j < nr, k < kc. kn: B(k,j) = B[k*ldb + j];
// nk: B(k,j) = B[j*ldb + k].
using PackB = void (*)(const float* B, int64_t ldb, int n, int64_t kc, float* dst);

// C rows 0..M-1, columns j0..j1-1 of A x W^T (W stored [N, K]) in the canonical order, straight
// from W (no packing): for decode-sized M.
using GemvNk = void (*)(int64_t M, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda,
                        const float* W, int64_t ldw, float* C, int64_t ldc, const float* bias);

struct Kernels {
  int mr, nr;
  MicroKernel ukr[kMaxMR + 1];   // ukr[m] for m = 1..mr
  MicroKernel ukr_direct[kMaxMR + 1];  // like ukr, but B may be the caller's (masked loads)
  PackA pack_a;
  PackB pack_b_kn;
  PackB pack_b_nk;
  GemvNk gemv_nk;                // nullptr: use the blocked path
  int64_t gemv_max_m;            // gemv_nk handles M <= this
  int64_t gemv_group;            // gemv_nk column ranges should be multiples of this
};

const Kernels& scalar_kernels();
#if defined(__x86_64__) || defined(_M_X64)
const Kernels& avx2_kernels();
const Kernels& avx512_kernels();
#endif
// The table of the given ISA (scalar where the build has no x86 paths).
const Kernels& kernels_for(Isa isa);

// Portable packing, shared by the tables that have no faster one.
void pack_a_generic(const float* A, int64_t lda, int m, int64_t kc, float* dst);
void pack_b_kn_generic(const float* B, int64_t ldb, int n, int nr, int64_t kc, float* dst);
void pack_b_nk_generic(const float* B, int64_t ldb, int n, int nr, int64_t kc, float* dst);

}  // namespace atoma::gemm_detail
