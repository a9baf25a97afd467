// gemm_weights: A x W^T with W in a stored format. Three paths, all exactly "widen W to f32, then
// the canonical gemm":
//  - decode-sized M where the ISA has a fused kernel for the format: widening happens in
//    registers inside the GEMV (gemm_weights_avx512.cc, gemm_weights_avx2.cc), so only the stored bytes are read;
//  - decode-sized M (the f32 table's GEMV range): each task widens its own columns in small
//    panels (kept in L1/L2) and runs the f32 GEMV kernel on them, so W's stored bytes are
//    streamed from memory once -- 34 bytes per 32 weights for q8_0 instead of 128;
//  - larger M: panels of W rows are widened once (in parallel) and fed to atoma::gemm, whose
//    packing and micro-kernels then see ordinary f32 rows; widening is O(N K), the product
//    O(M N K), so it costs little. q8_0x128 panels are widened k-major ([K, n]: each k's rows
//    are side by side in the panel) and given to the gemm as B [K, N], which it packs as fast;
//    f32x16 panels need no widening, and on AVX-512 tiles read them in place.
// Tiling never changes a byte: every output element is one canonical chunked dot product.
#include "gemm_weights.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../canon/math.h"
#include "../core/error.h"
#include "../core/overlap.h"
#include "gemm.h"
#include "gemm_kernels.h"
#include "gemm_weights_kernels.h"
#include "isa.h"
#include "quant_blocks.h"
#include "scratch.h"
#include "thread_pool.h"

namespace atoma {
namespace wq_detail {

// The one exact f16 widening is quant_blocks.h's (shared with the block decoders and CUDA).
float half_to_float(uint16_t h) { return qb::f16(h); }

namespace {

uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

void conv_f32(const uint8_t* src, int64_t rb, int64_t rows, int64_t k0, int64_t kc, float* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * ldd, src + r * rb + k0 * 4, static_cast<size_t>(kc) * 4);
}

void conv_f16(const uint8_t* src, int64_t rb, int64_t rows, int64_t k0, int64_t kc, float* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* s = src + r * rb + k0 * 2;
    for (int64_t k = 0; k < kc; ++k) dst[r * ldd + k] = half_to_float(load_u16(s + 2 * k));
  }
}

void conv_bf16(const uint8_t* src, int64_t rb, int64_t rows, int64_t k0, int64_t kc, float* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* s = src + r * rb + k0 * 2;
    for (int64_t k = 0; k < kc; ++k) {
      const uint32_t bits = static_cast<uint32_t>(load_u16(s + 2 * k)) << 16;
      std::memcpy(dst + r * ldd + k, &bits, 4);
    }
  }
}

void conv_q8_0(const uint8_t* src, int64_t rb, int64_t rows, int64_t k0, int64_t kc, float* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < kc / kQ8Block; ++b) {
      const uint8_t* blk = src + r * rb + (k0 / kQ8Block + b) * kQ8BlockBytes;
      const float d = half_to_float(load_u16(blk));
      float* o = dst + r * ldd + b * kQ8Block;
      for (int i = 0; i < kQ8Block; ++i) o[i] = d * static_cast<float>(static_cast<int8_t>(blk[2 + i]));
    }
  }
}

void unpack_q8_0x128_kn(const uint8_t* P, int64_t b0, int64_t b1, float* dst, int64_t ldd) {
  constexpr int64_t R = kQ8PanelRows;
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* blk = P + b * R * kQ8BlockBytes;
    const uint8_t* q = blk + 2 * R;
    float d[R];
    for (int64_t r = 0; r < R; ++r) d[r] = half_to_float(load_u16(blk + 2 * r));
    for (int64_t k = 0; k < kQ8Block; ++k) {
      float* o = dst + (b * kQ8Block + k) * ldd;
      for (int64_t r = 0; r < R; ++r) o[r] = d[r] * static_cast<float>(static_cast<int8_t>(q[k * R + r]));
    }
  }
}

template <void (*Decode)(const uint8_t*, float*), int64_t QK, int64_t QB>
void conv_blocks(const uint8_t* src, int64_t rb, int64_t rows, int64_t k0, int64_t kc, float* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < kc / QK; ++b) Decode(src + r * rb + (k0 / QK + b) * QB, dst + r * ldd + b * QK);
}

}  // namespace

