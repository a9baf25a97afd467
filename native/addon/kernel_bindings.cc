// Bindings of the canonical kernels. Shapes arrive as plain numbers, buffers as typed arrays
// (zero-copy); every length is checked here against the shape before any pointer is used.
// When the active device is cuda (device.h) each kernel runs its CUDA form (cuda_dispatch.h),
// after the same checks, with the same bytes.
#include <napi.h>

#include <vector>

#include "../cpu/attention.h"
#include "../cpu/gemm.h"
#include "../cpu/rows.h"
#include "args.h"
#include "async_work.h"
#include "bindings.h"
#include "device.h"
#if defined(ATOMA_WITH_CUDA)
#include "cuda_dispatch.h"
#endif

namespace atoma::addon {
namespace {

template <typename A, typename B>
void require_disjoint(Napi::Env env, const View<A>& out, const View<B>& in, const char* what) {
  if (bytes_overlap(out.data, out.length * sizeof(A), in.data, in.length * sizeof(B)))
    throw_error(env, "ERR_ALIAS", std::string("the output must not share memory with ") + what);
}

// Runs now, or on the worker pool returning a Promise when `async` is true.
Napi::Value dispatch(Napi::Env env, bool async, std::vector<Napi::Value> keep, std::function<void()> work) {
  if (async) return run_async(env, std::move(keep), std::move(work));
  work();
  return env.Undefined();
}

// gemm(A, B, C, M, N, K, bIsNK, bias | null, async)
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t M = arg_size(info, 3, "M"), N = arg_size(info, 4, "N"), K = arg_size(info, 5, "K");
    bool nk = arg_bool(info, 6, "bIsNK");
    auto A = arg_array<float>(info, 0, napi_float32_array, checked_mul(env, M, K, "A"), "A");
    auto B = arg_array<float>(info, 1, napi_float32_array, checked_mul(env, K, N, "B"), "B");
    auto C = arg_array<float>(info, 2, napi_float32_array, checked_mul(env, M, N, "C"), "C");
    auto bias = arg_optional_array<float>(info, 7, napi_float32_array, N, "bias");
    bool async = arg_bool(info, 8, "async");
    require_disjoint(env, C, A, "A");
    require_disjoint(env, C, B, "B");
    float* c = C.data;
    const float *a = A.data, *b = B.data, *bs = bias.data;
    std::function<void()> work = [=] { gemm(M, N, K, a, K, b, nk ? K : N, nk, c, N, bs); };
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      work = [=] { gpu::gemm(M, N, K, a, b, nk, c, bs); };
#endif
    }
    return dispatch(env, async, {A.holder, B.holder, C.holder, bias.holder}, std::move(work));
  });
}

// binary(op, a, b, y): op 0 add, 1 mul. rowsBinary(op, a, rows, n, row, y): broadcast a row.
Napi::Value Binary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t op = arg_size(info, 0, "op");
    auto a = arg_array<float>(info, 1, napi_float32_array, 0, "a");
    auto b = arg_array<float>(info, 2, napi_float32_array, a.length, "b");
    auto y = arg_array<float>(info, 3, napi_float32_array, a.length, "y");
    if (b.length != a.length) throw_error(env, "ERR_SHAPE", "a and b must have the same number of elements");
    if (on_cuda()) {
      if (op > 1) throw_error(env, "ERR_RANGE", "unknown binary op");
#if defined(ATOMA_WITH_CUDA)
      if (op == 0) gpu::add(a.data, b.data, y.data, a.length);
      else gpu::mul(a.data, b.data, y.data, a.length);
#endif
      return env.Undefined();
    }
    if (op == 0) add(a.data, b.data, y.data, a.length);
    else if (op == 1) mul(a.data, b.data, y.data, a.length);
    else throw_error(env, "ERR_RANGE", "unknown binary op");
    return env.Undefined();
  });
}

