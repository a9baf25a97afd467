// Standalone checks of the GGUF block types (q4_0 .. mxfp4) in atoma::gemm_weights: hand-built
// blocks decode to values worked out here by hand (sign, min, 6-bit K-quant scale packing, high
// bits, f16 subnormal scales), and for random blocks every ISA path and thread count gives exactly
// the bytes of "dequantize_weights, then the canonical f32 gemm"; bad K and byte counts throw.
//   g++ -std=c++17 -O2 -ffp-contract=off -Inative native/test/gemm_weights_blocks_test.cc
//       $(node -p "require('./native/sources.json').cpu.join(' ')") -pthread -o /tmp/gb && /tmp/gb
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "cpu/gemm.h"
#include "cpu/gemm_weights.h"
#include "cpu/isa.h"
#include "cpu/thread_pool.h"
#include "test/test_support.h"

using namespace test_support;
using atoma::WeightFormat;

namespace {

struct Type {
  const char* name;
  WeightFormat f;
  int qk, bytes;
  std::vector<int> f16_at;   // offsets of the block's f16 fields
};

const std::vector<Type>& types() {
  static const std::vector<Type> t = {
      {"q4_0", WeightFormat::Q4_0, 32, 18, {0}},       {"q4_1", WeightFormat::Q4_1, 32, 20, {0, 2}},
      {"q5_0", WeightFormat::Q5_0, 32, 22, {0}},       {"q5_1", WeightFormat::Q5_1, 32, 24, {0, 2}},
      {"q2_k", WeightFormat::Q2_K, 256, 84, {80, 82}}, {"q3_k", WeightFormat::Q3_K, 256, 110, {108}},
      {"q4_k", WeightFormat::Q4_K, 256, 144, {0, 2}},  {"q5_k", WeightFormat::Q5_K, 256, 176, {0, 2}},
      {"q6_k", WeightFormat::Q6_K, 256, 210, {208}},   {"iq4_nl", WeightFormat::Iq4_Nl, 32, 18, {0}},
      {"iq4_xs", WeightFormat::Iq4_Xs, 256, 136, {0}}, {"mxfp4", WeightFormat::Mxfp4, 32, 17, {}},
  };
  return t;
}

void put16(std::vector<uint8_t>& b, int at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v & 0xff);
  b[at + 1] = static_cast<uint8_t>(v >> 8);
}

std::vector<float> decode(WeightFormat f, const std::vector<uint8_t>& b, int64_t K) {
  std::vector<float> y(static_cast<size_t>(K));
  atoma::dequantize_weights(f, b.data(), 1, K, y.data());
  return y;
}

void expect(const char* what, int i, float got, float want) {
  ++g_checks;
  if (std::memcmp(&got, &want, 4) != 0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s[%d]: got %.9g, want %.9g", what, i, got, want);
    fail(buf);
  }
}