// The GGUF block types: block shape and row converter, or false for the other formats.
bool block_type(WeightFormat f, BlockType* out) {
  using namespace qb;
  switch (f) {
    case WeightFormat::Q4_0: *out = {"q4_0", 32, 18, conv_blocks<q4_0, 32, 18>}; return true;
    case WeightFormat::Q4_1: *out = {"q4_1", 32, 20, conv_blocks<q4_1, 32, 20>}; return true;
    case WeightFormat::Q5_0: *out = {"q5_0", 32, 22, conv_blocks<q5_0, 32, 22>}; return true;
    case WeightFormat::Q5_1: *out = {"q5_1", 32, 24, conv_blocks<q5_1, 32, 24>}; return true;
    case WeightFormat::Q2_K: *out = {"q2_k", 256, 84, conv_blocks<q2_k, 256, 84>}; return true;
    case WeightFormat::Q3_K: *out = {"q3_k", 256, 110, conv_blocks<q3_k, 256, 110>}; return true;
    case WeightFormat::Q4_K: *out = {"q4_k", 256, 144, conv_blocks<q4_k, 256, 144>}; return true;
    case WeightFormat::Q5_K: *out = {"q5_k", 256, 176, conv_blocks<q5_k, 256, 176>}; return true;
    case WeightFormat::Q6_K: *out = {"q6_k", 256, 210, conv_blocks<q6_k, 256, 210>}; return true;
    case WeightFormat::Iq4_Nl: *out = {"iq4_nl", 32, 18, conv_blocks<iq4_nl, 32, 18>}; return true;
    case WeightFormat::Iq4_Xs: *out = {"iq4_xs", 256, 136, conv_blocks<iq4_xs, 256, 136>}; return true;
    case WeightFormat::Mxfp4: *out = {"mxfp4", 32, 17, conv_blocks<mxfp4, 32, 17>}; return true;
    default: return false;
  }
}

const Converters& portable_converters() {
  static const Converters c{conv_f32, conv_f16, conv_bf16, conv_q8_0, unpack_q8_0x128_kn};
  return c;
}

}  // namespace wq_detail

namespace {

using gemm_detail::Kernels;
using wq_detail::ConvertRows;


ConvertRows converter(WeightFormat f, Isa isa) {
  const wq_detail::Converters* c = &wq_detail::portable_converters();
#if defined(__x86_64__) || defined(_M_X64)
  if (isa == Isa::Avx512) c = &wq_detail::avx512_converters();
#endif
  (void)isa;
  switch (f) {
    case WeightFormat::F32: return c->f32;
    case WeightFormat::F16: return c->f16;
    case WeightFormat::Bf16: return c->bf16;
    case WeightFormat::Q8_0: return c->q8_0;
    case WeightFormat::Q8_0x128:
    case WeightFormat::F32x16: return nullptr;   // panels, not rows: see unpack_panel
    default: break;
  }
  wq_detail::BlockType bt;
  if (wq_detail::block_type(f, &bt)) return bt.convert;
  return c->f32;
}

thread_local Scratch t_panel("gemm_weights: the conversion buffer");

std::string num(int64_t v) { return std::to_string(v); }


int64_t split_point(int64_t n, int64_t unit, int64_t parts, int64_t t) {
  const int64_t units = (n + unit - 1) / unit;
  return std::min(n, (units * t / parts) * unit);
}

// ~64 KiB of widened weights per GEMV panel: stays in L2 while the f32 kernel re-reads it.
constexpr int64_t kGemvPanelFloats = 16384;
// Columns widened per blocked-path panel (then handed to the threaded f32 gemm).
constexpr int64_t kBlockedPanelRows = 256;

}  // namespace

int64_t weight_row_bytes(WeightFormat format, int64_t K) {
  switch (format) {
    case WeightFormat::F32:
    case WeightFormat::F32x16: return K * 4;
    case WeightFormat::F16:
    case WeightFormat::Bf16: return K * 2;
    case WeightFormat::Q8_0:
    case WeightFormat::Q8_0x128:
      if (K % kQ8Block != 0)
        throw Error("ERR_SHAPE", "q8_0 weights need K divisible by 32, got K = " + num(K));
      return K / kQ8Block * kQ8BlockBytes;
    default: break;
  }
  wq_detail::BlockType bt;
  if (wq_detail::block_type(format, &bt)) {
    if (K % bt.weights != 0)
      throw Error("ERR_SHAPE", std::string(bt.name) + " weights need K divisible by " + num(bt.weights) + ", got K = " + num(K));
    return K / bt.weights * bt.bytes;
  }
  throw Error("ERR_WEIGHT_FORMAT", "unknown weight format");
}

int64_t weight_stored_rows(WeightFormat format, int64_t N) {
  if (N <= 0) return N;
  if (format == WeightFormat::Q8_0x128) return (N + kQ8PanelRows - 1) / kQ8PanelRows * kQ8PanelRows;
  if (format == WeightFormat::F32x16) return (N + kF32PanelRows - 1) / kF32PanelRows * kF32PanelRows;
  return N;
}

