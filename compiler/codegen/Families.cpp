// Kernels of the non-elementwise families: layout (concat, slice, pad),
// indexing (gather, scatter_add, take_along, scatter_along), convolution
// (im2col + the packed GEMM), pooling (vectorized windows, a scalar
// fallback) and the counter-based random generator.
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

// Convolution through im2col + GEMM (lower::ConvLayout for the geometry,
// the work split and the scratch layout). Per image and group, the column
// matrix col[(c, kh, kw)][(oh, ow)] holds the input tap of each output
// position (0 in the padding); its rows are ConvLayout::colLd floats apart,
// 64-byte aligned for the forward, whose GEMM reads them in place instead
// of packing them (conv2 of the cnn benchmark, alone at 1 thread: 10.8 ->
// 9.95 ms for its 64 images):
//   conv2d            y[n, group] = w[group] · col                  (M og, K ckk, N ohw)
//   conv2d_bwd_filter dw[group]^T += col · dy[n, group]^T           (M ckk, K ohw, N og),
//                     summed over the images into a transposed accumulator
//   conv2d_bwd_input  dcol = w[group]^T · dy[n, group]              (M ckk, K og, N ohw),
//                     then scattered back into dx (col2im)
// Every sum is emitGemm's one fma chain, so the interpreter (which computes
// the same chains, interp/Kernels.cpp) agrees bit for bit. A 1x1 conv with
// stride 1 and no padding uses the image itself as its column matrix.
//
// The work runs in parallel (kiln_rt_parallel_for), each item with its own
// scratch slot: conv2d and conv2d_bwd_input over the images (an image's
// outputs depend on that image alone), conv2d_bwd_filter over ranges of
// the accumulator's rows (each row's sum over the images stays one chain
// in image order, whichever thread runs it). The GEMM an item calls finds
// the pool busy and runs inline. Results do not depend on the thread count.

// Copies rows [r0, r0 + rows) of one image/group's column matrix into `col`
// (im2col; col's row 0 is row r0), or adds `col` back into the image
// (col2im, all rows: x += col, rows in (c, kh, kw, oh) order), vectorized
// along ow: each vector of output columns reads its taps with one masked
// load (stride 1) or gather, lanes in the padding masked off.
void Emitter::emitIm2Col(const lower::ConvLayout& l, const ir::ConvGeom& g, Value* img, Value* col, bool back,
                         Value* r0, Value* rows) {
  const int64_t VW = vecWidth_, chunks = (l.ow + VW - 1) / VW;
  auto* vt = FixedVectorType::get(f32_, static_cast<unsigned>(VW));
  std::vector<Constant*> laneC;
  for (int64_t k = 0; k < VW; ++k) laneC.push_back(b_.getInt32(static_cast<uint32_t>(k)));
  Value* lanes = ConstantVector::get(laneC);
  Value* zero = Constant::getNullValue(vt);
  auto splat32 = [&](Value* v) { return b_.CreateVectorSplat(static_cast<unsigned>(VW), b_.CreateTrunc(v, i32_)); };
  // row r of col: (c, kh, kw), from r0 + r when a range is given
  auto rowBody = [&](Value* r, Value* c, Value* kh, Value* kw) {
    Value* plane = gep(f32_, img, mulc(c, l.h * l.w));
    Value* iw0 = add(mulc(kw, g.dilation[1]), c64(-g.pad[1]));  // input column of output column 0
    loop(l.oh, [&](Value* oh) {
      Value* ih = add(mulc(oh, g.stride[0]), add(c64(-g.pad[0]), mulc(kh, g.dilation[0])));
      Value* rowOk = inRange(ih, l.h);
      // the row's address only matters when it is in range (all lanes masked off otherwise)
      Value* src = b_.CreateGEP(f32_, plane, b_.CreateMul(ih, c64(l.w)));
      Value* dst = gep(f32_, col, add(mulc(r, l.colLd), mulc(oh, l.ow)));
      auto body = [&] {
        loop(chunks, [&](Value* ch) {
          Value* ow0 = mulc(ch, VW);
          Value* owv = b_.CreateAdd(splat32(ow0), lanes);
          Value* owOk = b_.CreateICmpULT(owv, splat32(c64(l.ow)));
          Value* iwv = b_.CreateAdd(b_.CreateMul(owv, splat32(c64(g.stride[1]))), splat32(iw0));
          Value* ok = b_.CreateAnd(owOk, b_.CreateICmpULT(iwv, splat32(c64(l.w))));
          if (!back) ok = b_.CreateAnd(ok, b_.CreateVectorSplat(static_cast<unsigned>(VW), rowOk));
          Value* at = gep(f32_, dst, ow0);
          Value* srcAt = nullptr;  // stride 1: the first lane's address
          Value* ptrs = nullptr;   // otherwise every lane's
          if (g.stride[1] == 1) srcAt = b_.CreateGEP(f32_, src, add(ow0, iw0));
          else ptrs = b_.CreateGEP(f32_, src, b_.CreateSExt(iwv, FixedVectorType::get(i64_, static_cast<unsigned>(VW))));
          auto loadX = [&](Value* m) {
            return srcAt ? b_.CreateMaskedLoad(vt, srcAt, Align(4), m, zero) : b_.CreateMaskedGather(vt, ptrs, Align(4), m, zero);
          };
          if (!back) {
            b_.CreateMaskedStore(loadX(ok), at, Align(4), owOk);
            return;
          }
          Value* sum = b_.CreateFAdd(loadX(ok), b_.CreateMaskedLoad(vt, at, Align(4), ok, zero));
          if (srcAt) b_.CreateMaskedStore(sum, srcAt, Align(4), ok);
          else b_.CreateMaskedScatter(sum, ptrs, Align(4), ok);
        });
      };
      if (back) ifThen(rowOk, body);  // rows in the padding have nothing to add
      else body();
    });
  };
  if (!r0) {
    nest({l.cg, l.kh, l.kw}, [&](const std::vector<Value*>& q) {
      rowBody(add(mulc(add(mulc(q[0], l.kh), q[1]), l.kw), q[2]), q[0], q[1], q[2]);
    });
    return;
  }
  loopV(rows, [&](Value* r) {
    Value* row = add(r0, r);
    rowBody(r, b_.CreateUDiv(row, c64(l.kh * l.kw)), b_.CreateURem(b_.CreateUDiv(row, c64(l.kw)), c64(l.kh)),
            b_.CreateURem(row, c64(l.kw)));
  });
}

