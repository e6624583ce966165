// The runtime pool's thread placement, checked in fresh processes (the pool
// and its thread count are made once per process):
//
//   kiln_threads_probe one-cpu   with this process restricted to one CPU and
//                                KILN_NUM_THREADS unset, threads() must be 1
//                                and parallel_for must still run every item
//   kiln_threads_probe workers   3 threads: each worker, while running an
//                                item, must have the process's whole affinity
//                                mask back (a worker first moves itself off
//                                its creator's CPU; left pinned to one CPU, the
//                                scheduler could never move it under load)
//
// Exit 0 when the property holds; otherwise a message on stderr and exit 1.
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "kiln/rt/Parallel.h"

namespace {

int fail(const char* what) {
  std::fprintf(stderr, "kiln_threads_probe: %s\n", what);
  return 1;
}

int oneCpu() {
  unsetenv("KILN_NUM_THREADS");
  cpu_set_t mask;
  if (sched_getaffinity(0, sizeof mask, &mask) != 0) return fail("sched_getaffinity failed");
  int first = -1;
  for (int c = 0; c < CPU_SETSIZE && first < 0; ++c)
    if (CPU_ISSET(c, &mask)) first = c;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) return fail("sched_setaffinity failed");
  if (kiln::rt::threads() != 1) {
    std::fprintf(stderr, "kiln_threads_probe: threads() is %d on a process allowed 1 CPU\n", kiln::rt::threads());
    return 1;
  }
  std::atomic<int> hits[100] = {};
  kiln_rt_parallel_for(
      100, [](void* ctx, int64_t i) { static_cast<std::atomic<int>*>(ctx)[i].fetch_add(1); }, hits, int64_t(1) << 30);
  for (auto& h : hits)
    if (h.load() != 1) return fail("an item did not run exactly once");
  return 0;
}

// Three items, one per thread's own range: each waits (up to 20 s) until all
// three have started, so every thread runs exactly one, and records whether
// its thread had the whole process mask.
struct Meeting {
  cpu_set_t process;
  std::atomic<int> started{0};
  std::atomic<int> wholeMask{0};
  std::atomic<int> timedOut{0};
};

int workers() {
  setenv("KILN_NUM_THREADS", "3", 1);
  Meeting m;
  if (sched_getaffinity(0, sizeof m.process, &m.process) != 0) return fail("sched_getaffinity failed");
  if (kiln::rt::threads() != 3) return fail("KILN_NUM_THREADS=3 was not taken");
  kiln_rt_parallel_for(
      3,
      [](void* ctx, int64_t) {
        auto& m = *static_cast<Meeting*>(ctx);
        m.started.fetch_add(1);
        cpu_set_t mine;
        if (sched_getaffinity(0, sizeof mine, &mine) == 0 && CPU_EQUAL(&mine, &m.process)) m.wholeMask.fetch_add(1);
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (m.started.load() < 3)
          if (std::chrono::steady_clock::now() > until) {
            m.timedOut.store(1);
            return;
          }
      },
      &m, int64_t(1) << 30);
  if (m.timedOut.load()) return fail("the pool's 3 threads did not all start an item within 20 s");
  if (m.wholeMask.load() != 3) {
    std::fprintf(stderr, "kiln_threads_probe: %d of 3 threads had the process's affinity mask\n", m.wholeMask.load());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "one-cpu") == 0) return oneCpu();
  if (argc == 2 && std::strcmp(argv[1], "workers") == 0) return workers();
  return fail("usage: kiln_threads_probe one-cpu|workers");
}
