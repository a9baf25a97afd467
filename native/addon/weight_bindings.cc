// Bindings of products against stored model weights (f32 / f16 / bf16 / q8_0 bytes, usually a
// view into a memory-mapped model file). Byte lengths are checked against the shape here, with
// their own error code, before any pointer reaches the kernel.
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "../cpu/gemm_weights.h"
#include "args.h"
#include "weight_args.h"
#include "async_work.h"
#include "bindings.h"
#include "device.h"
#if defined(ATOMA_WITH_CUDA)
#include "cuda_dispatch.h"
#endif

namespace atoma::addon {

// The kernel's own checks (unknown format, a K the format cannot hold) become typed JS errors.
WeightLayout weight_layout(Napi::Env env, const std::string& name, int64_t K) {
  try {
    const WeightFormat f = parse_weight_format(name.c_str());
    return {f, weight_row_bytes(f, K)};
  } catch (const Error& e) {
    throw_error(env, e.code.c_str(), e.what());
  }
}

void check_weight_bytes(Napi::Env env, const View<uint8_t>& W, const WeightLayout& l, const std::string& format_name,
                        int64_t N, int64_t K, const std::string& label) {
  const int64_t need = checked_mul(env, weight_stored_rows(l.format, N), l.row_bytes, "W");
  if (W.length != need)
    throw_error(env, "ERR_WEIGHT_BYTES",
                label + ": " + std::to_string(N) + " rows of " + std::to_string(K) + " " + format_name + " weights are " +
                    std::to_string(need) + " bytes, got " + std::to_string(W.length));
}

namespace {

// gemmWeights(A, W, format, C, M, N, K, bias | null, async): C[M, N] = A[M, K] x W^T (+ bias),
// W the stored bytes of an [N, K] weight in `format` ("f32" | "f16" | "bf16" | "q8_0" | "q8_0x128" | "f32x16").
Napi::Value GemmWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t M = arg_size(info, 4, "M"), N = arg_size(info, 5, "N"), K = arg_size(info, 6, "K");
    const std::string fmt_name = arg_string(info, 2, "format");
    const WeightLayout layout = weight_layout(env, fmt_name, K);
    const WeightFormat fmt = layout.format;
    auto A = arg_array<float>(info, 0, napi_float32_array, checked_mul(env, M, K, "A"), "A");
    auto W = arg_bytes(info, 1, "W");
    check_weight_bytes(env, W, layout, fmt_name, N, K, "W");
    auto C = arg_array<float>(info, 3, napi_float32_array, checked_mul(env, M, N, "C"), "C");
    auto bias = arg_optional_array<float>(info, 7, napi_float32_array, N, "bias");
    bool async = arg_bool(info, 8, "async");
    const int64_t c_bytes = C.length * 4;
    if (bytes_overlap(C.data, c_bytes, A.data, A.length * 4) || bytes_overlap(C.data, c_bytes, W.data, W.length))
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

// gemmWeightsMany(A, M, K, W0, format0, C0, N0, bias0 | null, W1, format1, ...): for each group
// of five, C[M, N] = A[M, K] x W^T (+ bias), the same bytes as gemmWeights, in one thread-pool
// dispatch (decode's Q/K/V and gate/up share their input row). Synchronous only.
Napi::Value GemmWeightsMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    constexpr size_t kFirst = 3, kPer = 5, kMax = 16;
    if (info.Length() < kFirst || (info.Length() - kFirst) % kPer != 0 || (info.Length() - kFirst) / kPer > kMax)
      throw_error(env, "ERR_ARGUMENT", "gemmWeightsMany: expected A, M, K, then 1.." + std::to_string(kMax) +
                                           " groups of (W, format, C, N, bias), got " + std::to_string(info.Length()) +
                                           " arguments");
    const int64_t M = arg_size(info, 1, "M"), K = arg_size(info, 2, "K");
    auto A = arg_array<float>(info, 0, napi_float32_array, checked_mul(env, M, K, "A"), "A");
    const size_t count = (info.Length() - kFirst) / kPer;
    WeightProduct ps[kMax];
    for (size_t i = 0; i < count; ++i) {
      const size_t at = kFirst + i * kPer;
      const std::string fmt_name = arg_string(info, at + 1, "format");
      const int64_t N = arg_size(info, at + 3, "N");
      const WeightLayout layout = weight_layout(env, fmt_name, K);
      const WeightFormat fmt = layout.format;
      auto W = arg_bytes(info, at, "W");
      check_weight_bytes(env, W, layout, fmt_name, N, K, "W" + std::to_string(i));
      auto C = arg_array<float>(info, at + 2, napi_float32_array, checked_mul(env, M, N, "C"), "C");
      auto bias = arg_optional_array<float>(info, at + 4, napi_float32_array, N, "bias");
      if (bytes_overlap(C.data, C.length * 4, A.data, A.length * 4) || bytes_overlap(C.data, C.length * 4, W.data, W.length))
        throw_error(env, "ERR_ALIAS", "the output must not share memory with A or W");
      ps[i] = WeightProduct{W.data, W.length, fmt, N, C.data, N, bias.data};
    }
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      for (size_t i = 0; i < count; ++i)
        gpu::gemm_weights(M, ps[i].N, K, A.data, ps[i].W, ps[i].format, ps[i].C, ps[i].bias);
      return env.Undefined();
#endif
    }
    gemm_weights_many(M, K, A.data, K, ps, static_cast<int64_t>(count));
    return env.Undefined();
  });
}

