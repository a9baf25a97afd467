// AVX2 + FMA GEMM pieces. Micro-tile 6 x 16: 12 accumulators + 2 B vectors + 1 broadcast of A
// in the 16 ymm registers. Each lane is one output taking its k in ascending order, so the values
// equal canon::chunked_dot whatever the tile shape.
#if defined(__x86_64__) || defined(_M_X64)
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include <algorithm>
#include <utility>

#include "gemm_kernels.h"
#include "transpose_avx2.h"

namespace atoma::gemm_detail {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;

inline __m256i lane_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <int MR, bool DIRECT>
void ukr(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, int n,
         bool first, const float* bias) {
  const __m256i m0 = lane_mask(n), m1 = lane_mask(n - 8);
  const bool full = n == kNR;
  for (int i = 0; i < MR; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
  __m256 c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m256 b0, b1;
    if (DIRECT && !full) {
      b0 = _mm256_maskload_ps(b, m0);
      b1 = _mm256_maskload_ps(b + 8, m1);
    } else {
      b0 = _mm256_loadu_ps(b);
      b1 = _mm256_loadu_ps(b + 8);
    }
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i);
      c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
    }
    a += MR;
    b += ldb;
  }
  const __m256 zero = _mm256_setzero_ps();
  __m256 bias0 = zero, bias1 = zero;
  if (bias) {
    bias0 = full ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, m0);
    bias1 = full ? _mm256_loadu_ps(bias + 8) : _mm256_maskload_ps(bias + 8, m1);
  }
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m256 v0 = zero, v1 = zero;
    if (!first) {
      v0 = full ? _mm256_loadu_ps(ci) : _mm256_maskload_ps(ci, m0);
      v1 = full ? _mm256_loadu_ps(ci + 8) : _mm256_maskload_ps(ci + 8, m1);
    }
    v0 = _mm256_add_ps(v0, c0[i]);
    v1 = _mm256_add_ps(v1, c1[i]);
    if (bias) {
      v0 = _mm256_add_ps(v0, bias0);
      v1 = _mm256_add_ps(v1, bias1);
    }
    if (full) {
      _mm256_storeu_ps(ci, v0);
      _mm256_storeu_ps(ci + 8, v1);
    } else {
      _mm256_maskstore_ps(ci, m0, v0);
      _mm256_maskstore_ps(ci + 8, m1, v1);
    }
  }
}

using simd::transpose8;

void pack_b_kn(const float* B, int64_t ldb, int n, int64_t kc, float* dst) {
  pack_b_kn_generic(B, ldb, n, kNR, kc, dst);
}

// The weight layout: 8 rows of W at a time are transposed in registers into 8 k-rows.
void pack_b_nk(const float* B, int64_t ldb, int n, int64_t kc, float* dst) {
  __m256 r[8];
  for (int h = 0; h < 2; ++h) {
    const int rows = std::min(8, n - 8 * h);
    const float* src = B + 8 * h * ldb;
    float* d = dst + 8 * h;
    if (rows <= 0) {
      for (int64_t k = 0; k < kc; ++k) _mm256_storeu_ps(d + k * kNR, _mm256_setzero_ps());
      continue;
    }
    int64_t k0 = 0;
    for (; k0 + 8 <= kc; k0 += 8) {
      for (int i = 0; i < 8; ++i)
        r[i] = i < rows ? _mm256_loadu_ps(src + i * ldb + k0) : _mm256_setzero_ps();
      transpose8(r);
      for (int s = 0; s < 8; ++s) _mm256_storeu_ps(d + (k0 + s) * kNR, r[s]);
    }
    if (k0 < kc) {
      const int rem = static_cast<int>(kc - k0);
      const __m256i km = lane_mask(rem);
      for (int i = 0; i < 8; ++i)
        r[i] = i < rows ? _mm256_maskload_ps(src + i * ldb + k0, km) : _mm256_setzero_ps();
      transpose8(r);
      for (int s = 0; s < rem; ++s) _mm256_storeu_ps(d + (k0 + s) * kNR, r[s]);
    }
  }
}

