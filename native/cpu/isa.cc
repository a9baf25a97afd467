#include "isa.h"

#include <atomic>
#include <cstdlib>

#include "../core/error.h"

namespace atoma {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

Isa parse_isa(const std::string& name) {
  if (name == "scalar") return Isa::Scalar;
  if (name == "avx2") return Isa::Avx2;
  if (name == "avx512") return Isa::Avx512;
  throw Error("ERR_UNKNOWN_ISA", "unknown ISA '" + name + "' (expected scalar, avx2 or avx512)");
}

bool isa_supported(Isa isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  }
  return false;
#else
  return isa == Isa::Scalar;
#endif
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (isa_supported(i)) out.push_back(i);
  return out;
}

Isa best_isa() { return available_isas().back(); }

namespace {
std::atomic<int> g_active{-1};

Isa checked(Isa isa) {
  if (!isa_supported(isa))
    throw Error("ERR_ISA_UNSUPPORTED", std::string("this CPU cannot run the ") + isa_name(isa) + " path");
  return isa;
}
}  // namespace

Isa active_isa() {
  int v = g_active.load(std::memory_order_relaxed);
  if (v >= 0) return static_cast<Isa>(v);
  const char* env = std::getenv("ATOMA_ISA");
  Isa isa = (env && *env) ? checked(parse_isa(env)) : best_isa();
  g_active.store(static_cast<int>(isa));
  return isa;
}

void set_active_isa(Isa isa) { g_active.store(static_cast<int>(checked(isa))); }

}  // namespace atoma