namespace {

// col2im for column stride 1, as a gather: each vector of VW input
// columns of dx sums its taps from the column matrix in registers, in
// (kh, kw) order, and is stored once. The scatter form adds every row of
// col into dx in (c, kh, kw, oh) order, so an element receives its
// contributions in (kh, kw) order too, starting from the 0 of a cleared
// dx: the same additions, the same bits. Taps outside the output (or
// between strided rows) add nothing; an element without any is +0.
void emitCol2ImGather(Emitter& e, const lower::ConvLayout& l, const ir::ConvGeom& g, Value* img, Value* col) {
  IRBuilder<>& b = e.b_;
  const int64_t VW = e.vecWidth_, chunks = (l.w + VW - 1) / VW;
  const unsigned uVW = static_cast<unsigned>(VW);
  auto* vt = FixedVectorType::get(e.f32_, uVW);
  std::vector<Constant*> laneC;
  for (int64_t k = 0; k < VW; ++k) laneC.push_back(b.getInt32(static_cast<uint32_t>(k)));
  Value* lanes = ConstantVector::get(laneC);
  Value* zero = Constant::getNullValue(vt);
  auto splat32 = [&](int64_t v) { return b.CreateVectorSplat(uVW, b.getInt32(static_cast<uint32_t>(v))); };
  Value* acc = e.alloca(vt);
  e.nest({l.cg, l.h, chunks}, [&](const std::vector<Value*>& q) {
    Value* iw0 = e.mulc(q[2], VW);
    Value* iwv = b.CreateAdd(b.CreateVectorSplat(uVW, b.CreateTrunc(iw0, e.i32_)), lanes);
    Value* iwOk = b.CreateICmpULT(iwv, splat32(l.w));
    b.CreateStore(zero, acc);
    e.loop(l.kh, [&](Value* kh) {
      // output row of this tap: (ih + pad - kh*dilation) / stride, when whole and in range
      Value* t = e.add(e.add(q[1], e.c64(g.pad[0])), e.mulc(kh, -g.dilation[0]));
      Value* oh = g.stride[0] == 1 ? t : b.CreateUDiv(t, e.c64(g.stride[0]));
      Value* ok = e.inRange(oh, l.oh);
      if (g.stride[0] != 1) ok = b.CreateAnd(ok, b.CreateICmpEQ(b.CreateURem(t, e.c64(g.stride[0])), e.c64(0)));
      e.ifThen(ok, [&] {
        Value* a = b.CreateLoad(vt, acc);
        for (int64_t kw = 0; kw < l.kw; ++kw) {
          Value* row = e.add(e.mulc(e.add(e.mulc(q[0], l.kh), kh), l.kw), e.c64(kw));  // (c, kh, kw)
          int64_t shift = g.pad[1] - kw * g.dilation[1];                                  // ow = iw + shift
          Value* owv = b.CreateAdd(iwv, splat32(shift));
          Value* m = b.CreateAnd(iwOk, b.CreateICmpULT(owv, splat32(l.ow)));
          // lanes whose tap is outside the row are masked off; the address only matters for the others
          Value* at = b.CreateGEP(e.f32_, col, e.add(e.mulc(e.add(e.mulc(row, l.oh), oh), l.ow), e.add(iw0, e.c64(shift))));
          Value* v = b.CreateMaskedLoad(vt, at, Align(4), m, zero);
          a = b.CreateSelect(m, b.CreateFAdd(a, v), a);
        }
        b.CreateStore(a, acc);
      });
    });
    Value* dst = e.gep(e.f32_, img, e.add(e.mulc(e.add(e.mulc(q[0], l.h), q[1]), l.w), iw0));
    b.CreateMaskedStore(b.CreateLoad(vt, acc), dst, Align(4), iwOk);
  });
}

// dst[cols][rows] = src[rows][cols]^T, in blocks of VW x VW held in
// registers: VW rows loaded (masked at the edges), transposed by log2(VW)
// rounds of two-vector shuffles (round s swaps bit s of the row index with
// bit s of the lane index), stored as VW rows of dst.
void emitTransposeBlocks(Emitter& e, Value* src, Value* dst, int64_t rows, int64_t cols) {
  IRBuilder<>& b = e.b_;
  const int64_t VW = e.vecWidth_;
  const unsigned uVW = static_cast<unsigned>(VW);
  auto* vt = FixedVectorType::get(e.f32_, uVW);
  Value* zero = Constant::getNullValue(vt);
  std::vector<Constant*> laneC;
  for (int64_t k = 0; k < VW; ++k) laneC.push_back(b.getInt64(static_cast<uint64_t>(k)));
  Value* lanes = ConstantVector::get(laneC);
  auto lanesBelow = [&](Value* first, int64_t limit) {  // first + lane < limit
    return b.CreateICmpULT(b.CreateAdd(b.CreateVectorSplat(uVW, first), lanes), b.CreateVectorSplat(uVW, e.c64(limit)));
  };
  auto rowMask = [&](Value* at, int64_t limit) {  // every lane, if at < limit
    return b.CreateVectorSplat(uVW, b.CreateICmpULT(at, e.c64(limit)));
  };
  e.nest({(rows + VW - 1) / VW, (cols + VW - 1) / VW}, [&](const std::vector<Value*>& q) {
    Value* r0 = e.mulc(q[0], VW);
    Value* c0 = e.mulc(q[1], VW);
    Value* colOk = lanesBelow(c0, cols);
    std::vector<Value*> v;
    for (int64_t i = 0; i < VW; ++i) {
      Value* r = e.add(r0, e.c64(i));
      Value* at = b.CreateGEP(e.f32_, src, e.add(e.mulc(r, cols), c0));
      v.push_back(b.CreateMaskedLoad(vt, at, Align(4), b.CreateAnd(colOk, rowMask(r, rows)), zero));
    }
    for (int64_t bit = 1; bit < VW; bit *= 2) {
      std::vector<int> lo(uVW), hi(uVW);
      for (int64_t l = 0; l < VW; ++l) {
        lo[static_cast<size_t>(l)] = static_cast<int>((l & bit) == 0 ? l : VW + l - bit);
        hi[static_cast<size_t>(l)] = static_cast<int>((l & bit) == 0 ? l + bit : VW + l);
      }
      std::vector<Value*> w(v.size());
      for (int64_t i = 0; i < VW; ++i) {
        if (i & bit) continue;
        w[static_cast<size_t>(i)] = b.CreateShuffleVector(v[static_cast<size_t>(i)], v[static_cast<size_t>(i | bit)], lo);
        w[static_cast<size_t>(i | bit)] = b.CreateShuffleVector(v[static_cast<size_t>(i)], v[static_cast<size_t>(i | bit)], hi);
      }
      v = w;
    }
    Value* rowOk = lanesBelow(r0, rows);
    for (int64_t j = 0; j < VW; ++j) {
      Value* c = e.add(c0, e.c64(j));
      Value* at = b.CreateGEP(e.f32_, dst, e.add(e.mulc(c, rows), r0));
      b.CreateMaskedStore(v[static_cast<size_t>(j)], at, Align(4), b.CreateAnd(rowOk, rowMask(c, cols)));
    }
  });
}

// Emits `body(item, bufs)` as the function <kernel>.<suffix>(ctx, item) and
// calls kiln_rt_parallel_for(items, it, ctx, cost) at the current point; ctx
// carries the pointers `bufs`, which the body gets back as its own values.
void parallelItems(Emitter& e, std::string_view suffix, int64_t items, int64_t cost, const std::vector<Value*>& bufs,
                   const std::function<void(Value*, const std::vector<Value*>&)>& body) {
  IRBuilder<>& b = e.b_;
  Function* kernel = b.GetInsertBlock()->getParent();
  StructType* ctxTy = StructType::get(e.ctx_, std::vector<Type*>(bufs.size(), e.ptr_));
  Value* ctx = e.alloca(ctxTy);
  for (unsigned i = 0; i < bufs.size(); ++i) b.CreateStore(bufs[i], b.CreateStructGEP(ctxTy, ctx, i));
  Function* f = Function::Create(FunctionType::get(b.getVoidTy(), {e.ptr_, e.i64_}, false), Function::InternalLinkage,
                                 fmt::format("{}.{}", kernel->getName().str(), suffix), e.m_.get());
  e.setAttrs(f);
  {
    IRBuilderBase::InsertPointGuard guard(b);
    b.SetInsertPoint(BasicBlock::Create(e.ctx_, "entry", f));
    std::vector<Value*> own;
    for (unsigned i = 0; i < bufs.size(); ++i)
      own.push_back(b.CreateLoad(e.ptr_, b.CreateStructGEP(ctxTy, f->getArg(0), i)));
    body(f->getArg(1), own);
    b.CreateRetVoid();
  }
  FunctionCallee pfor = e.m_->getOrInsertFunction(
      "kiln_rt_parallel_for", FunctionType::get(b.getVoidTy(), {e.i64_, e.ptr_, e.ptr_, e.i64_}, false));
  b.CreateCall(pfor, {e.c64(items), f, ctx, e.c64(cost)});
}

}  // namespace

