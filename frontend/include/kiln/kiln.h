// kiln's public API: build a graph with the DSL, add entry points and a
// training step to a Module, then compile it just in time (jit::compile) or
// ahead of time (aot::emit).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/Grad.h"
#include "autodiff/TrainStep.h"
#include "driver/Compile.h"
#include "driver/Jit.h"
#include "ir/Builder.h"
#include "kiln/Layers.h"

namespace kiln {

// A model's entry points over one graph. Functions share the graph's params
// and state.
class Module {
public:
  explicit Module(Graph& g) : g_(&g) {}

  // An entry point computing `outputs` from `inputs`. Outputs are named
  // out0, out1, ... unless given as {"name", tensor} pairs.
  void addFunction(std::string name, std::vector<Tensor> inputs, std::vector<Tensor> outputs, Loc loc = Loc::current());
  void addFunction(std::string name, std::vector<Tensor> inputs, std::vector<std::pair<std::string, Tensor>> outputs,
                   Loc loc = Loc::current());
  // Forward + backward + optimizer update of every param `loss` depends on
  // (except options.frozen), as one function with output "loss" (plus
  // "grad_norm" with options.clipNorm and "lr" with a schedule). See
  // TrainOptions in autodiff/TrainStep.h and docs/optimizers.md.
  void addTrainStep(std::string name, Tensor loss, const Optimizer& opt, const TrainOptions& options = {},
                    Loc loc = Loc::current());

  Graph& graph() const { return *g_; }
  const ir::Graph& ir() const { return g_->ir(); }
  // The graph as built, before any autodiff (the 00-built.kir dump).
  std::string builtText() const;

private:
  Graph* g_;
  std::string builtText_;  // captured at the first addTrainStep
};

// A layer y = x W + b with W f32[in,out], b f32[out], both initialized
// U(-1/sqrt(in), 1/sqrt(in)) as PyTorch's nn.Linear does.
class Linear {
public:
  Linear(Graph& g, const std::string& name, int64_t in, int64_t out, bool bias = true, Loc loc = Loc::current());
  Tensor operator()(Tensor x, Loc loc = Loc::current()) const;
  Tensor weight, bias;
};

namespace jit {
std::unique_ptr<CompiledModule> compile(const Module& m, const CompileOptions& opts = {});
}

namespace aot {
// The generator's main: writes NAME.o and NAME.h. Arguments:
//   --out-dir DIR   where to write (default: current directory)
//   --dump DIR      dump every stage there (also KILN_DUMP)
//   --target-cpu CPU  cross-compile for another x86 cpu (default: host)
//   --checked       checked mode: stop at the first non-finite value (also KILN_CHECKED=1)
// Returns a process exit code and prints errors to stderr.
int emit(const Module& m, const std::string& name, int argc, char** argv);
}

}  // namespace kiln
