// q8_0x128 (the decode layout of q8_0, gemm_weights.h) against q8_0 itself: every product through
// the packed weight must give exactly the bytes of the same product through the GGUF rows, on
// every ISA path, thread count, M (fused decode range and the blocked, prefill path), N (partial
// panels), K (partial 256-chunks), with and without bias, alone and in gemm_weights_many /
// gemm_weights_swiglu; plus the widening itself, the argument errors, and (with --bench) the
// decode speed of both layouts, per shape from cache and for a model's worth of weights streamed
// from memory (build with -O3, as the addon is, for figures).
//   g++ -std=c++17 -O2 -ffp-contract=off -Inative native/test/gemm_weights_packed_test.cc
//       $(node -p "require('./native/sources.json').cpu.join(' ')") -pthread -o /tmp/gwp && /tmp/gwp [--bench]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
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

// GGUF q8_0 rows with scales of every kind a file can hold: normal, subnormal, zero, negative,
// and (rarely) inf/NaN, so the packed path must reproduce even the NaN-producing products.
std::vector<uint8_t> q8_rows(int64_t N, int64_t K, Rng& rng, bool specials) {
  const int64_t rb = atoma::weight_row_bytes(WeightFormat::Q8_0, K);
  std::vector<uint8_t> w(static_cast<size_t>(N * rb));
  for (int64_t j = 0; j < N; ++j)
    for (int64_t b = 0; b < K / 32; ++b) {
      uint8_t* blk = w.data() + j * rb + b * 34;
      uint16_t d = static_cast<uint16_t>((rng.next() & 0x83ffu) | ((3 + rng.next() % 12) << 10));
      const uint32_t r = rng.next() % 64;
      if (specials && r == 0) d = static_cast<uint16_t>(rng.next() & 0x83ffu);                 // subnormal / zero
      if (specials && r == 1) d = 0x8000;                                                       // -0
      if (specials && r == 2 && rng.next() % 8 == 0) d = static_cast<uint16_t>(0x7c00u | (rng.next() & 0x3ff));  // inf / NaN
      std::memcpy(blk, &d, 2);
      for (int i = 0; i < 32; ++i) blk[2 + i] = static_cast<uint8_t>(rng.next());
    }
  return w;
}

