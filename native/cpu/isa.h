// Run-time choice of the CPU code path. Every path computes the same bytes; the choice only
// changes speed. ATOMA_ISA=scalar|avx2|avx512 forces one (an unsupported one is an error).
#pragma once
#include <string>
#include <vector>

namespace atoma {

enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

const char* isa_name(Isa isa);
Isa parse_isa(const std::string& name);        // throws Error("ERR_UNKNOWN_ISA")
bool isa_supported(Isa isa);                   // what this CPU and build can run
std::vector<Isa> available_isas();
Isa best_isa();
Isa active_isa();                              // ATOMA_ISA at first use, else the best
void set_active_isa(Isa isa);                  // throws Error("ERR_ISA_UNSUPPORTED")

}  // namespace atoma
