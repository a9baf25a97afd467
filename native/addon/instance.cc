#include "instance.h"

namespace atoma::addon {

InstanceData& instance(Napi::Env env) {
  InstanceData* data = env.GetInstanceData<InstanceData>();
  if (!data) {
    data = new InstanceData();
    env.SetInstanceData<InstanceData>(data);
  }
  return *data;
}

}  // namespace atoma::addon
