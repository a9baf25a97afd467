// Device-resident f32 tensors (CUDA builds only): a DeviceTensor owns GPU memory and its dims, so
// a chain of kernels (matmul -> rmsnorm -> softmax ...) runs without activations crossing PCIe;
// only toDevice / toHost copy, asynchronously on a stream, and digest() hashes on the device.
// Every op is queued on one stream shared by all device tensors, so queue order is data order.
#pragma once
#include <napi.h>

namespace atoma::addon {

// Adds DeviceTensor, toDevice and the dt* ops to the exports.
void register_device_tensors(Napi::Env env, Napi::Object exports);

}  // namespace atoma::addon
