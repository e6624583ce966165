// The consumer's program: fits y = 3x - 1 on eight points and prints the
// learned weight and bias. Links the generated model and kiln_rt only.
#include <cstdio>

#include "line.h"

int main() {
  line::Model m;
  m.init(7);
  for (int i = 0; i < 8; ++i) {
    float x = static_cast<float>(i) / 4.0f - 1.0f;  // -1 .. 0.75
    m.x()[i] = x;
    m.y()[i] = 3.0f * x - 1.0f;
  }
  float loss = 0;
  for (int step = 0; step < 500; ++step) {
    m.trainStep();
    loss = m.trainStep_loss()[0];
  }
  m.predict();
  std::printf("final loss: %.6f\n", loss);
  std::printf("final w: %.4f\n", m.line_w()[0]);
  std::printf("final b: %.4f\n", m.line_b()[0]);
  std::printf("final predict(0.5): %.4f\n", m.predict_y()[6]);
  return 0;
}
