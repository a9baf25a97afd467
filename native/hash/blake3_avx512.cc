// 16-way BLAKE3 kernel: sixteen inputs (chunks or parents) are hashed side by side, one input
// per 32-bit lane, so each state word is one zmm register and a round is plain lane-wise
// arithmetic. Each block's compression runs entirely in the 32 zmm registers.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#pragma GCC target("avx512f,avx512vl,avx512bw,avx2")
#include <immintrin.h>
#endif

#include "blake3_impl.h"

namespace atoma::blake3::detail {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
namespace {

#define B3_INLINE inline __attribute__((always_inline))

B3_INLINE __m512i add(__m512i a, __m512i b) { return _mm512_add_epi32(a, b); }
B3_INLINE __m512i xor_(__m512i a, __m512i b) { return _mm512_xor_si512(a, b); }

// a + *m with the message word read straight from memory. Keeping the message words in memory
// (never cached in registers by the compiler) leaves the 32 zmm registers to the state, so
// nothing is spilled inside the rounds: spills are stores, and stores whose address matches
// the next block's input loads modulo 4 KiB stall those loads (4K aliasing), which cost up to
// a third of the throughput depending on where the stack happened to land.
B3_INLINE __m512i add_mem(__m512i a, const __m512i* m) {
  __m512i r;
  __asm__("vpaddd %2, %1, %0" : "=v"(r) : "v"(a), "m"(*m));
  return r;
}

B3_INLINE void g(__m512i& a, __m512i& b, __m512i& c, __m512i& d, const __m512i* mx,
                 const __m512i* my) {
  a = add_mem(add(a, b), mx);
  d = _mm512_ror_epi32(xor_(d, a), 16);
  c = add(c, d);
  b = _mm512_ror_epi32(xor_(b, c), 12);
  a = add_mem(add(a, b), my);
  d = _mm512_ror_epi32(xor_(d, a), 8);
  c = add(c, d);
  b = _mm512_ror_epi32(xor_(b, c), 7);
}

B3_INLINE void do_round(__m512i v[16], const __m512i m[16], int r) {
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

// In-register 16x16 transpose of 32-bit words: row i (input i's block) becomes lane i of
// every output, so out[j] holds message word j of all sixteen inputs.
B3_INLINE void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // u[4g + q]: rows 4g..4g+3, 128-bit lane k holds their word 4k+q.
  for (int g4 = 0; g4 < 4; ++g4) {
    u[4 * g4 + 0] = _mm512_unpacklo_epi64(t[4 * g4 + 0], t[4 * g4 + 2]);
    u[4 * g4 + 1] = _mm512_unpackhi_epi64(t[4 * g4 + 0], t[4 * g4 + 2]);
    u[4 * g4 + 2] = _mm512_unpacklo_epi64(t[4 * g4 + 1], t[4 * g4 + 3]);
    u[4 * g4 + 3] = _mm512_unpackhi_epi64(t[4 * g4 + 1], t[4 * g4 + 3]);
  }
  for (int q = 0; q < 4; ++q) {
    const __m512i x01 = _mm512_shuffle_i32x4(u[q], u[4 + q], 0x44);
    const __m512i y01 = _mm512_shuffle_i32x4(u[q], u[4 + q], 0xEE);
    const __m512i x23 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0x44);
    const __m512i y23 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0xEE);
    r[q] = _mm512_shuffle_i32x4(x01, x23, 0x88);
    r[4 + q] = _mm512_shuffle_i32x4(x01, x23, 0xDD);
    r[8 + q] = _mm512_shuffle_i32x4(y01, y23, 0x88);
    r[12 + q] = _mm512_shuffle_i32x4(y01, y23, 0xDD);
  }
}

