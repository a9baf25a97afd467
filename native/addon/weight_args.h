// Arguments that name stored model weights: a format name and the bytes of an [N, K] matrix in it.
// Shared by the CPU product bindings and the device upload of weights, so both refuse a
// mislabelled or truncated tensor with the same code and words.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "../cpu/gemm_weights.h"
#include "args.h"

namespace atoma::addon {

struct WeightLayout {
  WeightFormat format;
  int64_t row_bytes;   // one stored row of K values
};

// The format named `name` (ERR_WEIGHT_FORMAT, or the kernel's own code and words, otherwise).
WeightLayout weight_layout(Napi::Env env, const std::string& name, int64_t K);

// ERR_WEIGHT_BYTES unless W holds exactly the stored rows of an [N, K] weight in that layout.
void check_weight_bytes(Napi::Env env, const View<uint8_t>& W, const WeightLayout& l, const std::string& format_name,
                        int64_t N, int64_t K, const std::string& label);

}  // namespace atoma::addon