// gemmWeightsSwiglu(A, M, K, Wgate, formatGate, Wup, formatUp, N, gate, up, act): gate and up
// [M, N] as gemmWeights, act = silu(gate) * up (the bytes of unary silu, then binary mul).
Napi::Value GemmWeightsSwiglu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t M = arg_size(info, 1, "M"), K = arg_size(info, 2, "K"), N = arg_size(info, 7, "N");
    auto A = arg_array<float>(info, 0, napi_float32_array, checked_mul(env, M, K, "A"), "A");
    WeightProduct ps[2];
    const char* names[2] = {"gate", "up"};
    for (int i = 0; i < 2; ++i) {
      const std::string fmt_name = arg_string(info, 4 + 2 * i, "format");
      const WeightLayout layout = weight_layout(env, fmt_name, K);
      const WeightFormat fmt = layout.format;
      auto W = arg_bytes(info, 3 + 2 * i, "W");
      check_weight_bytes(env, W, layout, fmt_name, N, K, std::string(names[i]) + " W");
      auto C = arg_array<float>(info, 8 + i, napi_float32_array, checked_mul(env, M, N, "C"), names[i]);
      if (bytes_overlap(C.data, C.length * 4, A.data, A.length * 4) || bytes_overlap(C.data, C.length * 4, W.data, W.length))
        throw_error(env, "ERR_ALIAS", "the output must not share memory with A or W");
      ps[i] = WeightProduct{W.data, W.length, fmt, N, C.data, N, nullptr};
    }
    auto act = arg_array<float>(info, 10, napi_float32_array, checked_mul(env, M, N, "act"), "act");
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      // No fused CUDA kernel: the same three steps, each canonical.
      for (const WeightProduct& p : ps) gpu::gemm_weights(M, N, K, A.data, p.W, p.format, p.C, nullptr);
      swiglu(ps[0].C, ps[1].C, act.data, M * N);
      return env.Undefined();
#endif
    }
    gemm_weights_swiglu(M, K, A.data, K, ps[0], ps[1], act.data);
    return env.Undefined();
  });
}

// packQ8_0x128(W, N, K) -> Uint8Array: the q8_0 weight [N, K] repacked for decode (gemm_weights.h,
// pack_q8_0x128), in an allocation of its own (cache-line aligned) that the buffer frees.
// packQ8_0x128(W, N, K, out) -> number: packed into the first bytes of `out` (at least the packed
// size; must not overlap W); returns the packed size. packF32x16 is the same for f32 weights
// (pack_f32x16).
template <WeightFormat From, WeightFormat To>
Napi::Value PackForDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const char* what = To == WeightFormat::Q8_0x128 ? "packQ8_0x128" : "packF32x16";
    const int64_t N = arg_size(info, 1, "N"), K = arg_size(info, 2, "K");
    const char* from_name = From == WeightFormat::Q8_0 ? "q8_0" : "f32";
    const WeightLayout layout = weight_layout(env, from_name, K);
    auto W = arg_bytes(info, 0, "W");
    check_weight_bytes(env, W, layout, from_name, N, K, "W");
    const int64_t out_bytes = checked_mul(env, weight_stored_rows(To, N), layout.row_bytes, "packed W");
    auto pack = [&](void* out) {
      if (To == WeightFormat::Q8_0x128) pack_q8_0x128(W.data, W.length, N, K, out, out_bytes);
      else pack_f32x16(W.data, W.length, N, K, out, out_bytes);
    };
    if (info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsNull()) {
      // Into the caller's buffer: a sidecar writer packs matrix after matrix through one buffer
      // instead of leaving a garbage allocation the size of each matrix behind.
      auto out = arg_bytes(info, 3, "out");
      if (out.length < out_bytes)
        throw_error(env, "ERR_WEIGHT_BYTES", "out: the packed weight needs " + std::to_string(out_bytes) + " bytes, got " +
                                                 std::to_string(out.length));
      try {
        pack(out.data);
      } catch (const Error& e) {
        throw_error(env, e.code.c_str(), e.what());
      }
      return Napi::Number::New(env, static_cast<double>(out_bytes));
    }
    if (out_bytes == 0) return Napi::Uint8Array::New(env, 0);
    void* p = std::aligned_alloc(64, (static_cast<size_t>(out_bytes) + 63) / 64 * 64);
    if (!p) throw_error(env, "ERR_OUT_OF_MEMORY", std::string(what) + ": cannot allocate " + std::to_string(out_bytes) + " bytes");
    try {
      pack(p);
    } catch (const Error& e) {
      std::free(p);
      throw_error(env, e.code.c_str(), e.what());
    }
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, p, static_cast<size_t>(out_bytes), [](Napi::Env, void* data) { std::free(data); });
    return Napi::Uint8Array::New(env, static_cast<size_t>(out_bytes), buf, 0);
  });
}

}  // namespace

void register_weights(Napi::Env env, Napi::Object exports) {
  exports.Set("packQ8_0x128", Napi::Function::New(env, PackForDecode<WeightFormat::Q8_0, WeightFormat::Q8_0x128>));
  exports.Set("packF32x16", Napi::Function::New(env, PackForDecode<WeightFormat::F32, WeightFormat::F32x16>));
  exports.Set("gemmWeights", Napi::Function::New(env, GemmWeights));
  exports.Set("gemmWeightsMany", Napi::Function::New(env, GemmWeightsMany));
  exports.Set("gemmWeightsSwiglu", Napi::Function::New(env, GemmWeightsSwiglu));
}

}  // namespace atoma::addon
