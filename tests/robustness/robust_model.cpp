// Generator of the checkpoint tests' AOT model.
#include "RobustModel.h"

int main(int argc, char** argv) {
  kiln::Graph g;
  kiln::Module m(g);
  buildRobustModel(g, m);
  return kiln::aot::emit(m, "robust", argc, argv);
}
