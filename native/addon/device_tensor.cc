#include "device_tensor.h"
#include "instance.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../cpu/gemm_weights.h"
#include "../cpu/rows.h"
#include "../cuda/api.h"
#include "args.h"
#include "async_work.h"
#include "device.h"
#include "weight_args.h"

namespace atoma::addon {
namespace {

using cuda::DeviceBuffer;
using Buf = std::shared_ptr<DeviceBuffer>;

std::string num(int64_t v) { return std::to_string(v); }

// Queue order on one stream is the data dependency order of every chain of device ops, with no
// events to track. Never destroyed: queued work may outlive the module's teardown.
cuda::Stream shared_stream() {
  static auto* s = new cuda::StreamHandle();
  return s->get();
}

void require_cuda() {
  if (!cuda_available())
    throw Error("ERR_NO_CUDA", "device tensors: no usable CUDA GPU found (no device, or no driver)");
}

int64_t element_count(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;   // arg_dims has checked the product
  return n;
}

class DeviceTensor : public Napi::ObjectWrap<DeviceTensor> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "DeviceTensor",
                       {InstanceMethod<&DeviceTensor::Dims>("dims"), InstanceMethod<&DeviceTensor::ToHost>("toHost"),
                        InstanceMethod<&DeviceTensor::Digest>("digest"), InstanceMethod<&DeviceTensor::LeafHash>("leafHash"),
                        InstanceMethod<&DeviceTensor::Free>("free"),
                        InstanceMethod<&DeviceTensor::Disposed>("disposed")});
  }

  explicit DeviceTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceTensor>(info) {
    if (!constructing_)
      throw_error(info.Env(), "ERR_USAGE", "DeviceTensor cannot be constructed directly: use toDevice()");
  }

  // A new JS DeviceTensor owning buf (which holds product(dims) floats).
  static Napi::Object make(Napi::Env env, Buf buf, std::vector<int64_t> dims) {
    constructing_ = true;
    Napi::Object o;
    try {
      o = instance(env).device_tensor_class.New({});
    } catch (...) {
      constructing_ = false;
      throw;
    }
    constructing_ = false;
    DeviceTensor* t = Unwrap(o);
    t->buf_ = std::move(buf);
    t->dims_ = std::move(dims);
    return o;
  }

  static DeviceTensor* arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
    Napi::Env env = info.Env();
    if (i >= info.Length() || !info[i].IsObject() ||
        !info[i].As<Napi::Object>().InstanceOf(instance(env).device_tensor_class.Value()))
      throw_error(env, "ERR_TYPE", std::string(name) + " must be a DeviceTensor");
    DeviceTensor* t = Unwrap(info[i].As<Napi::Object>());
    t->live(env, name);
    return t;
  }

  const float* data() const { return buf_->as<float>(); }
  // For the ops that write into an existing tensor (dtWriteRows, dtLeafHashRowsInto).
  float* mutable_data() { return buf_->as<float>(); }
  const std::vector<int64_t>& dims() const { return dims_; }
  int64_t size() const { return element_count(dims_); }
  void require_size(Napi::Env env, int64_t want, const char* name) const {
    if (size() != want)
      throw_error(env, "ERR_SHAPE", std::string(name) + " has " + num(size()) + " elements but the shape needs " + num(want));
  }

 private:
  void live(Napi::Env env, const char* name) const {
    if (!buf_) throw_error(env, "ERR_DISPOSED", std::string(name) + ": this DeviceTensor was freed");
  }

  Napi::Value Dims(const Napi::CallbackInfo& info) {
    Napi::Array a = Napi::Array::New(info.Env(), dims_.size());
    for (size_t i = 0; i < dims_.size(); ++i) a.Set(static_cast<uint32_t>(i), static_cast<double>(dims_[i]));
    return a;
  }

  // Resolves with a new Float32Array once every op queued before it has run and the copy is done.
  Napi::Value ToHost(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      live(env, "toHost");
      const int64_t n = size();
      Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(n));
      auto ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(static_cast<Napi::Object>(out)));
      float* host = out.Data();
      Buf buf = buf_;   // the copy keeps the memory alive even if free() is called meanwhile
      return run_async(
          env, {out, Value()},
          [buf, host, n] {
            cuda::copy_to_host(host, buf->data(), static_cast<size_t>(n) * sizeof(float), shared_stream());
            cuda::synchronize(shared_stream());
          },
          [ref](Napi::Env) -> Napi::Value { return ref->Value(); });
    });
  }

  // BLAKE3 of the spec's f32 tensor encoding, hashed on the device: only 32 bytes come back.
  Napi::Value Digest(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      live(env, "digest");
      std::vector<uint64_t> d(dims_.begin(), dims_.end());
      cuda::Digest h = cuda::tensor_digest_f32(data(), d, shared_stream());
      return Napi::Buffer<uint8_t>::Copy(env, h.data(), h.size());
    });
  }

  // The trace leaf BLAKE3(0x00 || encoding) (lib/model/trace.ts leafHash), hashed on the device:
  // an activation is never copied to the host just to be committed to.
  Napi::Value LeafHash(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      live(env, "leafHash");
      std::vector<uint64_t> d(dims_.begin(), dims_.end());
      cuda::Digest h = cuda::merkle_leaf_f32(data(), d, shared_stream());
      return Napi::Buffer<uint8_t>::Copy(env, h.data(), h.size());
    });
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    buf_.reset();   // the free is ordered after the queued kernels that still read the memory
    return info.Env().Undefined();
  }

  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !buf_); }

  static inline bool constructing_ = false;
  Buf buf_;
  std::vector<int64_t> dims_;
};

