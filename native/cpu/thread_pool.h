// The engine's one persistent pool of worker threads. ATOMA_THREADS sets its size at first use
// (default: all cores); set_thread_count() resizes it. Work is split into tasks by the caller so
// that results never depend on how many threads run them.
#pragma once
#include <cstddef>
#include <functional>

namespace atoma {

size_t thread_count();
void set_thread_count(size_t n);   // throws Error("ERR_BAD_THREADS") for 0 or absurd sizes

// Runs fn(task) for every task in [0, n_tasks), on the pool and the calling thread, and returns
// when all are done. A call from inside a task runs its tasks inline (no deadlock). Calls from
// several threads at once are serialised. The first exception thrown by a task is rethrown.
void parallel_for(size_t n_tasks, const std::function<void(size_t)>& fn);

// Counts of the parallel_for calls handed to a pool of several threads with several tasks, and of
// their tasks, since the process started. Which thread runs a task is the scheduler's choice (and
// never changes a result); whether work was split is not, so tests read these to know that a
// shape really took the multi-threaded path.
struct PoolStats {
  size_t parallel_calls;
  size_t tasks;
};
PoolStats pool_stats();

}  // namespace atoma
