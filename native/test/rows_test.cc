// Row kernels and attention: every ISA path x thread counts 1..3 x batch splits must give the
// bytes of an independent reference written from DETERMINISM.md sections 3-5 with the
// canon/reduce.h forms, and stay close to a float64 reference.
//
// Build (one line):
//   g++ -std=c++17 -O2 -ffp-contract=off -Inative native/test/rows_test.cc native/cpu/rows*.cc
//       native/cpu/attention.cc native/cpu/isa.cc native/cpu/thread_pool.cc -pthread -o /tmp/rows_test
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <functional>
#include <string>
#include <vector>

#include "canon/math.h"
#include "canon/reduce.h"
#include "core/error.h"
#include "cpu/attention.h"
#include "cpu/isa.h"
#include "cpu/rows.h"
#include "cpu/rows_kernels.h"
#include "cpu/thread_pool.h"

using namespace atoma;
using canon::f32_bits;

namespace {

int g_failures = 0;
int g_checks = 0;

#define EXPECT(cond, ...)                                          \
  do {                                                             \
    ++g_checks;                                                    \
    if (!(cond)) {                                                 \
      if (++g_failures <= 40) {                                    \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);       \
        fprintf(stderr, __VA_ARGS__);                              \
        fprintf(stderr, "\n");                                     \
      }                                                            \
    }                                                              \
  } while (0)

// Same bits, except that any NaN equals any NaN (digests canonicalise NaN, section 2).
bool same(float a, float b) { return f32_bits(a) == f32_bits(b) || (a != a && b != b); }

template <class T>
bool same_vec(const std::vector<T>& a, const std::vector<T>& b, size_t* where = nullptr) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    bool eq;
    if constexpr (std::is_same_v<T, float>) eq = same(a[i], b[i]);
    else eq = a[i] == b[i];
    if (!eq) {
      if (where) *where = i;
      return false;
    }
  }
  return true;
}

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s += 0x9E3779B97F4A7C15ull;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * 0x1p-24f * 2.0f - 1.0f; }  // [-1, 1)
};

std::vector<float> random_vec(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = r.uniform() * scale;
  return v;
}

// Random values with special ones sprinkled in: signed zeros, subnormals, infinities, NaN.
std::vector<float> special_vec(size_t n, uint64_t seed, bool with_nan_inf) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) {
    uint64_t k = r.next() % 16;
    if (k == 0) x = 0.0f;
    else if (k == 1) x = -0.0f;
    else if (k == 2) x = canon::bits_f32(static_cast<uint32_t>(r.next() % 0x7FFFFF) | ((r.next() & 1) ? 0x80000000u : 0u));
    else if (k == 3 && with_nan_inf) x = (r.next() & 1) ? INFINITY : -INFINITY;
    else if (k == 4 && with_nan_inf) x = NAN;
    else x = r.uniform() * 1e3f;
  }
  return v;
}

struct Config {
  Isa isa;
  size_t threads;
};

std::vector<Config> configs() {
  std::vector<Config> out;
  for (Isa i : available_isas())
    for (size_t t : {1, 2, 3}) out.push_back({i, t});
  return out;
}

// Runs fn under every (ISA, thread count) and checks each result against ref, bit for bit.
template <class T>
void all_paths(const std::string& what, const std::vector<T>& ref, const std::function<std::vector<T>()>& fn) {
  for (const Config& c : configs()) {
    set_active_isa(c.isa);
    set_thread_count(c.threads);
    std::vector<T> got = fn();
    size_t at = 0;
    EXPECT(same_vec(got, ref, &at), "%s: isa=%s threads=%zu differs from the reference at %zu", what.c_str(),
           isa_name(c.isa), c.threads, at);
  }
}

const int64_t kSizes[] = {0, 1, 2, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 1000, 4097};

// ---------------- the table entries, directly against canon/reduce.h ----------------

