// kiln_parity_dump: computes what check.py compares with PyTorch. For one
// parity case (cases.cpp) or any .kir file it fills the sources with
// deterministic random values, computes the outputs, and for cases the
// gradients of sum(out * cotangent) with kiln::grad, each both with the
// interpreter and with the JIT, and writes one directory:
//
//   forward.kir     the graph torch evaluates (no gradient nodes)
//   manifest.json   what the .npy files are (see writeManifest)
//   *.npy           source values, cotangents, kiln's outputs and gradients
//
// Usage: kiln_parity_dump --list
//        kiln_parity_dump --case NAME --out DIR [--seed N]
//        kiln_parity_dump --kir FILE [--function F] [--grad] --out DIR [--seed N]
//        kiln_parity_dump --coverage
#include <kiln/rt/Args.h>
#include <kiln/rt/Random.h>

#include <cstdio>
#include <fmt/ranges.h>
#include <filesystem>
#include <fstream>
#include <set>

#include "Parity.h"
#include "interp/Interpreter.h"
#include "ir/InitSpec.h"
#include "ir/Text.h"

namespace fs = std::filesystem;
using namespace kiln;
using interp::HostTensor;

namespace {

// ---- files ----

void writeBytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw Error(fmt::format("cannot write {}", p.string()));
}

// NumPy's .npy format, version 1.0: magic, header length, a Python dict
// literal padded with spaces to a multiple of 64 bytes, then the raw
// little-endian data in C order.
std::string npyBytes(const HostTensor& t) {
  bool f32 = t.type.dtype == DType::F32;
  std::string shape;
  for (int64_t d : t.type.shape) shape += fmt::format("{}, ", d);
  if (t.type.shape.size() > 1) shape.resize(shape.size() - 2);  // (2, 3); (3,) keeps its comma
  std::string header =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", f32 ? "<f4" : "<i4", shape);
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  const char* data = f32 ? reinterpret_cast<const char*>(t.f.data()) : reinterpret_cast<const char*>(t.i.data());
  out.append(data, static_cast<size_t>(t.size()) * 4);
  return out;
}

std::string jsonStr(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", c);
    else out += c;
  }
  return out + "\"";
}

// ---- values ----

HostTensor randomTensor(const ir::TensorType& type, const parity::Range& r, uint64_t seed, uint64_t stream) {
  HostTensor t = HostTensor::zeros(type);
  for (int64_t i = 0; i < t.size(); ++i) {
    float u = rt::uniform01(seed, stream, static_cast<uint64_t>(i));
    if (type.dtype == DType::F32) t.f[i] = r.lo + (r.hi - r.lo) * u;
    else t.i[i] = static_cast<int32_t>(rt::uniformBelow(static_cast<uint64_t>(r.classes), seed, stream, i));
  }
  return t;
}

// The class count of an i32 input: the depth of a onehot reading it, else 10.
int32_t labelClasses(const ir::Graph& g, ir::ValueId v) {
  for (const ir::Node& n : g.nodes())
    if (n.op == ir::OpKind::OneHot && n.operands[0] == v) return static_cast<int32_t>(n.attrs.getInt("depth"));
  return 10;
}

// ---- one run ----

// What to compute: `function` of `g` (the one torch evaluates from kirText),
// and optionally `gradFunction`, whose outputs g0, g1, ... are the gradients
// wrt the sources named in `wrt`, given the cotangent inputs in `cotangents`
// (one per f32 output of `function`, "" for i32 outputs).
struct Job {
  std::string label;
  const ir::Graph* g = nullptr;
  std::string kirText;
  std::string function;
  std::string gradFunction;
  std::vector<std::string> wrt;
  std::vector<std::string> cotangents;
  std::vector<std::pair<std::string, HostTensor>> sources;  // every source, cotangents too
  double rtol = 0, atol = 0;
};

struct Results {
  std::vector<HostTensor> outputs;  // function outputs, then update values
  std::vector<HostTensor> grads;
};

Results runInterpreter(const Job& job, uint64_t seed) {
  interp::Session s(*job.g);
  s.init(seed);
  for (const auto& [name, t] : job.sources) s.source(name) = t;
  Results r;
  if (!job.gradFunction.empty()) {
    s.run(job.gradFunction);  // first: it has no updates, so it cannot change what the function sees
    for (size_t k = 0; k < job.wrt.size(); ++k) r.grads.push_back(s.output(job.gradFunction, fmt::format("g{}", k)));
  }
  const ir::Function& f = *job.g->findFunction(job.function);
  s.run(job.function);
  for (const ir::Output& o : f.outputs) r.outputs.push_back(s.output(job.function, o.name));
  for (const ir::Update& u : f.updates) r.outputs.push_back(s.source(job.g->node(u.target).name));
  return r;
}

