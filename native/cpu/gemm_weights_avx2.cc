// AVX2 fused decode GEMV for q8_0 weights (see gemm_weights_avx512.cc for the AVX-512 ones): 8 rows
// at a time, 8 int8 per row sign-extended and converted to f32 (exact), the 8 x 8 tile transposed
// in registers and scaled lane by lane by the rows' f32(d), so lane j of column k is exactly the
// widened weight (j, k); lane j then takes fma(A[k], w(j, k), p) in ascending k, acc = acc + p per
// 256-chunk -- the canonical order. The scales are widened by the portable half_to_float: the
// AVX2 path does not assume F16C.
#if defined(__x86_64__) || defined(_M_X64)
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include <algorithm>

#include "gemm_weights.h"
#include "gemm_weights_kernels.h"
#include "transpose_avx2.h"

namespace atoma::wq_detail {
namespace {

constexpr int64_t kKC = 256;   // DETERMINISM.md section 3

inline __m256i lane_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

using simd::transpose8;

inline float scale(const uint8_t* blk) { return half_to_float(static_cast<uint16_t>(blk[0] | (blk[1] << 8))); }

// w[8]: row pointers (rows past the edge repeat a valid row; their lanes are not stored).
template <int MB>
void tile_q8_0(int64_t K, const float* A, int64_t lda, const uint8_t* const* w, float* c,
               int64_t ldc, int ncols, const float* bias) {
  __m256 acc[MB], p[MB], t[8];
  for (int m = 0; m < MB; ++m) acc[m] = _mm256_setzero_ps();
  int64_t boff = 0;   // the current block's offset inside any row
  for (int64_t c0 = 0; c0 < K; c0 += kKC) {
    const int64_t cend = std::min(K, c0 + kKC);
    for (int m = 0; m < MB; ++m) p[m] = _mm256_setzero_ps();
    for (int64_t k0 = c0; k0 < cend; k0 += kQ8Block, boff += kQ8BlockBytes) {
      const __m256 d = _mm256_setr_ps(scale(w[0] + boff), scale(w[1] + boff), scale(w[2] + boff),
                                      scale(w[3] + boff), scale(w[4] + boff), scale(w[5] + boff),
                                      scale(w[6] + boff), scale(w[7] + boff));
      for (int h = 0; h < 4; ++h) {
        for (int i = 0; i < 8; ++i)
          t[i] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
              _mm_loadl_epi64(reinterpret_cast<const __m128i*>(w[i] + boff + 2 + 8 * h))));
        transpose8(t);
        for (int s = 0; s < 8; ++s) {
          const __m256 col = _mm256_mul_ps(t[s], d);
          for (int m = 0; m < MB; ++m)
            p[m] = _mm256_fmadd_ps(_mm256_set1_ps(A[m * lda + k0 + 8 * h + s]), col, p[m]);
        }
      }
    }
    for (int m = 0; m < MB; ++m) acc[m] = _mm256_add_ps(acc[m], p[m]);
  }
  const __m256i mask = lane_mask(ncols);
  const __m256 bv = bias ? _mm256_maskload_ps(bias, mask) : _mm256_setzero_ps();
  for (int m = 0; m < MB; ++m) {
    __m256 v = acc[m];
    if (bias) v = _mm256_add_ps(v, bv);
    _mm256_maskstore_ps(c + m * ldc, mask, v);
  }
}

template <int MB>
void rows_q8_0(int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, const uint8_t* W,
               int64_t rb, float* C, int64_t ldc, const float* bias) {
  const uint8_t* w[8];
  for (int64_t jg = j0; jg < j1; jg += 8) {
    const int ncols = static_cast<int>(std::min<int64_t>(8, j1 - jg));
    for (int r = 0; r < 8; ++r) w[r] = W + (jg + std::min(r, ncols - 1)) * rb;
    tile_q8_0<MB>(K, A, lda, w, C + jg, ldc, ncols, bias ? bias + jg : nullptr);
  }
}

void gemv_q8_0(int64_t M, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda,
               const uint8_t* W, int64_t rb, float* C, int64_t ldc, const float* bias) {
  switch (M) {
    case 1: rows_q8_0<1>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 2: rows_q8_0<2>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 3: rows_q8_0<3>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 4: rows_q8_0<4>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    default: break;
  }
}

}  // namespace

const FusedGemvs& avx2_fused_gemvs() {
  static const FusedGemvs g{nullptr, nullptr, gemv_q8_0, 4, 8};
  return g;
}

}  // namespace atoma::wq_detail
#endif
