// Standalone checks of atoma::gemm: every ISA path and thread count against canon::chunked_dot
// bit for bit, batch-split invariance, signed zeros and non-finite inputs, argument errors, and
// accuracy against float64.
//   g++ -std=c++17 -O3 -ffp-contract=off -Inative native/test/gemm_test.cc native/cpu/gemm*.cc
//       native/cpu/isa.cc native/cpu/thread_pool.cc -pthread -o /tmp/gemm_test && /tmp/gemm_test
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "canon/philox.h"
#include "canon/reduce.h"
#include "core/error.h"
#include "cpu/gemm.h"
#include "cpu/isa.h"
#include "cpu/thread_pool.h"
#include "test/test_support.h"

using namespace test_support;

namespace {

bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || bits(a) == bits(b); }

struct Case {
  int64_t M, N, K;
  bool nk;
  bool bias;
  int64_t pad;   // extra elements at the end of every row of A, B and C
};

std::string describe(const Case& c, const char* isa, size_t threads) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "M=%lld N=%lld K=%lld %s bias=%d pad=%lld isa=%s threads=%zu",
                (long long)c.M, (long long)c.N, (long long)c.K, c.nk ? "nk" : "kn", c.bias,
                (long long)c.pad, isa, threads);
  return buf;
}

struct Operands {
  int64_t lda, ldb, ldc;
  std::vector<float> A, B, bias, ref;
};

const float kSentinel = 12345.678f;

Operands make(const Case& c, uint64_t seed) {
  Operands o;
  o.lda = c.K + c.pad;
  o.ldb = (c.nk ? c.K : c.N) + c.pad;
  o.ldc = c.N + c.pad;
  const int64_t b_rows = c.nk ? c.N : c.K;
  o.A.resize(static_cast<size_t>(std::max<int64_t>(1, c.M * o.lda)));
  o.B.resize(static_cast<size_t>(std::max<int64_t>(1, b_rows * o.ldb)));
  o.bias.resize(static_cast<size_t>(std::max<int64_t>(1, c.N)));
  for (size_t i = 0; i < o.A.size(); ++i) o.A[i] = atoma::canon::seeded_value(seed, 1, i);
  for (size_t i = 0; i < o.B.size(); ++i) o.B[i] = atoma::canon::seeded_value(seed, 2, i);
  for (size_t i = 0; i < o.bias.size(); ++i) o.bias[i] = atoma::canon::seeded_value(seed, 3, i);
  o.ref.assign(static_cast<size_t>(std::max<int64_t>(1, c.M * o.ldc)), kSentinel);
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      const float* b = c.nk ? o.B.data() + j * o.ldb : o.B.data() + j;
      float v = atoma::canon::chunked_dot(o.A.data() + i * o.lda, 1, b, c.nk ? 1 : o.ldb, c.K);
      if (c.bias) v = v + o.bias[j];
      o.ref[i * o.ldc + j] = v;
    }
  return o;
}

std::vector<float> run(const Case& c, const Operands& o) {
  std::vector<float> C(o.ref.size(), kSentinel);
  atoma::gemm(c.M, c.N, c.K, o.A.data(), o.lda, o.B.data(), o.ldb, c.nk, C.data(), o.ldc,
              c.bias ? o.bias.data() : nullptr);
  return C;
}

void compare(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ++g_checks;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!same(got[i], want[i])) {
      char buf[120];
      std::snprintf(buf, sizeof buf, " at %zu: got %a want %a", i, got[i], want[i]);
      fail(what + buf);
      return;
    }
  }
}

const size_t kThreads[] = {1, 2, 3};

void test_grid() {
  const int64_t Ms[] = {0, 1, 2, 4, 5, 7, 13, 64};
  const int64_t Ns[] = {0, 1, 3, 17, 33, 100};
  const int64_t Ks[] = {0, 1, 255, 256, 257, 700, 1000};
  uint64_t seed = 1;
  for (int64_t M : Ms)
    for (int64_t N : Ns)
      for (int64_t K : Ks)
        for (int nk = 0; nk < 2; ++nk)
          for (int bias = 0; bias < 2; ++bias) {
            const Case c{M, N, K, nk != 0, bias != 0, (M + N + K) % 2 ? 3 : 0};
            const Operands o = make(c, seed++);
            for (atoma::Isa isa : atoma::available_isas()) {
              atoma::set_active_isa(isa);
              for (size_t t : kThreads) {
                atoma::set_thread_count(t);
                compare(run(c, o), o.ref, describe(c, atoma::isa_name(isa), t));
              }
            }
          }
}

