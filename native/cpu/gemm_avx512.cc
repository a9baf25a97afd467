// AVX-512 GEMM pieces. Micro-tile 14 x 32: 28 accumulators + 2 B vectors + 1 broadcast of A
// fill the 32 zmm registers, and per k the 28 fmas need only 2 vector loads and 14 broadcasts.
// Every lane of every accumulator is one output element that sees its k in ascending order, so
// the values equal canon::chunked_dot whatever the tile shape.
#if defined(__x86_64__) || defined(_M_X64)
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")
// GCC 12 flags the deliberately undefined pass-through operand inside its own AVX-512 shuffle
// intrinsics (_mm512_undefined_ps) once they are inlined here.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <utility>

#include "gemm_kernels.h"
#include "transpose_avx512.h"

namespace atoma::gemm_detail {
namespace {

constexpr int kMR = 14;
constexpr int kNR = 32;

inline __mmask16 low_mask(int n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
}

template <int MR, bool DIRECT>
void ukr(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, int n,
         bool first, const float* bias) {
  const __mmask16 m0 = low_mask(n), m1 = low_mask(n - 16);
  // The next row tile's C (the caller walks tiles down the rows) goes to L2 a whole call ahead;
  // this tile's C comes into L1 near the end of the k loop, when A and B no longer evict it.
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + (MR + i) * ldc), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(c + (MR + i) * ldc + 31), _MM_HINT_T1);
  }
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  const int64_t k_prefetch = kc > 24 ? kc - 24 : 0;
  for (int64_t k = 0; k < kc; ++k) {
    if (k == k_prefetch) {
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 31), _MM_HINT_T0);
      }
    }
    __m512 b0, b1;
    if (DIRECT) {
      b0 = _mm512_maskz_loadu_ps(m0, b);
      b1 = _mm512_maskz_loadu_ps(m1, b + 16);
    } else {
      b0 = _mm512_load_ps(b);
      b1 = _mm512_load_ps(b + 16);
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(a[i]);
      c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
    }
    a += MR;
    b += ldb;
  }
  const __m512 zero = _mm512_setzero_ps();
  __m512 bias0 = zero, bias1 = zero;
  if (bias) {
    bias0 = _mm512_maskz_loadu_ps(m0, bias);
    bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m512 v0 = first ? zero : _mm512_maskz_loadu_ps(m0, ci);
    __m512 v1 = first ? zero : _mm512_maskz_loadu_ps(m1, ci + 16);
    v0 = _mm512_add_ps(v0, c0[i]);
    v1 = _mm512_add_ps(v1, c1[i]);
    if (bias) {
      v0 = _mm512_add_ps(v0, bias0);
      v1 = _mm512_add_ps(v1, bias1);
    }
    _mm512_mask_storeu_ps(ci, m0, v0);
    _mm512_mask_storeu_ps(ci + 16, m1, v1);
  }
}

using simd::transpose16;

void pack_a(const float* A, int64_t lda, int m, int64_t kc, float* dst) {
  const __mmask16 mm = low_mask(m);
  __m512 r[16];
  int64_t k0 = 0;
  for (; k0 + 16 <= kc; k0 += 16) {
    for (int i = 0; i < 16; ++i) r[i] = i < m ? _mm512_loadu_ps(A + i * lda + k0) : _mm512_setzero_ps();
    transpose16(r);
    for (int s = 0; s < 16; ++s) _mm512_mask_storeu_ps(dst + (k0 + s) * m, mm, r[s]);
  }
  if (k0 < kc) {
    const int rem = static_cast<int>(kc - k0);
    const __mmask16 km = low_mask(rem);
    for (int i = 0; i < 16; ++i)
      r[i] = i < m ? _mm512_maskz_loadu_ps(km, A + i * lda + k0) : _mm512_setzero_ps();
    transpose16(r);
    for (int s = 0; s < rem; ++s) _mm512_mask_storeu_ps(dst + (k0 + s) * m, mm, r[s]);
  }
}