// Hand-built blocks; the expected values come from the layouts in docs/canonical-arithmetic.md.
void check_known_answers() {
  {  // q4_0: d = 0.5 (0x3800); nibble lo = 3 -> (3 - 8) * 0.5, hi = 15 -> 3.5
    std::vector<uint8_t> b(18, 0);
    put16(b, 0, 0x3800);
    for (int j = 0; j < 16; ++j) b[2 + j] = 0xF3;
    const auto y = decode(WeightFormat::Q4_0, b, 32);
    for (int j = 0; j < 16; ++j) expect("q4_0", j, y[j], -2.5f), expect("q4_0", j + 16, y[j + 16], 3.5f);
  }
  {  // q4_1 with an f16 subnormal d = 2^-24 (0x0001) and m = 1: 9 * 2^-24 + 1 is a tie between
     // 1 + 4 * 2^-23 and 1 + 5 * 2^-23 and rounds to the even one; nibble 0 gives m itself
    std::vector<uint8_t> b(20, 0);
    put16(b, 0, 0x0001);
    put16(b, 2, 0x3C00);
    b[4] = 0x09;
    const auto y = decode(WeightFormat::Q4_1, b, 32);
    expect("q4_1", 0, y[0], 1.0f + std::ldexp(1.0f, -21));
    expect("q4_1", 16, y[16], 1.0f);
  }
  {  // q5_0: high bit of weight 0 set (qh bit 0), of weight 16 set (bit 16): 16|1 - 16 = 1; 16|2 - 16 = 2
    std::vector<uint8_t> b(22, 0);
    put16(b, 0, 0x3C00);  // d = 1
    b[2] = 0x01;          // qh bit 0
    b[4] = 0x01;          // qh bit 16
    b[6] = 0x21;          // weight 0 nibble 1, weight 16 nibble 2
    const auto y = decode(WeightFormat::Q5_0, b, 32);
    expect("q5_0", 0, y[0], 1.0f);
    expect("q5_0", 16, y[16], 2.0f);
    expect("q5_0", 1, y[1], -16.0f);
  }
  {  // q4_k: d = 1, dmin = 0.5; sub-block 0 scale 5, min 3 (bytes 0 and 4), sub-block 4 uses the
     // packed form: scale = (s[8] & 15) | (s[0] >> 6) << 4, min = (s[8] >> 4) | (s[4] >> 6) << 4.
    std::vector<uint8_t> b(144, 0);
    put16(b, 0, 0x3C00);
    put16(b, 2, 0x3800);
    b[4 + 0] = 5 | (2 << 6);  // sc0 = 5; bits 6-7 -> high bits of sc4 = 2
    b[4 + 4] = 3 | (1 << 6);  // m0 = 3; bits 6-7 -> high bits of m4 = 1
    b[4 + 8] = 0x7A;          // sc4 low = 10, m4 low = 7 -> sc4 = 42, m4 = 23
    for (int l = 0; l < 128; ++l) b[16 + l] = 0x5B;   // lo 11, hi 5
    const auto y = decode(WeightFormat::Q4_K, b, 256);
    expect("q4_k", 0, y[0], 5.0f * 11 - 1.5f);        // sub-block 0: d1 = 5, m1 = 1.5
    expect("q4_k", 128, y[128], 42.0f * 11 - 11.5f);  // sub-block 4 (j = 2, low nibbles)
    expect("q4_k", 32, y[32], 0.0f);                  // sub-block 1: scale 0, min 0 -> 0 * 5 - 0
  }
  {  // q6_k: d = 2^-14 (0x0400), sc[0] = -3; q = (ql lo | (qh & 3) << 4) - 32 = (7 | 3 << 4) - 32 = 23
    std::vector<uint8_t> b(210, 0);
    put16(b, 208, 0x0400);
    b[0] = 0x07;
    b[128] = 0x03;
    b[192] = static_cast<uint8_t>(-3);
    const auto y = decode(WeightFormat::Q6_K, b, 256);
    expect("q6_k", 0, y[0], std::ldexp(-3.0f * 23, -14));
    expect("q6_k", 32, y[32], 0.0f * -32);   // sc[2] = 0
  }
  {  // mxfp4: e = 1 -> d = 2^-127 (an f32 subnormal); code 7 -> 12, code 15 -> -12
    std::vector<uint8_t> b(17, 0);
    b[0] = 1;
    b[1] = 0xF7;
    const auto y = decode(WeightFormat::Mxfp4, b, 32);
    expect("mxfp4", 0, y[0], std::ldexp(12.0f, -127));
    expect("mxfp4", 16, y[16], std::ldexp(-12.0f, -127));
  }
  {  // iq4_xs: d = 1; sub-block 1 scale = hi nibble of scales_l[0] | bits 2-3 of scales_h << 4
    std::vector<uint8_t> b(136, 0);
    put16(b, 0, 0x3C00);
    put16(b, 2, 0x0008);       // sub-block 1 high bits = 2
    b[4] = 0x30;               // sub-block 1 low bits = 3 -> ls = 35, dl = 3; sub-block 0: ls = 0 -> -32
    b[8] = 0x0F;               // weight 0: index 15 -> 113
    b[8 + 16] = 0x00;          // weight 32: index 0 -> -127
    const auto y = decode(WeightFormat::Iq4_Xs, b, 256);
    expect("iq4_xs", 0, y[0], -32.0f * 113);
    expect("iq4_xs", 32, y[32], 3.0f * -127);
  }
}

