// Internals shared by the BLAKE3 front end (blake3.cc) and its per-ISA kernels. Not a public
// header: the kernels are only reached through hash_many(), which follows atoma::active_isa().
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace atoma::blake3::detail {

// The SHA-256 initial hash words, which BLAKE3 uses as its IV (spec section 2.2).
constexpr uint32_t kIV[8] = {0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
                             0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u};

enum Flag : uint8_t {
  kChunkStart = 1 << 0,
  kChunkEnd = 1 << 1,
  kParent = 1 << 2,
  kRoot = 1 << 3,
  kKeyedHash = 1 << 4,
  kDeriveKeyContext = 1 << 5,
  kDeriveKeyMaterial = 1 << 6,
};

constexpr int kRounds = 7;

// Message word order of each round: round r+1 reads the words of round r through the spec's
// fixed permutation, so composing it r times gives a direct index into the original block and
// the kernels never move message words around.
struct Schedule {
  uint8_t idx[kRounds][16];
  constexpr Schedule() : idx() {
    constexpr uint8_t perm[16] = {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8};
    for (int i = 0; i < 16; ++i) idx[0][i] = static_cast<uint8_t>(i);
    for (int r = 1; r < kRounds; ++r)
      for (int i = 0; i < 16; ++i) idx[r][i] = idx[r - 1][perm[i]];
  }
};
constexpr Schedule kSchedule{};

inline uint32_t load32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline void store32(uint8_t* p, uint32_t w) {
  p[0] = uint8_t(w);
  p[1] = uint8_t(w >> 8);
  p[2] = uint8_t(w >> 16);
  p[3] = uint8_t(w >> 24);
}
inline void load_words(const uint8_t* p, uint32_t* w, size_t n) {
  for (size_t i = 0; i < n; ++i) w[i] = load32(p + 4 * i);
}
inline void store_words(uint8_t* p, const uint32_t* w, size_t n) {
  for (size_t i = 0; i < n; ++i) store32(p + 4 * i, w[i]);
}

// The full 16-word compression output state (before any feed-forward is folded in by callers).
void compress_state(const uint32_t cv[8], const uint8_t block[64], uint32_t block_len,
                    uint64_t counter, uint32_t flags, uint32_t v[16]);
// cv <- first 8 words of the compression of `block` (the chaining-value form).
void compress_cv(uint32_t cv[8], const uint8_t block[64], uint32_t block_len, uint64_t counter,
                 uint32_t flags);
// 64 bytes of extended output (the XOF form: the second half is fed forward with the input cv).
void compress_xof(const uint32_t cv[8], const uint8_t block[64], uint32_t block_len,
                  uint64_t counter, uint32_t flags, uint8_t out[64]);

// Hashes `n` equally shaped inputs, input i starting at in + i * stride and made of `blocks`
// whole 64-byte blocks, writing each 32-byte chaining value to out + 32 * i.
//   chunks:  stride 1024, blocks 16, counter = first chunk index, step 1,
//            flags_start = CHUNK_START, flags_end = CHUNK_END.
//   parents: stride 64, blocks 1, step 0, flags = PARENT | mode.
// `out` must not overlap the inputs.
struct ManyArgs {
  const uint8_t* in;
  size_t stride;
  size_t n;
  size_t blocks;
  const uint32_t* key;  // 8 words
  uint64_t counter;
  uint64_t counter_step;  // 0 or 1
  uint8_t flags, flags_start, flags_end;
  uint8_t* out;
};
void hash_many_portable(const ManyArgs& a);
// Process the inputs in groups of their width (a last partial group too, unless it is a single
// input) and return how many they did; the rest is left to the portable kernel.
size_t hash_many_avx2(const ManyArgs& a);
size_t hash_many_avx512(const ManyArgs& a);
// Dispatches on atoma::active_isa().
void hash_many(const ManyArgs& a);

}  // namespace atoma::blake3::detail
