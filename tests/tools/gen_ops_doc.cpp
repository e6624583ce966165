// Generates docs/ops.md, the op reference, from the op table (Ops.def) and
// the gradient table; second-order support is found by applying each VJP in
// the op test cases (tests/unit/OpCases.h). `--check FILE` fails when FILE
// differs from what would be generated, so the reference cannot drift.
#define DOCTEST_CONFIG_DISABLE
#include <cstdio>
#include <fstream>
#include <sstream>

#include "../unit/OpCases.h"

using namespace kiln;

static std::string flagText(uint32_t f) {
  std::vector<std::string> out;
  if (f & ir::OpFlag::Source) out.push_back("source");
  if (f & ir::OpFlag::Elementwise) out.push_back("elementwise");
  if (f & ir::OpFlag::Commutative) out.push_back("commutative");
  if (f & ir::OpFlag::Reduction) out.push_back("reduction");
  if (f & ir::OpFlag::Layout) out.push_back("layout");
  return out.empty() ? "" : fmt::format("{}", fmt::join(out, ", "));
}

static std::string generate() {
  auto second = test::secondOrderSupport();
  std::string s;
  s += "# Op reference\n\n";
  s += "Generated from `compiler/ir/Ops.def` and the gradient table by `make docs`\n";
  s += "(`build/bin/kiln_ops_doc`); a test fails when this file is out of date. Do not edit by hand.\n\n";
  s += fmt::format("kiln has {} ops. Each is one row of the op table: shape rule, interpreter kernel,\n", ir::kOpCount);
  s += "LLVM lowering and gradient rule. Every op is checked interpreter-vs-compiled and, where it\n";
  s += "has a gradient, against central finite differences (first and second order) in\n";
  s += "`tests/unit/ops_test.cpp`, and against PyTorch in the `parity` tests.\n\n";
  s += "- **gradient**: `rule` = has a VJP; `none` = no gradient flows by definition (integer or\n";
  s += "  piecewise-constant result); `missing` = autodiff reports it as an error.\n";
  s += "- **2nd order**: `yes` = its VJP is built only from ops with rules, so `grad` of a gradient\n";
  s += "  works through it; `no` = it is not.\n\n";
  s += "| op | operands | flags | signature and meaning | gradient | 2nd order |\n";
  s += "|---|---|---|---|---|---|\n";
  for (int k = 0; k < ir::kOpCount; ++k) {
    auto op = static_cast<ir::OpKind>(k);
    auto gk = autodiff::gradKind(op);
    std::string grad = gk == autodiff::GradKind::Rule ? "rule" : gk == autodiff::GradKind::None ? "none" : "missing";
    std::string so = "—";
    if (gk == autodiff::GradKind::Rule) so = !second.count(op) ? "untested" : second[op] ? "yes" : "no";
    int a = ir::opArity(op);
    std::string doc(ir::opDoc(op));
    for (size_t p = doc.find('|'); p != std::string::npos; p = doc.find('|', p + 2)) doc.replace(p, 1, "\\|");
    s += fmt::format("| `{}` | {} | {} | {} | {} | {} |\n", ir::opName(op), a < 0 ? "1+" : std::to_string(a),
                     flagText(ir::opFlags(op)), doc, grad, so);
  }
  s += "\nMany DSL functions are compositions of these ops rather than ops of their own, so they\n";
  s += "need no rules: `mean`, `softmax`, `logSumExp`, `variance`, `gelu`, `clamp`, `sigmoidRange`,\n";
  s += "`split`, `stack`, `squeeze`, `unsqueeze`, `dropout`, the losses (`softmaxCrossEntropy`,\n";
  s += "`softmaxCrossEntropyProbs`, `bceWithLogits`, `mseLoss`, `l1Loss`, `huberLoss`,\n";
  s += "`negativeSamplingLoss`, `sampledSoftmaxLoss`) and every layer in `kiln/Layers.h`.\n";
  return s;
}

int main(int argc, char** argv) {
  try {
    std::string doc = generate();
    if (argc == 3 && std::string(argv[1]) == "--check") {
      std::ifstream in(argv[2]);
      std::stringstream ss;
      ss << in.rdbuf();
      if (ss.str() != doc) {
        std::fprintf(stderr, "%s is out of date with the op table: run `make docs`\n", argv[2]);
        return 1;
      }
      return 0;
    }
    if (argc == 3 && std::string(argv[1]) == "--write") {
      std::ofstream out(argv[2]);
      out << doc;
      return out ? 0 : 1;
    }
    std::fputs(doc.c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln_ops_doc: %s\n", e.what());
    return 1;
  }
}
