// The consumer's generator: y = w x + b, mean squared error, plain SGD.
#include <kiln/kiln.h>

using namespace kiln;

int main(int argc, char** argv) {
  Graph g;
  Tensor x = g.input("x", {8, 1});
  Tensor y = g.input("y", {8, 1});
  Linear line(g, "line", 1, 1);
  Tensor pred = line(x);
  Module m(g);
  m.addFunction("predict", {x}, {{"y", pred}});
  m.addTrainStep("trainStep", mean(mseLoss(pred, y)), SGD{.lr = 0.1});
  return aot::emit(m, "line", argc, argv);
}