void Emitter::emitConv(const ir::Node& n, Value* out, const std::vector<Value*>& in, Value* epilogue,
                       Value* epilogueCtx) {
  lower::ConvLayout l = lower::convLayout(g_, n);
  ir::ConvGeom g = ir::convGeom(n.attrs);
  if (l.bytes == 0) {  // an empty sum or nothing to compute
    zeroFill(out, n.type);
    if (epilogue) {
      const ir::Shape& s = n.type.shape;
      b_.CreateCall(epilogueType(), epilogue, {epilogueCtx, c64(0), c64(s[0] * s[1]), c64(0), c64(s[2] * s[3])});
    }
    return;
  }
  if (!scratch_) throw ir::CompileError(fmt::format("codegen: conv %{} has no scratch (internal error)", n.name));
  const int64_t imgX = l.c * l.h * l.w, grpX = l.cg * l.h * l.w, imgY = l.o * l.ohw, grpY = l.og * l.ohw;
  const int64_t grpW = l.og * l.ckk, flops = 2 * l.n * l.o * l.ckk * l.ohw;
  auto xAt = [&](Value* X, Value* b, Value* gr) { return gep(f32_, X, add(mulc(b, imgX), mulc(gr, grpX))); };
  auto yAt = [&](Value* Y, Value* b, Value* gr) { return gep(f32_, Y, add(mulc(b, imgY), mulc(gr, grpY))); };
  auto bytesAt = [&](Value* base, Value* at) { return b_.CreateInBoundsGEP(b_.getInt8Ty(), base, at); };
  // item i's units [i*units/items, (i+1)*units/items) (never empty: items <= units), and its scratch slot
  auto forUnits = [&](Value* item, Value* scratch, const std::function<void(Value*, Value*, Value*)>& unit) {
    Value* lo = b_.CreateUDiv(mulc(item, l.units), c64(l.items));
    Value* hi = b_.CreateUDiv(mulc(add(item, c64(1)), l.units), c64(l.items));
    Value* slot = bytesAt(scratch, mulc(item, l.slotBytes));
    Value* col = l.colAt < 0 ? nullptr : bytesAt(slot, c64(l.colAt));
    Value* pack = bytesAt(slot, c64(l.packAt));
    loopV(b_.CreateSub(hi, lo), [&](Value* u) { unit(add(lo, u), col, pack); });
  };
  if (n.op == OpKind::Conv2d) {
    // the weights transposed once, for the GEMMs' narrow tail panels
    Value* wT = l.wTAt >= 0 && rowVectorTail(l.ohw) ? bytesAt(scratch_, c64(l.wTAt)) : nullptr;
    if (wT)
      loop(l.groups, [&](Value* gr) {
        emitTransposeBlocks(*this, gep(f32_, in[1], mulc(gr, grpW)), gep(f32_, wT, mulc(gr, grpW)), l.og, l.ckk);
      });
    std::vector<Value*> bufs{in[0], in[1], out, scratch_};
    if (epilogue) bufs.push_back(epilogueCtx);
    parallelItems(*this, "images", l.items, flops, bufs, [&](Value* item, const std::vector<Value*>& p) {
      forUnits(item, p[3], [&](Value* b, Value* col, Value* pack) {
        loop(l.groups, [&](Value* gr) {
          Value* img = xAt(p[0], b, gr);
          if (!l.direct) emitIm2Col(l, g, img, col, false);
          GemmArgs ga;
          ga.M = l.og, ga.N = l.ohw, ga.K = l.ckk, ga.lda = l.ckk, ga.ldb = l.direct ? l.ohw : l.colLd, ga.ldc = l.ohw;
          ga.A = gep(f32_, p[1], mulc(gr, grpW)), ga.B = l.direct ? img : col, ga.C = yAt(p[2], b, gr);
          ga.bInPlace = !l.direct;  // im2col's fresh rows, 64-byte aligned: packing them would copy them again
          if (wT) ga.aT = gep(f32_, bytesAt(p[3], c64(l.wTAt)), mulc(gr, grpW)), ga.ldaT = l.og;
          ga.scratch = pack;
          emitGemm(ga);
        });
        // the image's o rows of [n*o, ohw], while they are in this core's cache
        if (epilogue) {
          b_.CreateCall(epilogueType(), epilogue, {p[4], mulc(b, l.o), c64(l.o), c64(0), c64(l.ohw)});
        }
      });
    });
    return;
  }
  assert(!epilogue && "only conv2d takes an epilogue");
  if (n.op == OpKind::Conv2dBwdInput) {
    const bool gatherBack = !l.direct && g.stride[1] == 1;
    parallelItems(*this, "images", l.items, flops, {in[0], in[1], out, scratch_}, [&](Value* item, const std::vector<Value*>& p) {
      forUnits(item, p[3], [&](Value* b, Value* col, Value* pack) {
        if (!l.direct && !gatherBack) b_.CreateMemSet(xAt(p[2], b, c64(0)), b_.getInt8(0), imgX * 4, Align(4));
        loop(l.groups, [&](Value* gr) {
          Value* img = xAt(p[2], b, gr);
          GemmArgs ga;
          ga.M = l.ckk, ga.N = l.ohw, ga.K = l.og, ga.ta = true, ga.lda = l.ckk, ga.ldb = l.ohw, ga.ldc = l.ohw;
          ga.A = gep(f32_, p[1], mulc(gr, grpW)), ga.B = yAt(p[0], b, gr), ga.C = l.direct ? img : col;
          ga.scratch = pack;
          emitGemm(ga);
          // direct: dx = 0 + dcol exactly, as a chain from +0 never ends at -0
          if (gatherBack) emitCol2ImGather(*this, l, g, img, col);
          else if (!l.direct) emitIm2Col(l, g, img, col, true);
        });
      });
    });
    return;
  }
  // The filter gradient, by unit (group, chunk): acc rows [r0, r1) of the
  // group summed over the images in order, transposed into dw at the end.
  // The GEMM reads dy transposed (tb): its packing transposes the group's
  // [og, ohw] block in registers, so dy needs no transposed copy (one pass
  // over dy fewer than a transpose kernel before the GEMMs, which was
  // 2.5% of the cnn step's CPU time).
  Value* acc = bytesAt(scratch_, c64(l.accAt));
  parallelItems(*this, "rows", l.items, flops, {in[0], in[1], acc, out, scratch_}, [&](Value* item, const std::vector<Value*>& p) {
    forUnits(item, p[4], [&](Value* unit, Value* col, Value* pack) {
      Value* gr = b_.CreateUDiv(unit, c64(l.chunks));
      Value* ch = b_.CreateURem(unit, c64(l.chunks));
      Value* r0 = mulc(ch, l.rowsPer);
      Value* accRows = gep(f32_, p[2], mulc(add(mulc(gr, l.ckk), r0), l.og));
      // the last chunk holds the rest of the rows; GemmArgs take M as a constant, so one body per size
      auto chunk = [&](int64_t rows) {
        b_.CreateMemSet(accRows, b_.getInt8(0), rows * l.og * 4, Align(4));
        loop(l.n, [&](Value* b) {
          Value* img = xAt(p[0], b, gr);
          if (!l.direct) emitIm2Col(l, g, img, col, false, r0, c64(rows));
          GemmArgs ga;
          ga.M = rows, ga.N = l.og, ga.K = l.ohw, ga.accumulate = true;
          ga.tb = true, ga.lda = l.direct ? l.ohw : l.colLd, ga.ldb = l.ohw, ga.ldc = l.og;
          ga.A = l.direct ? gep(f32_, img, mulc(r0, l.ohw)) : col;
          ga.B = gep(f32_, p[1], add(mulc(b, l.o * l.ohw), mulc(gr, l.og * l.ohw))), ga.C = accRows;
          ga.scratch = pack;
          emitGemm(ga);
        });
        Value* dw = gep(f32_, p[3], add(mulc(gr, grpW), r0));
        nest({l.og, rows}, [&](const std::vector<Value*>& q) {
          storeF(loadF(accRows, add(mulc(q[1], l.og), q[0])), dw, add(mulc(q[0], l.ckk), q[1]));
        });
      };
      const int64_t last = l.ckk - (l.chunks - 1) * l.rowsPer;
      if (last == l.rowsPer) {
        chunk(l.rowsPer);
        return;
      }
      BasicBlock* isLast = BasicBlock::Create(ctx_, "chunk.last", b_.GetInsertBlock()->getParent());
      BasicBlock* notLast = BasicBlock::Create(ctx_, "chunk", b_.GetInsertBlock()->getParent());
      BasicBlock* done = BasicBlock::Create(ctx_, "chunk.done", b_.GetInsertBlock()->getParent());
      b_.CreateCondBr(b_.CreateICmpEQ(ch, c64(l.chunks - 1)), isLast, notLast);
      b_.SetInsertPoint(isLast);
      chunk(last);
      b_.CreateBr(done);
      b_.SetInsertPoint(notLast);
      chunk(l.rowsPer);
      b_.CreateBr(done);
      b_.SetInsertPoint(done);
    });
  });
}

