// The .kir diagnostics docs/errors.md shows, asserted word for word: each
// bad input gives FILE:LINE:COL (or FILE for whole-graph rules) and a
// message naming the token, value or rule. Inputs the fuzzer found are kept
// here as regression cases.
#include <doctest/doctest.h>

#include <string>

#include "ir/Text.h"

namespace {

std::string parseError(const std::string& text) {
  try {
    kiln::ir::parseGraph(text, "model.kir");
  } catch (const kiln::ir::CompileError& e) {
    return e.what();
  }
  return "";
}

const char* kX = "%0 = input \"x\" : f32[2,3]\n";

}  // namespace

TEST_CASE("kir errors: lexical problems name line, column and the token") {
  CHECK(parseError(std::string(kX) + "%1 = relu %0 : f32[2,3];\n") == "model.kir:2:24: unexpected character ';'");
  CHECK(parseError(std::string(kX) + std::string("%1 = relu %0 : f32[2,3] \0", 25)) == "model.kir:2:25: unexpected byte 0x00");
  CHECK(parseError(std::string(kX) + "%1 = relu %0 : f32[2,3] \xc3\xa9") == "model.kir:2:25: unexpected byte 0xc3");
  CHECK(parseError("%0 = input \"x : f32[2,3]\n") == "model.kir:1:12: unterminated string");
  CHECK(parseError("%0 = input \"x\" : f32[99999999999999999999]\n") == "model.kir:1:22: bad integer '99999999999999999999'");
}

TEST_CASE("kir errors: syntax and types") {
  CHECK(parseError("caf\xc3\xa9") == "model.kir:1:1: expected '%value = ...' or 'func', found 'caf'");
  CHECK(parseError(std::string(kX) + "%1 = frob %0 : f32[2,3]\n") == "model.kir:2:6: unknown op 'frob'");
  CHECK(parseError(std::string(kX) + "%1 = relu %7 : f32[2,3]\n") == "model.kir:2:11: use of undefined value '%7'");
  CHECK(parseError("%0 = input \"x\" : f64[2]\n") == "model.kir:1:18: expected a type like f32[2,3], found 'f64'");
  CHECK(parseError("%0 = input \"x\" : f32[2,0]\n") == "model.kir:1:24: dimension must be positive, found 0");
  CHECK(parseError("%0 = input \"x\" : f32[100000000,100000000]\n") ==
        "model.kir:1:18: type f32[100000000,100000000] has too many elements");
  CHECK(parseError(std::string(kX) + "%1 = relu %0 : f32[3,2]\n") ==
        "model.kir:2:16: relu: declared type f32[3,2] but the operands give f32[2,3]");
  CHECK(parseError(std::string(kX) + "%1 = matmul %0, %0 {ta = 0, tb = 0} : f32[2,3]\n") ==
        "model.kir:2:6: matmul: inner dims differ (3 vs 2): lhs f32[2,3], rhs f32[2,3]");
}

TEST_CASE("kir errors: the verifier names the value and the rule") {
  CHECK(parseError(std::string(kX) + "%1 = input \"y\" : f32[2,3]\n%2 = add %0, %1 : f32[2,3]\nfunc @f(%0) -> (z = %2)\n") ==
        "model.kir: function @f: reads input %1 (input \"y\") but does not declare it");
  CHECK(parseError(std::string(kX) + "%1 = relu %0 : f32[2,3]\nfunc @f(%0) -> (y = %1) updates (%0 = %1)\n") ==
        "model.kir: function @f: update target %0 (input \"x\") is not a param or state");
  CHECK(parseError(std::string(kX) + "%1 = state \"x\" : f32[2,3]\n") ==
        "model.kir: %1 (state \"x\"): name \"x\" is used by another input, param or state");
}