HostTensor readBuffer(jit::CompiledModule& m, const std::string& name) {
  HostTensor t = HostTensor::zeros(m.type(name));
  if (t.type.dtype == DType::F32) std::copy(m.f32(name), m.f32(name) + t.size(), t.f.begin());
  else std::copy(m.i32(name), m.i32(name) + t.size(), t.i.begin());
  return t;
}

Results runJit(const Job& job, uint64_t seed) {
  auto m = jit::compile(*job.g);
  m->init(seed);
  for (const auto& [name, t] : job.sources) {
    if (t.type.dtype == DType::F32) std::copy(t.f.begin(), t.f.end(), m->f32(name));
    else std::copy(t.i.begin(), t.i.end(), m->i32(name));
  }
  Results r;
  if (!job.gradFunction.empty()) {
    m->run(job.gradFunction);
    for (size_t k = 0; k < job.wrt.size(); ++k)
      r.grads.push_back(readBuffer(*m, fmt::format("{}.g{}", job.gradFunction, k)));
  }
  const ir::Function& f = *job.g->findFunction(job.function);
  m->run(job.function);
  for (const ir::Output& o : f.outputs) r.outputs.push_back(readBuffer(*m, fmt::format("{}.{}", job.function, o.name)));
  for (const ir::Update& u : f.updates) r.outputs.push_back(readBuffer(*m, job.g->node(u.target).name));
  return r;
}

// manifest.json: {"case", "kir", "function", "tolerance": {"rtol", "atol"}
// (0 = default), "sources": [{"name", "file"}], "outputs": [{"name",
// "kind": "output"|"update", "cotangent": file|null, "interp", "jit"}],
// "grads": [{"source", "interp", "jit"}]}. An update's name is its target's.
void writeJob(const Job& job, const fs::path& dir, uint64_t seed) {
  Results ri = runInterpreter(job, seed);
  Results rj = runJit(job, seed);
  fs::create_directories(dir);
  writeBytes(dir / "forward.kir", job.kirText);

  std::set<std::string> cotangentNames(job.cotangents.begin(), job.cotangents.end());
  std::vector<std::string> srcJson, outJson, gradJson;
  std::map<std::string, std::string> cotFile;
  for (size_t k = 0; k < job.sources.size(); ++k) {
    const auto& [name, t] = job.sources[k];
    std::string file = fmt::format("src{}.npy", k);
    writeBytes(dir / file, npyBytes(t));
    if (cotangentNames.count(name)) cotFile[name] = file;
    else srcJson.push_back(fmt::format("{{\"name\": {}, \"file\": {}}}", jsonStr(name), jsonStr(file)));
  }
  const ir::Function& f = *job.g->findFunction(job.function);
  for (size_t k = 0; k < ri.outputs.size(); ++k) {
    bool isUpdate = k >= f.outputs.size();
    std::string name = isUpdate ? job.g->node(f.updates[k - f.outputs.size()].target).name : f.outputs[k].name;
    std::string cot = "null";
    if (!isUpdate && !job.cotangents.empty() && !job.cotangents[k].empty()) cot = jsonStr(cotFile.at(job.cotangents[k]));
    writeBytes(dir / fmt::format("out{}.interp.npy", k), npyBytes(ri.outputs[k]));
    writeBytes(dir / fmt::format("out{}.jit.npy", k), npyBytes(rj.outputs[k]));
    outJson.push_back(fmt::format(
        "{{\"name\": {}, \"kind\": \"{}\", \"cotangent\": {}, \"interp\": \"out{}.interp.npy\", \"jit\": \"out{}.jit.npy\"}}",
        jsonStr(name), isUpdate ? "update" : "output", cot, k, k));
  }
  for (size_t k = 0; k < ri.grads.size(); ++k) {
    writeBytes(dir / fmt::format("grad{}.interp.npy", k), npyBytes(ri.grads[k]));
    writeBytes(dir / fmt::format("grad{}.jit.npy", k), npyBytes(rj.grads[k]));
    gradJson.push_back(fmt::format("{{\"source\": {}, \"interp\": \"grad{}.interp.npy\", \"jit\": \"grad{}.jit.npy\"}}",
                                   jsonStr(job.wrt[k]), k, k));
  }
  std::string manifest = fmt::format(
      "{{\n  \"case\": {},\n  \"kir\": \"forward.kir\",\n  \"function\": {},\n  \"seed\": {},\n"
      "  \"tolerance\": {{\"rtol\": {}, \"atol\": {}}},\n"
      "  \"sources\": [\n    {}\n  ],\n  \"outputs\": [\n    {}\n  ],\n  \"grads\": [\n    {}\n  ]\n}}\n",
      jsonStr(job.label), jsonStr(job.function), seed, job.rtol, job.atol, fmt::join(srcJson, ",\n    "),
      fmt::join(outJson, ",\n    "), fmt::join(gradJson, ",\n    "));
  writeBytes(dir / "manifest.json", manifest);
}

