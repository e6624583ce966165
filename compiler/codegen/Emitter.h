// The LLVM emitter's shared state and small IR-building helpers. Internal
// to codegen: its member functions live in Codegen.cpp (generators, entry
// points), Families.cpp (layout, indexing, conv, pooling, random) and
// Gemm.cpp (matrix multiplication).
#pragma once

#include "ir/Graph.h"
#include "ir/Shapes.h"
#include "lower/Plan.h"

#include <cassert>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/Target/TargetMachine.h>

namespace kiln::codegen::detail {

using ir::FamilyKind;
using ir::OpKind;
using ir::ValueId;
using namespace llvm;

class Emitter {
public:
  Emitter(const ir::Graph& g, const lower::ModulePlan& plan, std::string_view prefix, TargetMachine& tm)
      : g_(g), plan_(plan), prefix_(prefix), m_(std::make_unique<Module>(std::string(prefix), ctx_)), b_(ctx_) {
    m_->setTargetTriple(tm.getTargetTriple().str());
    m_->setDataLayout(tm.createDataLayout());
    cpu_ = tm.getTargetCPU().str();
    features_ = tm.getTargetFeatureString().str();
    f32_ = b_.getFloatTy();
    i32_ = b_.getInt32Ty();
    i64_ = b_.getInt64Ty();
    ptr_ = PointerType::getUnqual(ctx_);
    const MCSubtargetInfo* sti = tm.getMCSubtargetInfo();
    vecWidth_ = sti->checkFeatures("+avx512f") ? 16 : sti->checkFeatures("+avx") ? 8 : 4;
  }

  std::unique_ptr<Module> run();

  LLVMContext& context() { return ctx_; }

public:  // the emitters are split over Codegen.cpp, Families.cpp and Gemm.cpp
  void setAttrs(Function* f) {
    f->addFnAttr(Attribute::NoUnwind);
    f->addFnAttr("target-cpu", cpu_);
    if (!features_.empty()) f->addFnAttr("target-features", features_);
    // LLVM's tuning for AVX-512 cores vectorizes loops 256 bits wide; the
    // elementwise kernels run faster at the full 512 on this machine (tanh
    // and exp over 1M floats: 0.93 ms against 1.33 ms at 256)
    if (vecWidth_ == 16) f->addFnAttr("prefer-vector-width", "512");
    // compiled code runs with subnormal f32 flushed to zero (emitEntry):
    // LLVM folds constants the same way
    f->addFnAttr("denormal-fp-math-f32", "preserve-sign,preserve-sign");
  }

  // The first `count` arguments of a kernel-like function are buffers:
  // noalias, not captured, kBufferAlign-aligned (every buffer is).
  void markBufferArgs(Function* f, unsigned count) {
    for (unsigned a = 0; a < count; ++a) {
      Argument* arg = f->getArg(a);
      arg->addAttr(Attribute::NoAlias);
      arg->addAttr(Attribute::NoCapture);
      arg->addAttr(Attribute::getWithAlignment(ctx_, Align(kAlign)));
    }
  }

  // for (i = 0; i < n; ++i) body(i), n a run-time i64 (n >= 1)
  void loopV(Value* n, const std::function<void(Value*)>& body) {
    Function* f = b_.GetInsertBlock()->getParent();
    BasicBlock* pre = b_.GetInsertBlock();
    BasicBlock* head = BasicBlock::Create(ctx_, "loop", f);
    BasicBlock* exit = BasicBlock::Create(ctx_, "loop.end", f);
    b_.CreateBr(head);
    b_.SetInsertPoint(head);
    PHINode* i = b_.CreatePHI(i64_, 2, "i");
    i->addIncoming(b_.getInt64(0), pre);
    body(i);
    Value* next = b_.CreateAdd(i, b_.getInt64(1), "i.next", true, true);
    i->addIncoming(next, b_.GetInsertBlock());
    b_.CreateCondBr(b_.CreateICmpULT(next, n), head, exit);
    b_.SetInsertPoint(exit);
  }
  // the same with a trip count known now (n >= 1)
  void loop(int64_t n, const std::function<void(Value*)>& body) { loopV(b_.getInt64(n), body); }
  // the same when n may be 0
  void loopV0(Value* n, const std::function<void(Value*)>& body) {
    ifThen(b_.CreateICmpSGT(n, b_.getInt64(0)), [&] { loopV(n, body); });
  }
  Value* smin(Value* a, Value* b) { return b_.CreateSelect(b_.CreateICmpSLT(a, b), a, b); }
  Value* udivc(Value* a, int64_t d) { return b_.CreateUDiv(a, b_.getInt64(d)); }
  // lanes of vector v (vecWidth_ lanes) lying in the first `cols` columns of
  // a GEMM panel
  Value* laneMask(int64_t v, Value* cols);

