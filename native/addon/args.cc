#include "args.h"

#include <cmath>

namespace atoma::addon {

double arg_number(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber())
    throw_error(info.Env(), "ERR_TYPE", std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

int64_t arg_size(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double d = arg_number(info, i, name);
  if (!(d >= 0) || d > 9007199254740991.0 || std::floor(d) != d)
    throw_error(info.Env(), "ERR_SHAPE", std::string(name) + " must be a non-negative integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsBoolean())
    throw_error(info.Env(), "ERR_TYPE", std::string(name) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsString())
    throw_error(info.Env(), "ERR_TYPE", std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

uint64_t arg_u64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i < info.Length() && info[i].IsBigInt()) {
    bool lossless = false;
    uint64_t v = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw_error(info.Env(), "ERR_RANGE", std::string(name) + " must fit in an unsigned 64-bit integer");
    return v;
  }
  return static_cast<uint64_t>(arg_size(info, i, name));
}

int64_t checked_mul(Napi::Env env, int64_t a, int64_t b, const char* what) {
  if (a != 0 && b > INT64_MAX / 8 / a)
    throw_error(env, "ERR_SIZE", std::string(what) + " is too large (element count overflows)");
  return a * b;
}

View<uint8_t> arg_bytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::TypedArray arr = checked_typed_array(info, i, name);
  View<uint8_t> v;
  v.data = static_cast<uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  v.length = static_cast<int64_t>(arr.ByteLength());
  v.holder = arr;
  return v;
}

}  // namespace atoma::addon