// Op outputs come from the stream-ordered pool on the shared stream: no allocation or free waits
// for the device, which a decode step (hundreds of small tensors) would otherwise do each time.
Buf alloc_floats(int64_t n) {
  return std::make_shared<DeviceBuffer>(static_cast<size_t>(n) * sizeof(float), shared_stream());
}

// The DeviceTensor at i, or nullptr when the argument is absent, null or undefined.
const DeviceTensor* optional_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  return DeviceTensor::arg(info, i, name);
}

std::vector<int64_t> arg_dims(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsArray()) throw_error(env, "ERR_TYPE", "dims must be an array of sizes");
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() > 32) throw_error(env, "ERR_SHAPE", "a tensor has at most 32 dimensions");
  std::vector<int64_t> dims;
  int64_t total = 1;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a.Get(k);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d)) || d > 9007199254740991.0)
      throw_error(env, "ERR_SHAPE", "dims[" + num(k) + "] is not a non-negative integer");
    dims.push_back(static_cast<int64_t>(d));
    total = checked_mul(env, total, dims.back(), "dims");
  }
  return dims;
}

// An upload's arguments (data: Float32Array, dims): the data must hold exactly the shape.
struct Upload {
  std::vector<int64_t> dims;
  int64_t n;
  View<float> data;
};
Upload arg_upload(const Napi::CallbackInfo& info) {
  Upload u{arg_dims(info, 1), 0, {}};
  u.n = element_count(u.dims);
  u.data = arg_array<float>(info, 0, napi_float32_array, u.n, "data");
  if (u.data.length != u.n)
    throw_error(info.Env(), "ERR_SHAPE", "data has " + num(u.data.length) + " elements but the shape needs " + num(u.n));
  return u;
}

// toDevice(data: Float32Array, dims) -> Promise<DeviceTensor>: copied on its own stream, so an
// upload never waits behind queued kernels; resolved once the bytes are on the device.
Napi::Value ToDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    require_cuda();
    const Upload up = arg_upload(info);
    const int64_t n = up.n;
    auto buf = std::make_shared<Buf>();
    const float* host = up.data.data;
    const std::vector<int64_t> dims = up.dims;
    return run_async(
        env, {up.data.holder},
        [buf, host, n] {
          // Not from the pool: the copy runs on its own stream, which is gone when the tensor is freed.
          *buf = std::make_shared<DeviceBuffer>(static_cast<size_t>(n) * sizeof(float));
          cuda::StreamHandle s;
          cuda::copy_to_device((*buf)->data(), host, static_cast<size_t>(n) * sizeof(float), s.get());
          cuda::synchronize(s.get());
        },
        [buf, dims](Napi::Env e) -> Napi::Value { return DeviceTensor::make(e, *buf, dims); });
  });
}

