// The AOT generator of one benchmark model: BENCH_WORKLOAD (set per target in
// bench/CMakeLists.txt) names the workload of bench/Workloads.h to build.
#include "Workloads.h"

#ifndef BENCH_WORKLOAD
#error "BENCH_WORKLOAD must name a workload of bench/Workloads.h"
#endif

int main(int argc, char** argv) {
  kiln::Graph g;
  kiln::Module m(g);
  bench::buildWorkload(BENCH_WORKLOAD, g, m);
  return kiln::aot::emit(m, "bench_" BENCH_WORKLOAD, argc, argv);
}