Napi::Value RowsBinary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t op = arg_size(info, 0, "op");
    int64_t rows = arg_size(info, 2, "rows"), n = arg_size(info, 3, "n");
    int64_t total = checked_mul(env, rows, n, "a");
    auto a = arg_array<float>(info, 1, napi_float32_array, total, "a");
    auto row = arg_array<float>(info, 4, napi_float32_array, n, "row");
    auto y = arg_array<float>(info, 5, napi_float32_array, total, "y");
    if (on_cuda()) {
      if (op > 1) throw_error(env, "ERR_RANGE", "unknown binary op");
#if defined(ATOMA_WITH_CUDA)
      if (op == 0) gpu::add_rows(a.data, rows, n, row.data, y.data);
      else gpu::mul_rows(a.data, rows, n, row.data, y.data);
#endif
      return env.Undefined();
    }
    if (op == 0) add_rows(a.data, rows, n, row.data, y.data);
    else if (op == 1) mul_rows(a.data, rows, n, row.data, y.data);
    else throw_error(env, "ERR_RANGE", "unknown binary op");
    return env.Undefined();
  });
}

// rowSums(x, rows, n, out)
Napi::Value RowSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t rows = arg_size(info, 1, "rows"), n = arg_size(info, 2, "n");
    auto x = arg_array<float>(info, 0, napi_float32_array, checked_mul(env, rows, n, "x"), "x");
    auto out = arg_array<float>(info, 3, napi_float32_array, rows, "out");
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      gpu::row_sums(x.data, rows, n, out.data);
#endif
      return env.Undefined();
    }
    row_sums(x.data, rows, n, out.data);
    return env.Undefined();
  });
}

// rmsnorm(x, w, y, rows, n, eps)
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t rows = arg_size(info, 3, "rows"), n = arg_size(info, 4, "n");
    int64_t total = checked_mul(env, rows, n, "x");
    auto x = arg_array<float>(info, 0, napi_float32_array, total, "x");
    auto w = arg_array<float>(info, 1, napi_float32_array, n, "weight");
    auto y = arg_array<float>(info, 2, napi_float32_array, total, "y");
    float eps = static_cast<float>(arg_number(info, 5, "eps"));
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      gpu::rmsnorm(x.data, w.data, y.data, rows, n, eps);
#endif
      return env.Undefined();
    }
    rmsnorm(x.data, w.data, y.data, rows, n, eps);
    return env.Undefined();
  });
}

// softmax(x, y, rows, n)
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t rows = arg_size(info, 2, "rows"), n = arg_size(info, 3, "n");
    int64_t total = checked_mul(env, rows, n, "x");
    auto x = arg_array<float>(info, 0, napi_float32_array, total, "x");
    auto y = arg_array<float>(info, 1, napi_float32_array, total, "y");
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      gpu::softmax(x.data, y.data, rows, n);
#endif
      return env.Undefined();
    }
    softmax(x.data, y.data, rows, n);
    return env.Undefined();
  });
}

// unary(op, x, y): op indexes atoma::Unary (exp, log, tanh, sin, cos, silu, gelu)
Napi::Value UnaryOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t op = arg_size(info, 0, "op");
    if (op > static_cast<int64_t>(Unary::Gelu)) throw_error(env, "ERR_RANGE", "unknown unary op");
    auto x = arg_array<float>(info, 1, napi_float32_array, 0, "x");
    auto y = arg_array<float>(info, 2, napi_float32_array, x.length, "y");
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      gpu::unary(static_cast<Unary>(op), x.data, y.data, x.length);
#endif
      return env.Undefined();
    }
    unary(static_cast<Unary>(op), x.data, y.data, x.length);
    return env.Undefined();
  });
}

// rope(x, tokens, heads, headDim, rotDims, positions, theta, neox, freqDivisors | null): in place
Napi::Value Rope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t tokens = arg_size(info, 1, "tokens"), heads = arg_size(info, 2, "heads");
    int64_t dim = arg_size(info, 3, "headDim"), rot = arg_size(info, 4, "rotDims");
    auto x = arg_array<float>(info, 0, napi_float32_array,
                              checked_mul(env, checked_mul(env, tokens, heads, "x"), dim, "x"), "x");
    auto pos = arg_array<int32_t>(info, 5, napi_int32_array, tokens, "positions");
    float theta = static_cast<float>(arg_number(info, 6, "theta"));
    bool neox = arg_bool(info, 7, "neox");
    auto div = arg_optional_array<float>(info, 8, napi_float32_array, rot / 2, "freqDivisors");
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      gpu::rope(x.data, tokens, heads, dim, rot, pos.data, theta, neox, div.data);
#endif
      return env.Undefined();
    }
    rope(x.data, tokens, heads, dim, rot, pos.data, theta, neox, div.data);
    return env.Undefined();
  });
}