// Random blocks with finite scales (f16 exponents 0..14, so subnormal scales appear).
std::vector<uint8_t> random_blocks(const Type& t, int64_t N, int64_t K, Rng& rng) {
  std::vector<uint8_t> w(static_cast<size_t>(N * K / t.qk * t.bytes));
  for (auto& x : w) x = static_cast<uint8_t>(rng.next());
  for (size_t blk = 0; blk < w.size() / t.bytes; ++blk) {
    uint8_t* b = w.data() + blk * t.bytes;
    for (int at : t.f16_at) b[at + 1] = static_cast<uint8_t>((b[at + 1] & 0x83) | ((rng.next() % 15) << 2));
    if (t.f == WeightFormat::Mxfp4) b[0] = static_cast<uint8_t>(100 + rng.next() % 50);
  }
  return w;
}

void check_products() {
  Rng rng{42};
  for (const Type& t : types()) {
    for (int64_t K : {t.qk * 1, t.qk * 3, 512 + t.qk}) {
      for (int64_t N : {1, 7, 40}) {
        const std::vector<uint8_t> w = random_blocks(t, N, K, rng);
        std::vector<float> deq(static_cast<size_t>(N * K));
        atoma::dequantize_weights(t.f, w.data(), N, K, deq.data());
        for (int64_t M : {1, 3, 17}) {
          const std::vector<float> A = floats(static_cast<size_t>(M * K), rng);
          const std::vector<float> bias = floats(static_cast<size_t>(N), rng);
          const float* bs = (M + N) % 2 ? bias.data() : nullptr;
          std::vector<float> ref(static_cast<size_t>(M * N));
          atoma::set_active_isa(atoma::Isa::Scalar);
          atoma::set_thread_count(1);
          atoma::gemm(M, N, K, A.data(), K, deq.data(), K, true, ref.data(), N, bs);
          for (atoma::Isa isa : atoma::available_isas())
            for (size_t threads : {1, 2, 3}) {
              atoma::set_active_isa(isa);
              atoma::set_thread_count(threads);
              std::vector<float> C(static_cast<size_t>(M * N), -7.0f);
              atoma::gemm_weights(M, N, K, A.data(), K, w.data(), static_cast<int64_t>(w.size()), t.f, C.data(), N, bs);
              ++g_checks;
              if (std::memcmp(C.data(), ref.data(), C.size() * 4) != 0) fail(where(t.name, M, N, K, threads, isa));
              // Two products through one call (the q/k/v and gate/up shape) give the same bytes.
              std::vector<float> C2(static_cast<size_t>(M * N), -7.0f);
              const atoma::WeightProduct ps[2] = {{w.data(), static_cast<int64_t>(w.size()), t.f, N, C.data(), N, bs},
                                                  {w.data(), static_cast<int64_t>(w.size()), t.f, N, C2.data(), N, bs}};
              atoma::gemm_weights_many(M, K, A.data(), K, ps, 2);
              ++g_checks;
              if (std::memcmp(C2.data(), ref.data(), C2.size() * 4) != 0) fail(where(t.name, M, N, K, threads, isa) + " many");
            }
        }
      }
    }
  }
  atoma::set_active_isa(atoma::best_isa());
  atoma::set_thread_count(1);
}

void check_errors() {
  for (const Type& t : types()) {
    if (atoma::parse_weight_format(t.name) != t.f) fail(std::string("parse ") + t.name);
    ++g_checks;
    if (atoma::weight_row_bytes(t.f, t.qk * 2) != 2 * t.bytes) fail(std::string("row bytes ") + t.name);
    expect_error("ERR_SHAPE", [&] { atoma::weight_row_bytes(t.f, t.qk + 16); }, t.name);
    std::vector<uint8_t> w(static_cast<size_t>(t.bytes));
    std::vector<float> a(static_cast<size_t>(t.qk)), c(1);
    expect_error("ERR_WEIGHT_BYTES",
                 [&] { atoma::gemm_weights(1, 1, t.qk, a.data(), t.qk, w.data(), t.bytes - 1, t.f, c.data(), 1, nullptr); },
                 t.name);
  }
  expect_error("ERR_WEIGHT_FORMAT", [] { atoma::parse_weight_format("iq2_xxs"); }, "iq2_xxs");
}

}  // namespace

int main() {
  check_known_answers();
  check_products();
  check_errors();
  std::printf("gemm_weights_blocks_test: %ld checks, %d failures\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
