// Host model of the CUDA BLAKE3 kernels (native/cuda/blake3.cu): the same compression, chunk and
// word-source code (native/cuda/blake3.cuh), the same group-by-group tree with the same root
// rule, for several group sizes. Checked against the official BLAKE3 vectors and, when linked
// with the engine's hash library (-DWITH_ENGINE), against atoma::blake3::hash and
// atoma::tensor_digest on random inputs (NaNs, odd ranks, sizes around chunk and group edges).
//
//   g++ -std=c++17 -O2 -ffp-contract=off -Inative native/test/cuda_blake3_model_test.cc \
//       [-DWITH_ENGINE native/hash/*.cc native/cpu/isa.cc native/cpu/thread_pool.cc] -pthread
#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "canon/philox.h"
#include "cuda/blake3.cuh"
#if defined(WITH_ENGINE)
#include "hash/blake3.h"
#include "hash/tensor_digest.h"
#endif

using namespace atoma::cuda::b3;
using CV = std::array<uint32_t, 8>;
using Digest = std::array<uint8_t, 32>;

// The block-level reduction of blake3.cu: pairs, odd last carried, root on the last merge when
// this group is the whole tree.
static CV group_reduce(std::vector<CV> cv, bool whole_tree) {
  size_t count = cv.size();
  while (count > 1) {
    const size_t pairs = count / 2;
    std::vector<CV> next((count + 1) / 2);
    for (size_t t = 0; t < pairs; ++t)
      parent(cv[2 * t].data(), cv[2 * t + 1].data(), whole_tree && count == 2, next[t].data());
    if (count & 1) next[pairs] = cv[count - 1];
    cv = next;
    count = next.size();
  }
  return cv[0];
}

static std::vector<CV> groups(const std::vector<CV>& in, size_t G) {
  const size_t n = (in.size() + G - 1) / G;
  std::vector<CV> out(n);
  for (size_t g = 0; g < n; ++g) {
    std::vector<CV> sub(in.begin() + g * G, in.begin() + std::min(in.size(), (g + 1) * G));
    out[g] = group_reduce(sub, n == 1);
  }
  return out;
}

template <class Src>
static Digest model(const Src& src, uint64_t len, size_t G) {
  const uint64_t n_chunks = chunk_count(len);
  std::vector<CV> cvs(n_chunks);
  for (uint64_t c = 0; c < n_chunks; ++c) {
    CV cv;
    for (int i = 0; i < 8; ++i) cv[i] = iv(i);
    const uint32_t clen = chunk_bytes(len, c), nb = chunk_blocks(clen);
    for (uint32_t b = 0; b < nb; ++b) {
      uint32_t m[16];
      for (int w = 0; w < 16; ++w) m[w] = src.word(c * (kChunkLen / 4) + b * 16 + w);
      chunk_block(cv.data(), m, c, clen, b, n_chunks == 1);
    }
    cvs[c] = cv;
  }
  std::vector<CV> cur = groups(cvs, G);   // the chunks kernel
  while (cur.size() > 1) cur = groups(cur, G);   // merge kernels
  Digest d;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 4; ++j) d[4 * i + j] = static_cast<uint8_t>(cur[0][i] >> (8 * j));
  return d;
}

static std::string hex(const Digest& d) { return atoma::blake3::to_hex(d.data(), d.size()); }

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "test/fixtures/blake3-test-vectors.json";
  std::ifstream f(path);
  if (!f) {
    std::fprintf(stderr, "cannot open %s\n", path);
    return 2;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string js = ss.str();
  int fails = 0, checks = 0;
  const size_t group_sizes[] = {128, 2, 4, 8};
  for (size_t pos = js.find("\"input_len\""); pos != std::string::npos;
       pos = js.find("\"input_len\"", pos + 1)) {
    const uint64_t len = std::stoull(js.substr(js.find(':', pos) + 1));
    const size_t hp = js.find("\"hash\"", pos);
    const size_t q = js.find('"', js.find(':', hp)) + 1;
    const std::string want = js.substr(q, 64);
    std::vector<uint8_t> in(len + 3);
    for (uint64_t i = 0; i < len; ++i) in[i] = static_cast<uint8_t>(i % 251);
    for (size_t G : group_sizes) {
      for (int off = 0; off < 2; ++off) {   // aligned and unaligned word reads
        if (off) std::memmove(in.data() + 1, in.data(), len);
        RawSource src{in.data() + off, len, off == 0};
        const std::string got = hex(model(src, len, G));
        ++checks;
        if (got != want) {
          ++fails;
          std::printf("MISMATCH len=%llu G=%zu off=%d\n  got  %s\n  want %s\n",
                      (unsigned long long)len, G, off, got.c_str(), want.c_str());
        }
        if (off) std::memmove(in.data(), in.data() + 1, len);
      }
    }
  }
  std::printf("official vectors: %d checks, %d mismatches\n", checks, fails);

#if defined(WITH_ENGINE)
  int efails = 0, echecks = 0;
  const uint64_t sizes[] = {0, 1, 100, 255, 256, 1024, 1500, 4096, 40000, 131072, 262144 + 7, 1 << 20};
  for (uint64_t n : sizes) {
    for (int rank : {1, 2, 3, 0}) {
      if (rank == 0 && n != 1) continue;
      std::vector<float> x(n);
      for (uint64_t i = 0; i < n; ++i) x[i] = atoma::canon::seeded_value(7, 3, i);
      if (n > 10) {
        x[3] = atoma::canon::bits_f32(0x7FA00001u);   // signalling NaN
        x[n - 1] = atoma::canon::bits_f32(0xFFC12345u);
        x[5] = -0.0f;
      }
      std::vector<uint64_t> dims;
      if (rank == 1) dims = {n};
      if (rank == 2) dims = {1, n};
      if (rank == 3) dims = {n, 1, 1};
      TensorSource src;
      const uint64_t len = fill_tensor_source(src, x.data(), dims.data(), rank, n);
      const atoma::Digest want = atoma::tensor_digest(atoma::DType::F32, dims, x.data(), n * 4);
      for (size_t G : {size_t{128}, size_t{2}}) {
        ++echecks;
        const Digest got = model(src, len, G);
        if (std::memcmp(got.data(), want.data(), 32) != 0) {
          ++efails;
          std::printf("TENSOR MISMATCH n=%llu rank=%d G=%zu\n", (unsigned long long)n, rank, G);
        }
      }
    }
    std::vector<uint8_t> bytes(n * 3 + 1);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(atoma::canon::philox_word(9, 1, i));
    uint8_t want[32];
    atoma::blake3::hash(bytes.data(), bytes.size(), want);
    RawSource src{bytes.data(), bytes.size(), true};
    ++echecks;
    if (std::memcmp(model(src, bytes.size(), 128).data(), want, 32) != 0) {
      ++efails;
      std::printf("RAW MISMATCH len=%zu\n", bytes.size());
    }
  }
  std::printf("engine comparisons: %d checks, %d mismatches\n", echecks, efails);
  fails += efails;
#endif
  std::printf(fails ? "FAIL\n" : "PASS\n");
  return fails ? 1 : 0;
}
