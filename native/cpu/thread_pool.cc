#include "thread_pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../core/error.h"

namespace atoma {
namespace {

thread_local bool t_inside_task = false;

class Pool {
 public:
  explicit Pool(size_t n) : size_(n) {
    for (size_t i = 1; i < n; ++i) workers_.emplace_back([this] { work_loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  size_t size() const { return size_; }

  void run(size_t n_tasks, const std::function<void(size_t)>& fn) {
    std::lock_guard<std::mutex> job_lock(job_mu_);
    fn_ = &fn;
    n_tasks_ = n_tasks;
    next_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    pending_.store(workers_.size(), std::memory_order_relaxed);
    {
      // Publishing under the lock pairs with the sleepers' predicate: no wake-up is lost.
      std::lock_guard<std::mutex> lk(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    drain();
    // Short kernels (a decode step's matrix products) finish in tens of microseconds: spin a
    // little before sleeping so the caller does not pay a futex wake-up per kernel.
    for (int i = 0; i < kSpin && pending_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
    if (pending_.load(std::memory_order_acquire) != 0) {
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  static constexpr int kSpin = 1 << 14;

  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  void drain() {
    t_inside_task = true;
    for (;;) {
      size_t i = next_.fetch_add(1);
      if (i >= n_tasks_) break;
      try {
        (*fn_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!error_) error_ = std::current_exception();
        next_.store(n_tasks_);
      }
    }
    t_inside_task = false;
  }

  void work_loop() {
    size_t seen = 0;
    for (;;) {
      // Spin briefly for the next job (kernels come in bursts), then sleep.
      for (int i = 0; i < kSpin && generation_.load(std::memory_order_acquire) == seen &&
                      !stop_.load(std::memory_order_relaxed); ++i)
        cpu_relax();
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; });
      }
      if (stop_.load()) return;
      seen = generation_.load(std::memory_order_acquire);
      drain();
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(mu_);
        done_cv_.notify_one();
      }
    }
  }

  size_t size_;
  std::vector<std::thread> workers_;
  std::mutex job_mu_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(size_t)>* fn_ = nullptr;
  size_t n_tasks_ = 0;
  std::atomic<size_t> next_{0};
  std::atomic<size_t> pending_{0};
  std::atomic<size_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
};

std::mutex g_pool_mu;
std::shared_ptr<Pool> g_pool;

size_t default_threads() {
  const char* env = std::getenv("ATOMA_THREADS");
  if (env && *env) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (*end != '\0' || v < 1 || v > 1024)
      throw Error("ERR_BAD_THREADS", std::string("ATOMA_THREADS must be an integer in 1..1024, got '") + env + "'");
    return static_cast<size_t>(v);
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? hc : 1;
}

std::shared_ptr<Pool> pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (!g_pool) g_pool = std::make_shared<Pool>(default_threads());
  return g_pool;
}

}  // namespace

size_t thread_count() { return pool()->size(); }

void set_thread_count(size_t n) {
  if (n < 1 || n > 1024) throw Error("ERR_BAD_THREADS", "thread count must be in 1..1024, got " + std::to_string(n));
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (g_pool && g_pool->size() == n) return;
  g_pool = std::make_shared<Pool>(n);
}

namespace {
std::atomic<size_t> g_parallel_calls{0};
std::atomic<size_t> g_parallel_tasks{0};
}  // namespace

void parallel_for(size_t n_tasks, const std::function<void(size_t)>& fn) {
  if (n_tasks == 0) return;
  if (t_inside_task || n_tasks == 1) {
    for (size_t i = 0; i < n_tasks; ++i) fn(i);
    return;
  }
  std::shared_ptr<Pool> p = pool();
  if (p->size() == 1) {
    for (size_t i = 0; i < n_tasks; ++i) fn(i);
    return;
  }
  g_parallel_calls.fetch_add(1, std::memory_order_relaxed);
  g_parallel_tasks.fetch_add(n_tasks, std::memory_order_relaxed);
  p->run(n_tasks, fn);
}

PoolStats pool_stats() {
  return {g_parallel_calls.load(std::memory_order_relaxed), g_parallel_tasks.load(std::memory_order_relaxed)};
}

}  // namespace atoma
