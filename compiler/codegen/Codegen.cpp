// Lowers the kernel IR to LLVM IR: one internal, noinline function per
// distinct kernel (lower/KernelKey.h; its buffers are noalias pointers), one
// exported function per entry point that calls them with offsets into the
// model's memory block. Loop orders match the interpreter's, so sums are
// taken in the same order.
#include "Codegen.h"

#include "Emitter.h"
#include "ir/Math.h"
#include "lower/KernelKey.h"
#include "passes/Fusion.h"

#include <chrono>
#include <fmt/format.h>
#include <mutex>

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/IntrinsicsX86.h>
#include <llvm/TargetParser/Triple.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Target/TargetOptions.h>
#include <llvm/Transforms/Utils/Cloning.h>
#include <llvm/TargetParser/Host.h>

namespace kiln::codegen {

using ir::FamilyKind;
using ir::OpKind;
using ir::ValueId;
using namespace llvm;

std::string entrySymbol(std::string_view prefix, std::string_view fn) { return fmt::format("{}_{}", prefix, fn); }

namespace {

void initLLVM() {
  static std::once_flag once;
  std::call_once(once, [] {
    InitializeNativeTarget();
    InitializeNativeTargetAsmPrinter();
    InitializeNativeTargetAsmParser();
  });
}

// The CPU and its feature string ("+avx2,-avx512f,..."; empty for a named CPU).
std::pair<std::string, std::string> cpuAndFeatures(const TargetOptions& opts) {
  std::string cpu = opts.cpu.empty() ? std::string(sys::getHostCPUName()) : opts.cpu;
  std::string features;
  if (opts.cpu.empty()) {
    for (const auto& f : sys::getHostCPUFeatures()) {
      if (!features.empty()) features += ",";
      features += (f.second ? "+" : "-") + f.first().str();
    }
  }
  return {cpu, features};
}

std::unique_ptr<TargetMachine> makeTargetMachine(const TargetOptions& opts, std::string& cpuOut) {
  initLLVM();
  std::string triple = sys::getProcessTriple();
  std::string err;
  const Target* target = TargetRegistry::lookupTarget(triple, err);
  if (!target) throw ir::CompileError(fmt::format("codegen: no LLVM target for {}: {}", triple, err));
  auto [cpu, features] = cpuAndFeatures(opts);
  llvm::TargetOptions to;
  std::unique_ptr<TargetMachine> tm(target->createTargetMachine(triple, cpu, features, to, Reloc::PIC_, std::nullopt,
                                                                CodeGenOptLevel::Aggressive));
  if (!tm) throw ir::CompileError(fmt::format("codegen: cannot create a target machine for cpu '{}'", cpu));
  cpuOut = cpu;
  return tm;
}

}  // namespace

void initNativeTarget() { initLLVM(); }

std::string hostCpuName() { return std::string(sys::getHostCPUName()); }

std::string targetDescription(const TargetOptions& target) {
  auto [cpu, features] = cpuAndFeatures(target);
  return fmt::format("{} {} {} llvm {}", sys::getProcessTriple(), cpu, features, LLVM_VERSION_STRING);
}

namespace detail {

// ir/Math.h's backend over LLVM values: kiln's exp/tanh/sigmoid as inline
// arithmetic, operation for operation what the interpreter computes.
struct IRMath {
  IRBuilder<>& b;
  Type *f32, *i32;
  using F = Value*;
  using M = Value*;
  F c(float v) { return ConstantFP::get(f32, v); }
  F add(F x, F y) { return b.CreateFAdd(x, y); }
  F sub(F x, F y) { return b.CreateFSub(x, y); }
  F mul(F x, F y) { return b.CreateFMul(x, y); }
  F div(F x, F y) { return b.CreateFDiv(x, y); }
  F fma(F x, F y, F z) { return b.CreateIntrinsic(Intrinsic::fma, {f32}, {x, y, z}); }
  F rint(F x) { return b.CreateUnaryIntrinsic(Intrinsic::nearbyint, x); }
  F abs(F x) { return b.CreateUnaryIntrinsic(Intrinsic::fabs, x); }
  F copySign(F m, F s) { return b.CreateBinaryIntrinsic(Intrinsic::copysign, m, s); }
  M lt(F x, F y) { return b.CreateFCmpOLT(x, y); }
  M gt(F x, F y) { return b.CreateFCmpOGT(x, y); }
  F select(M m, F x, F y) { return b.CreateSelect(m, x, y); }
  F scale2(F p, F n) {
    Value* ni = b.CreateFPToSI(b.CreateSelect(b.CreateFCmpUNO(n, n), c(0.0f), n), i32);
    Value* n1 = b.CreateAShr(ni, 1);
    Value* n2 = b.CreateSub(ni, n1);
    auto pow2 = [&](Value* k) { return b.CreateBitCast(b.CreateShl(b.CreateAdd(k, b.getInt32(127)), 23), f32); };
    return b.CreateFMul(b.CreateFMul(p, pow2(n1)), pow2(n2));
  }
};

Value* Emitter::kexp(Value* x) {
  IRMath m{b_, f32_, i32_};
  return math::exp(m, x);
}

std::unique_ptr<Module> Emitter::run() {
  // one function per structural key (lower/KernelKey.h): kernels that differ
  // only in their buffers (an unrolled recurrence's steps) share it
  std::vector<Function*> kernels(static_cast<size_t>(g_.size()), nullptr);
  std::map<std::string, Function*> byKey;
  for (const lower::FunctionPlan& fp : plan_.functions)
    for (size_t ki = 0; ki < fp.kernels.size(); ++ki) {
      const lower::Kernel& k = fp.kernels[ki];
      if (k.loopMembers > 1) {  // a fused loop: one function over its distinct buffers
        LoopCall& call = loops_[{&fp, ki}];
        std::vector<const lower::Kernel*> members;
        std::vector<std::vector<unsigned>> argOf;
        std::string key = "loop";
        auto argAt = [&](ValueId v) {
          int64_t off = plan_.offsetOf.at(v);
          auto it = std::find(call.offsets.begin(), call.offsets.end(), off);
          if (it == call.offsets.end()) {
            call.offsets.push_back(off);
            return static_cast<unsigned>(call.offsets.size() - 1);
          }
          return static_cast<unsigned>(it - call.offsets.begin());
        };
        for (size_t m = 0; m < static_cast<size_t>(k.loopMembers); ++m) {
          const lower::Kernel& mk = fp.kernels[ki + m];
          members.push_back(&mk);
          argOf.push_back({argAt(mk.value)});
          for (ValueId o : mk.inputs) argOf.back().push_back(argAt(o));
          key += fmt::format("|{}|{}|{}", lower::kernelKey(g_, plan_.inlined, mk), fmt::join(argOf.back(), ","),
                             mk.store ? 1 : 0);
        }
        Function*& f = byKey[key];
        if (!f) f = emitLoopGroup(members, argOf, static_cast<unsigned>(call.offsets.size()));
        call.fn = f;
        continue;
      }
      if (k.loopMembers == 0 || kernels[k.value]) continue;
      Function*& f = byKey[lower::kernelKey(g_, plan_.inlined, k)];
      if (!f) f = emitKernel(k);
      kernels[k.value] = f;
    }
  for (const lower::FunctionPlan& fp : plan_.functions) emitEntry(fp, kernels);
  std::string err;
  raw_string_ostream os(err);
  if (verifyModule(*m_, &os)) throw ir::CompileError("codegen: invalid LLVM IR (internal error): " + os.str());
  return std::move(m_);
}

// Scalar emission for f32 operands: one switch keyed by the op table,
// mirroring interp::scalarF.
Value* Emitter::scalarF(const ir::Node& n, Value* a, Value* bv) {
  auto alpha = [&] { return cf(static_cast<float>(n.attrs.getFloat("alpha"))); };
  switch (n.op) {
    case OpKind::Neg: return b_.CreateFNeg(a);
    case OpKind::Exp: return kexp(a);
    case OpKind::Log: return intrinsic(Intrinsic::log, a);
    case OpKind::Log1p: return callMath("log1pf", a);
    case OpKind::Sqrt: return intrinsic(Intrinsic::sqrt, a);
    case OpKind::Rsqrt: return b_.CreateFDiv(cf(1.0), intrinsic(Intrinsic::sqrt, a));
    case OpKind::Abs: return intrinsic(Intrinsic::fabs, a);
    case OpKind::Sign:
      return b_.CreateSelect(b_.CreateFCmpOGT(a, cf(0.0)), cf(1.0),
                             b_.CreateSelect(b_.CreateFCmpOLT(a, cf(0.0)), cf(-1.0), a));
    case OpKind::Relu: return b_.CreateSelect(b_.CreateFCmpOLT(a, cf(0.0)), cf(0.0), a);
    case OpKind::LeakyRelu: return b_.CreateSelect(b_.CreateFCmpOGT(a, cf(0.0)), a, b_.CreateFMul(alpha(), a));
    case OpKind::Elu:
      return b_.CreateSelect(b_.CreateFCmpOGT(a, cf(0.0)), a, b_.CreateFMul(alpha(), callMath("expm1f", a)));
    case OpKind::Tanh: {
      IRMath m{b_, f32_, i32_};
      return math::tanh(m, a);
    }
    case OpKind::Sigmoid: {
      IRMath m{b_, f32_, i32_};
      return math::sigmoid(m, a);
    }
    case OpKind::Softplus:
      return b_.CreateSelect(b_.CreateFCmpOGT(a, cf(20.0)), a, callMath("log1pf", kexp(a)));
    case OpKind::Erf: return callMath("erff", a);
    case OpKind::Sin: return callMath("sinf", a);
    case OpKind::Cos: return callMath("cosf", a);
    case OpKind::Step: return mask(b_.CreateFCmpOGT(a, cf(0.0)));
    case OpKind::Add: return b_.CreateFAdd(a, bv);
    case OpKind::Sub: return b_.CreateFSub(a, bv);
    case OpKind::Mul: return b_.CreateFMul(a, bv);
    case OpKind::Div: return b_.CreateFDiv(a, bv);
    case OpKind::Maximum: return fmax(a, bv);
    case OpKind::Minimum: return fmin(a, bv);
    case OpKind::Pow: return callMath2("powf", a, bv);
    case OpKind::Less: return mask(b_.CreateFCmpOLT(a, bv));
    case OpKind::LessEq: return mask(b_.CreateFCmpOLE(a, bv));
    case OpKind::Greater: return mask(b_.CreateFCmpOGT(a, bv));
    case OpKind::GreaterEq: return mask(b_.CreateFCmpOGE(a, bv));
    case OpKind::Equal: return mask(b_.CreateFCmpOEQ(a, bv));
    case OpKind::NotEqual: return mask(b_.CreateFCmpUNE(a, bv));
    default: break;
  }
  throw ir::CompileError(fmt::format("codegen: {} is not a scalar f32 op", ir::opName(n.op)));
}

// i32 operands, mirroring interp::scalarI (wrapping arithmetic).
Value* Emitter::scalarI(const ir::Node& n, Value* a, Value* bv) {
  switch (n.op) {
    case OpKind::Neg: return b_.CreateNeg(a);
    case OpKind::Abs: return b_.CreateSelect(b_.CreateICmpSLT(a, b_.getInt32(0)), b_.CreateNeg(a), a);
    case OpKind::Add: return b_.CreateAdd(a, bv);
    case OpKind::Sub: return b_.CreateSub(a, bv);
    case OpKind::Mul: return b_.CreateMul(a, bv);
    case OpKind::Maximum: return b_.CreateSelect(b_.CreateICmpSGT(a, bv), a, bv);
    case OpKind::Minimum: return b_.CreateSelect(b_.CreateICmpSLT(a, bv), a, bv);
    case OpKind::Less: return mask(b_.CreateICmpSLT(a, bv));
    case OpKind::LessEq: return mask(b_.CreateICmpSLE(a, bv));
    case OpKind::Greater: return mask(b_.CreateICmpSGT(a, bv));
    case OpKind::GreaterEq: return mask(b_.CreateICmpSGE(a, bv));
    case OpKind::Equal: return mask(b_.CreateICmpEQ(a, bv));
    case OpKind::NotEqual: return mask(b_.CreateICmpNE(a, bv));
    default: break;
  }
  throw ir::CompileError(fmt::format("codegen: {} has no i32 form", ir::opName(n.op)));
}

// An elementwise op applied to its operands' element values.
Value* Emitter::mapValues(const ir::Node& n, const std::vector<Value*>& v) {
  const ir::TensorType& t0 = g_.type(n.operands[0]);
  if (n.op == OpKind::Cast) {
    if (t0.dtype == n.type.dtype) return v[0];
    if (n.type.dtype == ir::DType::I32)
      return b_.CreateIntrinsic(Intrinsic::fptosi_sat, {i32_, f32_}, {v[0]});
    return b_.CreateSIToFP(v[0], f32_);
  }
  if (n.op == OpKind::Select) return b_.CreateSelect(b_.CreateFCmpUNE(v[0], cf(0.0)), v[1], v[2]);
  Value* bv = v.size() > 1 ? v[1] : nullptr;
  return t0.dtype == ir::DType::F32 ? scalarF(n, v[0], bv) : scalarI(n, v[0], bv);
}

Function* Emitter::emitKernel(const lower::Kernel& k) {
  ValueId v = k.value;
  const ir::Node& n = g_.node(v);
  // (out, inputs..., scratch): scratch only for kernels that need it
  std::vector<Type*> params(k.inputs.size() + (k.scratchBytes > 0 ? 2 : 1), ptr_);
  Function* f = Function::Create(FunctionType::get(b_.getVoidTy(), params, false), Function::InternalLinkage,
                                 fmt::format("k{}_{}", v, ir::opName(n.op)), m_.get());
  setAttrs(f);
  // kept out of line: inlining every call would re-expand the shared bodies
  // into the entry point, one copy per call, which is what sharing avoids
  f->addFnAttr(Attribute::NoInline);
  markBufferArgs(f, static_cast<unsigned>(params.size()));
  BasicBlock* entry = BasicBlock::Create(ctx_, "entry", f);
  b_.SetInsertPoint(entry);
  Value* out = f->getArg(0);
  std::vector<Value*> in;
  leaf_.clear();
  for (size_t i = 0; i < k.inputs.size(); ++i) {
    in.push_back(f->getArg(static_cast<unsigned>(i + 1)));
    leaf_[k.inputs[i]] = in.back();
  }
  // an in-place update reads the old value through the output pointer (the
  // same bytes), so no two noalias arguments are used on the same memory
  if (k.inPlaceInput >= 0) leaf_[k.inputs[static_cast<size_t>(k.inPlaceInput)]] = out;
  scratch_ = k.scratchBytes > 0 ? f->getArg(static_cast<unsigned>(k.inputs.size() + 1)) : nullptr;
  if (ValueId mm = lower::epilogueProduct(g_, k); mm >= 0) emitEpilogueKernel(k, mm, f);
  else if (parallelLogSoftmax(k)) emitParallelLogSoftmax(k, f);
  else if (int64_t dim = parallelReduceDim(k); dim >= 0) emitParallelReduce(k, f, dim);
  else if (bool rows = parallelRows(k); rows || parallelElementwise(k)) {
    std::vector<unsigned> args{0};
    for (size_t i = 0; i < k.inputs.size(); ++i)
      args.push_back(static_cast<int32_t>(i) == k.inPlaceInput ? 0u : static_cast<unsigned>(i + 1));
    emitFlatLoop({&k}, {args}, static_cast<unsigned>(k.inputs.size() + 1), f->getName().str(), f, rows);
  } else if (passes::evaluatesOperandsByIndex(n.op)) emitGeneratorRoot(k, out);
  else emitBody(n, out, in);
  b_.CreateRetVoid();
  return f;
}

std::vector<Value*> Emitter::multiOf(const Index& ix, const ir::Shape& shape) {
  if (!ix.multi.empty() || shape.empty()) return ix.multi;
  std::vector<Value*> m(shape.size());
  Value* rest = ix.flat;
  for (size_t d = shape.size(); d-- > 0;) {
    if (d == 0) {
      m[d] = rest;
      break;
    }
    m[d] = b_.CreateURem(rest, c64(shape[d]));
    rest = b_.CreateUDiv(rest, c64(shape[d]));
  }
  return m;
}

Value* Emitter::flatOf(const Index& ix, const ir::Shape& shape) {
  if (ix.flat) return ix.flat;
  return linear(ix.multi, ir::stridesOf(shape));
}

Value* Emitter::gen(ValueId v, const Index& ix) {
  const ir::Node& n = g_.node(v);
  if (v == epilogue_.product) return loadF(epilogue_.c, flatOf(ix, n.type.shape));  // C, as the GEMM left it
  if (!plan_.inlined[v]) {
    if (auto lv = loopVals_.find(v); lv != loopVals_.end()) return lv->second;  // computed earlier in this element
    auto it = leaf_.find(v);
    if (it == leaf_.end()) throw ir::CompileError(fmt::format("codegen: %{} is neither fused nor an input", v));
    Type* t = elemType(n.type);
    return b_.CreateLoad(t, gep(t, it->second, flatOf(ix, n.type.shape)));
  }
  switch (ir::opFamily(n.op)) {
    case FamilyKind::Fill: {
      double val = n.attrs.getFloat("value");
      return n.type.dtype == ir::DType::F32 ? cf(val) : static_cast<Value*>(b_.getInt32(static_cast<int32_t>(val)));
    }
    case FamilyKind::Map: {
      std::vector<Value*> vals;
      for (ValueId o : n.operands) vals.push_back(gen(o, ix));
      return mapValues(n, vals);
    }
    case FamilyKind::Copy: return gen(n.operands[0], Index{{}, flatOf(ix, n.type.shape)});
    case FamilyKind::Broadcast:
    case FamilyKind::Transpose: return gen(n.operands[0], operandIndex(n, multiOf(ix, n.type.shape)));
    case FamilyKind::Gather: {
      // table row idx[p] at r (p: the position over idx's dims, r: the rest),
      // 0 for an index out of range, as the gather kernel leaves it
      std::vector<Value*> m = multiOf(ix, n.type.shape);
      const ir::TensorType& table = g_.type(n.operands[0]);
      const ir::Shape& idxShape = g_.type(n.operands[1]).shape;
      const int64_t rows = table.shape[0], rowSize = table.numElements() / rows;
      std::vector<Value*> pm(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(idxShape.size()));
      std::vector<Value*> rm(m.begin() + static_cast<std::ptrdiff_t>(idxShape.size()), m.end());
      ir::Shape rest(n.type.shape.begin() + static_cast<std::ptrdiff_t>(idxShape.size()), n.type.shape.end());
      Value* v = b_.CreateSExt(gen(n.operands[1], Index{pm, nullptr}), i64_);
      Value* ok = inRange(v, rows);
      Value* row = b_.CreateSelect(ok, v, c64(0));  // a readable row either way
      Index at{{}, add(mulc(row, rowSize), rest.empty() ? c64(0) : linear(rm, ir::stridesOf(rest)))};
      Value* x = gen(n.operands[0], at);
      return b_.CreateSelect(ok, x, Constant::getNullValue(x->getType()));
    }
    case FamilyKind::ScatterAlong: {
      // one index per slice (passes/Fusion.h): src's element where idx
      // names this position along the axis, else 0; 0 + src as the scatter
      // adds it to its zeros (a -0 becomes +0), out-of-range indices nothing
      std::vector<Value*> m = multiOf(ix, n.type.shape);
      const size_t axis = static_cast<size_t>(n.attrs.getInt("axis"));
      Value* at = m[axis];
      m[axis] = c64(0);
      Value* idx = b_.CreateSExt(gen(n.operands[1], Index{m, nullptr}), i64_);
      Value* src = gen(n.operands[0], Index{m, nullptr});
      return b_.CreateSelect(b_.CreateICmpEQ(idx, at), b_.CreateFAdd(cf(0.0), src), cf(0.0));
    }
    default: break;
  }
  throw ir::CompileError(fmt::format("codegen: %{} ({}) cannot be fused", v, ir::opName(n.op)));
}

// The operand index a broadcast or transpose result index reads.
Emitter::Index Emitter::operandIndex(const ir::Node& n, const std::vector<Value*>& m) {
  const ir::Shape& in = g_.type(n.operands[0]).shape;
  Index r;
  r.multi.assign(in.size(), nullptr);
  if (n.op == OpKind::Transpose) {
    const auto& perm = n.attrs.getInts("perm");
    for (size_t d = 0; d < perm.size(); ++d) r.multi[perm[d]] = m[d];
    return r;
  }
  size_t lead = m.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d) r.multi[d] = in[d] == 1 ? c64(0) : m[d + lead];
  return r;
}

void Emitter::emitGeneratorRoot(const lower::Kernel& k, Value* out) {
  const ir::Node& n = g_.node(k.value);
  Type* ot = elemType(n.type);
  bool needMulti = lower::needsMultiIndex(g_, k);
  switch (ir::opFamily(n.op)) {
    case FamilyKind::Map:
      if (!needMulti) {
        loop(n.type.numElements(), [&](Value* i) { b_.CreateStore(genMap(n, Index{{}, i}), gep(ot, out, i)); });
        return;
      }
      nest(n.type.shape, [&](const std::vector<Value*>& idx) {
        Value* flat = linear(idx, ir::stridesOf(n.type.shape));
        b_.CreateStore(genMap(n, Index{idx, flat}), gep(ot, out, flat));
      });
      return;
    case FamilyKind::Copy: {
      ValueId o = n.operands[0];
      if (!plan_.inlined[o]) {
        if (leaf_.at(o) == out) return;  // an in-place update to its own reshape: nothing moves
        b_.CreateMemCpy(out, Align(kAlign), leaf_.at(o), Align(kAlign), n.type.byteSize());
        return;
      }
      loop(n.type.numElements(), [&](Value* i) { b_.CreateStore(gen(o, Index{{}, i}), gep(ot, out, i)); });
      return;
    }
    case FamilyKind::Broadcast:
    case FamilyKind::Transpose:
      // a plain f32 matrix transpose of a buffer: register-transposed blocks
      // (the element loop below reads one column at a time, by gathers)
      if (n.op == OpKind::Transpose && n.type.dtype == ir::DType::F32 && n.type.rank() == 2 &&
          !plan_.inlined[n.operands[0]] && n.attrs.getInts("perm") == std::vector<int64_t>{1, 0}) {
        transposeBlocks(leaf_.at(n.operands[0]), out, n.type.shape[1], n.type.shape[0]);
        return;
      }
      nest(n.type.shape, [&](const std::vector<Value*>& idx) {
        b_.CreateStore(gen(n.operands[0], operandIndex(n, idx)), gep(ot, out, linear(idx, ir::stridesOf(n.type.shape))));
      });
      return;
    case FamilyKind::Reduce:
      emitReduceRange(n, out, 0, c64(0), c64(g_.type(n.operands[0]).shape.empty() ? 1 : g_.type(n.operands[0]).shape[0]));
      return;
    default: break;
  }
  throw ir::CompileError(fmt::format("codegen: {} is not a generator root", ir::opName(n.op)));
}

// A reduction over the inputs whose index along `dim` lies in [lo, hi):
// their outputs are set to the identity, then every input is added (or
// max/min-ed) into its output in row-major order. With dim 0 and the whole
// extent this is the whole reduction; a kept dim split into ranges gives
// each range's outputs exactly the operations of the whole.
void Emitter::emitReduceRange(const ir::Node& n, Value* out, size_t dim, Value* lo, Value* hi) {
  const ir::TensorType& t = g_.type(n.operands[0]);
  bool isMax = n.op == OpKind::ReduceMax, isMin = n.op == OpKind::ReduceMin;
  const auto& axes = n.attrs.getInts("axes");
  ir::Shape keep = t.shape;
  for (int64_t ax : axes) keep[ax] = 1;
  std::vector<int64_t> os = ir::stridesOf(keep), is = ir::stridesOf(t.shape);
  for (int64_t ax : axes) os[ax] = 0;
  // nested loops over `shape`, dim `dim` over [lo, hi) unless it has one
  // element there (a reduced dim in the outputs' shape; only a kept dim is
  // ever split, so [lo, hi) is then the whole of it)
  auto rangeNest = [&](const ir::Shape& shape, const std::function<void(const std::vector<Value*>&)>& body) {
    std::vector<Value*> idx;
    std::function<void(size_t)> rec = [&](size_t d) {
      if (d == shape.size()) {
        body(idx);
        return;
      }
      auto inner = [&](Value* i) {
        idx.push_back(i);
        rec(d + 1);
        idx.pop_back();
      };
      if (d == dim && shape[d] > 1) loopV0(b_.CreateSub(hi, lo), [&](Value* j) { inner(add(lo, j)); });
      else loop(shape[d], inner);
    };
    rec(0);
  };
  rangeNest(keep, [&](const std::vector<Value*>& idx) {
    storeF(cf(isMax ? -INFINITY : isMin ? INFINITY : 0.0), out, linear(idx, os));
  });
  rangeNest(t.shape, [&](const std::vector<Value*>& idx) {
    Value* oo = linear(idx, os);
    Value* x = gen(n.operands[0], Index{idx, linear(idx, is)});
    Value* cur = loadF(out, oo);
    storeF(isMax ? fmax(x, cur) : isMin ? fmin(x, cur) : b_.CreateFAdd(cur, x), out, oo);
  });
}

Value* Emitter::genMap(const ir::Node& n, const Index& ix) {
  std::vector<Value*> vals;
  for (ValueId o : n.operands) vals.push_back(gen(o, ix));
  return mapValues(n, vals);
}

void Emitter::emitBody(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
  int64_t count = n.type.numElements();
  switch (ir::opFamily(n.op)) {
    case FamilyKind::Source: throw ir::CompileError("codegen: sources have no kernel");
    case FamilyKind::Fill: {
      double val = n.attrs.getFloat("value");
      bool isF = n.type.dtype == ir::DType::F32;
      Value* c = isF ? cf(val) : static_cast<Value*>(b_.getInt32(static_cast<int32_t>(val)));
      loop(count, [&](Value* i) { b_.CreateStore(c, gep(isF ? f32_ : i32_, out, i)); });
      return;
    }
    case FamilyKind::Map:
    case FamilyKind::Reduce:
    case FamilyKind::Copy:
    case FamilyKind::Transpose:
    case FamilyKind::Broadcast:
      throw ir::CompileError("codegen: generator roots are emitted by emitGeneratorRoot");
    case FamilyKind::ArgReduce: {
      const ir::TensorType& t = g_.type(n.operands[0]);
      int64_t outer, len, inner;
      ir::splitAxis(t.shape, n.attrs.getInt("axis"), outer, len, inner);
      Value* best = alloca(i64_);
      nest({outer, inner}, [&](const std::vector<Value*>& oi) {
        Value* base = b_.CreateAdd(b_.CreateMul(oi[0], b_.getInt64(len * inner)), oi[1]);
        b_.CreateStore(b_.getInt64(0), best);
        if (len > 1)
          loop(len - 1, [&](Value* k0) {
            Value* k = b_.CreateAdd(k0, b_.getInt64(1));
            Value* x = loadF(in[0], b_.CreateAdd(base, b_.CreateMul(k, b_.getInt64(inner))));
            Value* bi = b_.CreateLoad(i64_, best);
            Value* bx = loadF(in[0], b_.CreateAdd(base, b_.CreateMul(bi, b_.getInt64(inner))));
            Value* better = n.op == OpKind::Argmax ? b_.CreateFCmpOGT(x, bx) : b_.CreateFCmpOLT(x, bx);
            b_.CreateStore(b_.CreateSelect(better, k, bi), best);
          });
        Value* o = b_.CreateAdd(b_.CreateMul(oi[0], b_.getInt64(inner)), oi[1]);
        b_.CreateStore(b_.CreateTrunc(b_.CreateLoad(i64_, best), i32_), gep(i32_, out, o));
      });
      return;
    }
    case FamilyKind::MatMul: emitMatMul(n, out, in); return;
    case FamilyKind::Concat: emitConcat(n, out, in); return;
    case FamilyKind::Slice: emitSlice(n, out, in); return;
    case FamilyKind::Pad: emitPad(n, out, in); return;
    case FamilyKind::Gather: emitGather(n, out, in); return;
    case FamilyKind::ScatterAdd: emitScatterAdd(n, out, in); return;
    case FamilyKind::TakeAlong:
    case FamilyKind::ScatterAlong: emitAlong(n, out, in); return;
    case FamilyKind::Conv2d:
    case FamilyKind::Conv2dBwdInput:
    case FamilyKind::Conv2dBwdFilter: emitConv(n, out, in); return;
    case FamilyKind::MaxPool2d:
    case FamilyKind::MaxPool2dGrad:
    case FamilyKind::AvgPool2d:
    case FamilyKind::AvgPool2dGrad: emitPool(n, out, in); return;
    case FamilyKind::Random: emitRandom(n, out, in); return;
    case FamilyKind::LogSoftmax: {
      int64_t outer, len, inner;
      ir::splitAxis(n.type.shape, n.attrs.getInt("axis"), outer, len, inner);
      emitLogSoftmaxRows(n, out, in[0], c64(0), c64(outer));
      return;
    }
    case FamilyKind::OneHot: {
      int64_t depth = n.attrs.getInt("depth");
      int64_t rows = g_.type(n.operands[0]).numElements();
      nest({rows, depth}, [&](const std::vector<Value*>& rc) {
        Value* label = b_.CreateSExt(b_.CreateLoad(i32_, gep(i32_, in[0], rc[0])), i64_);
        Value* hit = b_.CreateICmpEQ(label, rc[1]);
        storeF(b_.CreateSelect(hit, cf(1.0), cf(0.0)), out,
               b_.CreateAdd(b_.CreateMul(rc[0], b_.getInt64(depth)), rc[1]));
      });
      return;
    }
  }
}

// log_softmax over its slices lo .. hi (slice = an (outer, inner) pair's
// run along the axis, outer in [lo, hi)): per slice the max, the
// exponentials, their sum in order, then x - max - log(sum)
void Emitter::emitLogSoftmaxRows(const ir::Node& n, Value* out, Value* in, Value* lo, Value* hi) {
  int64_t outer, len, inner;
  ir::splitAxis(n.type.shape, n.attrs.getInt("axis"), outer, len, inner);
  Value* mx = alloca(f32_);
  Value* sm = alloca(f32_);
  if (inner == 1 && len >= 2) {
    // Slices along the last axis, vecWidth_ of them at once: lane r runs
    // row o0 + r's max and its sum of exponentials as a chain over k in
    // order, the interpreter's order, reading column k of the rows with a
    // gather. One row at a time those chains were scalar (~8 cycles per
    // element: the char-RNN's [2048, 65] logits spent more time in them
    // than in the exponentials). The exponentials and the outputs stay
    // vectorized along each row. Rows past the last full group go the
    // one-row way below.
    const int64_t VW = vecWidth_;
    auto* vt = FixedVectorType::get(f32_, static_cast<unsigned>(VW));
    std::vector<Constant*> laneC;
    for (int64_t r = 0; r < VW; ++r) laneC.push_back(b_.getInt64(static_cast<uint64_t>(r * len)));
    Value* laneOff = ConstantVector::get(laneC);
    Value* allOn = Constant::getAllOnesValue(FixedVectorType::get(b_.getInt1Ty(), static_cast<unsigned>(VW)));
    Value* vmx = alloca(vt);
    Value* vsm = alloca(vt);
    Value* groups = b_.CreateUDiv(b_.CreateSub(hi, lo), c64(VW));
    loopV0(groups, [&](Value* gi) {
      Value* o0 = add(lo, b_.CreateMul(gi, c64(VW)));
      Value* rowAt = b_.CreateAdd(b_.CreateVectorSplat(static_cast<unsigned>(VW), b_.CreateMul(o0, c64(len))), laneOff);
      auto column = [&](Value* buf, Value* k) {  // element k of each lane's row
        Value* idx = b_.CreateAdd(rowAt, b_.CreateVectorSplat(static_cast<unsigned>(VW), k));
        return b_.CreateMaskedGather(vt, b_.CreateGEP(f32_, buf, idx), Align(4), allOn);
      };
      b_.CreateStore(b_.CreateVectorSplat(static_cast<unsigned>(VW), cf(-INFINITY)), vmx);
      loop(len, [&](Value* k) {
        Value* x = column(in, k);
        Value* m = b_.CreateLoad(vt, vmx);
        b_.CreateStore(b_.CreateSelect(b_.CreateFCmpOGT(x, m), x, m), vmx);
      });
      Value* m = b_.CreateLoad(vt, vmx);
      loop(VW, [&](Value* r) {
        Value* base = b_.CreateMul(add(o0, r), c64(len));
        Value* mr = b_.CreateExtractElement(m, r);
        loop(len, [&](Value* k) { storeF(kexp(b_.CreateFSub(loadF(in, add(base, k)), mr)), out, add(base, k)); });
      });
      b_.CreateStore(Constant::getNullValue(vt), vsm);
      loop(len, [&](Value* k) { b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(vt, vsm), column(out, k)), vsm); });
      Value* ls = intrinsic(Intrinsic::log, b_.CreateLoad(vt, vsm));
      loop(VW, [&](Value* r) {
        Value* base = b_.CreateMul(add(o0, r), c64(len));
        Value* mr = b_.CreateExtractElement(m, r);
        Value* lr = b_.CreateExtractElement(ls, r);
        loop(len, [&](Value* k) {
          storeF(b_.CreateFSub(b_.CreateFSub(loadF(in, add(base, k)), mr), lr), out, add(base, k));
        });
      });
    });
    lo = add(lo, b_.CreateMul(groups, c64(VW)));
  }
  loopV0(b_.CreateSub(hi, lo), [&](Value* j) {
    Value* o = add(lo, j);
    loop(inner, [&](Value* i) {
      Value* base = b_.CreateAdd(b_.CreateMul(o, b_.getInt64(len * inner)), i);
      auto at = [&](Value* k) { return b_.CreateAdd(base, b_.CreateMul(k, b_.getInt64(inner))); };
      b_.CreateStore(cf(-INFINITY), mx);
      loop(len, [&](Value* k) {
        Value* x = loadF(in, at(k));
        Value* m = b_.CreateLoad(f32_, mx);
        b_.CreateStore(b_.CreateSelect(b_.CreateFCmpOGT(x, m), x, m), mx);
      });
      b_.CreateStore(cf(0.0), sm);
      Value* m = b_.CreateLoad(f32_, mx);
      // the exponentials first, into the output (a loop with no carried
      // sum, so it vectorizes), then their sum in order: the same
      // operations in the same order as one fused loop
      loop(len, [&](Value* k) { storeF(kexp(b_.CreateFSub(loadF(in, at(k)), m)), out, at(k)); });
      loop(len, [&](Value* k) { b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f32_, sm), loadF(out, at(k))), sm); });
      Value* ls = intrinsic(Intrinsic::log, b_.CreateLoad(f32_, sm));
      loop(len, [&](Value* k) { storeF(b_.CreateFSub(b_.CreateFSub(loadF(in, at(k)), m), ls), out, at(k)); });
    });
  });
}

