// Standalone checks of atoma::gemm_weights: for f32, f16, bf16 and q8_0 weights, every ISA path and
// thread count gives exactly the bytes of "dequantize W to f32 (independently, here), then the
// canonical f32 gemm"; the f16 widening is checked on all 65536 halves; bad arguments throw.
//   g++ -std=c++17 -O2 -ffp-contract=off -Inative native/test/gemm_weights_test.cc
//       $(node -p "require('./native/sources.json').cpu.join(' ')") -pthread -o /tmp/gw && /tmp/gw
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "canon/philox.h"
#include "core/error.h"
#include "cpu/gemm.h"
#include "canon/math.h"
#include "cpu/gemm_weights.h"
#include "cpu/gemm_weights_kernels.h"
#include "cpu/isa.h"
#include "cpu/thread_pool.h"
#include "test/test_support.h"

using namespace test_support;

namespace {

// The test's own widening, written differently from the engine's (ldexp, not bit surgery).
float ref_half(uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  const float s = (h & 0x8000) ? -1.0f : 1.0f;
  if (e == 31) {
    if (m == 0) return s * INFINITY;
    const uint32_t b = ((h & 0x8000u) << 16) | 0x7fc00000u | (static_cast<uint32_t>(m) << 13);
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }
  if (e == 0) return s * std::ldexp(static_cast<float>(m), -24);
  return s * std::ldexp(static_cast<float>(1024 + m), e - 25);
}

struct Rng {
  uint64_t seed;
  uint64_t i = 0;
  uint32_t next() { return atoma::canon::philox_word(seed, 7, i++); }
};

const char* fmt_name(atoma::WeightFormat f) {
  switch (f) {
    case atoma::WeightFormat::F32: return "f32";
    case atoma::WeightFormat::F16: return "f16";
    case atoma::WeightFormat::Bf16: return "bf16";
    case atoma::WeightFormat::Q8_0: return "q8_0";
    case atoma::WeightFormat::Q8_0x128: return "q8_0x128";
    case atoma::WeightFormat::F32x16: return "f32x16";
  }
  return "?";
}

// Random stored weights of a plausible range, plus their independently widened f32 values.
void make_weights(atoma::WeightFormat f, int64_t N, int64_t K, Rng& rng, std::vector<uint8_t>& bytes,
                  std::vector<float>& deq) {
  const int64_t rb = atoma::weight_row_bytes(f, K);
  bytes.assign(static_cast<size_t>(N * rb + 1), 0);   // +1: the caller may offset by a byte
  deq.assign(static_cast<size_t>(N * K), 0.0f);
  for (int64_t j = 0; j < N; ++j) {
    uint8_t* row = bytes.data() + j * rb;
    for (int64_t k = 0; k < K; ++k) {
      float v = 0;
      if (f == atoma::WeightFormat::F32) {
        v = (static_cast<int32_t>(rng.next() % 2001) - 1000) / 512.0f + std::ldexp(1.0f, -20) * (rng.next() % 7);
        std::memcpy(row + 4 * k, &v, 4);
      } else if (f == atoma::WeightFormat::F16) {
        // Exponents 0..29 (subnormals included), any sign and mantissa.
        const uint16_t h = static_cast<uint16_t>((rng.next() & 0x83ffu) | ((rng.next() % 30) << 10));
        std::memcpy(row + 2 * k, &h, 2);
        v = ref_half(h);
      } else if (f == atoma::WeightFormat::Bf16) {
        const uint16_t h = static_cast<uint16_t>((rng.next() & 0x807fu) | ((110 + rng.next() % 30) << 7));
        std::memcpy(row + 2 * k, &h, 2);
        const uint32_t b = static_cast<uint32_t>(h) << 16;
        std::memcpy(&v, &b, 4);
      }
      if (f != atoma::WeightFormat::Q8_0) deq[j * K + k] = v;
    }
    if (f == atoma::WeightFormat::Q8_0) {
      for (int64_t b = 0; b < K / 32; ++b) {
        uint8_t* blk = row + b * 34;
        const uint16_t d = static_cast<uint16_t>((rng.next() & 0x83ffu) | ((5 + rng.next() % 10) << 10));
        std::memcpy(blk, &d, 2);
        for (int i = 0; i < 32; ++i) {
          const int8_t q = static_cast<int8_t>(rng.next() & 0xff);
          blk[2 + i] = static_cast<uint8_t>(q);
          deq[j * K + b * 32 + i] = static_cast<float>(static_cast<double>(ref_half(d)) * q);
        }
      }
    }
  }
}

void check_half_widening() {
  std::vector<uint8_t> all(65536 * 2);
  for (uint32_t h = 0; h < 65536; ++h) std::memcpy(&all[2 * h], &h, 2);
  std::vector<float> port(65536), simd(65536);
  atoma::wq_detail::portable_converters().f16(all.data(), 65536 * 2, 1, 0, 65536, port.data(), 65536);
  if (atoma::isa_supported(atoma::Isa::Avx512))
    atoma::wq_detail::avx512_converters().f16(all.data(), 65536 * 2, 1, 0, 65536, simd.data(), 65536);
  else
    simd = port;
  for (uint32_t h = 0; h < 65536; ++h) {
    ++g_checks;
    const float r = ref_half(static_cast<uint16_t>(h));
    if (bits(port[h]) != bits(r) || bits(simd[h]) != bits(r)) {
      char buf[120];
      std::snprintf(buf, sizeof buf, "half 0x%04x: ref %08x portable %08x simd %08x", h, bits(r), bits(port[h]), bits(simd[h]));
      fail(buf);
    }
  }
}

void check_products() {
  const atoma::WeightFormat fmts[] = {atoma::WeightFormat::F32, atoma::WeightFormat::F16,
                                      atoma::WeightFormat::Bf16, atoma::WeightFormat::Q8_0};
  const int64_t Ms[] = {1, 2, 5, 8, 9, 16, 33};
  const int64_t Ns[] = {1, 15, 17, 50, 300};
  const int64_t Ks[] = {32, 96, 256, 288, 576};
  Rng rng{42};
  for (auto f : fmts) {
    for (int64_t K : Ks) {
      for (int64_t N : Ns) {
        std::vector<uint8_t> wb;
        std::vector<float> deq;
        make_weights(f, N, K, rng, wb, deq);
        for (int64_t M : Ms) {
          std::vector<float> A(static_cast<size_t>(M * K)), bias(static_cast<size_t>(N));
          for (auto& a : A) a = (static_cast<int32_t>(rng.next() % 4001) - 2000) / 1024.0f;
          for (auto& b : bias) b = (static_cast<int32_t>(rng.next() % 201) - 100) / 64.0f;
          const bool with_bias = (M + N) % 2 == 0;
          std::vector<float> ref(static_cast<size_t>(M * N));
          atoma::set_active_isa(atoma::Isa::Scalar);
          atoma::set_thread_count(1);
          atoma::gemm(M, N, K, A.data(), K, deq.data(), K, true, ref.data(), N, with_bias ? bias.data() : nullptr);
          // An odd byte offset forces the unaligned f32 path through the converters too.
          for (int offset = 0; offset < (f == atoma::WeightFormat::F32 ? 2 : 1); ++offset) {
            std::vector<uint8_t> shifted(wb.size());
            std::memcpy(shifted.data() + offset, wb.data(), wb.size() - 1);
            for (atoma::Isa isa : atoma::available_isas()) {
              for (size_t threads : {1, 2, 3}) {
                atoma::set_active_isa(isa);
                atoma::set_thread_count(threads);
                std::vector<float> C(static_cast<size_t>(M * N), -7.0f);
                atoma::gemm_weights(M, N, K, A.data(), K, shifted.data() + offset,
                                    N * atoma::weight_row_bytes(f, K), f, C.data(), N,
                                    with_bias ? bias.data() : nullptr);
                ++g_checks;
                if (std::memcmp(C.data(), ref.data(), C.size() * 4) != 0) {
                  char buf[200];
                  std::snprintf(buf, sizeof buf, "%s M=%lld N=%lld K=%lld isa=%s threads=%zu offset=%d",
                                fmt_name(f), (long long)M, (long long)N, (long long)K,
                                atoma::isa_name(isa), threads, offset);
                  fail(buf);
                }
              }
            }
          }
        }
      }
    }
  }
  atoma::set_active_isa(atoma::best_isa());
}

// Decode shapes (M = 1..8: the fused in-register-widening GEMVs), with row strides past K and N,
// N off the 16-lane grid, K off the 256-chunk grid (and off the 16-wide k slice for f16/bf16),
// q8_0 scales that are subnormal, zero, -0 or infinite; C's padding must stay untouched.
void check_decode_shapes() {
  const atoma::WeightFormat fmts[] = {atoma::WeightFormat::F16, atoma::WeightFormat::Bf16,
                                      atoma::WeightFormat::Q8_0};
  const int64_t Ns[] = {1, 15, 33, 100};
  Rng rng{4242};
  for (auto f : fmts) {
    std::vector<int64_t> Ks = {32, 224, 288, 800, 4064, 4096};
    if (f != atoma::WeightFormat::Q8_0) Ks.insert(Ks.end(), {7, 23, 261});
    for (int64_t K : Ks) {
      for (int64_t N : Ns) {
        std::vector<uint8_t> wb;
        std::vector<float> deq;
        make_weights(f, N, K, rng, wb, deq);
        if (f == atoma::WeightFormat::Q8_0) {
          const uint16_t special[] = {0x0001, 0x03ff, 0x0000, 0x8000, 0x7c00, 0x8200};
          const int64_t rb = atoma::weight_row_bytes(f, K);
          for (int64_t j = 0; j < N; j += 3) {
            const int64_t b = static_cast<int64_t>(rng.next() % static_cast<uint32_t>(K / 32));
            const uint16_t d = special[rng.next() % 6];
            uint8_t* blk = wb.data() + j * rb + b * 34;
            std::memcpy(blk, &d, 2);
            blk[2] = 0x80;   // q = -128
            blk[3] = 0;
            for (int i = 0; i < 32; ++i)
              deq[j * K + b * 32 + i] = static_cast<float>(static_cast<double>(ref_half(d)) * static_cast<int8_t>(blk[2 + i]));
          }
        }
        for (int64_t M = 1; M <= 8; ++M) {
          const int64_t lda = K + 3, ldc = N + 5;
          std::vector<float> A(static_cast<size_t>(M * lda)), bias(static_cast<size_t>(N));
          for (auto& a : A) a = (static_cast<int32_t>(rng.next() % 4001) - 2000) / 1024.0f;
          for (auto& b : bias) b = (static_cast<int32_t>(rng.next() % 201) - 100) / 64.0f;
          const bool with_bias = (M + K / 32) % 2 == 1;
          std::vector<float> ref(static_cast<size_t>(M * ldc), -7.0f);
          atoma::set_active_isa(atoma::Isa::Scalar);
          atoma::set_thread_count(1);
          atoma::gemm(M, N, K, A.data(), lda, deq.data(), K, true, ref.data(), ldc, with_bias ? bias.data() : nullptr);
          for (atoma::Isa isa : atoma::available_isas()) {
            for (size_t threads : {1, 2, 3}) {
              atoma::set_active_isa(isa);
              atoma::set_thread_count(threads);
              std::vector<float> C(static_cast<size_t>(M * ldc), -7.0f);
              atoma::gemm_weights(M, N, K, A.data(), lda, wb.data(), N * atoma::weight_row_bytes(f, K), f,
                                  C.data(), ldc, with_bias ? bias.data() : nullptr);
              ++g_checks;
              if (std::memcmp(C.data(), ref.data(), C.size() * 4) != 0) {
                char buf[200];
                std::snprintf(buf, sizeof buf, "decode %s M=%lld N=%lld K=%lld isa=%s threads=%zu bias=%d",
                              fmt_name(f), (long long)M, (long long)N, (long long)K, atoma::isa_name(isa),
                              threads, with_bias);
                fail(buf);
              }
            }
          }
        }
      }
    }
  }
  atoma::set_active_isa(atoma::best_isa());
}

void check_errors() {
  std::vector<float> A(64, 1.0f), C(64);
  std::vector<uint8_t> w(1000);
  using atoma::WeightFormat;
  expect_error("ERR_WEIGHT_BYTES", [&] { atoma::gemm_weights(1, 2, 32, A.data(), 32, w.data(), 67, WeightFormat::Q8_0, C.data(), 2, nullptr); }, "short q8_0");
  expect_error("ERR_WEIGHT_BYTES", [&] { atoma::gemm_weights(1, 2, 32, A.data(), 32, w.data(), 129, WeightFormat::F16, C.data(), 2, nullptr); }, "long f16");
  expect_error("ERR_SHAPE", [&] { atoma::gemm_weights(1, 2, 33, A.data(), 33, w.data(), 68, WeightFormat::Q8_0, C.data(), 2, nullptr); }, "q8_0 K % 32");
  expect_error("ERR_WEIGHT_FORMAT", [&] { atoma::parse_weight_format("iq2_xxs"); }, "unknown format");
  expect_error("ERR_ALIAS", [&] {
    atoma::gemm_weights(1, 2, 8, A.data(), 8, A.data() + 16, 64, WeightFormat::F32, A.data() + 16, 2, nullptr);
  }, "C overlaps W");
  expect_error("ERR_SHAPE", [&] { atoma::gemm_weights(-1, 2, 8, A.data(), 8, w.data(), 64, WeightFormat::F32, C.data(), 2, nullptr); }, "negative M");
}

// gemm_weights_many and gemm_weights_swiglu against one gemm_weights call per weight (and the
// scalar canon::silu_f32 times up), over every ISA, thread count and decode/prefill M: the joint
// column split must not change a byte. Mixed formats make some products leave the fused path.
void check_many_and_swiglu() {
  Rng rng{777};
  const atoma::WeightFormat fmts[] = {atoma::WeightFormat::Q8_0, atoma::WeightFormat::F16, atoma::WeightFormat::Bf16,
                                      atoma::WeightFormat::F32};
  const int64_t K = 288;
  const int64_t Ns[3] = {200, 48, 17};
  for (int mix = 0; mix < 3; ++mix) {
    std::vector<uint8_t> wb[3];
    std::vector<float> deq[3], bias[3];
    atoma::WeightFormat f[3];
    for (int i = 0; i < 3; ++i) {
      f[i] = mix == 0 ? atoma::WeightFormat::Q8_0 : fmts[(i + mix) % 4];
      make_weights(f[i], Ns[i], K, rng, wb[i], deq[i]);
      bias[i].resize(static_cast<size_t>(Ns[i]));
      for (auto& b : bias[i]) b = (static_cast<int32_t>(rng.next() % 201) - 100) / 64.0f;
    }
    for (int64_t M : {1, 2, 5, 9, 40}) {
      std::vector<float> A(static_cast<size_t>(M * K));
      for (auto& a : A) a = (static_cast<int32_t>(rng.next() % 4001) - 2000) / 256.0f;
      for (atoma::Isa isa : atoma::available_isas()) {
        for (size_t threads : {1, 2, 3}) {
          atoma::set_active_isa(isa);
          atoma::set_thread_count(threads);
          std::vector<float> ref[3], got[3];
          atoma::WeightProduct ps[3];
          for (int i = 0; i < 3; ++i) {
            ref[i].assign(static_cast<size_t>(M * Ns[i]), -7.0f);
            got[i].assign(static_cast<size_t>(M * Ns[i]), -7.0f);
            const int64_t wbytes = Ns[i] * atoma::weight_row_bytes(f[i], K);
            const float* b = i == 1 ? nullptr : bias[i].data();
            atoma::gemm_weights(M, Ns[i], K, A.data(), K, wb[i].data(), wbytes, f[i], ref[i].data(), Ns[i], b);
            ps[i] = atoma::WeightProduct{wb[i].data(), wbytes, f[i], Ns[i], got[i].data(), Ns[i], b};
          }
          atoma::gemm_weights_many(M, K, A.data(), K, ps, 3);
          for (int i = 0; i < 3; ++i) {
            ++g_checks;
            if (std::memcmp(ref[i].data(), got[i].data(), ref[i].size() * 4) != 0)
              fail("many mix=" + std::to_string(mix) + " M=" + std::to_string(M) + " product " + std::to_string(i) +
                   " isa=" + atoma::isa_name(isa) + " threads=" + std::to_string(threads));
          }
          // SwiGLU over products 0 and 1 re-shaped to the same N (the first 48 rows of product 0).
          const int64_t N = 48;
          std::vector<float> g(static_cast<size_t>(M * N)), u(static_cast<size_t>(M * N)), act(static_cast<size_t>(M * N));
          std::vector<float> rg(static_cast<size_t>(M * N)), ru(static_cast<size_t>(M * N));
          const int64_t wb0 = N * atoma::weight_row_bytes(f[0], K), wb1 = N * atoma::weight_row_bytes(f[1], K);
          atoma::gemm_weights(M, N, K, A.data(), K, wb[0].data(), wb0, f[0], rg.data(), N, nullptr);
          atoma::gemm_weights(M, N, K, A.data(), K, wb[1].data(), wb1, f[1], ru.data(), N, nullptr);
          const atoma::WeightProduct pg{wb[0].data(), wb0, f[0], N, g.data(), N, nullptr};
          const atoma::WeightProduct pu{wb[1].data(), wb1, f[1], N, u.data(), N, nullptr};
          atoma::gemm_weights_swiglu(M, K, A.data(), K, pg, pu, act.data());
          bool ok = std::memcmp(g.data(), rg.data(), g.size() * 4) == 0 && std::memcmp(u.data(), ru.data(), u.size() * 4) == 0;
          for (size_t e = 0; e < act.size() && ok; ++e) {
            const float want = atoma::canon::silu_f32(rg[e]) * ru[e];
            ok = std::memcmp(&want, &act[e], 4) == 0;
          }
          ++g_checks;
          if (!ok)
            fail("swiglu mix=" + std::to_string(mix) + " M=" + std::to_string(M) + " isa=" + atoma::isa_name(isa) +
                 " threads=" + std::to_string(threads));
        }
      }
    }
  }
}

// q8_0 repacked for decode (q8_0x128) gives exactly the bytes of the same q8_0 rows, on every
// ISA, thread count and M (fused decode kernel and blocked fallback), for partial panels and
// partial 256-chunks, with bias, alone and as products of gemm_weights_many and _swiglu.
// native/test/gemm_weights_packed_test.cc runs a wider grid (and the decode benchmark).
void check_packed() {
  Rng rng{4242};
  using atoma::WeightFormat;
  auto pack = [](const std::vector<uint8_t>& w, int64_t N, int64_t K) {
    std::vector<uint8_t> p(static_cast<size_t>(atoma::weight_stored_rows(WeightFormat::Q8_0x128, N) *
                                               atoma::weight_row_bytes(WeightFormat::Q8_0x128, K)));
    atoma::pack_q8_0x128(w.data(), N * atoma::weight_row_bytes(WeightFormat::Q8_0, K), N, K, p.data(),
                         static_cast<int64_t>(p.size()));
    return p;
  };
  for (int64_t N : {1, 130, 300})
    for (int64_t K : {32, 288}) {
      std::vector<uint8_t> wb;
      std::vector<float> deq, bias(static_cast<size_t>(N));
      make_weights(WeightFormat::Q8_0, N, K, rng, wb, deq);
      for (auto& b : bias) b = (static_cast<int32_t>(rng.next() % 201) - 100) / 64.0f;
      const std::vector<uint8_t> pk = pack(wb, N, K);
      std::vector<float> wide(static_cast<size_t>(N * K));
      atoma::dequantize_weights(WeightFormat::Q8_0x128, pk.data(), N, K, wide.data());
      ++g_checks;
      if (std::memcmp(wide.data(), deq.data(), wide.size() * 4) != 0) fail("q8_0x128 widening N=" + std::to_string(N));
      for (int64_t M : {1, 2, 3, 8, 9}) {
        std::vector<float> A(static_cast<size_t>(M * K));
        for (auto& a : A) a = (static_cast<int32_t>(rng.next() % 4001) - 2000) / 256.0f;
        for (atoma::Isa isa : atoma::available_isas())
          for (size_t threads : {1, 3}) {
            atoma::set_active_isa(isa);
            atoma::set_thread_count(threads);
            std::vector<float> ref(static_cast<size_t>(M * N), 5.0f), got(ref.size(), -5.0f);
            atoma::gemm_weights(M, N, K, A.data(), K, wb.data(), N * atoma::weight_row_bytes(WeightFormat::Q8_0, K),
                                WeightFormat::Q8_0, ref.data(), N, bias.data());
            atoma::gemm_weights(M, N, K, A.data(), K, pk.data(), static_cast<int64_t>(pk.size()), WeightFormat::Q8_0x128,
                                got.data(), N, bias.data());
            ++g_checks;
            if (std::memcmp(ref.data(), got.data(), ref.size() * 4) != 0)
              fail("q8_0x128 N=" + std::to_string(N) + " K=" + std::to_string(K) + " M=" + std::to_string(M) +
                   " isa=" + atoma::isa_name(isa) + " threads=" + std::to_string(threads));
            if (N != 130 || K != 288) continue;
            // As one of several products and as both SwiGLU inputs.
            std::vector<float> r2(ref.size()), g2(ref.size()), act(ref.size()), racts(ref.size());
            const atoma::WeightProduct many[2] = {
                {pk.data(), static_cast<int64_t>(pk.size()), WeightFormat::Q8_0x128, N, got.data(), N, bias.data()},
                {wb.data(), N * atoma::weight_row_bytes(WeightFormat::Q8_0, K), WeightFormat::Q8_0, N, r2.data(), N, nullptr}};
            atoma::gemm_weights_many(M, K, A.data(), K, many, 2);
            const atoma::WeightProduct pg{pk.data(), static_cast<int64_t>(pk.size()), WeightFormat::Q8_0x128, N, g2.data(), N, nullptr};
            const atoma::WeightProduct pu{pk.data(), static_cast<int64_t>(pk.size()), WeightFormat::Q8_0x128, N, racts.data(), N, nullptr};
            atoma::gemm_weights_swiglu(M, K, A.data(), K, pg, pu, act.data());
            bool ok = std::memcmp(ref.data(), got.data(), ref.size() * 4) == 0 && std::memcmp(g2.data(), r2.data(), r2.size() * 4) == 0;
            for (size_t e = 0; e < act.size() && ok; ++e) {
              const float want = atoma::canon::silu_f32(r2[e]) * r2[e];
              ok = std::memcmp(&want, &act[e], 4) == 0;
            }
            ++g_checks;
            if (!ok) fail("q8_0x128 many/swiglu M=" + std::to_string(M) + " isa=" + atoma::isa_name(isa));
          }
      }
    }
  atoma::set_active_isa(atoma::best_isa());
  std::vector<uint8_t> w(2 * 34), p(128 * 34);
  std::vector<float> A(32, 1.0f), C(2);
  expect_error("ERR_WEIGHT_BYTES", [&] { atoma::pack_q8_0x128(w.data(), 67, 2, 32, p.data(), 128 * 34); }, "pack: short q8_0");
  expect_error("ERR_WEIGHT_BYTES", [&] { atoma::pack_q8_0x128(w.data(), 68, 2, 32, p.data(), 68); }, "pack: unpadded output");
  expect_error("ERR_ALIAS", [&] { atoma::pack_q8_0x128(p.data(), 68, 2, 32, p.data(), 128 * 34); }, "pack: in place");
  expect_error("ERR_WEIGHT_BYTES", [&] { atoma::gemm_weights(1, 2, 32, A.data(), 32, p.data(), 68, WeightFormat::Q8_0x128, C.data(), 2, nullptr); }, "unpadded q8_0x128");
}

}  // namespace

int main() {
  check_half_widening();
  check_products();
  check_decode_shapes();
  check_many_and_swiglu();
  check_errors();
  check_packed();
  std::printf("gemm_weights_test: %ld checks, %d failures\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
