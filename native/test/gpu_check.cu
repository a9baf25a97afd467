// GPU conformance and benchmark program for the CUDA backend (native/cuda).
//
// Conformance: for a grid of odd shapes, seeded inputs (canon::seeded_value) go through the CPU
// reference and the CUDA kernel; the outputs must be equal bit for bit (any NaN equals any NaN,
// as the digest canonicalises them) and their tensor digests (host digest of the CPU output,
// device digest of the GPU output) must be equal. The reference is the CPU engine (native/cpu,
// native/hash) when built with ATOMA_GPU_CHECK_ENGINE=1, else the scalar reference forms of
// native/canon plus the host model of the BLAKE3 tree (native/cuda/blake3.cuh). The device
// BLAKE3 is also checked against the official vectors.
//
// Also device sampling (against canon::sample_host) and device trace leaves (against the CPU's
// merkle_leaf of the encoding).
//
// Benchmarks: deterministic SGEMM (2048, 4096, 8192) against cuBLAS SGEMM with TF32 off
// (cuBLAS is dlopen'ed, so the program builds without it), GEMV 8192 against a device-to-device
// copy, digest, trace-leaf, sampling and row-kernel throughput; with the CPU engine linked, the
// CPU path on the same GEMM 4096^3 (2048^3 with --quick) and GEMV 8192 inputs and sampling rows
// (and CPU == CUDA digests of those outputs), with the CUDA / CPU ratios.
//
// Usage: gpu_check [--vectors PATH] [--json PATH] [--no-bench] [--quick]
// Exit status: 0 all conformance checks pass, 1 a mismatch or error, 2 no device.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "canon/math.h"
#include "canon/philox.h"
#include "canon/reduce.h"
#include "canon/sample.h"
#include "core/error.h"
#include "cuda/api.h"
#include "cuda/blake3.cuh"
#include "cuda/gemv.cuh"

#if ATOMA_GPU_CHECK_ENGINE
#include "cpu/attention.h"
#include "cpu/gemm.h"
#include "cpu/isa.h"
#include "cpu/rows.h"
#include "cpu/thread_pool.h"
#include "hash/blake3.h"
#include "hash/tensor_digest.h"
#endif

namespace cu = atoma::cuda;
namespace canon = atoma::canon;
using Vec = std::vector<float>;

// ---------------------------------------------------------------------------------------------
// Reference implementations
// ---------------------------------------------------------------------------------------------
namespace ref {

[[maybe_unused]] static void parallel_rows(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t T = std::max<int64_t>(1, std::min<int64_t>(n, std::thread::hardware_concurrency()));
  std::vector<std::thread> th;
  for (int64_t t = 0; t < T; ++t)
    th.emplace_back([&, t] { fn(n * t / T, n * (t + 1) / T); });
  for (auto& x : th) x.join();
}

#if ATOMA_GPU_CHECK_ENGINE
constexpr const char* kName = "CPU engine (native/cpu, native/hash)";
static void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                 int64_t ldb, bool nk, float* C, int64_t ldc, const float* bias) {
  atoma::gemm(M, N, K, A, lda, B, ldb, nk, C, ldc, bias);
}
static void row_sums(const float* x, int64_t rows, int64_t n, float* out) { atoma::row_sums(x, rows, n, out); }
static void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
  atoma::rmsnorm(x, w, y, rows, n, eps);
}
static void softmax(const float* x, float* y, int64_t rows, int64_t n) { atoma::softmax(x, y, rows, n); }
static void argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out) {
  atoma::argmax_rows(x, rows, n, out);
}
static void unary(int op, const float* x, float* y, int64_t n) {
  atoma::unary(static_cast<atoma::Unary>(op), x, y, n);
}
static void add(const float* a, const float* b, float* y, int64_t n) { atoma::add(a, b, y, n); }
static void mul(const float* a, const float* b, float* y, int64_t n) { atoma::mul(a, b, y, n); }
static void add_rows(const float* a, int64_t r, int64_t n, const float* row, float* y) { atoma::add_rows(a, r, n, row, y); }
static void mul_rows(const float* a, int64_t r, int64_t n, const float* row, float* y) { atoma::mul_rows(a, r, n, row, y); }
static void rope(float* x, int64_t t, int64_t h, int64_t hd, int64_t rot, const int32_t* pos, float theta, bool neox,
                 const float* div) {
  atoma::rope(x, t, h, hd, rot, pos, theta, neox, div);
}
static void embedding(const float* table, int64_t vocab, int64_t dim, const int32_t* ids, int64_t n, float* out) {
  atoma::embedding(table, vocab, dim, ids, n, out);
}
static void attention(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v,
                      int64_t n_kv, int64_t n_kv_heads, int64_t hd, const int32_t* q_pos, float* out) {
  atoma::attention(q, n_q, n_heads, k, v, n_kv, n_kv_heads, hd, q_pos, out);
}
static cu::Digest digest(const float* x, const std::vector<uint64_t>& dims) {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  atoma::Digest d = atoma::tensor_digest(atoma::DType::F32, dims, x, n * 4);
  cu::Digest r;
  std::memcpy(r.data(), d.data(), 32);
  return r;
}
#else
constexpr const char* kName = "scalar reference forms of native/canon (CPU engine not linked)";
static void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                 int64_t ldb, bool nk, float* C, int64_t ldc, const float* bias) {
  parallel_rows(M, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t j = 0; j < N; ++j) {
        float v = canon::chunked_dot(A + i * lda, 1, nk ? B + j * ldb : B + j, nk ? 1 : ldb, K);
        if (bias) v = v + bias[j];
        C[i * ldc + j] = v;
      }
  });
}
static void row_sums(const float* x, int64_t rows, int64_t n, float* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = canon::lane_sum(x + r * n, n);
}
static void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float ms = canon::lane_sumsq(x + r * n, n) / static_cast<float>(n);
    const float inv = 1.0f / std::sqrt(ms + eps);
    for (int64_t t = 0; t < n; ++t) y[r * n + t] = (x[r * n + t] * inv) * w[t];
  }
}
static void softmax_row(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  const float m = canon::row_max(x, n);
  for (int64_t t = 0; t < n; ++t) y[t] = canon::exp_f32(x[t] - m);
  const float s = canon::lane_sum(y, n);
  for (int64_t t = 0; t < n; ++t) y[t] = y[t] / s;
}
static void softmax(const float* x, float* y, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * n, y + r * n, n);
}
static void argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = static_cast<int32_t>(canon::row_argmax(x + r * n, n));
}
static void unary(int op, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    switch (op) {
      case 0: y[i] = canon::exp_f32(v); break;
      case 1: y[i] = canon::log_f32(v); break;
      case 2: y[i] = canon::tanh_f32(v); break;
      case 3: y[i] = canon::sin_f32(v); break;
      case 4: y[i] = canon::cos_f32(v); break;
      case 5: y[i] = canon::silu_f32(v); break;
      default: y[i] = canon::gelu_f32(v); break;
    }
  }
}
static void add(const float* a, const float* b, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i]; }
static void mul(const float* a, const float* b, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i]; }
static void add_rows(const float* a, int64_t r, int64_t n, const float* row, float* y) {
  for (int64_t i = 0; i < r * n; ++i) y[i] = a[i] + row[i % n];
}
static void mul_rows(const float* a, int64_t r, int64_t n, const float* row, float* y) {
  for (int64_t i = 0; i < r * n; ++i) y[i] = a[i] * row[i % n];
}
static void rope(float* x, int64_t tokens, int64_t heads, int64_t hd, int64_t rot, const int32_t* pos,
                 float theta, bool neox, const float* div) {
  const int64_t half = rot / 2;
  std::vector<float> inv(half);
  const float lt = canon::log_f32(theta);
  for (int64_t i = 0; i < half; ++i) {
    inv[i] = canon::exp_f32(-(static_cast<float>(2 * i) / static_cast<float>(rot)) * lt);
    if (div) inv[i] = inv[i] / div[i];
  }
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos[t]) * inv[i];
      const float c = canon::cos_f32(angle), s = canon::sin_f32(angle);
      for (int64_t h = 0; h < heads; ++h) {
        float* xh = x + (t * heads + h) * hd;
        float* p0 = xh + (neox ? i : 2 * i);
        float* p1 = p0 + (neox ? half : 1);
        const float x0 = *p0, x1 = *p1;
        const float a = x0 * c, b = x1 * s, e = x0 * s, f = x1 * c;
        *p0 = a - b;
        *p1 = e + f;
      }
    }
}
static void embedding(const float* table, int64_t, int64_t dim, const int32_t* ids, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < dim; ++d) out[i * dim + d] = table[ids[i] * dim + d];
}
static void attention(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v,
                      int64_t n_kv, int64_t n_kv_heads, int64_t hd, const int32_t* q_pos, float* out) {
  (void)n_kv;
  const int64_t group = n_heads / n_kv_heads, kvs = n_kv_heads * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  parallel_rows(n_q * n_heads, [&](int64_t p0, int64_t p1) {
    std::vector<float> p;
    for (int64_t pair = p0; pair < p1; ++pair) {
      const int64_t i = pair / n_heads, h = pair % n_heads, kvh = h / group;
      const int64_t n_vis = q_pos[i] + 1;
      p.resize(n_vis);
      for (int64_t j = 0; j < n_vis; ++j)
        p[j] = canon::chunked_dot(q + pair * hd, 1, k + j * kvs + kvh * hd, 1, hd) * scale;
      softmax_row(p.data(), p.data(), n_vis);
      for (int64_t d = 0; d < hd; ++d)
        out[pair * hd + d] = canon::chunked_dot(p.data(), 1, v + kvh * hd + d, kvs, n_vis);
    }
  });
}
#endif