// The value of each source: the case's range if it has one, else init(seed)
// for params and state and [-1, 1) (or labels) for inputs.
std::vector<std::pair<std::string, HostTensor>> fillSources(const ir::Graph& g,
                                                            const std::map<ir::ValueId, parity::Range>& ranges,
                                                            uint64_t seed) {
  std::vector<std::pair<std::string, HostTensor>> out;
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    if (!ir::isSource(n.op)) continue;
    HostTensor t;
    if (auto it = ranges.find(v); it != ranges.end()) {
      t = randomTensor(n.type, it->second, seed, static_cast<uint64_t>(v) + 1);
    } else if (n.op == ir::OpKind::Input) {
      parity::Range r;
      if (n.type.dtype == DType::I32) r.classes = labelClasses(g, v);
      t = randomTensor(n.type, r, seed, static_cast<uint64_t>(v) + 1);
    } else {
      t = HostTensor::zeros(n.type);
      ir::initSource(n, t.data(), seed);
    }
    out.emplace_back(n.name, std::move(t));
  }
  return out;
}

// Adds the function "parity_grad" to g: the gradients g0, g1, ... of
// loss = sum_k sum(out_k * cot_k) over the f32 outputs of job.function, wrt
// every f32 input and param, with one new input per cotangent. Does nothing
// if no f32 output or no f32 input/param exists.
void addGradFunction(Graph& g, Job& job, uint64_t seed) {
  std::vector<ir::Output> outs = g.ir().findFunction(job.function)->outputs;  // copy: functions() grows below
  std::vector<Tensor> wrt;
  std::vector<std::string> wrtNames;
  for (ir::ValueId v = 0; v < g.ir().size(); ++v) {
    const ir::Node& n = g.ir().node(v);
    if ((n.op == ir::OpKind::Input || n.op == ir::OpKind::Param) && n.type.dtype == DType::F32) {
      wrt.push_back(g.tensor(v));
      wrtNames.push_back(n.name);
    }
  }
  bool anyF32 = false;
  for (const ir::Output& o : outs) anyF32 |= g.ir().type(o.value).dtype == DType::F32;
  if (!anyF32 || wrt.empty()) return;

  Tensor loss;
  for (size_t k = 0; k < outs.size(); ++k) {
    Tensor out = g.tensor(outs[k].value);
    if (out.dtype() != DType::F32) {
      job.cotangents.push_back("");
      continue;
    }
    std::string name = fmt::format("cotangent.{}", outs[k].name);
    Tensor cot = g.input(name, out.shape());
    job.cotangents.push_back(name);
    job.sources.emplace_back(name, randomTensor(cot.type(), {}, seed, 1000 + k));
    Tensor term = sum(out * cot);
    loss = loss.valid() ? loss + term : term;
  }
  std::vector<Tensor> grads = grad(loss, wrt);
  std::vector<std::pair<std::string, Tensor>> gradOuts;
  for (size_t k = 0; k < grads.size(); ++k) gradOuts.emplace_back(fmt::format("g{}", k), grads[k]);
  std::vector<Tensor> inputs;
  for (ir::ValueId v = 0; v < g.ir().size(); ++v)
    if (g.ir().node(v).op == ir::OpKind::Input) inputs.push_back(g.tensor(v));
  Module(g).addFunction("parity_grad", inputs, gradOuts);
  job.gradFunction = "parity_grad";
  job.wrt = wrtNames;
}

void dumpCase(const parity::Case& c, const fs::path& dir, uint64_t seed) {
  Graph g;
  parity::Leaves leaves(g);
  parity::Outs outs = c.build(g, leaves);
  std::vector<Tensor> inputs;
  for (ir::ValueId v = 0; v < g.ir().size(); ++v)
    if (g.ir().node(v).op == ir::OpKind::Input) inputs.push_back(g.tensor(v));
  std::vector<std::pair<std::string, Tensor>> named;
  for (size_t k = 0; k < outs.ts.size(); ++k)
    named.emplace_back(outs.ts.size() == 1 ? "y" : fmt::format("y{}", k), outs.ts[k]);
  Module(g).addFunction("forward", inputs, named);

  Job job;
  job.label = c.name;
  job.g = &g.ir();
  job.kirText = ir::printGraph(g.ir());  // before any gradient node exists
  job.function = "forward";
  job.rtol = c.rtol;
  job.atol = c.atol;
  job.sources = fillSources(g.ir(), leaves.ranges(), seed);
  if (c.grad) addGradFunction(g, job, seed);
  writeJob(job, dir, seed);
}

