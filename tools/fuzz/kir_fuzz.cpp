// libFuzzer entry point: any bytes given to the .kir parser and verifier
// must either parse into a graph that passes the verifier and round-trips
// through the printer, or be rejected with a CompileError. Anything else —
// another exception, a crash, a sanitizer report, a hang — is a bug.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "ir/Text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  kiln::ir::Graph g;
  try {
    g = kiln::ir::parseGraph(text, "fuzz.kir");
  } catch (const kiln::ir::CompileError&) {
    return 0;  // rejected with a diagnostic: fine
  }
  // Accepted: the verifier agrees and print(parse(print(g))) == print(g).
  if (!kiln::ir::verifyGraph(g).empty()) {
    std::fprintf(stderr, "kir_fuzz: parseGraph accepted a graph the verifier rejects\n");
    __builtin_trap();
  }
  std::string printed = kiln::ir::printGraph(g);
  std::string again;
  try {
    again = kiln::ir::printGraph(kiln::ir::parseGraph(printed, "printed.kir"));
  } catch (const kiln::ir::CompileError& e) {
    std::fprintf(stderr, "kir_fuzz: printed graph does not parse back: %s\n--- printed:\n%s\n", e.what(), printed.c_str());
    __builtin_trap();
  }
  if (again != printed) {
    std::fprintf(stderr, "kir_fuzz: round trip changed the text\n--- first:\n%s\n--- second:\n%s\n", printed.c_str(),
                 again.c_str());
    __builtin_trap();
  }
  return 0;
}