// Several cache blocks in M and N, the direct-B path (one row panel) and large strides.
void test_large() {
  const Case cases[] = {
      {200, 1100, 600, false, true, 5}, {200, 1100, 600, true, true, 5},
      {14, 1000, 513, false, false, 0}, {6, 1000, 513, false, true, 17},
      {3, 530, 1300, true, true, 1},    {16, 530, 1300, true, false, 0},
      {9, 70, 520, true, true, 2},      {8, 200, 300, true, false, 0},
  };
  uint64_t seed = 1000;
  for (const Case& c : cases) {
    const Operands o = make(c, seed++);
    for (atoma::Isa isa : atoma::available_isas()) {
      atoma::set_active_isa(isa);
      for (size_t t : kThreads) {
        atoma::set_thread_count(t);
        compare(run(c, o), o.ref, describe(c, atoma::isa_name(isa), t));
      }
    }
  }
}

// Rows of a batched product equal the same rows computed one at a time (decode vs prefill).
void test_batch_split() {
  for (int nk = 0; nk < 2; ++nk) {
    const Case c{8, 300, 777, nk != 0, true, 2};
    const Operands o = make(c, 77);
    for (atoma::Isa isa : atoma::available_isas()) {
      atoma::set_active_isa(isa);
      atoma::set_thread_count(2);
      const std::vector<float> whole = run(c, o);
      compare(whole, o.ref, describe(c, atoma::isa_name(isa), 2) + " batch");
      for (int64_t r = 0; r < c.M; ++r) {
        std::vector<float> row(static_cast<size_t>(c.N));
        atoma::gemm(1, c.N, c.K, o.A.data() + r * o.lda, o.lda, o.B.data(), o.ldb, c.nk, row.data(),
                    c.N, o.bias.data());
        std::vector<float> want(whole.begin() + r * o.ldc, whole.begin() + r * o.ldc + c.N);
        compare(row, want, describe(c, atoma::isa_name(isa), 2) + " row " + std::to_string(r));
      }
      // Splits 8 = 3 + 5 as well (small-M kernels against the blocked ones).
      std::vector<float> part(static_cast<size_t>(8 * o.ldc), kSentinel);
      atoma::gemm(3, c.N, c.K, o.A.data(), o.lda, o.B.data(), o.ldb, c.nk, part.data(), o.ldc,
                  o.bias.data());
      atoma::gemm(5, c.N, c.K, o.A.data() + 3 * o.lda, o.lda, o.B.data(), o.ldb, c.nk,
                  part.data() + 3 * o.ldc, o.ldc, o.bias.data());
      compare(part, whole, describe(c, atoma::isa_name(isa), 2) + " split 3+5");
    }
  }
}

// Signed zeros, infinities and NaN go through the same operations on every path.
void test_special_values() {
  for (int nk = 0; nk < 2; ++nk) {
    const Case c{9, 40, 300, nk != 0, true, 1};
    Operands o = make(c, 5);
    for (size_t i = 0; i < o.A.size(); i += 7) o.A[i] = -0.0f;
    for (size_t i = 3; i < o.B.size(); i += 11) o.B[i] = -0.0f;
    o.A[5] = INFINITY;
    o.A[o.lda + 17] = -INFINITY;
    o.B[100] = NAN;
    o.A[2 * o.lda + 3] = 1e-42f;   // subnormal
    o.B[2 * o.ldb + 1] = 3e-39f;
    for (int64_t j = 0; j < c.N; j += 3) o.bias[j] = -0.0f;
    for (int64_t k = 0; k < c.K; ++k) o.A[4 * o.lda + k] = -0.0f;   // a row of -0 products
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        const float* b = c.nk ? o.B.data() + j * o.ldb : o.B.data() + j;
        o.ref[i * o.ldc + j] =
            atoma::canon::chunked_dot(o.A.data() + i * o.lda, 1, b, c.nk ? 1 : o.ldb, c.K) + o.bias[j];
      }
    for (atoma::Isa isa : atoma::available_isas()) {
      atoma::set_active_isa(isa);
      for (size_t t : kThreads) {
        atoma::set_thread_count(t);
        const std::vector<float> got = run(c, o);
        compare(got, o.ref, describe(c, atoma::isa_name(isa), t) + " special");
        // Column 3 has a -0 bias and no NaN in B: +0 (products) + -0 (bias) is +0.
        if (bits(got[4 * o.ldc + 3]) != 0u) fail("row of -0 products");
      }
    }
  }
  // K = 0: +0.0 then + bias, so a -0 bias gives +0.
  for (atoma::Isa isa : atoma::available_isas()) {
    atoma::set_active_isa(isa);
    float bias[2] = {-0.0f, 2.5f}, C[4] = {7, 7, 7, 7};
    atoma::gemm(2, 2, 0, nullptr, 0, nullptr, 0, false, C, 2, bias);
    if (bits(C[0]) != 0u || C[1] != 2.5f || bits(C[2]) != 0u || C[3] != 2.5f) fail("K=0 with bias");
    atoma::gemm(2, 2, 0, nullptr, 0, nullptr, 0, true, C, 2, nullptr);
    for (float v : C)
      if (bits(v) != 0u) fail("K=0 without bias");
  }
}

