// Kernels of the non-elementwise families: layout (concat, slice, pad),
// indexing (gather, scatter_add, take_along, scatter_along), convolution,
// pooling and the counter-based random generator.
#include "Emitter.h"

#include <fmt/format.h>

namespace kiln::codegen::detail {

void Emitter::emitConcat(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
  int64_t axis = n.attrs.getInt("axis"), outer, len, inner;
  ir::splitAxis(n.type.shape, axis, outer, len, inner);
  Type* et = elemType(n.type);
  int64_t at = 0;
  for (size_t k = 0; k < in.size(); ++k) {
    int64_t chunk = g_.type(n.operands[k]).shape[axis] * inner;
    nest({outer, chunk}, [&](const std::vector<Value*>& oj) {
      Value* v = b_.CreateLoad(et, gep(et, in[k], add(mulc(oj[0], chunk), oj[1])));
      b_.CreateStore(v, gep(et, out, add(add(mulc(oj[0], len * inner), c64(at)), oj[1])));
    });
    at += chunk;
  }
}

void Emitter::emitSlice(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
  const auto &begin = n.attrs.getInts("begin"), &stride = n.attrs.getInts("stride");
  std::vector<int64_t> st = ir::stridesOf(g_.type(n.operands[0]).shape), is(st.size());
  int64_t base = 0;
  for (size_t d = 0; d < st.size(); ++d) {
    base += begin[d] * st[d];
    is[d] = stride[d] * st[d];
  }
  Type* et = elemType(n.type);
  std::vector<int64_t> os = ir::stridesOf(n.type.shape);
  nest(n.type.shape, [&](const std::vector<Value*>& idx) {
    Value* v = b_.CreateLoad(et, gep(et, in[0], add(c64(base), linear(idx, is))));
    b_.CreateStore(v, gep(et, out, linear(idx, os)));
  });
}

void Emitter::emitPad(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
  const auto &lo = n.attrs.getInts("lo"), &interior = n.attrs.getInts("interior");
  std::vector<int64_t> ost = ir::stridesOf(n.type.shape), os(ost.size());
  int64_t base = 0;
  for (size_t d = 0; d < ost.size(); ++d) {
    base += lo[d] * ost[d];
    os[d] = (interior[d] + 1) * ost[d];
  }
  zeroFill(out, n.type);
  const ir::TensorType& it = g_.type(n.operands[0]);
  Type* et = elemType(n.type);
  std::vector<int64_t> is = ir::stridesOf(it.shape);
  nest(it.shape, [&](const std::vector<Value*>& idx) {
    Value* v = b_.CreateLoad(et, gep(et, in[0], linear(idx, is)));
    b_.CreateStore(v, gep(et, out, add(c64(base), linear(idx, os))));
  });
}

void Emitter::emitGather(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
  const ir::TensorType& table = g_.type(n.operands[0]);
  int64_t rows = table.shape[0], rowSize = table.numElements() / rows;
  int64_t count = g_.type(n.operands[1]).numElements();
  Type* et = elemType(n.type);
  zeroFill(out, n.type);
  loop(count, [&](Value* p) {
    Value* v = loadIndex(in[1], p);
    ifThen(inRange(v, rows), [&] {
      loop(rowSize, [&](Value* r) {
        Value* x = b_.CreateLoad(et, gep(et, in[0], add(mulc(v, rowSize), r)));
        b_.CreateStore(x, gep(et, out, add(mulc(p, rowSize), r)));
      });
    });
  });
}

void Emitter::emitScatterAdd(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
  int64_t rows = n.type.shape[0], rowSize = n.type.numElements() / rows;
  int64_t count = g_.type(n.operands[1]).numElements();
  zeroFill(out, n.type);
  loop(count, [&](Value* p) {
    Value* v = loadIndex(in[1], p);
    ifThen(inRange(v, rows), [&] {
      loop(rowSize, [&](Value* r) { accumulate(out, add(mulc(v, rowSize), r), loadF(in[0], add(mulc(p, rowSize), r))); });
    });
  });
}

void Emitter::emitAlong(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
  bool scatter = n.op == OpKind::ScatterAlong;
  int64_t axis = n.attrs.getInt("axis"), outer, c, inner, o2, k, i2;
  const ir::TensorType& idxT = g_.type(n.operands[1]);
  ir::splitAxis(scatter ? n.type.shape : g_.type(n.operands[0]).shape, axis, outer, c, inner);
  ir::splitAxis(idxT.shape, axis, o2, k, i2);
  zeroFill(out, n.type);
  nest({outer, k, inner}, [&](const std::vector<Value*>& ojk) {
    Value* p = add(mulc(add(mulc(ojk[0], k), ojk[1]), inner), ojk[2]);
    Value* v = loadIndex(in[1], p);
    ifThen(inRange(v, c), [&] {
      Value* x = add(mulc(add(mulc(ojk[0], c), v), inner), ojk[2]);
      if (scatter) accumulate(out, x, loadF(in[0], p));
      else storeF(loadF(in[0], x), out, p);
    });
  });
}

// The three conv kernels, loop for loop as in the interpreter.
void Emitter::emitConv(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
  const ir::Shape *xs, *ws, *ys;
  Value *X, *W, *Y;
  if (n.op == OpKind::Conv2d) {
    xs = &g_.type(n.operands[0]).shape, ws = &g_.type(n.operands[1]).shape, ys = &n.type.shape;
    X = in[0], W = in[1], Y = out;
  } else if (n.op == OpKind::Conv2dBwdInput) {
    xs = &n.type.shape, ws = &g_.type(n.operands[1]).shape, ys = &g_.type(n.operands[0]).shape;
    X = out, W = in[1], Y = in[0];
  } else {
    xs = &g_.type(n.operands[0]).shape, ws = &n.type.shape, ys = &g_.type(n.operands[1]).shape;
    X = in[0], W = out, Y = in[1];
  }
  ir::ConvGeom g = ir::convGeom(n.attrs);
  int64_t N = (*xs)[0], C = (*xs)[1], H = (*xs)[2], Wd = (*xs)[3], O = (*ws)[0], KH = (*ws)[2], KW = (*ws)[3];
  int64_t OH = (*ys)[2], OW = (*ys)[3], CG = C / g.groups, OG = O / g.groups;
  auto ihOf = [&](Value* oh, Value* kh) { return add(mulc(oh, g.stride[0]), add(c64(-g.pad[0]), mulc(kh, g.dilation[0]))); };
  auto iwOf = [&](Value* ow, Value* kw) { return add(mulc(ow, g.stride[1]), add(c64(-g.pad[1]), mulc(kw, g.dilation[1]))); };
  auto xIdx = [&](Value* b, Value* o, Value* c, Value* ih, Value* iw) {
    Value* ch = add(mulc(b_.CreateUDiv(o, c64(OG)), CG), c);
    return add(mulc(add(mulc(add(mulc(b, C), ch), H), ih), Wd), iw);
  };
  auto wIdx = [&](Value* o, Value* c, Value* kh, Value* kw) { return add(mulc(add(mulc(add(mulc(o, CG), c), KH), kh), KW), kw); };
  auto yIdx = [&](Value* b, Value* o, Value* oh, Value* ow) { return add(mulc(add(mulc(add(mulc(b, O), o), OH), oh), OW), ow); };
  Value* acc = alloca(f32_);
  if (n.op == OpKind::Conv2d) {
    nest({N, O, OH, OW}, [&](const std::vector<Value*>& q) {
      b_.CreateStore(cf(0.0), acc);
      nest({CG, KH}, [&](const std::vector<Value*>& ck) {
        Value* ih = ihOf(q[2], ck[1]);
        ifThen(inRange(ih, H), [&] {
          loop(KW, [&](Value* kw) {
            Value* iw = iwOf(q[3], kw);
            ifThen(inRange(iw, Wd), [&] {
              Value* pr = b_.CreateFMul(loadF(X, xIdx(q[0], q[1], ck[0], ih, iw)), loadF(W, wIdx(q[1], ck[0], ck[1], kw)));
              b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f32_, acc), pr), acc);
            });
          });
        });
      });
      storeF(b_.CreateLoad(f32_, acc), Y, yIdx(q[0], q[1], q[2], q[3]));
    });
    return;
  }
  if (n.op == OpKind::Conv2dBwdInput) {
    zeroFill(out, n.type);
    nest({N, O, OH, OW}, [&](const std::vector<Value*>& q) {
      Value* gy = loadF(Y, yIdx(q[0], q[1], q[2], q[3]));
      nest({CG, KH}, [&](const std::vector<Value*>& ck) {
        Value* ih = ihOf(q[2], ck[1]);
        ifThen(inRange(ih, H), [&] {
          loop(KW, [&](Value* kw) {
            Value* iw = iwOf(q[3], kw);
            ifThen(inRange(iw, Wd), [&] {
              accumulate(X, xIdx(q[0], q[1], ck[0], ih, iw), b_.CreateFMul(gy, loadF(W, wIdx(q[1], ck[0], ck[1], kw))));
            });
          });
        });
      });
    });
    return;
  }
  nest({O, CG, KH, KW}, [&](const std::vector<Value*>& q) {
    b_.CreateStore(cf(0.0), acc);
    nest({N, OH}, [&](const std::vector<Value*>& bo) {
      Value* ih = ihOf(bo[1], q[2]);
      ifThen(inRange(ih, H), [&] {
        loop(OW, [&](Value* ow) {
          Value* iw = iwOf(ow, q[3]);
          ifThen(inRange(iw, Wd), [&] {
            Value* pr = b_.CreateFMul(loadF(Y, yIdx(bo[0], q[0], bo[1], ow)), loadF(X, xIdx(bo[0], q[0], q[1], ih, iw)));
            b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f32_, acc), pr), acc);
          });
        });
      });
    });
    storeF(b_.CreateLoad(f32_, acc), W, wIdx(q[0], q[1], q[2], q[3]));
  });
}

