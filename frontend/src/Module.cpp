// Module, layers, and the JIT/AOT entry points of the public API.
#include <cmath>
#include <cstdio>
#include <fmt/format.h>
#include <kiln/kiln.h>

#include "driver/Aot.h"
#include "ir/Text.h"

namespace kiln {

void Module::addFunction(std::string name, std::vector<Tensor> inputs, std::vector<Tensor> outputs, Loc loc) {
  std::vector<std::pair<std::string, Tensor>> named;
  for (size_t i = 0; i < outputs.size(); ++i) named.emplace_back(fmt::format("out{}", i), outputs[i]);
  addFunction(std::move(name), std::move(inputs), std::move(named), loc);
}

void Module::addFunction(std::string name, std::vector<Tensor> inputs, std::vector<std::pair<std::string, Tensor>> outputs,
                         Loc loc) {
  ir::Graph& ir = g_->ir();
  std::string where = g_->locOf(loc).str();
  if (ir.findFunction(name)) throw Error(fmt::format("{}: addFunction: function @{} already exists", where, name));
  ir::Function f;
  f.name = std::move(name);
  for (const Tensor& t : inputs) {
    if (&t.graph() != g_ || ir.node(t.id()).op != ir::OpKind::Input)
      throw Error(fmt::format("{}: addFunction @{}: {} is not an input of this graph", where, f.name,
                              ir::describeValue(ir, t.id())));
    f.inputs.push_back(t.id());
  }
  for (const auto& [n, t] : outputs) {
    if (&t.graph() != g_) throw Error(fmt::format("{}: addFunction @{}: output '{}' belongs to another graph", where, f.name, n));
    f.outputs.push_back({n, t.id()});
  }
  ir.functions().push_back(f);
  auto problems = ir::verifyGraph(ir);
  if (!problems.empty()) {
    ir.functions().pop_back();
    throw Error(fmt::format("{}: addFunction @{}: {}", where, f.name, problems.front()));
  }
}

void Module::addTrainStep(std::string name, Tensor loss, const Optimizer& opt, const TrainOptions& options,
                          Loc loc) {
  if (builtText_.empty()) builtText_ = ir::printGraph(g_->ir());
  kiln::addTrainStep(*g_, std::move(name), loss, opt, options, loc);
}

std::string Module::builtText() const { return builtText_.empty() ? ir::printGraph(g_->ir()) : builtText_; }

Linear::Linear(Graph& g, const std::string& name, int64_t in, int64_t out, bool hasBias, Loc loc) {
  double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight = g.param(name + ".w", {in, out}, Init::uniform(-bound, bound), loc);
  if (hasBias) bias = g.param(name + ".b", {out}, Init::uniform(-bound, bound), loc);
}

Tensor Linear::operator()(Tensor x, Loc loc) const {
  Tensor y = matmul(x, weight, false, false, loc);
  return bias.valid() ? add(y, bias, loc) : y;
}

namespace jit {
std::unique_ptr<CompiledModule> compile(const Module& m, const CompileOptions& opts) {
  return jit::compile(m.ir(), opts, m.builtText());
}
}  // namespace jit

namespace aot {
int emit(const Module& m, const std::string& name, int argc, char** argv) {
  try {
    CompileOptions opts;
    std::string outDir = ".";
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw Error(fmt::format("option {} needs a value", a));
        return argv[++i];
      };
      if (a == "--out-dir") outDir = value();
      else if (a == "--dump") opts.dumpDir = value();
      else if (a == "--target-cpu") opts.targetCpu = value();
      else if (a == "--checked") opts.checked = true;
      else if (a == "--help") {
        std::printf("usage: %s [--out-dir DIR] [--dump DIR] [--target-cpu CPU] [--checked]\n", argv[0]);
        return 0;
      } else {
        throw Error(fmt::format("unknown option '{}' (try --help)", a));
      }
    }
    if (name.empty() || aot::identifierFor(name) != name)
      throw Error(fmt::format("aot: model name \"{}\" must be a C identifier", name));
    driver::Compiled c = aot::emitFiles(m.ir(), name, outDir, opts, m.builtText());
    std::fprintf(stderr, "kiln: wrote %s/%s.o and %s.h (%lld ops, %lld kernels, %lld bytes, %.0f ms)%s%s\n", outDir.c_str(),
                 name.c_str(), name.c_str(), static_cast<long long>(c.stats.opsAfter), static_cast<long long>(c.stats.kernels),
                 static_cast<long long>(c.stats.bufferBytes), c.stats.totalMs, c.dumpDir.empty() ? "" : "; dumps in ",
                 c.dumpDir.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argc > 0 ? argv[0] : "kiln", e.what());
    return 1;
  }
}
}  // namespace aot

}  // namespace kiln
