// Ahead-of-time output: NAME.o plus NAME.h, a C++ class over the model's
// memory that needs only libkiln_rt.
#pragma once

#include <string>

#include "Compile.h"

namespace kiln::aot {

// Writes outDir/NAME.o and outDir/NAME.h; returns the compile record.
driver::Compiled emitFiles(const ir::Graph& g, const std::string& name, const std::string& outDir,
                           const CompileOptions& opts, const std::string& builtText = {});

// The generated header text (exposed for tests).
std::string headerText(const driver::Compiled& c, const std::string& name);

// A C++ identifier from a buffer name: "l1.w" -> "l1_w".
std::string identifierFor(std::string_view name);

}  // namespace kiln::aot
