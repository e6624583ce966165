// Checked mode's code: the scan for the first non-finite f32 of a buffer and
// the early return an entry point makes when it finds one. Only emitted when
// the plan is checked (lower::PlanOptions::checked), so unchecked modules
// are unchanged.
#include "Emitter.h"

namespace kiln::codegen::detail {

namespace {
constexpr uint32_t kExpMask = 0x7f800000u;  // an f32 is inf or nan iff its exponent bits are all ones
}  // namespace

Function* Emitter::nonFiniteFinder() {
  const char* name = "kiln_first_nonfinite";
  if (Function* f = m_->getFunction(name)) return f;
  Function* f = Function::Create(FunctionType::get(i64_, {ptr_, i64_}, false), Function::InternalLinkage, name, m_.get());
  setAttrs(f);
  // one out-of-line copy: inlining it after every kernel would only grow
  // the entry points and the compile time
  f->addFnAttr(Attribute::NoInline);
  f->addParamAttr(0, Attribute::NoAlias);
  f->addParamAttr(0, Attribute::NoCapture);
  f->addParamAttr(0, Attribute::ReadOnly);
  IRBuilderBase::InsertPointGuard guard(b_);
  b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", f));
  Value* p = f->getArg(0);
  Value* n = f->getArg(1);
  // pass 1, vectorizable: the largest exponent field of the buffer
  Value* acc = alloca(i32_);
  b_.CreateStore(b_.getInt32(0), acc);
  loopV(n, [&](Value* i) {
    Value* e = b_.CreateAnd(b_.CreateLoad(i32_, gep(i32_, p, i)), b_.getInt32(kExpMask));
    b_.CreateStore(b_.CreateBinaryIntrinsic(Intrinsic::umax, b_.CreateLoad(i32_, acc), e), acc);
  });
  BasicBlock* scan = BasicBlock::Create(ctx_, "scan", f);
  BasicBlock* none = BasicBlock::Create(ctx_, "none", f);
  b_.CreateCondBr(b_.CreateICmpEQ(b_.CreateLoad(i32_, acc), b_.getInt32(kExpMask)), scan, none);
  b_.SetInsertPoint(none);
  b_.CreateRet(b_.getInt64(static_cast<uint64_t>(-1)));
  // pass 2, only when there is one: where the first is
  b_.SetInsertPoint(scan);
  loopV(n, [&](Value* i) {
    Value* e = b_.CreateAnd(b_.CreateLoad(i32_, gep(i32_, p, i)), b_.getInt32(kExpMask));
    BasicBlock* found = BasicBlock::Create(ctx_, "found", f);
    BasicBlock* next = BasicBlock::Create(ctx_, "next", f);
    b_.CreateCondBr(b_.CreateICmpEQ(e, b_.getInt32(kExpMask)), found, next);
    b_.SetInsertPoint(found);
    b_.CreateRet(i);
    b_.SetInsertPoint(next);
  });
  b_.CreateRet(b_.getInt64(static_cast<uint64_t>(-1)));
  return f;
}

void Emitter::emitFiniteCheck(size_t check, Value* buf, int64_t n, Value* err) {
  Function* f = b_.GetInsertBlock()->getParent();
  Value* pos = b_.CreateCall(nonFiniteFinder(), {buf, c64(n)});
  BasicBlock* fail = BasicBlock::Create(ctx_, "finite.fail", f);
  BasicBlock* ok = BasicBlock::Create(ctx_, "finite.ok", f);
  b_.CreateCondBr(b_.CreateICmpSGE(pos, c64(0)), fail, ok, nullptr, nullptr);
  b_.SetInsertPoint(fail);
  b_.CreateStore(b_.getInt32(static_cast<uint32_t>(check)), err);
  b_.CreateStore(loadF(buf, pos), b_.CreateInBoundsGEP(b_.getInt8Ty(), err, b_.getInt64(4)));
  b_.CreateStore(pos, b_.CreateInBoundsGEP(b_.getInt8Ty(), err, b_.getInt64(8)));
  b_.CreateRet(b_.getInt32(static_cast<uint32_t>(-static_cast<int64_t>(check) - 1)));
  b_.SetInsertPoint(ok);
}

}  // namespace kiln::codegen::detail
