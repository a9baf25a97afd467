// The addon's per-environment state. N-API keeps ONE instance-data pointer per environment (each
// worker thread loads its own copy of the addon), so every binding that needs state shares this
// one struct instead of setting its own pointer and clobbering the others.
#pragma once
#include <napi.h>

namespace atoma::addon {

struct InstanceData {
  Napi::FunctionReference error_class;          // AtomaError, registered from TypeScript
  Napi::FunctionReference device_tensor_class;  // DeviceTensor (CUDA builds)
};

// Created on first use, freed with the environment.
InstanceData& instance(Napi::Env env);

}  // namespace atoma::addon
