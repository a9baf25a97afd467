#include "tensor_digest.h"

#include <cstring>
#include <string>

#include "../core/error.h"
#include "blake3.h"

namespace atoma {

size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::F32: case DType::I32: case DType::U32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::I8: case DType::U8: return 1;
  }
  return 0;
}

DType dtype_from_code(int code) {
  if (code < 1 || code > 7) throw Error("ERR_DTYPE", "unknown dtype code " + std::to_string(code));
  return static_cast<DType>(code);
}

std::vector<uint8_t> tensor_header(DType dt, const std::vector<uint64_t>& dims) {
  if (dims.size() > 255) throw Error("ERR_SHAPE", "rank " + std::to_string(dims.size()) + " exceeds 255");
  std::vector<uint8_t> h = {'A', 'T', 'M', '1', static_cast<uint8_t>(dt), static_cast<uint8_t>(dims.size()), 0, 0};
  for (uint64_t d : dims)
    for (int b = 0; b < 8; ++b) h.push_back(static_cast<uint8_t>(d >> (8 * b)));
  return h;
}

namespace {

uint64_t checked_elements(const std::vector<uint64_t>& dims) {
  uint64_t n = 1;
  for (uint64_t d : dims) {
    if (d != 0 && n > UINT64_MAX / d) throw Error("ERR_SIZE", "tensor element count overflows 64 bits");
    n *= d;
  }
  return n;
}

// Copies f32 data through a small buffer, canonicalising NaNs; other dtypes hash as they are.
void update_f32_canonical(blake3::Hasher& h, const uint8_t* p, size_t bytes) {
  constexpr size_t kBlock = 1 << 16;
  uint32_t buf[kBlock / 4];
  while (bytes > 0) {
    size_t take = bytes < kBlock ? bytes : kBlock;
    std::memcpy(buf, p, take);
    for (size_t i = 0; i < take / 4; ++i)
      if ((buf[i] & 0x7F800000u) == 0x7F800000u && (buf[i] & 0x007FFFFFu)) buf[i] = 0x7FC00000u;
    h.update(buf, take);
    p += take;
    bytes -= take;
  }
}

}  // namespace

Digest tensor_digest(DType dt, const std::vector<uint64_t>& dims, const void* data, size_t bytes) {
  uint64_t n = checked_elements(dims);
  size_t es = dtype_size(dt);
  if (n > UINT64_MAX / es || n * es != bytes)
    throw Error("ERR_SHAPE", "data holds " + std::to_string(bytes) + " bytes but the shape needs " +
                                 std::to_string(n) + " elements of " + std::to_string(es) + " bytes");
  blake3::Hasher h;
  std::vector<uint8_t> header = tensor_header(dt, dims);
  h.update(header.data(), header.size());
  if (dt == DType::F32)
    update_f32_canonical(h, static_cast<const uint8_t*>(data), bytes);
  else
    h.update(data, bytes);
  Digest out;
  h.finalize(out.data(), out.size());
  return out;
}

Digest merkle_leaf(const void* data, size_t len) {
  blake3::Hasher h;
  const uint8_t tag = 0x00;
  h.update(&tag, 1);
  h.update(data, len);
  Digest out;
  h.finalize(out.data(), out.size());
  return out;
}

Digest merkle_node(const Digest& left, const Digest& right) {
  uint8_t buf[65];
  buf[0] = 0x01;
  std::memcpy(buf + 1, left.data(), 32);
  std::memcpy(buf + 33, right.data(), 32);
  Digest out;
  blake3::hash(buf, sizeof buf, out.data(), false);
  return out;
}

namespace {
Digest subtree(const Digest* leaves, size_t n) {
  if (n == 1) return leaves[0];
  size_t k = 1;
  while (k * 2 < n) k *= 2;   // largest power of two smaller than n
  return merkle_node(subtree(leaves, k), subtree(leaves + k, n - k));
}
}  // namespace

Digest merkle_root(const std::vector<Digest>& leaf_hashes) {
  Digest out;
  if (leaf_hashes.empty()) {
    blake3::hash(nullptr, 0, out.data(), false);
    return out;
  }
  return subtree(leaf_hashes.data(), leaf_hashes.size());
}

}  // namespace atoma
