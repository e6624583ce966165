// The one exception type the runtime throws, plus printf-style helpers to
// build its messages (the runtime may not depend on fmt).
#pragma once

#include <stdexcept>
#include <string>

namespace kiln::rt {

/// Every runtime failure. The message says what went wrong and where
/// (file name with byte offset or line, option name, function name).
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// snprintf into a std::string.
std::string strFormat(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/// Throws Error with a printf-formatted message.
[[noreturn]] void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/// Throws the error of an entry point whose index input failed its check:
/// `record` is the model's 16-byte error slot {i32 check, i32 value, i64
/// position}; `input`, `bound` and `use` describe the failed check.
[[noreturn]] void throwIndexError(const char* function, const char* input, long long bound, const char* use,
                                  const char* record);

/// Checked mode: what one non-finite check of an entry point scans (a
/// declared f32 input, or the output of one op's kernel).
struct NonFiniteSite {
  const char* value; ///< IR value name, "%45"
  const char* op;    ///< op kind ("exp"), or "input"
  const char* name;  ///< the input's name; "" for ops
  const char* loc;   ///< "model.cpp:12", or "" when unknown
  const char* type;  ///< "f32[64,10]"
  int rank;          ///< of dims (0: a scalar); -1 = show the flat position only
  long long dims[8];
};

/// Throws the error of a checked entry point that met a non-finite value:
/// `record` is the model's 16-byte error slot {i32 check, f32 value, i64
/// position}, `callCount` the function's i64 call counter.
[[noreturn]] void throwNonFiniteError(const char* function, const NonFiniteSite& site, const char* record,
                                      const char* callCount);

} // namespace kiln::rt