WeightFormat parse_weight_format(const char* name) {
  const std::string s = name ? name : "";
  if (s == "f32") return WeightFormat::F32;
  if (s == "f16") return WeightFormat::F16;
  if (s == "bf16") return WeightFormat::Bf16;
  if (s == "q8_0") return WeightFormat::Q8_0;
  if (s == "q8_0x128") return WeightFormat::Q8_0x128;
  if (s == "f32x16") return WeightFormat::F32x16;
  for (int f = static_cast<int>(WeightFormat::Q4_0); f <= static_cast<int>(WeightFormat::Mxfp4); ++f) {
    wq_detail::BlockType bt;
    if (wq_detail::block_type(static_cast<WeightFormat>(f), &bt) && s == bt.name) return static_cast<WeightFormat>(f);
  }
  throw Error("ERR_WEIGHT_FORMAT", "unknown weight format '" + s +
                                       "' (expected f32, f16, bf16, q8_0, q8_0x128, f32x16, q4_0, q4_1, q5_0, q5_1, "
                                       "q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs or mxfp4)");
}

namespace {

// Bytes of one q8_0x128 panel: per block, 128 scales then 32 x 128 int8.
int64_t panel_bytes(int64_t K) { return K / kQ8Block * kQ8PanelRows * kQ8BlockBytes; }

// Rows [r0, r0 + rows) of panel P (inside one panel) widened to f32: the canonical f32(d) * q.
void unpack_panel(const uint8_t* P, int64_t K, int64_t r0, int64_t rows, float* dst, int64_t ldd) {
  for (int64_t b = 0; b < K / kQ8Block; ++b) {
    const uint8_t* blk = P + b * kQ8PanelRows * kQ8BlockBytes;
    const uint8_t* q = blk + 2 * kQ8PanelRows;
    for (int64_t r = 0; r < rows; ++r) {
      const float d = wq_detail::half_to_float(static_cast<uint16_t>(blk[2 * (r0 + r)] | (blk[2 * (r0 + r) + 1] << 8)));
      float* o = dst + r * ldd + b * kQ8Block;
      for (int64_t k = 0; k < kQ8Block; ++k)
        o[k] = d * static_cast<float>(static_cast<int8_t>(q[k * kQ8PanelRows + r0 + r]));
    }
  }
}

// Columns [j, j + n) of an f32x16 matrix, k in [k0, k1), copied to dst[k * ldd + (c - j)]:
// 16-row panels hold each k's 16 rows side by side, so this is 64-byte moves.
void unpack_f32x16_kn(const uint8_t* W, int64_t K, int64_t j, int64_t n, int64_t k0, int64_t k1,
                      float* dst, int64_t ldd) {
  const int64_t panels = (n + kF32PanelRows - 1) / kF32PanelRows;
  for (int64_t k = k0; k < k1; ++k)
    for (int64_t p = 0; p < panels; ++p)
      std::memcpy(dst + k * ldd + p * kF32PanelRows, W + ((j / kF32PanelRows + p) * kF32PanelRows * K + k * kF32PanelRows) * 4,
                  kF32PanelRows * 4);
}

}  // namespace

void dequantize_weights(WeightFormat format, const void* W, int64_t rows, int64_t K, float* out) {
  const int64_t rb = weight_row_bytes(format, K);
  if (format == WeightFormat::F32x16) {
    const uint8_t* w = static_cast<const uint8_t*>(W);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < K; ++k)
        std::memcpy(out + r * K + k, w + ((r / kF32PanelRows) * kF32PanelRows * K + k * kF32PanelRows + r % kF32PanelRows) * 4, 4);
    return;
  }
  if (format == WeightFormat::Q8_0x128) {
    const uint8_t* w = static_cast<const uint8_t*>(W);
    for (int64_t j = 0; j < rows; j += kQ8PanelRows)
      unpack_panel(w + j / kQ8PanelRows * panel_bytes(K), K, 0, std::min(kQ8PanelRows, rows - j), out + j * K, K);
    return;
  }
  converter(format, Isa::Scalar)(static_cast<const uint8_t*>(W), rb, rows, 0, K, out, K);
}

