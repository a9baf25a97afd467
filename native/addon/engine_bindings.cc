// Engine-wide bindings: ISA, device and thread configuration, seeded tensors, Philox, copy bandwidth.
#include <napi.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "../canon/philox.h"
#include "../cpu/isa.h"
#include "../cpu/thread_pool.h"
#include "args.h"
#include "bindings.h"
#include "device.h"

namespace atoma::addon {
namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("isa", isa_name(active_isa()));
    Napi::Array isas = Napi::Array::New(env);
    uint32_t i = 0;
    for (Isa isa : available_isas()) isas.Set(i++, isa_name(isa));
    o.Set("isas", isas);
    o.Set("threads", Napi::Number::New(env, static_cast<double>(thread_count())));
    o.Set("device", device_name(active_device()));
    o.Set("cudaBuilt", cuda_built());
    const bool gpu = cuda_available();
    o.Set("cudaAvailable", gpu);
    if (gpu) o.Set("cudaDevice", cuda_device_name());
    else o.Set("cudaDevice", env.Null());
    return o;
  });
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    set_active_isa(parse_isa(arg_string(info, 0, "isa")));
    return env.Undefined();
  });
}

Napi::Value SetDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    set_active_device(parse_device(arg_string(info, 0, "device")));
    return env.Undefined();
  });
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    double n = arg_number(info, 0, "threads");
    if (!(n >= 1 && n <= 1024) || n != static_cast<double>(static_cast<int64_t>(n)))
      throw_error(env, "ERR_BAD_THREADS", "threads must be an integer in 1..1024");
    set_thread_count(static_cast<size_t>(n));
    return env.Undefined();
  });
}

// poolStats() -> { parallelCalls, tasks }: work handed to the thread pool so far (thread_pool.h).
Napi::Value PoolStatsBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const PoolStats s = pool_stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("parallelCalls", Napi::Number::New(env, static_cast<double>(s.parallel_calls)));
    o.Set("tasks", Napi::Number::New(env, static_cast<double>(s.tasks)));
    return o;
  });
}

// seededFill(out: Float32Array, seed, stream, first): out[i] = seeded_value(seed, stream, first + i).
Napi::Value SeededFill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto out = arg_array<float>(info, 0, napi_float32_array, 0, "out");
    uint64_t seed = arg_u64(info, 1, "seed");
    uint64_t stream = arg_u64(info, 2, "stream");
    if (stream > 0xFFFFFFFFull) throw_error(env, "ERR_RANGE", "stream must fit in 32 bits");
    uint64_t first = arg_u64(info, 3, "first");
    const int64_t n = out.length;
    const int64_t block = 1 << 16;
    const size_t tasks = static_cast<size_t>((n + block - 1) / block);
    parallel_for(tasks, [&](size_t t) {
      int64_t lo = static_cast<int64_t>(t) * block, hi = lo + block < n ? lo + block : n;
      for (int64_t i = lo; i < hi; ++i)
        out.data[i] = canon::seeded_value(seed, static_cast<uint32_t>(stream), first + static_cast<uint64_t>(i));
    });
    return env.Undefined();
  });
}

// philox(counter: Uint32Array(4), key: Uint32Array(2)) -> Uint32Array(4), for known-answer tests.
Napi::Value Philox(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto ctr = arg_array<uint32_t>(info, 0, napi_uint32_array, 4, "counter");
    auto key = arg_array<uint32_t>(info, 1, napi_uint32_array, 2, "key");
    canon::Philox4 c = {{ctr.data[0], ctr.data[1], ctr.data[2], ctr.data[3]}};
    canon::Philox4 r = canon::philox4x32_10(c, key.data[0], key.data[1]);
    Napi::Uint32Array out = Napi::Uint32Array::New(env, 4);
    for (int i = 0; i < 4; ++i) out[i] = r.v[i];
    return out;
  });
}

// copyBandwidth(mib) -> GB/s of a parallel memcpy (read + write bytes counted once each side
// as b3sum/STREAM "copy" does: 2 * size / time), the yardstick for memory-bound kernels.
Napi::Value CopyBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t mib = arg_size(info, 0, "mib");
    if (mib < 1 || mib > 4096) throw_error(env, "ERR_RANGE", "mib must be in 1..4096");
    size_t bytes = static_cast<size_t>(mib) << 20;
    std::unique_ptr<uint8_t[]> src(new uint8_t[bytes]), dst(new uint8_t[bytes]);
    std::memset(src.get(), 1, bytes);
    std::memset(dst.get(), 2, bytes);
    size_t tasks = thread_count();
    size_t part = (bytes / tasks + 63) & ~size_t(63);
    double best = 0;
    for (int rep = 0; rep < 7; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      parallel_for(tasks, [&](size_t t) {
        size_t lo = t * part;
        if (lo >= bytes) return;
        size_t len = lo + part <= bytes ? part : bytes - lo;
        std::memcpy(dst.get() + lo, src.get() + lo, len);
      });
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double gbps = 2.0 * static_cast<double>(bytes) / s / 1e9;
      if (gbps > best) best = gbps;
    }
    return Napi::Number::New(env, best);
  });
}

}  // namespace

void register_engine(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("setDevice", Napi::Function::New(env, SetDevice));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("poolStats", Napi::Function::New(env, PoolStatsBinding));
  exports.Set("seededFill", Napi::Function::New(env, SeededFill));
  exports.Set("philox", Napi::Function::New(env, Philox));
  exports.Set("copyBandwidth", Napi::Function::New(env, CopyBandwidth));
}

}  // namespace atoma::addon
