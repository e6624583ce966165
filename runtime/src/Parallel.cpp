// kiln_rt_parallel_for: a small fork-join pool. Workers spin briefly on a
// generation counter before sleeping on a condition variable, because the
// GEMM tiles it runs take tens of microseconds and a sleeping thread takes
// about as long to wake. Items are handed out by an atomic counter.
#include "kiln/rt/Parallel.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

namespace kiln::rt {

namespace {

// below this many flops a parallel_for runs on the calling thread
constexpr int64_t kMinParallelCost = int64_t(1) << 21;

int readThreads() {
  if (const char* env = std::getenv("KILN_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 1024) return static_cast<int>(v);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Set while a thread runs the pool's items: a parallel_for called from an
// item (a conv's GEMM) runs inline without asking the pool, which its own
// caller holds (try_lock on a mutex the thread owns is undefined).
thread_local bool inItem = false;

class Pool {
public:
  explicit Pool(int n) {
    for (int t = 1; t < n; ++t) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  // false if another caller holds the pool
  bool run(int64_t n, void (*fn)(void*, int64_t), void* ctx) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(m_);
      fn_ = fn;
      ctx_ = ctx;
      n_ = n;
      next_.store(0);
      pending_.store(static_cast<int64_t>(workers_.size()));
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    drain();
    while (pending_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    return true;
  }

private:
  void drain() {
    inItem = true;
    for (int64_t i; (i = next_.fetch_add(1)) < n_;) fn_(ctx_, i);
    inItem = false;
  }

  void work() {
    uint64_t seen = 0;
    for (;;) {
      // spin a little, then sleep until the next generation
      for (int spin = 0; spin < 2000 && generation_.load(std::memory_order_acquire) == seen; ++spin)
        std::this_thread::yield();
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return generation_.load() != seen; });
      }
      std::unique_lock<std::mutex> lock(m_);
      seen = generation_.load();
      if (stop_) return;
      lock.unlock();
      drain();
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex m_, busy_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_{0}, pending_{0};
  int64_t n_ = 0;
  void (*fn_)(void*, int64_t) = nullptr;
  void* ctx_ = nullptr;
  bool stop_ = false;
};

// A forked child has only the forking thread: its copy of the pool must not
// wait for workers that do not exist there, so it runs everything inline.
std::atomic<bool> inForkedChild{false};

int threadsWithForkGuard() {
  pthread_atfork(nullptr, nullptr, [] { inForkedChild.store(true); });
  return threads();
}

Pool& pool() {
  static Pool p(threadsWithForkGuard());
  return p;
}

}  // namespace

int threads() {
  static const int n = readThreads();
  return n;
}

}  // namespace kiln::rt

extern "C" void kiln_rt_parallel_for(int64_t n, void (*fn)(void* ctx, int64_t i), void* ctx, int64_t cost) {
  if (n > 1 && cost >= kiln::rt::kMinParallelCost && kiln::rt::threads() > 1 && !kiln::rt::inItem &&
      !kiln::rt::inForkedChild.load() &&
      kiln::rt::pool().run(n, fn, ctx))
    return;
  for (int64_t i = 0; i < n; ++i) fn(ctx, i);
}
