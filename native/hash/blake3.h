// BLAKE3 (https://github.com/BLAKE3-team/BLAKE3-specs), written from the specification.
// Hash, keyed-hash and derive-key modes, extendable output, SIMD chunk hashing where the CPU
// has it (the ISA follows atoma::active_isa()), and a multi-threaded tree for large inputs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace atoma::blake3 {

constexpr size_t kOutLen = 32;
constexpr size_t kKeyLen = 32;
constexpr size_t kChunkLen = 1024;
constexpr size_t kBlockLen = 64;

class Hasher {
 public:
  Hasher();                                            // plain hash mode
  static Hasher keyed(const uint8_t key[kKeyLen]);
  static Hasher derive_key(const std::string& context);
  void update(const void* data, size_t len);           // any number of calls, any lengths
  void finalize(uint8_t* out, size_t out_len) const;   // does not change the state; any out_len

 private:
  // Deepest possible tree: 2^64 bytes of input is 2^54 chunks.
  static constexpr size_t kMaxDepth = 54;

  Hasher(const uint32_t key[8], uint8_t flags);
  // Adds the chaining value of an aligned subtree that starts at chunk `first_chunk`. Merging is
  // lazy: completed siblings are combined only when a later subtree arrives, so the last
  // entries can still become the root in finalize().
  void push_cv(const uint8_t cv[32], uint64_t first_chunk);
  void merge_stack(uint64_t n_chunks);
  // Hashes n whole chunks (n <= the batch size) at the current chunk counter, SIMD-wide.
  void push_chunks(const uint8_t* p, size_t n);
  void update_bytes(const uint8_t* p, size_t len);
  // The one-shot tree behind hash() and hash_file(); `mapped` prefaults a file mapping's page
  // tables in batches just ahead of the hashing.
  static void hash_tree(const uint8_t* p, size_t len, uint8_t out[kOutLen], bool parallel,
                        bool mapped);
  friend void hash(const void* data, size_t len, uint8_t out[kOutLen], bool parallel);
  friend void hash_file(const std::string& path, uint8_t out[kOutLen], bool parallel);

  uint32_t key_[8];
  uint8_t flags_;                 // mode flags applied to every compression
  // The chunk being filled; its last block stays buffered until more input proves it is not
  // the final block (the final one carries CHUNK_END and maybe ROOT).
  uint32_t chunk_cv_[8];
  uint64_t chunk_counter_;
  uint8_t block_[kBlockLen];
  uint8_t block_len_;
  uint8_t blocks_done_;
  uint8_t stack_len_;
  uint8_t stack_[kMaxDepth + 1][32];  // CVs of completed subtrees, in input order
};

// One-shot hash of a buffer; inputs large enough are split over the thread pool (the result
// is the same for any thread count).
void hash(const void* data, size_t len, uint8_t out[kOutLen], bool parallel = true);

// Hash of a file of any size (memory-mapped; reads in blocks where mmap is impossible, e.g. a
// pipe). Throws atoma::Error("ERR_IO", ...) naming the path on failure.
void hash_file(const std::string& path, uint8_t out[kOutLen], bool parallel = true);

std::string to_hex(const uint8_t* bytes, size_t n);

}  // namespace atoma::blake3