// dtGemm(a, b, M, N, K, bIsNK, bias | null, outDims)
Napi::Value DtGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    DeviceTensor* a = DeviceTensor::arg(info, 0, "a");
    DeviceTensor* b = DeviceTensor::arg(info, 1, "b");
    int64_t M = arg_size(info, 2, "M"), N = arg_size(info, 3, "N"), K = arg_size(info, 4, "K");
    bool nk = arg_bool(info, 5, "bIsNK");
    const DeviceTensor* bias = optional_arg(info, 6, "bias");
    std::vector<int64_t> dims = arg_dims(info, 7);
    a->require_size(env, checked_mul(env, M, K, "A"), "A");
    b->require_size(env, checked_mul(env, K, N, "B"), "B");
    if (bias) bias->require_size(env, N, "bias");
    int64_t n_out = 1;
    for (int64_t d : dims) n_out *= d;
    const int64_t mn = checked_mul(env, M, N, "C");
    if (n_out != mn) throw_error(env, "ERR_SHAPE", "outDims hold " + num(n_out) + " elements, not M x N = " + num(mn));
    Buf y = alloc_floats(M * N);
    cuda::gemm(M, N, K, a->data(), K, b->data(), nk ? K : N, nk, y->as<float>(), N, bias ? bias->data() : nullptr,
               shared_stream());
    return DeviceTensor::make(env, y, dims);
  });
}

// dtBinary(op, a, b): op 0 add, 1 mul, equal shapes. dtRowsBinary(op, a, rows, n, row).
Napi::Value DtBinary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t op = arg_size(info, 0, "op");
    if (op > 1) throw_error(env, "ERR_RANGE", "unknown binary op");
    DeviceTensor* a = DeviceTensor::arg(info, 1, "a");
    DeviceTensor* b = DeviceTensor::arg(info, 2, "b");
    if (a->size() != b->size()) throw_error(env, "ERR_SHAPE", "a and b must have the same number of elements");
    Buf y = alloc_floats(a->size());
    if (op == 0) cuda::add(a->data(), b->data(), y->as<float>(), a->size(), shared_stream());
    else cuda::mul(a->data(), b->data(), y->as<float>(), a->size(), shared_stream());
    return DeviceTensor::make(env, y, a->dims());
  });
}

Napi::Value DtRowsBinary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t op = arg_size(info, 0, "op");
    if (op > 1) throw_error(env, "ERR_RANGE", "unknown binary op");
    DeviceTensor* a = DeviceTensor::arg(info, 1, "a");
    int64_t rows = arg_size(info, 2, "rows"), n = arg_size(info, 3, "n");
    DeviceTensor* row = DeviceTensor::arg(info, 4, "row");
    a->require_size(env, checked_mul(env, rows, n, "a"), "a");
    row->require_size(env, n, "row");
    Buf y = alloc_floats(rows * n);
    if (op == 0) cuda::add_rows(a->data(), rows, n, row->data(), y->as<float>(), shared_stream());
    else cuda::mul_rows(a->data(), rows, n, row->data(), y->as<float>(), shared_stream());
    return DeviceTensor::make(env, y, a->dims());
  });
}

// dtRmsnorm(x, w, rows, n, eps)
Napi::Value DtRmsnorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    DeviceTensor* x = DeviceTensor::arg(info, 0, "x");
    DeviceTensor* w = DeviceTensor::arg(info, 1, "weight");
    int64_t rows = arg_size(info, 2, "rows"), n = arg_size(info, 3, "n");
    float eps = static_cast<float>(arg_number(info, 4, "eps"));
    x->require_size(env, checked_mul(env, rows, n, "x"), "x");
    w->require_size(env, n, "weight");
    Buf y = alloc_floats(rows * n);
    cuda::rmsnorm(x->data(), w->data(), y->as<float>(), rows, n, eps, shared_stream());
    return DeviceTensor::make(env, y, x->dims());
  });
}

// dtSoftmax(x, rows, n)
Napi::Value DtSoftmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    DeviceTensor* x = DeviceTensor::arg(info, 0, "x");
    int64_t rows = arg_size(info, 1, "rows"), n = arg_size(info, 2, "n");
    x->require_size(env, checked_mul(env, rows, n, "x"), "x");
    Buf y = alloc_floats(rows * n);
    cuda::softmax(x->data(), y->as<float>(), rows, n, shared_stream());
    return DeviceTensor::make(env, y, x->dims());
  });
}

// dtUnary(op, x): op indexes exp, log, tanh, sin, cos, silu, gelu
Napi::Value DtUnary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t op = arg_size(info, 0, "op");
    if (op > static_cast<int64_t>(cuda::Unary::Gelu)) throw_error(env, "ERR_RANGE", "unknown unary op");
    DeviceTensor* x = DeviceTensor::arg(info, 1, "x");
    Buf y = alloc_floats(x->size());
    cuda::unary(static_cast<cuda::Unary>(op), x->data(), y->as<float>(), x->size(), shared_stream());
    return DeviceTensor::make(env, y, x->dims());
  });
}