  // Nested loops over `dims`, outermost first.
  void nest(const ir::Shape& dims, const std::function<void(const std::vector<Value*>&)>& body) {
    std::vector<Value*> idx;
    std::function<void(size_t)> rec = [&](size_t d) {
      if (d == dims.size()) {
        body(idx);
        return;
      }
      loop(dims[d], [&](Value* i) {
        idx.push_back(i);
        rec(d + 1);
        idx.pop_back();
      });
    };
    rec(0);
  }

  Value* linear(const std::vector<Value*>& idx, const std::vector<int64_t>& strides) {
    Value* off = b_.getInt64(0);
    for (size_t d = 0; d < idx.size(); ++d)
      if (strides[d] != 0) off = b_.CreateAdd(off, b_.CreateMul(idx[d], b_.getInt64(strides[d]), "", true, true), "", true, true);
    return off;
  }

  Value* gep(Type* t, Value* base, Value* idx) { return b_.CreateInBoundsGEP(t, base, idx); }
  Value* loadF(Value* base, Value* idx) { return b_.CreateLoad(f32_, gep(f32_, base, idx)); }
  void storeF(Value* v, Value* base, Value* idx) { b_.CreateStore(v, gep(f32_, base, idx)); }
  Value* cf(double v) { return ConstantFP::get(f32_, v); }

  Value* callMath(StringRef name, Value* x) {
    FunctionCallee fn = m_->getOrInsertFunction(name, FunctionType::get(f32_, {f32_}, false));
    if (auto* f = dyn_cast<Function>(fn.getCallee())) {
      f->addFnAttr(Attribute::NoUnwind);
      f->setDoesNotAccessMemory();
    }
    return b_.CreateCall(fn, {x});
  }
  Value* callMath2(StringRef name, Value* x, Value* y) {
    FunctionCallee fn = m_->getOrInsertFunction(name, FunctionType::get(f32_, {f32_, f32_}, false));
    if (auto* f = dyn_cast<Function>(fn.getCallee())) {
      f->addFnAttr(Attribute::NoUnwind);
      f->setDoesNotAccessMemory();
    }
    return b_.CreateCall(fn, {x, y});
  }
  Value* intrinsic(Intrinsic::ID id, Value* x) { return b_.CreateUnaryIntrinsic(id, x); }
  Value* kexp(Value* x);  // ir/Math.h's exp, inline and vectorizable

  Value* fmax(Value* a, Value* b) {  // NaN in a propagates, as in the interpreter
    return b_.CreateSelect(b_.CreateOr(b_.CreateFCmpOGT(a, b), b_.CreateFCmpUNO(a, a)), a, b);
  }
  Value* fmin(Value* a, Value* b) {
    return b_.CreateSelect(b_.CreateOr(b_.CreateFCmpOLT(a, b), b_.CreateFCmpUNO(a, a)), a, b);
  }
  Value* mask(Value* c) { return b_.CreateSelect(c, cf(1.0), cf(0.0)); }

  // Scalar emission for f32 operands: one switch keyed by the op table,
  // mirroring interp::scalarF.
  Value* scalarF(const ir::Node& n, Value* a, Value* bv);

  // i32 operands, mirroring interp::scalarI (wrapping arithmetic).
  Value* scalarI(const ir::Node& n, Value* a, Value* bv);

  Type* elemType(const ir::TensorType& t) { return t.dtype == ir::DType::F32 ? f32_ : i32_; }

  // An elementwise op applied to its operands' element values.
  Value* mapValues(const ir::Node& n, const std::vector<Value*>& v);

  Function* emitKernel(const lower::Kernel& k);

  // ---- element generators: a value's element at an index ----

