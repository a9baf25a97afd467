#include "device.h"

#include <atomic>
#include <cstdlib>

#include "../core/error.h"
#if defined(ATOMA_WITH_CUDA)
#include "../cuda/api.h"
#endif

namespace atoma::addon {

const char* device_name(Device d) { return d == Device::Cuda ? "cuda" : "cpu"; }

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::Cpu;
  if (name == "cuda") return Device::Cuda;
  throw Error("ERR_UNKNOWN_DEVICE", "unknown device '" + name + "' (expected cpu or cuda)");
}

bool cuda_built() {
#if defined(ATOMA_WITH_CUDA)
  return true;
#else
  return false;
#endif
}

bool cuda_available() {
#if defined(ATOMA_WITH_CUDA)
  return cuda::available();
#else
  return false;
#endif
}

std::string cuda_device_name() {
#if defined(ATOMA_WITH_CUDA)
  if (!cuda::available()) return "";
  try {
    return cuda::device_name();
  } catch (const Error&) {
    return "";
  }
#else
  return "";
#endif
}

namespace {
std::atomic<int> g_device{-1};

// `source` names where the request came from, so the message points at what to change.
Device usable(Device d, const char* source) {
  if (d != Device::Cuda) return d;
  if (!cuda_built())
    throw Error("ERR_NO_CUDA", std::string(source) +
                                   ": this addon was built without CUDA (build it with `npm run build:cuda`)");
  if (!cuda_available())
    throw Error("ERR_NO_CUDA", std::string(source) + ": no usable CUDA GPU found (no device, or no driver)");
  return d;
}
}  // namespace

Device active_device() {
  int v = g_device.load(std::memory_order_relaxed);
  if (v >= 0) return static_cast<Device>(v);
  const char* env = std::getenv("ATOMA_DEVICE");
  Device d = Device::Cpu;
  if (env && *env) {
    try {
      d = usable(parse_device(env), "ATOMA_DEVICE=cuda");
    } catch (const Error& e) {
      throw Error(e.code, e.code == "ERR_UNKNOWN_DEVICE" ? std::string("ATOMA_DEVICE: ") + e.what() : e.what());
    }
  }
  g_device.store(static_cast<int>(d));
  return d;
}

void set_active_device(Device d) { g_device.store(static_cast<int>(usable(d, "device cuda"))); }

}  // namespace atoma::addon
