// ORC LLJIT loading of the compiled object.
#include "Jit.h"

#include <kiln/rt/Parallel.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <mutex>
#include <unistd.h>

#include <llvm/ExecutionEngine/JITLink/JITLink.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ObjectLinkingLayer.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>

#include "ir/InitSpec.h"
#include "ir/Text.h"

namespace kiln::jit {

CompiledModule::~CompiledModule() = default;

static std::string errorText(llvm::Error e) { return llvm::toString(std::move(e)); }

namespace {

// KILN_PERF_MAP=1: the address, size and name of every function of the
// loaded code (entry points and kernels, `k12_relu.range`, `kiln.gemm.tile`)
// are appended to /tmp/perf-<pid>.map, the file Linux perf reads for code
// it finds in no binary, so `perf report` names JIT kernels instead of
// printing raw addresses. JITLink knows each symbol's final address after
// fixups, including the module's internal functions, which a lookup by name
// cannot see.
bool perfMapWanted() {
  const char* v = std::getenv("KILN_PERF_MAP");
  return v && *v && std::strcmp(v, "0") != 0;
}

llvm::Error keepFunctionSymbols(llvm::jitlink::LinkGraph& g) {
  for (llvm::jitlink::Symbol* s : g.defined_symbols())
    if (s->isCallable() && s->hasName()) s->setLive(true);
  return llvm::Error::success();
}

// JITLink pass after fixups: every named function of the graph, at its
// final address, appended to the map.
llvm::Error appendPerfMap(llvm::jitlink::LinkGraph& g) {
  std::string lines;
  for (llvm::jitlink::Symbol* s : g.defined_symbols())
    if (s->isCallable() && s->hasName() && s->getSize() > 0)
      lines += fmt::format("{:x} {:x} {}\n", s->getAddress().getValue(), s->getSize(), s->getName().str());
  static std::mutex mu;  // modules compiled on several threads append whole lines
  std::lock_guard<std::mutex> lock(mu);
  std::string path = fmt::format("/tmp/perf-{}.map", static_cast<long>(getpid()));
  if (FILE* f = std::fopen(path.c_str(), "a")) {
    std::fwrite(lines.data(), 1, lines.size(), f);
    std::fclose(f);
  } else {
    std::fprintf(stderr, "kiln: KILN_PERF_MAP: cannot append to %s: %s\n", path.c_str(), std::strerror(errno));
  }
  return llvm::Error::success();
}

class PerfMapPlugin : public llvm::orc::ObjectLinkingLayer::Plugin {
 public:
  void modifyPassConfig(llvm::orc::MaterializationResponsibility&, llvm::jitlink::LinkGraph&,
                        llvm::jitlink::PassConfiguration& config) override {
    // calls between functions of one section need no relocation, so the
    // internal functions' symbols look unused and pruning would drop them
    // (their code stays, in the section's block); keep them for the map
    config.PrePrunePasses.emplace_back(keepFunctionSymbols);
    config.PostFixupPasses.emplace_back(appendPerfMap);
  }
  llvm::Error notifyFailed(llvm::orc::MaterializationResponsibility&) override { return llvm::Error::success(); }
  llvm::Error notifyRemovingResources(llvm::orc::JITDylib&, llvm::orc::ResourceKey) override {
    return llvm::Error::success();
  }
  void notifyTransferringResources(llvm::orc::JITDylib&, llvm::orc::ResourceKey, llvm::orc::ResourceKey) override {}
};

}  // namespace

std::unique_ptr<CompiledModule> compile(const ir::Graph& g, const CompileOptions& opts, const std::string& builtText) {
  std::unique_ptr<CompiledModule> m(new CompiledModule());
  CompileOptions o = opts;
  if (o.cache < 0) o.cache = 1;  // JIT compiles use the compile cache by default
  m->c_ = driver::compile(g, "kiln_jit", o, builtText);

  codegen::initNativeTarget();  // a compile-cache hit ran no codegen
  auto jit = llvm::orc::LLJITBuilder().create();
  if (!jit) throw ir::CompileError("jit: cannot create LLJIT: " + errorText(jit.takeError()));
  m->jit_ = std::move(*jit);
  if (perfMapWanted()) {
    if (auto* ol = dynamic_cast<llvm::orc::ObjectLinkingLayer*>(&m->jit_->getObjLinkingLayer()))
      ol->addPlugin(std::make_shared<PerfMapPlugin>());
    else
      std::fprintf(stderr, "kiln: KILN_PERF_MAP: this LLVM's JIT links with RuntimeDyld, not JITLink; no perf map\n");
  }
  auto gen = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(m->jit_->getDataLayout().getGlobalPrefix());
  if (!gen) throw ir::CompileError("jit: cannot search the process for symbols: " + errorText(gen.takeError()));
  m->jit_->getMainJITDylib().addGenerator(std::move(*gen));
  // kiln_rt's entry points that compiled code calls: part of this binary,
  // but not necessarily in its dynamic symbol table
  llvm::orc::SymbolMap runtime;
  runtime[m->jit_->mangleAndIntern("kiln_rt_parallel_for")] = llvm::orc::ExecutorSymbolDef(
      llvm::orc::ExecutorAddr::fromPtr(&kiln_rt_parallel_for), llvm::JITSymbolFlags::Exported | llvm::JITSymbolFlags::Callable);
  if (auto e = m->jit_->getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(runtime))))
    throw ir::CompileError("jit: cannot define the runtime's symbols: " + errorText(std::move(e)));
  const std::vector<char>& obj = m->c_.code.object;
  auto buf = llvm::MemoryBuffer::getMemBufferCopy(llvm::StringRef(obj.data(), obj.size()), "kiln_jit.o");
  if (auto e = m->jit_->addObjectFile(std::move(buf))) throw ir::CompileError("jit: cannot load object: " + errorText(std::move(e)));
  for (const lower::FunctionPlan& f : m->c_.plan.functions) {
    auto addr = m->jit_->lookup(codegen::entrySymbol("kiln_jit", f.name));
    if (!addr) throw ir::CompileError(fmt::format("jit: cannot find @{}: {}", f.name, errorText(addr.takeError())));
    m->entries_[f.name] = addr->toPtr<int (*)(char*)>();
  }
  m->mem_ = rt::makeAligned(static_cast<size_t>(m->c_.plan.totalBytes));
  return m;
}

