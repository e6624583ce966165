// Compares what the AOT-compiled tiny model computed (tiny_run's output)
// with the interpreter running the same graph, seed and inputs.
#include <doctest/doctest.h>

#include <fstream>

#include "TinyInputs.h"
#include "TinyModel.h"
#include "interp/Interpreter.h"

TEST_CASE("aot: the compiled tiny model matches the interpreter") {
  std::ifstream f(KILN_AOT_OUT, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "missing ", KILN_AOT_OUT, " (the aot.tiny_run test writes it)");
  std::vector<float> aot;
  for (float v; f.read(reinterpret_cast<char*>(&v), sizeof v);) aot.push_back(v);
  kiln::Graph g;
  kiln::Module m(g);
  buildTinyModel(g, m);
  kiln::interp::Session s(g.ir());
  s.init(tiny::kSeed);
  std::vector<float> want;
  for (int step = 0; step < tiny::kSteps; ++step) {
    tiny::fillInputs(s.source("x").f.data(), s.source("y").i.data());
    s.run("trainStep");
    want.push_back(s.output("trainStep", "loss").f[0]);
  }
  s.run("predict");
  const auto& logits = s.output("predict", "logits").f;
  want.insert(want.end(), logits.begin(), logits.end());
  want.insert(want.end(), s.source("l1.w").f.begin(), s.source("l1.w").f.end());
  want.insert(want.end(), s.source("l2.b").f.begin(), s.source("l2.b").f.end());
  REQUIRE(aot.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(aot[i] == doctest::Approx(want[i]).epsilon(1e-6));
  }
  CHECK(want[0] > want[tiny::kSteps - 1]);  // it trained
}
