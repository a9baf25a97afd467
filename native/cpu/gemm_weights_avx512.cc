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
#include "transpose_avx512.h"

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

void unpack_q8_0x128_kn(const uint8_t* P, int64_t b0, int64_t b1, float* dst, int64_t ldd) {
  constexpr int64_t R = kQ8PanelRows;
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* blk = P + b * R * kQ8BlockBytes;
    const uint8_t* q = blk + 2 * R;
    __m512 d[R / 16];
    for (int64_t g = 0; g < R / 16; ++g)
      d[g] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * g)));
    for (int64_t k = 0; k < kQ8Block; ++k) {
      float* o = dst + (b * kQ8Block + k) * ldd;
      for (int64_t g = 0; g < R / 16; ++g) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k * R + 16 * g));
        _mm512_storeu_ps(o + 16 * g, _mm512_mul_ps(d[g], _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v))));
      }
    }
  }
}


// ---- Fused decode GEMV: the stored rows are widened in registers, never written out. ----
// Lanes are outputs: 16 rows of W are loaded 16 k at a time, widened, and transposed in
// registers, so lane j of p takes fma(A[k], w(j, k), p) for k ascending inside each 256-chunk
// (then acc = acc + p) -- the f32 GEMV's order exactly, on exactly widened values.

constexpr int64_t kKC = 256;   // DETERMINISM.md section 3

using simd::transpose16;

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

// acc[g * MB + m]: row m, columns 16g..16g+15 of the tile.
template <int MB, int G>
void store_tile(const __m512* acc, float* c, int64_t ldc, int ncols, const float* bias) {
  for (int g = 0; g < G; ++g) {
    const __mmask16 mg = low_mask(ncols - 16 * g);
    if (!mg) break;
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(mg, bias + 16 * g) : _mm512_setzero_ps();
    for (int m = 0; m < MB; ++m) {
      __m512 v = acc[g * MB + m];
      if (bias) v = _mm512_add_ps(v, bv);
      _mm512_mask_storeu_ps(c + m * ldc + 16 * g, mg, v);
    }
  }
}

// G groups of 16 rows side by side give G independent fma chains per row of A (with M = 1 one
// chain of 4-cycle fmas limits the q8_0 kernel).
// w[16 * G]: row pointers (rows past the edge repeat a valid row; their lanes are not stored).
template <int MB, int G, class Rows>
void tile_16bit(int64_t K, const float* A, int64_t lda, const uint8_t* const* w, float* c,
                int64_t ldc, int ncols, const float* bias) {
  __m512 acc[G * MB], p[G * MB], t[16];
  for (int m = 0; m < G * MB; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t c0 = 0; c0 < K; c0 += kKC) {
    const int64_t cend = std::min(K, c0 + kKC);
    for (int m = 0; m < G * MB; ++m) p[m] = _mm512_setzero_ps();
    int64_t k0 = c0;
    for (; k0 + 16 <= cend; k0 += 16) {
      for (int g = 0; g < G; ++g) {
        for (int i = 0; i < 16; ++i) t[i] = Rows::load(w[16 * g + i], k0);
        transpose16(t);
        fma_columns<MB>(t, A, lda, k0, 16, p + g * MB);
      }
    }
    if (k0 < cend) {
      const int rem = static_cast<int>(cend - k0);
      const __mmask16 km = low_mask(rem);
      for (int g = 0; g < G; ++g) {
        for (int i = 0; i < 16; ++i) t[i] = Rows::load(w[16 * g + i], k0, km);
        transpose16(t);
        fma_columns<MB>(t, A, lda, k0, rem, p + g * MB);
      }
    }
    for (int m = 0; m < G * MB; ++m) acc[m] = _mm512_add_ps(acc[m], p[m]);
  }
  store_tile<MB, G>(acc, c, ldc, ncols, bias);
}

