// Runs the CUDA warp reductions (native/cuda/warp.cuh) and the BLAKE3 kernels
// (native/cuda/blake3_kernel.cuh) on the CPU through native/test/cuda_emu.h. The reductions are
// compared bit for bit with the canon reference forms on rows with ties, NaNs, infinities and
// signed zeros; the BLAKE3 kernels with the official vectors, the engine's tensor digest (several
// tree levels) and its Merkle leaf of the encoding (the device trace leaf, LeafSource).
//
//   g++ -std=c++20 -O2 -ffp-contract=off -Inative -Inative/test native/test/cuda_warp_emu_test.cc \
//       native/hash/*.cc native/cpu/isa.cc native/cpu/thread_pool.cc -pthread
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#define __shared__ static   // fixed-size shared arrays: one per kernel, blocks run in turn
#include "cuda_emu.h"

#include "canon/philox.h"
#include "canon/reduce.h"
#include "cuda/blake3_kernel.cuh"
#include "cuda/warp.cuh"
#include "hash/blake3.h"
#include "hash/tensor_digest.h"

using namespace atoma;
using cuda_emu::launch;
using Digest32 = std::array<uint8_t, 32>;

static int g_cases = 0, g_fail = 0;
static void check(bool ok, const std::string& what) {
  ++g_cases;
  if (!ok) {
    ++g_fail;
    std::printf("MISMATCH %s\n", what.c_str());
  }
}
static bool same(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || canon::f32_bits(a) == canon::f32_bits(b);
}

static void reductions() {
  const int rows = 8;   // one warp per row, as in rows.cu
  for (int64_t n : {1, 2, 31, 32, 33, 100, 257, 1000}) {
    std::vector<float> x(rows * n);
    for (int r = 0; r < rows; ++r)
      for (int64_t t = 0; t < n; ++t) {
        const float u = canon::seeded_value(n, r, t);
        float v = std::floor(u * 4.0f) * 0.5f;
        if (r == 1 && t % 7 == 3) v = NAN;
        if (r == 2) v = (t % 2) ? -0.0f : 0.0f;
        if (r == 3) v = (t == n - 1) ? -INFINITY : NAN;
        if (r == 4 && t % 5 == 1) v = INFINITY;
        if (r == 5) v = u * 1e-39f;   // subnormals
        if (r == 6) v = -INFINITY;
        if (r == 7) v = u;
        x[r * n + t] = v;
      }
    std::vector<float> sum(rows), sq(rows), mx(rows);
    std::vector<int64_t> am(rows);
    launch(dim3{1, 1, 1}, rows * 32, [&] {
      const int r = threadIdx.x / 32;
      const float* xr = x.data() + r * n;
      const float s = cuda::detail::warp_lane_sum(xr, n);
      const float q = cuda::detail::warp_lane_sumsq(xr, n);
      const cuda::detail::ArgMax a = cuda::detail::warp_argmax(xr, n);
      if (threadIdx.x % 32 == 0) {
        sum[r] = s;
        sq[r] = q;
        mx[r] = a.v;
        am[r] = a.i < 0 ? 0 : a.i;
      }
    });
    for (int r = 0; r < rows; ++r) {
      const float* xr = x.data() + r * n;
      const std::string tag = " n=" + std::to_string(n) + " row=" + std::to_string(r);
      check(same(sum[r], canon::lane_sum(xr, n)), "lane_sum" + tag);
      check(same(sq[r], canon::lane_sumsq(xr, n)), "lane_sumsq" + tag);
      check(same(mx[r], canon::row_max(xr, n)), "row_max" + tag);
      check(am[r] == canon::row_argmax(xr, n), "row_argmax" + tag);
    }
  }
}

template <class Src>
static Digest32 device_hash(const Src& src, uint64_t len) {
  using namespace cuda::b3;
  const uint64_t n_chunks = chunk_count(len);
  uint64_t n = (n_chunks + kGroup - 1) / kGroup;
  std::vector<uint32_t> a(n * 8), b(n * 8);
  launch(dim3{static_cast<unsigned>(n), 1, 1}, kGroup, [&] { chunks_kernel<Src>(src, len, n_chunks, a.data()); });
  uint32_t* cur = a.data();
  uint32_t* nxt = b.data();
  while (n > 1) {
    const uint64_t m = (n + kGroup - 1) / kGroup;
    launch(dim3{static_cast<unsigned>(m), 1, 1}, kGroup, [&] { merge_kernel(cur, n, nxt); });
    std::swap(cur, nxt);
    n = m;
  }
  Digest32 d;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 4; ++j) d[4 * i + j] = static_cast<uint8_t>(cur[i] >> (8 * j));
  return d;
}