// Host positions copied to the device; the buffer is freed (after the stream drains) by its owner.
DeviceBuffer upload_positions(const View<int32_t>& pos, int64_t n) {
  DeviceBuffer d(static_cast<size_t>(n) * sizeof(int32_t), shared_stream());
  cuda::copy_to_device(d.data(), pos.data, d.size(), shared_stream());
  return d;
}

// dtRope(x, tokens, heads, headDim, rotDims, positions: Int32Array, theta, neox,
//        freqDivisors: Float32Array | null) -> a new tensor
Napi::Value DtRope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    DeviceTensor* x = DeviceTensor::arg(info, 0, "x");
    int64_t tokens = arg_size(info, 1, "tokens"), heads = arg_size(info, 2, "heads");
    int64_t dim = arg_size(info, 3, "headDim"), rot = arg_size(info, 4, "rotDims");
    auto pos = arg_array<int32_t>(info, 5, napi_int32_array, tokens, "positions");
    float theta = static_cast<float>(arg_number(info, 6, "theta"));
    bool neox = arg_bool(info, 7, "neox");
    auto div = arg_optional_array<float>(info, 8, napi_float32_array, rot / 2, "freqDivisors");
    const int64_t total = checked_mul(env, checked_mul(env, tokens, heads, "x"), dim, "x");
    x->require_size(env, total, "x");
    // The CPU's checks and words (native/cpu/rows.cc): the device kernel checks nothing.
    if (rot > dim || rot % 2 != 0)
      throw Error("ERR_SHAPE", "rope: rot_dims must be even and <= head_dim (" + num(dim) + "), got " + num(rot));
    for (int64_t t = 0; t < tokens; ++t)
      if (pos.data[t] < 0 || pos.data[t] > (1 << 24))
        throw Error("ERR_RANGE", "rope: position " + num(pos.data[t]) + " of token " + num(t) + " is outside 0..16777216");
    check_rope_divisors(div.data, rot / 2);
    // A pass that already holds the positions and divisors on the device passes them too (the
    // host copies above are still what is checked): a pageable upload would wait for the stream.
    const DeviceTensor* dev_pos = optional_arg(info, 9, "devPositions");
    const DeviceTensor* dev_div = optional_arg(info, 10, "devDivisors");
    if (dev_pos && dev_pos->size() < tokens) throw_error(env, "ERR_SHAPE", "devPositions holds fewer than tokens values");
    if (dev_div && dev_div->size() < rot / 2) throw_error(env, "ERR_SHAPE", "devDivisors holds fewer than rotDims / 2 values");
    Buf y = alloc_floats(total);
    cuda::copy_device(y->data(), x->data(), static_cast<size_t>(total) * sizeof(float), shared_stream());
    DeviceBuffer dp = dev_pos ? DeviceBuffer() : upload_positions(pos, tokens);
    const bool scaled = div.data && rot > 0;
    DeviceBuffer dd(scaled && !dev_div ? static_cast<size_t>(rot / 2) * sizeof(float) : 0, shared_stream());
    if (scaled && !dev_div) cuda::copy_to_device(dd.data(), div.data, dd.size(), shared_stream());
    const int32_t* positions = dev_pos ? reinterpret_cast<const int32_t*>(dev_pos->data()) : dp.as<int32_t>();
    const float* divisors = !scaled ? nullptr : dev_div ? dev_div->data() : dd.as<float>();
    cuda::rope(y->as<float>(), tokens, heads, dim, rot, positions, theta, neox, divisors, shared_stream());
    return DeviceTensor::make(env, y, x->dims());
  });
}

