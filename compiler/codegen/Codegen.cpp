// Lowers the kernel IR to LLVM IR: one internal function per kernel (its
// buffers are noalias pointers), one exported function per entry point that
// calls them with offsets into the model's memory block. Loop orders match
// the interpreter's, so sums are taken in the same order.
#include "Codegen.h"

#include "ir/Shapes.h"
#include "passes/Fusion.h"

#include <map>

#include <chrono>
#include <fmt/format.h>
#include <mutex>

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
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

std::unique_ptr<TargetMachine> makeTargetMachine(const TargetOptions& opts, std::string& cpuOut) {
  initLLVM();
  std::string triple = sys::getProcessTriple();
  std::string err;
  const Target* target = TargetRegistry::lookupTarget(triple, err);
  if (!target) throw ir::CompileError(fmt::format("codegen: no LLVM target for {}: {}", triple, err));
  std::string cpu = opts.cpu.empty() ? std::string(sys::getHostCPUName()) : opts.cpu;
  std::string features;
  if (opts.cpu.empty()) {
    for (const auto& f : sys::getHostCPUFeatures()) {
      if (!features.empty()) features += ",";
      features += (f.second ? "+" : "-") + f.first().str();
    }
  }
  llvm::TargetOptions to;
  std::unique_ptr<TargetMachine> tm(target->createTargetMachine(triple, cpu, features, to, Reloc::PIC_, std::nullopt,
                                                                CodeGenOptLevel::Aggressive));
  if (!tm) throw ir::CompileError(fmt::format("codegen: cannot create a target machine for cpu '{}'", cpu));
  cpuOut = cpu;
  return tm;
}

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
  }

  std::unique_ptr<Module> run() {
    std::vector<Function*> kernels(static_cast<size_t>(g_.size()), nullptr);
    for (const lower::FunctionPlan& fp : plan_.functions)
      for (const lower::Kernel& k : fp.kernels)
        if (!kernels[k.value]) kernels[k.value] = emitKernel(k);
    for (const lower::FunctionPlan& fp : plan_.functions) emitEntry(fp, kernels);
    std::string err;
    raw_string_ostream os(err);
    if (verifyModule(*m_, &os)) throw ir::CompileError("codegen: invalid LLVM IR (internal error): " + os.str());
    return std::move(m_);
  }

  LLVMContext& context() { return ctx_; }

