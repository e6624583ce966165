// The interpreter's kernels: one plain loop nest per op family. The loop
// orders here define the summation order the compiled kernels follow, so
// results agree bit for bit where they can.
#include "Kernels.h"

#include <cmath>
#include <fmt/format.h>
#include <kiln/rt/Random.h>
#include <limits>

#include "ir/Math.h"
#include "ir/Shapes.h"
#include "ir/Text.h"

namespace kiln::interp {

using ir::DType;
using ir::FamilyKind;
using ir::Node;
using ir::OpKind;
using ir::Shape;

namespace {

[[noreturn]] void notScalar(OpKind op) {
  throw ir::CompileError(fmt::format("interpreter: {} is not a scalar op", ir::opName(op)));
}

float fmax_(float a, float b) { return (a > b || a != a) ? a : b; }
float fmin_(float a, float b) { return (a < b || a != a) ? a : b; }

}  // namespace

float scalarF(const Node& n, float a, float b) {
  switch (n.op) {
    case OpKind::Neg: return -a;
    case OpKind::Exp: return math::exp(a);
    case OpKind::Log: return std::log(a);
    case OpKind::Log1p: return std::log1p(a);
    case OpKind::Sqrt: return std::sqrt(a);
    case OpKind::Rsqrt: return 1.0f / std::sqrt(a);
    case OpKind::Abs: return std::fabs(a);
    case OpKind::Sign: return a > 0.0f ? 1.0f : (a < 0.0f ? -1.0f : a);
    case OpKind::Relu: return a < 0.0f ? 0.0f : a;
    case OpKind::LeakyRelu: return a > 0.0f ? a : static_cast<float>(n.attrs.getFloat("alpha")) * a;
    case OpKind::Elu: return a > 0.0f ? a : static_cast<float>(n.attrs.getFloat("alpha")) * std::expm1(a);
    case OpKind::Tanh: return math::tanh(a);
    case OpKind::Sigmoid: return math::sigmoid(a);
    case OpKind::Softplus: return a > 20.0f ? a : std::log1p(math::exp(a));
    case OpKind::Erf: return std::erf(a);
    case OpKind::Sin: return std::sin(a);
    case OpKind::Cos: return std::cos(a);
    case OpKind::Step: return a > 0.0f ? 1.0f : 0.0f;
    case OpKind::Add: return a + b;
    case OpKind::Sub: return a - b;
    case OpKind::Mul: return a * b;
    case OpKind::Div: return a / b;
    case OpKind::Maximum: return fmax_(a, b);
    case OpKind::Minimum: return fmin_(a, b);
    case OpKind::Pow: return std::pow(a, b);
    case OpKind::Less: return a < b ? 1.0f : 0.0f;
    case OpKind::LessEq: return a <= b ? 1.0f : 0.0f;
    case OpKind::Greater: return a > b ? 1.0f : 0.0f;
    case OpKind::GreaterEq: return a >= b ? 1.0f : 0.0f;
    case OpKind::Equal: return a == b ? 1.0f : 0.0f;
    case OpKind::NotEqual: return a != b ? 1.0f : 0.0f;
    default: notScalar(n.op);
  }
}

int32_t scalarI(const Node& n, int32_t a, int32_t b) {
  // Integer arithmetic wraps (two's complement), as in the generated code.
  auto u = [](int32_t x) { return static_cast<uint32_t>(x); };
  switch (n.op) {
    case OpKind::Neg: return static_cast<int32_t>(0u - u(a));
    case OpKind::Abs: return a < 0 ? static_cast<int32_t>(0u - u(a)) : a;
    case OpKind::Add: return static_cast<int32_t>(u(a) + u(b));
    case OpKind::Sub: return static_cast<int32_t>(u(a) - u(b));
    case OpKind::Mul: return static_cast<int32_t>(u(a) * u(b));
    case OpKind::Maximum: return a > b ? a : b;
    case OpKind::Minimum: return a < b ? a : b;
    case OpKind::Less: return a < b;
    case OpKind::LessEq: return a <= b;
    case OpKind::Greater: return a > b;
    case OpKind::GreaterEq: return a >= b;
    case OpKind::Equal: return a == b;
    case OpKind::NotEqual: return a != b;
    default:
      throw ir::CompileError(fmt::format("interpreter: {} has no i32 form", ir::opName(n.op)));
  }
}

int32_t castToI32(float x) {
  if (x != x) return 0;
  if (x >= 2147483648.0f) return std::numeric_limits<int32_t>::max();
  if (x < -2147483648.0f) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(x);
}

namespace {

bool isCompare(OpKind op) {
  switch (op) {
    case OpKind::Less: case OpKind::LessEq: case OpKind::Greater: case OpKind::GreaterEq:
    case OpKind::Equal: case OpKind::NotEqual: return true;
    default: return false;
  }
}

// Calls f(inOffset, outOffset) for every index of `shape` in row-major
// order, where each offset is the dot product of the index with a stride.
template <typename F>
void forEachIndex(const Shape& shape, const std::vector<int64_t>& inStrides, const std::vector<int64_t>& outStrides,
                  F f) {
  size_t r = shape.size();
  std::vector<int64_t> idx(r, 0);
  int64_t total = 1;
  for (int64_t d : shape) total *= d;
  for (int64_t n = 0; n < total; ++n) {
    int64_t io = 0, oo = 0;
    for (size_t d = 0; d < r; ++d) {
      io += idx[d] * inStrides[d];
      oo += idx[d] * outStrides[d];
    }
    f(io, oo);
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

void copyElem(HostTensor& out, int64_t oi, const HostTensor& in, int64_t ii) {
  if (out.type.dtype == DType::F32) out.f[oi] = in.f[ii];
  else out.i[oi] = in.i[ii];
}

void evalMap(const Node& n, const std::vector<const HostTensor*>& in, HostTensor& out) {
  int64_t count = out.size();
  const HostTensor& a = *in[0];
  if (n.op == OpKind::Cast) {
    for (int64_t k = 0; k < count; ++k) {
      if (a.type.dtype == out.type.dtype) copyElem(out, k, a, k);
      else if (out.type.dtype == DType::I32) out.i[k] = castToI32(a.f[k]);
      else out.f[k] = static_cast<float>(a.i[k]);
    }
    return;
  }
  if (n.op == OpKind::Select) {
    for (int64_t k = 0; k < count; ++k) copyElem(out, k, a.f[k] != 0.0f ? *in[1] : *in[2], k);
    return;
  }
  bool isI = a.type.dtype == DType::I32;
  bool cmp = isCompare(n.op);
  for (int64_t k = 0; k < count; ++k) {
    if (!isI) {
      out.f[k] = scalarF(n, a.f[k], in.size() > 1 ? in[1]->f[k] : 0.0f);
      continue;
    }
    int32_t r = scalarI(n, a.i[k], in.size() > 1 ? in[1]->i[k] : 0);
    if (cmp) out.f[k] = static_cast<float>(r);
    else out.i[k] = r;
  }
}

void evalReduce(const Node& n, const HostTensor& a, HostTensor& out) {
  bool isMax = n.op == OpKind::ReduceMax, isMin = n.op == OpKind::ReduceMin;
  float init = isMax ? -std::numeric_limits<float>::infinity() : isMin ? std::numeric_limits<float>::infinity() : 0.0f;
  std::fill(out.f.begin(), out.f.end(), init);
  const auto& axes = n.attrs.getInts("axes");
  Shape keepShape = a.type.shape;
  for (int64_t ax : axes) keepShape[ax] = 1;
  std::vector<int64_t> os = ir::stridesOf(keepShape);
  for (int64_t ax : axes) os[ax] = 0;
  forEachIndex(a.type.shape, ir::stridesOf(a.type.shape), os, [&](int64_t io, int64_t oo) {
    float x = a.f[io];
    if (isMax) out.f[oo] = fmax_(x, out.f[oo]);
    else if (isMin) out.f[oo] = fmin_(x, out.f[oo]);
    else out.f[oo] = out.f[oo] + x;
  });
}

void evalArgReduce(const Node& n, const HostTensor& a, HostTensor& out) {
  int64_t outer, len, inner;
  ir::splitAxis(a.type.shape, n.attrs.getInt("axis"), outer, len, inner);
  bool isMax = n.op == OpKind::Argmax;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const float* p = a.f.data() + o * len * inner + i;
      int32_t best = 0;
      for (int64_t k = 1; k < len; ++k)
        if (isMax ? p[k * inner] > p[best * inner] : p[k * inner] < p[best * inner]) best = static_cast<int32_t>(k);
      out.i[o * inner + i] = best;
    }
}

void evalConcat(const Node& n, const std::vector<const HostTensor*>& in, HostTensor& out) {
  int64_t axis = n.attrs.getInt("axis");
  int64_t outer, len, inner;
  ir::splitAxis(out.type.shape, axis, outer, len, inner);
  int64_t oi = 0;
  for (int64_t o = 0; o < outer; ++o)
    for (const HostTensor* t : in) {
      int64_t chunk = t->type.shape[axis] * inner;
      for (int64_t k = 0; k < chunk; ++k) copyElem(out, oi++, *t, o * chunk + k);
    }
}

void evalSlice(const Node& n, const HostTensor& a, HostTensor& out) {
  const auto &begin = n.attrs.getInts("begin"), &stride = n.attrs.getInts("stride");
  std::vector<int64_t> st = ir::stridesOf(a.type.shape), is(st.size());
  int64_t base = 0;
  for (size_t d = 0; d < st.size(); ++d) {
    base += begin[d] * st[d];
    is[d] = stride[d] * st[d];
  }
  int64_t k = 0;
  forEachIndex(out.type.shape, is, is, [&](int64_t io, int64_t) { copyElem(out, k++, a, base + io); });
}

void evalPad(const Node& n, const HostTensor& a, HostTensor& out) {
  const auto &lo = n.attrs.getInts("lo"), &interior = n.attrs.getInts("interior");
  std::vector<int64_t> ost = ir::stridesOf(out.type.shape), os(ost.size());
  int64_t base = 0;
  for (size_t d = 0; d < ost.size(); ++d) {
    base += lo[d] * ost[d];
    os[d] = (interior[d] + 1) * ost[d];
  }
  forEachIndex(a.type.shape, ir::stridesOf(a.type.shape), os, [&](int64_t io, int64_t oo) { copyElem(out, base + oo, a, io); });
}

void evalMatMul(const Node& n, const HostTensor& a, const HostTensor& b, HostTensor& out) {
  bool ta = n.attrs.getInt("ta", 0), tb = n.attrs.getInt("tb", 0);
  size_t r = out.type.shape.size();
  int64_t m = out.type.shape[r - 2], nn = out.type.shape[r - 1];
  int64_t kk = ta ? a.type.shape[r - 2] : a.type.shape[r - 1];
  int64_t batch = out.size() / (m * nn);
  for (int64_t bt = 0; bt < batch; ++bt) {
    const float* A = a.f.data() + bt * m * kk;
    const float* B = b.f.data() + bt * kk * nn;
    float* C = out.f.data() + bt * m * nn;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < nn; ++j) {
        float acc = 0.0f;
        for (int64_t k = 0; k < kk; ++k) {
          float x = ta ? A[k * m + i] : A[i * kk + k];
          float y = tb ? B[j * kk + k] : B[k * nn + j];
          acc = std::fma(x, y, acc);  // as the compiled GEMM: one fma chain, k ascending
        }
        C[i * nn + j] = acc;
      }
  }
}

void evalLogSoftmax(const Node& n, const HostTensor& a, HostTensor& out) {
  int64_t outer, len, inner;
  ir::splitAxis(a.type.shape, n.attrs.getInt("axis"), outer, len, inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t base = o * len * inner + i;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < len; ++k) m = a.f[base + k * inner] > m ? a.f[base + k * inner] : m;
      float s = 0.0f;
      for (int64_t k = 0; k < len; ++k) s = s + math::exp(a.f[base + k * inner] - m);
      float ls = std::log(s);
      for (int64_t k = 0; k < len; ++k) out.f[base + k * inner] = (a.f[base + k * inner] - m) - ls;
    }
}

// Rows of `rowSize` elements: out row p = table row idx[p] (0 if out of range).
void evalGather(const HostTensor& table, const HostTensor& idx, HostTensor& out) {
  int64_t rows = table.type.shape[0], rowSize = table.size() / rows;
  for (int64_t p = 0; p < idx.size(); ++p) {
    int64_t v = idx.i[p];
    if (v < 0 || v >= rows) continue;  // out is zero-filled
    for (int64_t r = 0; r < rowSize; ++r) copyElem(out, p * rowSize + r, table, v * rowSize + r);
  }
}

void evalScatterAdd(const HostTensor& src, const HostTensor& idx, HostTensor& out) {
  int64_t rows = out.type.shape[0], rowSize = out.size() / rows;
  for (int64_t p = 0; p < idx.size(); ++p) {
    int64_t v = idx.i[p];
    if (v < 0 || v >= rows) continue;
    for (int64_t r = 0; r < rowSize; ++r) out.f[v * rowSize + r] = out.f[v * rowSize + r] + src.f[p * rowSize + r];
  }
}

// x is (outer, C, inner) and idx (outer, K, inner) around `axis`.
void evalAlong(const Node& n, const HostTensor& data, const HostTensor& idx, HostTensor& out, bool scatter) {
  int64_t axis = n.attrs.getInt("axis");
  const Shape& xs = scatter ? out.type.shape : data.type.shape;
  int64_t outer, c, inner, o2, k, i2;
  ir::splitAxis(xs, axis, outer, c, inner);
  ir::splitAxis(idx.type.shape, axis, o2, k, i2);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < k; ++j)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t p = (o * k + j) * inner + i;
        int64_t v = idx.i[p];
        if (v < 0 || v >= c) continue;
        int64_t x = (o * c + v) * inner + i;
        if (scatter) out.f[x] = out.f[x] + data.f[p];
        else out.f[p] = data.f[x];
      }
}

}  // namespace