std::vector<const rows_detail::Kernels*> tables() {
  std::vector<const rows_detail::Kernels*> t = {&rows_detail::scalar_kernels()};
#if defined(__x86_64__)
  if (isa_supported(Isa::Avx2)) t.push_back(&rows_detail::avx2_kernels());
  if (isa_supported(Isa::Avx512)) t.push_back(&rows_detail::avx512_kernels());
#endif
  return t;
}

void test_table_reductions() {
  uint64_t seed = 1;
  for (int64_t n : kSizes) {
    for (int variant = 0; variant < 6; ++variant) {
      std::vector<float> x;
      if (variant == 0) x = random_vec(n, seed++);
      else if (variant == 1) x = special_vec(n, seed++, false);
      else if (variant == 2) x = special_vec(n, seed++, true);
      else if (variant == 3) {  // zero maxima of both signs: the first one must be kept
        x = random_vec(n, seed++);
        for (auto& v : x) v = v > 0 ? -v : v;
        Rng r(seed++);
        for (auto& v : x)
          if (r.next() % 5 == 0) v = (r.next() & 1) ? 0.0f : -0.0f;
      } else if (variant == 4) {
        x.assign(n, NAN);
        if (n > 3) x[n / 2] = -INFINITY;
      } else {
        x = random_vec(n, seed++);
        for (auto& v : x) v = (v > 0.5f) ? 0.25f : v;  // many ties at the maximum
      }
      const float rs = canon::lane_sum(x.data(), n), rq = canon::lane_sumsq(x.data(), n);
      const float rm = canon::row_max(x.data(), n);
      const int64_t ra = canon::row_argmax(x.data(), n);
      for (const auto* t : tables()) {
        EXPECT(same(t->sum(x.data(), n), rs), "sum n=%lld variant %d", (long long)n, variant);
        EXPECT(same(t->sumsq(x.data(), n), rq), "sumsq n=%lld variant %d", (long long)n, variant);
        EXPECT(same(t->max(x.data(), n), rm), "max n=%lld variant %d: %08x vs %08x", (long long)n, variant,
               f32_bits(t->max(x.data(), n)), f32_bits(rm));
        EXPECT(t->argmax(x.data(), n) == ra, "argmax n=%lld variant %d", (long long)n, variant);
      }
    }
  }
  // Signs of zero through the fold: only -0 inputs sum to +0 (p starts at +0).
  std::vector<float> negz(70, -0.0f);
  for (const auto* t : tables()) {
    for (int64_t n : {1, 31, 32, 70}) {
      EXPECT(f32_bits(t->sum(negz.data(), n)) == 0u, "sum of -0 must be +0");
      EXPECT(same(t->max(negz.data(), n), -0.0f), "max of -0 row must be -0");
    }
  }
}

void test_table_attention_parts() {
  uint64_t seed = 100;
  for (int64_t dim : {1, 3, 16, 31, 64, 100, 128, 257, 600}) {
    for (int64_t keys : {1, 5, 16, 33, 64, 65, 255, 256, 257, 700}) {
      const int64_t stride = dim + 3;  // rows of a wider [kv, heads, dim] tensor
      std::vector<float> q = special_vec(dim, seed++, false), kv = random_vec(keys * stride, seed++);
      std::vector<float> p = special_vec(keys, seed++, false);
      for (auto& v : q) v = v / 1e3f;
      std::vector<float> rs(keys), rm(dim);
      for (int64_t j = 0; j < keys; ++j) {
        float d = canon::chunked_dot(q.data(), 1, kv.data() + j * stride, 1, dim);
        rs[j] = d * 0.125f;
      }
      for (int64_t d = 0; d < dim; ++d) rm[d] = canon::chunked_dot(p.data(), 1, kv.data() + d, stride, keys);
      for (const auto* t : tables()) {
        std::vector<float> gs(keys), gm(dim);
        t->scores(q.data(), kv.data(), stride, keys, dim, 0.125f, gs.data());
        t->mix(p.data(), kv.data(), stride, keys, dim, gm.data());
        EXPECT(same_vec(gs, rs), "scores dim=%lld keys=%lld", (long long)dim, (long long)keys);
        EXPECT(same_vec(gm, rm), "mix dim=%lld keys=%lld", (long long)dim, (long long)keys);
      }
    }
  }
}