// Used with and without the engine: the engine has no row_sumsqs / row_maxes entry points.
static void row_sumsqs(const float* x, int64_t rows, int64_t n, float* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = canon::lane_sumsq(x + r * n, n);
}
static void row_maxes(const float* x, int64_t rows, int64_t n, float* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = canon::row_max(x + r * n, n);
}

// The host model of the device BLAKE3 tree, for the builds without the engine's hash library.
template <class Src>
[[maybe_unused]] static cu::Digest model_digest_words(const Src& src, uint64_t len) {
  using namespace atoma::cuda::b3;
  const uint64_t n_chunks = chunk_count(len);
  std::vector<std::array<uint32_t, 8>> cur(n_chunks);
  for (uint64_t c = 0; c < n_chunks; ++c) {
    uint32_t cv[8];
    for (int i = 0; i < 8; ++i) cv[i] = iv(i);
    const uint32_t clen = chunk_bytes(len, c), nb = chunk_blocks(clen);
    for (uint32_t b = 0; b < nb; ++b) {
      uint32_t m[16];
      for (int w = 0; w < 16; ++w) m[w] = src.word(c * 256 + b * 16 + w);
      chunk_block(cv, m, c, clen, b, n_chunks == 1);
    }
    std::memcpy(cur[c].data(), cv, 32);
  }
  // The plain left-balanced tree (pairs level by level, odd last carried up).
  while (cur.size() > 1) {
    std::vector<std::array<uint32_t, 8>> next((cur.size() + 1) / 2);
    for (size_t t = 0; t + 1 < cur.size(); t += 2)
      parent(cur[t].data(), cur[t + 1].data(), cur.size() == 2, next[t / 2].data());
    if (cur.size() & 1) next.back() = cur.back();
    cur = next;
  }
  cu::Digest d;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 4; ++j) d[4 * i + j] = static_cast<uint8_t>(cur[0][i] >> (8 * j));
  return d;
}

// The trace leaf BLAKE3(0x00 || encoding) of an f32 tensor: the engine's merkle_leaf of the
// encoding bytes, or the host model of the tree over the shifted message.
static cu::Digest leaf(const float* x, const std::vector<uint64_t>& dims) {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  atoma::cuda::b3::TensorSource src;
  const uint64_t len = atoma::cuda::b3::fill_tensor_source(src, x, dims.data(), static_cast<int>(dims.size()), n);
#if ATOMA_GPU_CHECK_ENGINE
  std::vector<uint8_t> enc(len);
  for (uint64_t g = 0; g < len / 4; ++g)
    for (int b = 0; b < 4; ++b) enc[4 * g + b] = static_cast<uint8_t>(src.word(g) >> (8 * b));
  const atoma::Digest d = atoma::merkle_leaf(enc.data(), enc.size());
  cu::Digest r;
  std::memcpy(r.data(), d.data(), 32);
  return r;
#else
  return model_digest_words(atoma::cuda::b3::LeafSource{src}, len + 1);
#endif
}

#if !ATOMA_GPU_CHECK_ENGINE
static cu::Digest digest(const float* x, const std::vector<uint64_t>& dims) {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  atoma::cuda::b3::TensorSource src;
  const uint64_t len = atoma::cuda::b3::fill_tensor_source(src, x, dims.data(), static_cast<int>(dims.size()), n);
  return model_digest_words(src, len);
}
#endif

}  // namespace ref

// ---------------------------------------------------------------------------------------------
// Bookkeeping
// ---------------------------------------------------------------------------------------------
struct Family {
  int cases = 0, mismatches = 0;
};
static std::map<std::string, Family> g_families;
static std::vector<std::string> g_family_order;
static int g_total_mismatch = 0;

static Family& family(const std::string& f) {
  if (!g_families.count(f)) g_family_order.push_back(f);
  return g_families[f];
}

static void record(const std::string& fam, const std::string& name, bool ok, const std::string& why) {
  Family& f = family(fam);
  ++f.cases;
  if (!ok) {
    ++f.mismatches;
    ++g_total_mismatch;
    std::printf("MISMATCH [%s] %s: %s\n", fam.c_str(), name.c_str(), why.c_str());
    std::fflush(stdout);
  }
}

static std::string hex(const cu::Digest& d) { return atoma::blake3::to_hex(d.data(), d.size()); }

static bool same_bits(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return canon::f32_bits(a) == canon::f32_bits(b);
}

static Vec seeded(size_t n, uint64_t seed, uint32_t stream, float scale = 1.0f) {
  Vec v(n);
  auto fill = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) v[i] = canon::seeded_value(seed, stream, i) * scale;
  };
  if (n < (1u << 20)) fill(0, static_cast<int64_t>(n));
  else ref::parallel_rows(static_cast<int64_t>(n), fill);
  return v;
}

static cu::DeviceBuffer upload(const void* p, size_t bytes) {
  cu::DeviceBuffer d(std::max<size_t>(bytes, 4));
  cu::copy_to_device(d.data(), p, bytes);
  return d;
}
static cu::DeviceBuffer upload(const Vec& v) { return upload(v.data(), v.size() * sizeof(float)); }
static Vec download(const cu::DeviceBuffer& d, size_t n) {
  Vec v(n);
  cu::copy_to_host(v.data(), d.data(), n * sizeof(float));
  cu::synchronize();
  return v;
}

// Compares the GPU output (device) with the reference (host), bit for bit and by digest.
static void compare(const std::string& fam, const std::string& name, const Vec& want,
                    const cu::DeviceBuffer& got_dev, const std::vector<uint64_t>& dims,
                    bool digest = true) {
  const Vec got = download(got_dev, want.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (!same_bits(want[i], got[i])) {
      if (!bad) first = i;
      ++bad;
    }
  std::string why;
  if (bad) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%zu of %zu elements differ; first at %zu: cpu %.9g (%08x) gpu %.9g (%08x)",
                  bad, want.size(), first, want[first], canon::f32_bits(want[first]), got[first],
                  canon::f32_bits(got[first]));
    why = buf;
  }
  if (digest) {
    const cu::Digest h = ref::digest(want.data(), dims);
    const cu::Digest d = cu::tensor_digest_f32(got_dev.as<float>(), dims);
    if (h != d) why += (why.empty() ? "" : "; ") + std::string("digest cpu ") + hex(h) + " gpu " + hex(d);
  }
  record(fam, name, why.empty(), why);
}

