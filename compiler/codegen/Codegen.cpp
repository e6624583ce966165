// Lowers the kernel IR to LLVM IR: one internal function per kernel (its
// buffers are noalias pointers), one exported function per entry point that
// calls them with offsets into the model's memory block. Loop orders match
// the interpreter's, so sums are taken in the same order.
#include "Codegen.h"

#include "ir/Shapes.h"

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
        if (!kernels[k.value]) kernels[k.value] = emitKernel(k.value);
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
  Value* intrinsic(Intrinsic::ID id, Value* x) { return b_.CreateUnaryIntrinsic(id, x); }

  // Scalar emission: one switch keyed by the op table.
  Value* scalar(OpKind op, Value* a, Value* bv) {
    switch (op) {
      case OpKind::Add: return b_.CreateFAdd(a, bv);
      case OpKind::Sub: return b_.CreateFSub(a, bv);
      case OpKind::Mul: return b_.CreateFMul(a, bv);
      case OpKind::Div: return b_.CreateFDiv(a, bv);
      case OpKind::Maximum:  // NaN in a propagates, as in the interpreter
        return b_.CreateSelect(b_.CreateOr(b_.CreateFCmpOGT(a, bv), b_.CreateFCmpUNO(a, a)), a, bv);
      case OpKind::Neg: return b_.CreateFNeg(a);
      case OpKind::Exp: return intrinsic(Intrinsic::exp, a);
      case OpKind::Log: return intrinsic(Intrinsic::log, a);
      case OpKind::Sqrt: return intrinsic(Intrinsic::sqrt, a);
      case OpKind::Relu: return b_.CreateSelect(b_.CreateFCmpOLT(a, cf(0.0)), cf(0.0), a);
      case OpKind::Tanh: return callMath("tanhf", a);
      case OpKind::Sigmoid: return b_.CreateFDiv(cf(1.0), b_.CreateFAdd(cf(1.0), intrinsic(Intrinsic::exp, b_.CreateFNeg(a))));
      case OpKind::Step: return b_.CreateSelect(b_.CreateFCmpOGT(a, cf(0.0)), cf(1.0), cf(0.0));
      case OpKind::Input: case OpKind::Param: case OpKind::State: case OpKind::Constant:
      case OpKind::Sum: case OpKind::ReduceMax: case OpKind::Argmax: case OpKind::Reshape:
      case OpKind::Transpose: case OpKind::Broadcast: case OpKind::MatMul: case OpKind::LogSoftmax:
      case OpKind::OneHot:
        break;
    }
    throw ir::CompileError(fmt::format("codegen: {} is not a scalar op", ir::opName(op)));
  }

  Function* emitKernel(ValueId v) {
    const ir::Node& n = g_.node(v);
    std::vector<Type*> params(n.operands.size() + 1, ptr_);
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
    for (size_t k = 0; k < n.operands.size(); ++k) in.push_back(f->getArg(static_cast<unsigned>(k + 1)));
    emitBody(n, out, in);
    b_.CreateRetVoid();
    return f;
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
        loop(count, [&](Value* i) {
          Value* a = loadF(in[0], i);
          Value* bv = in.size() > 1 ? loadF(in[1], i) : nullptr;
          storeF(scalar(n.op, a, bv), out, i);
        });
        return;
      case FamilyKind::Reduce: {
        const ir::TensorType& t = g_.type(n.operands[0]);
        bool isMax = n.op == OpKind::ReduceMax;
        loop(count, [&](Value* i) { storeF(cf(isMax ? -INFINITY : 0.0), out, i); });
        const auto& axes = n.attrs.getInts("axes");
        ir::Shape keep = t.shape;
        for (int64_t ax : axes) keep[ax] = 1;
        std::vector<int64_t> os = ir::stridesOf(keep), is = ir::stridesOf(t.shape);
        for (int64_t ax : axes) os[ax] = 0;
        nest(t.shape, [&](const std::vector<Value*>& idx) {
          Value* oo = linear(idx, os);
          Value* x = loadF(in[0], linear(idx, is));
          Value* cur = loadF(out, oo);
          Value* r = isMax ? b_.CreateSelect(b_.CreateOr(b_.CreateFCmpOGT(x, cur), b_.CreateFCmpUNO(x, x)), x, cur)
                           : b_.CreateFAdd(cur, x);
          storeF(r, out, oo);
        });
        return;
      }
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
              b_.CreateStore(b_.CreateSelect(b_.CreateFCmpOGT(x, bx), k, bi), best);
            });
          Value* o = b_.CreateAdd(b_.CreateMul(oi[0], b_.getInt64(inner)), oi[1]);
          b_.CreateStore(b_.CreateTrunc(b_.CreateLoad(i64_, best), i32_), gep(i32_, out, o));
        });
        return;
      }
      case FamilyKind::Copy:
        b_.CreateMemCpy(out, Align(kAlign), in[0], Align(kAlign), n.type.byteSize());
        return;
      case FamilyKind::Transpose:
      case FamilyKind::Broadcast: {
        std::vector<int64_t> is = ir::layoutStrides(g_, n), os = ir::stridesOf(n.type.shape);
        Type* et = n.type.dtype == ir::DType::F32 ? f32_ : i32_;
        nest(n.type.shape, [&](const std::vector<Value*>& idx) {
          b_.CreateStore(b_.CreateLoad(et, gep(et, in[0], linear(idx, is))), gep(et, out, linear(idx, os)));
        });
        return;
      }
      case FamilyKind::MatMul: emitMatMul(n, out, in); return;
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

  // C[i,j] = sum_k A(i,k) B(k,j), k ascending, as in the interpreter. With B
  // untransposed the j loop is innermost (unit stride, vectorizable);
  // with B transposed the k loop is (a dot product).
  void emitMatMul(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
    bool ta = n.attrs.getInt("ta", 0), tb = n.attrs.getInt("tb", 0);
    const ir::TensorType& at = g_.type(n.operands[0]);
    int64_t m = n.type.shape[0], nn = n.type.shape[1], kk = ta ? at.shape[0] : at.shape[1];
    auto aIdx = [&](Value* i, Value* k) {
      return ta ? b_.CreateAdd(b_.CreateMul(k, b_.getInt64(m)), i) : b_.CreateAdd(b_.CreateMul(i, b_.getInt64(kk)), k);
    };
    auto bIdx = [&](Value* k, Value* j) {
      return tb ? b_.CreateAdd(b_.CreateMul(j, b_.getInt64(kk)), k) : b_.CreateAdd(b_.CreateMul(k, b_.getInt64(nn)), j);
    };
    auto cIdx = [&](Value* i, Value* j) { return b_.CreateAdd(b_.CreateMul(i, b_.getInt64(nn)), j); };
    if (!tb) {
      loop(m * nn, [&](Value* i) { storeF(cf(0.0), out, i); });
      nest({m, kk}, [&](const std::vector<Value*>& ik) {
        Value* a = loadF(in[0], aIdx(ik[0], ik[1]));
        loop(nn, [&](Value* j) {
          Value* c = cIdx(ik[0], j);
          storeF(b_.CreateFAdd(loadF(out, c), b_.CreateFMul(a, loadF(in[1], bIdx(ik[1], j)))), out, c);
        });
      });
      return;
    }
    Value* acc = alloca(f32_);
    nest({m, nn}, [&](const std::vector<Value*>& ij) {
      b_.CreateStore(cf(0.0), acc);
      loop(kk, [&](Value* k) {
        Value* p = b_.CreateFMul(loadF(in[0], aIdx(ij[0], k)), loadF(in[1], bIdx(k, ij[1])));
        b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f32_, acc), p), acc);
      });
      storeF(b_.CreateLoad(f32_, acc), out, cIdx(ij[0], ij[1]));
    });
  }

  void emitEntry(const lower::FunctionPlan& fp, const std::vector<Function*>& kernels) {
    Function* f = Function::Create(FunctionType::get(b_.getVoidTy(), {ptr_}, false), Function::ExternalLinkage,
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
    for (const lower::Kernel& k : fp.kernels) {
      std::vector<Value*> args{bufPtr(k.value)};
      for (ValueId o : g_.node(k.value).operands) args.push_back(bufPtr(o));
      b_.CreateCall(kernels[k.value], args);
    }
    auto at = [&](int64_t off) { return b_.CreateInBoundsGEP(b_.getInt8Ty(), base, b_.getInt64(off)); };
    for (const lower::Copy& c : fp.copies)
      b_.CreateMemCpy(at(c.dstOffset), Align(kAlign), at(c.srcOffset), Align(kAlign), c.bytes);
    b_.CreateRetVoid();
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