void test_errors() {
  float a[64] = {}, b[64] = {}, c[64] = {};
  expect_error("ERR_SHAPE", [&] { atoma::gemm(-1, 2, 2, a, 2, b, 2, false, c, 2, nullptr); }, "M<0");
  expect_error("ERR_SHAPE", [&] { atoma::gemm(2, 2, -2, a, 2, b, 2, false, c, 2, nullptr); }, "K<0");
  expect_error("ERR_SHAPE", [&] { atoma::gemm(2, 3, 2, a, 2, b, 3, false, c, 2, nullptr); }, "ldc<N");
  expect_error("ERR_SHAPE", [&] { atoma::gemm(2, 2, 3, a, 2, b, 2, false, c, 2, nullptr); }, "lda<K");
  expect_error("ERR_SHAPE", [&] { atoma::gemm(2, 4, 2, a, 2, b, 3, false, c, 4, nullptr); }, "ldb<N");
  expect_error("ERR_SHAPE", [&] { atoma::gemm(2, 2, 4, a, 4, b, 3, true, c, 2, nullptr); }, "ldb<K");
  expect_error("ERR_ARGUMENT", [&] { atoma::gemm(2, 2, 2, nullptr, 2, b, 2, false, c, 2, nullptr); }, "A null");
  expect_error("ERR_ARGUMENT", [&] { atoma::gemm(2, 2, 2, a, 2, b, 2, false, nullptr, 2, nullptr); }, "C null");
  expect_error("ERR_ALIAS", [&] { atoma::gemm(2, 2, 2, a, 2, b, 2, false, a + 1, 2, nullptr); }, "C aliases A");
  expect_error("ERR_ALIAS", [&] { atoma::gemm(2, 2, 2, a, 2, b, 2, true, b, 2, nullptr); }, "C aliases B");
  // Empty products touch nothing and accept null pointers.
  atoma::gemm(0, 5, 5, nullptr, 5, nullptr, 5, false, nullptr, 5, nullptr);
  atoma::gemm(5, 0, 5, nullptr, 5, nullptr, 5, true, nullptr, 0, nullptr);
}

// Normwise error against float64: |C - Cref| <= 1e-5 * sum_k |A[i][k] * B[k][j]|.
void test_accuracy() {
  const int64_t Ks[] = {1000, 4096};
  for (int64_t K : Ks) {
    const Case c{5, 37, K, true, false, 0};
    const Operands o = make(c, 4242 + K);
    double worst = 0;
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        double exact = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double p = double(o.A[i * o.lda + k]) * double(o.B[j * o.ldb + k]);
          exact += p;
          mag += std::fabs(p);
        }
        worst = std::max(worst, std::fabs(double(o.ref[i * o.ldc + j]) - exact) / mag);
      }
    ++g_checks;
    std::printf("accuracy K=%lld: worst normwise relative error %.3g\n", (long long)K, worst);
    if (!(worst <= 1e-5)) fail("accuracy at K=" + std::to_string(K));
    for (atoma::Isa isa : atoma::available_isas()) {
      atoma::set_active_isa(isa);
      compare(run(c, o), o.ref, describe(c, atoma::isa_name(isa), 2) + " accuracy");
    }
  }
}

}  // namespace

int main() {
  std::printf("ISAs:");
  for (atoma::Isa isa : atoma::available_isas()) std::printf(" %s", atoma::isa_name(isa));
  std::printf("\n");
  test_errors();
  test_special_values();
  test_accuracy();
  test_batch_split();
  test_large();
  test_grid();
  std::printf("%ld checks, %d failures\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