// ---------------- public row kernels ----------------

void test_sum_and_elementwise() {
  uint64_t seed = 1000;
  for (int64_t n : kSizes) {
    std::vector<float> x = special_vec(n, seed++, true);
    std::vector<float> ref = {canon::lane_sum(x.data(), n)};
    all_paths<float>("sum n=" + std::to_string(n), ref, [&] { return std::vector<float>{atoma::sum(x.data(), n)}; });

    std::vector<float> a = special_vec(n, seed++, true), b = special_vec(n, seed++, true);
    std::vector<float> radd(n), rmul(n);
    for (int64_t i = 0; i < n; ++i) {
      radd[i] = a[i] + b[i];
      rmul[i] = a[i] * b[i];
    }
    all_paths<float>("add n=" + std::to_string(n), radd, [&] {
      std::vector<float> y(n);
      atoma::add(a.data(), b.data(), y.data(), n);
      return y;
    });
    all_paths<float>("mul n=" + std::to_string(n), rmul, [&] {
      std::vector<float> y(a);  // in place: y aliases a
      atoma::mul(y.data(), b.data(), y.data(), n);
      return y;
    });
  }
  // One long vector crosses many task blocks.
  const int64_t big = 300001;
  std::vector<float> a = random_vec(big, 7), b = random_vec(big, 8), ref(big);
  for (int64_t i = 0; i < big; ++i) ref[i] = a[i] + b[i];
  all_paths<float>("add big", ref, [&] {
    std::vector<float> y(big);
    atoma::add(a.data(), b.data(), y.data(), big);
    return y;
  });
}

// A batch of rows computed together, and each row computed on its own, both equal the reference.
void row_batch_check(const std::string& what, int64_t rows, int64_t n, const std::vector<float>& ref,
                     const std::function<void(const float* in_off, float* out, int64_t rows, int64_t first_row)>& run,
                     int64_t out_n) {
  all_paths<float>(what + " batch", ref, [&] {
    std::vector<float> y(rows * out_n);
    run(nullptr, y.data(), rows, 0);
    return y;
  });
  all_paths<float>(what + " one by one", ref, [&] {
    std::vector<float> y(rows * out_n);
    for (int64_t r = 0; r < rows; ++r) run(nullptr, y.data() + r * out_n, 1, r);
    return y;
  });
  (void)n;
}

