// Which device the kernel bindings run on: the CPU engine or, in a CUDA build with a GPU, the
// CUDA backend (same bytes either way). ATOMA_DEVICE=cpu|cuda sets the default, read at first
// use like ATOMA_ISA; setDevice() changes it. Asking for cuda where it cannot run is
// ERR_NO_CUDA (saying why), an unknown name ERR_UNKNOWN_DEVICE.
#pragma once
#include <string>

namespace atoma::addon {

enum class Device { Cpu, Cuda };

const char* device_name(Device d);
Device parse_device(const std::string& name);   // throws ERR_UNKNOWN_DEVICE

bool cuda_built();
bool cuda_available();                          // built and a usable GPU present; never throws
std::string cuda_device_name();                 // the GPU's name; "" when unavailable

Device active_device();                         // throws when ATOMA_DEVICE is bad or unusable
void set_active_device(Device d);               // throws ERR_NO_CUDA when cuda cannot run

// Whether a kernel binding runs its CUDA form. Called in every build, so that a CPU-only build
// refuses ATOMA_DEVICE=cuda instead of silently computing on the CPU.
inline bool on_cuda() { return active_device() == Device::Cuda; }

}  // namespace atoma::addon