// dtAttention(q, nQ, nHeads, k, v, nKv, nKvHeads, headDim, positions: Int32Array)
Napi::Value DtAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    DeviceTensor* q = DeviceTensor::arg(info, 0, "q");
    int64_t nq = arg_size(info, 1, "nQ"), nh = arg_size(info, 2, "nHeads");
    DeviceTensor* k = DeviceTensor::arg(info, 3, "k");
    DeviceTensor* v = DeviceTensor::arg(info, 4, "v");
    int64_t nkv = arg_size(info, 5, "nKv"), nkvh = arg_size(info, 6, "nKvHeads"), hd = arg_size(info, 7, "headDim");
    auto pos = arg_array<int32_t>(info, 8, napi_int32_array, nq, "positions");
    int64_t q_len = checked_mul(env, checked_mul(env, nq, nh, "q"), hd, "q");
    int64_t kv_len = checked_mul(env, checked_mul(env, nkv, nkvh, "k"), hd, "k");
    q->require_size(env, q_len, "q");
    // k and v may be a KV cache with room for more positions: the first n_kv rows are read.
    if (k->size() < kv_len || v->size() < kv_len || k->size() != v->size())
      throw_error(env, "ERR_SHAPE", "k and v must be equal in size and hold at least " + num(kv_len) + " elements (n_kv x n_kv_heads x head_dim)");
    // The CPU's checks (native/cpu/attention.cc): the device kernel would clamp a bad position.
    if (nkvh == 0 || nh % nkvh != 0)
      throw Error("ERR_SHAPE", "attention: n_heads (" + num(nh) + ") must be a multiple of n_kv_heads (" + num(nkvh) + ")");
    for (int64_t i = 0; i < nq; ++i)
      if (pos.data[i] < 0 || pos.data[i] >= nkv)
        throw Error("ERR_RANGE", "attention: query " + num(i) + " has position " + num(pos.data[i]) + ", outside the " +
                                     num(nkv) + " keys [0, " + num(nkv) + ")");
    // As in dtRope: positions already on the device (int32 bits), from row devOffset on.
    const DeviceTensor* dev_pos = optional_arg(info, 9, "devPositions");
    const int64_t dev_off = dev_pos && info.Length() > 10 ? arg_size(info, 10, "devOffset") : 0;
    if (dev_pos && dev_pos->size() < dev_off + nq) throw_error(env, "ERR_SHAPE", "devPositions holds fewer than devOffset + nQ values");
    Buf y = alloc_floats(q_len);
    DeviceBuffer dp = dev_pos ? DeviceBuffer() : upload_positions(pos, nq);
    const int32_t* positions = dev_pos ? reinterpret_cast<const int32_t*>(dev_pos->data()) + dev_off : dp.as<int32_t>();
    cuda::attention(q->data(), nq, nh, k->data(), v->data(), nkv, nkvh, hd, positions, y->as<float>(), shared_stream());
    return DeviceTensor::make(env, y, q->dims());
  });
}

// dtArgmax(x, rows, n) -> Int32Array: the only op that comes back to the host (rows indices).
Napi::Value DtArgmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    DeviceTensor* x = DeviceTensor::arg(info, 0, "x");
    int64_t rows = arg_size(info, 1, "rows"), n = arg_size(info, 2, "n");
    x->require_size(env, checked_mul(env, rows, n, "x"), "x");
    if (n == 0 && rows > 0) throw Error("ERR_SHAPE", "argmax: rows are empty");
    if (n > std::numeric_limits<int32_t>::max())
      throw Error("ERR_SHAPE", "argmax_rows: row length " + num(n) + " does not fit an int32 index");
    Napi::Int32Array out = Napi::Int32Array::New(env, static_cast<size_t>(rows));
    if (rows == 0) return out;
    DeviceBuffer d(static_cast<size_t>(rows) * sizeof(int32_t), shared_stream());
    cuda::argmax_rows(x->data(), rows, n, d.as<int32_t>(), shared_stream());
    cuda::copy_to_host(out.Data(), d.data(), d.size(), shared_stream());
    cuda::synchronize(shared_stream());
    return out;
  });
}

// dtSample(x, n, temperature, topK, topP, seed, step) -> token: one row of n logits sampled on
// the device (canon/sample.h); the caller (device-tensor.ts) has validated the parameters. Only
// the token comes back.
Napi::Value DtSample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    DeviceTensor* x = DeviceTensor::arg(info, 0, "logits");
    int64_t n = arg_size(info, 1, "n");
    const double temperature = arg_number(info, 2, "temperature");
    const int64_t top_k = arg_size(info, 3, "topK");
    const double top_p = arg_number(info, 4, "topP");
    const uint64_t seed = arg_u64(info, 5, "seed");
    const uint64_t step = arg_u64(info, 6, "step");
    const int64_t row = info.Length() > 7 ? arg_size(info, 7, "row") : 0;   // a row of [rows, n] logits
    if (checked_mul(env, row + 1, n, "logits") > x->size())
      throw_error(env, "ERR_SHAPE", "logits hold " + num(x->size()) + " elements, fewer than row " + num(row) + " of " + num(n));
    if (!std::isfinite(temperature) || temperature < 0 || !(top_p > 0 && top_p <= 1))
      throw Error("ERR_ARGUMENT", "sample: temperature must be finite >= 0 and topP in (0, 1]");
    if (n > std::numeric_limits<int32_t>::max())
      throw Error("ERR_SHAPE", "sample: row length " + num(n) + " does not fit an int32 token id");
    const int64_t token = n == 0 ? -1 : cuda::sample(x->data() + row * n, n, temperature, top_k, top_p, seed, step, shared_stream());
    if (token < 0) throw Error("ERR_RANGE", "every logit is NaN");
    return Napi::Number::New(env, static_cast<double>(token));
  });
}

