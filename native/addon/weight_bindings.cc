// Bindings of products against stored model weights (f32 / f16 / bf16 / q8_0 bytes, usually a
// view into a memory-mapped model file). Byte lengths are checked against the shape here, with
// their own error code, before any pointer reaches the kernel.
#include <napi.h>

#include <string>

#include "../cpu/gemm_weights.h"
#include "args.h"
#include "async_work.h"
#include "bindings.h"
#include "device.h"
#if defined(ATOMA_WITH_CUDA)
#include "cuda_dispatch.h"
#endif

namespace atoma::addon {
namespace {

bool overlaps(const void* a, int64_t a_bytes, const void* b, int64_t b_bytes) {
  auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return a_bytes > 0 && b_bytes > 0 && pa < pb + b_bytes && pb < pa + a_bytes;
}

// gemmWeights(A, W, format, C, M, N, K, bias | null, async): C[M, N] = A[M, K] x W^T (+ bias),
// W the stored bytes of an [N, K] weight in `format` ("f32" | "f16" | "bf16" | "q8_0").
Napi::Value GemmWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t M = arg_size(info, 4, "M"), N = arg_size(info, 5, "N"), K = arg_size(info, 6, "K");
    const std::string fmt_name = arg_string(info, 2, "format");
    WeightFormat fmt;
    int64_t row_bytes;
    try {
      fmt = parse_weight_format(fmt_name.c_str());
      row_bytes = weight_row_bytes(fmt, K);
    } catch (const Error& e) {
      throw_error(env, e.code.c_str(), e.what());
    }
    auto A = arg_array<float>(info, 0, napi_float32_array, checked_mul(env, M, K, "A"), "A");
    auto W = arg_bytes(info, 1, "W");
    const int64_t need = checked_mul(env, N, row_bytes, "W");
    if (W.length != need)
      throw_error(env, "ERR_WEIGHT_BYTES",
                  "W: " + std::to_string(N) + " rows of " + std::to_string(K) + " " + fmt_name +
                      " weights are " + std::to_string(need) + " bytes, got " + std::to_string(W.length));
    auto C = arg_array<float>(info, 3, napi_float32_array, checked_mul(env, M, N, "C"), "C");
    auto bias = arg_optional_array<float>(info, 7, napi_float32_array, N, "bias");
    bool async = arg_bool(info, 8, "async");
    const int64_t c_bytes = C.length * 4;
    if (overlaps(C.data, c_bytes, A.data, A.length * 4) || overlaps(C.data, c_bytes, W.data, W.length))
      throw_error(env, "ERR_ALIAS", "the output must not share memory with A or W");
    float* c = C.data;
    const float *a = A.data, *bs = bias.data;
    const uint8_t* w = W.data;
    const int64_t wl = W.length;
    std::function<void()> work = [=] { gemm_weights(M, N, K, a, K, w, wl, fmt, c, N, bs); };
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      work = [=] { gpu::gemm_weights(M, N, K, a, w, fmt, c, bs); };
#endif
    }
    if (async) return run_async(env, {A.holder, W.holder, C.holder, bias.holder}, work);
    work();
    return env.Undefined();
  });
}

}  // namespace

void register_weights(Napi::Env env, Napi::Object exports) {
  exports.Set("gemmWeights", Napi::Function::New(env, GemmWeights));
}

}  // namespace atoma::addon
