// Matrix multiplication: a register-blocked, packed GEMM.
//
// C[M,N] = op(A)[M,K] · op(B)[K,N] per batch, op = transpose when `ta`/`tb`.
// The k dimension is cut into blocks of lower::kGemmKC. Each block of op(B)
// is packed as panels of NR columns (zero-padded at the right edge), so the
// micro-kernel reads B with unit stride whatever its layout: the transposed
// variants cost one packing pass, not an explicit transpose op. Transposed
// B is packed VW x VW at a time, loaded along k and transposed in registers.
// The micro-kernel keeps an MR x NR block of C in vector registers: MR = 8
// rows, NR = two vectors of the widest type the target has (16 floats with
// AVX-512, 8 with AVX, 4 otherwise), and broadcasts A's elements, read in
// place or, where that is slow (transposed A, rows 4 KB apart), from a
// packed copy of the k block.
//
// Work items for the runtime's threads: when A's k block is small (one
// 128-row block, or up to 512 KB with 8 or more panels) an item is one panel
// with all its rows, and it packs that panel itself into a buffer on its
// stack (so packing runs on every thread and the panel stays in L1) - a
// kGemmKC-deep slice at a time, running every k block itself when A is not
// packed, so the product is one parallel_for rather than one per block; with
// at most 48 rows, or when the caller asks (GemmArgs::bInPlace: a conv's
// fresh, 64-byte-aligned column matrix), a full panel of untransposed B is
// not packed at all but read in place; when nothing at all is packed (A in place too, N a whole
// number of panels), k is not blocked either, and each tile passes it in
// kGemmKC-deep slices itself (one parallel_for, not one per block). Otherwise
// a parallel pre-pass packs the panels into the
// kernel's scratch and an item is one 128-row block of one panel. A packed A
// is always packed by the pre-pass (one item per 128-row block).
//
// An epilogue (GemmArgs::epilogue; a kernel whose fused tree holds the
// matmul, lower::epilogueProduct) is called by the tile for each 128-row
// block of its panel once the last k block is done, so a bias, an
// activation or a gradient's other terms are applied on the GEMM's threads
// while the tile is in L1; C is the kernel's own output buffer. A conv2d's
// epilogue (a conv's bias and activation) is called by emitConv instead,
// once per image after that image's GEMMs, on the image's rows of the
// output viewed as [n*o, oh*ow].
//
// Every element of C is one fused multiply-add chain over k ascending,
// starting from 0 — a block's partial sums are stored to C and reloaded
// exactly — which is what the interpreter computes (std::fma, k ascending),
// so the two agree to the last bit whatever the blocking.
//
// The GEMM is one function per module (`kiln.gemm`, not inlined) taking the
// shapes and strides at run time; every matmul or conv kernel calls it. A
// copy specialised to each call's static shapes measured no faster inside
// the micro-kernel (the k loop is the same code) and multiplied LLVM's work
// by the number of matmuls, which made compile time grow tenfold. Row tails
// (M mod 8) are passed by micro-kernels of 4, 2 and 1 rows (7 = 4 + 2 + 1),
// column tails use masked loads and stores of C, and a tail panel of at most one vector
// of columns (N = 10 classes, the 65th of 65) multiplies one vector per row -
// or, with at most 4 columns where op(A)'s rows lie side by side at each k
// (transposed A, a conv's weights transposed once per call), VW rows per
// vector, in modules that have such a product (rowVectorTails).
#include "Emitter.h"
#include "passes/Passes.h"

#include <fmt/format.h>

#include <iterator>