void pack_q8_0x128(const void* W, int64_t W_bytes, int64_t N, int64_t K, void* out, int64_t out_bytes) {
  if (N < 0 || K < 0) throw Error("ERR_SHAPE", "pack_q8_0x128: N and K must be >= 0, got " + num(N) + ", " + num(K));
  const int64_t rb = weight_row_bytes(WeightFormat::Q8_0, K);
  if (W_bytes != N * rb)
    throw Error("ERR_WEIGHT_BYTES", "pack_q8_0x128: " + num(N) + " rows of " + num(K) + " q8_0 weights need " +
                                        num(N * rb) + " bytes, got " + num(W_bytes));
  const int64_t need = weight_stored_rows(WeightFormat::Q8_0x128, N) * rb;
  if (out_bytes != need)
    throw Error("ERR_WEIGHT_BYTES", "pack_q8_0x128: the packed weight needs " + num(need) + " bytes, got " + num(out_bytes));
  if (need == 0) return;
  if (!W || !out) throw Error("ERR_ARGUMENT", "pack_q8_0x128: W or out is null");
  if (bytes_overlap(W, W_bytes, out, out_bytes)) throw Error("ERR_ALIAS", "pack_q8_0x128: out overlaps W");
  const uint8_t* w = static_cast<const uint8_t*>(W);
  uint8_t* o = static_cast<uint8_t*>(out);
  const int64_t nb = K / kQ8Block;
  const int64_t panels = (N + kQ8PanelRows - 1) / kQ8PanelRows;
  // Panels are independent byte moves: any split gives the same bytes.
  parallel_for(static_cast<size_t>(panels), [&](size_t task) {
    const int64_t p = static_cast<int64_t>(task);
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* blk = o + p * panel_bytes(K) + b * kQ8PanelRows * kQ8BlockBytes;
      uint8_t* q = blk + 2 * kQ8PanelRows;
      for (int64_t r = 0; r < kQ8PanelRows; ++r) {
        const int64_t j = p * kQ8PanelRows + r;
        const uint8_t* src = j < N ? w + j * rb + b * kQ8BlockBytes : nullptr;
        blk[2 * r] = src ? src[0] : 0;
        blk[2 * r + 1] = src ? src[1] : 0;
        for (int64_t k = 0; k < kQ8Block; ++k) q[k * kQ8PanelRows + r] = src ? src[2 + k] : 0;
      }
    }
  });
}

void pack_f32x16(const void* W, int64_t W_bytes, int64_t N, int64_t K, void* out, int64_t out_bytes) {
  if (N < 0 || K < 0) throw Error("ERR_SHAPE", "pack_f32x16: N and K must be >= 0, got " + num(N) + ", " + num(K));
  if (W_bytes != N * K * 4)
    throw Error("ERR_WEIGHT_BYTES", "pack_f32x16: " + num(N) + " rows of " + num(K) + " f32 weights are " + num(N * K * 4) +
                                        " bytes, got " + num(W_bytes));
  const int64_t need = weight_stored_rows(WeightFormat::F32x16, N) * K * 4;
  if (out_bytes != need)
    throw Error("ERR_WEIGHT_BYTES", "pack_f32x16: the packed weight needs " + num(need) + " bytes, got " + num(out_bytes));
  if (need == 0) return;
  if (!W || !out) throw Error("ERR_ARGUMENT", "pack_f32x16: W or out is null");
  if (bytes_overlap(W, W_bytes, out, out_bytes)) throw Error("ERR_ALIAS", "pack_f32x16: out overlaps W");
  const uint8_t* w = static_cast<const uint8_t*>(W);
  uint8_t* o = static_cast<uint8_t*>(out);
  const int64_t panels = (N + kF32PanelRows - 1) / kF32PanelRows;
  // Panels are independent byte moves: any split gives the same bytes.
  parallel_for(static_cast<size_t>(panels), [&](size_t task) {
    const int64_t p = static_cast<int64_t>(task);
    uint8_t* dst = o + p * kF32PanelRows * K * 4;
    for (int64_t r = 0; r < kF32PanelRows; ++r) {
      const int64_t j = p * kF32PanelRows + r;
      for (int64_t k = 0; k < K; ++k) {
        if (j < N) std::memcpy(dst + (k * kF32PanelRows + r) * 4, w + (j * K + k) * 4, 4);
        else std::memset(dst + (k * kF32PanelRows + r) * 4, 0, 4);
      }
    }
  });
}