private:
  void setAttrs(Function* f) {
    f->addFnAttr(Attribute::NoUnwind);
    f->addFnAttr("target-cpu", cpu_);
    if (!features_.empty()) f->addFnAttr("target-features", features_);
  }

  // for (i = 0; i < n; ++i) body(i)   (n >= 1)
  void loop(int64_t n, const std::function<void(Value*)>& body) {
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
    b_.CreateCondBr(b_.CreateICmpULT(next, b_.getInt64(n)), head, exit);
    b_.SetInsertPoint(exit);
  }

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

  Value* fmax(Value* a, Value* b) {  // NaN in a propagates, as in the interpreter
    return b_.CreateSelect(b_.CreateOr(b_.CreateFCmpOGT(a, b), b_.CreateFCmpUNO(a, a)), a, b);
  }
  Value* fmin(Value* a, Value* b) {
    return b_.CreateSelect(b_.CreateOr(b_.CreateFCmpOLT(a, b), b_.CreateFCmpUNO(a, a)), a, b);
  }
  Value* mask(Value* c) { return b_.CreateSelect(c, cf(1.0), cf(0.0)); }

  // Scalar emission for f32 operands: one switch keyed by the op table,
  // mirroring interp::scalarF.
  Value* scalarF(const ir::Node& n, Value* a, Value* bv) {
    auto alpha = [&] { return cf(static_cast<float>(n.attrs.getFloat("alpha"))); };
    switch (n.op) {
      case OpKind::Neg: return b_.CreateFNeg(a);
      case OpKind::Exp: return intrinsic(Intrinsic::exp, a);
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
      case OpKind::Tanh: return callMath("tanhf", a);
      case OpKind::Sigmoid: return b_.CreateFDiv(cf(1.0), b_.CreateFAdd(cf(1.0), intrinsic(Intrinsic::exp, b_.CreateFNeg(a))));
      case OpKind::Softplus:
        return b_.CreateSelect(b_.CreateFCmpOGT(a, cf(20.0)), a, callMath("log1pf", intrinsic(Intrinsic::exp, a)));
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
  Value* scalarI(const ir::Node& n, Value* a, Value* bv) {
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

  Type* elemType(const ir::TensorType& t) { return t.dtype == ir::DType::F32 ? f32_ : i32_; }

  // An elementwise op applied to its operands' element values.
  Value* mapValues(const ir::Node& n, const std::vector<Value*>& v) {
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

  Function* emitKernel(const lower::Kernel& k) {
    ValueId v = k.value;
    const ir::Node& n = g_.node(v);
    std::vector<Type*> params(k.inputs.size() + 1, ptr_);
    Function* f = Function::Create(FunctionType::get(b_.getVoidTy(), params, false), Function::InternalLinkage,
                                   fmt::format("k{}_{}", v, ir::opName(n.op)), m_.get());
    setAttrs(f);
    for (auto& arg : f->args()) {
      arg.addAttr(Attribute::NoAlias);
      arg.addAttr(Attribute::NoCapture);
    }
    BasicBlock* entry = BasicBlock::Create(ctx_, "entry", f);
    b_.SetInsertPoint(entry);
    Value* out = f->getArg(0);
    std::vector<Value*> in;
    leaf_.clear();
    for (size_t i = 0; i < k.inputs.size(); ++i) {
      in.push_back(f->getArg(static_cast<unsigned>(i + 1)));
      leaf_[k.inputs[i]] = in.back();
    }
    if (passes::evaluatesOperandsByIndex(n.op)) emitGeneratorRoot(k, out);
    else emitBody(n, out, in);
    b_.CreateRetVoid();
    return f;
  }

  // ---- element generators: a value's element at an index ----

  // A row-major index into a value: the per-dim indices, the flat offset,
  // or both (a consumer fills whichever it has; the other is derived).
  struct Index {
    std::vector<Value*> multi;
    Value* flat = nullptr;
  };

  std::vector<Value*> multiOf(const Index& ix, const ir::Shape& shape) {
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
  Value* flatOf(const Index& ix, const ir::Shape& shape) {
    if (ix.flat) return ix.flat;
    return linear(ix.multi, ir::stridesOf(shape));
  }

  Value* gen(ValueId v, const Index& ix) {
    const ir::Node& n = g_.node(v);
    if (!plan_.inlined[v]) {
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
      default: break;
    }
    throw ir::CompileError(fmt::format("codegen: %{} ({}) cannot be fused", v, ir::opName(n.op)));
  }

  // The operand index a broadcast or transpose result index reads.
  Index operandIndex(const ir::Node& n, const std::vector<Value*>& m) {
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

  void emitGeneratorRoot(const lower::Kernel& k, Value* out) {
    const ir::Node& n = g_.node(k.value);
    Type* ot = elemType(n.type);
    bool needMulti = false;
    for (ValueId f : k.fused) {
      FamilyKind fam = ir::opFamily(g_.node(f).op);
      needMulti = needMulti || fam == FamilyKind::Broadcast || fam == FamilyKind::Transpose;
    }
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
          b_.CreateMemCpy(out, Align(kAlign), leaf_.at(o), Align(kAlign), n.type.byteSize());
          return;
        }
        loop(n.type.numElements(), [&](Value* i) { b_.CreateStore(gen(o, Index{{}, i}), gep(ot, out, i)); });
        return;
      }
      case FamilyKind::Broadcast:
      case FamilyKind::Transpose:
        nest(n.type.shape, [&](const std::vector<Value*>& idx) {
          b_.CreateStore(gen(n.operands[0], operandIndex(n, idx)), gep(ot, out, linear(idx, ir::stridesOf(n.type.shape))));
        });
        return;
      case FamilyKind::Reduce: {
        const ir::TensorType& t = g_.type(n.operands[0]);
        bool isMax = n.op == OpKind::ReduceMax, isMin = n.op == OpKind::ReduceMin;
        loop(n.type.numElements(), [&](Value* i) { storeF(cf(isMax ? -INFINITY : isMin ? INFINITY : 0.0), out, i); });
        const auto& axes = n.attrs.getInts("axes");
        ir::Shape keep = t.shape;
        for (int64_t ax : axes) keep[ax] = 1;
        std::vector<int64_t> os = ir::stridesOf(keep), is = ir::stridesOf(t.shape);
        for (int64_t ax : axes) os[ax] = 0;
        nest(t.shape, [&](const std::vector<Value*>& idx) {
          Value* oo = linear(idx, os);
          Value* x = gen(n.operands[0], Index{idx, linear(idx, is)});
          Value* cur = loadF(out, oo);
          storeF(isMax ? fmax(x, cur) : isMin ? fmin(x, cur) : b_.CreateFAdd(cur, x), out, oo);
        });
        return;
      }
      default: break;
    }
    throw ir::CompileError(fmt::format("codegen: {} is not a generator root", ir::opName(n.op)));
  }

  Value* genMap(const ir::Node& n, const Index& ix) {
    std::vector<Value*> vals;
    for (ValueId o : n.operands) vals.push_back(gen(o, ix));
    return mapValues(n, vals);
  }

  Value* alloca(Type* t) {
    IRBuilder<> eb(&b_.GetInsertBlock()->getParent()->getEntryBlock(),
                   b_.GetInsertBlock()->getParent()->getEntryBlock().begin());
    return eb.CreateAlloca(t);
  }

  void emitBody(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
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
        Value* mx = alloca(f32_);
        Value* sm = alloca(f32_);
        nest({outer, inner}, [&](const std::vector<Value*>& oi) {
          Value* base = b_.CreateAdd(b_.CreateMul(oi[0], b_.getInt64(len * inner)), oi[1]);
          auto at = [&](Value* k) { return b_.CreateAdd(base, b_.CreateMul(k, b_.getInt64(inner))); };
          b_.CreateStore(cf(-INFINITY), mx);
          loop(len, [&](Value* k) {
            Value* x = loadF(in[0], at(k));
            Value* m = b_.CreateLoad(f32_, mx);
            b_.CreateStore(b_.CreateSelect(b_.CreateFCmpOGT(x, m), x, m), mx);
          });
          b_.CreateStore(cf(0.0), sm);
          Value* m = b_.CreateLoad(f32_, mx);
          loop(len, [&](Value* k) {
            Value* e = intrinsic(Intrinsic::exp, b_.CreateFSub(loadF(in[0], at(k)), m));
            b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f32_, sm), e), sm);
          });
          Value* ls = intrinsic(Intrinsic::log, b_.CreateLoad(f32_, sm));
          loop(len, [&](Value* k) { storeF(b_.CreateFSub(b_.CreateFSub(loadF(in[0], at(k)), m), ls), out, at(k)); });
        });
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

  // C[i,j] = sum_k A(i,k) B(k,j) per batch, k ascending, as in the
  // interpreter. With B untransposed the j loop is innermost (unit stride,
  // vectorizable); with B transposed the k loop is (a dot product).
  void emitMatMul(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
    bool ta = n.attrs.getInt("ta", 0), tb = n.attrs.getInt("tb", 0);
    const ir::TensorType& at = g_.type(n.operands[0]);
    size_t r = n.type.shape.size();
    int64_t m = n.type.shape[r - 2], nn = n.type.shape[r - 1], kk = ta ? at.shape[r - 2] : at.shape[r - 1];
    int64_t batch = n.type.numElements() / (m * nn);
    loop(batch, [&](Value* bt) {
      Value* A = gep(f32_, in[0], mulc(bt, m * kk));
      Value* B = gep(f32_, in[1], mulc(bt, kk * nn));
      Value* C = gep(f32_, out, mulc(bt, m * nn));
      auto aIdx = [&](Value* i, Value* k) { return ta ? add(mulc(k, m), i) : add(mulc(i, kk), k); };
      auto bIdx = [&](Value* k, Value* j) { return tb ? add(mulc(j, kk), k) : add(mulc(k, nn), j); };
      auto cIdx = [&](Value* i, Value* j) { return add(mulc(i, nn), j); };
      if (!tb) {
        loop(m * nn, [&](Value* i) { storeF(cf(0.0), C, i); });
        nest({m, kk}, [&](const std::vector<Value*>& ik) {
          Value* a = loadF(A, aIdx(ik[0], ik[1]));
          loop(nn, [&](Value* j) {
            Value* c = cIdx(ik[0], j);
            storeF(b_.CreateFAdd(loadF(C, c), b_.CreateFMul(a, loadF(B, bIdx(ik[1], j)))), C, c);
          });
        });
        return;
      }
      Value* acc = alloca(f32_);
      nest({m, nn}, [&](const std::vector<Value*>& ij) {
        b_.CreateStore(cf(0.0), acc);
        loop(kk, [&](Value* k) {
          Value* p = b_.CreateFMul(loadF(A, aIdx(ij[0], k)), loadF(B, bIdx(k, ij[1])));
          b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f32_, acc), p), acc);
        });
        storeF(b_.CreateLoad(f32_, acc), C, cIdx(ij[0], ij[1]));
      });
    });
  }

  void emitConcat(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
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

  void emitSlice(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
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

  void emitPad(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
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

  Value* loadIndex(Value* base, Value* i) { return b_.CreateSExt(b_.CreateLoad(i32_, gep(i32_, base, i)), i64_); }

  void emitGather(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
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

  void emitScatterAdd(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
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

  void emitAlong(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
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
  void emitConv(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
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

  void emitPool(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
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
  Value* mix64(Value* x) {
    x = b_.CreateXor(x, b_.CreateLShr(x, 30));
    x = b_.CreateMul(x, b_.getInt64(0xBF58476D1CE4E5B9ull));
    x = b_.CreateXor(x, b_.CreateLShr(x, 27));
    x = b_.CreateMul(x, b_.getInt64(0x94D049BB133111EBull));
    return b_.CreateXor(x, b_.CreateLShr(x, 31));
  }

  // rt::uniform01 / rt::normal01 of (seed from the key, stream, index).
  void emitRandom(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
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

  void emitEntry(const lower::FunctionPlan& fp, const std::vector<Function*>& kernels) {
    Function* f = Function::Create(FunctionType::get(i32_, {ptr_}, false), Function::ExternalLinkage,
                                   entrySymbol(prefix_, fp.name), m_.get());
    setAttrs(f);
    BasicBlock* entry = BasicBlock::Create(ctx_, "entry", f);
    b_.SetInsertPoint(entry);
    Value* base = f->getArg(0);
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
    for (const lower::Kernel& k : fp.kernels) {
      std::vector<Value*> args{bufPtr(k.value)};
      for (ValueId o : k.inputs) args.push_back(bufPtr(o));
      b_.CreateCall(kernels[k.value], args);
    }
    auto at = [&](int64_t off) { return b_.CreateInBoundsGEP(b_.getInt8Ty(), base, b_.getInt64(off)); };
    for (const lower::Copy& c : fp.copies)
      b_.CreateMemCpy(at(c.dstOffset), Align(kAlign), at(c.srcOffset), Align(kAlign), c.bytes);
    b_.CreateRet(b_.getInt32(0));
  }

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
  std::map<ValueId, Value*> leaf_;  // the current kernel's input buffers by value
};

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
