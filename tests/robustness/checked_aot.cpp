// Checked mode in an AOT model (generated with --checked, linked with
// libkiln_rt only): the overflowing exp of CheckedModel.h stops trainStep on
// the call CheckedInputs.h predicts, with the op's source line, and leaves
// the params unchanged; a non-finite input is named. Exits 1 on a mismatch.
#include "CheckedInputs.h"
#include "checked_robust.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  ++failures;
}

// The line of CheckedModel.h that builds the exp.
int expLine() {
  std::ifstream in(KILN_CHECKED_MODEL_H);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n)
    if (line.find("exp(w * x)") != std::string::npos) return n;
  return -1;
}

}  // namespace

int main() {
  checked_model::Overflow want = checked_model::expectedOverflow();
  checked_robust::Model m;
  m.init(7);
  std::copy(checked_model::kX, checked_model::kX + 4, m.x());
  std::string msg;
  int call = 1;
  float before[4];
  for (; call <= 10; ++call) {
    std::copy(m.w(), m.w() + 4, before);
    try {
      m.trainStep();
    } catch (const kiln::rt::Error& e) {
      msg = e.what();
      break;
    }
  }
  std::printf("%s\n", msg.c_str());
  expect(call == want.call, "stopped on call " + std::to_string(call) + ", expected " + std::to_string(want.call));
  std::string head = "trainStep call " + std::to_string(want.call) + ": %";
  std::string tail = " (exp at CheckedModel.h:" + std::to_string(expLine()) + ") element [" +
                     std::to_string(want.element) +
                     "] of f32[4] is inf, the first non-finite value of this call; checked mode stopped the call "
                     "there, before its updates, so params and state are unchanged";
  expect(msg.rfind(head, 0) == 0, "message starts with '" + head + "'");
  expect(msg.size() > tail.size() && msg.compare(msg.size() - tail.size(), tail.size(), tail) == 0,
         "message ends with '" + tail + "'");
  expect(std::equal(before, before + 4, m.w()), "params unchanged by the stopped call");

  m.init(7);
  std::copy(checked_model::kX, checked_model::kX + 4, m.x());
  m.x()[3] = std::numeric_limits<float>::infinity();
  try {
    m.predict();
    expect(false, "predict with an infinite input throws");
  } catch (const kiln::rt::Error& e) {
    std::printf("%s\n", e.what());
    expect(std::string(e.what()) == "predict call 1: input \"x\" element [3] of f32[4] is inf; checked mode stopped "
                                    "the call before any kernel ran, so params and state are unchanged",
           "the input message");
  }
  return failures == 0 ? 0 : 1;
}
