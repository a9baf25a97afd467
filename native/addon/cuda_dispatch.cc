#include "cuda_dispatch.h"

#include <limits>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../cpu/rows.h"
#include "../cuda/api.h"

namespace atoma::addon::gpu {
namespace {

using cuda::DeviceBuffer;

// One call's device state: a stream, and buffers freed only after the stream has drained.
class Call {
 public:
  template <typename T>
  T* in(const T* host, int64_t count) {
    DeviceBuffer& b = keep(count * static_cast<int64_t>(sizeof(T)));
    cuda::copy_to_device(b.data(), host, b.size(), stream_.get());
    return b.as<T>();
  }
  template <typename T>
  const T* in_optional(const T* host, int64_t count) { return host ? in(host, count) : nullptr; }
  template <typename T>
  T* out(int64_t count) { return keep(count * static_cast<int64_t>(sizeof(T))).template as<T>(); }

  // Copies the result back and waits for everything queued on the stream.
  template <typename T>
  void finish(T* host, const T* device, int64_t count) {
    cuda::copy_to_host(host, device, static_cast<size_t>(count) * sizeof(T), stream_.get());
    cuda::synchronize(stream_.get());
  }
  cuda::Stream stream() const { return stream_.get(); }

  ~Call() {
    // Buffers may still be read by queued work when an error unwinds this call.
    try { cuda::synchronize(stream_.get()); } catch (...) {}
  }

 private:
  DeviceBuffer& keep(int64_t bytes) {
    if (bufs_.capacity() == 0) bufs_.reserve(6);
    bufs_.emplace_back(static_cast<size_t>(bytes));
    return bufs_.back();
  }
  cuda::StreamHandle stream_;
  std::vector<DeviceBuffer> bufs_;   // declared after stream_: freed before it is destroyed
};

std::string num(int64_t v) { return std::to_string(v); }

}  // namespace

void gemm(int64_t M, int64_t N, int64_t K, const float* A, const float* B, bool b_is_nk, float* C,
          const float* bias) {
  Call c;
  const float* a = c.in(A, M * K);
  const float* b = c.in(B, K * N);
  const float* bs = c.in_optional(bias, N);
  float* y = c.out<float>(M * N);
  cuda::gemm(M, N, K, a, K, b, b_is_nk ? K : N, b_is_nk, y, N, bs, c.stream());
  c.finish(C, y, M * N);
}

void gemm_weights(int64_t M, int64_t N, int64_t K, const float* A, const void* W,
                  WeightFormat format, float* C, const float* bias) {
  // The canonical widening is exact, so the f32 weights give the bytes of the fused CPU path.
  std::vector<float> w(static_cast<size_t>(N * K));
  if (N * K > 0) dequantize_weights(format, W, N, K, w.data());
  gemm(M, N, K, A, w.data(), true, C, bias);
}

void add(const float* a, const float* b, float* y, int64_t n) {
  Call c;
  const float *da = c.in(a, n), *db = c.in(b, n);
  float* dy = c.out<float>(n);
  cuda::add(da, db, dy, n, c.stream());
  c.finish(y, dy, n);
}

void mul(const float* a, const float* b, float* y, int64_t n) {
  Call c;
  const float *da = c.in(a, n), *db = c.in(b, n);
  float* dy = c.out<float>(n);
  cuda::mul(da, db, dy, n, c.stream());
  c.finish(y, dy, n);
}

void add_rows(const float* a, int64_t rows, int64_t n, const float* row, float* y) {
  Call c;
  const float *da = c.in(a, rows * n), *dr = c.in(row, n);
  float* dy = c.out<float>(rows * n);
  cuda::add_rows(da, rows, n, dr, dy, c.stream());
  c.finish(y, dy, rows * n);
}

void mul_rows(const float* a, int64_t rows, int64_t n, const float* row, float* y) {
  Call c;
  const float *da = c.in(a, rows * n), *dr = c.in(row, n);
  float* dy = c.out<float>(rows * n);
  cuda::mul_rows(da, rows, n, dr, dy, c.stream());
  c.finish(y, dy, rows * n);
}

void row_sums(const float* x, int64_t rows, int64_t n, float* out) {
  Call c;
  const float* dx = c.in(x, rows * n);
  float* dy = c.out<float>(rows);
  cuda::row_sums(dx, rows, n, dy, c.stream());
  c.finish(out, dy, rows);
}

void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
  Call c;
  const float *dx = c.in(x, rows * n), *dw = c.in(w, n);
  float* dy = c.out<float>(rows * n);
  cuda::rmsnorm(dx, dw, dy, rows, n, eps, c.stream());
  c.finish(y, dy, rows * n);
}