// Conv geometry shared by the three conv kernels: for output position
// (oh, ow) and tap (kh, kw), the input row/col, or out of range.
struct ConvDims {
  int64_t n, c, h, w, o, oh, ow, kh, kw, cg, og;
  ir::ConvGeom g;
};

static ConvDims convDims(const Node& n, const Shape& x, const Shape& w, const Shape& y) {
  ConvDims d;
  d.g = ir::convGeom(n.attrs);
  d.n = x[0], d.c = x[1], d.h = x[2], d.w = x[3];
  d.o = w[0], d.kh = w[2], d.kw = w[3];
  d.oh = y[2], d.ow = y[3];
  d.cg = d.c / d.g.groups;
  d.og = d.o / d.g.groups;
  return d;
}

// The conv kernels compute as the compiled ones (im2col + GEMM,
// codegen/Families.cpp) so the two agree bit for bit: every sum is one fused
// multiply-add chain, and a tap that falls in the padding contributes
// fma(w, 0, acc) as the zero of the column buffer does in the GEMM.

// x[b, grp*cg + c, ih, iw] for tap (kh, kw) of output (oh, ow), 0 in the padding.
static float convTap(const ConvDims& d, const HostTensor& x, int64_t b, int64_t grp, int64_t c, int64_t kh,
                     int64_t kw, int64_t oh, int64_t ow) {
  int64_t ih = oh * d.g.stride[0] - d.g.pad[0] + kh * d.g.dilation[0];
  int64_t iw = ow * d.g.stride[1] - d.g.pad[1] + kw * d.g.dilation[1];
  if (ih < 0 || ih >= d.h || iw < 0 || iw >= d.w) return 0.0f;
  return x.f[((b * d.c + grp * d.cg + c) * d.h + ih) * d.w + iw];
}

