// Devices, streams, memory and the conversion of CUDA errors into atoma::Error.
#include <cstdio>
#include <utility>

#include "common.cuh"

namespace atoma::cuda {
namespace detail {

void raise(cudaError_t e, const char* what) {
  cudaGetLastError();  // clears a sticky launch error so the next call starts clean
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
    throw Error("ERR_NO_CUDA", std::string("no CUDA device available (") + what + ": " +
                                   cudaGetErrorString(e) + ")");
  throw Error("ERR_CUDA", std::string(what) + ": " + cudaGetErrorName(e) + ": " +
                              cudaGetErrorString(e));
}

void shape_error(const std::string& message) { throw Error("ERR_SHAPE", message); }

}  // namespace detail

using detail::check;

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

bool available() { return device_count() > 0; }

static int resolve(int device) {
  if (device >= 0) return device;
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

std::string device_name(int device) {
  cudaDeviceProp p;
  check(cudaGetDeviceProperties(&p, resolve(device)), "cudaGetDeviceProperties");
  return p.name;
}

int compute_capability(int device) {
  int d = resolve(device), major = 0, minor = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d), "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, d), "cudaDeviceGetAttribute");
  return major * 10 + minor;
}

void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

void synchronize(Stream stream) { check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"); }

StreamHandle::StreamHandle() {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  s_ = s;
}
StreamHandle::~StreamHandle() {
  if (s_) cudaStreamDestroy(s_);
}

DeviceBuffer::DeviceBuffer(size_t bytes) : n_(bytes) {
  if (bytes) check(cudaMalloc(&p_, bytes), "cudaMalloc");
}
// The pool would hand freed memory back to the driver at every synchronisation, and a decode step
// synchronises once per token: keeping up to 1 GiB of freed blocks makes the next step's
// allocations pool hits. Set once, for the device current at the first pooled allocation.
static void keep_pool_warm() {
  static const bool done = [] {
    int d = 0;
    cudaMemPool_t pool;
    if (cudaGetDevice(&d) == cudaSuccess && cudaDeviceGetDefaultMemPool(&pool, d) == cudaSuccess) {
      uint64_t keep = uint64_t{1} << 30;
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
    }
    cudaGetLastError();
    return true;
  }();
  (void)done;
}

DeviceBuffer::DeviceBuffer(size_t bytes, Stream ordered_on) : n_(bytes), ordered_on_(ordered_on), pooled_(true) {
  keep_pool_warm();
  if (bytes) check(cudaMallocAsync(&p_, bytes, ordered_on), "cudaMallocAsync");
}
DeviceBuffer::~DeviceBuffer() { reset(); }
DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : p_(o.p_), n_(o.n_), ordered_on_(o.ordered_on_), pooled_(o.pooled_) {
  o.p_ = nullptr;
  o.n_ = 0;
}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    std::swap(ordered_on_, o.ordered_on_);
    std::swap(pooled_, o.pooled_);
  }
  return *this;
}
void DeviceBuffer::reset() {
  // An error here (e.g. a dead context) cannot be reported from a destructor. cudaFree waits for
  // the whole device; cudaFreeAsync only orders the free after the stream's queued work.
  if (p_) pooled_ ? cudaFreeAsync(p_, ordered_on_) : cudaFree(p_);
  p_ = nullptr;
  n_ = 0;
}

void copy_to_device(void* dst, const void* host_src, size_t bytes, Stream stream) {
  if (bytes) check(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync H2D");
}
void copy_to_host(void* host_dst, const void* src, size_t bytes, Stream stream) {
  if (bytes) check(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync D2H");
}
void copy_device(void* dst, const void* src, size_t bytes, Stream stream) {
  if (bytes) check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync D2D");
}
void memset_zero(void* dst, size_t bytes, Stream stream) {
  if (bytes) check(cudaMemsetAsync(dst, 0, bytes, stream), "cudaMemsetAsync");
}

}  // namespace atoma::cuda
