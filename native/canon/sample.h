// Canonical token sampling (docs/canonical-arithmetic.md "Sampling"; the TypeScript reference is
// lib/model/sampler.ts). The per-element and sequential arithmetic lives here as ATOMA_HD
// functions so that the CUDA kernel (native/cuda/sample_kernel.cuh) and the CPU path
// (sample_host below) run the same code; only the sort differs, and any correct sort gives the
// same order because the keys are unique.
#pragma once
#include "hd.h"
#include "math.h"
#include "philox.h"

#include <algorithm>
#include <vector>

namespace atoma::canon {

constexpr uint32_t kSamplingStream = 0x73616d70;   // "samp"

struct SampleParams {
  bool greedy;         // temperature <= 0 or top_k == 1, decided on the caller's numbers
  float temperature;   // f32(temperature)
  int64_t top_k;       // 0: all
  float top_p;         // f32(topP)
  bool cut;            // topP < 1 as the caller's number (not as f32: f32(0.99999999) is 1)
  uint64_t seed;
  uint64_t step;
};

// From the request's numbers: the greedy and top-p decisions use them as given (a temperature of
// 1e-50 is not greedy even though its f32 is 0), the arithmetic uses their f32 roundings.
ATOMA_HD SampleParams make_sample_params(double temperature, int64_t top_k, double top_p,
                                         uint64_t seed, uint64_t step) {
  SampleParams p;
  p.greedy = temperature <= 0.0 || top_k == 1;
  p.temperature = static_cast<float>(temperature);
  p.top_k = top_k;
  p.top_p = static_cast<float>(top_p);
  p.cut = top_p < 1.0;
  p.seed = seed;
  p.step = step;
  return p;
}

// The greedy rule: the largest value, ties to the lower id, NaN never chosen, but an all -inf
// row still picks its first -inf. Fold x[i] in ascending i; `best < 0` means nothing yet.
ATOMA_HD bool greedy_takes(float v, float best_value, int64_t best) {
  return v > best_value || (best < 0 && v == -__builtin_inff());
}

ATOMA_HD float sample_z(float logit, float temperature) { return logit / temperature; }

// A u64 whose ascending order is the candidates' order: z descending (-0 equal to +0), ties by
// the lower id; NaN sorts after everything (and is then dropped). Ids are below 2^31, so the
// keys of one row are unique and every sort gives the same permutation.
ATOMA_HD uint64_t sample_key(float z, uint32_t id) {
  uint32_t b = f32_bits(z);
  uint32_t desc;
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) desc = 0xFFFFFFFFu;
  else {
    if (b == 0x80000000u) b = 0;
    desc = (b & 0x80000000u) ? b : (~b & 0x7FFFFFFFu);
  }
  return (static_cast<uint64_t>(desc) << 32) | id;
}
ATOMA_HD bool sample_key_is_nan(uint64_t key) { return (key >> 32) == 0xFFFFFFFFull; }
ATOMA_HD uint32_t sample_key_id(uint64_t key) { return static_cast<uint32_t>(key); }
// The key of padding slots (sorts after every real key, NaN ones included).
constexpr uint64_t kSamplePadKey = ~uint64_t{0};

// p_i = exp_f32(f32(z_i - z_0)).
ATOMA_HD float sample_weight(float z, float z0) { return exp_f32(z - z0); }

// In place: p[0..n) becomes c_i = f32(c_{i-1} + p_i), starting from c_{-1} = acc (+0 for the
// first piece; a caller that walks the row in pieces passes the returned value on, which is the
// same chain of additions). Sequential: this order is the contract, so no parallel scan may
// replace it.
ATOMA_HD float sample_cumulate(float* c, int64_t n, float acc = 0.0f) {
  for (int64_t i = 0; i < n; ++i) c[i] = acc = acc + c[i];
  return acc;
}

ATOMA_HD float sample_cut(const SampleParams& p, float c_last) { return p.top_p * c_last; }

// Top-p keeps 1 + the first j with !(c_j < cut) (at most kept): c_j stops the prefix.
ATOMA_HD bool sample_cut_stops(float c, float cut) { return !(c < cut); }

ATOMA_HD float sample_threshold(const SampleParams& p, float c_kept_last) {
  return philox_unit(p.seed, kSamplingStream, p.step) * c_kept_last;
}

// The token is the first kept candidate with c_i > t (the last kept one if none).
ATOMA_HD bool sample_picks(float c, float t) { return c > t; }

// The CPU path (host only): the token of one row of n logits, or -1 when every logit is NaN (or n == 0).
inline int64_t sample_host(const float* logits, int64_t n, const SampleParams& p) {
  if (p.greedy) {
    int64_t best = -1;
    float bv = -__builtin_inff();
    for (int64_t i = 0; i < n; ++i)
      if (greedy_takes(logits[i], bv, best)) { bv = logits[i]; best = i; }
    return best;
  }
  std::vector<float> z(static_cast<size_t>(n));
  std::vector<uint64_t> keys;
  keys.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    z[i] = sample_z(logits[i], p.temperature);
    const uint64_t k = sample_key(z[i], static_cast<uint32_t>(i));
    if (!sample_key_is_nan(k)) keys.push_back(k);
  }
  const int64_t valid = static_cast<int64_t>(keys.size());
  if (valid == 0) return -1;
  const int64_t kept = p.top_k > 0 && p.top_k < valid ? p.top_k : valid;
  // Only the first `kept` in order matter: a partial sort gives the same prefix (unique keys).
  if (kept < valid) std::partial_sort(keys.begin(), keys.begin() + kept, keys.end());
  else std::sort(keys.begin(), keys.end());
  std::vector<float> c(static_cast<size_t>(kept));
  const float z0 = z[sample_key_id(keys[0])];
  for (int64_t i = 0; i < kept; ++i) c[i] = sample_weight(z[sample_key_id(keys[i])], z0);
  sample_cumulate(c.data(), kept);
  int64_t m = kept;
  if (p.cut) {
    const float cut = sample_cut(p, c[kept - 1]);
    m = 1;
    while (m < kept && !sample_cut_stops(c[m - 1], cut)) ++m;
  }
  const float t = sample_threshold(p, c[m - 1]);
  for (int64_t i = 0; i < m; ++i)
    if (sample_picks(c[i], t)) return sample_key_id(keys[i]);
  return sample_key_id(keys[m - 1]);
}

}  // namespace atoma::canon
