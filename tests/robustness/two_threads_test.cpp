// Two model instances trained in two threads at once give the same bits as
// the same two trained one after the other (JIT): each thread compiles its
// own instance, initializes it with its own seed and trains it on its own
// batches, the threads stepping in lockstep so their training steps overlap.
// The AOT class has the same test in robust_threads.cpp.
#include <doctest/doctest.h>

#include <barrier>
#include <cstring>
#include <thread>

#include "RobustInputs.h"
#include "RobustModel.h"

namespace {

constexpr int kSteps = 12;

struct Run {
  std::vector<float> losses;
  std::vector<char> state;  // every param and state buffer's bytes
};

std::unique_ptr<kiln::jit::CompiledModule> compileRobust() {
  kiln::Graph g;
  kiln::Module m(g);
  buildRobustModel(g, m);
  return kiln::jit::compile(m);
}

// Instance `k`: seed 100 + k, batches from stream 1000 * k. `sync` (if set)
// is waited on before every step.
Run train(int k, std::barrier<>* sync) {
  auto m = compileRobust();
  m->init(100 + static_cast<uint64_t>(k));
  Run r;
  for (int s = 0; s < kSteps; ++s) {
    if (sync) sync->arrive_and_wait();
    robust::fillBatch(1000 * k + s, m->f32("x"), m->i32("y"));
    m->run("trainStep");
    r.losses.push_back(m->f32("trainStep.loss")[0]);
  }
  for (const auto& b : m->compiled().plan.named) {
    if (b.kind != kiln::lower::BufferKind::Param && b.kind != kiln::lower::BufferKind::State) continue;
    const char* p = reinterpret_cast<const char*>(m->f32(b.name));
    r.state.insert(r.state.end(), p, p + b.type.byteSize());
  }
  return r;
}

bool sameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("two threads: two JIT models trained at once equal the same two trained one after the other") {
  Run a = train(1, nullptr), b = train(2, nullptr);
  REQUIRE(a.losses.size() == kSteps);
  CHECK(a.losses.back() < a.losses.front());  // they do train
  CHECK(!sameBits(a.losses, b.losses));       // and are different runs

  Run ta, tb;
  std::barrier<> sync(2);
  std::thread t1([&] { ta = train(1, &sync); });
  std::thread t2([&] { tb = train(2, &sync); });
  t1.join();
  t2.join();
  CHECK(sameBits(ta.losses, a.losses));
  CHECK(sameBits(tb.losses, b.losses));
  CHECK(ta.state == a.state);
  CHECK(tb.state == b.state);
}