// q8_0: K is a multiple of 32, so a block never straddles a 256-chunk. Per block the 16 rows'
// 32 int8 are transposed as dwords (4 k each), not as widened floats: 32 shuffles per 512
// weights instead of 128. V[q] lane j then holds row j's q-th dword, and weight (j, 4q + m) is its
// byte m, moved to the top byte with the rest cleared: the exact int32 q * 2^24. Times the block
// scale pre-multiplied by 2^-24 (exact, as is f32(d) * 2^-24 for every half), that is f32(d) * q
// bit for bit: both products are exact, with the same signs.
template <int MB>
inline __attribute__((always_inline)) void q8_block(const uint8_t* const* w, int64_t boff, __m512 d,
                                                    const float* A, int64_t lda, int64_t k0, __m512* p) {
  const __m512i top = _mm512_set1_epi32(static_cast<int32_t>(0xFF000000u));
  // P[x] = [row lo | row hi], rows chosen so that V[q] below comes out in row order 0..15.
  __m512i P[8];
  for (int x = 0; x < 8; ++x) {
    const int lo = x < 4 ? x : x + 4, hi = lo + 4;
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[lo] + boff + 2));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[hi] + boff + 2));
    P[x] = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
  }
  // S[2y + h]: dword pairs of P[2y], P[2y+1] (lane: row lo/hi, k quarter).
  __m512i S[8];
  for (int y = 0; y < 4; ++y) {
    S[2 * y] = _mm512_unpacklo_epi32(P[2 * y], P[2 * y + 1]);
    S[2 * y + 1] = _mm512_unpackhi_epi32(P[2 * y], P[2 * y + 1]);
  }
  // U[4g + q]: lane 0 = 4 rows' dword q, lane 1 dword q + 4, lanes 2, 3 likewise for 4 more rows.
  __m512i U[8];
  for (int g = 0; g < 2; ++g) {
    const __m512i s0 = S[4 * g], s1 = S[4 * g + 1], s2 = S[4 * g + 2], s3 = S[4 * g + 3];
    U[4 * g + 0] = _mm512_unpacklo_epi64(s0, s2);
    U[4 * g + 1] = _mm512_unpackhi_epi64(s0, s2);
    U[4 * g + 2] = _mm512_unpacklo_epi64(s1, s3);
    U[4 * g + 3] = _mm512_unpackhi_epi64(s1, s3);
  }
  for (int q = 0; q < 8; ++q) {
    const __m512i u0 = U[q & 3], u1 = U[4 + (q & 3)];
    const __m512i v = q < 4 ? _mm512_shuffle_i32x4(u0, u1, 0x88) : _mm512_shuffle_i32x4(u0, u1, 0xdd);
    const __m512i col[4] = {_mm512_slli_epi32(v, 24), _mm512_and_si512(_mm512_slli_epi32(v, 16), top),
                            _mm512_and_si512(_mm512_slli_epi32(v, 8), top), _mm512_and_si512(v, top)};
    __m512 t[4];
    for (int m = 0; m < 4; ++m) t[m] = _mm512_mul_ps(_mm512_cvtepi32_ps(col[m]), d);
    fma_columns<MB>(t, A, lda, k0 + 4 * q, 4, p);
  }
}

