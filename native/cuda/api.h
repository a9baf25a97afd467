// The CUDA backend: the canonical kernels of native/cpu on an NVIDIA GPU, bit-identical to the
// CPU (DETERMINISM.md sections 2-5). This header is plain C++ (no CUDA headers) so that code
// compiled by g++ can include it; every pointer argument of a kernel is a device pointer unless
// its name says host. Kernels are asynchronous on the given stream (nullptr: the legacy default
// stream); argument errors throw before anything is queued. Failures throw atoma::Error with
// code "ERR_CUDA" (or "ERR_NO_CUDA" when no device exists), bad shapes "ERR_SHAPE".
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

struct CUstream_st;  // the CUDA runtime's opaque stream type: Stream == cudaStream_t

namespace atoma::cuda {

using Stream = CUstream_st*;

// ---- Devices --------------------------------------------------------------------------------
bool available();                      // at least one usable device (never throws)
int device_count();                    // 0 when none
std::string device_name(int device = -1);   // -1: the current device
int compute_capability(int device = -1);    // e.g. 90 for sm_90
void set_device(int device);
void synchronize(Stream stream = nullptr);  // waits for the stream, raises its errors

// A stream owned by the caller (RAII).
class StreamHandle {
 public:
  StreamHandle();
  ~StreamHandle();
  StreamHandle(const StreamHandle&) = delete;
  StreamHandle& operator=(const StreamHandle&) = delete;
  Stream get() const { return s_; }
 private:
  Stream s_ = nullptr;
};

// ---- Memory ---------------------------------------------------------------------------------
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  // Stream-ordered (the device's memory pool): allocated and later freed in `ordered_on`'s queue
  // order, so neither waits for the device; every user must queue its work on that stream.
  DeviceBuffer(size_t bytes, Stream ordered_on);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return p_; }
  size_t size() const { return n_; }
  template <typename T> T* as() const { return static_cast<T*>(p_); }
  void reset();

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
  Stream ordered_on_ = nullptr;
  bool pooled_ = false;
};

void copy_to_device(void* dst, const void* host_src, size_t bytes, Stream stream = nullptr);
void copy_to_host(void* host_dst, const void* src, size_t bytes, Stream stream = nullptr);
void copy_device(void* dst, const void* src, size_t bytes, Stream stream = nullptr);
void memset_zero(void* dst, size_t bytes, Stream stream = nullptr);

// ---- Kernels (same contracts as native/cpu/gemm.h, rows.h, attention.h) ---------------------

// C[i*ldc + j] = sum_k A[i*lda + k] * B(k, j)  (+ bias[j]); B(k, j) = B[k*ldb + j] when
// !b_is_nk, B[j*ldb + k] when b_is_nk. Section 3 order. M == 1 with b_is_nk runs the GEMV path.
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, bool b_is_nk, float* C, int64_t ldc, const float* bias,
          Stream stream = nullptr);

// y[j] = sum_k x[k] * W[j*ldw + k] (+ bias[j]): the decode product, W stored [N, K].
void gemv(int64_t N, int64_t K, const float* x, const float* W, int64_t ldw, float* y,
          const float* bias, Stream stream = nullptr);

// Tiled-GEMM variants (identical bytes, different speed) for benchmarks: 0 = chunk sums kept
// in shared memory, two blocks per SM (default); 1 = in registers; 2 = in shared memory, one
// block per SM. ATOMA_CUDA_GEMM=smem|regs|smem1 picks the default.
void set_gemm_variant(int variant);
int gemm_variant();

void row_sums(const float* x, int64_t rows, int64_t n, float* out, Stream stream = nullptr);
void row_sumsqs(const float* x, int64_t rows, int64_t n, float* out, Stream stream = nullptr);
void row_maxes(const float* x, int64_t rows, int64_t n, float* out, Stream stream = nullptr);
void argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out, Stream stream = nullptr);

void add(const float* a, const float* b, float* y, int64_t n, Stream stream = nullptr);
void mul(const float* a, const float* b, float* y, int64_t n, Stream stream = nullptr);
void add_rows(const float* a, int64_t rows, int64_t n, const float* row, float* y,
              Stream stream = nullptr);
void mul_rows(const float* a, int64_t rows, int64_t n, const float* row, float* y,
              Stream stream = nullptr);

void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps,
             Stream stream = nullptr);
void softmax(const float* x, float* y, int64_t rows, int64_t n, Stream stream = nullptr);

enum class Unary { Exp, Log, Tanh, Sin, Cos, Silu, Gelu };   // same order as atoma::Unary
void unary(Unary op, const float* x, float* y, int64_t n, Stream stream = nullptr);

// In place on x [tokens, heads, head_dim]; positions[tokens] and freq_divisors[rot_dims/2] (RoPE
// scaling, nullptr for none; the caller checks each is finite and >= 1) on the device.
void rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dims,
          const int32_t* positions, float theta, bool neox, const float* freq_divisors = nullptr,
          Stream stream = nullptr);

void embedding(const float* table, int64_t vocab, int64_t dim, const int32_t* ids, int64_t n,
               float* out, Stream stream = nullptr);

// q [n_q, n_heads, head_dim]; k, v [n_kv, n_kv_heads, head_dim]; q_pos[n_q] on the device, each
// in [0, n_kv) (not checked on the device: an out-of-range position is clamped to n_kv - 1).
void attention(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v,
               int64_t n_kv, int64_t n_kv_heads, int64_t head_dim, const int32_t* q_pos,
               float* out, Stream stream = nullptr);

// ---- Digests (section 2) --------------------------------------------------------------------
using Digest = std::array<uint8_t, 32>;

// BLAKE3 of the f32 tensor encoding ("ATM1", 1, rank, 0, 0, dims u64 LE, data with NaN ->
// 0x7FC00000) computed on the device; waits for the stream. Rank <= 32.
Digest tensor_digest_f32(const float* data, const std::vector<uint64_t>& dims,
                         Stream stream = nullptr);

// BLAKE3 (hash mode, 32 bytes) of len bytes of device memory; waits for the stream.
Digest blake3(const void* data, size_t len, Stream stream = nullptr);

// The Merkle leaf hash of that same encoding, BLAKE3(0x00 || encoding) (a trace leaf), on the
// device; waits for the stream. Rank <= 32.
Digest merkle_leaf_f32(const float* data, const std::vector<uint64_t>& dims, Stream stream = nullptr);

// The same leaf hash, queued: its 32 bytes are written to device memory at device_out (4-byte
// aligned) once the stream reaches it, and nothing waits. A generation step queues every layer's
// leaf and copies them back with its token, in one transfer.
void merkle_leaf_f32_into(const float* data, const std::vector<uint64_t>& dims, void* device_out,
                          Stream stream = nullptr);

// ---- Sampling (docs/canonical-arithmetic.md "Sampling") -------------------------------------
// The canonical token of one row of n logits in device memory, as lib/model/sampler.ts sample()
// and canon::sample_host give it; -1 when every logit is NaN (or n == 0). The parameters are the
// request's numbers, already validated (temperature finite >= 0, top_k >= 0, 0 < top_p <= 1).
// Waits for the stream; only the token is copied back.
int64_t sample(const float* logits, int64_t n, double temperature, int64_t top_k, double top_p,
               uint64_t seed, uint64_t step, Stream stream = nullptr);

}  // namespace atoma::cuda
