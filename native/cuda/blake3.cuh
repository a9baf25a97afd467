// BLAKE3 compression and tree pieces shared by the device kernels and a host model of the same
// tree (native/test/cuda_blake3_tree_test.cc checks that model against the official vectors).
// Written from the BLAKE3 specification.
#pragma once
#include <stdint.h>

#include "../canon/hd.h"

namespace atoma::cuda::b3 {

constexpr uint32_t kChunkStart = 1, kChunkEnd = 2, kParent = 4, kRoot = 8;
constexpr uint32_t kChunkLen = 1024, kBlockLen = 64;
constexpr int kGroup = 128;   // chunks (or CVs) merged per block: a power of two

ATOMA_HD uint32_t iv(int i) {
  const uint32_t v[8] = {0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
                         0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u};
  return v[i];
}

ATOMA_HD uint32_t rotr(uint32_t x, int n) {
#if defined(__CUDA_ARCH__)
  return __funnelshift_r(x, x, n);
#else
  return (x >> n) | (x << (32 - n));
#endif
}

ATOMA_HD void g(uint32_t& a, uint32_t& b, uint32_t& c, uint32_t& d, uint32_t mx, uint32_t my) {
  a = a + b + mx;
  d = rotr(d ^ a, 16);
  c = c + d;
  b = rotr(b ^ c, 12);
  a = a + b + my;
  d = rotr(d ^ a, 8);
  c = c + d;
  b = rotr(b ^ c, 7);
}

// The first 8 output words of the compression function (all a chaining value or a 32-byte
// root output needs). m is consumed (permuted in place).
ATOMA_HD void compress(const uint32_t cv[8], uint32_t m[16], uint64_t counter, uint32_t block_len,
                       uint32_t flags, uint32_t out[8]) {
  uint32_t v[16] = {cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
                    iv(0), iv(1), iv(2), iv(3), static_cast<uint32_t>(counter),
                    static_cast<uint32_t>(counter >> 32), block_len, flags};
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int r = 0; r < 7; ++r) {
    g(v[0], v[4], v[8], v[12], m[0], m[1]);
    g(v[1], v[5], v[9], v[13], m[2], m[3]);
    g(v[2], v[6], v[10], v[14], m[4], m[5]);
    g(v[3], v[7], v[11], v[15], m[6], m[7]);
    g(v[0], v[5], v[10], v[15], m[8], m[9]);
    g(v[1], v[6], v[11], v[12], m[10], m[11]);
    g(v[2], v[7], v[8], v[13], m[12], m[13]);
    g(v[3], v[4], v[9], v[14], m[14], m[15]);
    if (r < 6) {
      // The message permutation of the specification.
      const uint32_t t[16] = {m[2], m[6], m[3], m[10], m[7], m[0], m[4], m[13],
                              m[1], m[11], m[12], m[5], m[9], m[14], m[15], m[8]};
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
      for (int i = 0; i < 16; ++i) m[i] = t[i];
    }
  }
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int i = 0; i < 8; ++i) out[i] = v[i] ^ v[i + 8];
}

ATOMA_HD void parent(const uint32_t left[8], const uint32_t right[8], bool root, uint32_t out[8]) {
  uint32_t m[16];
  for (int i = 0; i < 8; ++i) {
    m[i] = left[i];
    m[i + 8] = right[i];
  }
  uint32_t key[8];
  for (int i = 0; i < 8; ++i) key[i] = iv(i);
  compress(key, m, 0, kBlockLen, kParent | (root ? kRoot : 0u), out);
}

// Bytes of chunk `c` of a message of `len` bytes, and its number of 64-byte blocks (at least
// one: the empty message is one empty chunk).
ATOMA_HD uint32_t chunk_bytes(uint64_t len, uint64_t c) {
  const uint64_t start = c * kChunkLen;
  const uint64_t left = len > start ? len - start : 0;
  return static_cast<uint32_t>(left < kChunkLen ? left : kChunkLen);
}
ATOMA_HD uint32_t chunk_blocks(uint32_t bytes) {
  return bytes == 0 ? 1u : (bytes + kBlockLen - 1) / kBlockLen;
}
ATOMA_HD uint64_t chunk_count(uint64_t len) {
  return len == 0 ? 1 : (len + kChunkLen - 1) / kChunkLen;
}