// row_off[g] lane i: byte offset of row 16g + i from w0 (the tile's row 0).
// pf, pf_bytes: the next tile's rows (contiguous), prefetched a slice per block. Weights come
// from a file mapping in 4 KiB pages, where the hardware prefetchers stop at every page edge;
// measured on 11 layers of 3072x768 q8_0 read in turn, about 5x faster.
template <int MB, int G>
void tile_q8_0(int64_t K, const float* A, int64_t lda, const uint8_t* w0, const __m512i* row_off,
               const uint8_t* const* w, float* c, int64_t ldc, int ncols, const float* bias,
               const uint8_t* pf, int64_t pf_bytes) {
  const int64_t pf_lines = (pf_bytes + 63) / 64;
  const int64_t pf_per_block = (pf_lines + K / kQ8Block - 1) / std::max<int64_t>(1, K / kQ8Block);
  int64_t pf_next = 0;
  __m512 acc[G * MB], p[G * MB];
  for (int m = 0; m < G * MB; ++m) acc[m] = _mm512_setzero_ps();
  const __m512 two_m24 = _mm512_set1_ps(1.0f / 16777216.0f);
  const uint8_t* blk = w0;   // block b of row 0; row i's is at its row offset from here
  int64_t boff = 0;          // the same block's offset inside any row
  for (int64_t c0 = 0; c0 < K; c0 += kKC) {
    const int64_t cend = std::min(K, c0 + kKC);
    for (int m = 0; m < G * MB; ++m) p[m] = _mm512_setzero_ps();
    for (int64_t k0 = c0; k0 < cend; k0 += kQ8Block, blk += kQ8BlockBytes, boff += kQ8BlockBytes) {
      for (int64_t end = std::min(pf_lines, pf_next + pf_per_block); pf_next < end; ++pf_next)
        _mm_prefetch(reinterpret_cast<const char*>(pf + 64 * pf_next), _MM_HINT_T0);
      for (int g = 0; g < G; ++g) {
        // 4 bytes per lane (the scale, then 2 bytes of q, inside the block); keep the low 16.
        const __m512i h = _mm512_i32gather_epi32(row_off[g], blk, 1);
        const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)), two_m24);
        q8_block<MB>(w + 16 * g, boff, d, A, lda, k0, p + g * MB);
      }
    }
    for (int m = 0; m < G * MB; ++m) acc[m] = _mm512_add_ps(acc[m], p[m]);
  }
  store_tile<MB, G>(acc, c, ldc, ncols, bias);
}

enum class Fmt { F16, Bf16, Q8_0 };

template <int MB, int G, Fmt F>
void tile(int64_t jg, int ncols, int64_t K, const float* A, int64_t lda, const uint8_t* W,
          int64_t rb, float* C, int64_t ldc, const float* bias) {
  const uint8_t* w[16 * G];
  alignas(64) int32_t off[16 * G];
  for (int r = 0; r < 16 * G; ++r) {
    const int rr = std::min(r, ncols - 1);
    w[r] = W + (jg + rr) * rb;
    off[r] = static_cast<int32_t>(rr * rb);
  }
  float* c = C + jg;
  const float* b = bias ? bias + jg : nullptr;
  if (F == Fmt::F16) tile_16bit<MB, G, F16Rows>(K, A, lda, w, c, ldc, ncols, b);
  if (F == Fmt::Bf16) tile_16bit<MB, G, Bf16Rows>(K, A, lda, w, c, ldc, ncols, b);
  if (F == Fmt::Q8_0) {
    __m512i ro[G];
    for (int g = 0; g < G; ++g) ro[g] = _mm512_load_si512(off + 16 * g);
    // Prefetching past the matrix is harmless: a prefetch never faults.
    tile_q8_0<MB, G>(K, A, lda, w[0], ro, w, c, ldc, ncols, b, W + (jg + 16 * G) * rb, 16 * G * rb);
  }
}

// Full tiles of 16 * G rows, then single groups for the edge.
template <int MB, int G, Fmt F>
void fused_rows(int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, const uint8_t* W,
                int64_t rb, float* C, int64_t ldc, const float* bias) {
  int64_t jg = j0;
  for (; j1 - jg >= 16 * G; jg += 16 * G) tile<MB, G, F>(jg, 16 * G, K, A, lda, W, rb, C, ldc, bias);
  for (; jg < j1; jg += 16)
    tile<MB, 1, F>(jg, static_cast<int>(std::min<int64_t>(16, j1 - jg)), K, A, lda, W, rb, C, ldc, bias);
}

// Two groups side by side only for q8_0 at M = 1: measured ~10% faster there; for f16/bf16 (twice
// the bytes per row) the 32 concurrent row streams read memory at half the speed of 16.
template <Fmt F>
void fused_gemv(int64_t M, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda,
                const uint8_t* W, int64_t rb, float* C, int64_t ldc, const float* bias) {
  switch (M) {
    case 1: fused_rows<1, F == Fmt::Q8_0 ? 2 : 1, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 2: fused_rows<2, 1, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 3: fused_rows<3, 1, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 4: fused_rows<4, 1, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 5: fused_rows<5, 1, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 6: fused_rows<6, 1, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 7: fused_rows<7, 1, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    case 8: fused_rows<8, 1, F>(j0, j1, K, A, lda, W, rb, C, ldc, bias); break;
    default: break;
  }
}

