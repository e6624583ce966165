// Random well-typed graphs for differential testing (random_graphs.cpp).
// generate() builds one small random graph from a seed with the builder DSL
// into a shared Graph and adds it as entry point @PREFIX: outputs `y` (the
// last value), sometimes `e0` (an earlier value), `loss` = sum(y * w) (named
// `loss_fd` when every op on its path is smooth, so finite differences apply)
// and, on some graphs, one gradient `d.NAME` per f32 data input or param.
// A fifth of the graphs hold params and get a training step @PREFIX_train.
// Inputs are f32, filled with inputValues(); params are filled by init(seed);
// so a graph printed to .kir carries all a replay needs.
//
// Values stay finite and away from poles by construction: each value carries
// an interval bounding it, log/sqrt/div/pow get operands shifted to >= 0.25,
// exp gets |x| <= 4, and anything larger than 8 in magnitude is scaled back
// before the next op. Indices come from argmax over random inputs, so they
// are always in range.
#pragma once

#include <kiln/kiln.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::robust {

struct GeneratedGraph {
  std::string function;  // the entry point's name (= prefix)
  bool smooth = false;   // FD-checkable: no kinks or steps on the loss's path
  std::vector<std::string> ops;  // DSL calls made, in order (for messages)
};

// Builds graph `seed` into g as function @prefix of m, with 2..maxSteps
// random ops (plus the ones that keep values in range). Names are
// prefix-qualified, so many graphs can share one module.
GeneratedGraph generate(Graph& g, Module& m, uint64_t seed, const std::string& prefix, int maxSteps = 8);

// The values of the f32 input named `name` (uniform in [-1, 1), a function
// of the name only).
std::vector<float> inputValues(const std::string& name, int64_t count);

}  // namespace kiln::robust