namespace {

// Every argument rule of one product; returns the stored row size. Nothing is written.
int64_t check_product(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const void* W,
                      int64_t W_bytes, WeightFormat format, float* C, int64_t ldc, const float* bias) {
  if (M < 0 || N < 0 || K < 0)
    throw Error("ERR_SHAPE", "gemm_weights: M, N, K must be >= 0, got " + num(M) + ", " + num(N) + ", " + num(K));
  const int64_t rb = weight_row_bytes(format, K);
  const int64_t need = weight_stored_rows(format, N) * rb;
  if (W_bytes != need)
    throw Error("ERR_WEIGHT_BYTES", "gemm_weights: " + num(N) + " rows of " + num(K) + " weights need " +
                                        num(need) + " bytes, got " + num(W_bytes));
  if (M == 0 || N == 0) return rb;
  if (!C) throw Error("ERR_ARGUMENT", "gemm_weights: C is null");
  if (ldc < N) throw Error("ERR_SHAPE", "gemm_weights: ldc " + num(ldc) + " < N " + num(N));
  const int64_t c_bytes = ((M - 1) * ldc + N) * 4;
  if (K > 0) {
    if (!A || !W) throw Error("ERR_ARGUMENT", "gemm_weights: A or W is null");
    if (lda < K) throw Error("ERR_SHAPE", "gemm_weights: lda " + num(lda) + " < K " + num(K));
    if (bytes_overlap(C, c_bytes, A, ((M - 1) * lda + K) * 4) || bytes_overlap(C, c_bytes, W, W_bytes))
      throw Error("ERR_ALIAS", "gemm_weights: C overlaps A or W");
  }
  if (bias && bytes_overlap(C, c_bytes, bias, N * 4)) throw Error("ERR_ALIAS", "gemm_weights: C overlaps bias");
  return rb;
}

#if defined(__x86_64__) || defined(_M_X64)
// The fused decode kernel for this product, or nullptr where the general path must run.
wq_detail::FusedGemv fused_kernel(Isa isa, WeightFormat format, int64_t M, int64_t rb, int64_t* group) {
  if (isa != Isa::Avx512 && isa != Isa::Avx2) return nullptr;
  const wq_detail::FusedGemvs& fg =
      isa == Isa::Avx512 ? wq_detail::avx512_fused_gemvs() : wq_detail::avx2_fused_gemvs();
  const wq_detail::FusedGemv fn = format == WeightFormat::F16        ? fg.f16
                                  : format == WeightFormat::Bf16     ? fg.bf16
                                  : format == WeightFormat::Q8_0     ? fg.q8_0
                                  : format == WeightFormat::Q8_0x128 ? fg.q8_0x128
                                  : format == WeightFormat::F32x16   ? fg.f32x16
                                                                     : nullptr;
  // The AVX-512 q8_0 kernel gathers the scales of up to 32 rows through 32-bit offsets.
  if (!fn || M < 1 || M > fg.max_m || rb > INT32_MAX / 32) return nullptr;
  // A q8_0x128 or f32x16 kernel call starts on a panel edge.
  *group = format == WeightFormat::Q8_0x128 ? kQ8PanelRows : format == WeightFormat::F32x16 ? kF32PanelRows : fg.group;
  return fn;
}
#endif

}  // namespace

