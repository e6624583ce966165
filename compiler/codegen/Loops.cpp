// Elementwise loops over the runtime's threads: a kernel or fused loop of
// flat elementwise work as `.range` (the loop over an element range, noalias
// buffers) and `.part` (a parallel_for chunk), and multi-index elementwise
// kernels (a broadcast bias) split the same way over their outermost
// dimension; a big log_softmax over ranges of its independent slices, a
// big reduction over ranges of a dim it keeps.
// Results never depend on the chunking or the thread count.
#include "Emitter.h"

#include <fmt/format.h>

#include <algorithm>

namespace kiln::codegen::detail {

using ir::FamilyKind;

// Flat elementwise loops at least this big run in chunks of kParallelChunk
// elements over the runtime's threads; smaller ones (an RNN step's
// [32,256]) are not worth waking a thread for.
static constexpr int64_t kParallelMinElements = 32768;
static constexpr int64_t kParallelChunk = 8192;
// A reduction is split along a kept dim only when each index of it covers
// contiguous runs of at least this many inputs (a 64-byte cache line)
static constexpr int64_t kMinSplitRun = 16;

// `name.range(ptrs..., lo, hi)`: nargs noalias buffer pointers, then the
// range of whatever the caller's loop runs over; not inlined (the `.part`
// functions and the kernel call it)
Function* Emitter::rangeFunction(const std::string& name, unsigned nargs) {
  std::vector<Type*> params(nargs, ptr_);
  params.push_back(i64_);
  params.push_back(i64_);
  Function* range = Function::Create(FunctionType::get(b_.getVoidTy(), params, false), Function::InternalLinkage,
                                     name + ".range", m_.get());
  setAttrs(range);
  range->addFnAttr(Attribute::NoInline);
  markBufferArgs(range, nargs);
  return range;
}

bool Emitter::parallelElementwise(const lower::Kernel& k) {
  return lower::isFlatElementwise(g_, k) && g_.type(k.value).numElements() >= kParallelMinElements;
}

// An elementwise kernel that needs multi-indices (a bias broadcast over a
// conv output or a batch) runs over the threads in ranges of its outermost
// dimension instead.
bool Emitter::parallelRows(const lower::Kernel& k) {
  const ir::Node& n = g_.node(k.value);
  return k.loopMembers <= 1 && ir::opFamily(n.op) == FamilyKind::Map && lower::needsMultiIndex(g_, k) &&
         n.type.rank() >= 2 && n.type.shape[0] >= 2 && n.type.numElements() >= kParallelMinElements;
}

// One flat loop over the elements of `members` (a fused loop, or a single
// kernel): for each element, each member in order computes its value from
// its buffers, or from the registers of earlier members' values, and stores
// it unless Kernel::store is false. argOf[m] gives member m's output and
// inputs as positions in the function's pointer arguments (buffers several
// members touch, and an in-place update's target and value, are one
// argument, so no two noalias arguments share bytes).
//
// `.range(ptrs..., lo, hi)` holds the loop. The function returned takes the
// pointers; when the loop is big it packs them into a context and calls
// kiln_rt_parallel_for over chunks, `.part(ctx, w)` running chunk w, else it
// calls the range over every element. An element's value never depends on
// the chunking, so the thread count never changes a result.
//
// With `rows` (one multi-index kernel, parallelRows), the range is over the
// outermost dimension, each row a nest over the others, and a chunk is as
// many rows as make about kParallelChunk elements.
Function* Emitter::emitFlatLoop(const std::vector<const lower::Kernel*>& members,
                                const std::vector<std::vector<unsigned>>& argOf, unsigned nargs,
                                const std::string& name, Function* kernel, bool rows) {
  const ir::Shape& shape = g_.type(members[0]->value).shape;
  const int64_t total = g_.type(members[0]->value).numElements();
  const int64_t rowElems = rows ? total / shape[0] : 1;
  const int64_t count = rows ? shape[0] : total;  // what the range runs over
  const int64_t chunk = rows ? std::max<int64_t>(1, kParallelChunk / rowElems) : kParallelChunk;
  Function* range = rangeFunction(name, nargs);
  {
    IRBuilderBase::InsertPointGuard guard(b_);
    b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", range));
    Value* lo = range->getArg(nargs);
    Value* hi = range->getArg(nargs + 1);
    auto bindInputs = [&](size_t m) {  // member m's inputs are the range's arguments
      leaf_.clear();
      for (size_t x = 0; x < members[m]->inputs.size(); ++x)
        leaf_[members[m]->inputs[x]] = range->getArg(argOf[m][x + 1]);
    };
    if (rows) {
      assert(members.size() == 1 && "a fused loop is flat");
      const lower::Kernel& k = *members[0];
      const ir::Node& n = g_.node(k.value);
      bindInputs(0);
      ir::Shape inner(shape.begin() + 1, shape.end());
      std::vector<int64_t> strides = ir::stridesOf(shape);
      loopV0(b_.CreateSub(hi, lo), [&](Value* j) {
        Value* r = add(lo, j);
        nest(inner, [&](const std::vector<Value*>& rest) {
          std::vector<Value*> idx{r};
          idx.insert(idx.end(), rest.begin(), rest.end());
          Value* flat = linear(idx, strides);
          b_.CreateStore(genMap(n, Index{idx, flat}), gep(elemType(n.type), range->getArg(argOf[0][0]), flat));
        });
      });
    } else {
      loopV0(b_.CreateSub(hi, lo), [&](Value* j) {
        Value* i = add(lo, j);
        loopVals_.clear();
        for (size_t m = 0; m < members.size(); ++m) {
          const lower::Kernel& k = *members[m];
          const ir::Node& n = g_.node(k.value);
          bindInputs(m);
          Value* val = genMap(n, Index{{}, i});
          if (k.store) b_.CreateStore(val, gep(elemType(n.type), range->getArg(argOf[m][0]), i));
          loopVals_[k.value] = val;
        }
        loopVals_.clear();
      });
    }
    b_.CreateRetVoid();
  }
  // cost in flops, roughly (the runtime keeps small work on one thread)
  int64_t nodes = 0;
  for (const lower::Kernel* k : members) nodes += static_cast<int64_t>(k->fused.size()) + 1;
  spreadRange(range, kernel, nargs, name, count, chunk, total >= kParallelMinElements, total * 8 * nodes);
  return kernel;
}

// A reduction over at least kParallelMinElements inputs whose first kept
// dim of 2 or more is not (nearly) the innermost (a conv output summed per
// channel: each channel's inputs are runs of 784 floats) runs over ranges
// of that dim: each output element's inputs are still added in row-major
// order, by one thread.
int64_t Emitter::parallelReduceDim(const lower::Kernel& k) {
  const ir::Node& n = g_.node(k.value);
  if (ir::opFamily(n.op) != FamilyKind::Reduce || k.loopMembers > 1 || k.inPlaceInput >= 0) return -1;
  const ir::TensorType& t = g_.type(n.operands[0]);
  if (t.numElements() < kParallelMinElements) return -1;
  const auto& axes = n.attrs.getInts("axes");
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) != axes.end() || t.shape[d] < 2) continue;
    // each index of the dim must own whole cache lines of the input: a
    // split of the innermost dim (a bias gradient summed over the rows of
    // [2048,256]) would have every thread walk every row for a few floats,
    // which measured 0.4 ms slower per char-RNN step than one thread
    int64_t run = 1;
    for (size_t e = d + 1; e < t.shape.size(); ++e) run *= t.shape[e];
    return run >= kMinSplitRun ? static_cast<int64_t>(d) : -1;
  }
  return -1;
}

