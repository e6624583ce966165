// The runtime's thread pool, which compiled code calls to spread a kernel's
// independent work items (GEMM tiles) over cores. One pool per process,
// KILN_NUM_THREADS threads (default: the CPUs in the process's affinity
// mask), the caller counted as one of them. A call that finds the pool busy
// (another model instance in another thread) runs its items itself, so
// parallel_for is safe from any thread and never waits for someone else's
// work. Which thread runs an item never changes what it computes: results
// do not depend on the thread count.
#pragma once

#include <cstdint>

extern "C" {
// Runs fn(ctx, i) for every i in [0, n), on up to threads() threads when
// `cost` (the caller's estimate of the work, in flops) is worth waking them
// for, else on the calling thread. Returns when all items are done.
void kiln_rt_parallel_for(int64_t n, void (*fn)(void* ctx, int64_t i), void* ctx, int64_t cost);
}

namespace kiln::rt {

// The pool's thread count (KILN_NUM_THREADS, else the CPUs this process may
// run on; read once; >= 1).
int threads();

}  // namespace kiln::rt