// One compression of sixteen blocks. Straight-line and register-resident: the chaining value
// comes from memory at `cv_in` and goes to memory at `cv_out`, so no state is carried in
// registers across blocks and the compiler has no reason to spill. The only stores are the
// transposed message (after this block's loads) and the new chaining value, whose address the
// caller picks so that, modulo 4 KiB, it does not alias the next block's input loads.
__attribute__((noinline)) void compress16(const uint8_t* const lane[16], size_t offset,
                                          const __m512i* cv_in, const __m512i* ctr,
                                          uint32_t flags, __m512i* cv_out) {
  alignas(64) __m512i msg[16];
  __m512i m[16];
  for (int i = 0; i < 16; ++i) m[i] = _mm512_loadu_si512(lane[i] + offset);
  transpose16(m);
  for (int i = 0; i < 16; ++i) _mm512_store_si512(&msg[i], m[i]);
  __m512i v[16];
  for (int i = 0; i < 8; ++i) v[i] = _mm512_load_si512(cv_in + i);
  v[8] = _mm512_set1_epi32(int(kIV[0]));
  v[9] = _mm512_set1_epi32(int(kIV[1]));
  v[10] = _mm512_set1_epi32(int(kIV[2]));
  v[11] = _mm512_set1_epi32(int(kIV[3]));
  v[12] = _mm512_load_si512(ctr);
  v[13] = _mm512_load_si512(ctr + 1);
  v[14] = _mm512_set1_epi32(64);
  v[15] = _mm512_set1_epi32(int(flags));
  do_round(v, msg, 0);
  do_round(v, msg, 1);
  do_round(v, msg, 2);
  do_round(v, msg, 3);
  do_round(v, msg, 4);
  do_round(v, msg, 5);
  do_round(v, msg, 6);
  for (int i = 0; i < 8; ++i) _mm512_store_si512(cv_out + i, xor_(v[i], v[i + 8]));
}

// Hashes inputs [0, count) of the group at `in` (count <= 16); idle lanes recompute input 0
// and are never stored.
void hash16(const ManyArgs& a, const uint8_t* in, size_t count, uint64_t counter, uint8_t* out) {
  const uint8_t* lane[16];
  for (size_t i = 0; i < 16; ++i) lane[i] = in + (i < count ? i : 0) * a.stride;
  alignas(64) uint32_t ctr[2][16];
  for (int i = 0; i < 16; ++i) {
    const uint64_t c = counter + uint64_t(i) * a.counter_step;
    ctr[0][i] = uint32_t(c);
    ctr[1][i] = uint32_t(c >> 32);
  }
  // Block b's chaining value is parked at in + (b + 1) * 64 modulo 4 KiB: just past the lines
  // that block b loads, and clear of block b + 1's lines until it has loaded them.
  alignas(4096) __m512i park_area[128];
  const uintptr_t in_page = reinterpret_cast<uintptr_t>(in) & 4095;
  auto park = [&](size_t b) { return park_area + ((in_page + (b + 1) * 64) & 4095) / 64; };
  __m512i* cv = park(a.blocks);  // the key, stored where block 0's input cannot collide
  for (int i = 0; i < 8; ++i) _mm512_store_si512(cv + i, _mm512_set1_epi32(int(a.key[i])));
  for (size_t b = 0; b < a.blocks; ++b) {
    uint32_t f = a.flags;
    if (b == 0) f |= a.flags_start;
    if (b + 1 == a.blocks) f |= a.flags_end;
    __m512i* next = park(b);
    compress16(lane, b * 64, cv, reinterpret_cast<const __m512i*>(ctr), f, next);
    cv = next;
  }
  // Back from word-major to input-major: transposing with the CVs in rows 0..7 puts input i's
  // eight words in the low half of row i (x86 is little-endian, matching BLAKE3's byte order).
  __m512i r[16];
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_load_si512(cv + i);
    r[i + 8] = r[i];
  }
  transpose16(r);
  for (size_t i = 0; i < count; ++i)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * i), _mm512_castsi512_si256(r[i]));
}

}  // namespace

size_t hash_many_avx512(const ManyArgs& a) {
  size_t i = 0;
  for (; i + 16 <= a.n; i += 16)
    hash16(a, a.in + i * a.stride, 16, a.counter + i * a.counter_step, a.out + 32 * i);
  // A partly filled group costs the same as a full one, which already beats two scalar inputs.
  if (a.n - i >= 2) {
    hash16(a, a.in + i * a.stride, a.n - i, a.counter + i * a.counter_step, a.out + 32 * i);
    i = a.n;
  }
  return i;
}

#else

size_t hash_many_avx512(const ManyArgs&) { return 0; }

#endif

}  // namespace atoma::blake3::detail
