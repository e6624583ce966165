// printf-style message building for Error (the runtime does not use fmt).
#include "kiln/rt/Error.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include <cstdarg>
#include <cstdio>

namespace kiln::rt {

static std::string vformat(const char* fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  int len = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (len <= 0)
    return len == 0 ? std::string() : std::string(fmt);
  std::string out(static_cast<size_t>(len), '\0');
  std::vsnprintf(out.data(), out.size() + 1, fmt, args);
  return out;
}

std::string strFormat(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::string out = vformat(fmt, args);
  va_end(args);
  return out;
}

void fail(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::string msg = vformat(fmt, args);
  va_end(args);
  throw Error(msg);
}

void throwIndexError(const char* function, const char* input, long long bound, const char* use, const char* record) {
  int32_t value;
  int64_t position;
  std::memcpy(&value, record + 4, sizeof value);
  std::memcpy(&position, record + 8, sizeof position);
  fail("%s: input \"%s\" element %lld is %d, outside [0, %lld) (indices for %s); nothing was computed", function, input,
       static_cast<long long>(position), value, bound, use);
}

void throwNonFiniteError(const char* function, const NonFiniteSite& site, const char* record, const char* callCount) {
  float value;
  int64_t position, calls;
  std::memcpy(&value, record + 4, sizeof value);
  std::memcpy(&position, record + 8, sizeof position);
  std::memcpy(&calls, callCount, sizeof calls);
  // "[3, 7]": the position in the value's shape (row-major); "[]" for a
  // scalar; the flat position when the shape was not given
  std::string at = "[";
  if (site.rank >= 0 && site.rank <= 8) {
    long long rest = static_cast<long long>(position);
    long long idx[8];
    for (int d = site.rank - 1; d >= 0; --d) {
      idx[d] = site.dims[d] > 0 ? rest % site.dims[d] : 0;
      rest = site.dims[d] > 0 ? rest / site.dims[d] : 0;
    }
    for (int d = 0; d < site.rank; ++d)
      at += strFormat("%s%lld", d ? ", " : "", idx[d]);
  } else {
    at = strFormat("[flat %lld", static_cast<long long>(position));
  }
  at += "]";
  const char* what = std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
  std::string where = *site.loc ? strFormat(" at %s", site.loc) : std::string();
  if (std::strcmp(site.op, "input") == 0)
    fail("%s call %lld: input \"%s\" element %s of %s is %s; checked mode stopped the call before any kernel ran, so "
         "params and state are unchanged",
         function, static_cast<long long>(calls), site.name, at.c_str(), site.type, what);
  fail("%s call %lld: %s (%s%s) element %s of %s is %s, the first non-finite value of this call; checked mode stopped "
       "the call there, before its updates, so params and state are unchanged",
       function, static_cast<long long>(calls), site.value, site.op, where.c_str(), at.c_str(), site.type, what);
}

} // namespace kiln::rt