// Decode-sized A x W^T straight from W, 8 rows of W transposed in registers at a time (see the
// AVX-512 version). w[8*G] are row pointers; rows past the edge repeat a valid row.
template <int MB, int G>
void gemv_tile(int64_t K, const float* A, int64_t lda, const float* const* w, float* c,
               int64_t ldc, int ncols, const float* bias) {
  __m256 acc[MB][G];
  for (int m = 0; m < MB; ++m)
    for (int g = 0; g < G; ++g) acc[m][g] = _mm256_setzero_ps();
  __m256 t[8];
  for (int64_t c0 = 0; c0 < K; c0 += kKC) {
    const int64_t cend = std::min(K, c0 + kKC);
    __m256 p[MB][G];
    for (int m = 0; m < MB; ++m)
      for (int g = 0; g < G; ++g) p[m][g] = _mm256_setzero_ps();
    int64_t k0 = c0;
    for (; k0 + 8 <= cend; k0 += 8) {
      for (int g = 0; g < G; ++g) {
        for (int i = 0; i < 8; ++i) t[i] = _mm256_loadu_ps(w[8 * g + i] + k0);
        transpose8(t);
        for (int s = 0; s < 8; ++s)
          for (int m = 0; m < MB; ++m)
            p[m][g] = _mm256_fmadd_ps(_mm256_broadcast_ss(A + m * lda + k0 + s), t[s], p[m][g]);
      }
    }
    if (k0 < cend) {
      const int rem = static_cast<int>(cend - k0);
      const __m256i km = lane_mask(rem);
      for (int g = 0; g < G; ++g) {
        for (int i = 0; i < 8; ++i) t[i] = _mm256_maskload_ps(w[8 * g + i] + k0, km);
        transpose8(t);
        for (int s = 0; s < rem; ++s)
          for (int m = 0; m < MB; ++m)
            p[m][g] = _mm256_fmadd_ps(_mm256_broadcast_ss(A + m * lda + k0 + s), t[s], p[m][g]);
      }
    }
    for (int m = 0; m < MB; ++m)
      for (int g = 0; g < G; ++g) acc[m][g] = _mm256_add_ps(acc[m][g], p[m][g]);
  }
  for (int g = 0; g < G; ++g) {
    const int cols = ncols - 8 * g;
    if (cols <= 0) break;
    const __m256i mg = lane_mask(cols);
    const __m256 bv = bias ? _mm256_maskload_ps(bias + 8 * g, mg) : _mm256_setzero_ps();
    for (int m = 0; m < MB; ++m) {
      __m256 v = acc[m][g];
      if (bias) v = _mm256_add_ps(v, bv);
      _mm256_maskstore_ps(c + m * ldc + 8 * g, mg, v);
    }
  }
}

constexpr int kGemvMaxM = 4;
// 16 rows of W in flight (G = 2) suit the hardware prefetchers; for M > 2, G = 1 saves registers.
constexpr int kGemvCols = 16;   // 8 * G for the widest G below

template <int MB, int G>
void gemv_rows(int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, const float* W,
               int64_t ldw, float* C, int64_t ldc, const float* bias) {
  const float* w[8 * G];
  for (int64_t jg = j0; jg < j1; jg += 8 * G) {
    const int ncols = static_cast<int>(std::min<int64_t>(8 * G, j1 - jg));
    for (int r = 0; r < 8 * G; ++r) w[r] = W + (jg + std::min(r, ncols - 1)) * ldw;
    gemv_tile<MB, G>(K, A, lda, w, C + jg, ldc, ncols, bias ? bias + jg : nullptr);
  }
}

void gemv_nk(int64_t M, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda,
             const float* W, int64_t ldw, float* C, int64_t ldc, const float* bias) {
  switch (M) {
    case 1: gemv_rows<1, 2>(j0, j1, K, A, lda, W, ldw, C, ldc, bias); break;
    case 2: gemv_rows<2, 2>(j0, j1, K, A, lda, W, ldw, C, ldc, bias); break;
    case 3: gemv_rows<3, 1>(j0, j1, K, A, lda, W, ldw, C, ldc, bias); break;
    case 4: gemv_rows<4, 1>(j0, j1, K, A, lda, W, ldw, C, ldc, bias); break;
    default: break;
  }
}

template <int... Ms>
void fill(Kernels& k, std::integer_sequence<int, Ms...>) {
  ((k.ukr[Ms + 1] = ukr<Ms + 1, false>, k.ukr_direct[Ms + 1] = ukr<Ms + 1, true>), ...);
}

Kernels make() {
  Kernels k{};
  k.mr = kMR;
  k.nr = kNR;
  fill(k, std::make_integer_sequence<int, kMR>{});
  k.pack_a = pack_a_generic;
  k.pack_b_kn = pack_b_kn;
  k.pack_b_nk = pack_b_nk;
  k.gemv_nk = gemv_nk;
  k.gemv_max_m = kGemvMaxM;
  k.gemv_group = kGemvCols;
  return k;
}

}  // namespace

const Kernels& avx2_kernels() {
  static const Kernels k = make();
  return k;
}

}  // namespace atoma::gemm_detail
#endif
