// Runs a kernel on libuv's worker pool and settles a Promise, so heavy kernels never block the
// JavaScript thread. The arrays the kernel touches stay referenced until it finishes.
#pragma once
#include <napi.h>

#include <functional>
#include <string>
#include <vector>

namespace atoma::addon {

using ResultMaker = std::function<Napi::Value(Napi::Env)>;

Napi::Promise run_async(Napi::Env env, std::vector<Napi::Value> keep_alive,
                        std::function<void()> work, ResultMaker result = nullptr);

}  // namespace atoma::addon