void softmax(const float* x, float* y, int64_t rows, int64_t n) {
  Call c;
  const float* dx = c.in(x, rows * n);
  float* dy = c.out<float>(rows * n);
  cuda::softmax(dx, dy, rows, n, c.stream());
  c.finish(y, dy, rows * n);
}

void unary(Unary op, const float* x, float* y, int64_t n) {
  Call c;
  const float* dx = c.in(x, n);
  float* dy = c.out<float>(n);
  cuda::unary(static_cast<cuda::Unary>(op), dx, dy, n, c.stream());
  c.finish(y, dy, n);
}

void rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dims,
          const int32_t* positions, float theta, bool neox, const float* freq_divisors) {
  // The CPU's checks, in its order and words (native/cpu/rows.cc).
  if (rot_dims > head_dim || rot_dims % 2 != 0)
    throw Error("ERR_SHAPE", "rope: rot_dims must be even and <= head_dim (" + num(head_dim) + "), got " +
                                 num(rot_dims));
  for (int64_t t = 0; t < tokens; ++t)
    if (positions[t] < 0 || positions[t] > (1 << 24))
      throw Error("ERR_RANGE", "rope: position " + num(positions[t]) + " of token " + num(t) +
                                   " is outside 0..16777216");
  check_rope_divisors(freq_divisors, rot_dims / 2);
  const int64_t total = tokens * heads * head_dim;
  Call c;
  float* dx = c.in(x, total);
  const int32_t* dp = c.in(positions, tokens);
  const float* dd = freq_divisors && rot_dims > 0 ? c.in(freq_divisors, rot_dims / 2) : nullptr;
  cuda::rope(dx, tokens, heads, head_dim, rot_dims, dp, theta, neox, dd, c.stream());
  c.finish(x, dx, total);
}

void attention(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v,
               int64_t n_kv, int64_t n_kv_heads, int64_t head_dim, const int32_t* q_pos, float* out) {
  // The CPU's checks (native/cpu/attention.cc): the device kernel would clamp a bad position.
  if (n_kv_heads == 0 || n_heads % n_kv_heads != 0)
    throw Error("ERR_SHAPE", "attention: n_heads (" + num(n_heads) + ") must be a multiple of n_kv_heads (" +
                                 num(n_kv_heads) + ")");
  for (int64_t i = 0; i < n_q; ++i)
    if (q_pos[i] < 0 || q_pos[i] >= n_kv)
      throw Error("ERR_RANGE", "attention: query " + num(i) + " has position " + num(q_pos[i]) +
                                   ", outside the " + num(n_kv) + " keys [0, " + num(n_kv) + ")");
  const int64_t q_len = n_q * n_heads * head_dim, kv_len = n_kv * n_kv_heads * head_dim;
  Call c;
  const float *dq = c.in(q, q_len), *dk = c.in(k, kv_len), *dv = c.in(v, kv_len);
  const int32_t* dp = c.in(q_pos, n_q);
  float* dy = c.out<float>(q_len);
  cuda::attention(dq, n_q, n_heads, dk, dv, n_kv, n_kv_heads, head_dim, dp, dy, c.stream());
  c.finish(out, dy, q_len);
}

void embedding(const float* table, int64_t vocab, int64_t dim, const int32_t* ids, int64_t n,
               float* out) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw Error("ERR_RANGE", "embedding: token id " + num(ids[i]) + " at position " + num(i) +
                                   " is outside the vocabulary [0, " + num(vocab) + ")");
  if (n == 0 || dim == 0) return;
  Call c;
  const float* dt = c.in(table, vocab * dim);
  const int32_t* di = c.in(ids, n);
  float* dy = c.out<float>(n * dim);
  cuda::embedding(dt, vocab, dim, di, n, dy, c.stream());
  c.finish(out, dy, n * dim);
}

void argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out) {
  if (n > std::numeric_limits<int32_t>::max())
    throw Error("ERR_SHAPE", "argmax_rows: row length " + num(n) + " does not fit an int32 index");
  Call c;
  const float* dx = c.in(x, rows * n);
  int32_t* dy = c.out<int32_t>(rows);
  cuda::argmax_rows(dx, rows, n, dy, c.stream());
  c.finish(out, dy, rows);
}

int64_t sample(const float* logits, int64_t n, double temperature, int64_t top_k, double top_p,
               uint64_t seed, uint64_t step) {
  if (n > std::numeric_limits<int32_t>::max())
    throw Error("ERR_SHAPE", "sample: row length " + num(n) + " does not fit an int32 token id");
  if (n == 0) return -1;
  Call c;
  const float* dx = c.in(logits, n);
  return cuda::sample(dx, n, temperature, top_k, top_p, seed, step, c.stream());
}

}  // namespace atoma::addon::gpu