// ropeInvFreqs(rotDims, theta, freqDivisors | null, out): the rotDims/2 inverse frequencies rope
// uses (a model derives Llama 3 divisors from them). Host arithmetic only: a few hundred values.
Napi::Value RopeInvFreqs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t rot = arg_size(info, 0, "rotDims");
    float theta = static_cast<float>(arg_number(info, 1, "theta"));
    auto div = arg_optional_array<float>(info, 2, napi_float32_array, rot / 2, "freqDivisors");
    auto out = arg_array<float>(info, 3, napi_float32_array, rot / 2, "out");
    rope_inv_freqs(rot, theta, div.data, out.data);
    return env.Undefined();
  });
}

// attention(q, nQ, nHeads, k, v, nKv, nKvHeads, headDim, qPos, out, async)
Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t nq = arg_size(info, 1, "nQ"), nh = arg_size(info, 2, "nHeads");
    int64_t nkv = arg_size(info, 5, "nKv"), nkvh = arg_size(info, 6, "nKvHeads"), hd = arg_size(info, 7, "headDim");
    int64_t q_len = checked_mul(env, checked_mul(env, nq, nh, "q"), hd, "q");
    int64_t kv_len = checked_mul(env, checked_mul(env, nkv, nkvh, "k"), hd, "k");
    auto q = arg_array<float>(info, 0, napi_float32_array, q_len, "q");
    auto k = arg_array<float>(info, 3, napi_float32_array, kv_len, "k");
    auto v = arg_array<float>(info, 4, napi_float32_array, kv_len, "v");
    auto pos = arg_array<int32_t>(info, 8, napi_int32_array, nq, "positions");
    auto out = arg_array<float>(info, 9, napi_float32_array, q_len, "out");
    bool async = arg_bool(info, 10, "async");
    require_disjoint(env, out, q, "q");
    require_disjoint(env, out, k, "k");
    require_disjoint(env, out, v, "v");
    const float *qp = q.data, *kp = k.data, *vp = v.data;
    const int32_t* pp = pos.data;
    float* op = out.data;
    std::function<void()> work = [=] { attention(qp, nq, nh, kp, vp, nkv, nkvh, hd, pp, op); };
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      work = [=] { gpu::attention(qp, nq, nh, kp, vp, nkv, nkvh, hd, pp, op); };
#endif
    }
    return dispatch(env, async, {q.holder, k.holder, v.holder, pos.holder, out.holder}, std::move(work));
  });
}

// embedding(table, vocab, dim, ids, out)
Napi::Value Embedding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t vocab = arg_size(info, 1, "vocab"), dim = arg_size(info, 2, "dim");
    auto table = arg_array<float>(info, 0, napi_float32_array, checked_mul(env, vocab, dim, "table"), "table");
    auto ids = arg_array<int32_t>(info, 3, napi_int32_array, 0, "ids");
    auto out = arg_array<float>(info, 4, napi_float32_array, checked_mul(env, ids.length, dim, "out"), "out");
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      gpu::embedding(table.data, vocab, dim, ids.data, ids.length, out.data);
#endif
      return env.Undefined();
    }
    embedding(table.data, vocab, dim, ids.data, ids.length, out.data);
    return env.Undefined();
  });
}

// argmax(x, rows, n, out: Int32Array)
Napi::Value Argmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t rows = arg_size(info, 1, "rows"), n = arg_size(info, 2, "n");
    auto x = arg_array<float>(info, 0, napi_float32_array, checked_mul(env, rows, n, "x"), "x");
    auto out = arg_array<int32_t>(info, 3, napi_int32_array, rows, "out");
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      gpu::argmax_rows(x.data, rows, n, out.data);
#endif
      return env.Undefined();
    }
    argmax_rows(x.data, rows, n, out.data);
    return env.Undefined();
  });
}

}  // namespace

void register_kernels(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("rowsBinary", Napi::Function::New(env, RowsBinary));
  exports.Set("rowSums", Napi::Function::New(env, RowSums));
  exports.Set("rmsnorm", Napi::Function::New(env, RmsNorm));
  exports.Set("softmax", Napi::Function::New(env, Softmax));
  exports.Set("unary", Napi::Function::New(env, UnaryOp));
  exports.Set("rope", Napi::Function::New(env, Rope));
  exports.Set("ropeInvFreqs", Napi::Function::New(env, RopeInvFreqs));
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("embedding", Napi::Function::New(env, Embedding));
  exports.Set("argmax", Napi::Function::New(env, Argmax));
}

}  // namespace atoma::addon
