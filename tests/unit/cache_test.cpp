// Compile-time work avoided: kernels that differ only in their buffers share
// one LLVM function (lower/KernelKey.h), and the compile cache
// (driver/Cache.h) hands back the object code of an identical earlier
// compile. Every test points KILN_CACHE_DIR at its own temporary directory.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <unistd.h>

#include "TestUtil.h"
#include "driver/Cache.h"
#include "passes/Passes.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace {

// h = tanh(x_t Wx + h Wh + b) for T steps, loss the mean of the last h plus
// the sum of every step's mean: the steps' kernels are alike but for their
// buffers.
void buildRnn(Graph& g, Module& m, int64_t steps, int64_t hidden = 8) {
  Tensor wx = g.param("wx", {5, hidden}, Init::normal(0, 0.5));
  Tensor wh = g.param("wh", {hidden, hidden}, Init::normal(0, 0.5));
  Tensor b = g.param("b", {hidden}, Init::zeros());
  Tensor h = g.constant(0.0, {4, hidden});
  Tensor total;
  for (int64_t t = 0; t < steps; ++t) {
    Tensor x = g.input(fmt::format("x{}", t), {4, 5});
    h = tanh(matmul(x, wx) + matmul(h, wh) + b);
    Tensor l = mean(h * h);
    total = t == 0 ? l : total + l;
  }
  m.addTrainStep("trainStep", total, SGD{.lr = 0.1});
}