void Emitter::emitParallelReduce(const lower::Kernel& k, Function* kernel, int64_t dim) {
  const ir::Node& n = g_.node(k.value);
  const ir::TensorType& t = g_.type(n.operands[0]);
  const unsigned nargs = static_cast<unsigned>(k.inputs.size() + 1);
  std::string name = kernel->getName().str();
  Function* range = rangeFunction(name, nargs);
  const bool lanes = laneReduce(k, dim);
  {
    IRBuilderBase::InsertPointGuard guard(b_);
    b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", range));
    leaf_.clear();
    for (size_t x = 0; x < k.inputs.size(); ++x) leaf_[k.inputs[x]] = range->getArg(static_cast<unsigned>(x + 1));
    if (lanes)
      emitLaneReduceRange(n, range->getArg(0), range->getArg(1), static_cast<size_t>(dim), range->getArg(nargs),
                          range->getArg(nargs + 1));
    else
      emitReduceRange(n, range->getArg(0), static_cast<size_t>(dim), range->getArg(nargs), range->getArg(nargs + 1));
    b_.CreateRetVoid();
  }
  const int64_t extent = t.shape[static_cast<size_t>(dim)], perIndex = t.numElements() / extent;
  // lanes: whole vectors of outputs per item
  const int64_t chunk = lanes ? vecWidth_ : std::max<int64_t>(1, kParallelChunk / perIndex);
  spreadRange(range, kernel, nargs, name, extent, chunk, true, t.numElements() * 4);
}