void test_rows() {
  uint64_t seed = 2000;
  for (int64_t n : kSizes) {
    for (int64_t rows : {0, 1, 3, 7}) {
      const std::string tag = " rows=" + std::to_string(rows) + " n=" + std::to_string(n);
      std::vector<float> x = random_vec(rows * n, seed++, 4.0f), w = random_vec(n, seed++);
      std::vector<float> xs = special_vec(rows * n, seed++, true);

      // row_sums (with NaN/inf/-0/subnormals)
      std::vector<float> r_sums(rows);
      for (int64_t r = 0; r < rows; ++r) r_sums[r] = canon::lane_sum(xs.data() + r * n, n);
      row_batch_check("row_sums" + tag, rows, n, r_sums, [&](const float*, float* out, int64_t nr, int64_t r0) {
        atoma::row_sums(xs.data() + r0 * n, nr, n, out);
      }, 1);

      // add_rows / mul_rows
      std::vector<float> r_addr(rows * n), r_mulr(rows * n);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < n; ++i) {
          r_addr[r * n + i] = xs[r * n + i] + w[i];
          r_mulr[r * n + i] = xs[r * n + i] * w[i];
        }
      row_batch_check("add_rows" + tag, rows, n, r_addr, [&](const float*, float* out, int64_t nr, int64_t r0) {
        atoma::add_rows(xs.data() + r0 * n, nr, n, w.data(), out);
      }, n);
      row_batch_check("mul_rows" + tag, rows, n, r_mulr, [&](const float*, float* out, int64_t nr, int64_t r0) {
        atoma::mul_rows(xs.data() + r0 * n, nr, n, w.data(), out);
      }, n);

      // rmsnorm, written from section 5
      const float eps = 1e-6f;
      std::vector<float> r_rms(rows * n);
      for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x.data() + r * n;
        float ms = canon::lane_sumsq(xr, n) / static_cast<float>(n);
        float rr = 1.0f / sqrtf(ms + eps);
        for (int64_t i = 0; i < n; ++i) {
          float t = xr[i] * rr;
          r_rms[r * n + i] = t * w[i];
        }
      }
      row_batch_check("rmsnorm" + tag, rows, n, r_rms, [&](const float*, float* out, int64_t nr, int64_t r0) {
        atoma::rmsnorm(x.data() + r0 * n, w.data(), out, nr, n, eps);
      }, n);

      // softmax, written from section 5
      std::vector<float> r_sm(rows * n);
      for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x.data() + r * n;
        float* yr = r_sm.data() + r * n;
        float m = canon::row_max(xr, n);
        for (int64_t i = 0; i < n; ++i) yr[i] = canon::exp_f32(xr[i] - m);
        float s = canon::lane_sum(yr, n);
        for (int64_t i = 0; i < n; ++i) yr[i] = yr[i] / s;
      }
      row_batch_check("softmax" + tag, rows, n, r_sm, [&](const float*, float* out, int64_t nr, int64_t r0) {
        atoma::softmax(x.data() + r0 * n, out, nr, n);
      }, n);

      // argmax_rows (with NaN/inf/-0)
      std::vector<int32_t> r_arg(rows);
      for (int64_t r = 0; r < rows; ++r) r_arg[r] = static_cast<int32_t>(canon::row_argmax(xs.data() + r * n, n));
      all_paths<int32_t>("argmax_rows" + tag, r_arg, [&] {
        std::vector<int32_t> o(rows, -7);
        atoma::argmax_rows(xs.data(), rows, n, o.data());
        return o;
      });
      all_paths<int32_t>("argmax_rows one by one" + tag, r_arg, [&] {
        std::vector<int32_t> o(rows, -7);
        for (int64_t r = 0; r < rows; ++r) atoma::argmax_rows(xs.data() + r * n, 1, n, o.data() + r);
        return o;
      });

      // Accuracy against float64 (only random rows; all ISAs already proved identical).
      if (rows > 0 && n > 0) {
        set_active_isa(best_isa());
        double worst_rms = 0, worst_sm = 0;
        for (int64_t r = 0; r < rows; ++r) {
          const float* xr = x.data() + r * n;
          double ss = 0, mx = -INFINITY, se = 0;
          for (int64_t i = 0; i < n; ++i) { ss += (double)xr[i] * xr[i]; mx = fmax(mx, xr[i]); }
          double rr = 1.0 / sqrt(ss / n + eps);
          for (int64_t i = 0; i < n; ++i) se += exp((double)xr[i] - mx);
          for (int64_t i = 0; i < n; ++i) {
            double yr = (double)xr[i] * rr * w[i];
            if (yr != 0) worst_rms = fmax(worst_rms, fabs(r_rms[r * n + i] - yr) / fabs(yr));
            double ys = exp((double)xr[i] - mx) / se;
            worst_sm = fmax(worst_sm, fabs(r_sm[r * n + i] - ys) / ys);
          }
        }
        EXPECT(worst_rms <= 2e-6, "rmsnorm accuracy%s: max rel err %.3g", tag.c_str(), worst_rms);
        EXPECT(worst_sm <= 4e-6, "softmax accuracy%s: max rel err %.3g", tag.c_str(), worst_sm);
        static double g_rms = 0, g_sm = 0;
        if (worst_rms > g_rms || worst_sm > g_sm) {
          g_rms = fmax(g_rms, worst_rms);
          g_sm = fmax(g_sm, worst_sm);
        }
        if (n == 4097 && rows == 7) printf("  accuracy: rmsnorm max rel err %.3g, softmax max rel err %.3g\n", g_rms, g_sm);
      }
    }
  }
}

