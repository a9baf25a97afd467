// Tensor encoding and digest, and the Merkle tree of traces (DETERMINISM.md section 2).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace atoma {

enum class DType : uint8_t { F32 = 1, F16 = 2, BF16 = 3, I8 = 4, I32 = 5, U32 = 6, U8 = 7 };

size_t dtype_size(DType dt);
DType dtype_from_code(int code);   // throws Error("ERR_DTYPE")

using Digest = std::array<uint8_t, 32>;

// "ATM1", dtype, rank, two zero bytes, dims as u64 LE: the part of the encoding before the data.
std::vector<uint8_t> tensor_header(DType dt, const std::vector<uint64_t>& dims);

// BLAKE3 of header || data, with every f32 NaN written as 0x7FC00000. `data` holds the elements
// row-major in the host's (little-endian) order; its size must equal the product of the dims.
Digest tensor_digest(DType dt, const std::vector<uint64_t>& dims, const void* data, size_t bytes);

// RFC 6962 shape with BLAKE3: leaf = H(0x00 || data), node = H(0x01 || left || right).
Digest merkle_leaf(const void* data, size_t len);
Digest merkle_node(const Digest& left, const Digest& right);
Digest merkle_root(const std::vector<Digest>& leaf_hashes);   // empty: BLAKE3("")

}  // namespace atoma
