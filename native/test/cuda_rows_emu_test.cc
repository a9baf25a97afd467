// Runs the CUDA row, RoPE and attention kernels (native/cuda/rows_kernel.cuh, rope_kernel.cuh,
// attention_kernel.cuh) on the CPU through native/test/cuda_emu.h, with the launch shapes of
// the .cu files, and compares them bit for bit with the CPU engine (native/cpu).
//
//   g++ -std=c++20 -O2 -ffp-contract=off -Inative -Inative/test native/test/cuda_rows_emu_test.cc \
//       native/cpu/*.cc native/hash/*.cc -pthread
#include <cstdio>
#include <string>

#define __shared__   // attention's `extern __shared__` buffer is defined below
#include "cuda_emu.h"

#include "canon/philox.h"
#include "cpu/attention.h"
#include "cpu/rows.h"
#include "cuda/attention_kernel.cuh"
#include "cuda/rope_kernel.cuh"
#include "cuda/rows_kernel.cuh"

namespace atoma::cuda::attention_detail {
alignas(16) float smem[1 << 16];
}

using namespace atoma;
using cuda_emu::launch;
using Vec = std::vector<float>;

static int g_cases = 0, g_fail = 0;
static void check(const Vec& got, const Vec& want, const std::string& what) {
  ++g_cases;
  size_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i)
    bad += !((std::isnan(got[i]) && std::isnan(want[i])) || canon::f32_bits(got[i]) == canon::f32_bits(want[i]));
  if (bad) {
    ++g_fail;
    std::printf("MISMATCH %s: %zu of %zu\n", what.c_str(), bad, want.size());
  }
}
static Vec seeded(size_t n, uint64_t seed, uint32_t stream, float scale = 1.0f) {
  Vec v(n);
  for (size_t i = 0; i < n; ++i) v[i] = canon::seeded_value(seed, stream, i) * scale;
  return v;
}
static dim3 rows_grid(int64_t rows) { return dim3{static_cast<unsigned>((rows + 7) / 8), 1, 1}; }

static void rows_tests() {
  using namespace cuda::row_kernels;
  for (int64_t rows : {1, 3, 9})
    for (int64_t n : {1, 31, 33, 257, 1000}) {
      const std::string tag = " rows=" + std::to_string(rows) + " n=" + std::to_string(n);
      Vec x = seeded(rows * n, n, 1, 4.0f), w = seeded(n, n, 2), b = seeded(rows * n, n, 3);
      if (n > 10) {
        x[3] = NAN;
        if (rows > 1) x[n + 1] = INFINITY;
      }
      Vec y(rows * n), r(rows * n), ry(rows), gy(rows);
      launch(rows_grid(rows), 256, [&] { rmsnorm_kernel(x.data(), w.data(), y.data(), rows, n, 1e-5f); });
      atoma::rmsnorm(x.data(), w.data(), r.data(), rows, n, 1e-5f);
      check(y, r, "rmsnorm" + tag);
      launch(rows_grid(rows), 256, [&] { softmax_kernel(x.data(), y.data(), rows, n); });
      atoma::softmax(x.data(), r.data(), rows, n);
      check(y, r, "softmax" + tag);
      launch(rows_grid(rows), 256, [&] { row_reduce_kernel<RowOp::Sum>(x.data(), rows, n, gy.data()); });
      atoma::row_sums(x.data(), rows, n, ry.data());
      check(gy, ry, "row_sums" + tag);
      std::vector<int32_t> ga(rows), ra(rows);
      launch(rows_grid(rows), 256, [&] { argmax_kernel(x.data(), rows, n, ga.data()); });
      atoma::argmax_rows(x.data(), rows, n, ra.data());
      check(Vec(ga.begin(), ga.end()), Vec(ra.begin(), ra.end()), "argmax" + tag);
      launch(dim3{2, 1, 1}, 256, [&] { add_kernel(x.data(), b.data(), y.data(), rows * n); });
      atoma::add(x.data(), b.data(), r.data(), rows * n);
      check(y, r, "add" + tag);
      launch(dim3{2, 1, 1}, 256, [&] { broadcast_rows_kernel<true>(x.data(), rows, n, w.data(), y.data()); });
      atoma::mul_rows(x.data(), rows, n, w.data(), r.data());
      check(y, r, "mul_rows" + tag);
    }
  Vec x = seeded(3000, 1, 9, 30.0f), y(3000), r(3000);
  const cuda::Unary ops[] = {cuda::Unary::Exp, cuda::Unary::Log, cuda::Unary::Tanh, cuda::Unary::Sin,
                             cuda::Unary::Cos, cuda::Unary::Silu, cuda::Unary::Gelu};
  for (int i = 0; i < 7; ++i) {
    launch(dim3{3, 1, 1}, 256, [&] {
      switch (ops[i]) {
        case cuda::Unary::Exp: unary_kernel<cuda::Unary::Exp>(x.data(), y.data(), 3000); break;
        case cuda::Unary::Log: unary_kernel<cuda::Unary::Log>(x.data(), y.data(), 3000); break;
        case cuda::Unary::Tanh: unary_kernel<cuda::Unary::Tanh>(x.data(), y.data(), 3000); break;
        case cuda::Unary::Sin: unary_kernel<cuda::Unary::Sin>(x.data(), y.data(), 3000); break;
        case cuda::Unary::Cos: unary_kernel<cuda::Unary::Cos>(x.data(), y.data(), 3000); break;
        case cuda::Unary::Silu: unary_kernel<cuda::Unary::Silu>(x.data(), y.data(), 3000); break;
        default: unary_kernel<cuda::Unary::Gelu>(x.data(), y.data(), 3000); break;
      }
    });
    atoma::unary(static_cast<atoma::Unary>(i), x.data(), r.data(), 3000);
    check(y, r, "unary " + std::to_string(i));
  }
}