void test_unary() {
  std::vector<float> x = special_vec(1003, 3000, true);
  for (auto& v : x) v = (fabsf(v) > 100.0f && fabsf(v) != INFINITY) ? v / 100.0f : v;
  struct Op { Unary op; float (*f)(float); const char* name; };
  const Op ops[] = {{Unary::Exp, canon::exp_f32, "exp"},   {Unary::Log, canon::log_f32, "log"},
                    {Unary::Tanh, canon::tanh_f32, "tanh"}, {Unary::Sin, canon::sin_f32, "sin"},
                    {Unary::Cos, canon::cos_f32, "cos"},   {Unary::Silu, canon::silu_f32, "silu"},
                    {Unary::Gelu, canon::gelu_f32, "gelu"}};
  for (const Op& o : ops) {
    std::vector<float> ref(x.size());
    for (size_t i = 0; i < x.size(); ++i) ref[i] = o.f(x[i]);
    all_paths<float>(std::string("unary ") + o.name, ref, [&] {
      std::vector<float> y(x.size());
      atoma::unary(o.op, x.data(), y.data(), static_cast<int64_t>(x.size()));
      return y;
    });
  }
}

void test_rope() {
  uint64_t seed = 4000;
  struct Case { int64_t tokens, heads, head_dim, rot; float theta; };
  const Case cases[] = {{1, 1, 2, 2, 10000.f}, {5, 3, 64, 64, 10000.f}, {7, 2, 96, 32, 500000.f},
                        {33, 4, 128, 128, 1e6f}, {3, 2, 17, 16, 10000.f}, {4, 1, 8, 0, 10000.f}};
  for (const Case& c : cases) {
    for (bool neox : {false, true}) {
      const int64_t row = c.heads * c.head_dim;
      std::vector<float> x = random_vec(c.tokens * row, seed++);
      std::vector<int32_t> pos(c.tokens);
      Rng r(seed++);
      for (auto& p : pos) p = static_cast<int32_t>(r.next() % 40000);
      pos[0] = 0;
      // Reference straight from the documented op order.
      const int64_t half = c.rot / 2;
      std::vector<float> ref = x;
      for (int64_t t = 0; t < c.tokens; ++t)
        for (int64_t h = 0; h < c.heads; ++h)
          for (int64_t i = 0; i < half; ++i) {
            float q = static_cast<float>(2 * i) / static_cast<float>(c.rot);
            float inv = canon::exp_f32(-(q * canon::log_f32(c.theta)));
            float angle = static_cast<float>(pos[t]) * inv;
            float cs = canon::cos_f32(angle), sn = canon::sin_f32(angle);
            int64_t i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
            float* xh = ref.data() + t * row + h * c.head_dim;
            float x0 = xh[i0], x1 = xh[i1];
            float a = x0 * cs, b = x1 * sn, d = x0 * sn, e = x1 * cs;
            xh[i0] = a - b;
            xh[i1] = d + e;
          }
      const std::string tag = "rope tokens=" + std::to_string(c.tokens) + " head_dim=" + std::to_string(c.head_dim) +
                              " rot=" + std::to_string(c.rot) + (neox ? " neox" : " gguf");
      all_paths<float>(tag, ref, [&] {
        std::vector<float> y = x;
        atoma::rope(y.data(), c.tokens, c.heads, c.head_dim, c.rot, pos.data(), c.theta, neox);
        return y;
      });
      all_paths<float>(tag + " one token at a time", ref, [&] {
        std::vector<float> y = x;
        for (int64_t t = 0; t < c.tokens; ++t)
          atoma::rope(y.data() + t * row, 1, c.heads, c.head_dim, c.rot, pos.data() + t, c.theta, neox);
        return y;
      });
    }
  }
}

