// KILN_PERF_MAP=1 (driver/Jit.cpp): the JIT appends the address, size and
// name of every function it loads to /tmp/perf-<pid>.map, the file Linux
// perf reads to name code found in no binary.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "TestUtil.h"
#include "driver/Compile.h"

#include <llvm/Object/ObjectFile.h>

using namespace kiln;

namespace {

struct MapLine {
  uint64_t start = 0, size = 0;
  std::string name;
};

std::vector<MapLine> readMap(const std::string& path) {
  std::vector<MapLine> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    MapLine m;
    ls >> std::hex >> m.start >> m.size >> m.name;
    REQUIRE_MESSAGE(!ls.fail(), "malformed perf map line: " << line);
    out.push_back(m);
  }
  return out;
}

// y = relu(x w + b) as one function: an entry point, a GEMM and its epilogue
void buildLayer(Graph& g, Module& m) {
  Tensor x = g.input("x", {8, 16});
  Tensor w = g.input("w", {16, 32});
  Tensor b = g.input("b", {32});
  m.addFunction("f", {x, w, b}, {{"y", relu(matmul(x, w) + b)}});
}

}  // namespace

TEST_CASE("perf map: KILN_PERF_MAP=1 names every loaded function at its address, and nothing is written without it") {
  const std::string path = "/tmp/perf-" + std::to_string(getpid()) + ".map";
  std::filesystem::remove(path);
  {
    Graph g;
    Module m(g);
    buildLayer(g, m);
    auto jm = jit::compile(m);  // KILN_PERF_MAP unset (tests/TestEnvironment.cmake sets no such thing)
    REQUIRE(std::getenv("KILN_PERF_MAP") == nullptr);
    CHECK_FALSE(std::filesystem::exists(path));
  }
  ::setenv("KILN_PERF_MAP", "1", 1);
  Graph g;
  Module m(g);
  buildLayer(g, m);
  auto jm = jit::compile(m);
  ::unsetenv("KILN_PERF_MAP");
  std::vector<MapLine> lines = readMap(path);
  std::filesystem::remove(path);
  REQUIRE(!lines.empty());
  bool entry = false, gemm = false, epilogue = false;
  for (const MapLine& l : lines) {
    CHECK(l.size > 0);
    entry = entry || l.name == "kiln_jit_f";
    gemm = gemm || l.name == "kiln.gemm.tile";
    epilogue = epilogue || l.name.find(".epilogue") != std::string::npos;
  }
  CHECK(entry);
  CHECK(gemm);
  CHECK(epilogue);
  // no two functions overlap, and each address holds its function's code:
  // the loaded bytes equal the object file's (the compiled module keeps it)
  // wherever no relocation patched them
  std::sort(lines.begin(), lines.end(), [](const MapLine& a, const MapLine& b) { return a.start < b.start; });
  for (size_t i = 1; i < lines.size(); ++i) CHECK(lines[i - 1].start + lines[i - 1].size <= lines[i].start);
  const std::vector<char>& obj = jm->compiled().code.object;
  auto file = llvm::object::ObjectFile::createObjectFile(llvm::MemoryBufferRef(llvm::StringRef(obj.data(), obj.size()), "o"));
  REQUIRE(static_cast<bool>(file));
  int compared = 0, differ = 0;
  for (const llvm::object::SymbolRef& sym : (*file)->symbols()) {
    auto name = sym.getName();
    auto sec = sym.getSection();
    auto value = sym.getValue();
    if (!name || !sec || !value || *sec == (*file)->section_end()) {
      llvm::consumeError(name.takeError()), llvm::consumeError(sec.takeError()), llvm::consumeError(value.takeError());
      continue;
    }
    auto it = std::find_if(lines.begin(), lines.end(), [&](const MapLine& l) { return l.name == name->str(); });
    if (it == lines.end()) continue;
    auto contents = (*sec)->getContents();
    REQUIRE(static_cast<bool>(contents));
    std::vector<bool> patched(contents->size(), false);
    for (const llvm::object::SectionRef& rs : (*file)->sections()) {
      auto target = rs.getRelocatedSection();
      if (!target || *target != *sec) {
        if (!target) llvm::consumeError(target.takeError());
        continue;
      }
      for (const llvm::object::RelocationRef& r : rs.relocations())
        for (uint64_t b = r.getOffset(); b < r.getOffset() + 8 && b < patched.size(); ++b) patched[b] = true;
    }
    const auto* loaded = reinterpret_cast<const unsigned char*>(static_cast<uintptr_t>(it->start));
    for (uint64_t b = 0; b < it->size && *value + b < contents->size(); ++b)
      if (!patched[*value + b]) {
        differ += loaded[b] != static_cast<unsigned char>((*contents)[*value + b]);
        ++compared;
      }
  }
  CHECK(compared > 100);
  CHECK(differ == 0);
}