static void guarded(const std::string& fam, const std::string& name, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const atoma::Error& e) {
    record(fam, name, false, std::string("error ") + e.code + ": " + e.what());
  } catch (const std::exception& e) {
    record(fam, name, false, std::string("exception: ") + e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// Conformance
// ---------------------------------------------------------------------------------------------
static void check_blake3_vectors(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    std::printf("NOTE: BLAKE3 vectors not found at %s: official-vector check skipped\n", path.c_str());
    record("blake3-vectors", "file " + path, false, "vectors file missing");
    return;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string js = ss.str();
  for (size_t pos = js.find("\"input_len\""); pos != std::string::npos; pos = js.find("\"input_len\"", pos + 1)) {
    const uint64_t len = std::stoull(js.substr(js.find(':', pos) + 1));
    const size_t hp = js.find("\"hash\"", pos);
    const size_t q = js.find('"', js.find(':', hp)) + 1;
    const std::string want = js.substr(q, 64);
    std::vector<uint8_t> in(len + 1);
    for (uint64_t i = 0; i < len; ++i) in[i] = static_cast<uint8_t>(i % 251);
    for (int off = 0; off < 2; ++off) {
      const std::string name = "len=" + std::to_string(len) + (off ? " unaligned" : "");
      guarded("blake3-vectors", name, [&] {
        cu::DeviceBuffer d(len + 8);
        cu::copy_to_device(static_cast<uint8_t*>(d.data()) + off, in.data(), len);
        const std::string got = hex(cu::blake3(static_cast<uint8_t*>(d.data()) + off, len));
        record("blake3-vectors", name, got == want, "got " + got + " want " + want);
      });
    }
  }
}

static void check_digests() {
  const uint64_t sizes[] = {0, 1, 5, 254, 255, 256, 257, 1000, 4096, 32768 + 3, 100000, 1 << 20, 3000007};
  for (uint64_t n : sizes)
    for (int shape = 0; shape < 3; ++shape) {
      std::vector<uint64_t> dims = shape == 0 ? std::vector<uint64_t>{n}
                                   : shape == 1 ? std::vector<uint64_t>{1, n}
                                                : std::vector<uint64_t>{n, 1, 1, 1, 1};
      const std::string name = "n=" + std::to_string(n) + " rank=" + std::to_string(dims.size());
      guarded("digest", name, [&] {
        Vec x = seeded(n, 11, 2);
        if (n > 8) {
          x[1] = canon::bits_f32(0x7F800001u);   // NaNs of every kind canonicalise
          x[2] = canon::bits_f32(0xFFFFFFFFu);
          x[3] = -0.0f;
          x[n - 1] = canon::bits_f32(0x7FC00001u);
        }
        cu::DeviceBuffer d = upload(x);
        const cu::Digest h = ref::digest(x.data(), dims);
        const cu::Digest g = cu::tensor_digest_f32(d.as<float>(), dims);
        record("digest", name, h == g, "cpu " + hex(h) + " gpu " + hex(g));
      });
    }
#if ATOMA_GPU_CHECK_ENGINE
  // Raw BLAKE3 of large byte buffers (many tree levels) against the engine's hasher.
  for (size_t len : {size_t{1} << 20, (size_t{5} << 20) + 333, (size_t{17} << 20) + 1}) {
    const std::string name = "raw blake3 len=" + std::to_string(len);
    guarded("digest", name, [&] {
      std::vector<uint8_t> bytes(len);
      for (size_t i = 0; i < len; i += 4) {
        const uint32_t w = canon::philox_word(21, 4, i / 4);
        std::memcpy(bytes.data() + i, &w, std::min<size_t>(4, len - i));
      }
      uint8_t want[32];
      atoma::blake3::hash(bytes.data(), len, want);
      cu::DeviceBuffer d = upload(bytes.data(), len);
      const cu::Digest g = cu::blake3(d.data(), len);
      cu::Digest w;
      std::memcpy(w.data(), want, 32);
      record("digest", name, g == w, "cpu " + hex(w) + " gpu " + hex(g));
    });
  }
#endif
  // Kernels and digests on a caller's stream.
  guarded("digest", "non-default stream", [&] {
    cu::StreamHandle st;
    const int64_t M = 70, N = 90, K = 600;
    Vec A = seeded(M * K, 1, 31), B = seeded(K * N, 2, 32), C(M * N);
    ref::gemm(M, N, K, A.data(), K, B.data(), N, false, C.data(), N, nullptr);
    cu::DeviceBuffer dA(A.size() * 4), dB(B.size() * 4), dC(C.size() * 4);
    cu::copy_to_device(dA.data(), A.data(), A.size() * 4, st.get());
    cu::copy_to_device(dB.data(), B.data(), B.size() * 4, st.get());
    cu::gemm(M, N, K, dA.as<float>(), K, dB.as<float>(), N, false, dC.as<float>(), N, nullptr, st.get());
    const cu::Digest g = cu::tensor_digest_f32(dC.as<float>(), {uint64_t(M), uint64_t(N)}, st.get());
    const cu::Digest h = ref::digest(C.data(), {uint64_t(M), uint64_t(N)});
    record("digest", "non-default stream", g == h, "cpu " + hex(h) + " gpu " + hex(g));
  });
  guarded("digest", "scalar (rank 0)", [&] {
    Vec x = {0.5f};
    cu::DeviceBuffer d = upload(x);
    const cu::Digest h = ref::digest(x.data(), {}), g = cu::tensor_digest_f32(d.as<float>(), {});
    record("digest", "scalar (rank 0)", h == g, "cpu " + hex(h) + " gpu " + hex(g));
  });
}

static void gemm_case(int64_t M, int64_t N, int64_t K, bool nk, bool with_bias, int pad,
                      bool specials, const std::vector<int>& variants) {
  char name[160];
  std::snprintf(name, sizeof name, "M=%lld N=%lld K=%lld B=%s%s%s%s", (long long)M, (long long)N,
                (long long)K, nk ? "[N,K]" : "[K,N]", with_bias ? " bias" : "",
                pad ? " padded-ld" : "", specials ? " inf/nan" : "");
  guarded("gemm", name, [&] {
    const int64_t lda = K + pad, ldb = (nk ? K : N) + pad, ldc = N + 2 * pad;
    Vec A = seeded(static_cast<size_t>(M * lda), M * 131 + K, 1);
    Vec B = seeded(static_cast<size_t>((nk ? N : K) * ldb), N * 7 + K, 2);
    Vec bias = seeded(static_cast<size_t>(N), N, 3);
    if (specials && M * lda > 5 && (nk ? N : K) * ldb > 5) {
      A[3] = INFINITY;
      B[(nk ? N : K) * ldb / 2] = NAN;
      A[M * lda - 1] = -0.0f;
    }
    Vec C(static_cast<size_t>(M * ldc), 0.0f);
    ref::gemm(M, N, K, A.data(), lda, B.data(), ldb, nk, C.data(), ldc, with_bias ? bias.data() : nullptr);
    cu::DeviceBuffer dA = upload(A), dB = upload(B), dbias = upload(bias);
    for (int v : variants) {
      cu::set_gemm_variant(v);
      Vec zero(static_cast<size_t>(M * ldc), 0.0f);
      cu::DeviceBuffer dC = upload(zero);
      cu::gemm(M, N, K, dA.as<float>(), lda, dB.as<float>(), ldb, nk, dC.as<float>(), ldc,
               with_bias ? dbias.as<float>() : nullptr);
      compare("gemm", std::string(name) + (v == 0 ? " [smem]" : v == 1 ? " [regs]" : " [smem1]"), C, dC,
              {static_cast<uint64_t>(M), static_cast<uint64_t>(ldc)});
    }
  });
}

static void check_gemm(bool quick) {
  const int64_t Ms[] = {1, 2, 7, 64, 129, 1000};
  const int64_t Ns[] = {1, 3, 17, 100, 513};
  const int64_t Ks[] = {1, 255, 256, 257, 700, 4097};
  int idx = 0;
  for (int64_t M : Ms)
    for (int64_t N : Ns)
      for (int64_t K : Ks)
        for (int nk = 0; nk < 2; ++nk) {
          ++idx;
          if (quick && M * N * K > 20000000) continue;
          // Every tiled variant on every shape; bias and padded leading dimensions on a
          // rotating subset so that each appears with every M, N and K.
          gemm_case(M, N, K, nk, idx % 2 == 0, idx % 3 == 0 ? 3 : 0, false, {0, 1, 2});
        }
  gemm_case(0, 5, 7, false, true, 0, false, {0});
  gemm_case(5, 0, 7, false, true, 0, false, {0});
  gemm_case(6, 5, 0, false, true, 0, false, {0, 1});
  gemm_case(33, 65, 300, false, true, 0, true, {0, 1});
  gemm_case(33, 65, 300, true, false, 1, true, {0, 1});
  gemm_case(1, 300, 520, true, true, 0, true, {0});
  if (!quick) {
    gemm_case(1024, 1024, 1024, false, false, 0, false, {0, 1});
    gemm_case(1024, 1024, 1024, true, true, 0, false, {0, 1});
    gemm_case(2048, 2048, 2048, false, true, 0, false, {0});
  }
  cu::set_gemm_variant(0);
}

static void check_gemv() {
  const int64_t shapes[][2] = {{1, 1}, {3, 255}, {17, 256}, {100, 257}, {513, 700}, {1000, 4097},
                               {33, 8191}, {4099, 1000}, {8192, 8192}, {8191, 2305}};
  // Every [N,K] variant (cu::gemv_variant_name) on every shape and layout; [K,N] goes through
  // gemm's M == 1 path, which has one kernel.
  const int n_variants = cu::gemv_variant_count();
  for (auto& s : shapes) {
    const int64_t N = s[0], K = s[1];
    for (int mode = 0; mode < 4; ++mode) {
      // 0: W [N,K] aligned (vector loads); 1: W [N,K] row pitch K+1 (scalar loads);
      // 2: W [N,K] base misaligned by one float; 3: B [K,N] (M = 1 through gemm).
      if (N * K > 10000000 && mode != 0 && mode != 3) continue;
      const bool nk = mode != 3;
      const int64_t ld = nk ? K + (mode == 1 ? 1 : 0) : N;
      const int64_t off = mode == 2 ? 1 : 0;
      Vec x = seeded(K, K, 4);
      Vec W = seeded(static_cast<size_t>((nk ? N : K) * ld + off), N + K, 5);
      Vec bias = seeded(N, 3, 6);
      const bool with_bias = (N + K) % 2 == 1;
      Vec y(N);
      ref::gemm(1, N, K, x.data(), K, W.data() + off, ld, nk, y.data(), N, with_bias ? bias.data() : nullptr);
      cu::DeviceBuffer dx = upload(x), dW = upload(W), db = upload(bias), dy(N * sizeof(float));
      for (int v = 0; v < (nk ? n_variants : 1); ++v) {
        char name[160];
        std::snprintf(name, sizeof name, "N=%lld K=%lld %s%s%s", (long long)N, (long long)K,
                      mode == 0 ? "[N,K]" : mode == 1 ? "[N,K] ldw=K+1" : mode == 2 ? "[N,K] misaligned" : "[K,N]",
                      nk ? " " : "", nk ? cu::gemv_variant_name(v) : "");
        guarded("gemv", name, [&] {
          cu::set_gemv_variant(v);
          cu::memset_zero(dy.data(), N * sizeof(float));
          cu::gemm(1, N, K, dx.as<float>(), K, dW.as<float>() + off, ld, nk, dy.as<float>(), N,
                   with_bias ? db.as<float>() : nullptr);
          compare("gemv", name, y, dy, {static_cast<uint64_t>(N)});
        });
      }
    }
  }
  cu::set_gemv_variant(0);
}

// Rows with ties, NaNs, infinities and signed zeros for max/argmax/softmax.
static Vec special_rows(int64_t rows, int64_t n, uint64_t seed) {
  Vec x(rows * n);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < n; ++t) {
      const float u = canon::seeded_value(seed, 9, r * n + t);
      float v = std::floor(u * 4.0f) * 0.5f;   // few distinct values: many ties
      switch (r % 5) {
        case 0: break;
        case 1: if (t % 7 == 3) v = NAN; break;
        case 2: v = (t % 2) ? -0.0f : 0.0f; if (t == n / 2) v = -0.0f; break;
        case 3: v = NAN; if (t == n - 1 && n > 3) v = -INFINITY; break;
        case 4: if (t % 11 == 5) v = INFINITY; if (t % 13 == 1) v = -INFINITY; break;
      }
      x[r * n + t] = v;
    }
  return x;
}

static void check_rows() {
  const int64_t ns[] = {1, 31, 33, 257, 1000, 4097};
  for (int64_t rows = 1; rows <= 7; ++rows)
    for (int64_t n : ns) {
      const std::string shape = "rows=" + std::to_string(rows) + " n=" + std::to_string(n);
      const std::vector<uint64_t> dims = {static_cast<uint64_t>(rows), static_cast<uint64_t>(n)};
      const std::vector<uint64_t> rdims = {static_cast<uint64_t>(rows)};
      Vec x = seeded(rows * n, rows * 1000 + n, 7, 4.0f);
      Vec w = seeded(n, n, 8);
      cu::DeviceBuffer dx = upload(x), dw = upload(w), dy(rows * n * 4 + 4), dr(rows * 4 + 4);

      guarded("row_sums", shape, [&] {
        Vec r(rows);
        ref::row_sums(x.data(), rows, n, r.data());
        cu::row_sums(dx.as<float>(), rows, n, dr.as<float>());
        compare("row_sums", shape, r, dr, rdims);
      });
      guarded("row_sumsqs", shape, [&] {
        Vec r(rows);
        ref::row_sumsqs(x.data(), rows, n, r.data());
        cu::row_sumsqs(dx.as<float>(), rows, n, dr.as<float>());
        compare("row_sumsqs", shape, r, dr, rdims);
      });
      guarded("rmsnorm", shape, [&] {
        Vec y(rows * n);
        ref::rmsnorm(x.data(), w.data(), y.data(), rows, n, 1e-5f);
        cu::rmsnorm(dx.as<float>(), dw.as<float>(), dy.as<float>(), rows, n, 1e-5f);
        compare("rmsnorm", shape, y, dy, dims);
      });
      guarded("softmax", shape, [&] {
        Vec y(rows * n);
        ref::softmax(x.data(), y.data(), rows, n);
        cu::softmax(dx.as<float>(), dy.as<float>(), rows, n);
        compare("softmax", shape, y, dy, dims);
        // In place, as the CPU allows.
        cu::DeviceBuffer dz = upload(x);
        cu::softmax(dz.as<float>(), dz.as<float>(), rows, n);
        compare("softmax", shape + " in-place", y, dz, dims);
      });
      Vec xs = special_rows(rows, n, n + rows);
      cu::DeviceBuffer dxs = upload(xs);
      guarded("max/argmax", shape, [&] {
        Vec r(rows);
        ref::row_maxes(xs.data(), rows, n, r.data());
        cu::row_maxes(dxs.as<float>(), rows, n, dr.as<float>());
        compare("max/argmax", shape + " max", r, dr, rdims);
        std::vector<int32_t> ia(rows), ib(rows);
        ref::argmax_rows(xs.data(), rows, n, ia.data());
        cu::DeviceBuffer di(rows * 4);
        cu::argmax_rows(dxs.as<float>(), rows, n, di.as<int32_t>());
        cu::copy_to_host(ib.data(), di.data(), rows * 4);
        cu::synchronize();
        std::string why;
        for (int64_t r2 = 0; r2 < rows; ++r2)
          if (ia[r2] != ib[r2]) why += "row " + std::to_string(r2) + ": cpu " + std::to_string(ia[r2]) + " gpu " + std::to_string(ib[r2]) + "; ";
        record("max/argmax", shape + " argmax", why.empty(), why);
        // Softmax of rows with NaN and infinities.
        Vec y(rows * n);
        ref::softmax(xs.data(), y.data(), rows, n);
        cu::softmax(dxs.as<float>(), dy.as<float>(), rows, n);
        compare("softmax", shape + " specials", y, dy, dims);
      });
      guarded("elementwise", shape, [&] {
        Vec b = seeded(rows * n, n, 10), y(rows * n);
        cu::DeviceBuffer db = upload(b);
        ref::add(x.data(), b.data(), y.data(), rows * n);
        cu::add(dx.as<float>(), db.as<float>(), dy.as<float>(), rows * n);
        compare("elementwise", shape + " add", y, dy, dims);
        ref::mul(x.data(), b.data(), y.data(), rows * n);
        cu::mul(dx.as<float>(), db.as<float>(), dy.as<float>(), rows * n);
        compare("elementwise", shape + " mul", y, dy, dims);
        ref::add_rows(x.data(), rows, n, w.data(), y.data());
        cu::add_rows(dx.as<float>(), rows, n, dw.as<float>(), dy.as<float>());
        compare("elementwise", shape + " add_rows", y, dy, dims);
        ref::mul_rows(x.data(), rows, n, w.data(), y.data());
        cu::mul_rows(dx.as<float>(), rows, n, dw.as<float>(), dy.as<float>());
        compare("elementwise", shape + " mul_rows", y, dy, dims);
      });
    }
}

static void check_unary() {
  const char* names[] = {"exp", "log", "tanh", "sin", "cos", "silu", "gelu"};
  const int64_t n = 1 << 18;
  // Wide ranges plus the special values: overflow, underflow, subnormals, NaN, signed zeros.
  Vec x(n);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t w = canon::philox_word(77, 1, i);
    if (i % 4 == 0) x[i] = canon::bits_f32(w);   // any bit pattern
    else x[i] = canon::seeded_value(77, 2, i) * (i % 4 == 1 ? 100.0f : 10.0f);
  }
  const float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f, -1e-45f, 1e-38f, 88.72f, -103.9f, 3.14159265f};
  for (size_t i = 0; i < sizeof sp / sizeof sp[0]; ++i) x[i] = sp[i];
  cu::DeviceBuffer dx = upload(x), dy(n * 4);
  for (int op = 0; op < 7; ++op) {
    // sin/cos are correctly rounded on the RoPE domain only: test them on angles there.
    Vec xin = x;
    if (op == 3 || op == 4)
      for (int64_t i = 0; i < n; ++i) xin[i] = static_cast<float>(i % 65536) * canon::seeded_value(78, 3, i);
    cu::DeviceBuffer din = upload(xin);
    guarded("unary", names[op], [&] {
      Vec y(n);
      ref::unary(op, xin.data(), y.data(), n);
      cu::unary(static_cast<cu::Unary>(op), din.as<float>(), dy.as<float>(), n);
      compare("unary", names[op], y, dy, {static_cast<uint64_t>(n)});
    });
  }
}