void gemm_weights(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const void* W,
                  int64_t W_bytes, WeightFormat format, float* C, int64_t ldc, const float* bias) {
  const int64_t rb = check_product(M, N, K, A, lda, W, W_bytes, format, C, ldc, bias);
  if (M == 0 || N == 0) return;

  const uint8_t* w = static_cast<const uint8_t*>(W);
  // Aligned f32 weights need no widening at all.
  if (format == WeightFormat::F32 && (reinterpret_cast<uintptr_t>(W) % alignof(float)) == 0) {
    gemm(M, N, K, A, lda, reinterpret_cast<const float*>(W), K, true, C, ldc, bias);
    return;
  }
  if (K == 0) {
    gemm(M, N, 0, A, lda, nullptr, 0, true, C, ldc, bias);
    return;
  }
  const Isa isa = active_isa();
  const Kernels& kr = gemm_detail::kernels_for(isa);
  const ConvertRows conv = converter(format, isa);

#if defined(__x86_64__) || defined(_M_X64)
  // Fused decode path: no f32 panel at all, so the weights' bytes are all the memory traffic.
  int64_t g = 0;
  if (const wq_detail::FusedGemv fn = fused_kernel(isa, format, M, rb, &g)) {
    const int64_t T = M * N * K < (int64_t{1} << 18) ? 1 : static_cast<int64_t>(thread_count());
    const int64_t parts = std::max<int64_t>(1, std::min(T, (N + g - 1) / g));
    parallel_for(static_cast<size_t>(parts), [&](size_t t) {
      const int64_t j0 = split_point(N, g, parts, static_cast<int64_t>(t));
      const int64_t j1 = split_point(N, g, parts, static_cast<int64_t>(t) + 1);
      if (j1 > j0) fn(M, j0, j1, K, A, lda, w, rb, C, ldc, bias);
    });
    return;
  }
#endif
#if defined(__x86_64__) || defined(_M_X64)
  if (format == WeightFormat::F32x16 && isa == Isa::Avx512) {
    // Prefill: the panels are read in place by 6 x 32 tiles, columns split over the threads.
    const int64_t g = 2 * kF32PanelRows;
    const int64_t T = M * N * K < (int64_t{1} << 18) ? 1 : static_cast<int64_t>(thread_count());
    const int64_t parts = std::max<int64_t>(1, std::min(T, (N + g - 1) / g));
    parallel_for(static_cast<size_t>(parts), [&](size_t t) {
      const int64_t j0 = split_point(N, g, parts, static_cast<int64_t>(t));
      const int64_t j1 = split_point(N, g, parts, static_cast<int64_t>(t) + 1);
      if (j1 > j0) wq_detail::avx512_gemm_f32x16(M, j0, j1, K, A, lda, w, C, ldc, bias);
    });
    return;
  }
#endif
  if (format == WeightFormat::F32x16) {
    // No fused kernel here (another ISA, or prefill): kBlockedPanelRows columns at a time are
    // copied to [K, n] (64-byte moves, in parallel over k) and given to the f32 gemm as B [K, n].
    const int64_t ldb = std::min(kBlockedPanelRows, (N + kF32PanelRows - 1) / kF32PanelRows * kF32PanelRows);
    float* buf = t_panel.get(static_cast<size_t>(ldb * K));
    for (int64_t j = 0; j < N; j += ldb) {
      const int64_t n = std::min(ldb, N - j);
      const int64_t parts = std::min<int64_t>(static_cast<int64_t>(thread_count()), (K + 63) / 64);
      parallel_for(static_cast<size_t>(parts), [&](size_t t) {
        const int64_t k0 = K * static_cast<int64_t>(t) / parts, k1 = K * (static_cast<int64_t>(t) + 1) / parts;
        unpack_f32x16_kn(w, K, j, n, k0, k1, buf, ldb);
      });
      gemm(M, n, K, A, lda, buf, ldb, false, C + j, ldc, bias ? bias + j : nullptr);
    }
    return;
  }
  if (format == WeightFormat::Q8_0x128) {
    // No fused kernel here (another ISA, or M past the decode range, i.e. prefill): widen
    // kBlockedPanelRows columns at a time (in parallel over K's blocks, exact) in [K, n] order --
    // the packed panels hold each k's rows side by side, so this is a straight vector stream --
    // and hand them to the f32 gemm as B [K, n]; its bytes do not depend on B's layout.
    const wq_detail::UnpackPanelKn unpack =
#if defined(__x86_64__) || defined(_M_X64)
        isa == Isa::Avx512 ? wq_detail::avx512_converters().q8_0x128_kn :
#endif
                           wq_detail::portable_converters().q8_0x128_kn;
    const int64_t pb = panel_bytes(K), nb = K / kQ8Block;
    constexpr int64_t kPanels = kBlockedPanelRows / kQ8PanelRows;
    const int64_t ldb = std::min(kPanels, (N + kQ8PanelRows - 1) / kQ8PanelRows) * kQ8PanelRows;
    float* buf = t_panel.get(static_cast<size_t>(ldb * K));
    for (int64_t j = 0; j < N; j += ldb) {
      const int64_t n = std::min(ldb, N - j);
      const int64_t panels = (n + kQ8PanelRows - 1) / kQ8PanelRows;
      const int64_t units = panels * nb;
      const int64_t parts = std::min<int64_t>(static_cast<int64_t>(thread_count()), units);
      parallel_for(static_cast<size_t>(parts), [&](size_t t) {
        const int64_t u0 = units * static_cast<int64_t>(t) / parts, u1 = units * (static_cast<int64_t>(t) + 1) / parts;
        for (int64_t p = u0 / nb; p < panels && p * nb < u1; ++p) {
          const int64_t b0 = std::max(u0 - p * nb, int64_t{0}), b1 = std::min(u1 - p * nb, nb);
          if (b1 > b0) unpack(w + (j / kQ8PanelRows + p) * pb, b0, b1, buf + p * kQ8PanelRows, ldb);
        }
      });
      gemm(M, n, K, A, lda, buf, ldb, false, C + j, ldc, bias ? bias + j : nullptr);
    }
    return;
  }
  if (kr.gemv_nk && M <= kr.gemv_max_m) {
    const int64_t g = kr.gemv_group;
    const int64_t panel = std::max<int64_t>(g, kGemvPanelFloats / K / g * g);
    const int64_t work = M * N * K;
    const int64_t T = work < (int64_t{1} << 18) ? 1 : static_cast<int64_t>(thread_count());
    const int64_t parts = std::max<int64_t>(1, std::min(T, (N + g - 1) / g));
    parallel_for(static_cast<size_t>(parts), [&](size_t t) {
      const int64_t j0 = split_point(N, g, parts, static_cast<int64_t>(t));
      const int64_t j1 = split_point(N, g, parts, static_cast<int64_t>(t) + 1);
      float* buf = t_panel.get(static_cast<size_t>(panel * K));
      for (int64_t j = j0; j < j1; j += panel) {
        const int64_t n = std::min(panel, j1 - j);
        conv(w + j * rb, rb, n, 0, K, buf, K);
        kr.gemv_nk(M, 0, n, K, A, lda, buf, K, C + j, ldc, bias ? bias + j : nullptr);
      }
    });
    return;
  }

  const int64_t panel = std::min(N, kBlockedPanelRows);
  float* buf = t_panel.get(static_cast<size_t>(panel * K));
  for (int64_t j = 0; j < N; j += panel) {
    const int64_t n = std::min(panel, N - j);
    const int64_t parts = std::min<int64_t>(static_cast<int64_t>(thread_count()), (n + 15) / 16);
    parallel_for(static_cast<size_t>(parts), [&](size_t t) {
      const int64_t r0 = split_point(n, 16, parts, static_cast<int64_t>(t));
      const int64_t r1 = split_point(n, 16, parts, static_cast<int64_t>(t) + 1);
      if (r1 > r0) conv(w + (j + r0) * rb, rb, r1 - r0, 0, K, buf + r0 * K, K);
    });
    gemm(M, n, K, A, lda, buf, K, true, C + j, ldc, bias ? bias + j : nullptr);
  }
}