void test_embedding() {
  const int64_t vocab = 50, dim = 37;
  std::vector<float> table = special_vec(vocab * dim, 5000, true);
  std::vector<int32_t> ids = {0, 49, 3, 3, 17, 0, 48};
  std::vector<float> ref;
  for (int32_t id : ids) ref.insert(ref.end(), table.begin() + id * dim, table.begin() + (id + 1) * dim);
  all_paths<float>("embedding", ref, [&] {
    std::vector<float> y(ids.size() * dim);
    atoma::embedding(table.data(), vocab, dim, ids.data(), static_cast<int64_t>(ids.size()), y.data());
    return y;
  });
  // Many ids: spans several tasks.
  std::vector<int32_t> many(5000);
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<int32_t>((i * 7919) % vocab);
  std::vector<float> ref2;
  for (int32_t id : many) ref2.insert(ref2.end(), table.begin() + id * dim, table.begin() + (id + 1) * dim);
  all_paths<float>("embedding many", ref2, [&] {
    std::vector<float> y(many.size() * dim);
    atoma::embedding(table.data(), vocab, dim, many.data(), static_cast<int64_t>(many.size()), y.data());
    return y;
  });
}

// ---------------- attention ----------------

struct AttnCase { int64_t heads, kv_heads, dim, T; };

// Written from section 5 with the reference forms, one (row, head) at a time.
std::vector<float> attention_ref(const std::vector<float>& q, int64_t n_q, int64_t heads, const std::vector<float>& k,
                                 const std::vector<float>& v, int64_t kv_heads, int64_t dim,
                                 const std::vector<int32_t>& pos) {
  std::vector<float> out(n_q * heads * dim);
  const float scale = 1.0f / sqrtf(static_cast<float>(dim));
  const int64_t group = heads / kv_heads, kvs = kv_heads * dim;
  for (int64_t i = 0; i < n_q; ++i)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t nv = pos[i] + 1, kh = h / group;
      const float* qr = q.data() + (i * heads + h) * dim;
      std::vector<float> p(nv);
      for (int64_t j = 0; j < nv; ++j) {
        float d = canon::chunked_dot(qr, 1, k.data() + j * kvs + kh * dim, 1, dim);
        p[j] = d * scale;
      }
      float m = canon::row_max(p.data(), nv);
      for (auto& e : p) e = canon::exp_f32(e - m);
      float s = canon::lane_sum(p.data(), nv);
      for (auto& e : p) e = e / s;
      for (int64_t d = 0; d < dim; ++d)
        out[(i * heads + h) * dim + d] = canon::chunked_dot(p.data(), 1, v.data() + kh * dim + d, kvs, nv);
    }
  return out;
}