  // A row-major index into a value: the per-dim indices, the flat offset,
  // or both (a consumer fills whichever it has; the other is derived).
  struct Index {
    std::vector<Value*> multi;
    Value* flat = nullptr;
  };

  std::vector<Value*> multiOf(const Index& ix, const ir::Shape& shape);
  Value* flatOf(const Index& ix, const ir::Shape& shape);

  Value* gen(ValueId v, const Index& ix);

  // The operand index a broadcast or transpose result index reads.
  Index operandIndex(const ir::Node& n, const std::vector<Value*>& m);

  void emitGeneratorRoot(const lower::Kernel& k, Value* out);
  // dst[cols][rows] = src[rows][cols]^T for f32, in register-transposed
  // blocks of vecWidth_ x vecWidth_ (Families.cpp)
  void transposeBlocks(Value* src, Value* dst, int64_t rows, int64_t cols);
  bool parallelElementwise(const lower::Kernel& k);
  // a big reduction's kept dim to split over the runtime's threads, or -1
  int64_t parallelReduceDim(const lower::Kernel& k);
  void emitParallelReduce(const lower::Kernel& k, Function* kernel, int64_t dim);
  void emitReduceRange(const ir::Node& n, Value* out, size_t dim, Value* lo, Value* hi);
  // a split sum whose outputs run along the vector's lanes (Loops.cpp)
  bool laneReduce(const lower::Kernel& k, int64_t dim);
  void emitLaneReduceRange(const ir::Node& n, Value* out, Value* in, size_t dim, Value* lo, Value* hi);
  // a log_softmax big enough to run its slices over the runtime's threads
  bool parallelLogSoftmax(const lower::Kernel& k);
  void emitParallelLogSoftmax(const lower::Kernel& k, Function* kernel);
  void emitLogSoftmaxRows(const ir::Node& n, Value* out, Value* in, Value* lo, Value* hi);
  Function* rangeFunction(const std::string& name, unsigned nargs);
  void spreadRange(Function* range, Function* kernel, unsigned nargs, const std::string& name, int64_t count,
                   int64_t chunk, bool parallel, int64_t cost);
  bool parallelRows(const lower::Kernel& k);
  Function* emitFlatLoop(const std::vector<const lower::Kernel*>& members,
                         const std::vector<std::vector<unsigned>>& argOf, unsigned nargs, const std::string& name,
                         Function* kernel, bool rows = false);
  Function* emitLoopGroup(const std::vector<const lower::Kernel*>& members,
                          const std::vector<std::vector<unsigned>>& argOf, unsigned nargs);

  Value* genMap(const ir::Node& n, const Index& ix);

  Value* alloca(Type* t) {
    IRBuilder<> eb(&b_.GetInsertBlock()->getParent()->getEntryBlock(),
                   b_.GetInsertBlock()->getParent()->getEntryBlock().begin());
    return eb.CreateAlloca(t);
  }

  void emitBody(const ir::Node& n, Value* out, const std::vector<Value*>& in);

  void ifThen(Value* cond, const std::function<void()>& body) {
    Function* f = b_.GetInsertBlock()->getParent();
    BasicBlock* then = BasicBlock::Create(ctx_, "then", f);
    BasicBlock* cont = BasicBlock::Create(ctx_, "endif", f);
    b_.CreateCondBr(cond, then, cont);
    b_.SetInsertPoint(then);
    body();
    b_.CreateBr(cont);
    b_.SetInsertPoint(cont);
  }
  Value* c64(int64_t v) { return b_.getInt64(static_cast<uint64_t>(v)); }
  Value* add(Value* a, Value* b) { return b_.CreateAdd(a, b); }
  Value* mulc(Value* a, int64_t c) { return b_.CreateMul(a, c64(c)); }
  // 0 <= i < n, for i an i64 that may be negative
  Value* inRange(Value* i, int64_t n) { return b_.CreateICmpULT(i, c64(n)); }
  void zeroFill(Value* out, const ir::TensorType& t) {
    b_.CreateMemSet(out, b_.getInt8(0), t.byteSize(), Align(kAlign));
  }
  // out[o] += v
  void accumulate(Value* out, Value* o, Value* v) { storeF(b_.CreateFAdd(loadF(out, o), v), out, o); }

