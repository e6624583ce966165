// Generator of the checked-mode AOT model (run with --checked).
#include "CheckedModel.h"

int main(int argc, char** argv) {
  kiln::Graph g;
  kiln::Module m(g);
  checked_model::build(g, m);
  return kiln::aot::emit(m, "checked_robust", argc, argv);
}