static void check_rope() {
  for (int64_t hd : {8, 64, 128})
    for (int rot_half = 0; rot_half < 2; ++rot_half)
      for (int neox = 0; neox < 2; ++neox)
        for (int64_t heads : {1, 4})
          for (int scaled = 0; scaled < 2; ++scaled) {
          const int64_t tokens = 5, rot = rot_half ? hd / 2 : hd;
          const float theta = neox ? 1000000.0f : 10000.0f;
          char name[128];
          std::snprintf(name, sizeof name, "tokens=%lld heads=%lld hd=%lld rot=%lld %s%s", (long long)tokens,
                        (long long)heads, (long long)hd, (long long)rot, neox ? "neox" : "pairs",
                        scaled ? " scaled" : "");
          guarded("rope", name, [&] {
            Vec x = seeded(tokens * heads * hd, hd + heads, 12);
            std::vector<int32_t> pos = {0, 1, 17, 4095, 32767};
            // RoPE scaling: per-pair divisors in [1, 8] with fractions (Llama 3 style smoothing).
            Vec div(rot / 2);
            for (size_t i = 0; i < div.size(); ++i) div[i] = 1.0f + 7.0f * static_cast<float>(i) / static_cast<float>(div.size()) + 0.001f * static_cast<float>(i % 3);
            cu::DeviceBuffer dx = upload(x), dp = upload(pos.data(), pos.size() * 4), dd = upload(div);
            ref::rope(x.data(), tokens, heads, hd, rot, pos.data(), theta, neox, scaled ? div.data() : nullptr);
            cu::rope(dx.as<float>(), tokens, heads, hd, rot, dp.as<int32_t>(), theta, neox,
                     scaled ? dd.as<float>() : nullptr);
            compare("rope", name, x, dx,
                    {static_cast<uint64_t>(tokens), static_cast<uint64_t>(heads), static_cast<uint64_t>(hd)});
          });
        }
}