int64_t count(const std::string& text, std::string_view what) {
  int64_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Sets KILN_CACHE=1 and KILN_CACHE_DIR to a fresh directory for its
// lifetime; restores both and removes the directory after.
class TempCache {
public:
  TempCache() {
    static int serial = 0;
    dir_ = fs::temp_directory_path() / fmt::format("kiln-cache-test-{}-{}", ::getpid(), serial++);
    fs::remove_all(dir_);
    save("KILN_CACHE", oldOn_);
    save("KILN_CACHE_DIR", oldDir_);
    ::setenv("KILN_CACHE", "1", 1);
    ::setenv("KILN_CACHE_DIR", dir_.c_str(), 1);
  }
  ~TempCache() {
    restore("KILN_CACHE", oldOn_);
    restore("KILN_CACHE_DIR", oldDir_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const fs::path& dir() const { return dir_; }
  std::vector<fs::path> entries() const {
    std::vector<fs::path> out;
    if (fs::is_directory(dir_))
      for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }

private:
  static void save(const char* name, std::optional<std::string>& slot) {
    if (const char* v = std::getenv(name)) slot = v;
  }
  static void restore(const char* name, const std::optional<std::string>& slot) {
    if (slot) ::setenv(name, slot->c_str(), 1);
    else ::unsetenv(name);
  }
  fs::path dir_;
  std::optional<std::string> oldOn_, oldDir_;
};

// The model's loss and updated wh after two training steps from seed 3.
std::vector<float> trainTwice(jit::CompiledModule& c, int64_t steps) {
  c.init(3);
  for (int64_t t = 0; t < steps; ++t) {
    std::vector<float> x = test::randomVec(20, static_cast<uint64_t>(t + 1));
    std::copy(x.begin(), x.end(), c.f32(fmt::format("x{}", t)));
  }
  c.run("trainStep");
  c.run("trainStep");
  std::vector<float> out{c.f32("trainStep.loss")[0]};
  const float* wh = c.f32("wh");
  out.insert(out.end(), wh, wh + c.type("wh").numElements());
  return out;
}

void flipByte(const fs::path& p, std::streamoff at) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(at);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(at);
  f.write(&c, 1);
}

}  // namespace

TEST_CASE("kernel sharing: an unrolled recurrence's steps share kernel functions") {
  // without the batch pass, which would stack every step's x_t wx into one
  // matmul and slice it back: a slice's offset is part of its kernel, so
  // those slices would be one function per step
  std::vector<std::string> noBatch;
  for (const std::string& p : passes::defaultPipeline())
    if (p != "batch") noBatch.push_back(p);
  auto functionsFor = [&](int64_t steps, int64_t& kernels) {
    Graph g;
    Module m(g);
    buildRnn(g, m, steps);
    CompileOptions opts;
    opts.cache = 0;
    opts.passes = noBatch;
    auto c = jit::compile(m, opts);
    kernels = c->compiled().stats.kernels;
    return count(c->compiled().code.llvmIR, "define internal");
  };
  int64_t kernels8 = 0, kernels16 = 0;
  int64_t fns8 = functionsFor(8, kernels8), fns16 = functionsFor(16, kernels16);
  CHECK(kernels16 > kernels8);
  CHECK(fns8 < kernels8);
  // twice the steps, the same distinct kernels: the middle steps are alike
  CHECK(fns16 == fns8);
}

TEST_CASE("kernel sharing: the shared functions compute what the interpreter does") {
  Graph g;
  Module m(g);
  buildRnn(g, m, 6);
  CompileOptions opts;
  opts.cache = 0;
  auto c = jit::compile(m, opts);
  c->init(3);
  interp::Session s(g.ir());
  s.init(3);
  for (int64_t t = 0; t < 6; ++t) {
    std::vector<float> x = test::randomVec(20, static_cast<uint64_t>(t + 1));
    std::copy(x.begin(), x.end(), c->f32(fmt::format("x{}", t)));
    s.source(fmt::format("x{}", t)).f = x;
  }
  c->run("trainStep");
  s.run("trainStep");
  CHECK(c->f32("trainStep.loss")[0] == doctest::Approx(s.output("trainStep", "loss").f[0]).epsilon(1e-5));
  test::checkClose(std::vector<float>(c->f32("wh"), c->f32("wh") + 64), s.source("wh").f, 1e-5f, 1e-4f, "wh");
}

TEST_CASE("compile cache: a second compile of the same model hits and gives identical results") {
  TempCache cache;
  std::vector<float> uncached;
  {
    Graph g;
    Module m(g);
    buildRnn(g, m, 4);
    CompileOptions opts;
    opts.cache = 0;
    auto c = jit::compile(m, opts);
    CHECK_FALSE(c->compiled().stats.cacheHit);
    CHECK(cache.entries().empty());
    uncached = trainTwice(*c, 4);
  }
  Graph g1;
  Module m1(g1);
  buildRnn(g1, m1, 4);
  auto first = jit::compile(m1);
  CHECK_FALSE(first->compiled().stats.cacheHit);
  CHECK(first->compiled().stats.cacheStored);
  REQUIRE(cache.entries().size() == 1);
  CHECK(cache.entries()[0].extension() == ".kobj");

  Graph g2;
  Module m2(g2);
  buildRnn(g2, m2, 4);
  auto second = jit::compile(m2);
  CHECK(second->compiled().stats.cacheHit);
  CHECK_FALSE(second->compiled().stats.cacheStored);
  CHECK(second->compiled().code.object == first->compiled().code.object);
  CHECK(cache.entries().size() == 1);

  std::vector<float> miss = trainTwice(*first, 4), hit = trainTwice(*second, 4);
  REQUIRE(miss.size() == uncached.size());
  CHECK(std::memcmp(miss.data(), uncached.data(), miss.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(hit.data(), uncached.data(), hit.size() * sizeof(float)) == 0);
}

TEST_CASE("compile cache: a changed model or option misses") {
  TempCache cache;
  Graph g1;
  Module m1(g1);
  buildRnn(g1, m1, 4);
  CHECK_FALSE(jit::compile(m1)->compiled().stats.cacheHit);
  Graph g2;  // another hidden size
  Module m2(g2);
  buildRnn(g2, m2, 4, 12);
  CHECK_FALSE(jit::compile(m2)->compiled().stats.cacheHit);
  Graph g3;  // the first model unfused
  Module m3(g3);
  buildRnn(g3, m3, 4);
  CompileOptions unfused;
  unfused.fuse = false;
  CHECK_FALSE(jit::compile(m3, unfused)->compiled().stats.cacheHit);
  Graph g5;  // the first model in checked mode: other code, so another entry
  Module m5(g5);
  buildRnn(g5, m5, 4);
  CompileOptions checked;
  checked.checked = true;
  CHECK_FALSE(jit::compile(m5, checked)->compiled().stats.cacheHit);
  CHECK(cache.entries().size() == 4);
  // and the first one still hits
  Graph g4;
  Module m4(g4);
  buildRnn(g4, m4, 4);
  CHECK(jit::compile(m4)->compiled().stats.cacheHit);
}

TEST_CASE("compile cache: a corrupt or truncated entry is ignored and rewritten") {
  TempCache cache;
  auto compileOnce = [] {
    Graph g;
    Module m(g);
    buildRnn(g, m, 3);
    auto c = jit::compile(m);
    return std::make_pair(c->compiled().stats.cacheHit, trainTwice(*c, 3));
  };
  auto [hit0, want] = compileOnce();
  CHECK_FALSE(hit0);
  REQUIRE(cache.entries().size() == 1);
  fs::path entry = cache.entries()[0];
  auto size = static_cast<std::streamoff>(fs::file_size(entry));

  SUBCASE("a flipped payload byte") { flipByte(entry, size - 100); }
  SUBCASE("a flipped header byte") { flipByte(entry, 9); }
  SUBCASE("truncated") { fs::resize_file(entry, static_cast<uintmax_t>(size / 2)); }
  SUBCASE("empty") { fs::resize_file(entry, 0); }

  auto [hit1, again] = compileOnce();
  CHECK_FALSE(hit1);
  CHECK(again == want);
  CHECK(static_cast<std::streamoff>(fs::file_size(entry)) == size);  // rewritten whole
  auto [hit2, third] = compileOnce();
  CHECK(hit2);
  CHECK(third == want);
}

TEST_CASE("compile cache: KILN_CACHE=0, dumps and the default for driver::compile leave it unused") {
  TempCache cache;
  Graph g;
  Module m(g);
  buildRnn(g, m, 2);
  ::setenv("KILN_CACHE", "0", 1);
  CHECK_FALSE(jit::compile(m)->compiled().stats.cacheStored);
  ::setenv("KILN_CACHE", "1", 1);
  CompileOptions dump;
  dump.dumpDir = (cache.dir() / "dump").string();
  CHECK_FALSE(jit::compile(m, dump)->compiled().stats.cacheStored);
  driver::Compiled aot = driver::compile(m.ir(), "kiln_aot", CompileOptions{});
  CHECK_FALSE(aot.stats.cacheStored);
  for (const fs::path& p : cache.entries()) CHECK(p.filename() == "dump");
}

TEST_CASE("compile cache: keys are hex SHA-256 and differ with any part") {
  std::string a = driver::cacheKey({"graph", "fuse=1"}), b = driver::cacheKey({"graph", "fuse=0"});
  CHECK(a.size() == 64);
  CHECK(a != b);
  CHECK(a == driver::cacheKey({"graph", "fuse=1"}));
  // parts are length-prefixed: moving a boundary changes the key
  CHECK(driver::cacheKey({"ab", "c"}) != driver::cacheKey({"a", "bc"}));
}
