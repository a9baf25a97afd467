#pragma once

namespace atoma::addon {

inline const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_float32_array: return "Float32Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_int8_array: return "Int8Array";
    default: return "typed array";
  }
}

inline Napi::TypedArray checked_typed_array(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsTypedArray())
    throw_error(env, "ERR_TYPE", std::string(name) + " must be a typed array");
  Napi::TypedArray arr = info[i].As<Napi::TypedArray>();
  if (arr.ArrayBuffer().IsDetached())
    throw_error(env, "ERR_DETACHED", std::string(name) + " is backed by a detached ArrayBuffer");
  return arr;
}

template <typename T>
View<T> arg_array(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type,
                  int64_t min_length, const char* name) {
  Napi::Env env = info.Env();
  Napi::TypedArray arr = checked_typed_array(info, i, name);
  if (arr.TypedArrayType() != type)
    throw_error(env, "ERR_DTYPE", std::string(name) + " must be a " + typed_array_name(type));
  int64_t len = static_cast<int64_t>(arr.ElementLength());
  if (len < min_length)
    throw_error(env, "ERR_SHAPE", std::string(name) + " has " + std::to_string(len) +
                                      " elements but the shape needs " + std::to_string(min_length));
  View<T> v;
  uint8_t* base = static_cast<uint8_t*>(arr.ArrayBuffer().Data());
  v.data = reinterpret_cast<T*>(base + arr.ByteOffset());
  v.length = len;
  v.holder = arr;
  return v;
}

template <typename T>
View<T> arg_optional_array(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type,
                           int64_t min_length, const char* name) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return View<T>{};
  return arg_array<T>(info, i, type, min_length, name);
}

}  // namespace atoma::addon
