// AVX-512 weight widening: 16 weights per instruction (vcvtph2ps for f16, a 16-bit shift for
// bf16, sign-extend + int->float + one multiply by the block scale for q8_0). All exact, so the
// result equals the portable converters bit for bit. Plus the fused decode GEMVs, which widen the
// same way in registers and so read only the stored bytes (34 per 32 weights for q8_0).
#if defined(__x86_64__) || defined(_M_X64)
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")
// GCC 12 flags the undefined pass-through operand inside its own AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "gemm_weights.h"
#include "gemm_weights_kernels.h"

namespace atoma::wq_detail {
namespace {

inline __mmask16 low_mask(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
}

void conv_f32(const uint8_t* src, int64_t rb, int64_t rows, int64_t k0, int64_t kc, float* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * ldd, src + r * rb + k0 * 4, static_cast<size_t>(kc) * 4);
}

void conv_f16(const uint8_t* src, int64_t rb, int64_t rows, int64_t k0, int64_t kc, float* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* s = src + r * rb + k0 * 2;
    float* d = dst + r * ldd;
    for (int64_t k = 0; k < kc; k += 16) {
      const __mmask16 m = low_mask(kc - k);
      const __m256i h = _mm256_maskz_loadu_epi16(m, s + 2 * k);
      _mm512_mask_storeu_ps(d + k, m, _mm512_cvtph_ps(h));
    }
  }
}

void conv_bf16(const uint8_t* src, int64_t rb, int64_t rows, int64_t k0, int64_t kc, float* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* s = src + r * rb + k0 * 2;
    float* d = dst + r * ldd;
    for (int64_t k = 0; k < kc; k += 16) {
      const __mmask16 m = low_mask(kc - k);
      const __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, s + 2 * k)), 16);
      _mm512_mask_storeu_ps(d + k, m, _mm512_castsi512_ps(w));
    }
  }
}

void conv_q8_0(const uint8_t* src, int64_t rb, int64_t rows, int64_t k0, int64_t kc, float* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* blk = src + r * rb + (k0 / kQ8Block) * kQ8BlockBytes;
    float* d = dst + r * ldd;
    for (int64_t k = 0; k < kc; k += kQ8Block, blk += kQ8BlockBytes) {
      uint16_t h;
      std::memcpy(&h, blk, 2);
      const __m512 scale = _mm512_set1_ps(_cvtsh_ss(h));
      const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 18));
      _mm512_storeu_ps(d + k, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0))));
      _mm512_storeu_ps(d + k + 16, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1))));
    }
  }
}


// ---- Fused decode GEMV: the stored rows are widened in registers, never written out. ----
// Lanes are outputs: 16 rows of W are loaded 16 k at a time, widened, and transposed in
// registers, so lane j of p takes fma(A[k], w(j, k), p) for k ascending inside each 256-chunk
// (then acc = acc + p) -- the f32 GEMV's order exactly, on exactly widened values.

constexpr int64_t kKC = 256;   // DETERMINISM.md section 3

// In place: r[s] lane i <- r[i] lane s.
inline __attribute__((always_inline)) void transpose16(__m512* r) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  __m512 u[16];
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 x0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
    const __m512 x1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
    const __m512 y0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 y1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_shuffle_f32x4(x0, y0, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(x0, y0, 0xdd);
    r[4 + c] = _mm512_shuffle_f32x4(x1, y1, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(x1, y1, 0xdd);
  }
}

// 16 consecutive 16-bit weights of row i from k0 (masked: only the low lanes of km).
struct F16Rows {
  static __m512 load(const uint8_t* row, int64_t k0) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k0)));
  }
  static __m512 load(const uint8_t* row, int64_t k0, __mmask16 km) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(km, row + 2 * k0));
  }
};

struct Bf16Rows {
  static __m512 widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static __m512 load(const uint8_t* row, int64_t k0) {
    return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k0)));
  }
  static __m512 load(const uint8_t* row, int64_t k0, __mmask16 km) {
    return widen(_mm256_maskz_loadu_epi16(km, row + 2 * k0));
  }
};

template <int MB>
inline __attribute__((always_inline)) void fma_columns(const __m512* t, const float* A, int64_t lda,
                                                       int64_t k0, int n, __m512* p) {
  for (int s = 0; s < n; ++s)
    for (int m = 0; m < MB; ++m) p[m] = _mm512_fmadd_ps(_mm512_set1_ps(A[m * lda + k0 + s]), t[s], p[m]);
}

template <int MB>
void store_tile(const __m512* acc, float* c, int64_t ldc, int ncols, const float* bias) {
  const __mmask16 mg = low_mask(ncols);
  const __m512 bv = bias ? _mm512_maskz_loadu_ps(mg, bias) : _mm512_setzero_ps();
  for (int m = 0; m < MB; ++m) {
    __m512 v = acc[m];
    if (bias) v = _mm512_add_ps(v, bv);
    _mm512_mask_storeu_ps(c + m * ldc, mg, v);
  }
}

