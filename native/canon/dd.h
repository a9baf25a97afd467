// Double-double arithmetic (value = hi + lo, |lo| <= ulp(hi)/2) for the slow, rounding-deciding
// paths of the canonical transcendentals. Every operation is built from IEEE double + - * / and
// explicit fma, so CPU and CUDA give the same bits; relative error of each op is about 2^-104.
#pragma once
#include "hd.h"

namespace atoma::canon {

struct dd {
  double hi;
  double lo;
};

// Exact: a + b == s + e (Knuth, no precondition on magnitudes).
ATOMA_HD dd two_sum(double a, double b) {
  double s = a + b;
  double bb = s - a;
  double e = (a - (s - bb)) + (b - bb);
  return {s, e};
}

// Exact when |a| >= |b| (or a == 0).
ATOMA_HD dd fast_two_sum(double a, double b) {
  double s = a + b;
  double e = b - (s - a);
  return {s, e};
}

// Exact product with one fma (no underflow in our ranges).
ATOMA_HD dd two_prod(double a, double b) {
  double p = a * b;
  double e = fma_(a, b, -p);
  return {p, e};
}

ATOMA_HD dd dd_from(double a) { return {a, 0.0}; }

ATOMA_HD dd dd_neg(dd a) { return {-a.hi, -a.lo}; }

ATOMA_HD dd dd_add(dd a, dd b) {
  dd s = two_sum(a.hi, b.hi);
  dd t = two_sum(a.lo, b.lo);
  s.lo = s.lo + t.hi;
  s = fast_two_sum(s.hi, s.lo);
  s.lo = s.lo + t.lo;
  return fast_two_sum(s.hi, s.lo);
}

ATOMA_HD dd dd_sub(dd a, dd b) { return dd_add(a, dd_neg(b)); }

ATOMA_HD dd dd_add_d(dd a, double b) {
  dd s = two_sum(a.hi, b);
  s.lo = s.lo + a.lo;
  return fast_two_sum(s.hi, s.lo);
}

ATOMA_HD dd dd_mul(dd a, dd b) {
  dd p = two_prod(a.hi, b.hi);
  p.lo = fma_(a.hi, b.lo, p.lo);
  p.lo = fma_(a.lo, b.hi, p.lo);
  return fast_two_sum(p.hi, p.lo);
}

ATOMA_HD dd dd_mul_d(dd a, double b) {
  dd p = two_prod(a.hi, b);
  p.lo = fma_(a.lo, b, p.lo);
  return fast_two_sum(p.hi, p.lo);
}

// Long division with two correction steps.
ATOMA_HD dd dd_div(dd a, dd b) {
  double q1 = a.hi / b.hi;
  dd r = dd_sub(a, dd_mul_d(b, q1));
  double q2 = r.hi / b.hi;
  r = dd_sub(r, dd_mul_d(b, q2));
  double q3 = r.hi / b.hi;
  dd q = fast_two_sum(q1, q2);
  return dd_add_d(q, q3);
}

ATOMA_HD dd dd_div_d(dd a, double b) { return dd_div(a, dd_from(b)); }

// 2^k * a for k in [-1022, 1023]: exact while the parts stay normal.
ATOMA_HD double ldexp_d(double a, int k) {
  union { double d; uint64_t u; } v;
  v.u = (uint64_t)(k + 1023) << 52;
  return a * v.d;
}

}  // namespace atoma::canon