// ---- q8_0x128 (gemm_weights.h): the rows come pre-transposed. Lanes are 16 rows of a panel;
// for each k one 16-byte load holds their q, which are sign-extended and converted (exact), then
// multiplied by the 16 rows' block scales (exact: the definition's f32(d) * q). The fma chain per
// output is the one above. No shuffles and no gathers, so per 16 weights: one widening load, one
// convert, one multiply, one fma per row of A.

constexpr int64_t kPackedBlockBytes = kQ8PanelRows * kQ8BlockBytes;   // 128 scales + 32 x 128 q
// Software prefetch distance into the packed stream, two blocks. At decode the kernel computes
// about twice as fast as memory delivers, and the hardware prefetchers restart at every 4 KiB
// page, so each k step also asks for the bytes this far ahead (136 per k: its share of a block).
// Measured on Zen 5, one decode step of an 11-layer 768-wide q8_0 model (110 MB) from memory:
// 4.6 ms without, 2.5 ms with (1 thread); 2.9 and 2.0-2.3 ms (2 threads); 1 and 4 blocks no better.
constexpr int64_t kPackedPrefetch = 2 * kPackedBlockBytes;

// Lane groups g0 .. g0 + GB - 1 (16 rows each) of one panel, all of K; GB * MB fma chains.
template <int MB, int GB>
void packed_pass(int64_t K, const float* A, int64_t lda, const uint8_t* panel, int g0, float* c,
                 int64_t ldc, int ncols, const float* bias) {
  __m512 acc[GB * MB], p[GB * MB], d[GB];
  for (int i = 0; i < GB * MB; ++i) acc[i] = _mm512_setzero_ps();
  const uint8_t* blk = panel;
  for (int64_t c0 = 0; c0 < K; c0 += kKC) {
    const int64_t cend = std::min(K, c0 + kKC);
    for (int i = 0; i < GB * MB; ++i) p[i] = _mm512_setzero_ps();
    for (int64_t k0 = c0; k0 < cend; k0 += kQ8Block, blk += kPackedBlockBytes) {
      for (int g = 0; g < GB; ++g)
        d[g] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * (g0 + g))));
      const uint8_t* q = blk + 2 * kQ8PanelRows + 16 * g0;
      const char* pf = reinterpret_cast<const char*>(blk) + kPackedPrefetch;
      for (int k = 0; k < kQ8Block; ++k, q += kQ8PanelRows) {
        // Two lines per k cover the 136 bytes per k of the stream (later passes over the same
        // panel find it in L2).
        if (g0 == 0) {
          _mm_prefetch(pf + 136 * k, _MM_HINT_T0);
          _mm_prefetch(pf + 136 * k + 64, _MM_HINT_T0);
        }
        __m512 a[MB];
        for (int m = 0; m < MB; ++m) a[m] = _mm512_set1_ps(A[m * lda + k0 + k]);
        for (int g = 0; g < GB; ++g) {
          const __m128i qi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * g));
          const __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(qi)), d[g]);
          for (int m = 0; m < MB; ++m) p[g * MB + m] = _mm512_fmadd_ps(a[m], t, p[g * MB + m]);
        }
      }
    }
    for (int i = 0; i < GB * MB; ++i) acc[i] = _mm512_add_ps(acc[i], p[i]);
  }
  store_tile<MB, GB>(acc, c + 16 * g0, ldc, ncols - 16 * g0, bias ? bias + 16 * g0 : nullptr);
}