// A sum over every dim but `dim`, of a buffer read as it is (no fused
// tree), whose outputs along `dim` are at least a vector: each output is a
// lane. A vector of VW consecutive outputs gathers, at each position of the
// reduced dims in row-major order, the VW inputs one `dim` step apart and
// adds them in: every lane is exactly its output's chain of additions, in
// the interpreter's order, VW chains at a time instead of one (a conv's
// bias gradient, [64, 32, 28, 28] summed to 32: one add per 4 cycles, the
// add's latency, was 4% of the cnn step).
bool Emitter::laneReduce(const lower::Kernel& k, int64_t dim) {
  const ir::Node& n = g_.node(k.value);
  const ir::TensorType& t = g_.type(n.operands[0]);
  if (n.op != OpKind::Sum || t.dtype != ir::DType::F32 || !k.fused.empty() || k.inputs.size() != 1 ||
      k.inputs[0] != n.operands[0])
    return false;
  const auto& axes = n.attrs.getInts("axes");
  for (size_t d = 0; d < t.shape.size(); ++d)
    if (static_cast<int64_t>(d) != dim && t.shape[d] > 1 &&
        std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) == axes.end())
      return false;  // another kept dim
  return t.shape[static_cast<size_t>(dim)] >= vecWidth_;
}

void Emitter::emitLaneReduceRange(const ir::Node& n, Value* out, Value* in, size_t dim, Value* lo, Value* hi) {
  const ir::TensorType& t = g_.type(n.operands[0]);
  const std::vector<int64_t> is = ir::stridesOf(t.shape);
  const int64_t VW = vecWidth_;
  auto* vt = FixedVectorType::get(f32_, static_cast<unsigned>(VW));
  auto* vi = FixedVectorType::get(i64_, static_cast<unsigned>(VW));
  std::vector<Constant*> laneC;
  for (int64_t l = 0; l < VW; ++l) laneC.push_back(b_.getInt64(static_cast<uint64_t>(l)));
  Value* lanes = ConstantVector::get(laneC);
  Value* laneOff = b_.CreateMul(lanes, ConstantVector::getSplat(vi->getElementCount(), b_.getInt64(static_cast<uint64_t>(is[dim]))));
  Value* zero = Constant::getNullValue(vt);
  Value* acc = alloca(vt);
  ir::Shape rest = t.shape;
  rest[dim] = 1;
  loopV0(udivc(add(b_.CreateSub(hi, lo), c64(VW - 1)), VW), [&](Value* gi) {
    Value* c0 = add(lo, mulc(gi, VW));
    Value* live = b_.CreateICmpSLT(lanes, b_.CreateVectorSplat(static_cast<unsigned>(VW), b_.CreateSub(hi, c0)));
    b_.CreateStore(zero, acc);
    Value* first = gep(f32_, in, mulc(c0, is[dim]));
    nest(rest, [&](const std::vector<Value*>& idx) {
      Value* ptrs = b_.CreateGEP(f32_, gep(f32_, first, linear(idx, is)), laneOff);
      Value* x = b_.CreateMaskedGather(vt, ptrs, Align(4), live, zero);
      b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(vt, acc), x), acc);
    });
    // the outputs along dim are contiguous (every other dim of the output is 1)
    b_.CreateMaskedStore(b_.CreateLoad(vt, acc), gep(f32_, out, c0), Align(4), live);
  });
}

bool Emitter::parallelLogSoftmax(const lower::Kernel& k) {
  const ir::Node& n = g_.node(k.value);
  if (ir::opFamily(n.op) != FamilyKind::LogSoftmax || n.type.numElements() < kParallelMinElements) return false;
  int64_t outer, len, inner;
  ir::splitAxis(n.type.shape, n.attrs.getInt("axis"), outer, len, inner);
  return outer >= 2;
}