void CompiledModule::init(uint64_t seed) {
  std::memset(mem_.get(), 0, static_cast<size_t>(c_.plan.totalBytes));
  for (const lower::NamedBuffer& b : c_.plan.named)
    if (b.kind == lower::BufferKind::Param || b.kind == lower::BufferKind::State)
      ir::initSource(c_.graph.node(b.value), mem_.get() + b.offset, seed);
}

void CompiledModule::run(std::string_view function) {
  auto it = entries_.find(function);
  if (it == entries_.end()) throw ir::CompileError(fmt::format("jit: no function @{}", function));
  int rc = it->second(mem_.get());
  if (rc == 0) return;
  if (rc < 0)  // checked mode: finite check -rc - 1 failed
    for (const lower::FunctionPlan& f : c_.plan.functions)
      if (f.name == function && static_cast<size_t>(-(rc + 1)) < f.finiteChecks.size()) {
        lower::FiniteCheckSite s = lower::finiteCheckSite(c_.graph, f.finiteChecks[static_cast<size_t>(-(rc + 1))].value);
        rt::NonFiniteSite site{s.value.c_str(), s.op.c_str(), s.name.c_str(), s.loc.c_str(), s.type.c_str(),
                               s.shape.size() <= 8 ? static_cast<int>(s.shape.size()) : -1, {}};
        for (size_t d = 0; d < s.shape.size() && d < 8; ++d) site.dims[d] = s.shape[d];
        rt::throwNonFiniteError(f.name.c_str(), site, mem_.get() + c_.plan.errorOffset,
                                mem_.get() + f.callCountOffset);
      }
  for (const lower::FunctionPlan& f : c_.plan.functions)
    if (f.name == function && rc >= 1 && static_cast<size_t>(rc) <= f.checks.size()) {
      const lower::IndexCheck& ck = f.checks[static_cast<size_t>(rc - 1)];
      rt::throwIndexError(f.name.c_str(), c_.graph.node(ck.input).name.c_str(), static_cast<long long>(ck.bound),
                          ck.use.c_str(), mem_.get() + c_.plan.errorOffset);
    }
  throw ir::CompileError(fmt::format("jit: @{} returned unknown error code {}", function, rc));
}

const lower::NamedBuffer& CompiledModule::find(std::string_view name) const {
  for (const lower::NamedBuffer& b : c_.plan.named)
    if (b.name == name) return b;
  throw ir::CompileError(fmt::format("jit: no buffer named \"{}\"", name));
}

float* CompiledModule::f32(std::string_view name) {
  const lower::NamedBuffer& b = find(name);
  if (b.type.dtype != ir::DType::F32) throw ir::CompileError(fmt::format("jit: buffer \"{}\" is {}, not f32", name, ir::typeStr(b.type)));
  return reinterpret_cast<float*>(mem_.get() + b.offset);
}

int32_t* CompiledModule::i32(std::string_view name) {
  const lower::NamedBuffer& b = find(name);
  if (b.type.dtype != ir::DType::I32) throw ir::CompileError(fmt::format("jit: buffer \"{}\" is {}, not i32", name, ir::typeStr(b.type)));
  return reinterpret_cast<int32_t*>(mem_.get() + b.offset);
}

const ir::TensorType& CompiledModule::type(std::string_view name) const { return find(name).type; }

std::vector<std::string> CompiledModule::bufferNames() const {
  std::vector<std::string> names;
  for (const lower::NamedBuffer& b : c_.plan.named) names.push_back(b.name);
  return names;
}

std::vector<rt::CheckpointTensor> CompiledModule::checkpointTensors() const {
  std::vector<rt::CheckpointTensor> ts;
  for (const lower::NamedBuffer& b : c_.plan.named)
    if (b.kind == lower::BufferKind::Param || b.kind == lower::BufferKind::State)
      ts.push_back({b.name, b.type.dtype == ir::DType::F32 ? rt::TensorDType::F32 : rt::TensorDType::I32, b.type.shape,
                    mem_.get() + b.offset});
  return ts;
}

void CompiledModule::save(const std::string& path) const {
  rt::saveCheckpoint(path, checkpointTensors());
}

void CompiledModule::load(const std::string& path) { rt::loadCheckpoint(path, checkpointTensors()); }

}  // namespace kiln::jit
