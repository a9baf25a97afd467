// BLAKE3 front end: portable compression, chunk state, the chaining-value stack, the modes,
// extended output, the threaded one-shot tree and file hashing. The bulk of the work (whole
// chunks and parent levels) goes through detail::hash_many, which picks the ISA kernel.
#include "blake3.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "../core/error.h"
#include "../cpu/isa.h"
#include "../cpu/thread_pool.h"
#include "blake3_impl.h"

namespace atoma::blake3 {
namespace detail {
namespace {

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

inline void g(uint32_t* v, int a, int b, int c, int d, uint32_t mx, uint32_t my) {
  v[a] = v[a] + v[b] + mx;
  v[d] = rotr(v[d] ^ v[a], 16);
  v[c] = v[c] + v[d];
  v[b] = rotr(v[b] ^ v[c], 12);
  v[a] = v[a] + v[b] + my;
  v[d] = rotr(v[d] ^ v[a], 8);
  v[c] = v[c] + v[d];
  v[b] = rotr(v[b] ^ v[c], 7);
}

}  // namespace

void compress_state(const uint32_t cv[8], const uint8_t block[64], uint32_t block_len,
                    uint64_t counter, uint32_t flags, uint32_t v[16]) {
  uint32_t m[16];
  load_words(block, m, 16);
  for (int i = 0; i < 8; ++i) v[i] = cv[i];
  for (int i = 0; i < 4; ++i) v[8 + i] = kIV[i];
  v[12] = uint32_t(counter);
  v[13] = uint32_t(counter >> 32);
  v[14] = block_len;
  v[15] = flags;
  for (int r = 0; r < kRounds; ++r) {
    const uint8_t* s = kSchedule.idx[r];
    g(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
    g(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
    g(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
    g(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
    g(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
    g(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
    g(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
    g(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
  }
}

void compress_cv(uint32_t cv[8], const uint8_t block[64], uint32_t block_len, uint64_t counter,
                 uint32_t flags) {
  uint32_t v[16];
  compress_state(cv, block, block_len, counter, flags, v);
  for (int i = 0; i < 8; ++i) cv[i] = v[i] ^ v[i + 8];
}

void compress_xof(const uint32_t cv[8], const uint8_t block[64], uint32_t block_len,
                  uint64_t counter, uint32_t flags, uint8_t out[64]) {
  uint32_t v[16];
  compress_state(cv, block, block_len, counter, flags, v);
  for (int i = 0; i < 8; ++i) {
    store32(out + 4 * i, v[i] ^ v[i + 8]);
    store32(out + 32 + 4 * i, v[i + 8] ^ cv[i]);
  }
}

void hash_many_portable(const ManyArgs& a) {
  for (size_t i = 0; i < a.n; ++i) {
    const uint8_t* in = a.in + i * a.stride;
    uint32_t cv[8];
    std::memcpy(cv, a.key, sizeof cv);
    const uint64_t counter = a.counter + i * a.counter_step;
    for (size_t b = 0; b < a.blocks; ++b) {
      uint32_t f = a.flags;
      if (b == 0) f |= a.flags_start;
      if (b + 1 == a.blocks) f |= a.flags_end;
      compress_cv(cv, in + b * kBlockLen, kBlockLen, counter, f);
    }
    store_words(a.out + 32 * i, cv, 8);
  }
}

void hash_many(const ManyArgs& a) {
  size_t done = 0;
  switch (active_isa()) {
    case Isa::Avx512: done = hash_many_avx512(a); break;
    case Isa::Avx2: done = hash_many_avx2(a); break;
    case Isa::Scalar: break;
  }
  if (done < a.n) {
    ManyArgs rest = a;
    rest.in += done * a.stride;
    rest.n -= done;
    rest.counter += done * a.counter_step;
    rest.out += 32 * done;
    hash_many_portable(rest);
  }
}

}  // namespace detail

using namespace detail;

namespace {

// Chunks hashed per hash_many call; their chaining values (32 KiB) stay in L1/L2 while the
// parent levels above them are formed.
constexpr size_t kBatchChunks = 1024;

// Reduces n (a power of two <= kBatchChunks) adjacent chaining values at `in` to the top `keep`
// (1 or 2) nodes of their subtree, one whole parent level per hash_many call.
void reduce_levels(const uint8_t* in, size_t n, size_t keep, const uint32_t key[8],
                   uint8_t flags, uint8_t* out) {
  alignas(64) uint8_t scratch_a[kBatchChunks / 2 * 32];
  alignas(64) uint8_t scratch_b[kBatchChunks / 4 * 32];
  if (n <= keep) {
    std::memcpy(out, in, 32 * n);
    return;
  }
  const uint8_t* cur = in;
  uint8_t* scratch[2] = {scratch_a, scratch_b};
  for (int which = 0; n > keep; which ^= 1, n /= 2) {
    uint8_t* dst = n / 2 == keep ? out : scratch[which];
    // A parent's block is two adjacent child CVs, so a level is n/2 contiguous 64-byte inputs.
    hash_many(ManyArgs{cur, kBlockLen, n / 2, 1, key, 0, 0, uint8_t(flags | kParent), 0, 0, dst});
    cur = dst;
  }
}

// Chaining value of the complete subtree of kBatchChunks full chunks starting at chunk `counter`.
void batch_subtree_cv(const uint8_t* in, const uint32_t key[8], uint64_t counter, uint8_t flags,
                      uint8_t out[32]) {
  alignas(64) uint8_t cvs[kBatchChunks * 32];
  hash_many(ManyArgs{in, kChunkLen, kBatchChunks, kChunkLen / kBlockLen, key, counter, 1, flags,
                     kChunkStart, kChunkEnd, cvs});
  reduce_levels(cvs, kBatchChunks, 1, key, flags, out);
}

inline uint64_t lowest_bit(uint64_t x) { return x & (~x + 1); }

// Largest power of two <= x (x >= 1).
inline uint64_t floor_pow2(uint64_t x) {
  return uint64_t(1) << (63 - __builtin_clzll(x));
}

struct Output {
  uint32_t cv[8];
  uint8_t block[kBlockLen];
  uint32_t block_len;
  uint64_t counter;
  uint32_t flags;

  void chaining_value(uint32_t out[8]) const {
    std::memcpy(out, cv, 32);
    compress_cv(out, block, block_len, counter, flags);
  }
  void root_bytes(uint8_t* out, size_t out_len) const {
    uint8_t tmp[64];
    for (uint64_t k = 0; out_len > 0; ++k) {
      compress_xof(cv, block, block_len, k, flags | kRoot, tmp);
      const size_t take = std::min<size_t>(out_len, 64);
      std::memcpy(out, tmp, take);
      out += take;
      out_len -= take;
    }
  }
};

Output parent_output(const uint8_t left[32], const uint8_t right[32], const uint32_t key[8],
                     uint8_t flags) {
  Output o;
  std::memcpy(o.cv, key, 32);
  std::memcpy(o.block, left, 32);
  std::memcpy(o.block + 32, right, 32);
  o.block_len = kBlockLen;
  o.counter = 0;
  o.flags = flags | kParent;
  return o;
}

}  // namespace

Hasher::Hasher() : Hasher(kIV, 0) {}

Hasher::Hasher(const uint32_t key[8], uint8_t flags)
    : flags_(flags), chunk_counter_(0), block_(), block_len_(0), blocks_done_(0), stack_len_(0) {
  std::memcpy(key_, key, sizeof key_);
  std::memcpy(chunk_cv_, key, sizeof chunk_cv_);
}

Hasher Hasher::keyed(const uint8_t key[kKeyLen]) {
  uint32_t w[8];
  load_words(key, w, 8);
  return Hasher(w, kKeyedHash);
}

Hasher Hasher::derive_key(const std::string& context) {
  Hasher ctx(kIV, kDeriveKeyContext);
  ctx.update(context.data(), context.size());
  uint8_t ck[kKeyLen];
  ctx.finalize(ck, kKeyLen);
  uint32_t w[8];
  load_words(ck, w, 8);
  return Hasher(w, kDeriveKeyMaterial);
}

void Hasher::merge_stack(uint64_t n_chunks) {
  // The first n_chunks chunks form one complete subtree per set bit of that count; entries
  // beyond those are finished siblings, merged from the top down.
  const size_t keep = size_t(__builtin_popcountll(n_chunks));
  while (stack_len_ > keep) {
    uint32_t w[8];
    parent_output(stack_[stack_len_ - 2], stack_[stack_len_ - 1], key_, flags_).chaining_value(w);
    --stack_len_;
    store_words(stack_[stack_len_ - 1], w, 8);
  }
}

void Hasher::push_cv(const uint8_t cv[32], uint64_t first_chunk) {
  merge_stack(first_chunk);
  std::memcpy(stack_[stack_len_++], cv, 32);
}

void Hasher::push_chunks(const uint8_t* p, size_t n) {
  alignas(64) uint8_t cvs[kBatchChunks * 32];
  hash_many(ManyArgs{p, kChunkLen, n, kChunkLen / kBlockLen, key_, chunk_counter_, 1, flags_,
                     kChunkStart, kChunkEnd, cvs});
  // Split the run into the largest aligned power-of-two subtrees and reduce each one.
  uint64_t pos = chunk_counter_;
  for (size_t off = 0; off < n;) {
    uint64_t size = floor_pow2(n - off);
    if (pos != 0) size = std::min(size, lowest_bit(pos));
    uint8_t top[64];
    if (off + size == n && size >= 2) {
      // The run may end the input: keep the last subtree's two children apart so its root
      // node can still be finalised with the ROOT flag.
      reduce_levels(cvs + 32 * off, size_t(size), 2, key_, flags_, top);
      push_cv(top, pos);
      push_cv(top + 32, pos + size / 2);
    } else {
      reduce_levels(cvs + 32 * off, size_t(size), 1, key_, flags_, top);
      push_cv(top, pos);
    }
    pos += size;
    off += size_t(size);
  }
  chunk_counter_ = pos;
}

void Hasher::update(const void* data, size_t len) {
  update_bytes(static_cast<const uint8_t*>(data), len);
}

void Hasher::update_bytes(const uint8_t* p, size_t len) {
  while (len > 0) {
    const size_t chunk_len = size_t(blocks_done_) * kBlockLen + block_len_;
    if (chunk_len == kChunkLen) {
      // More input follows, so the buffered chunk is complete and is not the root.
      uint32_t cv[8];
      std::memcpy(cv, chunk_cv_, sizeof cv);
      compress_cv(cv, block_, kBlockLen, chunk_counter_, flags_ | kChunkEnd);
      uint8_t cvb[32];
      store_words(cvb, cv, 8);
      push_cv(cvb, chunk_counter_);
      ++chunk_counter_;
      std::memcpy(chunk_cv_, key_, sizeof chunk_cv_);
      blocks_done_ = 0;
      block_len_ = 0;
      continue;
    }
    // Whole chunks go straight to the wide kernels. A lone first chunk with nothing after it
    // may be the root, so it waits in the chunk state instead.
    if (chunk_len == 0 && len >= kChunkLen && (chunk_counter_ > 0 || len > kChunkLen)) {
      const size_t n = std::min(len / kChunkLen, kBatchChunks);
      push_chunks(p, n);
      p += n * kChunkLen;
      len -= n * kChunkLen;
      continue;
    }
    // Bytes are about to start a new chunk, which proves everything on the stack is a left
    // sibling: bring it to canonical form so finalize() can simply fold it from the top.
    if (chunk_len == 0) merge_stack(chunk_counter_);
    if (block_len_ == kBlockLen) {
      compress_cv(chunk_cv_, block_, kBlockLen, chunk_counter_,
                  flags_ | (blocks_done_ == 0 ? kChunkStart : 0));
      ++blocks_done_;
      block_len_ = 0;
    }
    // Whole blocks straight from the input while more input follows them within this chunk.
    while (block_len_ == 0 && len > kBlockLen &&
           size_t(blocks_done_) * kBlockLen + kBlockLen < kChunkLen) {
      compress_cv(chunk_cv_, p, kBlockLen, chunk_counter_,
                  flags_ | (blocks_done_ == 0 ? kChunkStart : 0));
      ++blocks_done_;
      p += kBlockLen;
      len -= kBlockLen;
    }
    const size_t take = std::min<size_t>(len, kBlockLen - block_len_);
    std::memcpy(block_ + block_len_, p, take);
    block_len_ = uint8_t(block_len_ + take);
    p += take;
    len -= take;
  }
}

void Hasher::finalize(uint8_t* out, size_t out_len) const {
  Output o;
  size_t i = stack_len_;
  if (stack_len_ >= 2 && blocks_done_ == 0 && block_len_ == 0) {
    // The input ended on a chunk boundary after whole chunks were pushed: the top two entries
    // are the root's children (push_chunks keeps them apart for exactly this).
    o = parent_output(stack_[i - 2], stack_[i - 1], key_, flags_);
    i -= 2;
  } else {
    std::memcpy(o.cv, chunk_cv_, 32);
    std::memcpy(o.block, block_, kBlockLen);
    std::memset(o.block + block_len_, 0, kBlockLen - block_len_);
    o.block_len = block_len_;
    o.counter = chunk_counter_;
    o.flags = flags_ | kChunkEnd | (blocks_done_ == 0 ? kChunkStart : 0);
  }
  while (i-- > 0) {
    uint32_t right[8];
    uint8_t rb[32];
    o.chaining_value(right);
    store_words(rb, right, 8);
    o = parent_output(stack_[i], rb, key_, flags_);
  }
  o.root_bytes(out, out_len);
}

namespace {

#ifdef MADV_POPULATE_READ
constexpr int kMadvPopulateRead = MADV_POPULATE_READ;
#else
constexpr int kMadvPopulateRead = 22;  // Linux 5.14+; older kernels reject it with EINVAL
#endif

// Maps the page tables of [p, p + n) in one batched call instead of one fault per 4 KiB page.
void prefault(const uint8_t* p, size_t n) {
  const uintptr_t page = 4096;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
  ::madvise(reinterpret_cast<void*>(begin), reinterpret_cast<uintptr_t>(p) + n - begin,
            kMadvPopulateRead);
}

}  // namespace

void Hasher::hash_tree(const uint8_t* p, size_t len, uint8_t out[kOutLen], bool parallel,
                       bool mapped) {
  Hasher h;
  // The tree is fixed by the input length alone: the aligned subtrees of kBatchChunks chunks
  // that leave input after them are hashed independently (in any order, on any thread) and
  // absorbed left to right exactly as a serial update would.
  const size_t sub_bytes = kBatchChunks * kChunkLen;
  const size_t n_sub = len > 0 ? (len - 1) / sub_bytes : 0;
  if (parallel && n_sub >= 2 && thread_count() > 1) {
    std::vector<uint8_t> cvs(n_sub * 32);
    parallel_for(n_sub, [&](size_t i) {
      if (mapped) prefault(p + i * sub_bytes, sub_bytes);
      batch_subtree_cv(p + i * sub_bytes, h.key_, uint64_t(i) * kBatchChunks, h.flags_,
                       &cvs[i * 32]);
    });
    for (size_t i = 0; i < n_sub; ++i) h.push_cv(&cvs[i * 32], uint64_t(i) * kBatchChunks);
    h.chunk_counter_ = uint64_t(n_sub) * kBatchChunks;
    p += n_sub * sub_bytes;
    len -= n_sub * sub_bytes;
  }
  // Mapped files are prefaulted a window at a time just ahead of hashing, so a file larger
  // than memory is never pulled in all at once.
  const size_t window = mapped ? size_t(64) << 20 : len;
  for (size_t off = 0; off < len; off += window) {
    const size_t n = std::min(window, len - off);
    if (mapped) prefault(p + off, n);
    h.update_bytes(p + off, n);
  }
  h.finalize(out, kOutLen);
}

void hash(const void* data, size_t len, uint8_t out[kOutLen], bool parallel) {
  Hasher::hash_tree(static_cast<const uint8_t*>(data), len, out, parallel, false);
}

namespace {

[[noreturn]] void io_error(const std::string& what, const std::string& path, int err) {
  throw Error("ERR_IO", "blake3: cannot " + what + " '" + path + "': " + std::strerror(err));
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void hash_file(const std::string& path, uint8_t out[kOutLen], bool parallel) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) io_error("open", path, errno);
  struct stat st;
  if (::fstat(f.fd, &st) != 0) io_error("stat", path, errno);
  // Several threads hash disjoint subtrees of a mapping. One thread is faster streaming through
  // an L2-sized buffer: copying from the page cache costs less than building the page mappings
  // (measured on a 1 GiB cached file: 0.17 s with read() against 0.24 s with mmap).
  const bool threaded = parallel && thread_count() > 1;
  if (threaded && S_ISREG(st.st_mode) && st.st_size > 0) {
    const size_t size = size_t(st.st_size);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, f.fd, 0);
    if (map != MAP_FAILED) {
      struct Unmap {
        void* p;
        size_t n;
        ~Unmap() { ::munmap(p, n); }
      } unmap{map, size};
      Hasher::hash_tree(static_cast<const uint8_t*>(map), size, out, parallel, true);
      return;
    }
  }
  // One thread, pipes, character devices, empty or unmappable files: stream the bytes.
  Hasher h;
  std::vector<uint8_t> buf(256 << 10);
  for (;;) {
    const ssize_t n = ::read(f.fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      io_error("read", path, errno);
    }
    if (n == 0) break;
    h.update(buf.data(), size_t(n));
  }
  h.finalize(out, kOutLen);
}

std::string to_hex(const uint8_t* bytes, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = digits[bytes[i] >> 4];
    s[2 * i + 1] = digits[bytes[i] & 15];
  }
  return s;
}

}  // namespace atoma::blake3