void Emitter::emitPool(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
  bool isMax = n.op == OpKind::MaxPool2d || n.op == OpKind::MaxPool2dGrad;
  bool isGrad = n.op == OpKind::MaxPool2dGrad || n.op == OpKind::AvgPool2dGrad;
  const ir::Shape& xs = n.op == OpKind::AvgPool2dGrad ? n.type.shape : g_.type(n.operands[0]).shape;
  const ir::Shape& ys = n.op == OpKind::MaxPool2dGrad ? g_.type(n.operands[1]).shape
                        : n.op == OpKind::AvgPool2dGrad ? g_.type(n.operands[0]).shape : n.type.shape;
  Value* X = n.op == OpKind::AvgPool2dGrad ? nullptr : in[0];
  Value* DY = n.op == OpKind::MaxPool2dGrad ? in[1] : n.op == OpKind::AvgPool2dGrad ? in[0] : nullptr;
  ir::ConvGeom g = ir::convGeom(n.attrs);
  int64_t NC = xs[0] * xs[1], H = xs[2], W = xs[3], OH = ys[2], OW = ys[3];
  Value* area = cf(static_cast<float>(g.kernel[0] * g.kernel[1]));
  if (isGrad) zeroFill(out, n.type);
  Value* best = alloca(f32_);
  Value* bestAt = alloca(i64_);
  Value* acc = alloca(f32_);
  nest({NC, OH, OW}, [&](const std::vector<Value*>& q) {
    Value* yi = add(mulc(add(mulc(q[0], OH), q[1]), OW), q[2]);
    b_.CreateStore(cf(-INFINITY), best);
    b_.CreateStore(c64(-1), bestAt);
    b_.CreateStore(cf(0.0), acc);
    Value* gy = DY ? loadF(DY, yi) : nullptr;
    loop(g.kernel[0], [&](Value* kh) {
      Value* ih = add(mulc(q[1], g.stride[0]), add(c64(-g.pad[0]), kh));
      ifThen(inRange(ih, H), [&] {
        loop(g.kernel[1], [&](Value* kw) {
          Value* iw = add(mulc(q[2], g.stride[1]), add(c64(-g.pad[1]), kw));
          ifThen(inRange(iw, W), [&] {
            Value* xi = add(mulc(add(mulc(q[0], H), ih), W), iw);
            if (isMax) {
              Value* x = loadF(X, xi);
              Value* take = b_.CreateOr(b_.CreateICmpSLT(b_.CreateLoad(i64_, bestAt), c64(0)),
                                        b_.CreateFCmpOGT(x, b_.CreateLoad(f32_, best)));
              b_.CreateStore(b_.CreateSelect(take, x, b_.CreateLoad(f32_, best)), best);
              b_.CreateStore(b_.CreateSelect(take, xi, b_.CreateLoad(i64_, bestAt)), bestAt);
            } else if (!isGrad) {
              b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f32_, acc), loadF(X, xi)), acc);
            } else {
              accumulate(out, xi, b_.CreateFDiv(gy, area));
            }
          });
        });
      });
    });
    if (n.op == OpKind::MaxPool2d) storeF(b_.CreateLoad(f32_, best), out, yi);
    if (n.op == OpKind::MaxPool2dGrad) accumulate(out, b_.CreateLoad(i64_, bestAt), gy);
    if (n.op == OpKind::AvgPool2d) storeF(b_.CreateFDiv(b_.CreateLoad(f32_, acc), area), out, yi);
  });
}