void Emitter::emitParallelLogSoftmax(const lower::Kernel& k, Function* kernel) {
  const ir::Node& n = g_.node(k.value);
  int64_t outer, len, inner;
  ir::splitAxis(n.type.shape, n.attrs.getInt("axis"), outer, len, inner);
  std::string name = kernel->getName().str();
  Function* range = rangeFunction(name, 2);
  {
    IRBuilderBase::InsertPointGuard guard(b_);
    b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", range));
    emitLogSoftmaxRows(n, range->getArg(0), range->getArg(1), range->getArg(2), range->getArg(3));
    b_.CreateRetVoid();
  }
  // each slice of `len` costs a max, exps, a sum and a subtraction
  const int64_t chunk = std::max<int64_t>(1, kParallelChunk / (len * inner));
  spreadRange(range, kernel, 2, name, outer, chunk, true, n.type.numElements() * 40);
}

// Calls range(kernel's first nargs arguments, lo, hi) over [0, count): in
// chunks of `chunk` on the runtime's threads when `parallel` (`.part(ctx,
// w)` runs chunk w; `cost` in flops lets the runtime keep small work on
// one thread), else once over all of it.
void Emitter::spreadRange(Function* range, Function* kernel, unsigned nargs, const std::string& name, int64_t count,
                          int64_t chunk, bool parallel, int64_t cost) {
  std::vector<Value*> ptrs;
  for (unsigned a = 0; a < nargs; ++a) ptrs.push_back(kernel->getArg(a));
  if (!parallel) {
    ptrs.push_back(c64(0));
    ptrs.push_back(c64(count));
    b_.CreateCall(range, ptrs);
    return;
  }
  ArrayType* ctxTy = ArrayType::get(ptr_, nargs);
  Function* part = Function::Create(FunctionType::get(b_.getVoidTy(), {ptr_, i64_}, false),
                                    Function::InternalLinkage, name + ".part", m_.get());
  setAttrs(part);
  {
    IRBuilderBase::InsertPointGuard guard(b_);
    b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", part));
    std::vector<Value*> args;
    for (unsigned a = 0; a < nargs; ++a)
      args.push_back(b_.CreateLoad(ptr_, b_.CreateConstGEP2_64(ctxTy, part->getArg(0), 0, a)));
    Value* lo = mulc(part->getArg(1), chunk);
    args.push_back(lo);
    args.push_back(smin(add(lo, c64(chunk)), c64(count)));
    b_.CreateCall(range, args);
    b_.CreateRetVoid();
  }
  Value* ctxv = alloca(ctxTy);
  for (unsigned a = 0; a < nargs; ++a) b_.CreateStore(ptrs[a], b_.CreateConstGEP2_64(ctxTy, ctxv, 0, a));
  FunctionCallee pfor = m_->getOrInsertFunction(
      "kiln_rt_parallel_for", FunctionType::get(b_.getVoidTy(), {i64_, ptr_, ptr_, i64_}, false));
  b_.CreateCall(pfor, {c64((count + chunk - 1) / chunk), part, ctxv, c64(cost)});
}

// A fused loop (Kernel::loopMembers > 1): one function over the distinct
// buffers its members touch, in first-touch order (`offsets`).
Function* Emitter::emitLoopGroup(const std::vector<const lower::Kernel*>& members,
                                 const std::vector<std::vector<unsigned>>& argOf, unsigned nargs) {
  std::vector<Type*> params(nargs, ptr_);
  const lower::Kernel& head = *members[0];
  Function* f = Function::Create(FunctionType::get(b_.getVoidTy(), params, false), Function::InternalLinkage,
                                 fmt::format("k{}_loop{}", head.value, members.size()), m_.get());
  setAttrs(f);
  f->addFnAttr(Attribute::NoInline);
  markBufferArgs(f, nargs);
  IRBuilderBase::InsertPointGuard guard(b_);
  b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", f));
  emitFlatLoop(members, argOf, nargs, f->getName().str(), f);
  b_.CreateRetVoid();
  return f;
}

}  // namespace kiln::codegen::detail
