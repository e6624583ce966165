// The textual form of the graph IR (.kir): printer, parser and verifier.
//
//   %0 = input "x" : f32[64,784]
//   %1 = param "l1.w" {a = -0.0357, b = 0.0357, init = "uniform"} : f32[784,128]
//   %2 = matmul %0, %1 {ta = 0, tb = 0} : f32[64,128] loc("model.cpp:10")
//   func @predict(%0) -> (logits = %2)
//   func @trainStep(%0, %3) -> (loss = %9) updates (%1 = %20)
//
// print(parse(text)) == text for every text the printer produced.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "Graph.h"

namespace kiln::ir {

std::string printGraph(const Graph& g);
// One node as the printer writes it, without a newline (for diagnostics).
std::string printNode(const Graph& g, ValueId v);
// How diagnostics name a value: "%12 (matmul at model.cpp:14)".
std::string describeValue(const Graph& g, ValueId v);

// Parses .kir text; throws CompileError "FILE:LINE:COL: message".
Graph parseGraph(std::string_view text, std::string_view fileName = "<input>");

// All problems found, each naming the value and the rule it breaks.
std::vector<std::string> verifyGraph(const Graph& g);
// Throws CompileError listing every problem, prefixed by `context`.
void verifyOrThrow(const Graph& g, std::string_view context);

// Shortest decimal text that reads back as the same double, always with a
// '.' or exponent so it cannot be mistaken for an integer.
std::string formatFloat(double d);

}  // namespace kiln::ir