void gemm_weights_many(int64_t M, int64_t K, const float* A, int64_t lda, const WeightProduct* products,
                       int64_t count) {
  if (count < 0) throw Error("ERR_ARGUMENT", "gemm_weights_many: count must be >= 0, got " + num(count));
  if (count > 0 && !products) throw Error("ERR_ARGUMENT", "gemm_weights_many: products is null");
  constexpr int64_t kMaxProducts = 16;
  if (count > kMaxProducts)
    throw Error("ERR_ARGUMENT", "gemm_weights_many: at most " + num(kMaxProducts) + " products, got " + num(count));
  int64_t rbs[kMaxProducts];
  for (int64_t i = 0; i < count; ++i) {
    const WeightProduct& p = products[i];
    rbs[i] = check_product(M, p.N, K, A, lda, p.W, p.W_bytes, p.format, p.C, p.ldc, p.bias);
  }
  if (M == 0) return;
  // Outputs are written concurrently: none may touch another product's output, weights or bias.
  for (int64_t i = 0; i < count; ++i) {
    const WeightProduct& p = products[i];
    if (p.N == 0) continue;
    const int64_t c_bytes = ((M - 1) * p.ldc + p.N) * 4;
    for (int64_t j = 0; j < count; ++j) {
      if (j == i) continue;
      const WeightProduct& o = products[j];
      const int64_t o_c = o.N == 0 ? 0 : ((M - 1) * o.ldc + o.N) * 4;
      if (bytes_overlap(p.C, c_bytes, o.C, o_c) || (K > 0 && bytes_overlap(p.C, c_bytes, o.W, o.W_bytes)) ||
          (o.bias && bytes_overlap(p.C, c_bytes, o.bias, o.N * 4)))
        throw Error("ERR_ALIAS", "gemm_weights_many: product " + num(i) + "'s C overlaps product " + num(j));
    }
  }

#if defined(__x86_64__) || defined(_M_X64)
  // All fused: one dispatch splits the concatenated columns, in whole groups, over the threads.
  // Each column is still one call's column of the same kernel, so the split changes no byte.
  wq_detail::FusedGemv fns[kMaxProducts];
  int64_t units[kMaxProducts];
  bool fused = K > 0;
  int64_t g = 0, total_units = 0, total_n = 0;
  const Isa isa = active_isa();
  for (int64_t i = 0; i < count && fused; ++i) {
    int64_t gi = 0;
    fns[i] = fused_kernel(isa, products[i].format, M, rbs[i], &gi);
    if (!fns[i] || (g && gi != g)) fused = false;
    g = gi;
    units[i] = fused ? (products[i].N + g - 1) / g : 0;
    total_units += units[i];
    total_n += products[i].N;
  }
  if (fused && total_units > 0) {
    const int64_t T = M * total_n * K < (int64_t{1} << 18) ? 1 : static_cast<int64_t>(thread_count());
    const int64_t parts = std::max<int64_t>(1, std::min(T, total_units));
    parallel_for(static_cast<size_t>(parts), [&](size_t t) {
      const int64_t u0 = total_units * static_cast<int64_t>(t) / parts;
      const int64_t u1 = total_units * (static_cast<int64_t>(t) + 1) / parts;
      int64_t base = 0;
      for (int64_t i = 0; i < count && base < u1; base += units[i], ++i) {
        const int64_t lo = std::max(u0, base), hi = std::min(u1, base + units[i]);
        if (hi <= lo) continue;
        const WeightProduct& p = products[i];
        const int64_t j0 = (lo - base) * g, j1 = std::min(p.N, (hi - base) * g);
        fns[i](M, j0, j1, K, A, lda, static_cast<const uint8_t*>(p.W), rbs[i], p.C, p.ldc, p.bias);
      }
    });
    return;
  }
#endif
  for (int64_t i = 0; i < count; ++i) {
    const WeightProduct& p = products[i];
    gemm_weights(M, p.N, K, A, lda, p.W, p.W_bytes, p.format, p.C, p.ldc, p.bias);
  }
}