// y[b,o,oh,ow] = sum over (c, kh, kw) ascending of w * x.
static void evalConv(const Node& n, const HostTensor& x, const HostTensor& w, HostTensor& y) {
  ConvDims d = convDims(n, x.type.shape, w.type.shape, y.type.shape);
  for (int64_t b = 0; b < d.n; ++b)
    for (int64_t o = 0; o < d.o; ++o)
      for (int64_t oh = 0; oh < d.oh; ++oh)
        for (int64_t ow = 0; ow < d.ow; ++ow) {
          int64_t grp = o / d.og;
          float acc = 0.0f;
          for (int64_t c = 0; c < d.cg; ++c)
            for (int64_t kh = 0; kh < d.kh; ++kh)
              for (int64_t kw = 0; kw < d.kw; ++kw)
                acc = std::fma(w.f[((o * d.cg + c) * d.kh + kh) * d.kw + kw], convTap(d, x, b, grp, c, kh, kw, oh, ow), acc);
          y.f[((b * d.o + o) * d.oh + oh) * d.ow + ow] = acc;
        }
}

// The column gradient dcol[b, grp, (c, kh, kw), (oh, ow)] = sum over the
// group's o ascending of w * dy, scattered into dx in the order
// (b, grp, c, kh, kw, oh, ow), in-range taps only.
static void evalConvBwdInput(const Node& n, const HostTensor& dy, const HostTensor& w, HostTensor& dx) {
  ConvDims d = convDims(n, dx.type.shape, w.type.shape, dy.type.shape);
  for (int64_t b = 0; b < d.n; ++b)
    for (int64_t grp = 0; grp < d.g.groups; ++grp)
      for (int64_t c = 0; c < d.cg; ++c)
        for (int64_t kh = 0; kh < d.kh; ++kh)
          for (int64_t kw = 0; kw < d.kw; ++kw)
            for (int64_t oh = 0; oh < d.oh; ++oh) {
              int64_t ih = oh * d.g.stride[0] - d.g.pad[0] + kh * d.g.dilation[0];
              if (ih < 0 || ih >= d.h) continue;
              for (int64_t ow = 0; ow < d.ow; ++ow) {
                int64_t iw = ow * d.g.stride[1] - d.g.pad[1] + kw * d.g.dilation[1];
                if (iw < 0 || iw >= d.w) continue;
                float acc = 0.0f;
                for (int64_t o = grp * d.og; o < (grp + 1) * d.og; ++o)
                  acc = std::fma(w.f[((o * d.cg + c) * d.kh + kh) * d.kw + kw], dy.f[((b * d.o + o) * d.oh + oh) * d.ow + ow], acc);
                float& t = dx.f[((b * d.c + grp * d.cg + c) * d.h + ih) * d.w + iw];
                t = t + acc;
              }
            }
}

