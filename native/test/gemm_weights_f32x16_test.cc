// f32x16 (the decode layout of f32 weights, gemm_weights.h) against f32 itself: every product
// through the packed weight must give exactly the bytes of the same product through the rows, on
// every ISA path, thread count, M (fused decode range and the prefill path), N (partial panels),
// K (partial 256-chunks, K not a multiple of 16), with and without bias, alone and in
// gemm_weights_many / gemm_weights_swiglu; plus the widening, the argument errors, and (with
// --bench) the decode speed of both layouts for a model's worth of weights streamed from memory
// (build with -O3, as the addon is, for figures).
//   g++ -std=c++17 -O2 -ffp-contract=off -Inative native/test/gemm_weights_f32x16_test.cc
//       $(node -p "require('./native/sources.json').cpu.join(' ')") -pthread -o /tmp/gwf && /tmp/gwf [--bench]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "cpu/gemm_weights.h"
#include "cpu/isa.h"
#include "cpu/thread_pool.h"
#include "test/test_support.h"

using atoma::WeightFormat;
using namespace test_support;

namespace {

// Weights with subnormals, signed zeros and (rarely) inf/NaN: the packed path must reproduce
// even the NaN-producing products.
std::vector<float> weights(int64_t N, int64_t K, Rng& rng, bool specials) {
  std::vector<float> w(static_cast<size_t>(N * K));
  for (float& x : w) {
    x = (static_cast<int32_t>(rng.next() % 4001) - 2000) / 2048.0f;
    const uint32_t r = rng.next() % 256;
    if (specials && r == 0) x = std::ldexp(1.0f, -140) * static_cast<float>(rng.next() % 7);
    if (specials && r == 1) x = -0.0f;
    if (specials && r == 2 && rng.next() % 16 == 0) x = rng.next() % 2 ? std::numeric_limits<float>::infinity() : std::nanf("");
  }
  return w;
}

std::vector<uint8_t> packed(const std::vector<float>& w, int64_t N, int64_t K) {
  std::vector<uint8_t> p(static_cast<size_t>(atoma::weight_stored_rows(WeightFormat::F32x16, N) * K * 4));
  atoma::pack_f32x16(w.data(), static_cast<int64_t>(w.size() * 4), N, K, p.data(), static_cast<int64_t>(p.size()));
  return p;
}

// Bytes equal after the tensor encoding's NaN canonicalisation (DETERMINISM.md section 2): which
// NaN payload survives an fma or add depends on operand order, which differs between the
// existing f32 kernels themselves (gemv on [N, K] rows against the blocked gemm on [K, N]).
bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::memcmp(&a[i], &b[i], 4) != 0) return false;
  }
  return true;
}

void check_widening() {
  Rng rng{11};
  for (int64_t N : {1, 15, 16, 17, 300})
    for (int64_t K : {1, 7, 64, 300}) {
      const auto w = weights(N, K, rng, true);
      const auto p = packed(w, N, K);
      std::vector<float> b(w.size());
      atoma::dequantize_weights(WeightFormat::F32x16, p.data(), N, K, b.data());
      ++g_checks;
      if (!same_bytes(w, b)) fail("widening N=" + std::to_string(N) + " K=" + std::to_string(K));
    }
}

void check_errors() {
  std::vector<float> w(17 * 8);
  std::vector<uint8_t> p(32 * 8 * 4);
  expect_error("ERR_WEIGHT_BYTES", [&] { atoma::pack_f32x16(w.data(), 16 * 8 * 4, 17, 8, p.data(), 32 * 8 * 4); }, "short W");
  expect_error("ERR_WEIGHT_BYTES", [&] { atoma::pack_f32x16(w.data(), 17 * 8 * 4, 17, 8, p.data(), 17 * 8 * 4); }, "unpadded out");
  expect_error("ERR_ALIAS", [&] { atoma::pack_f32x16(p.data(), 17 * 8 * 4, 17, 8, p.data(), 32 * 8 * 4); }, "aliasing");
  std::vector<float> a(8), c(17);
  expect_error("ERR_WEIGHT_BYTES", [&] {
    atoma::gemm_weights(1, 17, 8, a.data(), 8, p.data(), 17 * 8 * 4, WeightFormat::F32x16, c.data(), 17, nullptr);
  }, "gemm with unpadded bytes");
  ++g_checks;
  if (atoma::parse_weight_format("f32x16") != WeightFormat::F32x16) fail("parse f32x16");
}