// One function of a .kir file on random inputs (params and state keep their
// init(seed) values): its outputs and update values, and with `withGrad`
// the gradients of its f32 outputs as for a case.
void dumpKir(const std::string& path, const std::string& function, bool withGrad, const fs::path& dir,
             uint64_t seed) {
  std::ifstream f(path);
  if (!f) throw Error(fmt::format("cannot read {}", path));
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Graph g;
  g.ir() = ir::parseGraph(text, fs::path(path).filename().string());
  if (!g.ir().findFunction(function)) throw Error(fmt::format("{}: no function @{}", path, function));
  Job job;
  job.label = fmt::format("{}@{}", fs::path(path).filename().string(), function);
  job.g = &g.ir();
  job.kirText = text;
  job.function = function;
  job.sources = fillSources(g.ir(), {}, seed);
  if (withGrad) addGradFunction(g, job, seed);
  writeJob(job, dir, seed);
}

std::vector<std::string> kirFunctions(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(fmt::format("cannot read {}", path));
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::string> names;
  ir::Graph g = ir::parseGraph(text, fs::path(path).filename().string());
  for (const ir::Function& fn : g.functions()) names.push_back(fn.name);
  return names;
}

// Ops the forward graphs of the cases use; prints the ones none uses.
int checkCoverage() {
  std::set<ir::OpKind> used;
  for (const parity::Case& c : parity::cases()) {
    Graph g;
    parity::Leaves leaves(g);
    c.build(g, leaves);
    for (const ir::Node& n : g.ir().nodes()) used.insert(n.op);
  }
  std::vector<std::string> missing;
  for (int k = 0; k < ir::kOpCount; ++k)
    if (!used.count(static_cast<ir::OpKind>(k))) missing.emplace_back(ir::opName(static_cast<ir::OpKind>(k)));
  if (missing.empty()) {
    fmt::print("every one of the {} ops is used by some parity case\n", ir::kOpCount);
    return 0;
  }
  fmt::print("ops used by no parity case (add a row to tests/parity/cases.cpp): {}\n", fmt::join(missing, ", "));
  return 1;
}

const char* kUsage =
    "usage: kiln_parity_dump --list\n"
    "       kiln_parity_dump --case NAME --out DIR [--seed N]\n"
    "       kiln_parity_dump --kir FILE [--function F] [--grad] --out DIR [--seed N]\n"
    "       kiln_parity_dump --kir FILE --list-functions\n"
    "       kiln_parity_dump --coverage   (fails if an op is used by no case)\n"
    "Writes forward.kir, manifest.json and .npy files into DIR for check.py.";

}  // namespace

int main(int argc, char** argv) {
  try {
    rt::Args args(argc, argv, kUsage);
    bool list = args.flag("list");
    bool listFunctions = args.flag("list-functions");
    bool coverage = args.flag("coverage");
    bool withGrad = args.flag("grad");
    std::string caseName = args.getString("case", "");
    std::string kir = args.getString("kir", "");
    std::string function = args.getString("function", "");
    std::string out = args.getString("out", "");
    uint64_t seed = static_cast<uint64_t>(args.getInt("seed", 1));
    args.finish();
    if (list) {
      for (const parity::Case& c : parity::cases()) fmt::print("{}\n", c.name);
      return 0;
    }
    if (coverage) return checkCoverage();
    if (!kir.empty() && listFunctions) {
      for (const std::string& name : kirFunctions(kir)) fmt::print("{}\n", name);
      return 0;
    }
    if (out.empty() || caseName.empty() == kir.empty()) {
      fmt::print(stderr, "{}\n", kUsage);
      return 2;
    }
    if (!kir.empty()) {
      if (function.empty()) function = kirFunctions(kir).at(0);
      dumpKir(kir, function, withGrad, out, seed);
      return 0;
    }
    for (const parity::Case& c : parity::cases())
      if (c.name == caseName) {
        dumpCase(c, out, seed);
        return 0;
      }
    fmt::print(stderr, "kiln_parity_dump: no case named '{}' (see --list)\n", caseName);
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kiln_parity_dump: {}\n", e.what());
    return 1;
  }
}
