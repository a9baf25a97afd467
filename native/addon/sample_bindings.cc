// sample(logits, temperature, topK, topP, seed, step) -> token: the canonical sampler
// (native/canon/sample.h) on one row of host logits, on the CPU or, when the active device is
// cuda, on the GPU through the CUDA dispatch. Same token as lib/model/sampler.ts sample().
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "../canon/sample.h"
#include "../core/error.h"
#include "args.h"
#include "bindings.h"
#include "device.h"
#if defined(ATOMA_WITH_CUDA)
#include "cuda_dispatch.h"
#endif

namespace atoma::addon {
namespace {

std::string show(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char b[32];
  for (int digits = 1; digits <= 17; ++digits) {   // the shortest that reads back, as JS prints
    std::snprintf(b, sizeof b, "%.*g", digits, v);
    if (std::strtod(b, nullptr) == v) break;
  }
  return b;
}

Napi::Value Sample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto x = arg_array<float>(info, 0, napi_float32_array, 0, "logits");
    const double temperature = arg_number(info, 1, "temperature");
    const double top_k_d = arg_number(info, 2, "topK");
    const double top_p = arg_number(info, 3, "topP");
    const uint64_t seed = arg_u64(info, 4, "seed");
    const uint64_t step = arg_u64(info, 5, "step");
    // lib/model/sampler.ts checkSampling, same codes and words.
    if (!std::isfinite(temperature) || temperature < 0)
      throw Error("ERR_ARGUMENT", "temperature must be a finite number >= 0, got " + show(temperature));
    if (!(top_k_d >= 0) || top_k_d > 9007199254740991.0 || std::floor(top_k_d) != top_k_d)
      throw Error("ERR_ARGUMENT", "topK must be an integer >= 0, got " + show(top_k_d));
    if (!(top_p > 0 && top_p <= 1)) throw Error("ERR_ARGUMENT", "topP must be in (0, 1], got " + show(top_p));
    if (x.length > 0x7FFFFFFF)
      throw Error("ERR_SHAPE", "sample: row length " + std::to_string(x.length) + " does not fit an int32 token id");
    const auto top_k = static_cast<int64_t>(top_k_d);
    int64_t token;
    if (on_cuda()) {
#if defined(ATOMA_WITH_CUDA)
      token = gpu::sample(x.data, x.length, temperature, top_k, top_p, seed, step);
#else
      token = -1;
#endif
    } else {
      token = canon::sample_host(x.data, x.length, canon::make_sample_params(temperature, top_k, top_p, seed, step));
    }
    if (token < 0) throw Error("ERR_RANGE", "every logit is NaN");
    return Napi::Number::New(env, static_cast<double>(token));
  });
}

}  // namespace

void register_sampling(Napi::Env env, Napi::Object exports) {
  exports.Set("sample", Napi::Function::New(env, Sample));
}

}  // namespace atoma::addon
