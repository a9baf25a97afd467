// Bindings of BLAKE3, tensor digests and Merkle roots.
#include <napi.h>

#include <cstring>
#include <memory>
#include <vector>

#include "../hash/blake3.h"
#include "../hash/tensor_digest.h"
#include "args.h"
#include "async_work.h"
#include "bindings.h"

namespace atoma::addon {
namespace {

Napi::Buffer<uint8_t> to_buffer(Napi::Env env, const uint8_t* p, size_t n) {
  return Napi::Buffer<uint8_t>::Copy(env, p, n);
}

// digest(dtypeCode, dims: number[], data: typed array) -> Buffer(32)
Napi::Value TensorDigest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    DType dt = dtype_from_code(static_cast<int>(arg_size(info, 0, "dtype")));
    if (info.Length() < 2 || !info[1].IsArray()) throw_error(env, "ERR_TYPE", "dims must be an array");
    Napi::Array arr = info[1].As<Napi::Array>();
    std::vector<uint64_t> dims;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value d = arr.Get(i);
      double v = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
      if (!(v >= 0) || v > 9007199254740991.0 || v != static_cast<double>(static_cast<uint64_t>(v)))
        throw_error(env, "ERR_SHAPE", "dims must be non-negative integers");
      dims.push_back(static_cast<uint64_t>(v));
    }
    auto data = arg_bytes(info, 2, "data");
    Digest d = tensor_digest(dt, dims, data.data, static_cast<size_t>(data.length));
    return to_buffer(env, d.data(), d.size());
  });
}

// blake3(data, mode, keyOrContext | null, outLen) -> Buffer; mode 0 hash, 1 keyed, 2 derive-key
Napi::Value Blake3(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto data = arg_bytes(info, 0, "data");
    int64_t mode = arg_size(info, 1, "mode");
    int64_t out_len = arg_size(info, 3, "outLength");
    if (out_len < 1 || out_len > (1 << 24)) throw_error(env, "ERR_RANGE", "outLength must be in 1..16777216");
    std::unique_ptr<uint8_t[]> out(new uint8_t[out_len]);
    if (mode == 0 && out_len == static_cast<int64_t>(blake3::kOutLen)) {
      blake3::hash(data.data, static_cast<size_t>(data.length), out.get());
    } else {
      blake3::Hasher h;
      if (mode == 1) {
        auto key = arg_bytes(info, 2, "key");
        if (key.length != static_cast<int64_t>(blake3::kKeyLen)) throw_error(env, "ERR_SHAPE", "a BLAKE3 key is 32 bytes");
        h = blake3::Hasher::keyed(key.data);
      } else if (mode == 2) {
        h = blake3::Hasher::derive_key(arg_string(info, 2, "context"));
      } else if (mode != 0) {
        throw_error(env, "ERR_RANGE", "unknown BLAKE3 mode");
      }
      h.update(data.data, static_cast<size_t>(data.length));
      h.finalize(out.get(), static_cast<size_t>(out_len));
    }
    return to_buffer(env, out.get(), static_cast<size_t>(out_len));
  });
}

// hashFile(path, async) -> Buffer(32) or Promise<Buffer>
Napi::Value HashFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    std::string path = arg_string(info, 0, "path");
    bool async = arg_bool(info, 1, "async");
    auto out = std::make_shared<Digest>();
    if (!async) {
      blake3::hash_file(path, out->data());
      return to_buffer(env, out->data(), out->size());
    }
    return run_async(env, {}, [path, out] { blake3::hash_file(path, out->data()); },
                     [out](Napi::Env e) -> Napi::Value { return to_buffer(e, out->data(), out->size()); });
  });
}

// merkleLeaf(data) -> Buffer(32)
Napi::Value MerkleLeaf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto data = arg_bytes(info, 0, "data");
    Digest d = merkle_leaf(data.data, static_cast<size_t>(data.length));
    return to_buffer(env, d.data(), d.size());
  });
}

// merkleRoot(leafHashes: Uint8Array of n * 32 bytes) -> Buffer(32)
Napi::Value MerkleRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto hashes = arg_bytes(info, 0, "leafHashes");
    if (hashes.length % 32 != 0) throw_error(env, "ERR_SHAPE", "leaf hashes must be a multiple of 32 bytes");
    std::vector<Digest> leaves(static_cast<size_t>(hashes.length / 32));
    for (size_t i = 0; i < leaves.size(); ++i) std::memcpy(leaves[i].data(), hashes.data + 32 * i, 32);
    Digest d = merkle_root(leaves);
    return to_buffer(env, d.data(), d.size());
  });
}

// An incremental BLAKE3 state for streams (stdin, sockets): new Hasher(mode, keyOrContext).
class HasherWrap : public Napi::ObjectWrap<HasherWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Hasher", {InstanceMethod("update", &HasherWrap::Update), InstanceMethod("digest", &HasherWrap::Digest)});
  }
  explicit HasherWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HasherWrap>(info) {
    guarded(info.Env(), [&] {
      int64_t mode = info.Length() > 0 ? arg_size(info, 0, "mode") : 0;
      if (mode == 1) {
        auto key = arg_bytes(info, 1, "key");
        if (key.length != static_cast<int64_t>(blake3::kKeyLen)) throw_error(info.Env(), "ERR_SHAPE", "a BLAKE3 key is 32 bytes");
        state_ = blake3::Hasher::keyed(key.data);
      } else if (mode == 2) {
        state_ = blake3::Hasher::derive_key(arg_string(info, 1, "context"));
      } else if (mode != 0) {
        throw_error(info.Env(), "ERR_RANGE", "unknown BLAKE3 mode");
      }
    });
  }

 private:
  Napi::Value Update(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto data = arg_bytes(info, 0, "data");
      state_.update(data.data, static_cast<size_t>(data.length));
      return info.This();
    });
  }
  Napi::Value Digest(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      int64_t n = info.Length() > 0 ? arg_size(info, 0, "outLength") : 32;
      if (n < 1 || n > (1 << 24)) throw_error(info.Env(), "ERR_RANGE", "outLength must be in 1..16777216");
      std::unique_ptr<uint8_t[]> out(new uint8_t[n]);
      state_.finalize(out.get(), static_cast<size_t>(n));
      return to_buffer(info.Env(), out.get(), static_cast<size_t>(n));
    });
  }
  blake3::Hasher state_;
};

}  // namespace

void register_hashing(Napi::Env env, Napi::Object exports) {
  exports.Set("Hasher", HasherWrap::Define(env));
  exports.Set("tensorDigest", Napi::Function::New(env, TensorDigest));
  exports.Set("blake3", Napi::Function::New(env, Blake3));
  exports.Set("hashFile", Napi::Function::New(env, HashFile));
  exports.Set("merkleLeaf", Napi::Function::New(env, MerkleLeaf));
  exports.Set("merkleRoot", Napi::Function::New(env, MerkleRoot));
}

}  // namespace atoma::addon