void test_attention() {
  const AttnCase cases[] = {{1, 1, 1, 1},  {4, 2, 64, 33},  {8, 2, 128, 70}, {6, 3, 31, 300},
                            {2, 1, 300, 20}, {4, 4, 17, 600}, {3, 1, 8, 257}};
  uint64_t seed = 6000;
  double worst = 0;
  for (const AttnCase& c : cases) {
    const int64_t T = c.T, qs = c.heads * c.dim, kvs = c.kv_heads * c.dim;
    std::vector<float> q = random_vec(T * qs, seed++, 2.0f), k = random_vec(T * kvs, seed++, 2.0f),
                       v = random_vec(T * kvs, seed++);
    std::vector<int32_t> pos(T);
    for (int64_t i = 0; i < T; ++i) pos[i] = static_cast<int32_t>(i);
    const std::string tag = "attention heads=" + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) +
                            " dim=" + std::to_string(c.dim) + " T=" + std::to_string(T);
    std::vector<float> ref = attention_ref(q, T, c.heads, k, v, c.kv_heads, c.dim, pos);

    all_paths<float>(tag + " prefill", ref, [&] {
      std::vector<float> o(T * qs);
      atoma::attention(q.data(), T, c.heads, k.data(), v.data(), T, c.kv_heads, c.dim, pos.data(), o.data());
      return o;
    });
    // Decode: step t sees a cache of exactly t+1 keys.
    all_paths<float>(tag + " decode steps", ref, [&] {
      std::vector<float> o(T * qs);
      for (int64_t t = 0; t < T; ++t)
        atoma::attention(q.data() + t * qs, 1, c.heads, k.data(), v.data(), t + 1, c.kv_heads, c.dim, pos.data() + t,
                         o.data() + t * qs);
      return o;
    });
    // Rows in another batch (reversed order, a longer cache) give their own bytes unchanged.
    all_paths<float>(tag + " reversed batch", ref, [&] {
      std::vector<float> qr(T * qs), o(T * qs), back(T * qs);
      std::vector<int32_t> pr(T);
      for (int64_t i = 0; i < T; ++i) {
        memcpy(qr.data() + i * qs, q.data() + (T - 1 - i) * qs, qs * sizeof(float));
        pr[i] = pos[T - 1 - i];
      }
      atoma::attention(qr.data(), T, c.heads, k.data(), v.data(), T, c.kv_heads, c.dim, pr.data(), o.data());
      for (int64_t i = 0; i < T; ++i) memcpy(back.data() + i * qs, o.data() + (T - 1 - i) * qs, qs * sizeof(float));
      return back;
    });

    // Accuracy against float64, relative to sum_j p_j |v_j[d]| (the scale of the terms).
    const float scale = 1.0f / sqrtf(static_cast<float>(c.dim));
    const int64_t group = c.heads / c.kv_heads;
    for (int64_t i = 0; i < T; ++i)
      for (int64_t h = 0; h < c.heads; ++h) {
        const int64_t nv = i + 1, kh = h / group;
        std::vector<double> s(nv);
        double mx = -INFINITY, se = 0;
        for (int64_t j = 0; j < nv; ++j) {
          double d = 0;
          for (int64_t e = 0; e < c.dim; ++e) d += (double)q[(i * c.heads + h) * c.dim + e] * k[j * kvs + kh * c.dim + e];
          s[j] = d * scale;
          mx = fmax(mx, s[j]);
        }
        for (auto& e : s) { e = exp(e - mx); se += e; }
        for (int64_t d = 0; d < c.dim; ++d) {
          double o = 0, mag = 0;
          for (int64_t j = 0; j < nv; ++j) {
            o += s[j] / se * v[j * kvs + kh * c.dim + d];
            mag += s[j] / se * fabs(v[j * kvs + kh * c.dim + d]);
          }
          if (mag > 0) worst = fmax(worst, fabs(ref[(i * c.heads + h) * c.dim + d] - o) / mag);
        }
      }
  }
  EXPECT(worst <= 1e-5, "attention accuracy: max error %.3g of sum p|v|", worst);
  printf("  accuracy: attention max |err| / sum_j p_j|v_j| = %.3g\n", worst);
}

// ---------------- errors ----------------

template <class F>
void expect_error(const char* what, const char* code, F f, const char* message_part = nullptr) {
  try {
    f();
    EXPECT(false, "%s: no error thrown (expected %s)", what, code);
  } catch (const Error& e) {
    EXPECT(e.code == code, "%s: code %s, expected %s", what, e.code.c_str(), code);
    if (message_part) EXPECT(strstr(e.what(), message_part) != nullptr, "%s: message '%s' lacks '%s'", what, e.what(), message_part);
  }
}