void gemm_weights_swiglu(int64_t M, int64_t K, const float* A, int64_t lda, const WeightProduct& gate,
                         const WeightProduct& up, float* act) {
  if (gate.N != up.N)
    throw Error("ERR_SHAPE", "gemm_weights_swiglu: gate has " + num(gate.N) + " rows, up " + num(up.N));
  if (gate.ldc != gate.N || up.ldc != up.N)
    throw Error("ERR_SHAPE", "gemm_weights_swiglu: gate and up outputs must be dense (ldc = N)");
  const int64_t N = gate.N;
  const WeightProduct ps[2] = {gate, up};
  if (M > 0 && N > 0) {
    if (!act) throw Error("ERR_ARGUMENT", "gemm_weights_swiglu: act is null");
    const int64_t bytes = M * N * 4;
    for (const WeightProduct& p : ps)
      if (bytes_overlap(act, bytes, p.C, bytes) || (K > 0 && bytes_overlap(act, bytes, p.W, p.W_bytes)) ||
          (p.bias && bytes_overlap(act, bytes, p.bias, N * 4)) || (K > 0 && bytes_overlap(act, bytes, A, ((M - 1) * lda + K) * 4)))
        throw Error("ERR_ALIAS", "gemm_weights_swiglu: act overlaps an input or another output");
  }
  auto epilogue = [&](int64_t j0, int64_t j1) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = j0; j < j1; ++j) {
        const float s = canon::silu_f32(gate.C[i * N + j]);
        act[i * N + j] = s * up.C[i * N + j];
      }
  };
#if defined(__x86_64__) || defined(_M_X64)
  int64_t gg = 0, gu = 0;
  const Isa isa = active_isa();
  const int64_t rbg = M > 0 && N > 0 && K > 0 ? check_product(M, N, K, A, lda, gate.W, gate.W_bytes, gate.format, gate.C, N, gate.bias) : 0;
  const int64_t rbu = M > 0 && N > 0 && K > 0 ? check_product(M, N, K, A, lda, up.W, up.W_bytes, up.format, up.C, N, up.bias) : 0;
  const wq_detail::FusedGemv fg = rbg ? fused_kernel(isa, gate.format, M, rbg, &gg) : nullptr;
  const wq_detail::FusedGemv fu = rbu ? fused_kernel(isa, up.format, M, rbu, &gu) : nullptr;
  if (fg && fu && gg == gu && !bytes_overlap(gate.C, M * N * 4, up.C, M * N * 4) &&
      !bytes_overlap(gate.C, M * N * 4, up.W, up.W_bytes) && !bytes_overlap(up.C, M * N * 4, gate.W, gate.W_bytes) &&
      !(up.bias && bytes_overlap(gate.C, M * N * 4, up.bias, N * 4)) && !(gate.bias && bytes_overlap(up.C, M * N * 4, gate.bias, N * 4))) {
    const int64_t g = gg;
    const int64_t T = M * 2 * N * K < (int64_t{1} << 18) ? 1 : static_cast<int64_t>(thread_count());
    const int64_t parts = std::max<int64_t>(1, std::min(T, (N + g - 1) / g));
    parallel_for(static_cast<size_t>(parts), [&](size_t t) {
      const int64_t j0 = split_point(N, g, parts, static_cast<int64_t>(t));
      const int64_t j1 = split_point(N, g, parts, static_cast<int64_t>(t) + 1);
      if (j1 <= j0) return;
      fg(M, j0, j1, K, A, lda, static_cast<const uint8_t*>(gate.W), rbg, gate.C, N, gate.bias);
      fu(M, j0, j1, K, A, lda, static_cast<const uint8_t*>(up.W), rbu, up.C, N, up.bias);
      epilogue(j0, j1);
    });
    return;
  }
#endif
  gemm_weights_many(M, K, A, lda, ps, 2);
  if (M == 0 || N == 0) return;
  swiglu(gate.C, up.C, act, M * N);
}

void swiglu(const float* gate, const float* up, float* act, int64_t n) {
  if (n <= 0) return;
  // Each element is one call of the same scalar function: any split gives the same bytes.
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(static_cast<int64_t>(thread_count()), n / 1024));
  parallel_for(static_cast<size_t>(parts), [&](size_t t) {
    const int64_t i0 = split_point(n, 16, parts, static_cast<int64_t>(t));
    const int64_t i1 = split_point(n, 16, parts, static_cast<int64_t>(t) + 1);
    for (int64_t i = i0; i < i1; ++i) {
      const float s = canon::silu_f32(gate[i]);
      act[i] = s * up[i];
    }
  });
}

}  // namespace atoma
