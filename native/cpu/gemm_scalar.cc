// The portable GEMM table: the reference the SIMD tables must match byte for byte. A small
// register tile keeps it usable for test-sized products; every product goes through canon::fmaf_.
#include "../canon/hd.h"
#include "gemm_kernels.h"

namespace atoma::gemm_detail {
namespace {

constexpr int kMR = 4;
constexpr int kNR = 8;

template <int M>
void ukr(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, int n,
         bool first, const float* bias) {
  float acc[M][kNR];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < kNR; ++j) acc[i][j] = 0.0f;
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * ldb;
    for (int i = 0; i < M; ++i) {
      const float ai = a[k * M + i];
      for (int j = 0; j < kNR; ++j) acc[i][j] = canon::fmaf_(ai, bk[j], acc[i][j]);
    }
  }
  for (int i = 0; i < M; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < n; ++j) {
      float v = (first ? 0.0f : ci[j]) + acc[i][j];
      if (bias) v = v + bias[j];
      ci[j] = v;
    }
  }
}

void pack_b_kn(const float* B, int64_t ldb, int n, int64_t kc, float* dst) {
  pack_b_kn_generic(B, ldb, n, kNR, kc, dst);
}
void pack_b_nk(const float* B, int64_t ldb, int n, int64_t kc, float* dst) {
  pack_b_nk_generic(B, ldb, n, kNR, kc, dst);
}

Kernels make() {
  Kernels k{};
  k.mr = kMR;
  k.nr = kNR;
  k.ukr[1] = ukr<1>;
  k.ukr[2] = ukr<2>;
  k.ukr[3] = ukr<3>;
  k.ukr[4] = ukr<4>;
  k.pack_a = pack_a_generic;
  k.pack_b_kn = pack_b_kn;
  k.pack_b_nk = pack_b_nk;
  k.gemv_nk = nullptr;
  k.gemv_max_m = 0;
  k.gemv_group = 1;
  return k;
}

}  // namespace

const Kernels& scalar_kernels() {
  static const Kernels k = make();
  return k;
}

}  // namespace atoma::gemm_detail
