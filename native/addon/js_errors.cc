#include "js_errors.h"

#include "instance.h"

namespace atoma::addon {

void set_error_class(Napi::Env env, Napi::Function ctor) { instance(env).error_class = Napi::Persistent(ctor); }

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::FunctionReference& ctor = instance(env).error_class;
  if (!ctor.IsEmpty()) {
    Napi::Object obj = ctor.New({Napi::String::New(env, message), Napi::String::New(env, code)});
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
