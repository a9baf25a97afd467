#include "js_errors.h"

namespace atoma::addon {

namespace {
// One per environment (worker threads each load the addon into their own env).
struct ErrorClass { Napi::FunctionReference ctor; };
}  // namespace

void set_error_class(Napi::Env env, Napi::Function ctor) {
  auto* holder = env.GetInstanceData<ErrorClass>();
  if (!holder) {
    holder = new ErrorClass();
    env.SetInstanceData<ErrorClass>(holder);
  }
  holder->ctor = Napi::Persistent(ctor);
}

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  auto* holder = env.GetInstanceData<ErrorClass>();
  if (holder && !holder->ctor.IsEmpty()) {
    Napi::Object obj = holder->ctor.New({Napi::String::New(env, message), Napi::String::New(env, code)});
    return Napi::Error(env, obj);
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

void throw_error(Napi::Env env, const std::string& code, const std::string& message) {
  throw make_error(env, code, message);
}

}  // namespace atoma::addon