// The exported entry point sets the floating-point mode compiled code runs
// in, subnormals flushed to zero as results and inputs (MXCSR FTZ and DAZ;
// rt/FloatMode.h says why), calls the body, and restores the caller's mode
// on every return. The runtime pool's workers take the mode from the caller
// for each call, and the interpreter runs in it too.
void Emitter::emitEntry(const lower::FunctionPlan& fp, const std::vector<Function*>& kernels) {
  Function* f = Function::Create(FunctionType::get(i32_, {ptr_}, false), Function::InternalLinkage,
                                 entrySymbol(prefix_, fp.name) + ".body", m_.get());
  setAttrs(f);
  {
    Function* outer = Function::Create(FunctionType::get(i32_, {ptr_}, false), Function::ExternalLinkage,
                                       entrySymbol(prefix_, fp.name), m_.get());
    setAttrs(outer);
    IRBuilderBase::InsertPointGuard guard(b_);
    b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", outer));
    const bool x86 = Triple(sys::getProcessTriple()).isX86();
    Value* saved = nullptr;
    if (x86) {
      saved = b_.CreateAlloca(i32_);
      Value* mode = b_.CreateAlloca(i32_);
      b_.CreateIntrinsic(Intrinsic::x86_sse_stmxcsr, {}, {saved});
      b_.CreateStore(b_.CreateOr(b_.CreateLoad(i32_, saved), b_.getInt32(0x8040)), mode);  // FTZ | DAZ
      b_.CreateIntrinsic(Intrinsic::x86_sse_ldmxcsr, {}, {mode});
    }
    Value* rc = b_.CreateCall(f, {outer->getArg(0)});
    if (x86) b_.CreateIntrinsic(Intrinsic::x86_sse_ldmxcsr, {}, {saved});
    b_.CreateRet(rc);
  }
  BasicBlock* entry = BasicBlock::Create(ctx_, "entry", f);
  b_.SetInsertPoint(entry);
  Value* base = f->getArg(0);
  if (fp.callCountOffset >= 0) {  // checked mode: count this call first (it is the step number in messages)
    Value* count = b_.CreateInBoundsGEP(b_.getInt8Ty(), base, b_.getInt64(fp.callCountOffset));
    b_.CreateStore(b_.CreateAdd(b_.CreateLoad(i64_, count), b_.getInt64(1)), count);
  }
  auto bufPtr = [&](ValueId v) {
    int64_t off = plan_.offsetOf.at(v);
    if (off < 0) throw ir::CompileError(fmt::format("codegen: %{} has no buffer", v));
    return b_.CreateInBoundsGEP(b_.getInt8Ty(), base, b_.getInt64(off));
  };
  // index inputs: every element in [0, bound), else record {check, value,
  // position} in the error slot and return check + 1 before any kernel runs
  Value* err = b_.CreateInBoundsGEP(b_.getInt8Ty(), base, b_.getInt64(plan_.errorOffset));
  for (size_t c = 0; c < fp.checks.size(); ++c) {
    const lower::IndexCheck& ck = fp.checks[c];
    Value* idx = bufPtr(ck.input);
    loop(g_.type(ck.input).numElements(), [&](Value* i) {
      Value* v = b_.CreateLoad(i32_, gep(i32_, idx, i));
      Value* bad = b_.CreateICmpUGE(b_.CreateZExt(v, i64_), c64(ck.bound));
      BasicBlock* fail = BasicBlock::Create(ctx_, "index.fail", f);
      BasicBlock* ok = BasicBlock::Create(ctx_, "index.ok", f);
      b_.CreateCondBr(bad, fail, ok);
      b_.SetInsertPoint(fail);
      b_.CreateStore(b_.getInt32(static_cast<uint32_t>(c)), err);
      b_.CreateStore(v, b_.CreateInBoundsGEP(b_.getInt8Ty(), err, b_.getInt64(4)));
      b_.CreateStore(i, b_.CreateInBoundsGEP(b_.getInt8Ty(), err, b_.getInt64(8)));
      b_.CreateRet(b_.getInt32(static_cast<uint32_t>(c + 1)));
      b_.SetInsertPoint(ok);
    });
  }
  // checked mode: f32 inputs, then each kernel's output right after it
  // runs; the first non-finite element stops the call before the copies
  size_t nextCheck = 0;
  auto finiteChecks = [&](int32_t afterKernel) {
    for (; nextCheck < fp.finiteChecks.size() && fp.finiteChecks[nextCheck].afterKernel == afterKernel; ++nextCheck) {
      ValueId v = fp.finiteChecks[nextCheck].value;
      emitFiniteCheck(nextCheck, bufPtr(v), g_.type(v).numElements(), err);
    }
  };
  finiteChecks(-1);
  for (size_t ki = 0; ki < fp.kernels.size(); ++ki) {
    const lower::Kernel& k = fp.kernels[ki];
    if (k.loopMembers > 1) {  // a fused loop (never in checked mode, so no checks in between)
      const LoopCall& call = loops_.at({&fp, ki});
      std::vector<Value*> args;
      for (int64_t off : call.offsets) args.push_back(b_.CreateInBoundsGEP(b_.getInt8Ty(), base, b_.getInt64(off)));
      b_.CreateCall(call.fn, args);
      ki += static_cast<size_t>(k.loopMembers) - 1;
      continue;
    }
    std::vector<Value*> args{bufPtr(k.value)};
    for (ValueId o : k.inputs) args.push_back(bufPtr(o));
    if (k.scratchBytes > 0) args.push_back(b_.CreateInBoundsGEP(b_.getInt8Ty(), base, b_.getInt64(plan_.scratchOffset)));
    b_.CreateCall(kernels[k.value], args);
    finiteChecks(static_cast<int32_t>(ki));
  }
  auto at = [&](int64_t off) { return b_.CreateInBoundsGEP(b_.getInt8Ty(), base, b_.getInt64(off)); };
  for (const lower::Copy& c : fp.copies)
    b_.CreateMemCpy(at(c.dstOffset), Align(kAlign), at(c.srcOffset), Align(kAlign), c.bytes);
  b_.CreateRet(b_.getInt32(0));
}

}  // namespace detail