  // C[i,j] = sum_k A(i,k) B(k,j) per batch (Gemm.cpp); with `epilogue`
  // (2-D only), each finished tile of C is passed to it (see GemmArgs)
  void emitMatMul(const ir::Node& n, Value* out, const std::vector<Value*>& in, Value* epilogue = nullptr,
                  Value* epilogueCtx = nullptr);
  // The body of kernel k (function f), whose fused tree holds matmul mm
  // (lower::epilogueProduct): the GEMM writes C into the output buffer and
  // an epilogue function overwrites each finished tile with the tree's
  // values there (Gemm.cpp)
  void emitEpilogueKernel(const lower::Kernel& k, ValueId mm, Function* f);
  // an epilogue's type: void(ctx, r0, rows, c0, cols) over C viewed as 2-D
  FunctionType* epilogueType() { return FunctionType::get(b_.getVoidTy(), {ptr_, i64_, i64_, i64_, i64_}, false); }
  struct EpilogueState {
    ValueId product = -1;  // while emitting an epilogue: the product whose elements are read from C
    Value* c = nullptr;
  } epilogue_;

  // One GEMM on f32 pointers, for any kernel that reduces to matrix
  // products (matmul; convolution through im2col): C[M,N] = op(A) op(B),
  // op(A)(i,k) = ta ? A[k*lda + i] : A[i*lda + k],
  // op(B)(k,j) = tb ? B[j*ldb + k] : B[k*ldb + j], C(i,j) at C[i*ldc + j].
  // `accumulate` adds to C's contents instead of overwriting them (each
  // element's fma chain then starts from its old value). Packs B into
  // `scratch` (lower::gemmScratchBytes(K, N) bytes, 64-aligned; null = the
  // kernel's own scratch). Requires K >= 1. `epilogue`, if not null, is a
  // function void(ptr ctx, i64 r0, i64 rows, i64 c0, i64 cols) called with
  // `epilogueCtx` once for every finished rectangle of C (rows r0 .., columns
  // c0 ..; together they cover C once), on the thread that finished it.
  struct GemmArgs {
    int64_t M = 0, N = 0, K = 0, lda = 0, ldb = 0, ldc = 0;
    bool ta = false, tb = false, accumulate = false;
    Value *A = nullptr, *B = nullptr, *C = nullptr, *scratch = nullptr;
    Value* packA = nullptr;  // room to pack A (lower::gemmPackABytes(M, K) bytes, 64-aligned), or none
    Value *epilogue = nullptr, *epilogueCtx = nullptr;
    // read untransposed B's full panels where they are (row stride ldb),
    // whatever M: for a B whose rows are 64-byte aligned and that only this
    // product reads (a conv's column matrix), packing it is a copy for nothing
    bool bInPlace = false;
    // op(A) transposed, [K][M] with rows ldaT floats apart, for the narrow
    // tail panels' row-vector kernel (a conv's weights, transposed once per
    // call), or none
    Value* aT = nullptr;
    int64_t ldaT = 0;
  };
  void emitGemm(const GemmArgs& g);
  Function* gemmFunction();  // the module's shared GEMM, emitted on first use
  // whether some product of the module can take the row-vector tail kernel
  // (a narrow tail panel of at most kGemmRowVectorCols columns with op(A)'s
  // rows side by side: transposed A, or a conv's transposed weights)
  bool rowVectorTails();
  // whether a product with N columns ends in a tail panel the row-vector
  // kernel takes (1 to kGemmRowVectorCols columns past whole panels)
  bool rowVectorTail(int64_t n) const {
    return n % (2 * vecWidth_) != 0 && n % (2 * vecWidth_) <= lower::kGemmRowVectorCols;
  }
  // Attaches loop metadata (`llvm.loop.*` hints) to the loop loopV has just
  // closed: its latch is the current block's single predecessor.
  void hintClosedLoop(std::vector<Metadata*> hints) {
    hints.insert(hints.begin(), nullptr);
    MDNode* loopId = MDNode::getDistinct(ctx_, hints);
    loopId->replaceOperandWith(0, loopId);
    b_.GetInsertBlock()->getSinglePredecessor()->getTerminator()->setMetadata(LLVMContext::MD_loop, loopId);
  }
  Metadata* loopHint(const char* name) { return MDNode::get(ctx_, {MDString::get(ctx_, name)}); }
  Metadata* loopHint(const char* name, Constant* value) {
    return MDNode::get(ctx_, {MDString::get(ctx_, name), ConstantAsMetadata::get(value)});
  }
  StructType* gemmCtxType();
  Function* gemmTileFunction(StructType* ctxTy);
  Function* gemmPackFunction(StructType* ctxTy);
  Function* gemmPackItemFunction(StructType* ctxTy);