// SplitMix64's finalizer, as rt::mix64.
Value* Emitter::mix64(Value* x) {
  x = b_.CreateXor(x, b_.CreateLShr(x, 30));
  x = b_.CreateMul(x, b_.getInt64(0xBF58476D1CE4E5B9ull));
  x = b_.CreateXor(x, b_.CreateLShr(x, 27));
  x = b_.CreateMul(x, b_.getInt64(0x94D049BB133111EBull));
  return b_.CreateXor(x, b_.CreateLShr(x, 31));
}

// rt::uniform01 / rt::normal01 of (seed from the key, stream, index).
void Emitter::emitRandom(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
  constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull, kStreamMul = 0xD1B54A32D192ED03ull;
  Value* lo = b_.CreateZExt(b_.CreateLoad(i32_, gep(i32_, in[0], c64(0))), i64_);
  Value* hi = b_.CreateZExt(b_.CreateLoad(i32_, gep(i32_, in[0], c64(1))), i64_);
  Value* seed = b_.CreateOr(lo, b_.CreateShl(hi, 32));
  auto stream = static_cast<uint64_t>(n.attrs.getInt("stream"));
  Value* key = mix64(b_.CreateAdd(b_.CreateAdd(mix64(b_.CreateXor(seed, b_.getInt64(kGolden))),
                                               b_.getInt64(stream * kStreamMul)),
                                  b_.getInt64(kGolden)));
  bool normal = n.attrs.getString("dist") == "normal";
  Type* f64 = b_.getDoubleTy();
  loop(n.type.numElements(), [&](Value* i) {
    Value* r = mix64(b_.CreateAdd(key, b_.CreateMul(b_.CreateAdd(i, c64(1)), b_.getInt64(kGolden))));
    Value* v;
    if (!normal) {
      v = b_.CreateFMul(b_.CreateUIToFP(b_.CreateLShr(r, 40), f32_), cf(0x1.0p-24));
    } else {
      Value* u1 = b_.CreateFMul(b_.CreateUIToFP(b_.CreateAdd(b_.CreateLShr(r, 32), c64(1)), f64), ConstantFP::get(f64, 0x1.0p-32));
      Value* u2 = b_.CreateFMul(b_.CreateUIToFP(b_.CreateAnd(r, c64(0xFFFFFFFF)), f64), ConstantFP::get(f64, 0x1.0p-32));
      Value* rad = b_.CreateUnaryIntrinsic(Intrinsic::sqrt,
                                           b_.CreateFMul(ConstantFP::get(f64, -2.0), b_.CreateUnaryIntrinsic(Intrinsic::log, u1)));
      Value* ang = b_.CreateFMul(ConstantFP::get(f64, 2.0 * 3.14159265358979323846), u2);
      v = b_.CreateFPTrunc(b_.CreateFMul(rad, b_.CreateUnaryIntrinsic(Intrinsic::cos, ang)), f32_);
    }
    storeF(v, out, i);
  });
}

}  // namespace kiln::codegen::detail