// Pooling whose windows all lie inside the input (no padding), vectorized
// along ow: each window row is loaded as a few contiguous vectors and split
// into one vector per tap by shuffles (a stride-2 window: even and odd
// lanes), the taps combine in (kh, kw) order as in the interpreter (max:
// the first tap, then strictly greater ones; avg: 0 + x00 + x01 + ...). The
// gradients also need windows that do not overlap, so each input receives
// at most one contribution: dx = 0 + dy (max, at the window's first
// maximum) or 0 + dy/area (avg), written back through the inverse shuffles.
// Covers NC planes (images x channels) from the pointers given. Returns
// false when the shape needs the scalar kernel.
bool Emitter::emitPoolVector(const ir::Node& n, Value* out, const std::vector<Value*>& in, int64_t NC) {
  bool isMax = n.op == OpKind::MaxPool2d || n.op == OpKind::MaxPool2dGrad;
  bool isGrad = n.op == OpKind::MaxPool2dGrad || n.op == OpKind::AvgPool2dGrad;
  const ir::Shape& xs = n.op == OpKind::AvgPool2dGrad ? n.type.shape : g_.type(n.operands[0]).shape;
  const ir::Shape& ys = n.op == OpKind::MaxPool2dGrad ? g_.type(n.operands[1]).shape
                        : n.op == OpKind::AvgPool2dGrad ? g_.type(n.operands[0]).shape : n.type.shape;
  ir::ConvGeom g = ir::convGeom(n.attrs);
  const int64_t H = xs[2], W = xs[3], OH = ys[2], OW = ys[3];
  const int64_t k0 = g.kernel[0], k1 = g.kernel[1], s0 = g.stride[0], s1 = g.stride[1];
  if (g.pad[0] != 0 || g.pad[1] != 0 || NC * OH * OW == 0 || (OH - 1) * s0 + k0 > H || (OW - 1) * s1 + k1 > W) return false;
  if (isGrad && (s0 < k0 || s1 < k1)) return false;
  if (k0 * k1 > 64 || s1 > 8) return false;  // keep the unrolled window small
  int64_t VW = 4;  // the narrowest vector that holds a row of outputs, up to the widest the target has
  while (VW < OW && VW < vecWidth_) VW *= 2;
  const int64_t span = (VW - 1) * s1 + k1, L = (span + VW - 1) / VW;  // a window row's elements, vectors
  auto* vt = FixedVectorType::get(f32_, static_cast<unsigned>(VW));
  auto* it = FixedVectorType::get(i32_, static_cast<unsigned>(VW));
  const unsigned uVW = static_cast<unsigned>(VW);
  Value* zero = Constant::getNullValue(vt);
  auto constI = [&](const std::function<int64_t(int64_t)>& f) {
    std::vector<Constant*> c;
    for (int64_t e = 0; e < VW; ++e) c.push_back(b_.getInt32(static_cast<uint32_t>(f(e))));
    return ConstantVector::get(c);
  };
  auto splat32 = [&](Value* v) { return b_.CreateVectorSplat(uVW, b_.CreateTrunc(v, i32_)); };
  // shuffle mask entries: -1 keeps lane e of the first operand, else lane m of the second
  auto blend = [&](Value* a, Value* bv, const std::vector<int>& from) {
    std::vector<int> m(from.size());
    for (size_t e = 0; e < from.size(); ++e) m[e] = from[e] < 0 ? static_cast<int>(e) : static_cast<int>(VW) + from[e];
    return b_.CreateShuffleVector(a, bv, m);
  };
  Value* X = n.op == OpKind::AvgPool2dGrad ? nullptr : in[0];
  Value* DY = n.op == OpKind::MaxPool2dGrad ? in[1] : n.op == OpKind::AvgPool2dGrad ? in[0] : nullptr;
  Value* area = b_.CreateVectorSplat(uVW, cf(static_cast<float>(k0 * k1)));
  // every input in some window, once: the stores cover dx and it needs no zeroing
  if (isGrad && !(s0 == k0 && s1 == k1 && OH * s0 == H && OW * s1 == W))
    b_.CreateMemSet(out, b_.getInt8(0), NC * H * W * 4, Align(4));
  const int64_t chunks = (OW + VW - 1) / VW;
  nest({NC, OH, chunks}, [&](const std::vector<Value*>& q) {
    Value* ow0 = mulc(q[2], VW);
    Value* yAt = add(mulc(add(mulc(q[0], OH), q[1]), OW), ow0);
    Value* owOk = b_.CreateICmpULT(b_.CreateAdd(splat32(ow0), constI([](int64_t e) { return e; })), splat32(c64(OW)));
    Value* iw0 = mulc(ow0, s1);
    auto rowAt = [&](int64_t kh) { return add(mulc(add(mulc(q[0], H), add(mulc(q[1], s0), c64(kh))), W), iw0); };
    // element e of vector j of a window row is at iw0 + j*VW + e; lanes past the row are masked off
    auto rowMask = [&](int64_t j) {
      return b_.CreateICmpULT(b_.CreateAdd(splat32(iw0), constI([&](int64_t e) { return j * VW + e; })), splat32(c64(W)));
    };
    // the taps of window row kh: tap kw's lane l is row element l*s1 + kw
    auto taps = [&](int64_t kh) {
      Value* row = gep(f32_, X, rowAt(kh));
      std::vector<Value*> v;
      for (int64_t j = 0; j < L; ++j) v.push_back(b_.CreateMaskedLoad(vt, gep(f32_, row, c64(j * VW)), Align(4), rowMask(j), zero));
      std::vector<Value*> t;
      for (int64_t kw = 0; kw < k1; ++kw) {
        Value* r = zero;
        for (int64_t j = 0; j < L; ++j) {
          std::vector<int> from(static_cast<size_t>(VW), -1);
          bool any = false;
          for (int64_t l = 0; l < VW; ++l)
            if ((l * s1 + kw) / VW == j) from[static_cast<size_t>(l)] = static_cast<int>((l * s1 + kw) % VW), any = true;
          if (any) r = blend(r, v[static_cast<size_t>(j)], from);
        }
        t.push_back(r);
      }
      return t;
    };
    // writes tap values back to window row kh (gaps between windows get 0)
    auto storeRow = [&](int64_t kh, const std::vector<Value*>& tv) {
      Value* row = gep(f32_, out, rowAt(kh));
      for (int64_t j = 0; j < L; ++j) {
        Value* r = zero;
        for (int64_t kw = 0; kw < k1; ++kw) {
          std::vector<int> from(static_cast<size_t>(VW), -1);
          bool any = false;
          for (int64_t e = 0; e < VW; ++e) {
            int64_t pos = j * VW + e;
            if (pos % s1 == kw && pos / s1 < VW) from[static_cast<size_t>(e)] = static_cast<int>(pos / s1), any = true;
          }
          if (any) r = blend(r, tv[static_cast<size_t>(kw)], from);
        }
        // element e belongs to output lane (j*VW + e) / s1, which must exist
        Value* lane = constI([&](int64_t e) { return std::min<int64_t>((j * VW + e) / s1, VW); });
        Value* ok = b_.CreateAnd(rowMask(j), b_.CreateICmpULT(b_.CreateAdd(splat32(ow0), lane), splat32(c64(OW))));
        ok = b_.CreateAnd(ok, b_.CreateICmpULT(lane, constI([&](int64_t) { return VW; })));
        b_.CreateMaskedStore(r, gep(f32_, row, c64(j * VW)), Align(4), ok);
      }
    };
    Value* best = nullptr;
    Value* bestAt = Constant::getNullValue(it);
    Value* acc = zero;
    if (n.op != OpKind::AvgPool2dGrad)
      for (int64_t kh = 0; kh < k0; ++kh) {
        std::vector<Value*> t = taps(kh);
        for (int64_t kw = 0; kw < k1; ++kw) {
          Value* x = t[static_cast<size_t>(kw)];
          if (!isMax) {
            acc = b_.CreateFAdd(acc, x);
          } else if (!best) {
            best = x;
          } else {
            Value* take = b_.CreateFCmpOGT(x, best);
            best = b_.CreateSelect(take, x, best);
            bestAt = b_.CreateSelect(take, constI([&](int64_t) { return kh * k1 + kw; }), bestAt);
          }
        }
      }
    Value* yPtr = gep(f32_, isGrad ? DY : out, yAt);
    if (!isGrad) {
      b_.CreateMaskedStore(isMax ? best : b_.CreateFDiv(acc, area), yPtr, Align(4), owOk);
      return;
    }
    Value* dy = b_.CreateMaskedLoad(vt, yPtr, Align(4), owOk, zero);
    Value* gv = b_.CreateFAdd(zero, isMax ? dy : b_.CreateFDiv(dy, area));
    for (int64_t kh = 0; kh < k0; ++kh) {
      std::vector<Value*> tv;
      for (int64_t kw = 0; kw < k1; ++kw)
        tv.push_back(isMax ? b_.CreateSelect(b_.CreateICmpEQ(bestAt, constI([&](int64_t) { return kh * k1 + kw; })), gv, zero) : gv);
      storeRow(kh, tv);
    }
  });
  return true;
}