void pack_b_kn(const float* B, int64_t ldb, int n, int64_t kc, float* dst) {
  const __mmask16 m0 = low_mask(n), m1 = low_mask(n - 16);
  for (int64_t k = 0; k < kc; ++k) {
    const float* src = B + k * ldb;
    _mm512_store_ps(dst + k * kNR, _mm512_maskz_loadu_ps(m0, src));
    _mm512_store_ps(dst + k * kNR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
  }
}

// The weight layout: 16 rows of W at a time are transposed in registers into 16 k-rows.
void pack_b_nk(const float* B, int64_t ldb, int n, int64_t kc, float* dst) {
  __m512 r[16];
  for (int h = 0; h < 2; ++h) {
    const int rows = std::min(16, n - 16 * h);
    const float* src = B + 16 * h * ldb;
    float* d = dst + 16 * h;
    if (rows <= 0) {
      for (int64_t k = 0; k < kc; ++k) _mm512_store_ps(d + k * kNR, _mm512_setzero_ps());
      continue;
    }
    int64_t k0 = 0;
    for (; k0 + 16 <= kc; k0 += 16) {
      for (int i = 0; i < 16; ++i)
        r[i] = i < rows ? _mm512_loadu_ps(src + i * ldb + k0) : _mm512_setzero_ps();
      transpose16(r);
      for (int s = 0; s < 16; ++s) _mm512_store_ps(d + (k0 + s) * kNR, r[s]);
    }
    if (k0 < kc) {
      const int rem = static_cast<int>(kc - k0);
      const __mmask16 km = low_mask(rem);
      for (int i = 0; i < 16; ++i)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(km, src + i * ldb + k0) : _mm512_setzero_ps();
      transpose16(r);
      for (int s = 0; s < rem; ++s) _mm512_store_ps(d + (k0 + s) * kNR, r[s]);
    }
  }
}

// Prefetch distance of the decode GEMV, in floats per row (measured on Zen 5, one thread, 11
// layers of a 768-wide f32 model streamed from memory: 64 about 15% faster than none, 128 and
// 256 in between).
constexpr int64_t kGemvPrefetch = 64;

// Decode-sized A x W^T straight from W: G groups of 16 rows of W are loaded 16 k at a time and
// transposed in registers, so each lane of p[m][g] is one output that takes its fmas in k order.
// w[16*G] are the row pointers (rows past the edge repeat a valid row; their lanes are dropped).
template <int MB, int G>
void gemv_tile(int64_t K, const float* A, int64_t lda, const float* const* w, float* c,
               int64_t ldc, int ncols, const float* bias) {
  __m512 acc[MB][G];
  for (int m = 0; m < MB; ++m)
    for (int g = 0; g < G; ++g) acc[m][g] = _mm512_setzero_ps();
  __m512 t[16];
  for (int64_t c0 = 0; c0 < K; c0 += kKC) {
    const int64_t cend = std::min(K, c0 + kKC);
    __m512 p[MB][G];
    for (int m = 0; m < MB; ++m)
      for (int g = 0; g < G; ++g) p[m][g] = _mm512_setzero_ps();
    int64_t k0 = c0;
    for (; k0 + 16 <= cend; k0 += 16) {
      for (int g = 0; g < G; ++g) {
        // Each row 256 bytes ahead: weights come from a file mapping in 4 KiB pages, and the
        // hardware prefetchers restart at every page edge of each of the 16 row streams.
        for (int i = 0; i < 16; ++i)
          _mm_prefetch(reinterpret_cast<const char*>(w[16 * g + i] + k0 + kGemvPrefetch), _MM_HINT_T0);
        for (int i = 0; i < 16; ++i) {
          t[i] = _mm512_loadu_ps(w[16 * g + i] + k0);
        }
        transpose16(t);
        for (int s = 0; s < 16; ++s)
          for (int m = 0; m < MB; ++m)
            p[m][g] = _mm512_fmadd_ps(_mm512_set1_ps(A[m * lda + k0 + s]), t[s], p[m][g]);
      }
    }
    if (k0 < cend) {
      const int rem = static_cast<int>(cend - k0);
      const __mmask16 km = low_mask(rem);
      for (int g = 0; g < G; ++g) {
        for (int i = 0; i < 16; ++i) t[i] = _mm512_maskz_loadu_ps(km, w[16 * g + i] + k0);
        transpose16(t);
        for (int s = 0; s < rem; ++s)
          for (int m = 0; m < MB; ++m)
            p[m][g] = _mm512_fmadd_ps(_mm512_set1_ps(A[m * lda + k0 + s]), t[s], p[m][g]);
      }
    }
    for (int m = 0; m < MB; ++m)
      for (int g = 0; g < G; ++g) acc[m][g] = _mm512_add_ps(acc[m][g], p[m][g]);
  }
  for (int g = 0; g < G; ++g) {
    const __mmask16 mg = low_mask(ncols - 16 * g);
    if (!mg) break;
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(mg, bias + 16 * g) : _mm512_setzero_ps();
    for (int m = 0; m < MB; ++m) {
      __m512 v = acc[m][g];
      if (bias) v = _mm512_add_ps(v, bv);
      _mm512_mask_storeu_ps(c + m * ldc + 16 * g, mg, v);
    }
  }
}

constexpr int kGemvMaxM = 8;
// One group of 16 rows at a time: 16 concurrent row streams is what the hardware prefetchers
// follow best (4 groups measured at half the bandwidth on Zen 5).
constexpr int kGemvCols = 16;   // 16 * G for the widest G below

template <int MB, int G>
void gemv_rows(int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, const float* W,
               int64_t ldw, float* C, int64_t ldc, const float* bias) {
  const float* w[16 * G];
  for (int64_t jg = j0; jg < j1; jg += 16 * G) {
    const int ncols = static_cast<int>(std::min<int64_t>(16 * G, j1 - jg));
    for (int r = 0; r < 16 * G; ++r) w[r] = W + (jg + std::min(r, ncols - 1)) * ldw;
    gemv_tile<MB, G>(K, A, lda, w, C + jg, ldc, ncols, bias ? bias + jg : nullptr);
  }
}

void gemv_nk(int64_t M, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda,
             const float* W, int64_t ldw, float* C, int64_t ldc, const float* bias) {
  switch (M) {
    case 1: gemv_rows<1, 1>(j0, j1, K, A, lda, W, ldw, C, ldc, bias); break;
    case 2: gemv_rows<2, 1>(j0, j1, K, A, lda, W, ldw, C, ldc, bias); break;
    case 3: gemv_rows<3, 1>(j0, j1, K, A, lda, W, ldw, C, ldc, bias); break;
    case 4: gemv_rows<4, 1>(j0, j1, K, A, lda, W, ldw, C, ldc, bias); break;
    case 5: gemv_rows<5, 1>(j0, j1, K, A, lda, W, ldw, C, ldc, bias); break;
    case 6: gemv_rows<6, 1>(j0, j1, K, A, lda, W, ldw, C, ldc, bias); break;
    case 7: gemv_rows<7, 1>(j0, j1, K, A, lda, W, ldw, C, ldc, bias); break;
    case 8: gemv_rows<8, 1>(j0, j1, K, A, lda, W, ldw, C, ldc, bias); break;
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
  k.pack_a = pack_a;
  k.pack_b_kn = pack_b_kn;
  k.pack_b_nk = pack_b_nk;
  k.gemv_nk = gemv_nk;
  k.gemv_max_m = kGemvMaxM;
  k.gemv_group = kGemvCols;
  return k;
}

}  // namespace

const Kernels& avx512_kernels() {
  static const Kernels k = make();
  return k;
}

}  // namespace atoma::gemm_detail
#endif
