// Generator of the AOT test model.
#include "TinyModel.h"

int main(int argc, char** argv) {
  kiln::Graph g;
  kiln::Module m(g);
  buildTinyModel(g, m);
  return kiln::aot::emit(m, "tiny", argc, argv);
}
