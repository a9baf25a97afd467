// The canonical GEMM driver: argument checks, blocking, packing and threading. The per-element
// order (DETERMINISM.md section 3) is fixed by two things only: K is walked in 256-wide blocks in
// ascending order, each block's products summed by a micro-kernel that starts from +0.0 and adds
// its result into C; and every K block of a tile is finished before the next one starts. How M
// and N are tiled, which thread runs which tile and how wide the SIMD lanes are never changes a
// byte.
#include "gemm.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "../core/error.h"
#include "../core/overlap.h"
#include "gemm_kernels.h"
#include "isa.h"
#include "scratch.h"
#include "thread_pool.h"

namespace atoma {
namespace gemm_detail {

void pack_a_generic(const float* A, int64_t lda, int m, int64_t kc, float* dst) {
  for (int i = 0; i < m; ++i) {
    const float* src = A + i * lda;
    for (int64_t k = 0; k < kc; ++k) dst[k * m + i] = src[k];
  }
}

void pack_b_kn_generic(const float* B, int64_t ldb, int n, int nr, int64_t kc, float* dst) {
  for (int64_t k = 0; k < kc; ++k) {
    const float* src = B + k * ldb;
    float* d = dst + k * nr;
    int j = 0;
    for (; j < n; ++j) d[j] = src[j];
    for (; j < nr; ++j) d[j] = 0.0f;
  }
}

void pack_b_nk_generic(const float* B, int64_t ldb, int n, int nr, int64_t kc, float* dst) {
  for (int j = 0; j < nr; ++j) {
    if (j < n) {
      const float* src = B + j * ldb;
      for (int64_t k = 0; k < kc; ++k) dst[k * nr + j] = src[k];
    } else {
      for (int64_t k = 0; k < kc; ++k) dst[k * nr + j] = 0.0f;
    }
  }
}

const Kernels& kernels_for(Isa isa) {
#if defined(__x86_64__) || defined(_M_X64)
  if (isa == Isa::Avx512) return avx512_kernels();
  if (isa == Isa::Avx2) return avx2_kernels();
#endif
  (void)isa;
  return scalar_kernels();
}

}  // namespace gemm_detail

namespace {

using gemm_detail::Kernels;
using gemm_detail::kKC;

thread_local Scratch t_a_buf("gemm: the A packing buffer"), t_b_buf("gemm: the B packing buffer");

// Cache blocking. A block of kMC x 256 (about 170 KiB) and B block of 256 x kNC (512 KiB) share
// the 1-2 MiB L2 of current x86 cores; a B micro-panel (256 x nr) stays in L1 across the M loop.
constexpr int64_t kMC = 168;
constexpr int64_t kNC = 512;

struct Problem {
  int64_t M, N, K;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  bool b_is_nk;
  float* C;
  int64_t ldc;
  const float* bias;
  const Kernels* kr;
};

// C[i0..i1) x [j0..j1) over all of K; i0, j0 and the range widths are multiples of mr / nr
// except at the matrix edges. Each task packs its own A block: packed while the B block waits in
// L2, it stays hot for the micro-kernels, which measured faster than sharing one packed A.
void run_tile(const Problem& p, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  const Kernels& kr = *p.kr;
  const int64_t mr = kr.mr, nr = kr.nr;
  const int64_t mc = std::min<int64_t>(kMC / mr * mr, (i1 - i0 + mr - 1) / mr * mr);
  const int64_t nc = std::min<int64_t>(kNC / nr * nr, (j1 - j0 + nr - 1) / nr * nr);
  // Streaming B straight from the caller pays off when it is read by one row panel only.
  const bool direct_b = !p.b_is_nk && kr.ukr_direct[1] != nullptr && i1 - i0 <= mr;
  float* ap = t_a_buf.get(static_cast<size_t>(mc * kKC));
  float* bp = direct_b ? nullptr : t_b_buf.get(static_cast<size_t>(nc * kKC));
  const gemm_detail::PackB pack_b = p.b_is_nk ? kr.pack_b_nk : kr.pack_b_kn;

  for (int64_t jc = j0; jc < j1; jc += nc) {
    const int64_t jn = std::min(nc, j1 - jc);
    for (int64_t pc = 0; pc < p.K; pc += kKC) {
      const int64_t kc = std::min(kKC, p.K - pc);
      const bool first = pc == 0;
      const bool last = pc + kc == p.K;
      if (!direct_b) {
        for (int64_t jr = 0; jr < jn; jr += nr) {
          const int n = static_cast<int>(std::min(nr, jn - jr));
          const float* src = p.b_is_nk ? p.B + (jc + jr) * p.ldb + pc : p.B + pc * p.ldb + jc + jr;
          pack_b(src, p.ldb, n, kc, bp + jr * kc);
        }
      }
      for (int64_t ic = i0; ic < i1; ic += mc) {
        const int64_t mn = std::min(mc, i1 - ic);
        for (int64_t ir = 0; ir < mn; ir += mr) {
          const int m = static_cast<int>(std::min(mr, mn - ir));
          kr.pack_a(p.A + (ic + ir) * p.lda + pc, p.lda, m, kc, ap + ir * kc);
        }
        for (int64_t jr = 0; jr < jn; jr += nr) {
          const int n = static_cast<int>(std::min(nr, jn - jr));
          const float* b = direct_b ? p.B + pc * p.ldb + jc + jr : bp + jr * kc;
          const int64_t ldbp = direct_b ? p.ldb : nr;
          const float* bias = (last && p.bias) ? p.bias + jc + jr : nullptr;
          for (int64_t ir = 0; ir < mn; ir += mr) {
            const int m = static_cast<int>(std::min(mr, mn - ir));
            const gemm_detail::MicroKernel uk = direct_b ? kr.ukr_direct[m] : kr.ukr[m];
            uk(kc, ap + ir * kc, b, ldbp, p.C + (ic + ir) * p.ldc + jc + jr, p.ldc, n, first, bias);
          }
        }
      }
    }
  }
}

// Splits [0, n) into `parts` ranges whose inner boundaries are multiples of `unit`.
int64_t split_point(int64_t n, int64_t unit, int64_t parts, int64_t t) {
  const int64_t units = (n + unit - 1) / unit;
  return std::min(n, (units * t / parts) * unit);
}

size_t useful_threads(int64_t work) {
  // Below ~2^18 multiply-adds a task handoff costs more than it saves.
  if (work < (int64_t{1} << 18)) return 1;
  return thread_count();
}

void fill_bias(const Problem& p) {
  for (int64_t i = 0; i < p.M; ++i) {
    float* c = p.C + i * p.ldc;
    for (int64_t j = 0; j < p.N; ++j) c[j] = p.bias ? 0.0f + p.bias[j] : 0.0f;
  }
}

void run_gemv(const Problem& p) {
  const Kernels& kr = *p.kr;
  const int64_t T = static_cast<int64_t>(useful_threads(p.M * p.N * p.K));
  const int64_t groups = (p.N + kr.gemv_group - 1) / kr.gemv_group;
  const int64_t parts = std::max<int64_t>(1, std::min(T, groups));
  parallel_for(static_cast<size_t>(parts), [&](size_t t) {
    const int64_t j0 = split_point(p.N, kr.gemv_group, parts, static_cast<int64_t>(t));
    const int64_t j1 = split_point(p.N, kr.gemv_group, parts, static_cast<int64_t>(t) + 1);
    if (j1 > j0) kr.gemv_nk(p.M, j0, j1, p.K, p.A, p.lda, p.B, p.ldb, p.C, p.ldc, p.bias);
  });
}

void run_blocked(const Problem& p) {
  const Kernels& kr = *p.kr;
  const int64_t T = static_cast<int64_t>(useful_threads(p.M * p.N * p.K));
  const int64_t np = (p.N + kr.nr - 1) / kr.nr;
  const int64_t mp = (p.M + kr.mr - 1) / kr.mr;
  // Split N first: each task then packs its own B columns once and streams all of A.
  const int64_t cn = std::max<int64_t>(1, std::min(np, T));
  const int64_t cm = std::max<int64_t>(1, std::min(mp, (T + cn - 1) / cn));
  parallel_for(static_cast<size_t>(cn * cm), [&](size_t task) {
    const int64_t tn = static_cast<int64_t>(task) % cn, tm = static_cast<int64_t>(task) / cn;
    const int64_t j0 = split_point(p.N, kr.nr, cn, tn), j1 = split_point(p.N, kr.nr, cn, tn + 1);
    const int64_t i0 = split_point(p.M, kr.mr, cm, tm), i1 = split_point(p.M, kr.mr, cm, tm + 1);
    if (j1 > j0 && i1 > i0) run_tile(p, i0, i1, j0, j1);
  });
}

// Float ranges: lengths in elements.
bool overlaps(const float* a, int64_t a_len, const float* b, int64_t b_len) {
  return bytes_overlap(a, a_len * 4, b, b_len * 4);
}

std::string num(int64_t v) { return std::to_string(v); }

}  // namespace

void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, bool b_is_nk, float* C, int64_t ldc, const float* bias) {
  if (M < 0 || N < 0 || K < 0)
    throw Error("ERR_SHAPE", "gemm: M, N, K must be >= 0, got " + num(M) + ", " + num(N) + ", " + num(K));
  if (M == 0 || N == 0) return;
  if (!C) throw Error("ERR_ARGUMENT", "gemm: C is null");
  if (ldc < N) throw Error("ERR_SHAPE", "gemm: ldc " + num(ldc) + " < N " + num(N));
  const int64_t c_len = (M - 1) * ldc + N;
  if (K > 0) {
    if (!A || !B) throw Error("ERR_ARGUMENT", "gemm: A or B is null");
    if (lda < K) throw Error("ERR_SHAPE", "gemm: lda " + num(lda) + " < K " + num(K));
    const int64_t b_inner = b_is_nk ? K : N;
    if (ldb < b_inner)
      throw Error("ERR_SHAPE", "gemm: ldb " + num(ldb) + " < " + (b_is_nk ? "K " : "N ") + num(b_inner));
    const int64_t a_len = (M - 1) * lda + K;
    const int64_t b_len = ((b_is_nk ? N : K) - 1) * ldb + b_inner;
    if (overlaps(C, c_len, A, a_len) || overlaps(C, c_len, B, b_len))
      throw Error("ERR_ALIAS", "gemm: C overlaps A or B");
  }
  if (bias && overlaps(C, c_len, bias, N)) throw Error("ERR_ALIAS", "gemm: C overlaps bias");

  Problem p{M, N, K, A, lda, B, ldb, b_is_nk, C, ldc, bias, &gemm_detail::kernels_for(active_isa())};
  if (K == 0) {
    fill_bias(p);
  } else if (b_is_nk && p.kr->gemv_nk && M <= p.kr->gemv_max_m) {
    run_gemv(p);
  } else {
    run_blocked(p);
  }
}

}  // namespace atoma
