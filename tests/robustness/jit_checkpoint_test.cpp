// Checkpoints through the JIT's CompiledModule: a resumed run is bit-exact,
// a model of another shape is refused, a refused load changes nothing, and
// the AOT class refuses buffers or functions named like save/load.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <unistd.h>

#include "RobustInputs.h"
#include "RobustModel.h"
#include "driver/Aot.h"

namespace fs = std::filesystem;

namespace {

std::unique_ptr<kiln::jit::CompiledModule> compileRobust() {
  kiln::Graph g;
  kiln::Module m(g);
  buildRobustModel(g, m);
  return kiln::jit::compile(m);
}

std::vector<float> train(kiln::jit::CompiledModule& m, int from, int steps) {
  std::vector<float> losses;
  for (int s = from; s < from + steps; ++s) {
    robust::fillBatch(s, m.f32("x"), m.i32("y"));
    m.run("trainStep");
    losses.push_back(m.f32("trainStep.loss")[0]);
  }
  return losses;
}

// Bytes of every param and state buffer, by name.
std::vector<char> state(kiln::jit::CompiledModule& m) {
  std::vector<char> bytes;
  for (const auto& b : m.compiled().plan.named) {
    if (b.kind != kiln::lower::BufferKind::Param && b.kind != kiln::lower::BufferKind::State) continue;
    const char* p = reinterpret_cast<const char*>(m.f32(b.name));
    bytes.insert(bytes.end(), p, p + b.type.byteSize());
  }
  return bytes;
}

std::string tempPath(const char* name) {
  return (fs::temp_directory_path() / (std::string("kiln_jit_ckpt_") + std::to_string(::getpid()) + "_" + name)).string();
}

}  // namespace

TEST_CASE("jit checkpoint: N steps, save, load, M steps equals N+M steps bit for bit") {
  // one uninterrupted run that saves after step 4 on the way
  std::string path = tempPath("resume.safetensors");
  auto straight = compileRobust();
  straight->init(robust::kSeed);
  std::vector<float> all = train(*straight, 0, 4);
  straight->save(path);
  std::vector<float> rest = train(*straight, 4, 3);
  all.insert(all.end(), rest.begin(), rest.end());

  auto resumed = compileRobust();
  resumed->init(robust::kSeed + 1);
  resumed->load(path);
  fs::remove(path);
  std::vector<float> tail = train(*resumed, 4, 3);
  REQUIRE(tail.size() == 3);
  CHECK(std::memcmp(tail.data(), all.data() + 4, 3 * sizeof(float)) == 0);
  CHECK(state(*resumed) == state(*straight));
  // the Adam step counter was restored, not restarted
  CHECK(resumed->f32("trainStep.t")[0] == 7.0f);
  CHECK(all.front() > all.back());
}

TEST_CASE("jit checkpoint: a model with other shapes is refused and left unchanged") {
  std::string path = tempPath("other.safetensors");
  {
    kiln::Graph g;
    kiln::Module m(g);
    kiln::Tensor x = g.input("x", {8, 32});
    kiln::Linear l1(g, "l1", 32, 128);  // the robust model's l1 is 32 -> 256
    m.addFunction("predict", {x}, {{"h", l1(x)}});
    auto other = kiln::jit::compile(m);
    other->init(3);
    other->save(path);
  }
  auto model = compileRobust();
  model->init(robust::kSeed);
  std::vector<char> before = state(*model);
  std::string msg;
  try {
    model->load(path);
  } catch (const kiln::rt::Error& e) {
    msg = e.what();
  }
  fs::remove(path);
  CHECK(msg.find(path + ": tensor \"l1.w\" has shape [32,128], the model expects [32,256]\n") == 0);
  CHECK(msg.find(path + ": tensor \"l2.w\" (F32 [256,256]) is missing from the file") != std::string::npos);
  CHECK(state(*model) == before);
}

TEST_CASE("aot checkpoint: buffers or functions named like the checkpoint methods are refused") {
  {
    kiln::Graph g;
    kiln::Tensor x = g.input("load", {2});
    kiln::Module m(g);
    m.addFunction("f", {x}, {{"y", exp(x)}});
    kiln::driver::Compiled c = kiln::driver::compile(g.ir(), "clash", {});
    CHECK_THROWS_WITH_AS(kiln::aot::headerText(c, "clash"),
                         "aot: buffer \"load\" maps to the C++ name load, which another member already has",
                         kiln::ir::CompileError);
  }
  kiln::Graph g;
  kiln::Tensor x = g.input("x", {2});
  kiln::Module m(g);
  m.addFunction("save", {x}, {{"y", exp(x)}});
  kiln::driver::Compiled c = kiln::driver::compile(g.ir(), "clash", {});
  CHECK_THROWS_WITH_AS(kiln::aot::headerText(c, "clash"),
                       "aot: function name \"save\" clashes with another member of the model class",
                       kiln::ir::CompileError);
}