static void check_attention() {
  struct C { int64_t n_q, n_heads, n_kv_heads, hd, n_kv; int pos_mode; };
  const C cases[] = {{1, 4, 1, 64, 1, 0},     {1, 8, 2, 128, 600, 0}, {7, 4, 2, 64, 17, 0},
                     {7, 8, 8, 80, 600, 1},   {33, 8, 2, 128, 600, 0}, {33, 4, 4, 64, 257, 1},
                     {5, 6, 3, 96, 300, 2},   {64, 8, 1, 64, 64, 0}};
  for (const C& c : cases) {
    char name[160];
    std::snprintf(name, sizeof name, "n_q=%lld heads=%lld kv_heads=%lld hd=%lld n_kv=%lld pos=%s",
                  (long long)c.n_q, (long long)c.n_heads, (long long)c.n_kv_heads, (long long)c.hd,
                  (long long)c.n_kv, c.pos_mode == 0 ? "tail" : c.pos_mode == 1 ? "random" : "first");
    guarded("attention", name, [&] {
      Vec q = seeded(c.n_q * c.n_heads * c.hd, c.hd, 13, 2.0f);
      Vec k = seeded(c.n_kv * c.n_kv_heads * c.hd, c.n_kv, 14, 2.0f);
      Vec v = seeded(c.n_kv * c.n_kv_heads * c.hd, c.n_kv, 15);
      std::vector<int32_t> pos(c.n_q);
      for (int64_t i = 0; i < c.n_q; ++i) {
        if (c.pos_mode == 0) pos[i] = static_cast<int32_t>(std::max<int64_t>(0, c.n_kv - c.n_q + i));
        else if (c.pos_mode == 1) pos[i] = static_cast<int32_t>(canon::philox_word(5, 5, i) % c.n_kv);
        else pos[i] = static_cast<int32_t>(std::min<int64_t>(i, c.n_kv - 1));
      }
      Vec out(c.n_q * c.n_heads * c.hd);
      ref::attention(q.data(), c.n_q, c.n_heads, k.data(), v.data(), c.n_kv, c.n_kv_heads, c.hd, pos.data(), out.data());
      cu::DeviceBuffer dq = upload(q), dk = upload(k), dv = upload(v), dp = upload(pos.data(), pos.size() * 4);
      cu::DeviceBuffer dout(out.size() * 4);
      cu::attention(dq.as<float>(), c.n_q, c.n_heads, dk.as<float>(), dv.as<float>(), c.n_kv, c.n_kv_heads,
                    c.hd, dp.as<int32_t>(), dout.as<float>());
      compare("attention", name, out, dout,
              {static_cast<uint64_t>(c.n_q), static_cast<uint64_t>(c.n_heads), static_cast<uint64_t>(c.hd)});
    });
  }
}

static void check_embedding() {
  guarded("embedding", "vocab=1000 dim=67 n=33", [&] {
    const int64_t vocab = 1000, dim = 67, n = 33;
    Vec table = seeded(vocab * dim, 1, 16);
    std::vector<int32_t> ids(n);
    for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(canon::philox_word(3, 3, i) % vocab);
    Vec out(n * dim);
    ref::embedding(table.data(), vocab, dim, ids.data(), n, out.data());
    cu::DeviceBuffer dt = upload(table), di = upload(ids.data(), n * 4), dout(n * dim * 4);
    cu::embedding(dt.as<float>(), vocab, dim, di.as<int32_t>(), n, dout.as<float>());
    compare("embedding", "vocab=1000 dim=67 n=33", out, dout, {static_cast<uint64_t>(n), static_cast<uint64_t>(dim)});
  });
}