// Columns j0 .. j1 - 1 (j0 on a panel edge), panel after panel; passes of GB lane groups skip the
// padding rows of a partial panel.
template <int MB, int GB>
void packed_rows(int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, const uint8_t* W,
                 float* C, int64_t ldc, const float* bias) {
  const int64_t pb = K / kQ8Block * kPackedBlockBytes;
  // The stream's head, which the in-loop prefetches (PF ahead) never ask for.
  const char* head = reinterpret_cast<const char*>(W + j0 / kQ8PanelRows * pb);
  for (int64_t off = 0; off < std::min(kPackedPrefetch, pb); off += 64) _mm_prefetch(head + off, _MM_HINT_T0);
  for (int64_t j = j0; j < j1; j += kQ8PanelRows) {
    const int ncols = static_cast<int>(std::min<int64_t>(kQ8PanelRows, j1 - j));
    const uint8_t* panel = W + j / kQ8PanelRows * pb;
    for (int g0 = 0; g0 < static_cast<int>(kQ8PanelRows / 16) && 16 * g0 < ncols; g0 += GB)
      packed_pass<MB, GB>(K, A, lda, panel, g0, C + j, ldc, ncols, bias ? bias + j : nullptr);
  }
}

// 8 fma chains per pass where M allows (fma latency 4, two pipes), at most 8 x M accumulators.
void fused_gemv_q8_0x128(int64_t M, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda,
                         const uint8_t* W, int64_t /*rb*/, float* C, int64_t ldc, const float* bias) {
  switch (M) {
    case 1: packed_rows<1, 8>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 2: packed_rows<2, 4>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 3: packed_rows<3, 2>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 4: packed_rows<4, 2>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 5: packed_rows<5, 1>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 6: packed_rows<6, 1>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 7: packed_rows<7, 1>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 8: packed_rows<8, 1>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    default: break;
  }
}

// ---- f32x16: each k's 16 outputs are one 64-byte load; the matrix is one sequential stream. ----
// Lane r of p[m] takes fma(A[m][k], w(j + r, k), p[m]) for k ascending in each 256-chunk, then
// acc = acc + p: the f32 GEMV's order exactly.

// Lines ahead of the stream (4 KiB): the prefetchers restart at each page of the mapping.
constexpr int64_t kF32x16Prefetch = 64;

template <int MB>
void f32x16_rows(int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, const uint8_t* W,
                 float* C, int64_t ldc, const float* bias) {
  for (int64_t j = j0; j < j1; j += kF32PanelRows) {
    const int ncols = static_cast<int>(std::min<int64_t>(kF32PanelRows, j1 - j));
    const uint8_t* P = W + j * K * 4;
    __m512 acc[MB], p[MB];
    for (int m = 0; m < MB; ++m) acc[m] = _mm512_setzero_ps();
    for (int64_t c0 = 0; c0 < K; c0 += kKC) {
      const int64_t cend = std::min(K, c0 + kKC);
      for (int m = 0; m < MB; ++m) p[m] = _mm512_setzero_ps();
      for (int64_t k = c0; k < cend; ++k) {
        if ((k & 3) == 0) _mm_prefetch(reinterpret_cast<const char*>(P + (k + kF32x16Prefetch) * 64), _MM_HINT_T0);
        const __m512 w = _mm512_loadu_ps(P + k * 64);
        for (int m = 0; m < MB; ++m) p[m] = _mm512_fmadd_ps(_mm512_set1_ps(A[m * lda + k]), w, p[m]);
      }
      for (int m = 0; m < MB; ++m) acc[m] = _mm512_add_ps(acc[m], p[m]);
    }
    store_tile<MB, 1>(acc, C + j, ldc, ncols, bias ? bias + j : nullptr);
  }
}

// ---- f32x16 for prefill: the panels are already the shape a GEMM micro-kernel streams B in
// (each k's 16 columns side by side), so tiles of MR rows x 32 columns read them in place --
// no widening or packing pass. Per output: p = fma(A[i][k], w(j, k), p) over each 256-chunk
// from +0.0, acc = acc + p from +0.0, then + bias: DETERMINISM.md section 3 exactly.

