// Runs the ahead-of-time compiled tiny model (linked with libkiln_rt only)
// and writes its results for aot_compare_test: per step the loss, then the
// final logits and params, as raw floats.
#include <cstdio>
#include <vector>

#include "TinyInputs.h"
#include "tiny.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: tiny_run OUT.bin\n");
    return 2;
  }
  static_assert(tiny::Model::k_x_size == 24 && tiny::Model::k_l1_w_size == 30);
  tiny::Model m;
  m.init(tiny::kSeed);
  std::vector<float> out;
  for (int s = 0; s < tiny::kSteps; ++s) {
    tiny::fillInputs(m.x(), m.y());
    m.trainStep();
    out.push_back(m.trainStep_loss()[0]);
  }
  m.predict();
  out.insert(out.end(), m.predict_logits(), m.predict_logits() + tiny::Model::k_predict_logits_size);
  out.insert(out.end(), m.l1_w(), m.l1_w() + tiny::Model::k_l1_w_size);
  out.insert(out.end(), m.l2_b(), m.l2_b() + tiny::Model::k_l2_b_size);
  std::FILE* f = std::fopen(argv[1], "wb");
  if (!f || std::fwrite(out.data(), sizeof(float), out.size(), f) != out.size() || std::fclose(f) != 0) {
    std::fprintf(stderr, "tiny_run: cannot write %s\n", argv[1]);
    return 1;
  }
  std::printf("tiny_run: wrote %zu floats\n", out.size());
  return 0;
}