// ---------------------------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------------------------
struct Cublas {
  void* lib = nullptr;
  void* handle = nullptr;
  std::string source;
  int (*create)(void**) = nullptr;
  int (*destroy)(void*) = nullptr;
  int (*set_math)(void*, int) = nullptr;
  int (*sgemm)(void*, int, int, int, int, int, const float*, const float*, int, const float*, int,
               const float*, float*, int) = nullptr;

  bool load() {
    std::vector<std::string> names;
    if (const char* p = std::getenv("ATOMA_CUBLAS_LIB")) names.push_back(p);
    for (const char* n : {"libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}) names.push_back(n);
    for (const std::string& n : names) {
      lib = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib) {
        source = n;
        break;
      }
    }
    if (!lib) return false;
    create = reinterpret_cast<decltype(create)>(dlsym(lib, "cublasCreate_v2"));
    destroy = reinterpret_cast<decltype(destroy)>(dlsym(lib, "cublasDestroy_v2"));
    set_math = reinterpret_cast<decltype(set_math)>(dlsym(lib, "cublasSetMathMode"));
    sgemm = reinterpret_cast<decltype(sgemm)>(dlsym(lib, "cublasSgemm_v2"));
    if (!create || !destroy || !set_math || !sgemm) return false;
    if (create(&handle) != 0) return false;
    // CUBLAS_DEFAULT_MATH (0): FP32 SGEMM without TF32, what PyTorch uses with
    // allow_tf32 = False (the script also sets NVIDIA_TF32_OVERRIDE=0).
    return set_math(handle, 0) == 0;
  }
  ~Cublas() {
    if (handle) destroy(handle);
  }
};

// Trace leaves hashed on the device against the CPU's merkle_leaf(encode()).
static void check_leaves() {
  const uint64_t sizes[] = {0, 1, 5, 255, 256, 257, 4096, 100000, 1 << 20, 3000007};
  for (uint64_t n : sizes)
    for (int shape = 0; shape < 3; ++shape) {
      std::vector<uint64_t> dims = shape == 0 ? std::vector<uint64_t>{n}
                                   : shape == 1 ? std::vector<uint64_t>{1, n}
                                                : std::vector<uint64_t>{n, 1, 1};
      const std::string name = "n=" + std::to_string(n) + " rank=" + std::to_string(dims.size());
      guarded("trace-leaf", name, [&] {
        Vec x = seeded(n, 31, 2);
        if (n > 8) {
          x[1] = canon::bits_f32(0x7F800001u);
          x[3] = -0.0f;
        }
        cu::DeviceBuffer d = upload(x);
        const cu::Digest h = ref::leaf(x.data(), dims);
        const cu::Digest g = cu::merkle_leaf_f32(d.as<float>(), dims);
        record("trace-leaf", name, h == g, "cpu " + hex(h) + " gpu " + hex(g));
        // Queued into slot 2 of a stream-ordered digest buffer, as a generation step does.
        cu::StreamHandle s;
        cu::DeviceBuffer slots(4 * 32, s.get());
        cu::merkle_leaf_f32_into(d.as<float>(), dims, slots.as<uint8_t>() + 64, s.get());
        cu::Digest q;
        cu::copy_to_host(q.data(), slots.as<uint8_t>() + 64, 32, s.get());
        cu::synchronize(s.get());
        record("trace-leaf", name + " queued", h == q, "cpu " + hex(h) + " gpu " + hex(q));
      });
    }
  guarded("trace-leaf", "scalar (rank 0)", [&] {
    Vec x = {2.5f};
    cu::DeviceBuffer d = upload(x);
    const cu::Digest h = ref::leaf(x.data(), {}), g = cu::merkle_leaf_f32(d.as<float>(), {});
    record("trace-leaf", "scalar (rank 0)", h == g, "cpu " + hex(h) + " gpu " + hex(g));
  });
}

// A logits row of one of several kinds: plain, many ties (and -0), specials (NaN, +-inf,
// subnormals, huge), all NaN, all -inf.
static Vec sampling_row(int64_t n, uint64_t seed, int kind) {
  Vec x(n);
  for (int64_t i = 0; i < n; ++i) {
    const float u = canon::seeded_value(seed, 21, i);
    const uint32_t w = canon::philox_word(seed, 22, i);
    if (kind == 0) x[i] = u * 12.0f;
    else if (kind == 1) x[i] = static_cast<float>(static_cast<int>(u * 4.0f));
    else if (kind == 2) {
      switch (w % 16) {
        case 0: x[i] = NAN; break;
        case 1: x[i] = -INFINITY; break;
        case 2: x[i] = (w & 0x100) ? INFINITY : -0.0f; break;
        case 3: x[i] = canon::bits_f32(1u + (w >> 12)); break;
        case 4: x[i] = u * 1e30f; break;
        default: x[i] = u * 30.0f;
      }
    } else if (kind == 3) x[i] = NAN;
    else x[i] = -INFINITY;
  }
  return x;
}

// Device sampling against the CPU path (canon::sample_host, itself checked against the
// TypeScript reference by test/sampler-native.test.ts): the same token for every case.
static void check_sampling(bool quick) {
  const int64_t sizes[] = {1, 2, 7, 1000, 2047, 2048, 2049, 32000, 128256, 151936};
  const double temps[] = {0.0, 1.0, 0.7, 1e-3, 1e-50};
  const int64_t top_ks[] = {0, 1, 40};
  const double top_ps[] = {1.0, 0.9, 0.5};
  for (int64_t n : sizes)
    for (int kind = 0; kind < 5; ++kind) {
      if (quick && n > 40000 && kind > 1) continue;
      const Vec x = sampling_row(n, static_cast<uint64_t>(n) * 7 + kind, kind);
      cu::DeviceBuffer d = upload(x);
      for (double t : temps)
        for (int64_t k : top_ks)
          for (double p : top_ps) {
            if ((t == 0.0 || k == 1) && p != 1.0) continue;   // greedy ignores top-p
            const uint64_t seed = 1234567 + n, step = static_cast<uint64_t>(kind * 100 + k);
            char name[160];
            std::snprintf(name, sizeof name, "V=%lld kind=%d T=%g k=%lld p=%g", (long long)n, kind, t, (long long)k, p);
            guarded("sampling", name, [&] {
              const canon::SampleParams sp = canon::make_sample_params(t, k, p, seed, step);
              const int64_t want = canon::sample_host(x.data(), n, sp);
              const int64_t got = cu::sample(d.as<float>(), n, t, k, p, seed, step);
              record("sampling", name, got == want, "cpu " + std::to_string(want) + " gpu " + std::to_string(got));
            });
          }
    }
}

template <class F>
static double time_ms(F f, int min_reps = 3, double min_total_ms = 300.0) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  f();   // warm-up
  cudaDeviceSynchronize();
  int reps = 0;
  double total = 0;
  while (reps < min_reps || (total < min_total_ms && reps < 200)) {
    cudaEventRecord(a);
    f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    total += ms;
    ++reps;
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw atoma::Error("ERR_CUDA", std::string("benchmark: ") + cudaGetErrorString(e));
  return total / reps;
}

// Wall-clock ms of a host (CPU) call, like time_ms: a warm-up, then at least min_reps runs.
template <class F>
[[maybe_unused]] static double cpu_ms(F f, int min_reps = 3, double min_total_ms = 300.0) {
  f();
  int reps = 0;
  double total = 0;
  while (reps < min_reps || (total < min_total_ms && reps < 200)) {
    const auto a = std::chrono::steady_clock::now();
    f();
    total += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
    ++reps;
  }
  return total / reps;
}

[[maybe_unused]] static std::string cpu_note() {
#if ATOMA_GPU_CHECK_ENGINE
  return std::string("CPU engine, ") + atoma::isa_name(atoma::active_isa()) + ", " +
         std::to_string(atoma::thread_count()) + " threads";
#else
  return "";
#endif
}

struct BenchRow {
  std::string name;
  double value;
  std::string unit;
  std::string note;
};
static std::vector<BenchRow> g_bench_rows;
struct BenchLog {
  void push_back(const BenchRow& r) {
    g_bench_rows.push_back(r);
    std::printf("bench: %-44s %12.4g %s %s\n", r.name.c_str(), r.value, r.unit.c_str(), r.note.c_str());
    std::fflush(stdout);
  }
};
static BenchLog g_bench;

static void bench(bool quick) {
  Cublas cb;
  const bool have_cublas = cb.load();
  std::printf("cuBLAS: %s\n", have_cublas ? ("loaded " + cb.source + " (default math: FP32, TF32 off)").c_str()
                                          : "not available (set ATOMA_CUBLAS_LIB)");
  std::vector<int64_t> sizes = quick ? std::vector<int64_t>{2048} : std::vector<int64_t>{2048, 4096, 8192};
  for (int64_t n : sizes) {
    const double flop = 2.0 * n * n * n;
    Vec A = seeded(n * n, 1, 1), B = seeded(n * n, 2, 2);
    cu::DeviceBuffer dA = upload(A), dB = upload(B), dC(n * n * 4), dC2(n * n * 4);
    double best_ours = 0;
    for (int v = 0; v < 3; ++v)
      for (int nk = 0; nk < 2; ++nk) {
        if (n == 8192 && nk) continue;
        cu::set_gemm_variant(v);
        const double ms = time_ms([&] {
          cu::gemm(n, n, n, dA.as<float>(), n, dB.as<float>(), n, nk, dC.as<float>(), n, nullptr);
        });
        const double tf = flop / ms / 1e9;
        if (!nk) best_ours = std::max(best_ours, tf);
        g_bench.push_back({"sgemm " + std::to_string(n) + (nk ? " B[N,K]" : " B[K,N]") + (v == 0 ? " smem" : v == 1 ? " regs" : " smem1"),
                           tf, "TFLOP/s", ""});
      }
    cu::set_gemm_variant(0);
    // Same bytes on every run.
    cu::gemm(n, n, n, dA.as<float>(), n, dB.as<float>(), n, false, dC.as<float>(), n, nullptr);
    const cu::Digest d1 = cu::tensor_digest_f32(dC.as<float>(), {uint64_t(n), uint64_t(n)});
    cu::set_gemm_variant(1);
    cu::gemm(n, n, n, dA.as<float>(), n, dB.as<float>(), n, false, dC2.as<float>(), n, nullptr);
    const cu::Digest d2 = cu::tensor_digest_f32(dC2.as<float>(), {uint64_t(n), uint64_t(n)});
    cu::set_gemm_variant(0);
    record("gemm-bench-determinism", "sgemm " + std::to_string(n) + " smem vs regs", d1 == d2,
           "digests " + hex(d1) + " vs " + hex(d2));
#if ATOMA_GPU_CHECK_ENGINE
    if (n == (quick ? 2048 : 4096)) {   // the CPU path on the same shape and the same inputs
      Vec C(n * n);
      const double ms = cpu_ms([&] { atoma::gemm(n, n, n, A.data(), n, B.data(), n, false, C.data(), n, nullptr); }, 2, 0);
      const double tf = flop / ms / 1e9;
      g_bench.push_back({"cpu sgemm " + std::to_string(n), tf, "TFLOP/s", cpu_note()});
      g_bench.push_back({"ratio cuda / cpu sgemm " + std::to_string(n), best_ours / tf, "x", "best CUDA variant / CPU"});
      const cu::Digest dc = ref::digest(C.data(), {uint64_t(n), uint64_t(n)});
      record("cpu-vs-cuda-bench", "sgemm " + std::to_string(n), dc == d1, "cpu " + hex(dc) + " gpu " + hex(d1));
    }
#endif
    if (have_cublas) {
      const float one = 1.0f, zero = 0.0f;
      const int ni = static_cast<int>(n);
      // Row-major C = A B is column-major C^T = B^T A^T.
      auto run = [&] {
        cb.sgemm(cb.handle, 0, 0, ni, ni, ni, &one, dB.as<float>(), ni, dA.as<float>(), ni, &zero, dC2.as<float>(), ni);
      };
      const double ms = time_ms(run);
      const double tf = flop / ms / 1e9;
      g_bench.push_back({"cublas sgemm " + std::to_string(n), tf, "TFLOP/s", "FP32, TF32 off"});
      char note[64];
      std::snprintf(note, sizeof note, "best ours / cuBLAS (target >= 0.80)");
      g_bench.push_back({"ratio sgemm " + std::to_string(n), best_ours / tf, "x", note});
      // Accuracy against cuBLAS (informative: both are FP32, orders differ).
      const Vec c1 = download(dC, n * n), c2 = download(dC2, n * n);
      double maxd = 0, maxv = 0;
      for (int64_t i = 0; i < n * n; ++i) {
        maxd = std::max(maxd, std::fabs(double(c1[i]) - double(c2[i])));
        maxv = std::max(maxv, std::fabs(double(c2[i])));
      }
      g_bench.push_back({"max|ours-cublas|/max|C| " + std::to_string(n), maxd / maxv, "", ""});
    }
  }

  {  // GEMV at K = N = 8192 against a device-to-device copy of the same bytes.
    const int64_t N = 8192, K = 8192;
    Vec x = seeded(K, 3, 3);
    cu::DeviceBuffer dW(N * K * 4), dW2(N * K * 4), dx = upload(x), dy(N * 4);
    Vec W = seeded(N * K, 4, 4);   // kept for the CPU path below
    cu::copy_to_device(dW.data(), W.data(), W.size() * 4);
    const double bytes = double(N) * K * 4;
    const double ms_copy = time_ms([&] { cu::copy_device(dW2.data(), dW.data(), N * K * 4); });
    const double copy_bw = 2 * bytes / ms_copy / 1e6;
    g_bench.push_back({"d2d copy 256 MiB", copy_bw, "GB/s", "read + write"});
    double best_ms = 0;
    std::string best_name;
    cu::Digest d0{};
    for (int v = 0; v < cu::gemv_variant_count(); ++v) {
      cu::set_gemv_variant(v);
      const double ms = time_ms([&] { cu::gemv(N, K, dx.as<float>(), dW.as<float>(), K, dy.as<float>(), nullptr); });
      char note[64];
      std::snprintf(note, sizeof note, "%.1f us, %.3fx copy", ms * 1000, bytes / ms / 1e6 / copy_bw);
      g_bench.push_back({std::string("gemv 8192x8192 ") + cu::gemv_variant_name(v), bytes / ms / 1e6, "GB/s", note});
      if (v == 0 || ms < best_ms) best_ms = ms, best_name = cu::gemv_variant_name(v);
      const cu::Digest d = cu::tensor_digest_f32(dy.as<float>(), {uint64_t(N)});
      if (v == 0) d0 = d;
      else
        record("gemv-bench-determinism", std::string("gemv 8192 auto vs ") + cu::gemv_variant_name(v), d == d0,
               "digests " + hex(d0) + " vs " + hex(d));
    }
    cu::set_gemv_variant(0);
    const double gemv_bw = bytes / best_ms / 1e6;
    g_bench.push_back({"gemv 8192x8192", gemv_bw, "GB/s", "W bytes / time, best: " + best_name});
    g_bench.push_back({"ratio gemv / copy", gemv_bw / copy_bw, "x", "target >= 0.70"});
    g_bench.push_back({"gemv 8192x8192 time", best_ms * 1000, "us", best_name});
#if ATOMA_GPU_CHECK_ENGINE
    {  // The CPU path: the same x and W (M = 1, W stored [N, K]).
      Vec y(N);
      const double ms = cpu_ms([&] { atoma::gemm(1, N, K, x.data(), K, W.data(), K, true, y.data(), N, nullptr); });
      g_bench.push_back({"cpu gemv 8192x8192", bytes / ms / 1e6, "GB/s", cpu_note()});
      g_bench.push_back({"cpu gemv 8192x8192 time", ms * 1000, "us", ""});
      g_bench.push_back({"ratio cuda / cpu gemv 8192", ms / best_ms, "x", "CPU time / best CUDA time"});
      const cu::Digest dc = ref::digest(y.data(), {uint64_t(N)});
      record("cpu-vs-cuda-bench", "gemv 8192", dc == d0, "cpu " + hex(dc) + " gpu " + hex(d0));
    }
#endif
  }
  {  // Digest throughput.
    const int64_t n = int64_t{64} << 20;   // 256 MiB of f32
    cu::DeviceBuffer d(n * 4);
    cu::memset_zero(d.data(), n * 4);
    const double ms = time_ms([&] { cu::tensor_digest_f32(d.as<float>(), {uint64_t(n)}); });
    g_bench.push_back({"tensor digest 256 MiB", n * 4.0 / ms / 1e6, "GB/s", ""});
    const double ms_leaf = time_ms([&] { cu::merkle_leaf_f32(d.as<float>(), {uint64_t(n)}); });
    g_bench.push_back({"trace leaf 256 MiB", n * 4.0 / ms_leaf / 1e6, "GB/s", "BLAKE3(0x00 || encoding)"});
    const double ms_row = time_ms([&] { cu::merkle_leaf_f32(d.as<float>(), {1, 4096}); });
    g_bench.push_back({"trace leaf [1, 4096] (decode row)", ms_row * 1000, "us", "incl. 32-byte copy back"});
  }
  {  // Sampling one row of a 128k vocabulary: device against the CPU path, same token.
    const int64_t V = 128256;
    const Vec x = sampling_row(V, 99, 0);
    cu::DeviceBuffer d = upload(x);
    struct P { double t; int64_t k; double p; const char* name; };
    const P ps[] = {{0.8, 0, 0.95, "T=0.8 top-p 0.95"}, {0.8, 40, 0.95, "T=0.8 top-k 40 top-p 0.95"}, {0.0, 0, 1.0, "greedy"}};
    for (const P& q : ps) {
      int64_t got = -1;
      const double ms = time_ms([&] { got = cu::sample(d.as<float>(), V, q.t, q.k, q.p, 7, 3); }, 3, 100);
      g_bench.push_back({std::string("sample V=128256 ") + q.name, ms * 1000, "us", "device, token back"});
      int64_t want = -1;
      const canon::SampleParams sp = canon::make_sample_params(q.t, q.k, q.p, 7, 3);
      const double cms = cpu_ms([&] { want = canon::sample_host(x.data(), V, sp); }, 3, 100);
      g_bench.push_back({std::string("cpu sample V=128256 ") + q.name, cms * 1000, "us", "canon::sample_host, 1 thread"});
      record("cpu-vs-cuda-bench", std::string("sample ") + q.name, got == want,
             "cpu " + std::to_string(want) + " gpu " + std::to_string(got));
    }
  }
  {  // Row kernels.
    const int64_t rows = 4096, n = 4096;
    Vec x = seeded(rows * n, 5, 5), w = seeded(n, 6, 6);
    cu::DeviceBuffer dx = upload(x), dw = upload(w), dy(rows * n * 4);
    const double bytes = 2.0 * rows * n * 4;
    double ms = time_ms([&] { cu::rmsnorm(dx.as<float>(), dw.as<float>(), dy.as<float>(), rows, n, 1e-5f); });
    g_bench.push_back({"rmsnorm 4096x4096", bytes / ms / 1e6, "GB/s", "read + write"});
    ms = time_ms([&] { cu::softmax(dx.as<float>(), dy.as<float>(), rows, n); });
    g_bench.push_back({"softmax 4096x4096", bytes / ms / 1e6, "GB/s", "read + write"});
  }
  {  // Decode-shaped attention: 32 heads, 8 kv heads, 4096 keys.
    const int64_t nh = 32, nkv = 8, hd = 128, n_kv = 4096;
    Vec q = seeded(nh * hd, 1, 1), k = seeded(n_kv * nkv * hd, 2, 2);
    cu::DeviceBuffer dq = upload(q), dk = upload(k), dv = upload(k), dout(nh * hd * 4);
    int32_t pos = static_cast<int32_t>(n_kv - 1);
    cu::DeviceBuffer dp = upload(&pos, 4);
    const double ms = time_ms([&] {
      cu::attention(dq.as<float>(), 1, nh, dk.as<float>(), dv.as<float>(), n_kv, nkv, hd, dp.as<int32_t>(), dout.as<float>());
    });
    g_bench.push_back({"attention decode 32h/8kv hd128 4096 keys", ms * 1000, "us", ""});
  }
}

// ---------------------------------------------------------------------------------------------
int main(int argc, char** argv) {
  std::string vectors = "test/fixtures/blake3-test-vectors.json", json_path;
  bool do_bench = true, quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--vectors" && i + 1 < argc) vectors = argv[++i];
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--no-bench") do_bench = false;
    else if (a == "--quick") quick = true;
    else {
      std::fprintf(stderr, "usage: gpu_check [--vectors PATH] [--json PATH] [--no-bench] [--quick]\n");
      return 2;
    }
  }
  if (!cu::available()) {
    std::printf("gpu_check: no CUDA device\n");
    return 2;
  }
  std::string device;
  int cc = 0;
  try {
    device = cu::device_name();
    cc = cu::compute_capability();
  } catch (const atoma::Error& e) {
    std::printf("gpu_check: %s: %s\n", e.code.c_str(), e.what());
    return 2;
  }
  std::printf("device: %s (sm_%d)\nreference: %s\n", device.c_str(), cc, ref::kName);
  std::fflush(stdout);