// One block of a chunk: cv is the running chaining value (IV before the first block).
ATOMA_HD void chunk_block(uint32_t cv[8], uint32_t m[16], uint64_t chunk, uint32_t chunk_len,
                          uint32_t b, bool root_chunk) {
  const uint32_t nb = chunk_blocks(chunk_len);
  const uint32_t start = b * kBlockLen;
  const uint32_t blen = chunk_len - start < kBlockLen ? chunk_len - start : kBlockLen;
  uint32_t flags = (b == 0 ? kChunkStart : 0u);
  if (b + 1 == nb) flags |= kChunkEnd | (root_chunk ? kRoot : 0u);
  uint32_t out[8];
  compress(cv, m, chunk, chunk_len == 0 ? 0u : blen, flags, out);
  for (int i = 0; i < 8; ++i) cv[i] = out[i];
}

// The f32 NaN canonicalisation of the tensor encoding.
ATOMA_HD uint32_t canonical_f32_bits(uint32_t u) {
  return (u & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC00000u : u;
}

// The message as 32-bit little-endian words; words past the end read as 0 (block padding).
struct RawSource {
  const uint8_t* p;
  uint64_t len;
  bool aligned;   // p is 4-byte aligned
  ATOMA_HD uint32_t word(uint64_t g) const {
    const uint64_t o = 4 * g;
    if (o >= len) return 0;
    if (aligned && o + 4 <= len) {
#if defined(__CUDA_ARCH__)
      return *reinterpret_cast<const uint32_t*>(p + o);
#else
      uint32_t w;
      __builtin_memcpy(&w, p + o, 4);   // little-endian hosts only, like the engine
      return w;
#endif
    }
    uint32_t w = 0;
    for (int i = 0; i < 4; ++i)
      if (o + i < len) w |= static_cast<uint32_t>(p[o + i]) << (8 * i);
    return w;
  }
};

constexpr int kMaxRank = 32;

// "ATM1" header words, then the f32 elements with NaN canonicalised. The header is a whole
// number of words, so element bits are message words as they are.
struct TensorSource {
  uint32_t header[2 + 2 * kMaxRank];
  uint32_t header_words;
  const uint32_t* data;
  uint64_t total_words;
  ATOMA_HD uint32_t word(uint64_t g) const {
    if (g < header_words) return header[g];
    if (g >= total_words) return 0;
    return canonical_f32_bits(data[g - header_words]);
  }
};

// The Merkle leaf message 0x00 || encoding: every encoding byte moves up by one, so message word
// g is the top byte of encoding word g-1 and the low three bytes of encoding word g.
struct LeafSource {
  TensorSource enc;
  ATOMA_HD uint32_t word(uint64_t g) const {
    return (g == 0 ? 0u : enc.word(g - 1) >> 24) | (enc.word(g) << 8);
  }
};

// Fills the header of an f32 tensor of the given dims (rank <= kMaxRank, numel checked by the
// caller) and returns the message length in bytes.
inline uint64_t fill_tensor_source(TensorSource& src, const float* data, const uint64_t* dims,
                                   int rank, uint64_t numel) {
  for (int i = 0; i < 2 + 2 * kMaxRank; ++i) src.header[i] = 0;
  src.header[0] = 0x314D5441u;   // "ATM1"
  src.header[1] = 1u | (static_cast<uint32_t>(rank) << 8);   // dtype f32, rank, 0, 0
  for (int i = 0; i < rank; ++i) {
    src.header[2 + 2 * i] = static_cast<uint32_t>(dims[i]);
    src.header[3 + 2 * i] = static_cast<uint32_t>(dims[i] >> 32);
  }
  src.header_words = static_cast<uint32_t>(2 + 2 * rank);
  src.data = reinterpret_cast<const uint32_t*>(data);
  src.total_words = src.header_words + numel;
  return 4 * src.total_words;
}

}  // namespace atoma::cuda::b3