std::vector<uint8_t> packed(const std::vector<uint8_t>& w, int64_t N, int64_t K) {
  std::vector<uint8_t> p(static_cast<size_t>(atoma::weight_stored_rows(WeightFormat::Q8_0x128, N) *
                                             atoma::weight_row_bytes(WeightFormat::Q8_0x128, K)));
  atoma::pack_q8_0x128(w.data(), static_cast<int64_t>(w.size()), N, K, p.data(), static_cast<int64_t>(p.size()));
  return p;
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

void check_widening() {
  Rng rng{11};
  for (int64_t N : {1, 127, 128, 129, 300})
    for (int64_t K : {32, 64, 288}) {
      const auto w = q8_rows(N, K, rng, true);
      const auto p = packed(w, N, K);
      std::vector<float> a(static_cast<size_t>(N * K)), b(a.size());
      atoma::dequantize_weights(WeightFormat::Q8_0, w.data(), N, K, a.data());
      atoma::dequantize_weights(WeightFormat::Q8_0x128, p.data(), N, K, b.data());
      ++g_checks;
      if (!same_bytes(a, b)) fail("widening N=" + std::to_string(N) + " K=" + std::to_string(K));
    }
}

void check_products() {
  Rng rng{7};
  const int64_t Ns[] = {1, 16, 100, 128, 200, 384, 770};
  const int64_t Ks[] = {32, 224, 256, 288, 800};
  for (atoma::Isa isa : atoma::available_isas()) {
    atoma::set_active_isa(isa);
    for (size_t T : {size_t{1}, size_t{2}, size_t{3}}) {
      atoma::set_thread_count(T);
      for (int64_t N : Ns)
        for (int64_t K : Ks) {
          const auto w = q8_rows(N, K, rng, true);
          const auto p = packed(w, N, K);
          for (int64_t M : {1, 2, 3, 4, 5, 8, 9, 17, 40}) {
            const auto A = floats(static_cast<size_t>(M * K), rng);
            const auto bias = floats(static_cast<size_t>(N), rng);
            for (int with_bias = 0; with_bias < 2; ++with_bias) {
              std::vector<float> c0(static_cast<size_t>(M * N), 7.0f), c1(c0.size(), -3.0f);
              const float* bs = with_bias ? bias.data() : nullptr;
              atoma::gemm_weights(M, N, K, A.data(), K, w.data(), static_cast<int64_t>(w.size()), WeightFormat::Q8_0, c0.data(), N, bs);
              atoma::gemm_weights(M, N, K, A.data(), K, p.data(), static_cast<int64_t>(p.size()), WeightFormat::Q8_0x128, c1.data(), N, bs);
              ++g_checks;
              if (!same_bytes(c0, c1)) fail(where("gemm_weights", M, N, K, T, isa));
            }
          }
        }
      // A layer's shapes through the batched entry points: Q, K, V in one call; gate/up + SiLU.
      for (int64_t M : {1, 2, 7}) {
        const int64_t D = 256, F = 640, KV = 128;
        const auto A = floats(static_cast<size_t>(M * D), rng);
        const auto wq = q8_rows(D, D, rng, false), wk = q8_rows(KV, D, rng, false), wv = q8_rows(KV, D, rng, false);
        const auto pq = packed(wq, D, D), pk = packed(wk, KV, D), pv = packed(wv, KV, D);
        const auto bq = floats(D, rng);
        std::vector<float> r[3], s[3];
        const int64_t ns[3] = {D, KV, KV};
        for (int i = 0; i < 3; ++i) {
          r[i].assign(static_cast<size_t>(M * ns[i]), 1.0f);
          s[i].assign(r[i].size(), 2.0f);
        }
        const atoma::WeightProduct rows[3] = {
            {wq.data(), static_cast<int64_t>(wq.size()), WeightFormat::Q8_0, D, r[0].data(), D, bq.data()},
            {wk.data(), static_cast<int64_t>(wk.size()), WeightFormat::Q8_0, KV, r[1].data(), KV, nullptr},
            {wv.data(), static_cast<int64_t>(wv.size()), WeightFormat::Q8_0, KV, r[2].data(), KV, nullptr}};
        const atoma::WeightProduct pks[3] = {
            {pq.data(), static_cast<int64_t>(pq.size()), WeightFormat::Q8_0x128, D, s[0].data(), D, bq.data()},
            {pk.data(), static_cast<int64_t>(pk.size()), WeightFormat::Q8_0x128, KV, s[1].data(), KV, nullptr},
            {pv.data(), static_cast<int64_t>(pv.size()), WeightFormat::Q8_0x128, KV, s[2].data(), KV, nullptr}};
        atoma::gemm_weights_many(M, D, A.data(), D, rows, 3);
        atoma::gemm_weights_many(M, D, A.data(), D, pks, 3);
        for (int i = 0; i < 3; ++i) {
          ++g_checks;
          if (!same_bytes(r[i], s[i])) fail(where("gemm_weights_many", M, ns[i], D, T, isa));
        }
        const auto wg = q8_rows(F, D, rng, false), wu = q8_rows(F, D, rng, false);
        const auto pg = packed(wg, F, D), pu = packed(wu, F, D);
        std::vector<float> g0(static_cast<size_t>(M * F)), u0(g0.size()), a0(g0.size()), g1(g0.size()), u1(g0.size()), a1(g0.size());
        atoma::gemm_weights_swiglu(M, D, A.data(), D,
                                   {wg.data(), static_cast<int64_t>(wg.size()), WeightFormat::Q8_0, F, g0.data(), F, nullptr},
                                   {wu.data(), static_cast<int64_t>(wu.size()), WeightFormat::Q8_0, F, u0.data(), F, nullptr}, a0.data());
        atoma::gemm_weights_swiglu(M, D, A.data(), D,
                                   {pg.data(), static_cast<int64_t>(pg.size()), WeightFormat::Q8_0x128, F, g1.data(), F, nullptr},
                                   {pu.data(), static_cast<int64_t>(pu.size()), WeightFormat::Q8_0x128, F, u1.data(), F, nullptr}, a1.data());
        ++g_checks;
        if (!same_bytes(g0, g1) || !same_bytes(u0, u1) || !same_bytes(a0, a1)) fail(where("gemm_weights_swiglu", M, F, D, T, isa));
      }
    }
  }
  atoma::set_active_isa(atoma::best_isa());
}

void check_errors() {
  std::vector<uint8_t> w(2 * 34, 0), p(128 * 34, 0);
  std::vector<float> A(64, 1.0f), C(4, 0.0f);
  expect_error("ERR_WEIGHT_BYTES", [&] { atoma::pack_q8_0x128(w.data(), 67, 2, 32, p.data(), 128 * 34); }, "short source");
  expect_error("ERR_WEIGHT_BYTES", [&] { atoma::pack_q8_0x128(w.data(), 68, 2, 32, p.data(), 68); }, "unpadded output");
  expect_error("ERR_SHAPE", [&] { atoma::pack_q8_0x128(w.data(), 68, 2, 33, p.data(), 128 * 34); }, "K % 32");
  expect_error("ERR_ALIAS", [&] { atoma::pack_q8_0x128(p.data(), 68, 2, 32, p.data(), 128 * 34); }, "in place");
  expect_error("ERR_WEIGHT_BYTES", [&] { atoma::gemm_weights(1, 2, 32, A.data(), 32, p.data(), 68, WeightFormat::Q8_0x128, C.data(), 2, nullptr); }, "unpadded packed");
  ++g_checks;
  if (atoma::parse_weight_format("q8_0x128") != WeightFormat::Q8_0x128) fail("parse q8_0x128");
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One decode step's matrix products of an 11-layer, 768-wide model (Q, K, V, O, gate, up, down),
// each weight read once per step as in decode: ~110 MB, far more than the caches.
void bench() {
  const int64_t D = 768, F = 3072, L = 11;
  struct Mat { int64_t N, K; std::vector<uint8_t> rows, pk; };
  std::vector<Mat> mats;
  Rng rng{3};
  for (int64_t l = 0; l < L; ++l)
    for (auto nk : {std::pair<int64_t, int64_t>{D, D}, {D, D}, {D, D}, {D, D}, {F, D}, {F, D}, {D, F}}) {
      Mat m{nk.first, nk.second, q8_rows(nk.first, nk.second, rng, false), {}};
      m.pk = packed(m.rows, m.N, m.K);
      mats.push_back(std::move(m));
    }
  std::vector<float> A(static_cast<size_t>(F), 0.5f), C(static_cast<size_t>(F)), C2(static_cast<size_t>(F)), act(static_cast<size_t>(F));
  for (size_t i = 0; i < A.size(); ++i) A[i] = std::sin(static_cast<float>(i));
  // Warm (cache-resident) per shape: layer 0's matrices, repeated.
  atoma::set_thread_count(1);
  for (int idx : {0, 4, 6}) {
    const Mat& m = mats[static_cast<size_t>(idx)];
    for (int packed_layout = 0; packed_layout < 2; ++packed_layout) {
      const auto& w = packed_layout ? m.pk : m.rows;
      double best = 1e30;
      for (int r = 0; r < 200; ++r) {
        const double t0 = now();
        atoma::gemm_weights(1, m.N, m.K, A.data(), m.K, w.data(), static_cast<int64_t>(w.size()),
                            packed_layout ? WeightFormat::Q8_0x128 : WeightFormat::Q8_0, C.data(), m.N, nullptr);
        best = std::min(best, now() - t0);
      }
      std::printf("warm %lldx%lld %-8s 1 thread: %.1f us\n", (long long)m.N, (long long)m.K, packed_layout ? "q8_0x128" : "q8_0", best * 1e6);
    }
  }
  {
    const Mat &g = mats[4], &u = mats[5];
    for (int packed_layout = 0; packed_layout < 2; ++packed_layout) {
      const auto& wg = packed_layout ? g.pk : g.rows;
      const auto& wu = packed_layout ? u.pk : u.rows;
      const WeightFormat f = packed_layout ? WeightFormat::Q8_0x128 : WeightFormat::Q8_0;
      double best = 1e30;
      for (int r = 0; r < 200; ++r) {
        const double t0 = now();
        atoma::gemm_weights_swiglu(1, D, A.data(), D, {wg.data(), static_cast<int64_t>(wg.size()), f, F, C.data(), F, nullptr},
                                   {wu.data(), static_cast<int64_t>(wu.size()), f, F, C2.data(), F, nullptr}, act.data());
        best = std::min(best, now() - t0);
      }
      std::printf("warm swiglu %-8s 1 thread: %.1f us\n", packed_layout ? "q8_0x128" : "q8_0", best * 1e6);
    }
  }
  for (size_t T : {size_t{1}, size_t{2}}) {
    atoma::set_thread_count(T);
    for (int packed_layout = 0; packed_layout < 2; ++packed_layout) {
      double best = 1e30;
      for (int r = 0; r < 15; ++r) {
        const double t0 = now();
        for (const Mat& m : mats) {
          const auto& w = packed_layout ? m.pk : m.rows;
          atoma::gemm_weights(1, m.N, m.K, A.data(), m.K, w.data(), static_cast<int64_t>(w.size()),
                              packed_layout ? WeightFormat::Q8_0x128 : WeightFormat::Q8_0, C.data(), m.N, nullptr);
        }
        best = std::min(best, now() - t0);
      }
      std::printf("bench %-8s threads %zu: %.3f ms per step (best of 15)\n", packed_layout ? "q8_0x128" : "q8_0", T, best * 1e3);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--bench") {
    bench();
    return 0;
  }
  check_widening();
  check_errors();
  check_products();
  std::printf("gemm_weights_packed_test: %ld checks, %d failures\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