static std::string hex(const Digest32& d) { return atoma::blake3::to_hex(d.data(), d.size()); }

static void blake3_vectors(const char* path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string js = ss.str();
  check(!js.empty(), std::string("vectors file ") + path);
  for (size_t pos = js.find("\"input_len\""); pos != std::string::npos; pos = js.find("\"input_len\"", pos + 1)) {
    const uint64_t len = std::stoull(js.substr(js.find(':', pos) + 1));
    const size_t hp = js.find("\"hash\"", pos);
    const std::string want = js.substr(js.find('"', js.find(':', hp)) + 1, 64);
    std::vector<uint8_t> in(len + 1);
    for (uint64_t i = 0; i < len; ++i) in[i + 1] = static_cast<uint8_t>(i % 251);
    std::vector<uint32_t> aligned((len + 3) / 4 + 1);
    std::memcpy(aligned.data(), in.data() + 1, len);
    const cuda::b3::RawSource a{reinterpret_cast<const uint8_t*>(aligned.data()), len, true};
    const cuda::b3::RawSource u{in.data() + 1, len, false};
    check(hex(device_hash(a, len)) == want, "vector len=" + std::to_string(len));
    check(hex(device_hash(u, len)) == want, "vector len=" + std::to_string(len) + " unaligned");
  }
  // Tensors over one, two and three kernel levels (1 chunk, <= 128 chunks, > 16384 chunks).
  for (uint64_t n : {uint64_t{0}, uint64_t{7}, uint64_t{40000}, uint64_t{300000}, uint64_t{4200000}}) {
    std::vector<float> x(n);
    for (uint64_t i = 0; i < n; ++i) x[i] = canon::seeded_value(3, 1, i);
    if (n > 5) x[4] = canon::bits_f32(0xFF800001u);
    std::vector<uint64_t> dims = {n, 1};
    cuda::b3::TensorSource src;
    const uint64_t len = cuda::b3::fill_tensor_source(src, x.data(), dims.data(), 2, n);
    const Digest want = tensor_digest(DType::F32, dims, x.data(), n * 4);
    const Digest32 got = device_hash(src, len);
    check(std::memcmp(got.data(), want.data(), 32) == 0, "tensor n=" + std::to_string(n));
    // The trace leaf BLAKE3(0x00 || encoding): every message word straddles two encoding words.
    std::vector<uint8_t> enc(len);
    for (uint64_t g = 0; g < len / 4; ++g)
      for (int b = 0; b < 4; ++b) enc[4 * g + b] = static_cast<uint8_t>(src.word(g) >> (8 * b));
    const Digest want_leaf = merkle_leaf(enc.data(), enc.size());
    cuda::b3::LeafSource leaf{src};
    const Digest32 got_leaf = device_hash(leaf, len + 1);
    check(std::memcmp(got_leaf.data(), want_leaf.data(), 32) == 0, "leaf n=" + std::to_string(n));
  }
  // Leaves of other ranks (header lengths) and sizes around the 1 KiB chunk edge.
  for (int rank : {0, 1, 3})
    for (uint64_t n : {uint64_t{1}, uint64_t{247}, uint64_t{248}, uint64_t{249}, uint64_t{255}, uint64_t{256}}) {
      std::vector<uint64_t> dims(rank, 1);
      if (rank > 0) dims[0] = n;
      const uint64_t numel = rank > 0 ? n : 1;
      std::vector<float> x(numel);
      for (uint64_t i = 0; i < numel; ++i) x[i] = canon::seeded_value(n, 7, i);
      cuda::b3::TensorSource src;
      const uint64_t len = cuda::b3::fill_tensor_source(src, x.data(), dims.data(), rank, numel);
      std::vector<uint8_t> enc(len);
      for (uint64_t g = 0; g < len / 4; ++g)
        for (int b = 0; b < 4; ++b) enc[4 * g + b] = static_cast<uint8_t>(src.word(g) >> (8 * b));
      const Digest want_leaf = merkle_leaf(enc.data(), enc.size());
      const Digest32 got_leaf = device_hash(cuda::b3::LeafSource{src}, len + 1);
      check(std::memcmp(got_leaf.data(), want_leaf.data(), 32) == 0,
            "leaf rank=" + std::to_string(rank) + " n=" + std::to_string(n));
    }
}

int main(int argc, char** argv) {
  reductions();
  std::printf("warp reductions: %d cases, %d mismatches\n", g_cases, g_fail);
  blake3_vectors(argc > 1 ? argv[1] : "test/fixtures/blake3-test-vectors.json");
  std::printf("total: %d cases, %d mismatches\n%s\n", g_cases, g_fail, g_fail ? "FAIL" : "PASS");
  return g_fail ? 1 : 0;
}