namespace kiln::codegen::detail {

namespace {
constexpr int64_t kMR = lower::kGemmMR;  // micro-kernel rows
constexpr int64_t kMC = 128;  // rows of A per L2 block (a multiple of kMR)
constexpr size_t kGemmCtxFields = 25;  // gemmCtxType()
constexpr int64_t kAPad = 16;          // packed rows of A: KCs + kAPad floats apart
constexpr int64_t kInPlaceRows = passes::kGemmInPlaceRows;  // up to this many rows, full panels of untransposed B
                                                           // are not packed
static_assert(kInPlaceRows % kMR == 0);
static_assert((kMR & (kMR - 1)) == 0, "row tails are split by the bits of M mod kMR");
}

void Emitter::emitMatMul(const ir::Node& n, Value* out, const std::vector<Value*>& in, Value* epilogue,
                         Value* epilogueCtx) {
  const bool ta = n.attrs.getInt("ta", 0), tb = n.attrs.getInt("tb", 0);
  const ir::TensorType& at = g_.type(n.operands[0]);
  const size_t r = n.type.shape.size();
  const int64_t M = n.type.shape[r - 2], N = n.type.shape[r - 1], K = ta ? at.shape[r - 2] : at.shape[r - 1];
  const int64_t batch = n.type.numElements() / (M * N);
  assert((!epilogue || batch == 1) && "an epilogue is for one 2-D product");
  if (K == 0) {  // an empty sum
    zeroFill(out, n.type);
    if (epilogue)
      b_.CreateCall(epilogueType(), epilogue,
                    {epilogueCtx, c64(0), c64(M), c64(0), c64(N)});
    return;
  }
  loop(batch, [&](Value* bt) {
    GemmArgs g;
    g.epilogue = epilogue, g.epilogueCtx = epilogueCtx;
    g.M = M, g.N = N, g.K = K, g.ta = ta, g.tb = tb;
    g.A = gep(f32_, in[0], mulc(bt, M * K));
    g.B = gep(f32_, in[1], mulc(bt, K * N));
    g.C = gep(f32_, out, mulc(bt, M * N));
    g.lda = ta ? M : K, g.ldb = tb ? K : N, g.ldc = N;
    if (lower::gemmPackABytes(M, K, N, ta) > 0)  // the plan left room to pack A after the B panels
      g.packA = b_.CreateInBoundsGEP(b_.getInt8Ty(), scratch_, c64(lower::gemmScratchBytes(K, N)));
    emitGemm(g);
  });
}

void Emitter::emitEpilogueKernel(const lower::Kernel& k, ValueId mm, Function* f) {
  const ir::Node& root = g_.node(k.value);
  const ir::Node& mn = g_.node(mm);
  // the epilogue's rectangles are of C viewed as 2-D: a matmul's [M, N], a
  // conv's [n*o, oh*ow] (rows are (image, channel) pairs, an image at a time)
  const bool conv = mn.op == OpKind::Conv2d;
  const ir::Shape& ms = mn.type.shape;
  const int64_t N = conv ? ms[2] * ms[3] : ms[1];
  Value* out = f->getArg(0);
  const unsigned nptr = static_cast<unsigned>(k.inputs.size() + 1);  // out, inputs
  // a leaf read in place of the output (an in-place update) would be C by
  // the time the epilogue reads it; the plan never does that here
  assert(k.inPlaceInput < 0 && "a GEMM epilogue kernel is never an in-place update");
  std::string name = f->getName().str();
  Function* epi;
  {
    IRBuilderBase::InsertPointGuard guard(b_);
    // body(out, inputs..., r0, rows, c0, cols): out[i][j] = the tree at
    // (i, j) for the rectangle, reading the product's element from out;
    // its buffer arguments are noalias (the plan gives the output bytes no
    // input shares), and it is inlined into the wrapper the GEMM calls
    std::vector<Type*> params(nptr, ptr_);
    for (int i = 0; i < 4; ++i) params.push_back(i64_);
    Function* body = Function::Create(FunctionType::get(b_.getVoidTy(), params, false), Function::InternalLinkage,
                                      name + ".epilogue.body", m_.get());
    setAttrs(body);
    body->addFnAttr(Attribute::AlwaysInline);
    markBufferArgs(body, nptr);
    b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", body));
    auto saved = leaf_;
    leaf_.clear();
    for (size_t i = 0; i < k.inputs.size(); ++i) leaf_[k.inputs[i]] = body->getArg(static_cast<unsigned>(i + 1));
    epilogue_ = {mm, body->getArg(0)};
    Value *r0 = body->getArg(nptr), *rows = body->getArg(nptr + 1), *c0 = body->getArg(nptr + 2),
          *cols = body->getArg(nptr + 3);
    Type* ot = elemType(root.type);
    loopV(rows, [&](Value* ri) {
      Value* i = add(r0, ri);
      Value* rowAt = mulc(i, N);
      loopV(cols, [&](Value* cj) {
        Value* j = add(c0, cj);
        Value* flat = add(rowAt, j);
        std::vector<Value*> multi{i, j};
        if (conv) multi = {b_.CreateUDiv(i, c64(ms[1])), b_.CreateURem(i, c64(ms[1])),
                           b_.CreateUDiv(j, c64(ms[3])), b_.CreateURem(j, c64(ms[3]))};
        b_.CreateStore(genMap(root, Index{multi, flat}), gep(ot, body->getArg(0), flat));
      });
      // a tile row is one panel wide (32 floats with AVX-512): vectorize it
      // one full vector at a time, not 4 interleaved (which would leave 32
      // to the 8-wide remainder loop), and with masked iterations instead
      // of a scalar remainder loop (whose register use made the vector loop
      // reload its constants on every row)
      hintClosedLoop({loopHint("llvm.loop.vectorize.enable", b_.getTrue()),
                      loopHint("llvm.loop.vectorize.predicate.enable", b_.getTrue()),
                      loopHint("llvm.loop.vectorize.width", b_.getInt32(static_cast<uint32_t>(vecWidth_))),
                      loopHint("llvm.loop.interleave.count", b_.getInt32(1))});
    });
    b_.CreateRetVoid();
    epilogue_ = {};
    leaf_ = std::move(saved);

    // epilogue(ctx, r0, rows, c0, cols), ctx = the nptr buffer pointers
    epi = Function::Create(epilogueType(),
                           Function::InternalLinkage, name + ".epilogue", m_.get());
    setAttrs(epi);
    b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", epi));
    std::vector<Value*> args;
    for (unsigned i = 0; i < nptr; ++i)
      args.push_back(b_.CreateLoad(ptr_, b_.CreateConstInBoundsGEP1_64(ptr_, epi->getArg(0), i)));
    for (unsigned i = 1; i <= 4; ++i) args.push_back(epi->getArg(i));
    b_.CreateCall(body, args);
    b_.CreateRetVoid();
  }
  Value* ectx = alloca(ArrayType::get(ptr_, nptr));
  for (unsigned i = 0; i < nptr; ++i)
    b_.CreateStore(f->getArg(i), b_.CreateConstInBoundsGEP1_64(ptr_, ectx, i));
  if (conv) emitConv(mn, out, {leaf_.at(mn.operands[0]), leaf_.at(mn.operands[1])}, epi, ectx);
  else emitMatMul(mn, out, {leaf_.at(mn.operands[0]), leaf_.at(mn.operands[1])}, epi, ectx);
}

void Emitter::emitGemm(const GemmArgs& ga) {
  assert(ga.K > 0 && "an empty sum has no k blocks");
  Value* scratch = ga.scratch ? ga.scratch : scratch_;
  if (!scratch) throw ir::CompileError("codegen: a GEMM without scratch (internal error)");
  Function* f = gemmFunction();
  // op(A)(i, k) = A[i*sAi + k*sAk]
  int64_t sAi = ga.ta ? 1 : ga.lda, sAk = ga.ta ? ga.lda : 1;
  Value* packA = ga.packA ? ga.packA : ConstantPointerNull::get(ptr_);
  Value* none = ConstantPointerNull::get(ptr_);
  b_.CreateCall(f, {c64(ga.M), c64(ga.N), c64(ga.K), ga.A, c64(sAi), c64(sAk), ga.B, c64(ga.ldb), ga.C, c64(ga.ldc),
                    b_.getInt1(ga.tb), b_.getInt1(ga.accumulate), scratch, packA,
                    ga.epilogue ? ga.epilogue : none, ga.epilogueCtx ? ga.epilogueCtx : none,
                    b_.getInt1(ga.bInPlace), ga.aT ? ga.aT : none, c64(ga.ldaT)});
}

bool Emitter::rowVectorTails() {
  for (ValueId v = 0; v < g_.size(); ++v) {
    const ir::Node& n = g_.node(v);
    if (n.op == OpKind::MatMul && n.attrs.getInt("ta", 0) && rowVectorTail(n.type.shape.back())) return true;
    if (n.op == OpKind::Conv2d || n.op == OpKind::Conv2dBwdInput) {
      lower::ConvLayout l = lower::convLayout(g_, n);
      if ((n.op == OpKind::Conv2dBwdInput || l.wTAt >= 0) && rowVectorTail(l.ohw)) return true;
    }
  }
  return false;
}

Function* Emitter::gemmFunction() {
  if (gemmFn_) return gemmFn_;
  IRBuilderBase::InsertPointGuard guard(b_);
  // (M, N, K, A, sAi, sAk, B, ldb, C, ldc, tb, accumulate, scratch, Ap, epilogue, epilogueCtx, bInPlace,
  //  aT, ldaT)
  std::vector<Type*> params{i64_, i64_, i64_, ptr_, i64_, i64_, ptr_, i64_, ptr_, i64_, b_.getInt1Ty(),
                            b_.getInt1Ty(), ptr_, ptr_, ptr_, ptr_, b_.getInt1Ty(), ptr_, i64_};
  Function* f = Function::Create(FunctionType::get(b_.getVoidTy(), params, false), Function::InternalLinkage,
                                 "kiln.gemm", m_.get());
  setAttrs(f);
  f->addFnAttr(Attribute::NoInline);
  for (unsigned a : {3u, 6u, 8u, 12u}) {
    f->getArg(a)->addAttr(Attribute::NoAlias);
    f->getArg(a)->addAttr(Attribute::NoCapture);
  }
  gemmFn_ = f;
  b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", f));
  Value *M = f->getArg(0), *N = f->getArg(1), *K = f->getArg(2), *A = f->getArg(3), *sAi = f->getArg(4),
        *sAk = f->getArg(5), *B = f->getArg(6), *ldb = f->getArg(7), *C = f->getArg(8), *ldc = f->getArg(9),
        *tb = f->getArg(10), *accumulate = f->getArg(11), *Bp = f->getArg(12), *Ap = f->getArg(13),
        *epilogue = f->getArg(14), *epilogueCtx = f->getArg(15), *bInPlace = f->getArg(16), *aT = f->getArg(17),
        *ldaT = f->getArg(18);

  const int64_t NR = 2 * vecWidth_;
  Value* fullPanels = udivc(N, NR);
  Value* tailN = b_.CreateURem(N, c64(NR));
  StructType* ctxTy = gemmCtxType();
  Value* gemmCtx = alloca(ctxTy);
  Value* panels = add(fullPanels, b_.CreateZExt(b_.CreateICmpNE(tailN, c64(0)), i64_));
  Value* rowBlocks = udivc(add(M, c64(kMC - 1)), kMC);
  Value* blockK = smin(K, c64(lower::kGemmKC));  // a k block's depth when k is blocked
  // Who packs: with few rows each work item is one panel with all its row
  // blocks, and packs that panel itself first (packing then runs on every
  // thread, and the panel is hot in L1 for the micro-kernels). Otherwise the
  // panels are packed by a parallel_for of their own before the tiles.
  Value* packInTile = b_.CreateOr(b_.CreateICmpEQ(rowBlocks, c64(1)),
                                  b_.CreateAnd(b_.CreateICmpULE(b_.CreateMul(M, blockK), c64(1 << 17)),
                                               b_.CreateICmpUGE(panels, c64(8))));
  Value* items = b_.CreateSelect(packInTile, panels, b_.CreateMul(rowBlocks, panels));
  // A is packed too (when the caller gave room for it, Ap) where reading it
  // in place is slow and it is reused by several panels: transposed A whose
  // k lines collide in L1 (a multiple of 1 KB apart) or are too many to stay
  // there (K > 128: a micro-panel's 8 rows share one line per k, so K lines
  // per micro-panel, next to the B panel), or rows a multiple of 4 KB apart
  // (the 8 rows of one k collide). A transposed A of few k lines is read in
  // place: mlp_b64's weight gradient Xᵀ·dY (K = 64 images, lda = 784) took
  // 5% off the step that way, since packing it cost more than it saved.
  Value* aKMajor = b_.CreateICmpNE(sAk, c64(1));
  Value* kMajorSlow = b_.CreateAnd(aKMajor, b_.CreateOr(b_.CreateICmpUGT(K, c64(128)),
                                                        b_.CreateICmpEQ(b_.CreateURem(sAk, c64(256)), c64(0))));
  Value* packA = b_.CreateAnd(b_.CreateAnd(b_.CreateICmpNE(Ap, ConstantPointerNull::get(ptr_)),
                                           b_.CreateICmpUGE(panels, c64(4))),
                              b_.CreateOr(kMajorSlow, b_.CreateICmpEQ(b_.CreateURem(sAi, c64(1024)), c64(0))));
  // The k dimension in blocks of kGemmKC (a packed panel's depth), except
  // when nothing is packed: with at most 48 rows, untransposed B in full
  // panels (read in place) and A read in place, a block would only add a
  // store and reload of C and another parallel_for per block, so K is one
  // block (the B panel streams from L2 past the few rows).
  Value* unpacked = b_.CreateAnd(b_.CreateAnd(b_.CreateICmpSLE(M, c64(kInPlaceRows)), b_.CreateNot(tb)),
                                 b_.CreateAnd(b_.CreateICmpEQ(tailN, c64(0)), b_.CreateNot(packA)));
  Value* KCs = b_.CreateSelect(unpacked, K, blockK);  // packed panel depth
  // When each item packs its own panel and A is not packed, an item runs
  // every k block itself (packing each block's slice of its panel before
  // its rows): one parallel_for for the whole product instead of one per
  // k block, with the same C stores and reloads between blocks, so the
  // same chains. (mlp_b64's forward, K = 784: 4 calls, each waiting for
  // its slowest item, became 1.)
  Value* ownsK = b_.CreateAnd(packInTile, b_.CreateNot(packA));
  Value* nBlocks = b_.CreateSelect(ownsK, c64(1), b_.CreateUDiv(b_.CreateAdd(K, b_.CreateSub(KCs, c64(1))), KCs));
  Value* preItems = add(b_.CreateSelect(packInTile, c64(0), panels), b_.CreateSelect(packA, rowBlocks, c64(0)));
  FunctionCallee pfor = m_->getOrInsertFunction(
      "kiln_rt_parallel_for", FunctionType::get(b_.getVoidTy(), {i64_, ptr_, ptr_, i64_}, false));
  Function* packFn = gemmPackItemFunction(ctxTy);
  Function* tileFn = gemmTileFunction(ctxTy);

  loopV(nBlocks, [&](Value* kb) {
    Value* k0 = b_.CreateMul(kb, KCs);
    Value* kc = b_.CreateSelect(ownsK, K, smin(b_.CreateSub(K, k0), KCs));
    // the first block starts from 0, unless accumulating into C
    Value* first = b_.CreateAnd(b_.CreateNot(accumulate), b_.CreateICmpEQ(kb, c64(0)));
    // the epilogue runs on the tiles of the last k block only
    Value* lastEpi = b_.CreateSelect(b_.CreateICmpEQ(kb, b_.CreateSub(nBlocks, c64(1))), epilogue,
                                     ConstantPointerNull::get(ptr_));
    Value* ctxv = gemmCtx;
    Value* fields[] = {M,  N,  A,  sAi, sAk, Bp, C, ldc, k0, kc, b_.CreateZExt(first, i64_), KCs, panels,
                       B,  ldb, b_.CreateZExt(tb, i64_), b_.CreateZExt(packInTile, i64_), Ap,
                       b_.CreateZExt(packA, i64_), b_.CreateZExt(aKMajor, i64_), lastEpi, epilogueCtx,
                       b_.CreateZExt(bInPlace, i64_), aT, ldaT};
    static_assert(std::size(fields) == kGemmCtxFields);
    for (unsigned i = 0; i < std::size(fields); ++i) b_.CreateStore(fields[i], b_.CreateStructGEP(ctxTy, ctxv, i));
    // the tiles (row block x panel) are independent: spread them over the
    // runtime's threads (rt/Parallel.h), which runs small GEMMs inline
    Value* cost = b_.CreateMul(b_.CreateMul(M, N), b_.CreateMul(kc, c64(2)));
    ifThen(b_.CreateICmpNE(preItems, c64(0)), [&] { b_.CreateCall(pfor, {preItems, packFn, ctxv, cost}); });
    b_.CreateCall(pfor, {items, tileFn, ctxv, cost});
  });
  b_.CreateRetVoid();
  return f;
}


Value* Emitter::laneMask(int64_t v, Value* cols) {
  std::vector<Constant*> lanes;
  for (int64_t l = 0; l < vecWidth_; ++l) lanes.push_back(b_.getInt64(static_cast<uint64_t>(l)));
  Value* limit = b_.CreateVectorSplat(static_cast<unsigned>(vecWidth_), b_.CreateSub(cols, c64(v * vecWidth_)));
  return b_.CreateICmpSLT(ConstantVector::get(lanes), limit);
}

StructType* Emitter::gemmCtxType() {
  // what the tiles and the packing need: M, N, A, sAi, sAk, Bp, C, ldc, k0,
  // kc, first, KCs, panels, B, ldb, tb, packInTile, Ap, packA, aKMajor,
  // epilogue (null but in the last k block), epilogueCtx, bInPlace, aT, ldaT
  return StructType::get(ctx_, {i64_, i64_, ptr_, i64_, i64_, ptr_, ptr_, i64_, i64_, i64_, i64_, i64_, i64_, ptr_,
                                i64_, i64_, i64_, ptr_, i64_, i64_, ptr_, ptr_, i64_, ptr_, i64_});
}

// kiln.gemm.pack.item(ctx, w): the packing before the tiles, as parallel_for
// items: panel w of the current k block into its place in the scratch,
// Bp[w] (unless the tiles pack their own panels), then row block w - panels
// of A into Ap (if A is packed).
//
// A's packed layouts: k-major A (transposed, sAk != 1) as 8-row micro-panels
// Ap[i/8][kk][i%8] with 8 floats per kk (lanes past M zero); row-major A as
// rows Ap[i][kk], KCs + kAPad floats apart.
Function* Emitter::gemmPackItemFunction(StructType* ctxTy) {
  if (Function* f = m_->getFunction("kiln.gemm.pack.item")) return f;
  Function* packTo = gemmPackFunction(ctxTy);
  IRBuilderBase::InsertPointGuard guard(b_);
  Function* f = Function::Create(FunctionType::get(b_.getVoidTy(), {ptr_, i64_}, false), Function::InternalLinkage,
                                 "kiln.gemm.pack.item", m_.get());
  setAttrs(f);
  b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", f));
  auto field = [&](unsigned i) {
    return b_.CreateLoad(ctxTy->getElementType(i), b_.CreateStructGEP(ctxTy, f->getArg(0), i));
  };
  Value* w = f->getArg(1);
  Value *M = field(0), *A = field(2), *sAi = field(3), *sAk = field(4), *k0 = field(8), *kc = field(9),
        *KCs = field(11), *panels = field(12), *Ap = field(17), *aKMajor = b_.CreateICmpNE(field(19), c64(0));
  Value* nB = b_.CreateSelect(b_.CreateICmpNE(field(16), c64(0)), c64(0), panels);
  BasicBlock* packB = BasicBlock::Create(ctx_, "pack.b", f);
  BasicBlock* packA = BasicBlock::Create(ctx_, "pack.a", f);
  BasicBlock* done = BasicBlock::Create(ctx_, "packed", f);
  b_.CreateCondBr(b_.CreateICmpULT(w, nB), packB, packA);
  b_.SetInsertPoint(packB);
  Value* dst = gep(f32_, field(5), mulc(b_.CreateMul(w, KCs), 2 * vecWidth_));  // Bp[w][0][0]
  b_.CreateCall(packTo, {f->getArg(0), w, dst, k0, kc});
  b_.CreateBr(done);

  b_.SetInsertPoint(packA);
  const int64_t VW = vecWidth_;
  Value* r0 = mulc(b_.CreateSub(w, nB), kMC);
  Value* rows = smin(b_.CreateSub(M, r0), c64(kMC));
  BasicBlock* kMajor = BasicBlock::Create(ctx_, "pack.a.k", f);
  BasicBlock* rowMajor = BasicBlock::Create(ctx_, "pack.a.row", f);
  b_.CreateCondBr(aKMajor, kMajor, rowMajor);
  b_.SetInsertPoint(kMajor);  // Ap[i/8][kk][0 .. 8) = A(i .. i+8, k0 + kk), zero past M
  {
    VectorType* v8 = FixedVectorType::get(f32_, 8);
    loopV(udivc(add(rows, c64(kMR - 1)), kMR), [&](Value* mb) {
      Value* i0 = add(r0, mulc(mb, kMR));
      Value* valid = smin(b_.CreateSub(M, i0), c64(kMR));
      std::vector<Constant*> lanes;
      for (int64_t l = 0; l < 8; ++l) lanes.push_back(b_.getInt64(static_cast<uint64_t>(l)));
      Value* mask = b_.CreateICmpSLT(ConstantVector::get(lanes), b_.CreateVectorSplat(8, valid));
      Value* src = gep(f32_, A, b_.CreateAdd(i0, b_.CreateMul(k0, sAk)));
      Value* out = gep(f32_, Ap, mulc(b_.CreateMul(udivc(i0, kMR), KCs), 8));
      loopV(kc, [&](Value* kk) {
        Value* x = b_.CreateMaskedLoad(v8, gep(f32_, src, b_.CreateMul(kk, sAk)), Align(4), mask,
                                       Constant::getNullValue(v8));
        b_.CreateAlignedStore(x, gep(f32_, out, mulc(kk, 8)), Align(32));
      });
    });
  }
  b_.CreateBr(done);
  b_.SetInsertPoint(rowMajor);  // Ap[i][kk] = A(i, k0 + kk), rows KCs + kAPad apart
  {
    VectorType* vt = FixedVectorType::get(f32_, static_cast<unsigned>(VW));
    Value* lp = add(KCs, c64(kAPad));
    Value* chunks = udivc(add(kc, c64(VW - 1)), VW);
    Value* tailCols = b_.CreateSub(kc, mulc(b_.CreateSub(chunks, c64(1)), VW));
    loopV(rows, [&](Value* ii) {
      Value* i = add(r0, ii);
      Value* src = gep(f32_, A, add(b_.CreateMul(i, sAi), k0));
      Value* out = gep(f32_, Ap, b_.CreateMul(i, lp));
      loopV(chunks, [&](Value* c) {
        Value* cols = b_.CreateSelect(b_.CreateICmpEQ(c, b_.CreateSub(chunks, c64(1))), tailCols, c64(VW));
        Value* m = laneMask(0, cols);
        Value* x = b_.CreateMaskedLoad(vt, gep(f32_, src, mulc(c, VW)), Align(4), m, Constant::getNullValue(vt));
        b_.CreateMaskedStore(x, gep(f32_, out, mulc(c, VW)), Align(4), m);
      });
    });
  }
  b_.CreateBr(done);
  b_.SetInsertPoint(done);
  b_.CreateRetVoid();
  return f;
}

// kiln.gemm.pack(ctx, p, dst, k0, kc): packs rows [k0, k0 + kc) of panel p,
// dst[kk][0 .. NR) = op(B)[k0 + kk][p*NR ..], zero-padded past N; dst is
// 64-byte aligned.
Function* Emitter::gemmPackFunction(StructType* ctxTy) {
  if (gemmPackFn_) return gemmPackFn_;
  IRBuilderBase::InsertPointGuard guard(b_);
  Function* f = Function::Create(FunctionType::get(b_.getVoidTy(), {ptr_, i64_, ptr_, i64_, i64_}, false),
                                 Function::InternalLinkage, "kiln.gemm.pack", m_.get());
  setAttrs(f);
  f->addFnAttr(Attribute::NoInline);
  f->getArg(2)->addAttr(Attribute::NoAlias);
  gemmPackFn_ = f;
  b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", f));
  auto field = [&](unsigned i) {
    return b_.CreateLoad(ctxTy->getElementType(i), b_.CreateStructGEP(ctxTy, f->getArg(0), i));
  };
  Value *N = field(1), *k0 = f->getArg(3), *kc = f->getArg(4), *B = field(13),
        *ldb = field(14), *tb = b_.CreateICmpNE(field(15), c64(0));
  Value* p = f->getArg(1);
  const int64_t VW = vecWidth_, NR = 2 * VW, NV = NR / VW;
  VectorType* vt = FixedVectorType::get(f32_, static_cast<unsigned>(VW));
  Value* zero = Constant::getNullValue(vt);
  Value* panel = f->getArg(2);
  Value* j0 = mulc(p, NR);
  Value* cols = smin(b_.CreateSub(N, j0), c64(NR));
  BasicBlock* packT = BasicBlock::Create(ctx_, "pack.t", f);
  BasicBlock* packN = BasicBlock::Create(ctx_, "pack.n", f);
  BasicBlock* done = BasicBlock::Create(ctx_, "packed", f);
  b_.CreateCondBr(tb, packT, packN);

  b_.SetInsertPoint(packN);  // B is [K][ldb]: rows of op(B) are contiguous
  loopV(kc, [&](Value* kk) {
    Value* src = gep(f32_, B, add(b_.CreateMul(add(k0, kk), ldb), j0));
    Value* dst = gep(f32_, panel, mulc(kk, NR));
    for (int64_t v = 0; v < NV; ++v) {
      Value* x = b_.CreateMaskedLoad(vt, gep(f32_, src, c64(v * VW)), Align(4), laneMask(v, cols), zero);
      b_.CreateAlignedStore(x, gep(f32_, dst, c64(v * VW)), Align(64));
    }
  });
  b_.CreateBr(done);

  // B is [N][ldb]: columns of op(B) are contiguous. VW x VW blocks (VW
  // columns, VW consecutive k) are loaded as VW vectors along k and
  // transposed in registers; columns past N read as zeros (their loads are
  // masked off, at a clamped address), and the k remainder (kc mod VW) is
  // copied one element at a time.
  b_.SetInsertPoint(packT);
  Value* lastCol = b_.CreateSub(N, c64(1));
  auto colAddr = [&](int64_t jj, Value* k) {  // &B[min(j0 + jj, N - 1)][k0 + k], and whether j0 + jj < N
    Value* j = add(j0, c64(jj));
    return std::pair{gep(f32_, B, add(b_.CreateMul(smin(j, lastCol), ldb), add(k0, k))), b_.CreateICmpSLT(j, N)};
  };
  Value* kGroups = udivc(kc, VW);
  for (int64_t v = 0; v < NV; ++v) {  // columns j0 + v*VW .. + VW
    // one k-group loop for a block of VW columns all inside N (plain loads),
    // one for the last block (masked)
    auto blockLoop = [&](bool masked) {
      std::vector<std::pair<Value*, Value*>> rowAt;  // &B[j][k0], j < N
      for (int64_t i = 0; i < VW; ++i) rowAt.push_back(colAddr(v * VW + i, c64(0)));
      loopV0(kGroups, [&](Value* g) {
        Value* kq = mulc(g, VW);
        std::vector<Value*> r;  // r[i][l] = op(B)[kq + l][j0 + v*VW + i]
        for (int64_t i = 0; i < VW; ++i) {
          auto [row, ok] = rowAt[static_cast<size_t>(i)];
          Value* src = gep(f32_, row, kq);
          r.push_back(masked ? static_cast<Value*>(b_.CreateMaskedLoad(vt, src, Align(4),
                                                   b_.CreateVectorSplat(static_cast<unsigned>(VW), ok), zero))
                             : b_.CreateAlignedLoad(vt, src, Align(4)));
        }
        // transpose: swap the off-diagonal d x d blocks of every 2d x 2d
        // block, for d = VW/2 .. 1; afterwards r[i][l] = op(B)[kq + i][.. + l]
        for (int64_t d = VW / 2; d >= 1; d /= 2) {
          std::vector<int> lo, hi;  // lanes of (r[i], r[i+d]) as one 2VW vector
          for (int64_t l = 0; l < VW; ++l) {
            lo.push_back(static_cast<int>((l & d) ? VW + l - d : l));
            hi.push_back(static_cast<int>((l & d) ? VW + l : l + d));
          }
          for (int64_t i = 0; i < VW; ++i) {
            if (i & d) continue;
            Value *x = r[static_cast<size_t>(i)], *y = r[static_cast<size_t>(i + d)];
            r[static_cast<size_t>(i)] = b_.CreateShuffleVector(x, y, lo);
            r[static_cast<size_t>(i + d)] = b_.CreateShuffleVector(x, y, hi);
          }
        }
        for (int64_t i = 0; i < VW; ++i)
          b_.CreateAlignedStore(r[static_cast<size_t>(i)],
                                gep(f32_, panel, add(mulc(add(kq, c64(i)), NR), c64(v * VW))), Align(64));
      });
    };
    BasicBlock* plain = BasicBlock::Create(ctx_, "pack.t.plain", f);
    BasicBlock* masked = BasicBlock::Create(ctx_, "pack.t.masked", f);
    BasicBlock* next = BasicBlock::Create(ctx_, "pack.t.next", f);
    b_.CreateCondBr(b_.CreateICmpSGE(cols, c64((v + 1) * VW)), plain, masked);
    b_.SetInsertPoint(plain);
    blockLoop(false);
    b_.CreateBr(next);
    b_.SetInsertPoint(masked);
    blockLoop(true);
    b_.CreateBr(next);
    b_.SetInsertPoint(next);
  }
  Value* kTail = mulc(kGroups, VW);
  loopV0(b_.CreateSub(kc, kTail), [&](Value* t) {
    Value* kk = add(kTail, t);
    Value* dst = gep(f32_, panel, mulc(kk, NR));
    for (int64_t jj = 0; jj < NR; ++jj) {
      auto [src, ok] = colAddr(jj, kk);  // the clamped address is always readable
      storeF(b_.CreateSelect(ok, b_.CreateLoad(f32_, src), cf(0.0)), dst, c64(jj));
    }
  });
  b_.CreateBr(done);
  b_.SetInsertPoint(done);
  b_.CreateRetVoid();
  return f;
}

// kiln.gemm.tile(ctx, w): tile w = (row block, panel) of one k block, its
// rows of C (+)= op(A) rows · the packed panel.
Function* Emitter::gemmTileFunction(StructType* ctxTy) {
  if (gemmTileFn_) return gemmTileFn_;
  IRBuilderBase::InsertPointGuard guard(b_);
  Function* f = Function::Create(FunctionType::get(b_.getVoidTy(), {ptr_, i64_}, false), Function::InternalLinkage,
                                 "kiln.gemm.tile", m_.get());
  setAttrs(f);
  f->addFnAttr(Attribute::NoInline);
  gemmTileFn_ = f;
  b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", f));
  auto field = [&](unsigned i) {
    return b_.CreateLoad(ctxTy->getElementType(i), b_.CreateStructGEP(ctxTy, f->getArg(0), i));
  };
  Value *M = field(0), *N = field(1), *A = field(2), *sAi = field(3), *sAk = field(4), *Bp = field(5), *C = field(6),
        *ldc = field(7), *k0 = field(8), *kc = field(9), *first = b_.CreateICmpNE(field(10), c64(0)),
        *KCs = field(11), *panels = field(12), *epilogue = field(20), *epilogueCtx = field(21);
  FunctionType* epiTy = epilogueType();
  const int64_t VW = vecWidth_, NR = 2 * VW, NV = NR / VW;
  VectorType* vt = FixedVectorType::get(f32_, static_cast<unsigned>(VW));
  Value* zero = Constant::getNullValue(vt);
  auto fma = [&](Value* a, Value* b, Value* c) { return b_.CreateIntrinsic(Intrinsic::fma, {vt}, {a, b, c}); };
  std::vector<Value*> acc(static_cast<size_t>(kMR * NV));
  for (Value*& a : acc) a = alloca(vt);
  Value* w = f->getArg(1);
  // item w: panel w with all its row blocks, packed here first
  // (packInTile), else row block w / panels of panel w mod panels
  Value* packInTile = b_.CreateICmpNE(field(16), c64(0));
  Value *Ap = field(17), *packA = b_.CreateICmpNE(field(18), c64(0)), *aKMajor = b_.CreateICmpNE(field(19), c64(0));
  Value* aLp = add(KCs, c64(kAPad));
  Value* ic0 = b_.CreateSelect(packInTile, c64(0), b_.CreateUDiv(w, panels));
  Value* p = b_.CreateSelect(packInTile, w, b_.CreateURem(w, panels));
  Value* nBlocks = b_.CreateSelect(packInTile, udivc(add(M, c64(kMC - 1)), kMC), c64(1));
  // its own panel goes to a buffer on this thread's stack, which stays in
  // L1 from one item to the next (the scratch's panels would not)
  IRBuilder<> eb(&f->getEntryBlock(), f->getEntryBlock().begin());
  AllocaInst* own = eb.CreateAlloca(ArrayType::get(f32_, static_cast<uint64_t>(lower::kGemmKC * NR)));
  own->setAlignment(Align(64));
  Value* panel = b_.CreateSelect(packInTile, own, gep(f32_, Bp, mulc(b_.CreateMul(p, KCs), NR)));
  // a full panel of untransposed B is read where it is (row stride ldb)
  Value* B = field(13), *ldb = field(14), *tb = b_.CreateICmpNE(field(15), c64(0));
  Value* inPlace = b_.CreateAnd(b_.CreateAnd(b_.CreateOr(b_.CreateICmpSLE(M, c64(kInPlaceRows)),
                                                          b_.CreateICmpNE(field(22), c64(0))),
                                              b_.CreateNot(tb)),
                                b_.CreateICmpSGE(b_.CreateSub(N, mulc(p, NR)), c64(NR)));
  panel = b_.CreateSelect(inPlace, gep(f32_, B, add(b_.CreateMul(k0, ldb), mulc(p, NR))), panel);
  Value* bStride = b_.CreateSelect(inPlace, ldb, c64(NR));
  Value* ownPacked = b_.CreateAnd(packInTile, b_.CreateNot(inPlace));

  // C[i0 .. i0+mr, p*NR .. p*NR+cols) (+)= op(A)[i0.., k0+kOff ..+kLen) · Bp[p] rows kOff ..+kLen,
  // from zero when `first`
  // with nv = 1 only the panel's first vector of columns (a tail of at most VW)
  // sPanel: the panel's row for k = k0 + kOff
  auto micro = [&](Value* i0, int64_t mr, Value* p, Value* cols, Value* kOff, Value* kLen, Value* first, Value* sPanel,
                   int64_t nv) {
    std::vector<Value*> masks;
    for (int64_t v = 0; v < nv; ++v) masks.push_back(laneMask(v, cols));
    auto cPtr = [&](int64_t row, int64_t v) {
      return gep(f32_, C, add(b_.CreateMul(add(i0, c64(row)), ldc), add(mulc(p, NR), c64(v * VW))));
    };
    for (int64_t row = 0; row < mr; ++row)
      for (int64_t v = 0; v < nv; ++v) {
        Value* old = b_.CreateMaskedLoad(vt, cPtr(row, v), Align(4), masks[static_cast<size_t>(v)], zero);
        b_.CreateStore(b_.CreateSelect(first, zero, old), acc[static_cast<size_t>(row * NV + v)]);
      }
    // A(i0 + row, k0 + kk) = aBase[row * aRowStride + kk * aKStride]; in
    // k-major packing row i0 is lane i0 mod 8 of micro-panel i0 / 8 (a row
    // tail's 2- or 1-row piece starts mid-panel, after the 4-row piece)
    Value* kMajorAt = add(mulc(b_.CreateMul(udivc(i0, kMR), KCs), 8), b_.CreateURem(i0, c64(kMR)));
    Value* aBase = b_.CreateSelect(
        packA, gep(f32_, Ap, b_.CreateSelect(aKMajor, kMajorAt, b_.CreateMul(i0, aLp))),
        gep(f32_, A, add(b_.CreateMul(i0, sAi), b_.CreateMul(k0, sAk))));
    Value* aRowStride = b_.CreateSelect(packA, b_.CreateSelect(aKMajor, c64(1), aLp), sAi);
    Value* aKStride = b_.CreateSelect(packA, b_.CreateSelect(aKMajor, c64(8), c64(1)), sAk);
    std::vector<Value*> aRow;
    for (int64_t row = 0; row < mr; ++row) aRow.push_back(gep(f32_, aBase, mulc(aRowStride, row)));
    loopV(kLen, [&](Value* kk0) {
      Value* kk = add(kOff, kk0);
      Value* bRow = gep(f32_, sPanel, b_.CreateMul(kk0, bStride));
      Value* ak = b_.CreateMul(kk, aKStride);
      std::vector<Value*> bv;
      for (int64_t v = 0; v < nv; ++v) bv.push_back(b_.CreateAlignedLoad(vt, gep(f32_, bRow, c64(v * VW)), Align(4)));
      for (int64_t row = 0; row < mr; ++row) {
        Value* a = b_.CreateVectorSplat(static_cast<unsigned>(VW), loadF(aRow[static_cast<size_t>(row)], ak));
        for (int64_t v = 0; v < nv; ++v) {
          Value* slot = acc[static_cast<size_t>(row * NV + v)];
          b_.CreateStore(fma(a, bv[static_cast<size_t>(v)], b_.CreateLoad(vt, slot)), slot);
        }
      }
    });
    for (int64_t row = 0; row < mr; ++row)
      for (int64_t v = 0; v < nv; ++v)
        b_.CreateMaskedStore(b_.CreateLoad(vt, acc[static_cast<size_t>(row * NV + v)]), cPtr(row, v), Align(4),
                             masks[static_cast<size_t>(v)]);
  };
  // A narrow panel (at most kMaxT = 4 columns) when op(A)'s rows lie side by
  // side at each k (a transposed A read in place, sAi = 1, or a transposed
  // copy the caller made, aT): the vectors run along the rows instead of the
  // columns, nr vectors of VW rows by nc columns of accumulators, so one FMA
  // advances VW rows of one column where the one-vector kernel advances one
  // row of a panel only `cols` of whose VW lanes count (8 broadcasts, a load
  // and 8 FMAs per k for 8 rows). Each element is the same fma chain, k
  // ascending. A vector's elements of C are ldc apart: gathered (unless
  // `first`) and scattered, once per k block.
  Value* aT = field(23);
  Value* haveAT = b_.CreateICmpNE(aT, ConstantPointerNull::get(ptr_));
  Value* rowVectors = b_.CreateOr(haveAT, b_.CreateAnd(b_.CreateICmpEQ(sAi, c64(1)), b_.CreateNot(packA)));
  Value* tKStride = b_.CreateSelect(haveAT, field(24), sAk);  // op(A)(i, k) at tBase[i + k * tKStride]
  Value* tBase = b_.CreateSelect(haveAT, aT, A);
  std::vector<Constant*> laneIdx;
  for (int64_t l = 0; l < VW; ++l) laneIdx.push_back(b_.getInt64(static_cast<uint64_t>(l)));
  Value* lanes = ConstantVector::get(laneIdx);
  const int64_t kMaxT = lower::kGemmRowVectorCols;  // most columns the row-vector kernel takes
  // only in modules with a product that can use it: it costs the GEMM
  // function ~80 ms of LLVM's time (compile_mlp 0.40 -> 0.48 s)
  const bool withRowVectors = rowVectorTails();
  std::vector<Value*> accT(static_cast<size_t>(2 * kMaxT));
  for (Value*& a : accT) a = alloca(vt);
  auto microT = [&](Value* i0, int64_t nr, int64_t nc, Value* p, Value* cols, Value* kOff, Value* kLen, Value* first,
                    Value* sPanel) {
    auto splat = [&](Value* x) { return b_.CreateVectorSplat(static_cast<unsigned>(VW), x); };
    Value* notFirst = splat(b_.CreateNot(first));
    auto cPtrs = [&](int64_t r, int64_t j) {
      Value* rowsV = b_.CreateAdd(splat(add(i0, c64(r * VW))), lanes);
      return b_.CreateGEP(f32_, C, b_.CreateAdd(b_.CreateMul(rowsV, splat(ldc)), splat(add(mulc(p, NR), c64(j)))));
    };
    std::vector<Value*> colOk;
    for (int64_t j = 0; j < nc; ++j) colOk.push_back(splat(b_.CreateICmpULT(c64(j), cols)));
    auto slot = [&](int64_t r, int64_t j) { return accT[static_cast<size_t>(r * kMaxT + j)]; };
    for (int64_t r = 0; r < nr; ++r)
      for (int64_t j = 0; j < nc; ++j)
        b_.CreateStore(b_.CreateMaskedGather(vt, cPtrs(r, j), Align(4),
                                             b_.CreateAnd(colOk[static_cast<size_t>(j)], notFirst), zero),
                       slot(r, j));
    Value* aBase = gep(f32_, tBase, add(i0, b_.CreateMul(add(k0, kOff), tKStride)));
    loopV(kLen, [&](Value* kk0) {
      Value* aAt = gep(f32_, aBase, b_.CreateMul(kk0, tKStride));
      std::vector<Value*> av;
      for (int64_t r = 0; r < nr; ++r) av.push_back(b_.CreateAlignedLoad(vt, gep(f32_, aAt, c64(r * VW)), Align(4)));
      Value* bRow = gep(f32_, sPanel, b_.CreateMul(kk0, bStride));
      for (int64_t j = 0; j < nc; ++j) {
        Value* bj = splat(loadF(bRow, c64(j)));
        for (int64_t r = 0; r < nr; ++r)
          b_.CreateStore(fma(av[static_cast<size_t>(r)], bj, b_.CreateLoad(vt, slot(r, j))), slot(r, j));
      }
    });
    // already vector code: LLVM's unroller and vectorizer only add compile time here
    hintClosedLoop({loopHint("llvm.loop.unroll.disable"), loopHint("llvm.loop.vectorize.enable", b_.getFalse())});
    for (int64_t r = 0; r < nr; ++r)
      for (int64_t j = 0; j < nc; ++j)
        b_.CreateMaskedScatter(b_.CreateLoad(vt, slot(r, j)), cPtrs(r, j), Align(4), colOk[static_cast<size_t>(j)]);
  };
  // An unpacked k block (kc > kGemmKC, B in place) is passed in slices of
  // kGemmKC, all rows each, so the slice of the B panel stays in L1 while
  // the rows pass over it; C is stored and reloaded between slices (exact).
  // So is a k range an item runs whole (the gemm function's ownsK): its
  // own panel is packed a slice at a time, at most kGemmKC deep (`own`).
  Value* ownsK = b_.CreateAnd(packInTile, b_.CreateNot(packA));
  Value* slice = b_.CreateSelect(b_.CreateOr(inPlace, ownsK), smin(kc, c64(lower::kGemmKC)), kc);
  Value* slices = b_.CreateUDiv(add(kc, b_.CreateSub(slice, c64(1))), slice);
  loopV(slices, [&](Value* si) {
    Value* kOff = b_.CreateMul(si, slice);
    Value* kLen = smin(b_.CreateSub(kc, kOff), slice);
    Value* sliceFirst = b_.CreateAnd(first, b_.CreateICmpEQ(si, c64(0)));
    ifThen(ownPacked, [&] { b_.CreateCall(gemmPackFunction(ctxTy), {f->getArg(0), p, panel, add(k0, kOff), kLen}); });
    Value* sPanel = b_.CreateSelect(ownPacked, panel, gep(f32_, panel, b_.CreateMul(kOff, bStride)));
    loopV(nBlocks, [&](Value* bi) {
      // Rows in blocks of kMC: a block's rows of A (kMC x kc) stay in L2, and
      // the B panel (kc x NR) stays in L1 while the block's rows pass over it.
      Value* r0 = mulc(add(ic0, bi), kMC);
      Value* rows = smin(b_.CreateSub(M, r0), c64(kMC));
      Value* cols = smin(b_.CreateSub(N, mulc(p, NR)), c64(NR));
      // rows [from, from + count) in micro-kernels of kMR rows, then the
      // last rows mod kMR in micro-kernels of kMR/2, kMR/4, ..., 1 rows (one
      // per set bit of the remainder): log2(kMR) tail kernels instead of
      // kMR - 1 keeps the GEMM function, and compile time, small
      auto passRowsFrom = [&](Value* from, Value* count, int64_t nv) {
        loopV0(udivc(count, kMR), [&](Value* ib) {
          micro(add(from, mulc(ib, kMR)), kMR, p, cols, kOff, kLen, sliceFirst, sPanel, nv);
        });
        Value* i0 = add(from, mulc(udivc(count, kMR), kMR));
        Value* rest = b_.CreateURem(count, c64(kMR));
        for (int64_t h = kMR / 2; h >= 1; h /= 2) {
          Value* piece = b_.CreateAnd(rest, c64(h));
          Value* at = i0;
          ifThen(b_.CreateICmpNE(piece, c64(0)), [&] { micro(at, h, p, cols, kOff, kLen, sliceFirst, sPanel, nv); });
          i0 = add(i0, piece);
        }
      };
      auto passRows = [&](int64_t nv) { passRowsFrom(r0, rows, nv); };
      // the row-vector kernel over groups of 2 VW rows, then the rest
      // (fewer than 2 VW) one vector per row as below
      auto passRowsT = [&](int64_t nc) {
        Value* pairs = udivc(rows, 2 * VW);
        loopV0(pairs, [&](Value* ib) {
          microT(add(r0, mulc(ib, 2 * VW)), 2, nc, p, cols, kOff, kLen, sliceFirst, sPanel);
        });
        passRowsFrom(add(r0, mulc(pairs, 2 * VW)), b_.CreateURem(rows, c64(2 * VW)), 1);
      };
      // a panel of at most VW columns (N's tail, e.g. 10 classes or the 65th
      // of 65) multiplies one vector per row, not two, or goes by row
      // vectors when it has at most kMaxT columns and op(A) allows
      BasicBlock* narrow = BasicBlock::Create(ctx_, "panel.narrow", f);
      BasicBlock* byRows = BasicBlock::Create(ctx_, "panel.rowvectors", f);
      BasicBlock* byCols = BasicBlock::Create(ctx_, "panel.onevector", f);
      BasicBlock* wide = BasicBlock::Create(ctx_, "panel.wide", f);
      BasicBlock* next = BasicBlock::Create(ctx_, "panel.done", f);
      b_.CreateCondBr(b_.CreateICmpSLE(cols, c64(VW)), narrow, wide);
      b_.SetInsertPoint(narrow);
      if (withRowVectors) {
        b_.CreateCondBr(b_.CreateAnd(rowVectors, b_.CreateICmpSLE(cols, c64(kMaxT))), byRows, byCols);
        b_.SetInsertPoint(byRows);
        passRowsT(kMaxT);
        b_.CreateBr(next);
      } else {
        b_.CreateBr(byCols);
        byRows->eraseFromParent();
      }
      b_.SetInsertPoint(byCols);
      passRows(1);
      b_.CreateBr(next);
      b_.SetInsertPoint(wide);
      passRows(NV);
      b_.CreateBr(next);
      b_.SetInsertPoint(next);
      // this block of rows x the panel's columns is final: the epilogue
      // overwrites it while it is in L1
      ifThen(b_.CreateAnd(b_.CreateICmpNE(epilogue, ConstantPointerNull::get(ptr_)),
                          b_.CreateICmpEQ(si, b_.CreateSub(slices, c64(1)))),
             [&] { b_.CreateCall(epiTy, epilogue, {epilogueCtx, r0, rows, mulc(p, NR), cols}); });
    });
  });
  b_.CreateRetVoid();
  return f;
}

}  // namespace kiln::codegen::detail
