// Reference interpreter. The loop orders here define the summation order the
// compiled kernels follow, so results agree bit for bit where they can.
#include "Interpreter.h"

#include <cmath>
#include <fmt/format.h>
#include <limits>

#include "ir/InitSpec.h"
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

namespace {

float scalarOp(OpKind op, float a, float b) {
  switch (op) {
    case OpKind::Add: return a + b;
    case OpKind::Sub: return a - b;
    case OpKind::Mul: return a * b;
    case OpKind::Div: return a / b;
    case OpKind::Maximum: return (a > b || a != a) ? a : b;
    case OpKind::Neg: return -a;
    case OpKind::Exp: return std::exp(a);
    case OpKind::Log: return std::log(a);
    case OpKind::Sqrt: return std::sqrt(a);
    case OpKind::Relu: return a < 0.0f ? 0.0f : a;
    case OpKind::Tanh: return std::tanh(a);
    case OpKind::Sigmoid: return 1.0f / (1.0f + std::exp(-a));
    case OpKind::Step: return a > 0.0f ? 1.0f : 0.0f;
    case OpKind::Input: case OpKind::Param: case OpKind::State: case OpKind::Constant:
    case OpKind::Sum: case OpKind::ReduceMax: case OpKind::Argmax: case OpKind::Reshape:
    case OpKind::Transpose: case OpKind::Broadcast: case OpKind::MatMul: case OpKind::LogSoftmax:
    case OpKind::OneHot:
      break;
  }
  throw ir::CompileError(fmt::format("interpreter: {} is not a scalar op", ir::opName(op)));
}

// Calls f(inOffset, outOffset) for every element of `in` in row-major
// order, where outOffset uses `outStrides` (0 on reduced/broadcast dims).
template <typename F>
void forEachIndex(const ir::Shape& shape, const std::vector<int64_t>& inStrides,
                  const std::vector<int64_t>& outStrides, F f) {
  size_t r = shape.size();
  std::vector<int64_t> idx(r, 0);
  int64_t total = 1;
  for (int64_t d : shape) total *= d;
  for (int64_t n = 0; n < total; ++n) {
    int64_t io = 0, oo = 0;
    for (size_t d = 0; d < r; ++d) {
      io += idx[d] * inStrides[d];
      oo += idx[d] * outStrides[d];
    }
    f(io, oo);
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

HostTensor evalNode(const ir::Graph& g, ValueId v, const std::vector<HostTensor>& env) {
  const Node& n = g.node(v);
  HostTensor out = HostTensor::zeros(n.type);
  auto in = [&](size_t k) -> const HostTensor& { return env[n.operands[k]]; };
  switch (ir::opFamily(n.op)) {
    case FamilyKind::Source:
      throw ir::CompileError(fmt::format("interpreter: no value bound for {}", ir::describeValue(g, v)));
    case FamilyKind::Fill: {
      double val = n.attrs.getFloat("value");
      if (n.type.dtype == DType::F32) std::fill(out.f.begin(), out.f.end(), static_cast<float>(val));
      else std::fill(out.i.begin(), out.i.end(), static_cast<int32_t>(val));
      return out;
    }
    case FamilyKind::Map: {
      const HostTensor& a = in(0);
      for (int64_t k = 0; k < out.size(); ++k)
        out.f[k] = scalarOp(n.op, a.f[k], n.operands.size() > 1 ? in(1).f[k] : 0.0f);
      return out;
    }
    case FamilyKind::Reduce: {
      const HostTensor& a = in(0);
      bool isMax = n.op == OpKind::ReduceMax;
      std::fill(out.f.begin(), out.f.end(), isMax ? -std::numeric_limits<float>::infinity() : 0.0f);
      const auto& axes = n.attrs.getInts("axes");
      // Output strides over the input's dims: 0 on reduced axes.
      std::vector<int64_t> keepShape = a.type.shape;
      for (int64_t ax : axes) keepShape[ax] = 1;
      std::vector<int64_t> os = ir::stridesOf(keepShape);
      for (int64_t ax : axes) os[ax] = 0;
      forEachIndex(a.type.shape, ir::stridesOf(a.type.shape), os, [&](int64_t io, int64_t oo) {
        float x = a.f[io];
        if (!isMax) out.f[oo] = out.f[oo] + x;
        else if (x > out.f[oo] || x != x) out.f[oo] = x;
      });
      return out;
    }
    case FamilyKind::ArgReduce: {
      const HostTensor& a = in(0);
      int64_t outer, len, inner;
      ir::splitAxis(a.type.shape, n.attrs.getInt("axis"), outer, len, inner);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          const float* p = a.f.data() + o * len * inner + i;
          int32_t best = 0;
          for (int64_t k = 1; k < len; ++k)
            if (p[k * inner] > p[best * inner]) best = static_cast<int32_t>(k);
          out.i[o * inner + i] = best;
        }
      return out;
    }
    case FamilyKind::Copy:
      out.f = in(0).f;
      out.i = in(0).i;
      return out;
    case FamilyKind::Transpose:
    case FamilyKind::Broadcast: {
      const HostTensor& a = in(0);
      int64_t k = 0;
      forEachIndex(n.type.shape, ir::layoutStrides(g, n), ir::stridesOf(n.type.shape), [&](int64_t io, int64_t) {
        if (n.type.dtype == DType::F32) out.f[k++] = a.f[io];
        else out.i[k++] = a.i[io];
      });
      return out;
    }
    case FamilyKind::MatMul: {
      const HostTensor &a = in(0), &b = in(1);
      bool ta = n.attrs.getInt("ta", 0), tb = n.attrs.getInt("tb", 0);
      int64_t m = n.type.shape[0], nn = n.type.shape[1], kk = ta ? a.type.shape[0] : a.type.shape[1];
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < nn; ++j) {
          float acc = 0.0f;
          for (int64_t k = 0; k < kk; ++k) {
            float x = ta ? a.f[k * m + i] : a.f[i * kk + k];
            float y = tb ? b.f[j * kk + k] : b.f[k * nn + j];
            acc = acc + x * y;
          }
          out.f[i * nn + j] = acc;
        }
      return out;
    }
    case FamilyKind::LogSoftmax: {
      const HostTensor& a = in(0);
      int64_t outer, len, inner;
      ir::splitAxis(a.type.shape, n.attrs.getInt("axis"), outer, len, inner);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          int64_t base = o * len * inner + i;
          float m = -std::numeric_limits<float>::infinity();
          for (int64_t k = 0; k < len; ++k) m = a.f[base + k * inner] > m ? a.f[base + k * inner] : m;
          float s = 0.0f;
          for (int64_t k = 0; k < len; ++k) s = s + std::exp(a.f[base + k * inner] - m);
          float ls = std::log(s);
          for (int64_t k = 0; k < len; ++k) out.f[base + k * inner] = (a.f[base + k * inner] - m) - ls;
        }
      return out;
    }
    case FamilyKind::OneHot: {
      const HostTensor& a = in(0);
      int64_t depth = n.attrs.getInt("depth");
      for (int64_t k = 0; k < a.size(); ++k) {
        int32_t c = a.i[k];
        if (c >= 0 && c < depth) out.f[k * depth + c] = 1.0f;
      }
      return out;
    }
  }
  throw ir::CompileError("interpreter: unknown op family");
}

}  // namespace

std::vector<HostTensor> evaluate(const ir::Graph& g, const std::vector<ValueId>& roots,
                                 const std::map<ValueId, HostTensor>& sources) {
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
