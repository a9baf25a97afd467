#include "device_tensor.h"
#include "instance.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../cpu/rows.h"
#include "../cuda/api.h"
#include "args.h"
#include "async_work.h"
#include "device.h"

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
  const std::vector<int64_t>& dims() const { return dims_; }
  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : dims_) n *= d;
    return n;
  }
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
    buf_.reset();   // cudaFree waits for queued kernels that still read the memory
    return info.Env().Undefined();
  }

  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !buf_); }

  static inline bool constructing_ = false;
  Buf buf_;
  std::vector<int64_t> dims_;
};

Buf alloc_floats(int64_t n) { return std::make_shared<DeviceBuffer>(static_cast<size_t>(n) * sizeof(float)); }

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

// toDevice(data: Float32Array, dims) -> Promise<DeviceTensor>: copied on its own stream, so an
// upload never waits behind queued kernels; resolved once the bytes are on the device.
Napi::Value ToDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    require_cuda();
    std::vector<int64_t> dims = arg_dims(info, 1);
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    auto x = arg_array<float>(info, 0, napi_float32_array, n, "data");
    if (x.length != n)
      throw_error(env, "ERR_SHAPE", "data has " + num(x.length) + " elements but the shape needs " + num(n));
    auto buf = std::make_shared<Buf>();
    const float* host = x.data;
    return run_async(
        env, {x.holder},
        [buf, host, n] {
          *buf = alloc_floats(n);
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
    DeviceTensor* bias = info.Length() > 6 && !info[6].IsNull() && !info[6].IsUndefined() ? DeviceTensor::arg(info, 6, "bias") : nullptr;
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
  DeviceBuffer d(static_cast<size_t>(n) * sizeof(int32_t));
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
    Buf y = alloc_floats(total);
    cuda::copy_device(y->data(), x->data(), static_cast<size_t>(total) * sizeof(float), shared_stream());
    DeviceBuffer dp = upload_positions(pos, tokens);
    DeviceBuffer dd(div.data && rot > 0 ? static_cast<size_t>(rot / 2) * sizeof(float) : 0);
    if (div.data && rot > 0) cuda::copy_to_device(dd.data(), div.data, dd.size(), shared_stream());
    cuda::rope(y->as<float>(), tokens, heads, dim, rot, dp.as<int32_t>(), theta, neox,
               div.data && rot > 0 ? dd.as<float>() : nullptr, shared_stream());
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
    k->require_size(env, kv_len, "k");
    v->require_size(env, kv_len, "v");
    // The CPU's checks (native/cpu/attention.cc): the device kernel would clamp a bad position.
    if (nkvh == 0 || nh % nkvh != 0)
      throw Error("ERR_SHAPE", "attention: n_heads (" + num(nh) + ") must be a multiple of n_kv_heads (" + num(nkvh) + ")");
    for (int64_t i = 0; i < nq; ++i)
      if (pos.data[i] < 0 || pos.data[i] >= nkv)
        throw Error("ERR_RANGE", "attention: query " + num(i) + " has position " + num(pos.data[i]) + ", outside the " +
                                     num(nkv) + " keys [0, " + num(nkv) + ")");
    Buf y = alloc_floats(q_len);
    DeviceBuffer dp = upload_positions(pos, nq);
    cuda::attention(q->data(), nq, nh, k->data(), v->data(), nkv, nkvh, hd, dp.as<int32_t>(), y->as<float>(),
                    shared_stream());
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
    DeviceBuffer d(static_cast<size_t>(rows) * sizeof(int32_t));
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
    x->require_size(env, n, "logits");
    if (!std::isfinite(temperature) || temperature < 0 || !(top_p > 0 && top_p <= 1))
      throw Error("ERR_ARGUMENT", "sample: temperature must be finite >= 0 and topP in (0, 1]");
    if (n > std::numeric_limits<int32_t>::max())
      throw Error("ERR_SHAPE", "sample: row length " + num(n) + " does not fit an int32 token id");
    const int64_t token = n == 0 ? -1 : cuda::sample(x->data(), n, temperature, top_k, top_p, seed, step, shared_stream());
    if (token < 0) throw Error("ERR_RANGE", "every logit is NaN");
    return Napi::Number::New(env, static_cast<double>(token));
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
}

}  // namespace atoma::addon
