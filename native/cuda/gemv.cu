// Decode product y = W x (+ bias), W stored [N, K] (section 3 order). The product is one
// 256-long fma chain per (output, chunk), so the parallelism is across outputs and chunks; W
// rows stream through shared memory (coalesced cp.async) and lane r runs the chain of output r.
// Variants (identical bytes, different speed; gemv_kernel.cuh has the details):
//   split   one warp per (32 outputs, chunk), two stages, partials in scratch memory, then a
//           combine kernel. Many warps even for small N.
//   fused   a block of 4 warps per 32 outputs over all of K, four stages, chunk sums added in
//           the block: one kernel, no scratch. Two blocks per SM on sm_80/sm_90.
//   fused8  the same with 8 warps and two stages (more warps, fewer bytes in flight per warp).
//   auto    (default) fused8 when there are at least as many 32-output groups as SMs, else split.
// ATOMA_CUDA_GEMV=<name> picks the default; set_gemv_variant() overrides it.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "common.cuh"
#include "gemv.cuh"
#include "gemv_kernel.cuh"

namespace atoma::cuda {
namespace {

using namespace gemv_detail;

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

constexpr const char* kNames[] = {"auto", "split", "fused", "fused8"};
constexpr int kVariants = sizeof(kNames) / sizeof(kNames[0]);
std::atomic<int> g_variant{-1};

int device_and_sms(int* sms) {
  // Per-device caches: the runtime call is cheap but not free, and decode calls are short.
  static std::atomic<int> cached[64];
  int dev = 0;
  detail::check(cudaGetDevice(&dev), "cudaGetDevice");
  if (dev < 0 || dev >= 64) {
    detail::check(cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    return dev;
  }
  int v = cached[dev].load(std::memory_order_relaxed);
  if (v == 0) {
    detail::check(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    cached[dev].store(v, std::memory_order_relaxed);
  }
  *sms = v;
  return dev;
}

// The dynamic shared memory attribute is per device and kernel: set it once per device (a
// function-scope static per kernel instantiation), not on every call.
template <class Kernel>
void allow_smem(Kernel kernel, size_t bytes, int dev, std::atomic<uint64_t>& done) {
  const uint64_t bit = dev >= 0 && dev < 64 ? uint64_t{1} << dev : 0;
  if (bit && (done.load(std::memory_order_acquire) & bit)) return;
  detail::check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(bytes)),
                "cudaFuncSetAttribute(gemv)");
  if (bit) done.fetch_or(bit, std::memory_order_acq_rel);
}

template <bool VEC, int FW, int FS>
void launch_fused(int64_t N, int64_t K, const float* x, const float* W, int64_t ldw, float* y,
                  const float* bias, int dev, cudaStream_t s) {
  static std::atomic<uint64_t> done{0};
  constexpr size_t smem = fused_smem_bytes(FW, FS);
  auto kernel = gemv_nk_fused<VEC, FW, FS>;
  allow_smem(kernel, smem, dev, done);
  const int64_t blocks = (N + FROWS - 1) / FROWS;
  detail::require(blocks <= 0x7FFFFFFF, "gemv: too large");
  kernel<<<static_cast<unsigned>(blocks), FW * 32, smem, s>>>(N, K, x, W, ldw, bias, y);
  detail::check_launch("gemv kernel launch");
}

template <bool VEC>
void launch_split(int64_t N, int64_t K, const float* x, const float* W, int64_t ldw, float* y,
                  const float* bias, int dev, cudaStream_t s) {
  static std::atomic<uint64_t> done{0};
  auto kernel = gemv_nk_partials<VEC>;
  allow_smem(kernel, SMEM_BYTES, dev, done);
  const int64_t n_chunks = (K + KC - 1) / KC;
  detail::Scratch partial(static_cast<size_t>(n_chunks * N) * sizeof(float), s);
  const int64_t warps = ((N + ROWS - 1) / ROWS) * n_chunks;
  const int64_t blocks = (warps + WARPS - 1) / WARPS;
  detail::require(blocks <= 0x7FFFFFFF, "gemv: too large");
  kernel<<<static_cast<unsigned>(blocks), WARPS * 32, SMEM_BYTES, s>>>(N, K, x, W, ldw, n_chunks,
                                                                      partial.as<float>());
  detail::check_launch("gemv kernel launch");
  gemv_combine<<<detail::grid_1d(N, 256), 256, 0, s>>>(N, n_chunks, partial.as<float>(), bias, y);
  detail::check_launch("gemv combine launch");
}

void combine(int64_t N, int64_t n_chunks, const float* partial, const float* bias, float* y,
             cudaStream_t s) {
  gemv_combine<<<detail::grid_1d(N, 256), 256, 0, s>>>(N, n_chunks, partial, bias, y);
  detail::check_launch("gemv combine launch");
}

}  // namespace

namespace detail {

void gemv_kn(int64_t N, int64_t K, const float* x, const float* B, int64_t ldb, float* y,
             const float* bias, cudaStream_t s) {
  if (N == 0) return;
  const int64_t n_chunks = (K + KC - 1) / KC;
  if (n_chunks == 0) {
    combine(N, 0, nullptr, bias, y, s);
    return;
  }
  require(n_chunks <= 65535, "gemv: K too large");
  Scratch partial(static_cast<size_t>(n_chunks * N) * sizeof(float), s);
  dim3 grid(grid_1d(N, 128), static_cast<unsigned>(n_chunks));
  gemv_kn_partials<<<grid, 128, 0, s>>>(N, K, x, B, ldb, n_chunks, partial.as<float>());
  check_launch("gemv kernel launch");
  combine(N, n_chunks, partial.as<float>(), bias, y, s);
}

}  // namespace detail

void set_gemv_variant(int variant) {
  detail::require(variant >= 0 && variant < kVariants,
                  "gemv variant must be 0 (auto), 1 (split), 2 (fused) or 3 (fused8)");
  g_variant.store(variant);
}

int gemv_variant() {
  int v = g_variant.load();
  if (v < 0) {
    v = 0;
    if (const char* e = std::getenv("ATOMA_CUDA_GEMV"))
      for (int i = 0; i < kVariants; ++i)
        if (std::strcmp(e, kNames[i]) == 0) v = i;
    int expected = -1;
    g_variant.compare_exchange_strong(expected, v);
    v = g_variant.load();
  }
  return v;
}

int gemv_variant_count() { return kVariants; }

const char* gemv_variant_name(int variant) {
  return variant >= 0 && variant < kVariants ? kNames[variant] : "?";
}

void gemv(int64_t N, int64_t K, const float* x, const float* W, int64_t ldw, float* y,
          const float* bias, Stream stream) {
  detail::require(N >= 0 && K >= 0, "gemv: negative size");
  detail::require(ldw >= K || N <= 1, "gemv: ldw < K");
  if (N == 0) return;
  cudaStream_t s = stream;
  const int64_t n_chunks = (K + KC - 1) / KC;
  if (n_chunks == 0) {
    combine(N, 0, nullptr, bias, y, s);
    return;
  }
  int sms = 0;
  const int dev = device_and_sms(&sms);
  int v = gemv_variant();
  // fused8 measured fastest on an H100 at 8192x8192 (0.90x copy vs 0.89x for fused); split
  // keeps small N from leaving SMs idle.
  if (v == 0) v = (N + FROWS - 1) / FROWS >= sms ? 3 : 1;
  const bool vec = aligned16(W) && ldw % 4 == 0;
  if (v == 1) {
    if (vec) launch_split<true>(N, K, x, W, ldw, y, bias, dev, s);
    else launch_split<false>(N, K, x, W, ldw, y, bias, dev, s);
  } else if (v == 2) {
    if (vec) launch_fused<true, 4, 4>(N, K, x, W, ldw, y, bias, dev, s);
    else launch_fused<false, 4, 4>(N, K, x, W, ldw, y, bias, dev, s);
  } else {
    if (vec) launch_fused<true, 8, 2>(N, K, x, W, ldw, y, bias, dev, s);
    else launch_fused<false, 8, 2>(N, K, x, W, ldw, y, bias, dev, s);
  }
}

}  // namespace atoma::cuda
