// Argument readers for the bindings. JavaScript values are never trusted: every array is checked
// for its type, for being attached, and for holding at least the elements the shape needs.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "../core/overlap.h"
#include "js_errors.h"

namespace atoma::addon {

// A non-negative integer below 2^53 (a size or index).
int64_t arg_size(const Napi::CallbackInfo& info, size_t i, const char* name);
double arg_number(const Napi::CallbackInfo& info, size_t i, const char* name);
bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* name);
uint64_t arg_u64(const Napi::CallbackInfo& info, size_t i, const char* name);  // Number or BigInt

// The product of sizes, or ERR_SIZE when it overflows what an array can hold.
int64_t checked_mul(Napi::Env env, int64_t a, int64_t b, const char* what);

template <typename T>
struct View {
  T* data = nullptr;
  int64_t length = 0;
  Napi::Value holder;   // keeps the array alive while an async kernel uses it
};

// The typed array at i with element type `type`, at least `min_length` elements long.
template <typename T>
View<T> arg_array(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type,
                  int64_t min_length, const char* name);
template <typename T>
View<T> arg_optional_array(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type,
                           int64_t min_length, const char* name);

// Raw bytes of any typed array, DataView-free: Buffer, Uint8Array, Float32Array ...
View<uint8_t> arg_bytes(const Napi::CallbackInfo& info, size_t i, const char* name);

}  // namespace atoma::addon

#include "args_inl.h"