// w[16]: row pointers (rows past the edge repeat a valid row; their lanes are not stored).
template <int MB, class Rows>
void tile_16bit(int64_t K, const float* A, int64_t lda, const uint8_t* const* w, float* c,
                int64_t ldc, int ncols, const float* bias) {
  __m512 acc[MB], p[MB], t[16];
  for (int m = 0; m < MB; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t c0 = 0; c0 < K; c0 += kKC) {
    const int64_t cend = std::min(K, c0 + kKC);
    for (int m = 0; m < MB; ++m) p[m] = _mm512_setzero_ps();
    int64_t k0 = c0;
    for (; k0 + 16 <= cend; k0 += 16) {
      for (int i = 0; i < 16; ++i) t[i] = Rows::load(w[i], k0);
      transpose16(t);
      fma_columns<MB>(t, A, lda, k0, 16, p);
    }
    if (k0 < cend) {
      const int rem = static_cast<int>(cend - k0);
      const __mmask16 km = low_mask(rem);
      for (int i = 0; i < 16; ++i) t[i] = Rows::load(w[i], k0, km);
      transpose16(t);
      fma_columns<MB>(t, A, lda, k0, rem, p);
    }
    for (int m = 0; m < MB; ++m) acc[m] = _mm512_add_ps(acc[m], p[m]);
  }
  store_tile<MB>(acc, c, ldc, ncols, bias);
}

// q8_0: K is a multiple of 32, so a 16-wide k slice never straddles a block or a 256-chunk. The
// 16 rows' block scales are gathered once per block (one lane each) and applied after the
// transpose: lane j of column s is then f32(d_j) * q_j -- the exact widened weight.
template <int MB>
void tile_q8_0(int64_t K, const float* A, int64_t lda, const uint8_t* w0, __m512i row_off,
               const uint8_t* const* w, float* c, int64_t ldc, int ncols, const float* bias) {
  __m512 acc[MB], p[MB], t[16];
  for (int m = 0; m < MB; ++m) acc[m] = _mm512_setzero_ps();
  const uint8_t* blk = w0;   // block b of row 0; row i's is at row_off lane i from here
  int64_t boff = 0;          // the same block's offset inside any row
  for (int64_t c0 = 0; c0 < K; c0 += kKC) {
    const int64_t cend = std::min(K, c0 + kKC);
    for (int m = 0; m < MB; ++m) p[m] = _mm512_setzero_ps();
    for (int64_t k0 = c0; k0 < cend; k0 += kQ8Block, blk += kQ8BlockBytes, boff += kQ8BlockBytes) {
      // 4 bytes per lane (the scale, then 2 bytes of q, inside the block); keep the low 16.
      const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(row_off, blk, 1)));
      for (int h = 0; h < 2; ++h) {
        for (int i = 0; i < 16; ++i)
          t[i] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i] + boff + 2 + 16 * h))));
        transpose16(t);
        for (int s = 0; s < 16; ++s) t[s] = _mm512_mul_ps(t[s], d);
        fma_columns<MB>(t, A, lda, k0 + 16 * h, 16, p);
      }
    }
    for (int m = 0; m < MB; ++m) acc[m] = _mm512_add_ps(acc[m], p[m]);
  }
  store_tile<MB>(acc, c, ldc, ncols, bias);
}

enum class Fmt { F16, Bf16, Q8_0 };

template <int MB, Fmt F>
void fused_rows(int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, const uint8_t* W,
                int64_t rb, float* C, int64_t ldc, const float* bias) {
  const uint8_t* w[16];
  alignas(64) int32_t off[16];
  for (int64_t jg = j0; jg < j1; jg += 16) {
    const int ncols = static_cast<int>(std::min<int64_t>(16, j1 - jg));
    for (int r = 0; r < 16; ++r) {
      const int rr = std::min(r, ncols - 1);
      w[r] = W + (jg + rr) * rb;
      off[r] = static_cast<int32_t>(rr * rb);
    }
    float* c = C + jg;
    const float* b = bias ? bias + jg : nullptr;
    if (F == Fmt::F16) tile_16bit<MB, F16Rows>(K, A, lda, w, c, ldc, ncols, b);
    if (F == Fmt::Bf16) tile_16bit<MB, Bf16Rows>(K, A, lda, w, c, ldc, ncols, b);
    if (F == Fmt::Q8_0) tile_q8_0<MB>(K, A, lda, w[0], _mm512_load_si512(off), w, c, ldc, ncols, b);
  }
}

template <Fmt F>
void fused_gemv(int64_t M, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda,
                const uint8_t* W, int64_t rb, float* C, int64_t ldc, const float* bias) {
  switch (M) {
    case 1: fused_rows<1, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 2: fused_rows<2, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 3: fused_rows<3, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 4: fused_rows<4, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 5: fused_rows<5, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 6: fused_rows<6, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 7: fused_rows<7, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 8: fused_rows<8, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    default: break;
  }
}

}  // namespace

const FusedGemvs& avx512_fused_gemvs() {
  static const FusedGemvs g{fused_gemv<Fmt::F16>, fused_gemv<Fmt::Bf16>, fused_gemv<Fmt::Q8_0>, 8, 16};
  return g;
}

const Converters& avx512_converters() {
  static const Converters c{conv_f32, conv_f16, conv_bf16, conv_q8_0};
  return c;
}

}  // namespace atoma::wq_detail
#endif