void test_errors() {
  float buf[64] = {0};
  int32_t ibuf[8] = {0};
  expect_error("sum n<0", "ERR_SHAPE", [&] { atoma::sum(buf, -1); });
  expect_error("row_sums rows<0", "ERR_SHAPE", [&] { atoma::row_sums(buf, -1, 4, buf); });
  expect_error("add n<0", "ERR_SHAPE", [&] { atoma::add(buf, buf, buf, -3); });
  expect_error("mul_rows n<0", "ERR_SHAPE", [&] { atoma::mul_rows(buf, 1, -3, buf, buf); });
  expect_error("rmsnorm overflow", "ERR_SHAPE", [&] { atoma::rmsnorm(buf, buf, buf, INT64_MAX / 2, 4, 1e-6f); });
  expect_error("softmax n<0", "ERR_SHAPE", [&] { atoma::softmax(buf, buf, 1, -1); });
  expect_error("unary n<0", "ERR_SHAPE", [&] { atoma::unary(Unary::Exp, buf, buf, -1); });
  expect_error("rope odd rot", "ERR_SHAPE", [&] { atoma::rope(buf, 1, 1, 8, 3, ibuf, 10000.f, false); });
  expect_error("rope rot>dim", "ERR_SHAPE", [&] { atoma::rope(buf, 1, 1, 8, 10, ibuf, 10000.f, true); });
  int32_t bad_ids[3] = {1, 5, 2};
  expect_error("embedding bad id", "ERR_RANGE", [&] { atoma::embedding(buf, 4, 2, bad_ids, 3, buf); }, "5");
  int32_t neg_id[1] = {-1};
  expect_error("embedding negative id", "ERR_RANGE", [&] { atoma::embedding(buf, 4, 2, neg_id, 1, buf); }, "-1");
  expect_error("argmax n<0", "ERR_SHAPE", [&] { atoma::argmax_rows(buf, 1, -1, ibuf); });
  expect_error("argmax n too big", "ERR_SHAPE", [&] { atoma::argmax_rows(buf, 0, int64_t{1} << 32, ibuf); });
  int32_t p2[1] = {2};
  expect_error("attention pos >= n_kv", "ERR_RANGE", [&] { atoma::attention(buf, 1, 2, buf, buf, 2, 1, 4, p2, buf); });
  int32_t pn[1] = {-1};
  expect_error("attention pos < 0", "ERR_RANGE", [&] { atoma::attention(buf, 1, 2, buf, buf, 2, 1, 4, pn, buf); });
  int32_t p0[1] = {0};
  expect_error("attention heads not multiple", "ERR_SHAPE", [&] { atoma::attention(buf, 1, 3, buf, buf, 2, 2, 4, p0, buf); });
  expect_error("attention kv heads 0", "ERR_SHAPE", [&] { atoma::attention(buf, 1, 2, buf, buf, 2, 0, 4, p0, buf); });
  expect_error("attention dim<0", "ERR_SHAPE", [&] { atoma::attention(buf, 1, 2, buf, buf, 2, 1, -4, p0, buf); });
  // Empty work is fine.
  atoma::attention(nullptr, 0, 2, nullptr, nullptr, 0, 1, 4, nullptr, nullptr);
  atoma::softmax(nullptr, nullptr, 0, 5);
  atoma::rmsnorm(nullptr, nullptr, nullptr, 3, 0, 1e-6f);
}

}  // namespace

int main() {
  printf("rows_test: ISAs:");
  for (Isa i : available_isas()) printf(" %s", isa_name(i));
  printf("\n");
  test_table_reductions();
  test_table_attention_parts();
  test_sum_and_elementwise();
  test_rows();
  test_unary();
  test_rope();
  test_embedding();
  test_attention();
  test_errors();
  printf("rows_test: %d checks, %d failures\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