// ---- Building blocks of a device-resident forward pass (lib/model/device-llama.ts) ----------

// dtZeros(dims) -> a DeviceTensor of zeros (a KV cache, a digest buffer).
Napi::Value DtZeros(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    require_cuda();
    std::vector<int64_t> dims = arg_dims(info, 0);
    const int64_t n = element_count(dims);
    Buf y = alloc_floats(n);
    cuda::memset_zero(y->data(), static_cast<size_t>(n) * sizeof(float), shared_stream());
    return DeviceTensor::make(env, y, dims);
  });
}

// dtUploadSync(data: Float32Array, dims) -> DeviceTensor, copied before it returns (the caller may
// reuse the array at once). For a pass's small inputs, queued behind the work before it.
Napi::Value DtUploadSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    require_cuda();
    const Upload up = arg_upload(info);
    Buf y = alloc_floats(up.n);
    cuda::copy_to_device(y->data(), up.data.data, static_cast<size_t>(up.n) * sizeof(float), shared_stream());
    cuda::synchronize(shared_stream());
    return DeviceTensor::make(env, y, up.dims);
  });
}

// dtUploadWeight(W: bytes, format, N, K) -> [N, K] f32 on the device: the exact widening of a
// stored weight (the canonical value of every format), made on the host a slice at a time, so
// the host never holds more than one slice of f32 beside the mapped file.
Napi::Value DtUploadWeight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    require_cuda();
    const std::string fmt_name = arg_string(info, 1, "format");
    const int64_t N = arg_size(info, 2, "N"), K = arg_size(info, 3, "K");
    const WeightLayout layout = weight_layout(env, fmt_name, K);
    // Widened on the host (dequantize_weights, exact), so every stored format works; the decode
    // layouts are the CPU's own and are never uploaded.
    if (layout.format == WeightFormat::Q8_0x128 || layout.format == WeightFormat::F32x16)
      throw_error(env, "ERR_ARGUMENT", "dtUploadWeight: the stored formats only (f32, f16, bf16, q8_0 and the GGUF block types), got " + fmt_name);
    auto W = arg_bytes(info, 0, "W");
    check_weight_bytes(env, W, layout, fmt_name, N, K, "W");
    Buf y = alloc_floats(checked_mul(env, N, K, "W"));
    const int64_t slice_rows = K > 0 ? std::max<int64_t>(1, (int64_t{16} << 20) / (K * 4)) : N;
    std::vector<float> host(static_cast<size_t>(std::min(N, slice_rows) * K));
    for (int64_t r = 0; r < N && K > 0; r += slice_rows) {
      const int64_t rows = std::min(slice_rows, N - r);
      dequantize_weights(layout.format, W.data + r * layout.row_bytes, rows, K, host.data());
      cuda::copy_to_device(y->as<float>() + r * K, host.data(), static_cast<size_t>(rows * K) * sizeof(float), shared_stream());
      cuda::synchronize(shared_stream());   // the slice buffer is reused next
    }
    return DeviceTensor::make(env, y, {N, K});
  });
}

// A row range [first, first + rows) of a tensor read as [total rows, width], checked.
void check_rows(Napi::Env env, const DeviceTensor* t, int64_t first, int64_t rows, int64_t width, const char* name) {
  const int64_t end = first + rows;
  if (width == 0 || end < first || checked_mul(env, end, width, name) > t->size())
    throw_error(env, "ERR_RANGE", std::string(name) + ": rows " + num(first) + ".." + num(end) + " of width " + num(width) +
                                      " are outside its " + num(t->size()) + " elements");
}

