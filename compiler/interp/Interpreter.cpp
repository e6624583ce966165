// Reference interpreter. The loop orders here define the summation order the
// compiled kernels follow, so results agree bit for bit where they can.
#include "Interpreter.h"
#include "Kernels.h"

#include <cmath>
#include <fmt/format.h>
#include <limits>

#include "ir/InitSpec.h"
#include "kiln/rt/FloatMode.h"
#include "ir/Shapes.h"
#include "ir/Text.h"

namespace kiln::interp {

using ir::DType;
using ir::FamilyKind;
using ir::Node;
using ir::OpKind;
using ir::ValueId;

HostTensor HostTensor::zeros(const ir::TensorType& t) {
  HostTensor h;
  h.type = t;
  if (t.dtype == DType::F32) h.f.assign(static_cast<size_t>(t.numElements()), 0.0f);
  else h.i.assign(static_cast<size_t>(t.numElements()), 0);
  return h;
}

std::vector<HostTensor> evaluate(const ir::Graph& g, const std::vector<ValueId>& roots,
                                 const std::map<ValueId, HostTensor>& sources) {
  // compiled code's floating-point mode (subnormals flushed, rt/FloatMode.h),
  // so the interpreter and the compiled code agree bit for bit; `fold`
  // evaluates constants through here too
  rt::ScopedFlushDenormals ftz;
  std::vector<bool> live = ir::ancestors(g, roots);
  std::vector<HostTensor> env(static_cast<size_t>(g.size()));
  for (ValueId v = 0; v < g.size(); ++v) {
    if (!live[v]) continue;
    if (ir::isSource(g.node(v).op)) {
      auto it = sources.find(v);
      if (it == sources.end())
        throw ir::CompileError(fmt::format("interpreter: no value bound for {}", ir::describeValue(g, v)));
      if (it->second.type != g.type(v))
        throw ir::CompileError(fmt::format("interpreter: value bound for {} has type {}", ir::describeValue(g, v),
                                           ir::typeStr(it->second.type)));
      env[v] = it->second;
      continue;
    }
    env[v] = evalNode(g, v, env);
  }
  std::vector<HostTensor> out;
  for (ValueId r : roots) out.push_back(env[r]);
  return out;
}

Session::Session(const ir::Graph& g) : g_(g) {
  for (ValueId v = 0; v < g.size(); ++v)
    if (ir::isSource(g.node(v).op)) sources_[v] = HostTensor::zeros(g.type(v));
}

void Session::init(uint64_t seed) {
  for (auto& [v, t] : sources_)
    if (g_.node(v).op != OpKind::Input) ir::initSource(g_.node(v), t.data(), seed);
}

HostTensor& Session::source(std::string_view name) {
  ValueId v = g_.findSource(name);
  if (v < 0) throw ir::CompileError(fmt::format("interpreter: no input, param or state named \"{}\"", name));
  return sources_.at(v);
}

void Session::run(std::string_view function) {
  const ir::Function* f = g_.findFunction(function);
  if (!f) throw ir::CompileError(fmt::format("interpreter: no function @{}", function));
  std::vector<ValueId> roots;
  for (const ir::Output& o : f->outputs) roots.push_back(o.value);
  for (const ir::Update& u : f->updates) roots.push_back(u.value);
  std::vector<HostTensor> vals = evaluate(g_, roots, sources_);
  size_t k = 0;
  for (const ir::Output& o : f->outputs) outputs_[fmt::format("{}.{}", f->name, o.name)] = vals[k++];
  for (const ir::Update& u : f->updates) sources_[u.target] = vals[k++];
}

const HostTensor& Session::output(std::string_view function, std::string_view name) const {
  auto it = outputs_.find(fmt::format("{}.{}", function, name));
  if (it == outputs_.end())
    throw ir::CompileError(fmt::format("interpreter: @{} has no output '{}' (or has not run)", function, name));
  return it->second;
}

}  // namespace kiln::interp
