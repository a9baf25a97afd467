#pragma once
#include <new>

#include "../core/error.h"

namespace atoma::addon {

template <typename F>
auto guarded(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const atoma::Error& e) {
    throw make_error(env, e.code, e.what());
  } catch (const std::bad_alloc&) {
    throw make_error(env, "ERR_OUT_OF_MEMORY", "native allocation failed");
  } catch (const std::exception& e) {
    throw make_error(env, "ERR_INTERNAL", e.what());
  }
}

}  // namespace atoma::addon