static void rope_tests() {
  using namespace cuda::rope_detail;
  for (int neox = 0; neox < 2; ++neox)
    for (int64_t hd : {8, 64})
      for (int64_t rot : {hd, hd / 2})
        for (int scaled = 0; scaled < 2; ++scaled) {
        const int64_t tokens = 4, heads = 3, half = rot / 2;
        Vec x = seeded(tokens * heads * hd, hd, 5), r = x;
        std::vector<int32_t> pos = {0, 5, 1000, 32767};
        // RoPE scaling divisors in [1, 8], not powers of two, so the division rounds.
        Vec div(half);
        for (int64_t i = 0; i < half; ++i) div[i] = 1.0f + 7.0f * static_cast<float>(i) / static_cast<float>(half) + 0.37f * static_cast<float>(i % 2);
        const float* d = scaled ? div.data() : nullptr;
        Vec inv(half);
        launch(dim3{1, 1, 1}, 128, [&] { inv_freq_kernel(half, rot, 10000.0f, d, inv.data()); });
        launch(dim3{static_cast<unsigned>((tokens * half + 127) / 128), 1, 1}, 128,
               [&] { rope_kernel(x.data(), tokens, heads, hd, half, pos.data(), inv.data(), neox); });
        atoma::rope(r.data(), tokens, heads, hd, rot, pos.data(), 10000.0f, neox, d);
        check(x, r, "rope neox=" + std::to_string(neox) + " hd=" + std::to_string(hd) + " rot=" + std::to_string(rot) +
                        (scaled ? " scaled" : ""));
      }
}

static void attention_tests() {
  using namespace cuda::attention_detail;
  struct C { int64_t n_q, nh, nkv, hd, n_kv; };
  for (const C& c : {C{1, 4, 1, 64, 1}, C{3, 4, 2, 64, 300}, C{2, 2, 2, 80, 33}}) {
    Vec q = seeded(c.n_q * c.nh * c.hd, 1, 1, 2.0f), k = seeded(c.n_kv * c.nkv * c.hd, 2, 2, 2.0f);
    Vec v = seeded(c.n_kv * c.nkv * c.hd, 3, 3), out(c.n_q * c.nh * c.hd), r(out.size());
    std::vector<int32_t> pos(c.n_q);
    for (int64_t i = 0; i < c.n_q; ++i) pos[i] = static_cast<int32_t>(std::max<int64_t>(0, c.n_kv - c.n_q + i));
    Vec scores(c.n_q * c.nh * c.n_kv);
    for (int global = 0; global < 2; ++global) {
      launch(dim3{static_cast<unsigned>(c.n_q * c.nh), 1, 1}, THREADS, [&] {
        attention_kernel(q.data(), c.nh, k.data(), v.data(), c.n_kv, c.nkv, c.hd, pos.data(), out.data(), 0,
                         global ? scores.data() : nullptr);
      });
      atoma::attention(q.data(), c.n_q, c.nh, k.data(), v.data(), c.n_kv, c.nkv, c.hd, pos.data(), r.data());
      check(out, r, "attention n_q=" + std::to_string(c.n_q) + " n_kv=" + std::to_string(c.n_kv) +
                        (global ? " global scores" : " shared scores"));
    }
  }
}

int main() {
  rows_tests();
  rope_tests();
  attention_tests();
  std::printf("total: %d cases, %d mismatches\n%s\n", g_cases, g_fail, g_fail ? "FAIL" : "PASS");
  return g_fail ? 1 : 0;
}
