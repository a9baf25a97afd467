// Exhaustive proof that exp_f32, log_f32, tanh_f32 (all 2^32 inputs) and sin_f32, cos_f32 (all
// inputs with |x| <= 2^24, NaN outside) in native/canon/math.h are correctly rounded.
//
// Reference, independent of math.h's algorithms: table-driven double-double evaluations whose
// tables come from libquadmath (113-bit) at start-up, with a relative error near 2^-100. A
// result is accepted when the whole interval ref * (1 +- 2^-80) lies strictly inside the
// rounding interval of the returned float. Anything else goes to libquadmath itself (accepted
// with a 2^-100 margin); what quad cannot settle is reported as undecided, what it contradicts
// as a mismatch. Every 1024th stage-1 reference is also compared against quad, which checks the
// reference's own error bound. Odd/even functions are checked on x >= 0 against the reference
// and on x < 0 by the exact symmetry of correct rounding (f(-x) == -f(x) bit for bit; cos even).
//
// Build and run: native/test/run-exhaustive.sh [exp|log|tanh|sincos|all] [threads] [stride]
#include <quadmath.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "canon/dd.h"
#include "canon/math.h"

using namespace atoma::canon;
typedef __float128 q128;

namespace {

constexpr double kStage1Margin = 0x1p-80;
constexpr double kQuadMargin = 0x1p-100;

dd dd_of(q128 v) {
  double h = (double)v;
  return {h, (double)(v - (q128)h)};
}
q128 q_of(dd v) { return (q128)v.hi + (q128)v.lo; }

// ---- reference tables (from libquadmath) ----
constexpr int kExpNMin = -104 * 256 - 2, kExpNMax = 89 * 256 + 2;
std::vector<dd> g_exp;    // exp(n/256)
std::vector<dd> g_expm1;  // expm1(n/256)
std::vector<dd> g_log;    // log(0.75 + j/2^14), j in [0, 12288]
std::vector<dd> g_sin, g_cos;  // sin, cos of j/256, j in [-256, 256]
dd g_ln2;
dd g_inv_fact[12];  // 1/n!
dd g_third;
q128 g_pio2_q[2];  // pi/2 = q[0] + q[1] to about 2^-226
double g_two_over_pi;

void init_tables() {
  g_exp.resize(kExpNMax - kExpNMin + 1);
  g_expm1.resize(kExpNMax - kExpNMin + 1);
  for (int n = kExpNMin; n <= kExpNMax; ++n) {
    g_exp[n - kExpNMin] = dd_of(expq((q128)n / 256));
    g_expm1[n - kExpNMin] = dd_of(expm1q((q128)n / 256));
  }
  g_log.resize(12289);
  for (int j = 0; j <= 12288; ++j) g_log[j] = dd_of(logq((q128)0.75 + (q128)j / 16384));
  g_sin.resize(513);
  g_cos.resize(513);
  for (int j = -256; j <= 256; ++j) {
    g_sin[j + 256] = dd_of(sinq((q128)j / 256));
    g_cos[j + 256] = dd_of(cosq((q128)j / 256));
  }
  g_ln2 = dd_of(logq((q128)2));
  q128 f = 1;
  for (int n = 0; n < 12; ++n) {
    if (n > 0) f *= n;
    g_inv_fact[n] = dd_of(1 / f);
  }
  g_third = dd_of((q128)1 / 3);
  // pi/2 = q0 + q1 + O(2^-228): q0 the quad nearest to pi/2, q1 the quad nearest to the rest
  // (both from a 500-bit Machin evaluation of pi); q0 must equal libquadmath's M_PI_2q.
  g_pio2_q[0] = strtoflt128("0x1.921fb54442d18469898cc51701b8p0", nullptr);
  g_pio2_q[1] = strtoflt128("0x1.cd129024e088a67cc74020bbea64p-115", nullptr);
  if (g_pio2_q[0] != M_PI_2q) {
    std::printf("pi/2 constant disagrees with M_PI_2q\n");
    std::exit(2);
  }
  g_two_over_pi = (double)(1 / M_PI_2q);
}

// expm1(f) for |f| <= 2^-9 + 2^-30: Taylor to f^11, the tail from f^6 in double.
dd expm1_small(double f) {
  double w = g_inv_fact[11].hi;
  for (int n = 10; n >= 6; --n) w = std::fma(w, f, g_inv_fact[n].hi);
  dd p = dd_add_d(g_inv_fact[5], w * f);
  for (int n = 4; n >= 1; --n) p = dd_add(dd_mul_d(p, f), g_inv_fact[n]);
  return dd_mul_d(p, f);
}

// ---- reference results ----
struct Ref {
  enum Kind { kValue, kExact, kNaN } kind;
  dd v;           // kValue
  uint32_t bits;  // kExact
};
Ref ref_value(dd v) { return {Ref::kValue, v, 0}; }
Ref ref_exact(float f) { return {Ref::kExact, {0, 0}, f32_bits(f)}; }
Ref ref_nan() { return {Ref::kNaN, {0, 0}, 0}; }

Ref ref_exp(float x) {
  if (std::isnan(x)) return ref_nan();
  if (x >= 89.0f) return ref_exact(INFINITY);  // exp(89) > 2^128
  if (x <= -104.0f) return ref_exact(0.0f);    // exp(-104) < 2^-150
  double n = std::nearbyint((double)x * 256);
  double f = (double)x - n / 256;  // exact
  dd e = dd_add_d(expm1_small(f), 1.0);
  return ref_value(dd_mul(g_exp[(int)n - kExpNMin], e));
}

Ref ref_log(float x) {
  if (std::isnan(x) || x < 0) return ref_nan();
  if (x == 0) return ref_exact(-INFINITY);
  if (std::isinf(x)) return ref_exact(INFINITY);
  int ex;
  double m = 2 * std::frexp((double)x, &ex);
  double e = ex - 1;
  if (m >= 1.5) {
    m /= 2;
    e += 1;
  }
  int j = (int)std::nearbyint((m - 0.75) * 16384);
  double c = 0.75 + j / 16384.0;
  dd t = dd_div_d(dd_from(m - c), c);  // |t| < 2^-14.5
  double th = t.hi;
  double w = std::fma(std::fma(std::fma(-1.0 / 8, th, 1.0 / 7), th, -1.0 / 6), th, 1.0 / 5);
  dd p = dd_add_d(dd_from(-0.25), w * th);
  p = dd_add(dd_mul(p, t), g_third);
  p = dd_add_d(dd_mul(p, t), -0.5);
  p = dd_add_d(dd_mul(p, t), 1.0);
  dd l1p = dd_mul(p, t);
  dd r = dd_add(dd_mul_d(g_ln2, e), g_log[j]);
  return ref_value(dd_add(r, l1p));
}

// x >= 0 only (negative x is covered by symmetry).
Ref ref_tanh(float x) {
  if (std::isnan(x)) return ref_nan();
  if (x == 0) return ref_exact(x);
  if (x >= 10.0f) return ref_exact(1.0f);  // 1 - tanh(10) < 2^-27 < 2^-25 (half ulp below 1)
  double y = 2.0 * x;
  double n = std::nearbyint(y * 256);
  double f = y - n / 256;
  dd em = expm1_small(f);
  if (n != 0) {
    int i = (int)n - kExpNMin;
    em = dd_add(g_expm1[i], dd_mul(g_exp[i], em));  // expm1(a+b) = expm1(a) + e^a expm1(b)
  }
  return ref_value(dd_div(em, dd_add_d(em, 2.0)));
}

// sin and cos of 0 <= x <= 2^24 (one reduction for both).
void ref_sincos(float x, dd* s_out, dd* c_out) {
  double k = std::nearbyint((double)x * g_two_over_pi);
  dd r;
  if (k == 0) {
    r = dd_from(x);
  } else {
    // Quad with fma: x - k*P0 has one rounding (2^-113 relative to r), k*P1 < 2^-88.
    q128 rq = fmaq(-(q128)k, g_pio2_q[0], (q128)x) - (q128)k * g_pio2_q[1];
    r = dd_of(rq);
  }
  int j = (int)std::nearbyint(r.hi * 256);
  dd f = dd_add_d(r, -j / 256.0);
  dd f2 = dd_mul(f, f);
  double z = f2.hi;
  // sin f = f (1 - f2/6 + f2^2/120 - ...), cos f = 1 - f2/2 + f2^2/24 - ...
  double ws = std::fma(std::fma(-g_inv_fact[11].hi, z, g_inv_fact[9].hi), z, -g_inv_fact[7].hi);
  dd ps = dd_add_d(g_inv_fact[5], ws * z);
  ps = dd_sub(dd_mul(ps, f2), g_inv_fact[3]);
  ps = dd_add_d(dd_mul(ps, f2), 1.0);
  dd sf = dd_mul(ps, f);
  double wc = std::fma(std::fma(-g_inv_fact[10].hi, z, g_inv_fact[8].hi), z, -g_inv_fact[6].hi);
  dd pc = dd_add_d(g_inv_fact[4], wc * z);
  pc = dd_sub(dd_mul(pc, f2), g_inv_fact[2]);
  dd cf = dd_add_d(dd_mul(pc, f2), 1.0);
  dd sc = g_sin[j + 256], cc = g_cos[j + 256];
  dd sr = dd_add(dd_mul(sc, cf), dd_mul(cc, sf));
  dd cr = dd_sub(dd_mul(cc, cf), dd_mul(sc, sf));
  switch ((int64_t)k & 3) {
    case 0: *s_out = sr; *c_out = cr; break;
    case 1: *s_out = cr; *c_out = dd_neg(sr); break;
    case 2: *s_out = dd_neg(sr); *c_out = dd_neg(cr); break;
    default: *s_out = dd_neg(cr); *c_out = sr; break;
  }
}

// ---- rounding-interval checks ----
// Is |v| (sign given by the sign of v) strictly inside the rounding interval of r, with a
// relative margin? T is double (hi, lo) or quad (lo = 0).
template <class T>
bool inside(T hi, T lo, float r, double margin) {
  if (hi < 0) {
    hi = -hi;
    lo = -lo;
    r = -r;
  }
  uint32_t b = f32_bits(r);
  if (std::isnan(r) || (b >> 31)) return false;
  T m = (T)margin * hi;
  if (b != 0) {
    T ml = (b == 0x7f800000u) ? (T)0x1.ffffffp127 : ((T)r + (T)bits_f32(b - 1)) / 2;
    if (!((hi - ml) + lo > m)) return false;
  }
  if (b != 0x7f800000u) {
    T mu = (b == 0x7f7fffffu) ? (T)0x1.ffffffp127 : ((T)r + (T)bits_f32(b + 1)) / 2;
    if (!((mu - hi) - lo > m)) return false;
  }
  return true;
}

struct Stats {
  std::atomic<uint64_t> checked{0}, stage2{0}, mismatch{0}, undecided{0}, sym_mismatch{0};
  std::atomic<uint64_t> ref_samples{0}, ref_bad{0};
  std::atomic<int64_t> ref_worst_bits{1000};  // min over samples of -log2(rel error)
};

std::mutex g_print_mu;
int g_printed = 0;

void report(const char* fn, const char* what, float x, float got, float want) {
  std::lock_guard<std::mutex> lock(g_print_mu);
  if (g_printed++ < 40)
    std::printf("  %s %s: x=%a (0x%08x) got %a (0x%08x) want %a (0x%08x)\n", fn, what, x,
                f32_bits(x), got, f32_bits(got), want, f32_bits(want));
}

// Decide one input: ref from stage 1, quad() the 113-bit fallback.
void verify(const char* fn, float x, float got, const Ref& ref, q128 (*quad)(q128), Stats& st,
            bool sample_ref) {
  st.checked.fetch_add(1, std::memory_order_relaxed);
  if (ref.kind == Ref::kNaN) {
    if (!std::isnan(got)) {
      st.mismatch++;
      report(fn, "expected NaN", x, got, NAN);
    }
    return;
  }
  if (ref.kind == Ref::kExact) {
    if (f32_bits(got) != ref.bits) {
      st.mismatch++;
      report(fn, "exact", x, got, bits_f32(ref.bits));
    }
    return;
  }
  if (sample_ref) {
    q128 q = quad((q128)x);
    q128 d = fabsq((q_of(ref.v) - q) / q);
    int64_t bits = d == 0 ? 200 : (int64_t)(-log2q(d));
    st.ref_samples++;
    if (d > (q128)0x1p-90) st.ref_bad++;
    int64_t cur = st.ref_worst_bits.load();
    while (bits < cur && !st.ref_worst_bits.compare_exchange_weak(cur, bits)) {
    }
  }
  if (inside<double>(ref.v.hi, ref.v.lo, got, kStage1Margin)) return;
  st.stage2++;
  q128 q = quad((q128)x);
  if (inside<q128>(q, 0, got, kQuadMargin)) return;
  float want = (float)q;
  if (inside<q128>(q, 0, want, kQuadMargin)) {
    st.mismatch++;
    report(fn, "mismatch", x, got, want);
  } else {
    st.undecided++;
    report(fn, "undecided (quad too close to a midpoint)", x, got, want);
  }
}

q128 q_exp(q128 x) { return expq(x); }
q128 q_log(q128 x) { return logq(x); }
q128 q_tanh(q128 x) { return tanhq(x); }
q128 q_sin(q128 x) { return sinq(x); }
q128 q_cos(q128 x) { return cosq(x); }

void sym_check(const char* fn, float x, float pos, float neg, bool odd, Stats& st) {
  st.checked.fetch_add(1, std::memory_order_relaxed);
  bool ok = std::isnan(pos) ? std::isnan(neg)
                            : f32_bits(neg) == (f32_bits(pos) ^ (odd ? 0x80000000u : 0u));
  if (!ok) {
    st.sym_mismatch++;
    report(fn, "symmetry", x, neg, pos);
  }
}

// Runs body(u) for u = 0, stride, 2*stride, ... < n, split into blocks over threads.
void parallel_range(uint64_t n, uint64_t stride, int threads,
                    const std::function<void(uint64_t)>& body) {
  const uint64_t block = 1u << 16;
  const uint64_t count = (n + stride - 1) / stride;
  std::atomic<uint64_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (;;) {
        uint64_t b0 = next.fetch_add(block);
        if (b0 >= count) break;
        uint64_t b1 = b0 + block < count ? b0 + block : count;
        for (uint64_t i = b0; i < b1; ++i) body(i * stride);
      }
    });
  for (auto& th : pool) th.join();
}

