// Canonical transcendental functions (DETERMINISM.md section 6, docs/canonical-arithmetic.md).
//
// exp_f32, log_f32, tanh_f32 return the binary32 nearest to the exact value (ties to even) for
// every binary32 input; sin_f32, cos_f32 do so for |x| <= 2^24 and return NaN outside. Being
// correctly rounded, the results are fixed by the mathematics alone, not by this code; the code
// only has to be right, which native/test/math_exhaustive.cc checks over all inputs.
//
// Method: evaluate in double (relative error below 2^-50), round to float, and accept that when
// the whole interval y*(1 +- 2^-43) rounds to the same float. Otherwise (about 1 call in 2^18) a
// double-double path (error about 2^-100) decides the rounding exactly. Only + - * /, explicit
// fma, conversions, comparisons and bit operations are used, so the header compiles unchanged
// for CUDA devices (no tables, no libm).
#pragma once
#include "dd.h"
#include "hd.h"

#if defined(__CUDACC__)
#define ATOMA_HD_COLD __host__ __device__ __noinline__ inline
#else
#define ATOMA_HD_COLD __attribute__((noinline, cold)) inline
#endif

namespace atoma::canon {

namespace math_detail {

// ln 2 and pi/2 split into doubles (each part the double nearest to the remainder) for the
// double-double paths, which multiply exactly with fma.
constexpr double kInvLn2 = 0x1.71547652b82fep+0;
constexpr double kLn2Hi = 0x1.62e42fefa39efp-1;
constexpr double kLn2Lo = 0x1.abc9e3b39803fp-56;
constexpr double kLn2Lo2 = 0x1.7b57a079a1934p-111;
constexpr double kTwoOverPi = 0x1.45f306dc9c883p-1;
constexpr double kPio2_1 = 0x1.921fb54442d18p+0;
constexpr double kPio2_2 = 0x1.1a62633145c07p-54;
constexpr double kPio2_3 = -0x1.f1976b7ed8fbcp-110;

// Cody-Waite splits for the fast paths, which use no fma (a scalar build without -mfma would
// call libm's fma): the leading parts have few enough bits that k * part is exact, for
// |k| < 2^8 (ln 2, 44 and 45 bits) and k < 2^24 (pi/2, 29 and 29 bits).
constexpr double kLn2C1 = 0x1.62e42fefa3a00p-1;
constexpr double kLn2C2 = -0x1.0ca86c3898d00p-49;  // ln2 - C1 - C2 < 2^-102
constexpr double kPio2C1 = 0x1.921fb54000000p+0;
constexpr double kPio2C2 = 0x1.10b4612000000p-30;
constexpr double kPio2C3 = -0x1.676733ae8fe48p-60;  // pi/2 - C1 - C2 - C3 < 2^-113

// Ten times the worst fast-path error bound of any function here is still below this.
constexpr double kRoundMargin = 0x1p-43;

// Round to nearest integer (ties to even) for |v| < 2^51, without rint.
ATOMA_HD double round_int(double v) { return (v + 0x1.8p52) - 0x1.8p52; }

ATOMA_HD float f32_inf() { return bits_f32(0x7f800000u); }
ATOMA_HD float f32_nan() { return bits_f32(0x7fc00000u); }

// True when every value within y * (1 +- kRoundMargin) rounds to the same float, i.e. the fast
// result is the correctly rounded one whatever the true value inside that interval is.
ATOMA_HD bool round_if_safe(double y, float* out) {
  float a = (float)(y * (1.0 - kRoundMargin));
  float b = (float)(y * (1.0 + kRoundMargin));
  *out = a;
  return a == b;
}

// Correct rounding of hi + lo (>= 0, |lo| <= ulp(hi)/2) to binary32: only when hi lies on the
// near side of a midpoint can lo move the value across it, and hi - mid is exact (Sterbenz).
ATOMA_HD float round_dd_pos(double hi, double lo) {
  float r = (float)hi;
  double rd = (double)r;
  if (hi == rd) return r;
  uint32_t b = f32_bits(r);
  if (hi > rd) {
    double mid = (b == 0x7f7fffffu) ? 0x1.ffffffp127 : 0.5 * (rd + (double)bits_f32(b + 1));
    double t = (hi - mid) + lo;
    if (t > 0.0 || (t == 0.0 && (b & 1u))) return bits_f32(b + 1);
    return r;
  }
  double mid = (b == 0x7f800000u) ? 0x1.ffffffp127 : 0.5 * (rd + (double)bits_f32(b - 1));
  double t = (hi - mid) + lo;
  if (t < 0.0 || (t == 0.0 && (b & 1u))) return bits_f32(b - 1);
  return r;
}

ATOMA_HD float round_dd(dd v) {
  if (v.hi < 0.0) return -round_dd_pos(-v.hi, -v.lo);
  return round_dd_pos(v.hi, v.lo);
}

// expm1(r) as r + r^2 * Q(r), Q the Taylor series 1/2! + r/3! + ... + r^11/13! (Horner, each
// step a rounded multiply and a rounded add); for |r| <= 0.35 the truncation is below 2^-56.
ATOMA_HD double expm1_poly(double r) {
  double q = 1.0 / 6227020800.0;
  q = q * r + 1.0 / 479001600.0;
  q = q * r + 1.0 / 39916800.0;
  q = q * r + 1.0 / 3628800.0;
  q = q * r + 1.0 / 362880.0;
  q = q * r + 1.0 / 40320.0;
  q = q * r + 1.0 / 5040.0;
  q = q * r + 1.0 / 720.0;
  q = q * r + 1.0 / 120.0;
  q = q * r + 1.0 / 24.0;
  q = q * r + 1.0 / 6.0;
  q = q * r + 0.5;
  return r + (r * r) * q;
}

// x - k*ln2 in double, |k| < 2^8: the first subtraction is exact (k*C1 exact, Sterbenz).
ATOMA_HD double reduce_ln2(double x, double k) { return (x - k * kLn2C1) - k * kLn2C2; }

// x - k*ln2 in double-double (error about 2^-106 absolute for |k| <= 2^10).
ATOMA_HD dd reduce_ln2_dd(double x, double k) {
  dd p = two_prod(k, kLn2Hi);
  dd r = two_sum(x - p.hi, -p.lo);  // x - p.hi is exact (Sterbenz) or k == 0
  r = dd_sub(r, two_prod(k, kLn2Lo));
  return dd_add_d(r, -k * kLn2Lo2);
}

// sum_{n >= first} r^n / n! for |r| <= 0.35 (first 0 or 1): terms to n = 27 (< 2^-106).
ATOMA_HD dd exp_taylor_dd(dd r, int first) {
  dd term = r;
  dd sum = (first == 0) ? dd_add_d(r, 1.0) : r;
  for (int n = 2; n <= 27; ++n) {
    term = dd_div_d(dd_mul(term, r), (double)n);
    sum = dd_add(sum, term);
  }
  return sum;
}

ATOMA_HD_COLD float exp_slow(double x, double k) {
  dd e = exp_taylor_dd(reduce_ln2_dd(x, k), 0);
  int ki = (int)k;
  return round_dd_pos(ldexp_d(e.hi, ki), ldexp_d(e.lo, ki));
}

// 1/n as a double-double (the residual of the division is exact by fma).
ATOMA_HD dd recip_dd(double n) {
  double h = 1.0 / n;
  return {h, fma_(-h, n, 1.0) / n};
}

// log(m) + e*log(2) with log(m) = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716: series to s^41.
ATOMA_HD_COLD float log_slow(double m, double e) {
  dd s = dd_div(dd_from(m - 1.0), dd_from(m + 1.0));
  dd z = dd_mul(s, s);
  dd q = recip_dd(41.0);
  for (int n = 19; n >= 0; --n) q = dd_add(dd_mul(q, z), recip_dd(2.0 * n + 1.0));
  dd lm = dd_mul(q, s);
  lm.hi = 2.0 * lm.hi;
  lm.lo = 2.0 * lm.lo;
  dd el = dd_add(two_prod(e, kLn2Hi), two_prod(e, kLn2Lo));
  el = dd_add_d(el, e * kLn2Lo2);
  return round_dd(dd_add(el, lm));
}

// tanh(y/2) = expm1(y) / (expm1(y) + 2), y = 2|x| in [2^-12, 20].
ATOMA_HD_COLD float tanh_slow(double y, double k) {
  dd r = reduce_ln2_dd(y, k);
  dd em;
  if (k == 0.0) {
    em = exp_taylor_dd(r, 1);
  } else {
    dd e = exp_taylor_dd(r, 0);
    int ki = (int)k;
    em = dd_add_d({ldexp_d(e.hi, ki), ldexp_d(e.lo, ki)}, -1.0);
  }
  dd t = dd_div(em, dd_add_d(em, 2.0));
  return round_dd_pos(t.hi, t.lo);
}

// Nearest integer to x*2/pi for 0 <= x <= 2^24 (then k < 2^24).
ATOMA_HD double quadrant_k(double ax) { return round_int(ax * kTwoOverPi); }

// x - k*pi/2 in double: x - k*C1 and k*C2 are exact, so a small result keeps its relative
// accuracy (about 2^-52) however much cancels.
ATOMA_HD double reduce_pio2(double ax, double k) {
  return ((ax - k * kPio2C1) - k * kPio2C2) - k * kPio2C3;
}

// The same in double-double with the fma-exact three-double pi/2: the neglected part (below
// 2^-160) costs under 2^-136 absolute, the first subtraction is exact (Sterbenz) and the partial
// sums are as small as r, so even the smallest r (about 2^-29 on this domain) keeps about 2^-100.
ATOMA_HD dd reduce_pio2_dd(double ax, double k) {
  dd p = two_prod(k, kPio2_1);
  dd r = two_sum(ax - p.hi, -p.lo);
  r = dd_sub(r, two_prod(k, kPio2_2));
  return dd_add_d(r, -k * kPio2_3);
}

// sin(x), cos(x) for |x| <= pi/4 + 2^-20, Taylor to x^19 / x^18 (truncation < 2^-58).
ATOMA_HD double sin_poly(double x) {
  double z = x * x;
  double p = -1.0 / 121645100408832000.0;
  p = p * z + 1.0 / 355687428096000.0;
  p = p * z - 1.0 / 1307674368000.0;
  p = p * z + 1.0 / 6227020800.0;
  p = p * z - 1.0 / 39916800.0;
  p = p * z + 1.0 / 362880.0;
  p = p * z - 1.0 / 5040.0;
  p = p * z + 1.0 / 120.0;
  p = p * z - 1.0 / 6.0;
  return x + (x * z) * p;
}

ATOMA_HD double cos_poly(double x) {
  double z = x * x;
  double p = 1.0 / 6402373705728000.0;
  p = p * z - 1.0 / 20922789888000.0;
  p = p * z + 1.0 / 87178291200.0;
  p = p * z - 1.0 / 479001600.0;
  p = p * z + 1.0 / 3628800.0;
  p = p * z - 1.0 / 40320.0;
  p = p * z + 1.0 / 720.0;
  p = p * z - 1.0 / 24.0;
  p = p * z + 0.5;
  return 1.0 - z * p;
}

ATOMA_HD dd sin_dd(dd r) {
  dd r2 = dd_mul(r, r);
  dd term = r, sum = r;
  for (int n = 1; n <= 14; ++n) {
    term = dd_div_d(dd_mul(term, r2), (double)(2 * n) * (double)(2 * n + 1));
    sum = (n & 1) ? dd_sub(sum, term) : dd_add(sum, term);
  }
  return sum;
}

ATOMA_HD dd cos_dd(dd r) {
  dd r2 = dd_mul(r, r);
  dd term = dd_from(1.0), sum = dd_from(1.0);
  for (int n = 1; n <= 14; ++n) {
    term = dd_div_d(dd_mul(term, r2), (double)(2 * n - 1) * (double)(2 * n));
    sum = (n & 1) ? dd_sub(sum, term) : dd_add(sum, term);
  }
  return sum;
}

// sin of the argument whose reduction is (r, quadrant q): sin r, cos r, -sin r, -cos r.
ATOMA_HD double quadrant_value(double r, uint32_t q) {
  double v = (q & 1u) ? cos_poly(r) : sin_poly(r);
  return (q & 2u) ? -v : v;
}

ATOMA_HD_COLD float trig_slow(double ax, double k, uint32_t q) {
  dd r = reduce_pio2_dd(ax, k);
  dd v = (q & 1u) ? cos_dd(r) : sin_dd(r);
  if (q & 2u) v = dd_neg(v);
  return round_dd(v);
}

}  // namespace math_detail

// Domain on which sin_f32/cos_f32 are correctly rounded; outside it (and for inf/NaN) they
// return NaN. RoPE angles stay far inside it (see docs/canonical-arithmetic.md).
constexpr float kTrigDomainMax = 0x1p24f;

ATOMA_HD float exp_f32(float xf) {
  using namespace math_detail;
  if (!(xf == xf)) return xf + xf;
  if (xf > 89.0f) return f32_inf();  // exp(89) > 2^128: overflow (also +inf)
  if (xf < -104.0f) return 0.0f;     // exp(-104) < 2^-150: below half the least subnormal
  double x = xf;
  double k = round_int(x * kInvLn2);
  double y = ldexp_d(1.0 + expm1_poly(reduce_ln2(x, k)), (int)k);
  float out;
  if (round_if_safe(y, &out)) return out;
  return exp_slow(x, k);
}

ATOMA_HD float log_f32(float xf) {
  using namespace math_detail;
  if (!(xf == xf)) return xf + xf;
  uint32_t u = f32_bits(xf);
  if ((u & 0x7fffffffu) == 0) return -f32_inf();
  if (u >> 31) return f32_nan();
  if (u == 0x7f800000u) return xf;
  int e = 0;
  if (u < 0x00800000u) {  // subnormal: scale exactly into the normal range
    u = f32_bits(xf * 0x1p23f);
    e = -23;
  }
  e += (int)(u >> 23) - 127;
  uint32_t mb = (u & 0x007fffffu) | 0x3f800000u;
  if (mb > 0x3fb504f3u) {  // keep m in [sqrt(1/2), sqrt(2)] so |s| <= 0.1716
    mb -= 0x00800000u;
    e += 1;
  }
  double m = (double)bits_f32(mb);
  double s = (m - 1.0) / (m + 1.0);  // m - 1 and m + 1 are exact
  double z = s * s;
  double q = 1.0 / 21.0;  // atanh series to s^21 (truncation < 2^-60 relative)
  q = q * z + 1.0 / 19.0;
  q = q * z + 1.0 / 17.0;
  q = q * z + 1.0 / 15.0;
  q = q * z + 1.0 / 13.0;
  q = q * z + 1.0 / 11.0;
  q = q * z + 1.0 / 9.0;
  q = q * z + 1.0 / 7.0;
  q = q * z + 1.0 / 5.0;
  q = q * z + 1.0 / 3.0;
  double t = 2.0 * s;
  double lm = t + (t * z) * q;
  double ed = (double)e;
  double y = ed * kLn2C1 + (ed * kLn2C2 + lm);  // ed * C1 exact for |e| < 2^8
  float out;
  if (round_if_safe(y, &out)) return out;
  return log_slow(m, ed);
}

ATOMA_HD float tanh_f32(float xf) {
  using namespace math_detail;
  if (!(xf == xf)) return xf + xf;
  uint32_t sign = f32_bits(xf) & 0x80000000u;
  float ax = bits_f32(f32_bits(xf) ^ sign);
  if (ax < 0x1p-13f) return xf;  // |x|^3/3 is below a quarter ulp: rounds to x (keeps -0)
  if (ax >= 10.0f) return bits_f32(sign | 0x3f800000u);  // 1 - tanh(10) < 2^-27
  double y = 2.0 * (double)ax;
  double k = round_int(y * kInvLn2);
  double em = expm1_poly(reduce_ln2(y, k));
  if (k != 0.0) {
    double p2 = ldexp_d(1.0, (int)k);
    em = p2 * em + (p2 - 1.0);  // 2^k (1 + p) - 1: the product and p2 - 1 are exact
  }
  double t = em / (em + 2.0);
  float out;
  if (!round_if_safe(t, &out)) out = tanh_slow(y, k);
  return bits_f32(f32_bits(out) | sign);
}

ATOMA_HD float sin_f32(float xf) {
  using namespace math_detail;
  uint32_t sign = f32_bits(xf) & 0x80000000u;
  float ax = bits_f32(f32_bits(xf) ^ sign);
  if (!(ax <= kTrigDomainMax)) return f32_nan();  // NaN, inf, outside the domain
  if (ax < 0x1p-12f) return xf;  // x^3/6 below a quarter ulp: rounds to x
  double k = quadrant_k(ax);
  uint32_t q = (uint32_t)(int64_t)k & 3u;
  float out;
  if (!round_if_safe(quadrant_value(reduce_pio2(ax, k), q), &out)) out = trig_slow(ax, k, q);
  return bits_f32(f32_bits(out) ^ sign);
}

ATOMA_HD float cos_f32(float xf) {
  using namespace math_detail;
  float ax = bits_f32(f32_bits(xf) & 0x7fffffffu);
  if (!(ax <= kTrigDomainMax)) return f32_nan();
  if (ax < 0x1p-13f) return 1.0f;  // 1 - x^2/2 > 1 - 2^-27 rounds to 1
  double k = quadrant_k(ax);
  uint32_t q = ((uint32_t)(int64_t)k + 1u) & 3u;  // cos(x) = sin(x + pi/2)
  float out;
  if (!round_if_safe(quadrant_value(reduce_pio2(ax, k), q), &out)) out = trig_slow(ax, k, q);
  return out;
}

// silu(x) = x / (1 + exp(-x)): three float roundings, in this order.
ATOMA_HD float silu_f32(float x) {
  float e = exp_f32(-x);
  float d = 1.0f + e;
  return x / d;
}

// gelu, tanh form, every step one binary32 rounding in this order (no fma):
//   u = x*x; u = u*x; v = 0.044715f*u; inner = x + v; a = 0.7978845608028654f*inner;
//   t = tanh_f32(a); h = 0.5f*x; s = 1.0f + t; y = h*s.
ATOMA_HD float gelu_f32(float x) {
  float u = x * x;
  u = u * x;
  float v = 0.044715f * u;
  float inner = x + v;
  float a = 0.7978845608028654f * inner;
  float t = tanh_f32(a);
  float h = 0.5f * x;
  float s = 1.0f + t;
  return h * s;
}

// RoPE inverse frequency for pair i of a head of dimension d (computed once per model):
//   a = (float)(2i) / (float)d; b = a * log_f32(theta); inv_freq = exp_f32(-b).
ATOMA_HD float rope_inv_freq_f32(uint32_t i, uint32_t d, float theta) {
  float a = (float)(2u * i) / (float)d;
  float b = a * log_f32(theta);
  return exp_f32(-b);
}

// Scaled RoPE inverse frequency: the unscaled one divided by a per-pair divisor (linear scaling,
// Llama 3 smoothing, GGUF rope_freqs), one correctly rounded division. A divisor of 1 is exact,
// so an unscaled model gets the same bits as rope_inv_freq_f32; divisors >= 1 keep the result in
// (0, 1] and with it every angle inside the sin/cos domain (|angle| <= pos <= 2^24).
ATOMA_HD float rope_scaled_inv_freq_f32(uint32_t i, uint32_t d, float theta, float divisor) {
  return rope_inv_freq_f32(i, d, theta) / divisor;
}

// Whether a RoPE frequency divisor is acceptable: finite and >= 1 (NaN fails both tests).
ATOMA_HD bool rope_divisor_ok(float divisor) { return divisor >= 1.0f && divisor <= 3.4028234663852886e38f; }

// RoPE angle: one binary32 multiply; pos <= 2^24 is exact as a float.
ATOMA_HD float rope_angle_f32(uint32_t pos, float inv_freq) { return (float)pos * inv_freq; }

}  // namespace atoma::canon