// dw[o,c,kh,kw] = sum over (b, oh, ow) ascending of dy * x.
static void evalConvBwdFilter(const Node& n, const HostTensor& x, const HostTensor& dy, HostTensor& dw) {
  ConvDims d = convDims(n, x.type.shape, dw.type.shape, dy.type.shape);
  for (int64_t o = 0; o < d.o; ++o)
    for (int64_t c = 0; c < d.cg; ++c)
      for (int64_t kh = 0; kh < d.kh; ++kh)
        for (int64_t kw = 0; kw < d.kw; ++kw) {
          int64_t grp = o / d.og;
          float acc = 0.0f;
          for (int64_t b = 0; b < d.n; ++b)
            for (int64_t oh = 0; oh < d.oh; ++oh)
              for (int64_t ow = 0; ow < d.ow; ++ow)
                acc = std::fma(convTap(d, x, b, grp, c, kh, kw, oh, ow), dy.f[((b * d.o + o) * d.oh + oh) * d.ow + ow], acc);
          dw.f[((o * d.cg + c) * d.kh + kh) * d.kw + kw] = acc;
        }
}

// Pools: visits each output position's window in (kh, kw) order, in-range
// taps only. kind 0 = max, 1 = max grad, 2 = avg, 3 = avg grad.
static void evalPool(const Node& n, const Shape& xs, const Shape& ys, int kind, const HostTensor* x,
                     const HostTensor& dyOrNull, HostTensor& out) {
  ir::ConvGeom g = ir::convGeom(n.attrs);
  int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], OH = ys[2], OW = ys[3];
  float area = static_cast<float>(g.kernel[0] * g.kernel[1]);
  for (int64_t b = 0; b < N * C; ++b)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t yi = (b * OH + oh) * OW + ow;
        float best = -std::numeric_limits<float>::infinity(), acc = 0.0f;
        int64_t bestAt = -1;
        for (int64_t kh = 0; kh < g.kernel[0]; ++kh) {
          int64_t ih = oh * g.stride[0] - g.pad[0] + kh;
          if (ih < 0 || ih >= H) continue;
          for (int64_t kw = 0; kw < g.kernel[1]; ++kw) {
            int64_t iw = ow * g.stride[1] - g.pad[1] + kw;
            if (iw < 0 || iw >= W) continue;
            int64_t xi = (b * H + ih) * W + iw;
            if (kind <= 1) {
              if (bestAt < 0 || x->f[xi] > best) best = x->f[xi], bestAt = xi;
            } else if (kind == 2) {
              acc = acc + x->f[xi];
            } else {
              out.f[xi] = out.f[xi] + dyOrNull.f[yi] / area;
            }
          }
        }
        if (kind == 0) out.f[yi] = best;
        if (kind == 1) out.f[bestAt] = out.f[bestAt] + dyOrNull.f[yi];
        if (kind == 2) out.f[yi] = acc / area;
      }
}