void print_stats(const char* fn, const Stats& st, double secs) {
  std::printf(
      "%-5s checked %llu  mismatches %llu  undecided %llu  symmetry-mismatches %llu  "
      "quad-fallbacks %llu  ref-samples %llu (worst ref error 2^-%lld, >2^-90: %llu)  %.1f s\n",
      fn, (unsigned long long)st.checked.load(), (unsigned long long)st.mismatch.load(),
      (unsigned long long)st.undecided.load(), (unsigned long long)st.sym_mismatch.load(),
      (unsigned long long)st.stage2.load(), (unsigned long long)st.ref_samples.load(),
      (long long)st.ref_worst_bits.load(), (unsigned long long)st.ref_bad.load(), secs);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string which = argc > 1 ? argv[1] : "all";
  int threads = argc > 2 ? std::atoi(argv[2]) : (int)std::thread::hardware_concurrency();
  uint64_t stride = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1;
  if (threads < 1) threads = 1;
  if (stride < 1) stride = 1;
  init_tables();
  std::printf("math_exhaustive: %s, %d threads, stride %llu\n", which.c_str(), threads,
              (unsigned long long)stride);
  uint64_t bad = 0;
  auto timed = [&](const char* fn, Stats& st, uint64_t n, const std::function<void(uint64_t)>& body) {
    auto t0 = std::chrono::steady_clock::now();
    parallel_range(n, stride, threads, body);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    print_stats(fn, st, s);
    bad += st.mismatch + st.undecided + st.sym_mismatch + st.ref_bad;
  };
  auto sample = [](uint64_t u) { return (u & 1023) == 512; };
  if (which == "all" || which == "exp") {
    Stats st;
    timed("exp", st, 1ull << 32, [&](uint64_t u) {
      float x = bits_f32((uint32_t)u);
      verify("exp", x, exp_f32(x), ref_exp(x), q_exp, st, sample(u));
    });
  }
  if (which == "all" || which == "log") {
    Stats st;
    timed("log", st, 1ull << 32, [&](uint64_t u) {
      float x = bits_f32((uint32_t)u);
      verify("log", x, log_f32(x), ref_log(x), q_log, st, sample(u));
    });
  }
  if (which == "all" || which == "tanh") {
    Stats st;
    timed("tanh", st, 1ull << 31, [&](uint64_t u) {
      float x = bits_f32((uint32_t)u);
      float y = tanh_f32(x);
      verify("tanh", x, y, ref_tanh(x), q_tanh, st, sample(u));
      sym_check("tanh", -x, y, tanh_f32(-x), true, st);
    });
  }
  if (which == "all" || which == "sincos") {
    Stats ss, sc;
    auto t0 = std::chrono::steady_clock::now();
    parallel_range(1ull << 31, stride, threads, [&](uint64_t u) {
      float x = bits_f32((uint32_t)u);
      float s = sin_f32(x), c = cos_f32(x);
      if (!(x <= kTrigDomainMax)) {  // outside the domain, inf, NaN: NaN
        verify("sin", x, s, ref_nan(), q_sin, ss, false);
        verify("cos", x, c, ref_nan(), q_cos, sc, false);
      } else {
        dd rs, rc;
        ref_sincos(x, &rs, &rc);
        verify("sin", x, s, ref_value(rs), q_sin, ss, sample(u));
        verify("cos", x, c, ref_value(rc), q_cos, sc, sample(u));
      }
      sym_check("sin", -x, s, sin_f32(-x), true, ss);
      sym_check("cos", -x, c, cos_f32(-x), false, sc);
    });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    print_stats("sin", ss, s);
    print_stats("cos", sc, s);
    bad += ss.mismatch + ss.undecided + ss.sym_mismatch + ss.ref_bad;
    bad += sc.mismatch + sc.undecided + sc.sym_mismatch + sc.ref_bad;
  }
  std::printf("TOTAL failures: %llu\n", (unsigned long long)bad);
  return bad == 0 ? 0 : 1;
}