// dtWriteRows(dst, dstRow, src, srcRow, rows, width): dst's rows [dstRow, +rows) become src's rows
// [srcRow, +rows), in place and in queue order (a KV cache append, a row gather).
Napi::Value DtWriteRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    DeviceTensor* dst = DeviceTensor::arg(info, 0, "dst");
    const int64_t dst_row = arg_size(info, 1, "dstRow");
    DeviceTensor* src = DeviceTensor::arg(info, 2, "src");
    const int64_t src_row = arg_size(info, 3, "srcRow"), rows = arg_size(info, 4, "rows"), width = arg_size(info, 5, "width");
    check_rows(env, dst, dst_row, rows, width, "dst");
    check_rows(env, src, src_row, rows, width, "src");
    if (dst == src && dst_row != src_row) throw_error(env, "ERR_ALIAS", "dtWriteRows: dst and src are the same tensor");
    cuda::copy_device(dst->mutable_data() + dst_row * width, src->data() + src_row * width,
                      static_cast<size_t>(rows * width) * sizeof(float), shared_stream());
    return env.Undefined();
  });
}

// dtLeafHashRowsInto(x, firstRow, rows, width, out, slot): queues the trace leaf of x's rows
// [firstRow, +rows) as an f32 tensor [rows, width] into bytes [32 slot, 32 slot + 32) of out.
// Nothing waits: the step reads all its leaves back at once (dtReadSync).
Napi::Value DtLeafHashRowsInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    DeviceTensor* x = DeviceTensor::arg(info, 0, "x");
    const int64_t first = arg_size(info, 1, "firstRow"), rows = arg_size(info, 2, "rows"), width = arg_size(info, 3, "width");
    DeviceTensor* out = DeviceTensor::arg(info, 4, "out");
    const int64_t slot = arg_size(info, 5, "slot");
    check_rows(env, x, first, rows, width, "x");
    check_rows(env, out, slot, 1, 8, "out");   // 8 floats hold one 32-byte digest
    cuda::merkle_leaf_f32_into(x->data() + first * width, {static_cast<uint64_t>(rows), static_cast<uint64_t>(width)},
                               out->mutable_data() + slot * 8, shared_stream());
    return env.Undefined();
  });
}

// dtReadSync(x) -> Buffer of x's bytes, once every op queued before it has run. For small results
// (a step's leaf digests); toHost() is the asynchronous copy for anything large.
Napi::Value DtReadSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    DeviceTensor* x = DeviceTensor::arg(info, 0, "x");
    const size_t bytes = static_cast<size_t>(x->size()) * sizeof(float);
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, bytes);
    cuda::copy_to_host(out.Data(), x->data(), bytes, shared_stream());
    cuda::synchronize(shared_stream());
    return out;
  });
}

}  // namespace

void register_device_tensors(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DeviceTensor::define(env);
  instance(env).device_tensor_class = Napi::Persistent(ctor);
  exports.Set("DeviceTensor", ctor);
  exports.Set("toDevice", Napi::Function::New(env, ToDevice));
  exports.Set("dtGemm", Napi::Function::New(env, DtGemm));
  exports.Set("dtBinary", Napi::Function::New(env, DtBinary));
  exports.Set("dtRowsBinary", Napi::Function::New(env, DtRowsBinary));
  exports.Set("dtRmsnorm", Napi::Function::New(env, DtRmsnorm));
  exports.Set("dtSoftmax", Napi::Function::New(env, DtSoftmax));
  exports.Set("dtUnary", Napi::Function::New(env, DtUnary));
  exports.Set("dtRope", Napi::Function::New(env, DtRope));
  exports.Set("dtAttention", Napi::Function::New(env, DtAttention));
  exports.Set("dtArgmax", Napi::Function::New(env, DtArgmax));
  exports.Set("dtSample", Napi::Function::New(env, DtSample));
  exports.Set("dtZeros", Napi::Function::New(env, DtZeros));
  exports.Set("dtUploadSync", Napi::Function::New(env, DtUploadSync));
  exports.Set("dtUploadWeight", Napi::Function::New(env, DtUploadWeight));
  exports.Set("dtWriteRows", Napi::Function::New(env, DtWriteRows));
  exports.Set("dtLeafHashRowsInto", Napi::Function::New(env, DtLeafHashRowsInto));
  exports.Set("dtReadSync", Napi::Function::New(env, DtReadSync));
}

}  // namespace atoma::addon
