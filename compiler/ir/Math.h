// kiln's own f32 exp, tanh and sigmoid, written once over an arithmetic
// backend so that the interpreter (plain floats) and codegen (LLVM values)
// perform the very same IEEE operations in the same order: compiled code
// and interpreter agree to the last bit, and the compiled form is straight-
// line arithmetic the loop vectorizer turns into AVX-512 code (a libm call
// per element does not vectorize).
//
// Accuracy against the correctly rounded result: tests/unit/math_test.cpp
// sweeps ~70 million inputs and asserts at most 2 ulp for exp and tanh
// (measured: 0.92 and 1.35) and 2.5 for sigmoid (2.30; two roundings after
// exp's, as 1/(1 + expf(-x)) with libm's expf).
//
// exp:  n = rint(x / ln2), r = x - n ln2 (two fma steps, ln2 split in a
//       high and a low part), e^r by its degree-7 Taylor polynomial
//       (|r| <= ln2/2, truncation < 6e-9 relative), then times 2^n as two
//       exact power-of-two factors so that n may reach 128 or -150. Inputs
//       are clamped to [-104, 89] first, beyond which the result is 0 or inf
//       anyway; NaN passes through.
// tanh: |x| < 0.625: x + x^3 Q(x^2), Q a degree-5 least-squares fit of
//       (tanh x - x)/x^3 (0.73 ulp in f32); otherwise
//       sign(x) (1 - 2/(exp(2|x|) + 1)), which reaches 1 once exp overflows.
// sigmoid: 1/(1 + e) for x >= 0 and e/(1 + e) for x < 0, e = exp(-|x|), so
//       that tiny results keep their (subnormal) value instead of going to 0.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace kiln::math {

inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693145751953125f;      // ln 2 with its low 12 bits zero
inline constexpr float kLn2Lo = 1.42860676533018672e-6f;  // ln 2 - kLn2Hi
inline constexpr float kExpCoef[8] = {1.0f,        1.0f,          0.5f,           1.0f / 6,
                                      1.0f / 24,   1.0f / 120,    1.0f / 720,     1.0f / 5040};
inline constexpr float kTanhSmall = 0.625f;
inline constexpr float kTanhQ[6] = {-0.3333333134651184f, 0.1333320140838623f,    -0.053946252912282944f,
                                    0.021698210388422012f, -0.008171788416802883f, 0.002138226293027401f};

// Backend B provides, for its value type B::F and mask type B::M:
//   F c(float); F add/sub/mul/div(F, F); F fma(F a, F b, F c) (a*b+c, one
//   rounding); F rint(F) (to nearest even); F abs(F); F copySign(F mag, F sgn);
//   M lt(F, F), gt(F, F) (ordered); F select(M, F, F);
//   F scale2(F p, F n): p * 2^n1 * 2^n2 for integral n = n1 + n2,
//   n1 = floor(n / 2), computed as two multiplications (n NaN: any NaN).
template <class B>
typename B::F exp(B& b, typename B::F x) {
  using F = typename B::F;
  F xc = b.select(b.gt(x, b.c(89.0f)), b.c(89.0f), x);
  xc = b.select(b.lt(xc, b.c(-104.0f)), b.c(-104.0f), xc);
  F n = b.rint(b.mul(xc, b.c(kLog2e)));
  F r = b.fma(n, b.c(-kLn2Hi), xc);
  r = b.fma(n, b.c(-kLn2Lo), r);
  F p = b.c(kExpCoef[7]);
  for (int k = 6; k >= 0; --k) p = b.fma(p, r, b.c(kExpCoef[k]));
  return b.scale2(p, n);
}

template <class B>
typename B::F tanh(B& b, typename B::F x) {
  using F = typename B::F;
  F ax = b.abs(x);
  F t = b.mul(ax, ax);
  F q = b.c(kTanhQ[5]);
  for (int k = 4; k >= 0; --k) q = b.fma(q, t, b.c(kTanhQ[k]));
  F small = b.fma(b.mul(ax, t), q, ax);
  F e = exp(b, b.add(ax, ax));
  F large = b.sub(b.c(1.0f), b.div(b.c(2.0f), b.add(e, b.c(1.0f))));
  return b.copySign(b.select(b.lt(ax, b.c(kTanhSmall)), small, large), x);
}

template <class B>
typename B::F sigmoid(B& b, typename B::F x) {
  using F = typename B::F;
  F e = exp(b, b.sub(b.c(0.0f), b.abs(x)));  // in (0, 1]: never overflows
  F d = b.add(b.c(1.0f), e);
  return b.select(b.lt(x, b.c(0.0f)), b.div(e, d), b.div(b.c(1.0f), d));
}

// The plain-float backend (the interpreter's, and the host's reference).
struct FloatBackend {
  using F = float;
  using M = bool;
  static F c(float v) { return v; }
  static F add(F a, F b) { return a + b; }
  static F sub(F a, F b) { return a - b; }
  static F mul(F a, F b) { return a * b; }
  static F div(F a, F b) { return a / b; }
  static F fma(F a, F b, F c) { return std::fma(a, b, c); }
  static F rint(F a) { return std::nearbyint(a); }
  static F abs(F a) { return std::fabs(a); }
  static F copySign(F m, F s) { return std::copysign(m, s); }
  static M lt(F a, F b) { return a < b; }
  static M gt(F a, F b) { return a > b; }
  static F select(M m, F a, F b) { return m ? a : b; }
  static F scale2(F p, F n) {
    if (std::isnan(n)) return n;
    auto ni = static_cast<int32_t>(n);
    int32_t n1 = ni >> 1, n2 = ni - n1;  // arithmetic shift: floor(n / 2)
    return p * std::bit_cast<float>((n1 + 127) << 23) * std::bit_cast<float>((n2 + 127) << 23);
  }
};

inline float exp(float x) {
  FloatBackend b;
  return exp(b, x);
}
inline float tanh(float x) {
  FloatBackend b;
  return tanh(b, x);
}
inline float sigmoid(float x) {
  FloatBackend b;
  return sigmoid(b, x);
}

}  // namespace kiln::math