void check_products() {
  Rng rng{7};
  const int64_t Ns[] = {1, 16, 40, 256, 300};
  const int64_t Ks[] = {1, 17, 256, 300, 800};
  for (atoma::Isa isa : atoma::available_isas()) {
    atoma::set_active_isa(isa);
    for (size_t T : {size_t{1}, size_t{2}, size_t{3}}) {
      atoma::set_thread_count(T);
      for (int64_t N : Ns)
        for (int64_t K : Ks) {
          const auto w = weights(N, K, rng, true);
          const auto p = packed(w, N, K);
          for (int64_t M : {1, 2, 3, 5, 8, 9, 13, 17, 40}) {
            const auto A = floats(static_cast<size_t>(M * K), rng);
            const auto bias = floats(static_cast<size_t>(N), rng);
            for (int with_bias = 0; with_bias < 2; ++with_bias) {
              std::vector<float> c0(static_cast<size_t>(M * N), 7.0f), c1(c0.size(), -3.0f);
              const float* bs = with_bias ? bias.data() : nullptr;
              atoma::gemm_weights(M, N, K, A.data(), K, w.data(), static_cast<int64_t>(w.size() * 4), WeightFormat::F32, c0.data(), N, bs);
              atoma::gemm_weights(M, N, K, A.data(), K, p.data(), static_cast<int64_t>(p.size()), WeightFormat::F32x16, c1.data(), N, bs);
              ++g_checks;
              if (!same_bytes(c0, c1)) fail(where("gemm_weights", M, N, K, T, isa));
            }
          }
        }
      for (int64_t M : {1, 3, 12}) {
        const int64_t D = 256, F = 640, KV = 48;
        const auto A = floats(static_cast<size_t>(M * D), rng);
        const auto wq = weights(D, D, rng, false), wk = weights(KV, D, rng, false);
        const auto pq = packed(wq, D, D), pk = packed(wk, KV, D);
        const auto bq = floats(D, rng);
        std::vector<float> r0(static_cast<size_t>(M * D)), r1(static_cast<size_t>(M * KV)), s0(r0.size()), s1(r1.size());
        const atoma::WeightProduct rows[2] = {
            {wq.data(), static_cast<int64_t>(wq.size() * 4), WeightFormat::F32, D, r0.data(), D, bq.data()},
            {wk.data(), static_cast<int64_t>(wk.size() * 4), WeightFormat::F32, KV, r1.data(), KV, nullptr}};
        const atoma::WeightProduct pks[2] = {
            {pq.data(), static_cast<int64_t>(pq.size()), WeightFormat::F32x16, D, s0.data(), D, bq.data()},
            {pk.data(), static_cast<int64_t>(pk.size()), WeightFormat::F32x16, KV, s1.data(), KV, nullptr}};
        atoma::gemm_weights_many(M, D, A.data(), D, rows, 2);
        atoma::gemm_weights_many(M, D, A.data(), D, pks, 2);
        ++g_checks;
        if (!same_bytes(r0, s0) || !same_bytes(r1, s1)) fail(where("gemm_weights_many", M, D, D, T, isa));
        const auto wg = weights(F, D, rng, false), wu = weights(F, D, rng, false);
        const auto pg = packed(wg, F, D), pu = packed(wu, F, D);
        std::vector<float> g0(static_cast<size_t>(M * F)), u0(g0.size()), a0(g0.size()), g1(g0.size()), u1(g0.size()), a1(g0.size());
        atoma::gemm_weights_swiglu(M, D, A.data(), D,
                                   {wg.data(), static_cast<int64_t>(wg.size() * 4), WeightFormat::F32, F, g0.data(), F, nullptr},
                                   {wu.data(), static_cast<int64_t>(wu.size() * 4), WeightFormat::F32, F, u0.data(), F, nullptr}, a0.data());
        atoma::gemm_weights_swiglu(M, D, A.data(), D,
                                   {pg.data(), static_cast<int64_t>(pg.size()), WeightFormat::F32x16, F, g1.data(), F, nullptr},
                                   {pu.data(), static_cast<int64_t>(pu.size()), WeightFormat::F32x16, F, u1.data(), F, nullptr}, a1.data());
        ++g_checks;
        if (!same_bytes(g0, g1) || !same_bytes(u0, u1) || !same_bytes(a0, a1)) fail(where("gemm_weights_swiglu", M, F, D, T, isa));
      }
    }
  }
  atoma::set_active_isa(atoma::best_isa());
}

// A 768-wide model's layers (11 x Q, K, V, O, gate, up, down: ~400 MB of f32), M = 1, streamed
// from memory as a decode step does; the best of 7 passes per layout.
void bench() {
  const int64_t D = 768, F = 3072, L = 11;
  struct Mat {
    int64_t N, K;
    std::vector<float> w;
    std::vector<uint8_t> p;
  };
  std::vector<Mat> mats;
  Rng rng{3};
  for (int64_t l = 0; l < L; ++l)
    for (auto nk : {std::pair<int64_t, int64_t>{D, D}, {D, D}, {D, D}, {D, D}, {F, D}, {F, D}, {D, F}}) {
      Mat m{nk.first, nk.second, weights(nk.first, nk.second, rng, false), {}};
      m.p = packed(m.w, m.N, m.K);
      mats.push_back(std::move(m));
    }
  const auto A = floats(static_cast<size_t>(F), rng);
  std::vector<float> C(static_cast<size_t>(F));
  double gb = 0;
  for (const Mat& m : mats) gb += static_cast<double>(m.N * m.K * 4) / 1e9;
  for (size_t T : {size_t{1}, size_t{2}}) {
    atoma::set_thread_count(T);
    double best[2] = {1e9, 1e9};
    for (int rep = 0; rep < 7; ++rep)
      for (int f = 0; f < 2; ++f) {
        const auto t0 = std::chrono::steady_clock::now();
        for (const Mat& m : mats) {
          if (f == 0)
            atoma::gemm_weights(1, m.N, m.K, A.data(), m.K, m.w.data(), static_cast<int64_t>(m.w.size() * 4), WeightFormat::F32, C.data(), m.N, nullptr);
          else
            atoma::gemm_weights(1, m.N, m.K, A.data(), m.K, m.p.data(), static_cast<int64_t>(m.p.size()), WeightFormat::F32x16, C.data(), m.N, nullptr);
        }
        best[f] = std::min(best[f], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    std::printf("decode step over %.0f MB of f32, %zu thread(s), isa %s: rows %.2f ms (%.1f GB/s), f32x16 %.2f ms (%.1f GB/s), %.2fx\n",
                gb * 1e3, T, atoma::isa_name(atoma::active_isa()), best[0] * 1e3, gb / best[0], best[1] * 1e3, gb / best[1], best[0] / best[1]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--bench") == 0) {
    bench();
    return 0;
  }
  check_widening();
  check_errors();
  check_products();
  std::printf("gemm_weights_f32x16_test: %ld checks, %d failures\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