  const auto t0 = std::chrono::steady_clock::now();
  auto stage = [&](const char* what, const std::function<void()>& fn) {
    const auto s = std::chrono::steady_clock::now();
    fn();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count();
    std::printf("[%7.1fs] %-22s done in %.1fs (mismatches so far: %d)\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), what, sec,
                g_total_mismatch);
    std::fflush(stdout);
  };
  stage("blake3 vectors", [&] { check_blake3_vectors(vectors); });
  stage("digests", check_digests);
  stage("rows", check_rows);
  stage("unary", check_unary);
  stage("rope", check_rope);
  stage("embedding", check_embedding);
  stage("attention", check_attention);
  stage("gemv", check_gemv);
  stage("gemm", [&] { check_gemm(quick); });
  stage("trace leaves", check_leaves);
  stage("sampling", [&] { check_sampling(quick); });
  if (do_bench) {
    try {
      stage("benchmarks", [&] { bench(quick); });
    } catch (const std::exception& e) {
      std::printf("benchmark error: %s\n", e.what());
    }
  }

  // JSON, then the summary table last.
  std::ostringstream js;
  js << "{\n  \"device\": \"" << device << "\",\n  \"sm\": " << cc << ",\n  \"reference\": \"" << ref::kName
     << "\",\n  \"mismatches\": " << g_total_mismatch << ",\n  \"families\": {";
  bool first = true;
  for (const std::string& f : g_family_order) {
    js << (first ? "\n" : ",\n") << "    \"" << f << "\": {\"cases\": " << g_families[f].cases
       << ", \"mismatches\": " << g_families[f].mismatches << "}";
    first = false;
  }
  js << "\n  },\n  \"bench\": [";
  first = true;
  for (const BenchRow& b : g_bench_rows) {
    char v[64];
    std::snprintf(v, sizeof v, "%.6g", b.value);
    js << (first ? "\n" : ",\n") << "    {\"name\": \"" << b.name << "\", \"value\": " << v << ", \"unit\": \""
       << b.unit << "\"}";
    first = false;
  }
  js << "\n  ]\n}\n";
  std::printf("\n%s", js.str().c_str());
  if (!json_path.empty()) std::ofstream(json_path) << js.str();

  std::printf("\n==================== gpu_check summary (%s, sm_%d) ====================\n", device.c_str(), cc);
  std::printf("%-26s %8s %11s\n", "conformance", "cases", "mismatches");
  for (const std::string& f : g_family_order)
    std::printf("%-26s %8d %11d\n", f.c_str(), g_families[f].cases, g_families[f].mismatches);
  if (!g_bench_rows.empty()) {
    std::printf("\n%-44s %12s  %-8s %s\n", "benchmark", "value", "unit", "note");
    for (const BenchRow& b : g_bench_rows)
      std::printf("%-44s %12.4g  %-8s %s\n", b.name.c_str(), b.value, b.unit.c_str(), b.note.c_str());
  }
  std::printf("\nRESULT: %s (%d mismatches; reference: %s)\n", g_total_mismatch ? "FAIL" : "PASS",
              g_total_mismatch, ref::kName);
  return g_total_mismatch ? 1 : 0;
}
