// BLAKE3 (hash mode, 32-byte output) of device memory, and the f32 tensor digest of section 2,
// computed on the device. One lane per 1 KiB chunk (a warp stages its 32 chunks' blocks through
// shared memory so global loads stay coalesced), then the tree: BLAKE3's tree is the one built
// by merging adjacent chaining values level by level and carrying an odd last one up, so
// groups of kGroup (a power of two) consecutive CVs are whole subtrees and each block merges
// one group; launches repeat until one value is left. The final compression carries ROOT.
#include <vector>

#include "blake3_kernel.cuh"
#include "common.cuh"

namespace atoma::cuda {
namespace {

using namespace b3;

// Queues the hash of src; its 8 words land at device_out (the digest's bytes, little-endian).
template <class Src>
void run_into(const Src& src, uint64_t len, uint32_t* device_out, cudaStream_t s) {
  const uint64_t n_chunks = chunk_count(len);
  uint64_t n = (n_chunks + kGroup - 1) / kGroup;
  detail::require(n <= 0x7FFFFFFFu, "blake3: input too large");
  detail::Scratch a(n * 8 * sizeof(uint32_t), s);
  detail::Scratch b(((n + kGroup - 1) / kGroup) * 8 * sizeof(uint32_t), s);
  chunks_kernel<Src><<<static_cast<unsigned>(n), kGroup, 0, s>>>(src, len, n_chunks, a.as<uint32_t>());
  detail::check_launch("blake3 chunks");
  uint32_t* cur = a.as<uint32_t>();
  uint32_t* nxt = b.as<uint32_t>();
  while (n > 1) {
    const uint64_t m = (n + kGroup - 1) / kGroup;
    merge_kernel<<<static_cast<unsigned>(m), kGroup, 0, s>>>(cur, n, nxt);
    detail::check_launch("blake3 merge");
    uint32_t* t = cur;
    cur = nxt;
    nxt = t;
    n = m;
  }
  detail::check(cudaMemcpyAsync(device_out, cur, 8 * sizeof(uint32_t), cudaMemcpyDeviceToDevice, s),
                "cudaMemcpyAsync(digest)");
}

template <class Src>
Digest run(const Src& src, uint64_t len, cudaStream_t s) {
  detail::Scratch out(8 * sizeof(uint32_t), s);
  run_into(src, len, out.as<uint32_t>(), s);
  uint32_t words[8];
  detail::check(cudaMemcpyAsync(words, out.as<uint32_t>(), sizeof(words), cudaMemcpyDeviceToHost, s),
                "cudaMemcpyAsync(digest)");
  detail::check(cudaStreamSynchronize(s), "cudaStreamSynchronize(digest)");
  Digest d;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 4; ++j) d[4 * i + j] = static_cast<uint8_t>(words[i] >> (8 * j));
  return d;
}

// The f32 encoding of data with these dims as a word source; returns its length in bytes.
uint64_t encode_header(TensorSource& src, const float* data, const std::vector<uint64_t>& dims) {
  detail::require(dims.size() <= static_cast<size_t>(kMaxRank), "tensor_digest: rank > 32");
  uint64_t numel = 1;
  for (uint64_t d : dims) {
    detail::require(d == 0 || numel <= (uint64_t{1} << 61) / d, "tensor_digest: too many elements");
    numel *= d;
  }
  return fill_tensor_source(src, data, dims.data(), static_cast<int>(dims.size()), numel);
}

}  // namespace

Digest blake3(const void* data, size_t len, Stream stream) {
  RawSource src{static_cast<const uint8_t*>(data), len,
                (reinterpret_cast<uintptr_t>(data) & 3) == 0};
  return run(src, len, stream);
}

Digest tensor_digest_f32(const float* data, const std::vector<uint64_t>& dims, Stream stream) {
  TensorSource src;
  const uint64_t len = encode_header(src, data, dims);
  return run(src, len, stream);
}

Digest merkle_leaf_f32(const float* data, const std::vector<uint64_t>& dims, Stream stream) {
  LeafSource src;
  const uint64_t len = encode_header(src.enc, data, dims);
  return run(src, len + 1, stream);
}

void merkle_leaf_f32_into(const float* data, const std::vector<uint64_t>& dims, void* device_out, Stream stream) {
  detail::require((reinterpret_cast<uintptr_t>(device_out) & 3) == 0, "merkle_leaf_f32_into: output not 4-byte aligned");
  LeafSource src;
  const uint64_t len = encode_header(src.enc, data, dims);
  run_into(src, len + 1, static_cast<uint32_t*>(device_out), stream);
}

}  // namespace atoma::cuda