namespace {

using detail::Emitter;

std::string printModule(const Module& m) {
  std::string s;
  raw_string_ostream os(s);
  m.print(os, nullptr);
  return os.str();
}

void optimize(Module& m, TargetMachine& tm) {
  LoopAnalysisManager lam;
  FunctionAnalysisManager fam;
  CGSCCAnalysisManager cgam;
  ModuleAnalysisManager mam;
  PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(OptimizationLevel::O2);
  mpm.run(m, mam);
}

std::vector<char> emitFile(Module& m, TargetMachine& tm, CodeGenFileType type) {
  SmallVector<char, 0> buf;
  raw_svector_ostream os(buf);
  legacy::PassManager pm;
  if (tm.addPassesToEmitFile(pm, os, nullptr, type))
    throw ir::CompileError("codegen: the target cannot emit this file type");
  pm.run(m);
  return std::vector<char>(buf.begin(), buf.end());
}

}  // namespace

CodegenResult generate(const ir::Graph& g, const lower::ModulePlan& plan, std::string_view prefix,
                       const TargetOptions& target, bool wantAssembly) {
  CodegenResult r;
  std::unique_ptr<TargetMachine> tm = makeTargetMachine(target, r.cpu);
  Emitter e(g, plan, prefix, *tm);
  std::unique_ptr<Module> m = e.run();
  r.llvmIR = printModule(*m);
  auto t0 = std::chrono::steady_clock::now();
  optimize(*m, *tm);
  auto t1 = std::chrono::steady_clock::now();
  r.llvmOptIR = printModule(*m);
  if (wantAssembly) {
    // code generation mutates the module, so assembly comes from a copy
    std::unique_ptr<Module> copy = CloneModule(*m);
    std::vector<char> s = emitFile(*copy, *tm, CodeGenFileType::AssemblyFile);
    r.assembly.assign(s.begin(), s.end());
  }
  r.object = emitFile(*m, *tm, CodeGenFileType::ObjectFile);
  auto t2 = std::chrono::steady_clock::now();
  r.optimizeMs = std::chrono::duration<double, std::milli>(t1 - t0).count();
  r.emitMs = std::chrono::duration<double, std::milli>(t2 - t1).count();
  return r;
}

}  // namespace kiln::codegen
