// 8-way BLAKE3 kernel: eight inputs (chunks or parents) side by side, one per 32-bit lane of a
// ymm register; the chaining values stay in registers across all blocks of an input.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#pragma GCC target("avx2")
#include <immintrin.h>
#endif

#include "blake3_impl.h"

namespace atoma::blake3::detail {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
namespace {

#define B3_INLINE inline __attribute__((always_inline))

B3_INLINE __m256i add(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
B3_INLINE __m256i xor_(__m256i a, __m256i b) { return _mm256_xor_si256(a, b); }

// Byte-aligned rotations are one byte shuffle; the others need two shifts.
B3_INLINE __m256i ror16(__m256i x) {
  const __m256i m = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
                                     2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  return _mm256_shuffle_epi8(x, m);
}
B3_INLINE __m256i ror8(__m256i x) {
  const __m256i m = _mm256_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12,
                                     1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12);
  return _mm256_shuffle_epi8(x, m);
}
B3_INLINE __m256i ror12(__m256i x) {
  return _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20));
}
B3_INLINE __m256i ror7(__m256i x) {
  return _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25));
}

// a + *m with the message word read straight from memory, so the compiler never tries to hold
// the sixteen message words in the sixteen ymm registers the state already needs.
B3_INLINE __m256i add_mem(__m256i a, const __m256i* m) {
  __m256i r;
  __asm__("vpaddd %2, %1, %0" : "=x"(r) : "x"(a), "m"(*m));
  return r;
}

B3_INLINE void g(__m256i& a, __m256i& b, __m256i& c, __m256i& d, const __m256i* mx,
                 const __m256i* my) {
  a = add_mem(add(a, b), mx);
  d = ror16(xor_(d, a));
  c = add(c, d);
  b = ror12(xor_(b, c));
  a = add_mem(add(a, b), my);
  d = ror8(xor_(d, a));
  c = add(c, d);
  b = ror7(xor_(b, c));
}

B3_INLINE void do_round(__m256i v[16], const __m256i m[16], int r) {
  const uint8_t* s = kSchedule.idx[r];
  g(v[0], v[4], v[8], v[12], &m[s[0]], &m[s[1]]);
  g(v[1], v[5], v[9], v[13], &m[s[2]], &m[s[3]]);
  g(v[2], v[6], v[10], v[14], &m[s[4]], &m[s[5]]);
  g(v[3], v[7], v[11], v[15], &m[s[6]], &m[s[7]]);
  g(v[0], v[5], v[10], v[15], &m[s[8]], &m[s[9]]);
  g(v[1], v[6], v[11], v[12], &m[s[10]], &m[s[11]]);
  g(v[2], v[7], v[8], v[13], &m[s[12]], &m[s[13]]);
  g(v[3], v[4], v[9], v[14], &m[s[14]], &m[s[15]]);
}

// 8x8 transpose of 32-bit words: row i becomes lane i of every output.
B3_INLINE void transpose8(__m256i r[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // u[4h + q]: rows 4h..4h+3, 128-bit lane k holds their word 4k+q.
  for (int h = 0; h < 2; ++h) {
    u[4 * h + 0] = _mm256_unpacklo_epi64(t[4 * h + 0], t[4 * h + 2]);
    u[4 * h + 1] = _mm256_unpackhi_epi64(t[4 * h + 0], t[4 * h + 2]);
    u[4 * h + 2] = _mm256_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);
    u[4 * h + 3] = _mm256_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);
  }
  for (int q = 0; q < 4; ++q) {
    r[q] = _mm256_permute2x128_si256(u[q], u[4 + q], 0x20);
    r[4 + q] = _mm256_permute2x128_si256(u[q], u[4 + q], 0x31);
  }
}