// The planes (images x channels) are independent: they are dealt to
// kiln_rt_parallel_for as up to 16 equal runs (a divisor of their count),
// each item running the vector or the scalar kernel over its run.
void Emitter::emitPool(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
  const bool fwd = n.op == OpKind::MaxPool2d || n.op == OpKind::AvgPool2d;
  const ir::Shape& xs = n.op == OpKind::AvgPool2dGrad ? n.type.shape : g_.type(n.operands[0]).shape;
  const ir::Shape& ys = n.op == OpKind::MaxPool2dGrad ? g_.type(n.operands[1]).shape
                        : n.op == OpKind::AvgPool2dGrad ? g_.type(n.operands[0]).shape : n.type.shape;
  const int64_t NC = xs[0] * xs[1], xPlane = xs[2] * xs[3], yPlane = ys[2] * ys[3];
  int64_t items = 1;
  for (int64_t d = std::min<int64_t>(NC, 16); d > 1; --d)
    if (NC % d == 0) {
      items = d;
      break;
    }
  const int64_t per = NC / items;
  ir::ConvGeom g = ir::convGeom(n.attrs);
  const int64_t cost = NC * std::max(xPlane, yPlane * g.kernel[0] * g.kernel[1]) * 4;
  std::vector<Value*> bufs = in;
  bufs.push_back(out);
  parallelItems(*this, "planes", items, cost, bufs, [&](Value* item, const std::vector<Value*>& p) {
    // operand planes: x and dx are [NC][H][W], y and dy [NC][OH][OW]
    std::vector<Value*> ins;
    for (size_t i = 0; i < in.size(); ++i) {
      bool isY = n.op == OpKind::AvgPool2dGrad || (n.op == OpKind::MaxPool2dGrad && i == 1);
      ins.push_back(gep(f32_, p[i], mulc(item, per * (isY ? yPlane : xPlane))));
    }
    Value* o = gep(f32_, p.back(), mulc(item, per * (fwd ? yPlane : xPlane)));
    if (!emitPoolVector(n, o, ins, per)) emitPoolScalar(n, o, ins, per);
  });
}

