// What every example program shares: its common options, where its run
// outputs go (build/runs/<name>/: metrics.csv and metrics.png), and the
// final-metric lines the tests read. Header-only; links libkiln_rt.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include <kiln/rt/Runtime.h>

#ifndef KILN_RUNS_DIR
#define KILN_RUNS_DIR "build/runs"
#endif
#ifndef KILN_SCRIPT_DIR
#define KILN_SCRIPT_DIR "scripts"
#endif

namespace kiln::example {

struct Common {
  std::string name;
  int64_t epochs = 0;
  uint64_t seed = 1;
  int64_t threads = 0;  // 0: KILN_NUM_THREADS, else every core
  std::string data;
  bool quick = false;
  std::string save, resume;
  std::string runDir;  // build/runs/<name>

  std::string metricsCsv() const { return runDir + "/metrics.csv"; }
  std::string metricsPng() const { return runDir + "/metrics.png"; }
};

// Reads --epochs, --seed, --threads, --data, --quick, --save, --resume and
// --run-dir. `quickEpochs` replaces the default epoch count under --quick.
inline Common parseCommon(rt::Args& args, const std::string& name, int64_t defaultEpochs, int64_t quickEpochs,
                          const std::string& defaultData) {
  Common c;
  c.name = name;
  c.quick = args.flag("quick");
  c.epochs = args.getInt("epochs", c.quick ? quickEpochs : defaultEpochs);
  c.seed = static_cast<uint64_t>(args.getInt("seed", 1));
  c.threads = args.getInt("threads", 0);
  c.data = args.getString("data", defaultData);
  c.save = args.getString("save", "");
  c.resume = args.getString("resume", "");
  c.runDir = args.getString("run-dir", std::string(KILN_RUNS_DIR) + "/" + name);
  if (c.epochs < 0) throw rt::Error("--epochs must be at least 0, got " + std::to_string(c.epochs));
  if (c.threads < 0) throw rt::Error("--threads must be 1 or more (0: the default), got " + std::to_string(c.threads));
  // the runtime's thread pool reads it once, when the first big GEMM runs
  if (c.threads > 0) ::setenv("KILN_NUM_THREADS", std::to_string(c.threads).c_str(), 1);
  return c;
}

// The option text every example's usage ends with.
inline const char* commonUsage() {
  return "  --epochs N       training epochs\n"
         "  --seed S         initialization and shuffling seed (default 1)\n"
         "  --threads N      threads for kiln's GEMMs (default: KILN_NUM_THREADS, else every core)\n"
         "  --data PATH      data set location\n"
         "  --quick          a small configuration (used by the tests)\n"
         "  --save FILE      write a checkpoint (safetensors) after training\n"
         "  --resume FILE    start from a checkpoint written by --save\n"
         "  --run-dir DIR    where metrics.csv and plots go (default build/runs/<name>)\n";
}

// Plots the metrics CSV next to it and says where both are.
inline void finishPlots(const Common& c, const std::string& title) {
  if (rt::plotMetrics(c.metricsCsv(), c.metricsPng(), title, KILN_SCRIPT_DIR))
    std::printf("metrics: %s, plot: %s\n", c.metricsCsv().c_str(), c.metricsPng().c_str());
  else
    std::printf("metrics: %s\n", c.metricsCsv().c_str());
}

}  // namespace kiln::example