static void evalRandom(const Node& n, const HostTensor& key, HostTensor& out) {
  uint64_t seed = randomSeedOf(key.i[0], key.i[1]);
  auto stream = static_cast<uint64_t>(n.attrs.getInt("stream"));
  bool normal = n.attrs.getString("dist") == "normal";
  for (int64_t k = 0; k < out.size(); ++k)
    out.f[k] = normal ? rt::normal01(seed, stream, static_cast<uint64_t>(k))
                      : rt::uniform01(seed, stream, static_cast<uint64_t>(k));
}

uint64_t randomSeedOf(int32_t lo, int32_t hi) {
  return static_cast<uint64_t>(static_cast<uint32_t>(lo)) | (static_cast<uint64_t>(static_cast<uint32_t>(hi)) << 32);
}

HostTensor evalNode(const ir::Graph& g, ir::ValueId v, const std::vector<HostTensor>& env) {
  const Node& n = g.node(v);
  HostTensor out = HostTensor::zeros(n.type);
  std::vector<const HostTensor*> in;
  for (ir::ValueId o : n.operands) in.push_back(&env[o]);
  switch (ir::opFamily(n.op)) {
    case FamilyKind::Source:
      throw ir::CompileError(fmt::format("interpreter: no value bound for {}", ir::describeValue(g, v)));
    case FamilyKind::Fill: {
      double val = n.attrs.getFloat("value");
      if (n.type.dtype == DType::F32) std::fill(out.f.begin(), out.f.end(), static_cast<float>(val));
      else std::fill(out.i.begin(), out.i.end(), static_cast<int32_t>(val));
      break;
    }
    case FamilyKind::Map: evalMap(n, in, out); break;
    case FamilyKind::Reduce: evalReduce(n, *in[0], out); break;
    case FamilyKind::ArgReduce: evalArgReduce(n, *in[0], out); break;
    case FamilyKind::Copy:
      out.f = in[0]->f;
      out.i = in[0]->i;
      break;
    case FamilyKind::Transpose:
    case FamilyKind::Broadcast: {
      int64_t k = 0;
      forEachIndex(n.type.shape, ir::layoutStrides(g, n), ir::stridesOf(n.type.shape),
                   [&](int64_t io, int64_t) { copyElem(out, k++, *in[0], io); });
      break;
    }
    case FamilyKind::Concat: evalConcat(n, in, out); break;
    case FamilyKind::Slice: evalSlice(n, *in[0], out); break;
    case FamilyKind::Pad: evalPad(n, *in[0], out); break;
    case FamilyKind::MatMul: evalMatMul(n, *in[0], *in[1], out); break;
    case FamilyKind::LogSoftmax: evalLogSoftmax(n, *in[0], out); break;
    case FamilyKind::OneHot: {
      int64_t depth = n.attrs.getInt("depth");
      for (int64_t k = 0; k < in[0]->size(); ++k) {
        int32_t c = in[0]->i[k];
        if (c >= 0 && c < depth) out.f[k * depth + c] = 1.0f;
      }
      break;
    }
    case FamilyKind::Gather: evalGather(*in[0], *in[1], out); break;
    case FamilyKind::ScatterAdd: evalScatterAdd(*in[0], *in[1], out); break;
    case FamilyKind::TakeAlong: evalAlong(n, *in[0], *in[1], out, false); break;
    case FamilyKind::ScatterAlong: evalAlong(n, *in[0], *in[1], out, true); break;
    case FamilyKind::Conv2d: evalConv(n, *in[0], *in[1], out); break;
    case FamilyKind::Conv2dBwdInput: evalConvBwdInput(n, *in[0], *in[1], out); break;
    case FamilyKind::Conv2dBwdFilter: evalConvBwdFilter(n, *in[0], *in[1], out); break;
    case FamilyKind::MaxPool2d: evalPool(n, in[0]->type.shape, n.type.shape, 0, in[0], out, out); break;
    case FamilyKind::MaxPool2dGrad: evalPool(n, in[0]->type.shape, in[1]->type.shape, 1, in[0], *in[1], out); break;
    case FamilyKind::AvgPool2d: evalPool(n, in[0]->type.shape, n.type.shape, 2, in[0], out, out); break;
    case FamilyKind::AvgPool2dGrad: evalPool(n, n.type.shape, in[0]->type.shape, 3, nullptr, *in[0], out); break;
    case FamilyKind::Random: evalRandom(n, *in[0], out); break;
  }
  return out;
}

}  // namespace kiln::interp