// The general pooling kernel, over NC planes from the pointers given.
void Emitter::emitPoolScalar(const ir::Node& n, Value* out, const std::vector<Value*>& in, int64_t NC) {
  bool isMax = n.op == OpKind::MaxPool2d || n.op == OpKind::MaxPool2dGrad;
  bool isGrad = n.op == OpKind::MaxPool2dGrad || n.op == OpKind::AvgPool2dGrad;
  const ir::Shape& xs = n.op == OpKind::AvgPool2dGrad ? n.type.shape : g_.type(n.operands[0]).shape;
  const ir::Shape& ys = n.op == OpKind::MaxPool2dGrad ? g_.type(n.operands[1]).shape
                        : n.op == OpKind::AvgPool2dGrad ? g_.type(n.operands[0]).shape : n.type.shape;
  Value* X = n.op == OpKind::AvgPool2dGrad ? nullptr : in[0];
  Value* DY = n.op == OpKind::MaxPool2dGrad ? in[1] : n.op == OpKind::AvgPool2dGrad ? in[0] : nullptr;
  ir::ConvGeom g = ir::convGeom(n.attrs);
  int64_t H = xs[2], W = xs[3], OH = ys[2], OW = ys[3];
  Value* area = cf(static_cast<float>(g.kernel[0] * g.kernel[1]));
  if (isGrad) b_.CreateMemSet(out, b_.getInt8(0), NC * H * W * 4, Align(4));
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

void Emitter::transposeBlocks(Value* src, Value* dst, int64_t rows, int64_t cols) {
  emitTransposeBlocks(*this, src, dst, rows, cols);
}

}  // namespace kiln::codegen::detail
