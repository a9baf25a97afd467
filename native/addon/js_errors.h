// Turns native failures into JavaScript AtomaError objects (class registered from TypeScript),
// so every error a caller sees has a stable `code`.
#pragma once
#include <napi.h>

#include <string>

namespace atoma::addon {

void set_error_class(Napi::Env env, Napi::Function ctor);
Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message);
[[noreturn]] void throw_error(Napi::Env env, const std::string& code, const std::string& message);

// Runs body and converts atoma::Error / std::exception into a thrown AtomaError.
template <typename F>
auto guarded(Napi::Env env, F&& body) -> decltype(body());

}  // namespace atoma::addon

#include "js_errors_inl.h"
