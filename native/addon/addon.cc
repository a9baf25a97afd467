// The N-API module: bindings only. All arithmetic lives in native/cpu, native/canon, native/hash.
#include <napi.h>

#include "bindings.h"
#if defined(ATOMA_WITH_CUDA)
#include "device_tensor.h"
#endif
#include "js_errors.h"

namespace atoma::addon {
namespace {

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction())
    throw Napi::TypeError::New(info.Env(), "setErrorClass expects a constructor");
  set_error_class(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass));
  register_engine(env, exports);
  register_kernels(env, exports);
  register_hashing(env, exports);
  register_files(env, exports);
  register_weights(env, exports);
  register_sampling(env, exports);
#if defined(ATOMA_WITH_CUDA)
  register_device_tensors(env, exports);
#endif
  return exports;
}

}  // namespace
}  // namespace atoma::addon

static Napi::Object InitAtoma(Napi::Env env, Napi::Object exports) { return atoma::addon::Init(env, exports); }
NODE_API_MODULE(atoma, InitAtoma)