template <int MR, int NP>
void x16_tile(int64_t K, const float* A, int64_t lda, const uint8_t* P, int64_t panel_bytes, float* C,
              int64_t ldc, int ncols, const float* bias) {
  __m512 acc[NP * MR], p[NP * MR];
  for (int i = 0; i < NP * MR; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t c0 = 0; c0 < K; c0 += kKC) {
    const int64_t cend = std::min(K, c0 + kKC);
    for (int i = 0; i < NP * MR; ++i) p[i] = _mm512_setzero_ps();
    for (int64_t k = c0; k < cend; ++k) {
      __m512 b[NP];
      for (int g = 0; g < NP; ++g) b[g] = _mm512_loadu_ps(P + g * panel_bytes + k * 64);
      for (int m = 0; m < MR; ++m) {
        const __m512 a = _mm512_set1_ps(A[m * lda + k]);
        for (int g = 0; g < NP; ++g) p[g * MR + m] = _mm512_fmadd_ps(a, b[g], p[g * MR + m]);
      }
    }
    for (int i = 0; i < NP * MR; ++i) acc[i] = _mm512_add_ps(acc[i], p[i]);
  }
  store_tile<MR, NP>(acc, C, ldc, ncols, bias);
}

template <int MR>
void x16_rows(int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, const uint8_t* W, float* C,
              int64_t ldc, const float* bias) {
  const int64_t pb = kF32PanelRows * K * 4;
  for (int64_t j = j0; j < j1; j += 2 * kF32PanelRows) {
    const int ncols = static_cast<int>(std::min<int64_t>(2 * kF32PanelRows, j1 - j));
    const uint8_t* P = W + j / kF32PanelRows * pb;
    const float* bs = bias ? bias + j : nullptr;
    if (ncols > kF32PanelRows) x16_tile<MR, 2>(K, A, lda, P, pb, C + j, ldc, ncols, bs);
    else x16_tile<MR, 1>(K, A, lda, P, pb, C + j, ldc, ncols, bs);
  }
}

void x16_block(int64_t rows, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, const uint8_t* W,
               float* C, int64_t ldc, const float* bias) {
  switch (rows) {
    case 1: x16_rows<1>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 2: x16_rows<2>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 3: x16_rows<3>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 4: x16_rows<4>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 5: x16_rows<5>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 6: x16_rows<6>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    default: break;
  }
}

void fused_gemv_f32x16(int64_t M, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda,
                       const uint8_t* W, int64_t /*rb*/, float* C, int64_t ldc, const float* bias) {
  switch (M) {
    case 1: f32x16_rows<1>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 2: f32x16_rows<2>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 3: f32x16_rows<3>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 4: f32x16_rows<4>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 5: f32x16_rows<5>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 6: f32x16_rows<6>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 7: f32x16_rows<7>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    case 8: f32x16_rows<8>(j0, j1, K, A, lda, W, C, ldc, bias); break;
    default: break;
  }
}

}  // namespace

void avx512_gemm_f32x16(int64_t M, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda,
                        const uint8_t* W, float* C, int64_t ldc, const float* bias) {
  // Column blocks whose panels (~512 KiB) stay in L2 while every 6-row block of A passes over them.
  const int64_t cb = std::max<int64_t>(32, (int64_t{512} << 10) / (K * 4) / 32 * 32);
  for (int64_t jb = j0; jb < j1; jb += cb) {
    const int64_t je = std::min(j1, jb + cb);
    for (int64_t i = 0; i < M; i += 6)
      x16_block(std::min<int64_t>(6, M - i), jb, je, K, A + i * lda, lda, W, C + i * ldc, ldc, bias);
  }
}

const FusedGemvs& avx512_fused_gemvs() {
  static const FusedGemvs g{fused_gemv<Fmt::F16>, fused_gemv<Fmt::Bf16>, fused_gemv<Fmt::Q8_0>, 8, 16,
                            fused_gemv_q8_0x128, fused_gemv_f32x16};
  return g;
}

const Converters& avx512_converters() {
  static const Converters c{conv_f32, conv_f16, conv_bf16, conv_q8_0, unpack_q8_0x128_kn};
  return c;
}

}  // namespace atoma::wq_detail
#endif