  void emitConcat(const ir::Node& n, Value* out, const std::vector<Value*>& in);

  void emitSlice(const ir::Node& n, Value* out, const std::vector<Value*>& in);

  void emitPad(const ir::Node& n, Value* out, const std::vector<Value*>& in);

  Value* loadIndex(Value* base, Value* i) { return b_.CreateSExt(b_.CreateLoad(i32_, gep(i32_, base, i)), i64_); }

  void emitGather(const ir::Node& n, Value* out, const std::vector<Value*>& in);

  void emitScatterAdd(const ir::Node& n, Value* out, const std::vector<Value*>& in);

  void emitAlong(const ir::Node& n, Value* out, const std::vector<Value*>& in);

  // The three conv kernels: im2col + emitGemm (Families.cpp).
  // `epilogue(epilogueCtx, r0, rows, 0, ohw)` (conv2d only, as
  // emitEpilogueKernel builds it) runs on each image's rows of the output
  // viewed as [n*o, oh*ow], right after that image's GEMMs, on their thread
  void emitConv(const ir::Node& n, Value* out, const std::vector<Value*>& in, Value* epilogue = nullptr,
                Value* epilogueCtx = nullptr);
  void emitIm2Col(const lower::ConvLayout& l, const ir::ConvGeom& g, Value* img, Value* col, bool back,
                  Value* r0 = nullptr, Value* rows = nullptr);

  void emitPool(const ir::Node& n, Value* out, const std::vector<Value*>& in);
  bool emitPoolVector(const ir::Node& n, Value* out, const std::vector<Value*>& in, int64_t planes);
  void emitPoolScalar(const ir::Node& n, Value* out, const std::vector<Value*>& in, int64_t planes);

  // SplitMix64's finalizer, as rt::mix64.
  Value* mix64(Value* x);

  // rt::uniform01 / rt::normal01 of (seed from the key, stream, index).
  void emitRandom(const ir::Node& n, Value* out, const std::vector<Value*>& in);

  void emitEntry(const lower::FunctionPlan& fp, const std::vector<Function*>& kernels);

  // Checked mode (Checked.cpp). `kiln_first_nonfinite(p, n)`: the index of
  // the first non-finite of n >= 1 floats at p, or -1; one per module.
  Function* nonFiniteFinder();
  // In entry point `f`: if the n floats at `buf` hold a non-finite value,
  // record {check, value, position} at `err` and return -(check + 1).
  void emitFiniteCheck(size_t check, Value* buf, int64_t n, Value* err);

  static constexpr uint64_t kAlign = lower::kBufferAlign;
  const ir::Graph& g_;
  const lower::ModulePlan& plan_;
  std::string prefix_;
  LLVMContext ctx_;
  std::unique_ptr<Module> m_;
  IRBuilder<> b_;
  std::string cpu_, features_;
  Type *f32_, *i32_, *i64_;
  PointerType* ptr_;
  int64_t vecWidth_ = 4;      // f32 lanes of the widest vector the target has
  Value* scratch_ = nullptr;
  Function* gemmFn_ = nullptr;
  Function* gemmTileFn_ = nullptr;
  Function* gemmPackFn_ = nullptr;  // the current kernel's scratch (lower::Kernel::scratchBytes), if any
  std::map<ValueId, Value*> leaf_;  // the current kernel's input buffers by value
  std::map<ValueId, Value*> loopVals_;  // a fused loop: earlier members' values at the current element
  struct LoopCall {
    Function* fn = nullptr;
    std::vector<int64_t> offsets;  // its pointer arguments: buffer offsets
  };
  std::map<std::pair<const void*, size_t>, LoopCall> loops_;  // by (function plan, first member)
};

}  // namespace kiln::codegen::detail