// One compression of eight blocks, straight-line, with the chaining value passed through
// memory (see blake3_avx512.cc for why that placement matters).
__attribute__((noinline)) void compress8(const uint8_t* const lane[8], size_t offset,
                                         const __m256i* cv_in, const __m256i* ctr,
                                         uint32_t flags, __m256i* cv_out) {
  alignas(32) __m256i msg[16];
  {
    __m256i m[16];
    for (int i = 0; i < 8; ++i) {
      const uint8_t* p = lane[i] + offset;
      m[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      m[8 + i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    }
    transpose8(m);
    transpose8(m + 8);
    for (int i = 0; i < 16; ++i) _mm256_store_si256(&msg[i], m[i]);
  }
  __m256i v[16];
  for (int i = 0; i < 8; ++i) v[i] = _mm256_load_si256(cv_in + i);
  v[8] = _mm256_set1_epi32(int(kIV[0]));
  v[9] = _mm256_set1_epi32(int(kIV[1]));
  v[10] = _mm256_set1_epi32(int(kIV[2]));
  v[11] = _mm256_set1_epi32(int(kIV[3]));
  v[12] = _mm256_load_si256(ctr);
  v[13] = _mm256_load_si256(ctr + 1);
  v[14] = _mm256_set1_epi32(64);
  v[15] = _mm256_set1_epi32(int(flags));
  do_round(v, msg, 0);
  do_round(v, msg, 1);
  do_round(v, msg, 2);
  do_round(v, msg, 3);
  do_round(v, msg, 4);
  do_round(v, msg, 5);
  do_round(v, msg, 6);
  for (int i = 0; i < 8; ++i) _mm256_store_si256(cv_out + i, xor_(v[i], v[i + 8]));
}

// Hashes inputs [0, count) of the group at `in` (count <= 8); idle lanes recompute input 0 and
// are never stored.
void hash8(const ManyArgs& a, const uint8_t* in, size_t count, uint64_t counter, uint8_t* out) {
  const uint8_t* lane[8];
  for (size_t i = 0; i < 8; ++i) lane[i] = in + (i < count ? i : 0) * a.stride;
  alignas(32) uint32_t ctr[2][8];
  for (int i = 0; i < 8; ++i) {
    const uint64_t c = counter + uint64_t(i) * a.counter_step;
    ctr[0][i] = uint32_t(c);
    ctr[1][i] = uint32_t(c >> 32);
  }
  // Block b's chaining value is parked just past block b's input lines modulo 4 KiB.
  alignas(4096) __m256i park_area[256];
  const uintptr_t in_page = reinterpret_cast<uintptr_t>(in) & 4095;
  auto park = [&](size_t b) { return park_area + ((in_page + (b + 1) * 64) & 4095) / 32; };
  __m256i* cv = park(a.blocks);
  for (int i = 0; i < 8; ++i) _mm256_store_si256(cv + i, _mm256_set1_epi32(int(a.key[i])));
  for (size_t b = 0; b < a.blocks; ++b) {
    uint32_t f = a.flags;
    if (b == 0) f |= a.flags_start;
    if (b + 1 == a.blocks) f |= a.flags_end;
    __m256i* next = park(b);
    compress8(lane, b * 64, cv, reinterpret_cast<const __m256i*>(ctr), f, next);
    cv = next;
  }
  __m256i r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_load_si256(cv + i);
  transpose8(r);
  for (size_t i = 0; i < count; ++i)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * i), r[i]);
}

}  // namespace

size_t hash_many_avx2(const ManyArgs& a) {
  size_t i = 0;
  for (; i + 8 <= a.n; i += 8)
    hash8(a, a.in + i * a.stride, 8, a.counter + i * a.counter_step, a.out + 32 * i);
  if (a.n - i >= 2) {
    hash8(a, a.in + i * a.stride, a.n - i, a.counter + i * a.counter_step, a.out + 32 * i);
    i = a.n;
  }
  return i;
}

#else

size_t hash_many_avx2(const ManyArgs&) { return 0; }

#endif

}  // namespace atoma::blake3::detail
