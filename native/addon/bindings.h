// Each file of bindings adds its functions to the addon's exports.
#pragma once
#include <napi.h>

namespace atoma::addon {

void register_engine(Napi::Env env, Napi::Object exports);
void register_kernels(Napi::Env env, Napi::Object exports);
void register_hashing(Napi::Env env, Napi::Object exports);
void register_files(Napi::Env env, Napi::Object exports);
void register_weights(Napi::Env env, Napi::Object exports);
void register_sampling(Napi::Env env, Napi::Object exports);

}  // namespace atoma::addon
